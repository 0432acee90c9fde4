//! A run's state as tests finish: what each result means for the run
//! (`state`: --maxfail, retries, lost workers, completion), how a crash
//! is named (`crash`), time limits (`timeouts`), and the exit code the
//! run ends with (`exit_code`). Plain logic driven by the Scheduler actor.

pub mod crash;
pub mod exit_code;
pub mod state;
pub mod timeouts;
