//! The wire format between the engine and its Python processes, and
//! between the daemon and its warm zygotes (`warm.rs`).
//!
//! This is the only Rust module that defines the messages Python reads and
//! writes; its Python twin is `pyworker/rpytest_worker/protocol.py` (and
//! `warm.py` for the warm zygote's). A frame is a big-endian u32
//! length followed by one MessagePack map whose `type` key names the message.
//! One enum per direction, serialized with named fields so Python sees plain
//! dicts. A malformed or oversized frame is an error for its connection only.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

mod records;
mod replay;
pub mod warm;

pub use records::*;
pub use replay::*;

/// Bumped whenever a message changes shape; checked in every `hello`.
pub const PROTOCOL_VERSION: u32 = 10;
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
    /// Worker: it starts test `index` now (the engine's silence watch: see
    /// `supervise::silence`).
    Started {
        index: usize,
    },
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
    /// Zygote: `pytest_configure_node` ran for spawned worker `worker`;
    /// `path` holds its `workerinput` and the zygote's collection order.
    NodeConfigured {
        worker: usize,
        path: String,
    },
    /// Zygote: the shared session fixtures are torn down; `phases` holds a
    /// failure, reported as the teardown of the test `TeardownShared` named.
    SharedTeardownDone {
        phases: Vec<PhaseRecord>,
    },
    /// Zygote: what plugins' `pytest_terminal_summary` hooks wrote.
    TerminalSummary {
        text: String,
    },
    /// Zygote: pytest ended the session with `exit_code`; `warnings`: those
    /// it recorded after `collected` (its cache plugin's at session end).
    SessionEnded {
        exit_code: i32,
        warnings: Vec<WarningRecord>,
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
    /// Zygote: worker number `worker` of `count` is about to be spawned:
    /// run the controller's `pytest_configure_node` for it (`node_configured`).
    ConfigureNode {
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
pub(crate) mod golden;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
