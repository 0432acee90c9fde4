//! Per-test time limits, enforced from outside the worker.
//!
//! A test stuck in C code (a `sleep` with the GIL released, a deadlock in an
//! extension) cannot be stopped from inside its process, so the limit is
//! kept here, by the engine: each test's limit is resolved once, from its
//! `@pytest.mark.timeout(N)`, rpytest's `--timeout` / `[tool.rpytest]
//! timeout`, or pytest-timeout's own settings; the Scheduler's watchdog asks
//! `Watchdog::expired` which running tests are past theirs, and the
//! Supervisor stops those workers. When pytest-timeout enforces the same
//! limit inside the worker, rpytest waits `BACKSTOP_MARGIN` longer, so the
//! plugin's own (gentler) failure comes first and rpytest is the backstop.

use std::collections::HashSet;
use std::time::Duration;

/// How much later rpytest acts when pytest-timeout enforces the limit too.
pub const BACKSTOP_MARGIN: f64 = 1.0;
/// After asking the worker to dump its stacks (SIGUSR1), before SIGTERM.
pub const DUMP_WAIT: Duration = Duration::from_millis(300);
/// After SIGTERM, before SIGKILL of the worker's process group.
pub const TERM_GRACE: Duration = Duration::from_secs(2);

/// Where the run's limits come from, besides each test's own mark.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TimeoutSources {
    /// rpytest's `--timeout`, else `[tool.rpytest] timeout` (0: none).
    pub rpytest: Option<f64>,
    /// pytest-timeout's resolved global limit (its `--timeout`, then
    /// `PYTEST_TIMEOUT`, then ini `timeout`); `None` when not installed.
    pub plugin: Option<f64>,
    /// pytest-timeout is active in the workers and enforces marks itself.
    pub plugin_active: bool,
}

/// One test's limit: `secs` is what the failure says; the engine acts at
/// `deadline` (later when pytest-timeout enforces it first).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub secs: f64,
    pub deadline: f64,
}

impl TimeoutSources {
    /// The limit of a test whose `timeout` mark says `mark` (if any).
    /// Precedence: the mark, then rpytest's setting, then pytest-timeout's.
    /// A value of 0 (or less) means "no limit", as in pytest-timeout.
    pub fn limit_for(&self, mark: Option<f64>) -> Option<Limit> {
        let (secs, plugin_enforces) = match (mark, self.rpytest, self.plugin) {
            (Some(mark), _, _) => (mark, self.plugin_active),
            (None, Some(ours), _) => (ours, false),
            (None, None, Some(theirs)) => (theirs, self.plugin_active),
            (None, None, None) => return None,
        };
        if !(secs > 0.0 && secs.is_finite()) {
            return None;
        }
        let deadline = if plugin_enforces { secs + BACKSTOP_MARGIN } else { secs };
        Some(Limit { secs, deadline })
    }
}

/// A running test past its limit: stop its worker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Expiry {
    pub worker: usize,
    pub test: usize,
    pub secs: f64,
}

/// A running test past `--slow-timeout`: said once, as nextest's SLOW.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slow {
    pub worker: usize,
    pub test: usize,
    pub secs: f64,
}

/// The per-test limits of a run and which expiries were already acted on;
/// also which running tests were already said to be slow.
#[derive(Debug, Default)]
pub struct Watchdog {
    limits: Vec<Option<Limit>>,
    fired: HashSet<(usize, usize)>,
    slow_after: Option<f64>,
    said_slow: HashSet<(usize, usize)>,
}

impl Watchdog {
    /// One limit per collected test, from each test's mark.
    pub fn new(sources: TimeoutSources, marks: impl IntoIterator<Item = Option<f64>>) -> Self {
        let limits = marks.into_iter().map(|mark| sources.limit_for(mark)).collect();
        Watchdog { limits, ..Watchdog::default() }
    }

    /// Tests running longer than `secs` are said to be slow (`--slow-timeout`).
    pub fn slow_after(mut self, secs: Option<f64>) -> Self {
        self.slow_after = secs.filter(|s| *s > 0.0);
        self
    }

    /// Whether any test has a limit or can be slow (else nothing needs watching).
    pub fn active(&self) -> bool {
        self.slow_after.is_some() || self.limits.iter().any(Option::is_some)
    }

    /// The running tests that passed the slow threshold since last asked.
    pub fn newly_slow(&mut self, running: &[(usize, usize, f64)], now: f64) -> Vec<Slow> {
        let Some(after) = self.slow_after else { return Vec::new() };
        running
            .iter()
            .filter(|&&(worker, test, since)| now - since >= after && self.said_slow.insert((worker, test)))
            .map(|&(worker, test, _)| Slow { worker, test, secs: after })
            .collect()
    }

    /// The running tests, (worker, test, started at), past their deadline
    /// at `now` (same clock); each (worker, test) is reported once.
    pub fn expired(&mut self, running: &[(usize, usize, f64)], now: f64) -> Vec<Expiry> {
        let mut out = Vec::new();
        for &(worker, test, since) in running {
            let Some(limit) = self.limits.get(test).copied().flatten() else { continue };
            if now - since >= limit.deadline && self.fired.insert((worker, test)) {
                out.push(Expiry { worker, test, secs: limit.secs });
            }
        }
        out
    }

    /// `worker` is gone: its replacement (same number) starts afresh, even
    /// on the same test (a retry).
    pub fn forget(&mut self, worker: usize) {
        self.fired.retain(|&(w, _)| w != worker);
        self.said_slow.retain(|&(w, _)| w != worker);
    }
}

/// "Timeout (>5.0s)", as pytest-timeout words it.
pub fn describe(secs: f64) -> String {
    format!("Timeout (>{secs:.1}s)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_test_is_said_once_and_again_after_its_worker_is_replaced() {
        let mut dog = Watchdog::new(TimeoutSources::default(), [None, None]).slow_after(Some(60.0));
        assert!(dog.active(), "watching for slow tests alone");
        let running = [(0, 1, 10.0), (1, 0, 30.0)];
        assert_eq!(dog.newly_slow(&running, 69.0), vec![]);
        assert_eq!(dog.newly_slow(&running, 70.0), vec![Slow { worker: 0, test: 1, secs: 60.0 }]);
        assert_eq!(dog.newly_slow(&running, 95.0), vec![Slow { worker: 1, test: 0, secs: 60.0 }]);
        assert_eq!(dog.newly_slow(&running, 200.0), vec![], "once each");
        dog.forget(0);
        assert_eq!(dog.newly_slow(&running, 200.0).len(), 1);
        let off = Watchdog::new(TimeoutSources::default(), [None]).slow_after(Some(0.0));
        assert!(!off.active(), "0 turns it off");
    }

    const OURS: TimeoutSources = TimeoutSources { rpytest: Some(5.0), plugin: Some(9.0), plugin_active: true };

    #[test]
    fn a_mark_wins_then_rpytest_then_pytest_timeout() {
        assert_eq!(OURS.limit_for(Some(2.0)), Some(Limit { secs: 2.0, deadline: 3.0 }));
        assert_eq!(OURS.limit_for(None), Some(Limit { secs: 5.0, deadline: 5.0 }));
        let plugin_only = TimeoutSources { rpytest: None, ..OURS };
        assert_eq!(plugin_only.limit_for(None), Some(Limit { secs: 9.0, deadline: 10.0 }));
        assert_eq!(TimeoutSources::default().limit_for(None), None);
    }

    #[test]
    fn zero_means_no_limit_and_an_inactive_plugin_needs_no_margin() {
        assert_eq!(OURS.limit_for(Some(0.0)), None);
        let inactive = TimeoutSources { rpytest: None, plugin: None, plugin_active: false };
        assert_eq!(inactive.limit_for(Some(3.0)), Some(Limit { secs: 3.0, deadline: 3.0 }));
    }

    #[test]
    fn expiries_come_once_per_running_test_on_a_fake_clock() {
        let sources = TimeoutSources { rpytest: Some(5.0), ..Default::default() };
        let mut dog = Watchdog::new(sources, [None, Some(1.0), Some(0.0)]);
        assert!(dog.active());
        let running = [(0, 0, 10.0), (1, 1, 10.0), (2, 2, 0.0)];
        assert_eq!(dog.expired(&running, 10.5), []);
        assert_eq!(dog.expired(&running, 11.0), [Expiry { worker: 1, test: 1, secs: 1.0 }]);
        assert_eq!(dog.expired(&running, 14.0), []);
        assert_eq!(dog.expired(&running, 15.0), [Expiry { worker: 0, test: 0, secs: 5.0 }]);
        // Test 2 has no limit (0), however long it runs.
        assert_eq!(dog.expired(&running, 1000.0), []);
    }

    #[test]
    fn a_replacement_on_the_same_test_is_watched_again() {
        let mut dog = Watchdog::new(TimeoutSources::default(), [Some(1.0)]);
        assert_eq!(dog.expired(&[(0, 0, 0.0)], 2.0).len(), 1);
        assert_eq!(dog.expired(&[(0, 0, 0.0)], 3.0), []);
        dog.forget(0);
        assert_eq!(dog.expired(&[(0, 0, 3.0)], 4.5), [Expiry { worker: 0, test: 0, secs: 1.0 }]);
    }

    #[test]
    fn no_limits_means_nothing_to_watch() {
        assert!(!Watchdog::new(TimeoutSources::default(), [None, None]).active());
        assert_eq!(describe(5.0), "Timeout (>5.0s)");
    }
}
