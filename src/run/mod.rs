//! A run's state as tests finish: what each result means for the run
//! (`state`: --maxfail, retries, lost workers, completion), how a crash
//! is named (`crash`) and time limits (`timeouts`); the exit code the run
//! ends with is `crate::exit_code`, at the bottom of the layers, since
//! errors carry one too. Plain logic driven by the Scheduler actor.

pub mod crash;
pub mod state;
pub mod timeouts;
