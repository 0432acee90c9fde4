//! Noticing a worker that is connected but silent where a reply is due.
//!
//! A worker that stops talking while its socket stays open (stuck in a
//! signal handler a test left behind, a lock, a patched function) would
//! leave the run waiting forever without a word. A silent worker is not
//! always a stuck one, though: a test, its fixtures or the worker's
//! session end may legitimately run for hours without a message. So
//! silence is measured only where the worker's next message depends on
//! rpytest's own code alone, never on how long a test runs:
//!
//! - after `hello`, until its first `ready` (nothing runs in between);
//! - while it holds a test it has not started, has no request for tests
//!   unanswered (`ready` then waits on the engine) and runs none: after
//!   `test_done`, or the engine's answer to `ready`, it sends `started`
//!   before the next test's first fixture, at once.
//!
//! Nothing is due while it runs a test (`started` .. `test_done`), waits
//! for the engine, holds no test, or ends its session (`stop`, `no_more`
//! and nothing held, `interrupted`, `stop_requested`, `finished`): so a
//! slow test or teardown can never be mistaken for a stuck worker.
//!
//! The clock is the connection's ticks (`TICK`), counted only while
//! something is due and reset by any message either way: a busy or
//! suspended engine (Ctrl-Z, a laptop asleep) counts no silence it did
//! not watch. The limit is `SILENCE_LIMIT`, or `RPYTEST_SILENCE_LIMIT`
//! (seconds; tests set it low). A worker past it is treated as crashed
//! (the Supervisor's `WorkerSilent`).

use std::time::Duration;

use crate::protocol::{FromPython, ToPython};

/// How often a connection looks at its worker's silence.
pub const TICK: Duration = Duration::from_millis(250);
/// How long a worker may be silent where a reply is due. The windows hold
/// microseconds of rpytest's own work, so this only has to outlast a
/// machine starved of CPU or memory.
pub const SILENCE_LIMIT: Duration = Duration::from_secs(60);

/// The limit in force: `RPYTEST_SILENCE_LIMIT` (seconds) if set and
/// positive, else `SILENCE_LIMIT`.
pub fn limit() -> Duration {
    std::env::var("RPYTEST_SILENCE_LIMIT")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|secs| *secs > 0.0 && secs.is_finite())
        .map_or(SILENCE_LIMIT, Duration::from_secs_f64)
}

/// A worker silent past the limit: what rpytest waited for, and how long.
#[derive(Debug, Clone, PartialEq)]
pub struct Silent {
    pub waited_for: &'static str,
    pub secs: f64,
}

/// One worker connection's silence, fed every message each way.
#[derive(Debug)]
pub struct SilenceWatch {
    /// Said hello; its first `ready` is due.
    greeting: bool,
    /// Tests sent to it that it has not started.
    held: usize,
    running: bool,
    /// Its `ready` is unanswered: the engine's turn.
    asked: bool,
    /// Its session is ending: nothing more is due.
    ending: bool,
    quiet_ticks: u32,
    limit_ticks: u32,
    limit: Duration,
    fired: bool,
}

impl SilenceWatch {
    /// A worker that just said hello.
    pub fn new(limit: Duration) -> Self {
        let limit_ticks = (limit.as_secs_f64() / TICK.as_secs_f64()).ceil().max(1.0) as u32;
        SilenceWatch {
            greeting: true,
            held: 0,
            running: false,
            asked: false,
            ending: false,
            quiet_ticks: 0,
            limit_ticks,
            limit,
            fired: false,
        }
    }

    /// What the engine is waiting for from the worker now, if anything.
    pub fn awaiting(&self) -> Option<&'static str> {
        if self.ending || self.fired {
            None
        } else if self.greeting {
            Some("its first request for tests (`ready`) after it said hello")
        } else if self.running || self.asked || self.held == 0 {
            None
        } else {
            Some("it to start its next test (`started`), which it held")
        }
    }

    /// The worker sent `message`.
    pub fn heard(&mut self, message: &FromPython) {
        self.quiet_ticks = 0;
        match message {
            FromPython::Ready => {
                self.greeting = false;
                self.asked = true;
            }
            FromPython::Started { .. } => {
                self.running = true;
                self.held = self.held.saturating_sub(1);
            }
            FromPython::TestDone(_) => self.running = false,
            FromPython::Interrupted(_)
            | FromPython::StopRequested { .. }
            | FromPython::Leaked { .. }
            | FromPython::Finished { .. } => self.ending = true,
            _ => {}
        }
    }

    /// The engine sent the worker `message`.
    pub fn sent(&mut self, message: &ToPython) {
        self.quiet_ticks = 0;
        match message {
            ToPython::Run { indices } => {
                self.held += indices.len();
                self.asked = false;
            }
            ToPython::NoMore => self.asked = false,
            ToPython::Stop | ToPython::Shutdown => self.ending = true,
            _ => {}
        }
    }

    /// One tick of the connection's clock: the silence, once it passes the limit.
    pub fn tick(&mut self) -> Option<Silent> {
        let waited_for = self.awaiting()?;
        self.quiet_ticks += 1;
        if self.quiet_ticks <= self.limit_ticks {
            return None;
        }
        self.fired = true;
        Some(Silent { waited_for, secs: self.limit.as_secs_f64() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::TestDone;

    fn watch() -> SilenceWatch {
        SilenceWatch::new(TICK * 4)
    }

    fn ticks(watch: &mut SilenceWatch, n: usize) -> Option<Silent> {
        (0..n).find_map(|_| watch.tick())
    }

    fn done() -> FromPython {
        FromPython::TestDone(TestDone {
            index: 0,
            phases: vec![],
            warnings: vec![],
            junit: None,
            max_rss_kb: Some(1),
            item: None,
        })
    }

    #[test]
    fn a_worker_silent_after_hello_is_named_once_past_the_limit() {
        let mut w = watch();
        assert!(w.awaiting().is_some());
        assert_eq!(ticks(&mut w, 4), None, "not yet: the limit is four ticks");
        let silent = w.tick().expect("past the limit");
        assert!(silent.waited_for.contains("first request"), "{silent:?}");
        assert_eq!(silent.secs, 1.0);
        assert_eq!(ticks(&mut w, 100), None, "said once");
    }

    #[test]
    fn a_running_test_or_an_unanswered_request_is_never_silence() {
        let mut w = watch();
        w.heard(&FromPython::Ready);
        assert_eq!(ticks(&mut w, 1000), None, "the engine owes the answer");
        w.sent(&ToPython::Run { indices: vec![0, 1] });
        w.heard(&FromPython::Started { index: 0 });
        assert_eq!(ticks(&mut w, 1000), None, "a test as slow as it likes");
        w.heard(&done());
        assert!(w.awaiting().is_some(), "it holds test 1 and must start it now");
        assert!(ticks(&mut w, 5).is_some());
    }

    #[test]
    fn any_message_resets_the_count_and_an_ending_worker_owes_nothing() {
        let mut w = watch();
        w.heard(&FromPython::Ready);
        w.sent(&ToPython::Run { indices: vec![0] });
        assert_eq!(ticks(&mut w, 3), None);
        w.sent(&ToPython::NoMore);
        assert_eq!(ticks(&mut w, 3), None, "reset by the engine's message");
        w.heard(&FromPython::Started { index: 0 });
        w.heard(&done());
        assert_eq!(w.awaiting(), None, "holds nothing: its session's end is not timed");
        let mut stopped = watch();
        stopped.heard(&FromPython::Ready);
        stopped.sent(&ToPython::Run { indices: vec![0, 1] });
        stopped.sent(&ToPython::Stop);
        assert_eq!(ticks(&mut stopped, 1000), None);
    }

    #[test]
    fn the_limit_becomes_whole_ticks() {
        assert_eq!(SilenceWatch::new(Duration::from_millis(1)).limit_ticks, 1);
        assert_eq!(SilenceWatch::new(SILENCE_LIMIT).limit_ticks, 240);
    }
}
