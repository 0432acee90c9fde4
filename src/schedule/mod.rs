//! Who runs which test, and in what order: tests grouped into units by
//! `--dist` (`dist`), an LPT plan from the history or a shared pool
//! (`run_queue`, `lpt`), CI shards (`shard`, balanced by the durations file in `history`), and the
//! worker count `-n auto` fits to the expected work and memory
//! (`auto_workers`). Plain logic, no processes.

pub mod auto_workers;
pub mod dist;
pub mod lpt;
pub mod memory_budget;
pub mod run_queue;
pub mod shard;
