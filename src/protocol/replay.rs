//! What the engine sends back to the zygote at the end of a run: every
//! test's reports (and failed tries), replayed into pytest's session so
//! junitxml and plugins see the whole run.

use serde::Serialize;

use super::{ItemReportBase, PhaseRecord, ToPython};

/// A test's reports as the zygote replays them at the end; `crash` when its worker died.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayEntry {
    pub index: usize,
    pub phases: Vec<PhaseRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crash: Option<String>,
    /// The crash's whole failure text (the cause, then the worker's fault log).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crash_text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub junit: Option<rmpv::Value>,
    /// Processes the test left running, one line each (a junit property).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub leaks: Vec<String>,
    /// `--retries`: the earlier tries that failed, oldest first; junit
    /// shows them as `flakyFailure` (the test then passed) or `rerunFailure`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_tries: Vec<FailedTry>,
    /// From the worker's `test_done` (none for a test that never reported).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<ItemReportBase>,
}

/// Roughly how many bytes of reports go in one `Replay` frame.
const REPLAY_CHUNK: usize = 32 * 1024 * 1024;

/// The end of a run for the zygote: its reports in `Replay` chunks, the
/// last one in `Finish`, so a run with huge outputs never makes one frame
/// larger than the limit.
pub fn finish_messages(entries: Vec<ReplayEntry>, exitstatus: i32) -> Vec<ToPython> {
    let mut messages = Vec::new();
    let mut chunk = Vec::new();
    let mut size = 0;
    for entry in entries {
        let entry_size = entry.approx_size();
        if !chunk.is_empty() && size + entry_size > REPLAY_CHUNK {
            messages.push(ToPython::Replay { entries: std::mem::take(&mut chunk) });
            size = 0;
        }
        size += entry_size;
        chunk.push(entry);
    }
    messages.push(ToPython::Finish { entries: chunk, exitstatus });
    messages
}

impl ReplayEntry {
    /// An estimate of its encoded size, generous for pytest's serialized report.
    fn approx_size(&self) -> usize {
        let phase_size = |p: &PhaseRecord| {
            let text = p.sections.iter().map(|(name, text)| name.len() + text.len()).sum::<usize>();
            let full = p.full.as_ref().map_or(0, |_| 4096 + 4 * p.longrepr.as_ref().map_or(0, String::len));
            256 + text + full
        };
        let tries = self.failed_tries.iter().map(|t| t.message.len() + t.text.len() + t.stdout.len() + t.stderr.len());
        let own = self.crash_text.as_ref().map_or(0, String::len) + self.leaks.iter().map(String::len).sum::<usize>();
        let item = self
            .item
            .as_ref()
            .map_or(0, |i| 64 + i.location.0.len() + i.keywords.iter().map(String::len).sum::<usize>());
        64 + own + item + self.phases.iter().map(phase_size).sum::<usize>() + tries.sum::<usize>()
    }
}

/// One failed try of a retried test, as a junit consumer wants it.
#[derive(Debug, Clone, Serialize)]
pub struct FailedTry {
    /// The crash message (junit's `message` attribute).
    pub message: String,
    /// The formatted failure.
    pub text: String,
    pub stdout: String,
    pub stderr: String,
}

impl FailedTry {
    /// From the phases of a try; the first failed phase is the failure,
    /// and its sections hold what the try captured up to then.
    pub fn from_phases(phases: &[PhaseRecord]) -> Self {
        let failed = phases.iter().find(|p| p.outcome == "failed");
        let captured = |stream: &str| -> String {
            let sections = failed.iter().flat_map(|p| p.sections.iter());
            sections.filter(|(name, _)| name.contains(stream)).map(|(_, text)| text.as_str()).collect()
        };
        FailedTry {
            message: failed.and_then(|p| p.crash.clone()).unwrap_or_default(),
            text: failed.and_then(|p| p.longrepr.clone()).unwrap_or_default(),
            stdout: captured("stdout"),
            stderr: captured("stderr"),
        }
    }
}
