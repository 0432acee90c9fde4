//! The records inside the messages from Python: the collected inventory,
//! a finished test's phases, a worker's exit, leaks, warnings. Every field
//! Python always sends is required, so a renamed key fails loudly.

use serde::{Deserialize, Serialize};

/// An `Option` field Python always sends (as nil when it has no value):
/// without this, serde would take a missing or renamed key for `None`.
fn required<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)
}

/// What the zygote collected, and the settings the reporter needs from
/// pytest. Every field is required: a key renamed on either side fails
/// the run loudly (and the golden protocol test), never defaults.
#[derive(Debug, Deserialize)]
pub struct Inventory {
    pub items: Vec<CollectedItem>,
    pub deselected: usize,
    /// Of the deselected, how many `--affected` left out as unaffected.
    pub unaffected: usize,
    pub inventory: String,
    pub basetemp: String,
    pub testrunuid: String,
    pub collect_reports: Vec<CollectReport>,
    pub warnings: Vec<WarningRecord>,
    pub rootdir: String,
    /// False with `-p no:terminal`: pytest would print nothing, so do we.
    pub terminal: bool,
    pub reportchars: String,
    #[serde(deserialize_with = "required")]
    pub junitxml: Option<String>,
    pub verbosity: i32,
    pub tbstyle: String,
    /// The short summary shows whole crash messages (CI, `-vv`; pytest's rule
    /// for its version, `--force-short-summary` included).
    pub summary_untrimmed: bool,
    pub no_summary: bool,
    /// False with `--no-fold-skipped`: one short-summary line per skip.
    pub fold_skipped: bool,
    /// `--xfail-tb`: an XFAILURES section with the xfails' tracebacks.
    pub xfail_tb: bool,
    /// pytest-instafail's `--instafail`: each failure's text right after its
    /// progress line, and no FAILURES or ERRORS section.
    pub instafail: bool,
    /// `--max-warnings` / `max_warnings` (pytest>=9.1): exit 6 past it.
    #[serde(deserialize_with = "required")]
    pub max_warnings: Option<usize>,
    /// `--show-capture`: which captured sections the closing text shows.
    pub show_capture: String,
    /// `--capture` (`-s` is "no"): then tests write to the terminal
    /// themselves, between the progress characters.
    pub capture: String,
    /// Collection errors pytest already counted (`--continue-on-collection-errors`).
    pub collect_failed: usize,
    /// pytest's `--maxfail` (`-x` is 1); 0 means no limit.
    pub maxfail: usize,
    /// An `-n` found in pytest's addopts (ini file or PYTEST_ADDOPTS).
    #[serde(deserialize_with = "required")]
    pub numprocesses: Option<String>,
    /// `--durations` (0 = all) and the resolved `--durations-min`.
    #[serde(deserialize_with = "required")]
    pub durations: Option<usize>,
    pub durations_min: f64,
    pub durations_hint: bool,
    /// xdist's `--dist` from pytest's own configuration (addopts), if any.
    #[serde(deserialize_with = "required")]
    pub dist: Option<String>,
    /// Session fixtures set up once in the zygote before the fork
    /// (`shared_session_fixtures`); torn down there after the workers.
    pub shared_fixtures: Vec<String>,
    /// Threads alive in the zygote after collection (besides the main one):
    /// forking could inherit a lock one of them holds.
    pub threads: Vec<String>,
    /// After a spread collection (pyworker's spread.py), the worker that
    /// collected each item: its own items are planned for it first.
    #[serde(deserialize_with = "required")]
    pub holders: Option<Vec<usize>>,
    /// pytest's (major, minor): the reporter follows that version's wording.
    pub pytest_version: (u32, u32),
    /// pytest-timeout's global limit (its `--timeout`, `PYTEST_TIMEOUT`, ini
    /// `timeout`), when the plugin is installed and sets one.
    #[serde(deserialize_with = "required")]
    pub timeout_plugin: Option<f64>,
    /// pytest-timeout is active: it enforces limits inside the workers too.
    pub timeout_plugin_active: bool,
}

/// A collected test. `id` and `group` decide its dispatch unit under
/// `--dist loadscope|loadfile|loadgroup` (see `dist.rs`).
#[derive(Debug, Clone, Deserialize)]
pub struct CollectedItem {
    pub id: String,
    /// The id as pytest shows it: relative to the invocation directory.
    pub shown: String,
    /// The `xdist_group` name (several marks: sorted names joined by `_`,
    /// as xdist does); `None` when unmarked.
    #[serde(deserialize_with = "required")]
    pub group: Option<String>,
    /// Seconds from its `@pytest.mark.timeout(N)`, if it has one (0: none).
    #[serde(deserialize_with = "required")]
    pub timeout: Option<f64>,
}

/// A process a test started that was still running when its worker had
/// torn every fixture down.
#[derive(Debug, Clone, Deserialize)]
pub struct Leak {
    /// The test during which it first appeared.
    pub index: usize,
    pub pid: u32,
    pub cmdline: String,
}

/// A collector that failed or skipped (with `--continue-on-collection-errors`).
#[derive(Debug, Clone, Deserialize)]
pub struct CollectReport {
    pub id: String,
    pub outcome: String,
    pub longrepr: String,
    pub skip: Option<SkipKey>,
}

/// `(path, line, reason)` as pytest folds skips in its short summary.
pub type SkipKey = (String, Option<i64>, String);

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct WarningRecord {
    pub message: String,
    pub location: Option<String>,
    pub when: String,
}

/// The test that ended the session, and what pytest prints about it.
#[derive(Debug, Deserialize)]
pub struct Interruption {
    pub index: usize,
    /// The phases reported before the interruption (usually setup).
    pub phases: Vec<PhaseRecord>,
    pub warnings: Vec<WarningRecord>,
    /// The `!!! ... !!!` banner text, e.g. `KeyboardInterrupt`.
    pub message: String,
    /// Lines under the banner (where a KeyboardInterrupt came from).
    pub detail: Vec<String>,
    /// `pytest.exit(returncode=...)`; None means pytest's "interrupted" (2).
    pub returncode: Option<i32>,
}

/// One finished test: the record of each phase pytest reported.
#[derive(Debug, Deserialize)]
pub struct TestDone {
    pub index: usize,
    pub phases: Vec<PhaseRecord>,
    pub warnings: Vec<WarningRecord>,
    /// junitxml extras recorded outside the reports, replayed in the zygote as is.
    #[serde(default)]
    pub junit: Option<rmpv::Value>,
    /// The worker's peak resident memory so far (getrusage ru_maxrss, KiB).
    #[serde(deserialize_with = "required")]
    pub max_rss_kb: Option<u64>,
    /// What every report of the test shares and the zygote's own item
    /// would compute again for the replay (a fifth of a 60,000-test run's
    /// end): pytest's `location` and the keyword names, as the worker's
    /// last report had them. Passed back as is; None where the engine
    /// makes the record (a crash, an interruption).
    #[serde(deserialize_with = "required")]
    pub item: Option<ItemReportBase>,
}

/// `TestDone::item`: the report fields that come from the item.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ItemReportBase {
    /// `(path, lineno, domain)`, as pytest's `item.location`.
    pub location: (String, Option<u32>, String),
    pub keywords: Vec<String>,
}

/// The phase of a test a report is for. pytest reports only the first
/// three; `Crash` is rpytest's own, for a test whose worker died under it,
/// and never comes over the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum When {
    #[default]
    Setup,
    Call,
    Teardown,
    #[serde(skip_deserializing)]
    Crash,
}

impl When {
    pub fn as_str(self) -> &'static str {
        match self {
            When::Setup => "setup",
            When::Call => "call",
            When::Teardown => "teardown",
            When::Crash => "crash",
        }
    }
}

impl std::fmt::Display for When {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl PartialEq<&str> for When {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<When> for &str {
    fn eq(&self, other: &When) -> bool {
        *self == other.as_str()
    }
}

impl From<&str> for When {
    /// For tests and fixtures: an unknown name is a call.
    fn from(name: &str) -> Self {
        match name {
            "setup" => When::Setup,
            "teardown" => When::Teardown,
            "crash" => When::Crash,
            _ => When::Call,
        }
    }
}

/// One phase (setup, call, teardown) as the worker's pytest saw it.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct PhaseRecord {
    pub when: When,
    /// pytest's outcome: "passed", "failed", "skipped", or what a plugin
    /// sets (pytest-rerunfailures' "rerun"): kept as the text it is.
    pub outcome: String,
    /// `pytest_report_teststatus` category: "passed", "failed", "error", "" ...
    pub category: String,
    pub letter: String,
    pub word: String,
    pub duration: f64,
    /// pytest's own serialized report, for the zygote's replay; absent for plain passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full: Option<rmpv::Value>,
    /// Captured output; travels once (not in `full`), and back for the replay.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sections: Vec<(String, String)>,
    /// On the wire from a worker: `sections` follow this many of the
    /// previous phase's (expanded on decoding).
    #[serde(default, skip_serializing)]
    pub sections_from_previous: usize,
    #[serde(default, skip_serializing)]
    pub wasxfail: Option<String>,
    #[serde(default, skip_serializing)]
    pub longrepr: Option<String>,
    #[serde(default, skip_serializing)]
    pub crash: Option<String>,
    #[serde(default, skip_serializing)]
    pub crash_line: Option<String>,
    #[serde(default, skip_serializing)]
    pub head_line: Option<String>,
    #[serde(default, skip_serializing)]
    pub skip: Option<SkipKey>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorkerExit {
    pub worker: usize,
    pub pid: u32,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
}
