//! The records the reporter keeps: a finished test with its phases, and why
//! a run stopped early. The Scheduler builds them; every part of the report
//! reads them.

use crate::protocol::{PhaseRecord, WarningRecord};

/// A finished test as the reporter keeps it.
#[derive(Debug, Clone)]
pub struct TestResult {
    pub index: usize,
    /// The id pytest shows (relative to the invocation directory).
    pub nodeid: String,
    /// The rootdir-relative node id, as in pytest's report objects.
    pub id: String,
    pub worker: usize,
    pub phases: Vec<PhaseRecord>,
    pub warnings: Vec<WarningRecord>,
    /// Tries it took (`--retries`): more than one and passed is FLAKY.
    pub tries: usize,
}

impl TestResult {
    /// Passed on a later try (`--retries`).
    pub fn flaky(&self) -> bool {
        self.tries > 1 && !self.phases.iter().any(|p| p.outcome == "failed" && p.wasxfail.is_none())
    }
}

/// What a flaky test shows instead of PASSED, and its `-q` letter.
pub(super) const FLAKY_WORD: &str = "FLAKY";
pub(super) const FLAKY_LETTER: &str = "K";
/// The `-q` letter of a failed try that will be retried (pytest-rerunfailures' R).
pub(super) const RETRY_LETTER: &str = "R";

/// Why a run ended before every test ran, and how pytest words it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stopped {
    /// The `!!! ... !!!` banner: "stopping after 1 failures", "KeyboardInterrupt".
    pub banner: String,
    /// Lines under the banner (where a KeyboardInterrupt was raised).
    pub detail: Vec<String>,
    /// pytest prints the banner after the counts line when `pytest.exit()`
    /// chose an exit code other than "interrupted".
    pub after_counts: bool,
    /// pytest skips its summary sections for exit codes outside 0-2, 4, 5.
    pub sections: bool,
}

impl Stopped {
    /// A stop that pytest reports before its counts line, with sections.
    pub fn plain(banner: impl Into<String>) -> Self {
        Stopped { banner: banner.into(), detail: Vec::new(), after_counts: false, sections: true }
    }
}

/// The title of a test's entry in FAILURES or PASSES: pytest's `head_line`,
/// else what pytest derives from the node id.
pub(super) fn head_line(result: &TestResult, phase: &PhaseRecord) -> String {
    phase.head_line.clone().unwrap_or_else(|| domain_of(&result.nodeid))
}

/// `tests/test_a.py::TestX::test_y[1]` -> `TestX.test_y[1]`, as pytest's head line.
pub fn domain_of(nodeid: &str) -> String {
    match nodeid.split_once("::") {
        Some((_, rest)) => rest.replace("::", "."),
        None => nodeid.to_string(),
    }
}
