//! `rpytest serve`, the warm daemon, and the client side of it.
//!
//! The daemon keeps, per run key (interpreter, cwd, pytest's arguments, the
//! environment, the kind of terminal), one zygote that has configured and
//! collected and waits. A run takes it over: the zygote adopts the client's
//! stdout and stderr and connects to the client's own engine, so rendering,
//! scheduling, Ctrl-C and teardown stay in the client exactly as in an
//! embedded run. No zygote serves twice. Before a handover, the files the
//! zygote depended on are checked; any change discards it. See docs/daemon.md.

mod adopt;
pub mod client;
pub mod command;
mod connect;
mod deps;
mod fdpass;
mod handed_over;
pub mod key;
mod memory;
mod paths;
mod selection;
mod server;
pub(crate) mod spare;
mod warm_zygote;
mod wire;

pub use adopt::exited as zygote_exited;
