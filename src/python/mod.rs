//! The Python side as the engine sees it: the embedded worker package
//! (`embed`, written to a cache directory and started with a bootstrap
//! program), finding the interpreter that runs pytest (`interpreter`),
//! and pytest's rootdir, found as pytest finds it (`rootdir`).

pub mod embed;
pub mod interpreter;
pub mod rootdir;
