//! The signals that stop a run: SIGINT (Ctrl-C), SIGTERM (CI cancelling a
//! job, `kill`, a container stopping) and SIGHUP (the terminal closing).
//!
//! All three interrupt the run the same way: the Supervisor stops the
//! Python processes, the Reporter prints what finished, and the engine
//! removes its socket directory. Left to their default action, SIGTERM and
//! SIGHUP would end rpytest at once, leaving the socket directory in the
//! temp dir (the Python processes die with it through PR_SET_PDEATHSIG).
//!
//! After the teardown rpytest ends the conventional way for the signal: a
//! Ctrl-C exits 2, as pytest does; SIGTERM and SIGHUP are raised again with
//! their default action, so the parent sees "killed by SIGTERM" (a shell's
//! 143) rather than an exit code that reads like a test result.

use std::sync::atomic::{AtomicI32, Ordering};

use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::exit_code::ExitCode;

/// The first stop signal received, 0 for none.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// The stop signals, installed; `next` waits for the next one.
pub struct StopSignals {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl StopSignals {
    /// `None` if the handlers cannot be installed (the run then goes on
    /// without them, as it would under the default actions).
    pub fn install() -> Option<StopSignals> {
        let kind = |sig: i32| signal(SignalKind::from_raw(sig)).ok();
        Some(StopSignals { int: kind(libc::SIGINT)?, term: kind(libc::SIGTERM)?, hup: kind(libc::SIGHUP)? })
    }

    /// Waits for the next stop signal; the first one received is kept for
    /// `received` (how rpytest ends), later ones only stop faster.
    pub async fn next(&mut self) -> Option<i32> {
        let sig = tokio::select! {
            got = self.int.recv() => got.map(|_| libc::SIGINT),
            got = self.term.recv() => got.map(|_| libc::SIGTERM),
            got = self.hup.recv() => got.map(|_| libc::SIGHUP),
        }?;
        let _ = RECEIVED.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
        if sig != libc::SIGINT {
            eprintln!("\nrpytest: {} received: interrupting the run", name(sig));
        }
        Some(sig)
    }
}

/// Calls `on_signal` for each stop signal, for the run's life.
pub async fn forward(mut on_signal: impl FnMut()) {
    let Some(mut signals) = StopSignals::install() else { return };
    while signals.next().await.is_some() {
        on_signal();
    }
}

/// The stop signal received, if any.
pub fn received() -> Option<i32> {
    Some(RECEIVED.load(Ordering::SeqCst)).filter(|&sig| sig != 0)
}

/// How an interrupted run names its cause in pytest's `!!! ... !!!` banner.
pub fn banner() -> &'static str {
    match received() {
        Some(sig) if sig != libc::SIGINT => name(sig),
        _ => "KeyboardInterrupt",
    }
}

/// How rpytest's process ends once the run is torn down: with the run's
/// exit code for no signal or SIGINT (the code says "interrupted"), else
/// by the signal received.
#[derive(Debug, PartialEq, Eq)]
pub enum ExitBy {
    Code(ExitCode),
    Signal(i32),
}

pub fn exit_by(code: ExitCode, received: Option<i32>) -> ExitBy {
    match received {
        Some(sig) if sig != libc::SIGINT => ExitBy::Signal(sig),
        _ => ExitBy::Code(code),
    }
}

/// Ends the process by `sig` with its default action; should that not end
/// it, exits with the shell's code for it, 128 + the signal number.
pub fn raise_default(sig: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // SAFETY: resetting a disposition and raising a signal in our own process.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
    std::process::exit(128 + sig)
}

fn name(sig: i32) -> &'static str {
    match sig {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigint_exits_with_the_code_others_raise_again() {
        let interrupted = ExitCode::Interrupted;
        assert_eq!(exit_by(interrupted, Some(libc::SIGINT)), ExitBy::Code(interrupted));
        assert_eq!(exit_by(ExitCode::TestsFailed, None), ExitBy::Code(ExitCode::TestsFailed));
        assert_eq!(exit_by(interrupted, Some(libc::SIGTERM)), ExitBy::Signal(libc::SIGTERM));
        assert_eq!(exit_by(interrupted, Some(libc::SIGHUP)), ExitBy::Signal(libc::SIGHUP));
    }
}
