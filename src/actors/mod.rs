//! The engine's actors. Each is a thin shell over a plain struct that holds
//! the logic, so the logic is tested without an actix system.
//!
//! Events flow one way: connections -> Supervisor (process lifecycle) and
//! Scheduler (run state); only the Scheduler emits test events to the
//! Reporter and History, which keeps actix's per-sender ordering intact.

pub mod connection;
pub mod history;
pub mod messages;
pub mod reporter;
pub mod scheduler;
pub mod supervisor;
