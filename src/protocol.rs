//! The wire format between the engine and its Python processes.
//!
//! This is the only Rust module that knows how bytes travel; its Python twin
//! is `pyworker/rpytest_worker/protocol.py`. A frame is a big-endian u32
//! length followed by one MessagePack map whose `type` key names the message.
//! One enum per direction, serialized with named fields so Python sees plain
//! dicts. A malformed or oversized frame is an error for its connection only.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bumped whenever a message changes shape; checked in every `hello`.
pub const PROTOCOL_VERSION: u32 = 4;
/// Large enough for a test that prints megabytes, small enough to refuse garbage.
pub const MAX_FRAME: usize = 256 * 1024 * 1024;

/// Messages from the zygote and the workers.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromPython {
    Hello(Hello),
    /// Zygote, while collecting with sharding on: which of these to keep?
    ShardRequest {
        ids: Vec<String>,
    },
    Collected(Box<Inventory>),
    Ready,
    TestDone(TestDone),
    /// A test raised KeyboardInterrupt or `pytest.exit()`: the session ends.
    Interrupted(Interruption),
    /// The worker's session set `shouldfail` (-x, --maxfail) or, with
    /// `interrupted`, `shouldstop` (--sw, a plugin).
    StopRequested {
        reason: String,
        interrupted: bool,
    },
    /// Worker, before `finished`: processes its tests left running after
    /// every fixture was torn down (it then killed them).
    Leaked {
        leaks: Vec<Leak>,
    },
    /// The worker's session ended; `workeroutput`: its `config.workeroutput`
    /// (what xdist-aware plugins left for the controller), MessagePack-packed
    /// by the worker and carried to the zygote unread; None when empty.
    Finished {
        workeroutput: Option<rmpv::Value>,
    },
    /// Zygote: it forked worker `worker` as process `pid`.
    WorkerForked {
        worker: usize,
        pid: u32,
    },
    WorkerExited(WorkerExit),
    /// Zygote: the shared session fixtures are torn down; `phases` holds a
    /// failure, reported as the teardown of the test `TeardownShared` named.
    SharedTeardownDone {
        phases: Vec<PhaseRecord>,
    },
    /// Zygote: what plugins' `pytest_terminal_summary` hooks wrote.
    TerminalSummary {
        text: String,
    },
    SessionEnded {
        exit_code: i32,
    },
    InternalError {
        message: String,
    },
}

/// Messages to the zygote and the workers.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToPython {
    /// Zygote: fork worker number `worker` of `count`.
    Fork {
        worker: usize,
        count: usize,
    },
    /// Worker: more tests, as indices into the inventory.
    Run {
        indices: Vec<usize>,
    },
    /// Worker: run what you hold (the last with `nextitem=None`), then finish.
    NoMore,
    /// Worker: start nothing more (the run is stopping), then finish.
    Stop,
    /// Zygote: keep these indices of the `shard_request` ids (deselect the
    /// rest, as pytest-split does) and print `line` in the header.
    ShardPlan {
        keep: Vec<usize>,
        line: String,
    },
    /// Zygote: reports to replay at `Finish`, in this order. A run's reports
    /// go in chunks (see `finish_messages`), each far below the frame limit.
    Replay {
        entries: Vec<ReplayEntry>,
    },
    /// Zygote: a worker process ended, for `pytest_testnodedown`: with its
    /// `workeroutput` when it finished, with `error` when it was lost.
    NodeDown {
        worker: usize,
        workeroutput: Option<rmpv::Value>,
        error: Option<String>,
    },
    /// Zygote: the last chunk of reports; replay them all into your session
    /// and let pytest finish it (`session_ended`, then exit).
    Finish {
        entries: Vec<ReplayEntry>,
        exitstatus: i32,
    },
    /// Zygote: every worker is done; tear down the shared session fixtures
    /// (a failure is reported on test `index`, the last one run).
    TeardownShared {
        index: Option<usize>,
    },
    Shutdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Zygote,
    Worker,
}

#[derive(Debug, Deserialize)]
pub struct Hello {
    pub protocol: u32,
    pub role: Role,
    pub pid: u32,
    pub worker: Option<usize>,
    pub inventory: Option<String>,
}

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
    /// `--max-warnings` / `max_warnings` (pytest>=9.1): exit 6 past it.
    #[serde(deserialize_with = "required")]
    pub max_warnings: Option<usize>,
    /// `--show-capture`: which captured sections the closing text shows.
    pub show_capture: String,
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
}

/// One phase (setup, call, teardown) as the worker's pytest saw it.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct PhaseRecord {
    pub when: String,
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
        64 + own + self.phases.iter().map(phase_size).sum::<usize>() + tries.sum::<usize>()
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

#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame of {0} bytes exceeds the {MAX_FRAME}-byte limit")]
    Oversized(usize),
    #[error("malformed message: {0}")]
    Malformed(#[from] rmp_serde::decode::Error),
    #[error("could not encode message: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
}

/// Reads one message; `Ok(None)` at a clean end of stream.
pub async fn read_message<R: AsyncRead + Unpin>(reader: &mut R) -> Result<Option<FromPython>, ProtocolError> {
    let mut len = [0u8; 4];
    match reader.read_exact(&mut len).await {
        Ok(_) => {}
        // A reset is how a peer that exits with our last frame unread
        // (a worker told to stop) closes: an ending, not a broken frame.
        Err(e) if matches!(e.kind(), std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset) => {
            return Ok(None)
        }
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(ProtocolError::Oversized(len));
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).await?;
    Ok(Some(decode(&body)?))
}

pub fn decode(body: &[u8]) -> Result<FromPython, rmp_serde::decode::Error> {
    let mut message = rmp_serde::from_slice(body)?;
    match &mut message {
        FromPython::TestDone(done) => expand_sections(&mut done.phases),
        FromPython::Interrupted(interruption) => expand_sections(&mut interruption.phases),
        _ => {}
    }
    Ok(message)
}

/// pytest's reports accumulate captured output: the teardown report repeats
/// what setup and call captured. The worker sends each section once and
/// says how many of the previous phase's sections come first.
fn expand_sections(phases: &mut [PhaseRecord]) {
    for i in 1..phases.len() {
        let n = std::mem::take(&mut phases[i].sections_from_previous);
        let earlier: Vec<(String, String)> = phases[i - 1].sections.iter().take(n).cloned().collect();
        phases[i].sections.splice(0..0, earlier);
    }
}

/// One frame: length prefix and a named-field MessagePack map.
pub fn encode(message: &ToPython) -> Result<Vec<u8>, ProtocolError> {
    let body = rmp_serde::to_vec_named(message)?;
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

pub async fn write_message<W: AsyncWrite + Unpin>(writer: &mut W, message: &ToPython) -> Result<(), ProtocolError> {
    writer.write_all(&encode(message)?).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_speaks_the_same_protocol_version() {
        let python = include_str!("../pyworker/rpytest_worker/protocol.py");
        let line = format!("\nPROTOCOL_VERSION = {PROTOCOL_VERSION}\n");
        assert!(python.contains(&line), "pyworker/rpytest_worker/protocol.py must say{line}");
    }

    #[test]
    fn unit_messages_are_maps_with_a_type() {
        let frame = encode(&ToPython::NoMore).unwrap();
        let value: rmpv::Value = rmp_serde::from_slice(&frame[4..]).unwrap();
        assert_eq!(value["type"].as_str(), Some("no_more"));
    }

    #[test]
    fn decodes_a_python_style_map() {
        let body = rmp_serde::to_vec_named(&serde_json::json!({"type": "ready"})).unwrap();
        assert!(matches!(decode(&body).unwrap(), FromPython::Ready));
    }

    #[test]
    fn garbage_is_a_malformed_error_not_a_panic() {
        assert!(decode(&[0xc1, 0x00, 0xff]).is_err());
        let not_tagged = rmp_serde::to_vec_named(&serde_json::json!({"kind": 1})).unwrap();
        assert!(decode(&not_tagged).is_err());
    }

    fn entry_with_output(index: usize, bytes: usize) -> ReplayEntry {
        let phase = PhaseRecord {
            when: "call".into(),
            outcome: "passed".into(),
            category: "passed".into(),
            letter: ".".into(),
            word: "PASSED".into(),
            duration: 0.0,
            full: Some(rmpv::Value::Map(Vec::new())),
            sections: vec![("Captured stdout call".into(), "x".repeat(bytes))],
            sections_from_previous: 0,
            wasxfail: None,
            longrepr: None,
            crash: None,
            crash_line: None,
            head_line: None,
            skip: None,
        };
        ReplayEntry {
            index,
            phases: vec![phase],
            crash: None,
            crash_text: None,
            junit: None,
            failed_tries: Vec::new(),
            leaks: Vec::new(),
        }
    }

    #[test]
    fn a_runs_reports_go_back_in_frames_far_below_the_limit() {
        let entries: Vec<ReplayEntry> = (0..12).map(|i| entry_with_output(i, 10 * 1024 * 1024)).collect();
        let messages = finish_messages(entries, 0);
        assert!(messages.len() > 1, "120 MiB of output in one frame");
        assert!(matches!(messages.last(), Some(ToPython::Finish { exitstatus: 0, .. })));
        let mut replayed = Vec::new();
        for message in &messages {
            let frame = encode(message).unwrap();
            assert!(frame.len() < MAX_FRAME / 4, "a frame of {} bytes", frame.len());
            let value: rmpv::Value = rmp_serde::from_slice(&frame[4..]).unwrap();
            let entries = value["entries"].as_array().unwrap();
            replayed.extend(entries.iter().map(|e| e["index"].as_u64().unwrap()));
            // The output travels once, beside pytest's report.
            assert!(entries.iter().all(|e| e["phases"][0]["sections"].as_array().is_some()));
        }
        assert_eq!(replayed, (0..12).collect::<Vec<u64>>(), "every report, once, in order");
    }

    #[test]
    fn a_small_runs_reports_are_all_in_finish() {
        let messages = finish_messages((0..500).map(|i| entry_with_output(i, 10)).collect(), 1);
        assert!(matches!(&messages[..], [ToPython::Finish { entries, exitstatus: 1 }] if entries.len() == 500));
    }

    #[test]
    fn a_phase_gets_back_the_sections_its_worker_sent_once() {
        let phase = |when: &str, sections: serde_json::Value, earlier: usize| {
            serde_json::json!({"when": when, "outcome": "passed", "category": "passed", "letter": ".",
                               "word": "PASSED", "duration": 0.0, "sections": sections,
                               "sections_from_previous": earlier})
        };
        let message = serde_json::json!({"type": "test_done", "index": 0, "warnings": [], "max_rss_kb": null, "phases": [
            phase("setup", serde_json::json!([["Captured stdout setup", "a"]]), 0),
            phase("call", serde_json::json!([["Captured stdout call", "b"]]), 1),
            phase("teardown", serde_json::json!([]), 2),
        ]});
        let Ok(FromPython::TestDone(done)) = decode(&rmp_serde::to_vec_named(&message).unwrap()) else { panic!() };
        let names = |i: usize| done.phases[i].sections.iter().map(|(n, t)| format!("{n}={t}")).collect::<Vec<_>>();
        assert_eq!(names(1), ["Captured stdout setup=a", "Captured stdout call=b"]);
        assert_eq!(names(2), ["Captured stdout setup=a", "Captured stdout call=b"]);
    }

    #[tokio::test]
    async fn oversized_frames_are_refused_before_allocation() {
        let mut data: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        let err = read_message(&mut data).await.unwrap_err();
        assert!(matches!(err, ProtocolError::Oversized(_)));
    }
}
