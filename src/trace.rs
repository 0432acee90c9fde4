//! Timestamps of a run's milestones, for finding where start-up time goes.
//!
//! `RPYTEST_TRACE=1` prints `rpytest trace +0.123s: <event>` to stderr at
//! each milestone (zygote started, collected, first worker ready, ...).
//! Off by default and free when off: one atomic load per milestone.

use std::sync::OnceLock;
use std::time::Instant;

static START: OnceLock<Option<Instant>> = OnceLock::new();

/// Call first thing in `main`: fixes time zero and reads the switch.
pub fn init() {
    START.get_or_init(|| std::env::var_os("RPYTEST_TRACE").filter(|v| v != "0").map(|_| Instant::now()));
}

pub fn event(what: impl FnOnce() -> String) {
    if let Some(Some(start)) = START.get() {
        eprintln!("rpytest trace +{:.4}s: {}", start.elapsed().as_secs_f64(), what());
    }
}
