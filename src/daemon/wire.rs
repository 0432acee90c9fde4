//! The client <-> daemon protocol, versioned apart from engine <-> Python.
//!
//! Frames are framed as everywhere in rpytest (u32 big-endian length, one
//! MessagePack map with a `type` key), but small: a request larger than
//! `MAX_REQUEST` is refused before it is read. Every request carries
//! `DAEMON_PROTOCOL_VERSION` and the client's build id; the daemon checks
//! both before it looks at anything else, so an old client or daemon gets a
//! clear error reply instead of a misread.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::key::RunKey;

/// Bumped whenever a client <-> daemon message changes shape.
/// 2: `exit_status` requests and `exited` replies; `warm` says how many
/// other handed-over runs still run.
/// 3: a run's stdout and stderr travel only after the daemon answered
/// `accepted`, in a `streams` frame of their own.
/// 4: keys leave the selection out; runs carry their whole command line,
/// prewarms the arguments to build with; `declined` replies.
pub const DAEMON_PROTOCOL_VERSION: u32 = 4;
/// Requests carry an environment and arguments: generous, but bounded.
pub const MAX_REQUEST: usize = 1024 * 1024;
/// Replies (a status with many zygotes) stay well below this.
pub const MAX_REPLY: usize = 4 * 1024 * 1024;

/// This binary's identity: a daemon serves only clients built alongside it
/// (same version, same embedded Python half).
pub fn build_id() -> String {
    format!("{}+{}", env!("CARGO_PKG_VERSION"), crate::python::embed::content_hash())
}

/// What every request starts with; read before the request itself.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    #[serde(rename = "type")]
    pub kind: String,
    pub protocol: u32,
    pub build: String,
}

impl Envelope {
    /// `status` and `stop` work across builds, so a new client can see
    /// and stop an old daemon; runs need the very same build.
    pub fn needs_same_build(&self) -> bool {
        !matches!(self.kind.as_str(), "status" | "stop")
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Take a warm zygote for this key; the zygote connects to
    /// `engine_socket`. A run is a short conversation, so that the daemon
    /// never holds the client's output unless the client is there to use
    /// it: the daemon answers `accepted` (it has a warm zygote for the key)
    /// or why not; only then does the client send `RunStep::Streams` with
    /// its stdout and stderr attached (SCM_RIGHTS), and the daemon answers
    /// `warm` once the zygote took them. A client that gave up waiting has
    /// closed the connection: the daemon sees that and runs nothing.
    Run {
        protocol: u32,
        build: String,
        key: RunKey,
        /// pytest's whole command line: the key's arguments and the selection.
        args: Vec<String>,
        engine_socket: PathBuf,
    },
    /// Have a warm session ready for this key next time, built with
    /// `build_args`; `replace`: the one there declined this client's run.
    Prewarm {
        protocol: u32,
        build: String,
        key: RunKey,
        build_args: Vec<String>,
        replace: bool,
    },
    /// How a zygote this daemon handed to the client's run exited (the
    /// client cannot wait for it: it is the daemon's child).
    ExitStatus {
        protocol: u32,
        build: String,
        pid: u32,
    },
    Status {
        protocol: u32,
        build: String,
    },
    Stop {
        protocol: u32,
        build: String,
    },
}

impl Request {
    pub fn run(key: RunKey, args: Vec<String>, engine_socket: PathBuf) -> Request {
        Request::Run { protocol: DAEMON_PROTOCOL_VERSION, build: build_id(), key, args, engine_socket }
    }

    pub fn prewarm(key: RunKey, build_args: Vec<String>, replace: bool) -> Request {
        Request::Prewarm { protocol: DAEMON_PROTOCOL_VERSION, build: build_id(), key, build_args, replace }
    }

    pub fn exit_status(pid: u32) -> Request {
        Request::ExitStatus { protocol: DAEMON_PROTOCOL_VERSION, build: build_id(), pid }
    }

    pub fn status() -> Request {
        Request::Status { protocol: DAEMON_PROTOCOL_VERSION, build: build_id() }
    }

    pub fn stop() -> Request {
        Request::Stop { protocol: DAEMON_PROTOCOL_VERSION, build: build_id() }
    }
}

/// The client's second frame of a run, sent once the daemon accepted it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RunStep {
    /// Carries the client's stdout and stderr as SCM_RIGHTS.
    Streams,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    /// A zygote took the run: it is connecting to the client's engine.
    /// `runs_beside`: other handed-over runs whose zygotes still run.
    Warm {
        pid: u32,
        runs_beside: u32,
        /// The test files the session re-collected for this run (edited).
        #[serde(default)]
        recollected: Vec<PathBuf>,
        /// Why the session was built again before this run (it was stale).
        #[serde(default)]
        rebuilt: Option<String>,
    },
    /// No warm zygote for this run, and why; run embedded.
    Cold {
        reason: String,
    },
    Ok,
    Status(StatusReport),
    Error {
        message: String,
    },
    /// A handed-over zygote's exit code, or the signal that killed it. Last,
    /// so the older variants keep their indices (rmp_serde also accepts a
    /// variant given by index).
    Exited {
        code: Option<i32>,
        signal: Option<i32>,
    },
    /// The daemon has a warm zygote for the run: send `RunStep::Streams`.
    Accepted,
    /// The warm session for the key cannot give this run what a cold run
    /// would (a path it did not collect, an option its parse disagrees
    /// on), and why; run embedded, then ask for one built for this run.
    Declined {
        reason: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusReport {
    pub pid: u32,
    pub build: String,
    pub uptime_secs: u64,
    pub idle_timeout_secs: u64,
    pub socket: PathBuf,
    pub zygotes: Vec<ZygoteStatus>,
    /// Memory in bytes (PSS; an older daemon's: RSS): the daemon
    /// ("daemon"), the warm sessions it holds ("zygotes"), both ("total").
    pub memory: BTreeMap<String, u64>,
    // The fields below came after protocol 4 without a bump (status works
    // across builds): an older daemon's reply lacks them and still decodes.
    /// `daemon_max_memory` in bytes; None: no cap but the count.
    #[serde(default)]
    pub max_memory: Option<u64>,
    /// The latest warm sessions ended to make room, the latest last.
    #[serde(default)]
    pub evictions: Vec<EvictionStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ZygoteStatus {
    pub project: PathBuf,
    pub args: Vec<String>,
    pub state: String,
    pub pid: Option<u32>,
    /// Bytes, None when it has no process (or an older daemon).
    #[serde(default)]
    pub pss: Option<u64>,
    #[serde(default)]
    pub rss: Option<u64>,
    /// `pss` is the RSS: the process's smaps_rollup could not be read.
    #[serde(default)]
    pub pss_is_rss: bool,
    /// The command line of the last run it served.
    #[serde(default)]
    pub last_run_args: Option<Vec<String>>,
    /// Seconds since a run last used it (or asked for it).
    #[serde(default)]
    pub idle_secs: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvictionStatus {
    pub project: PathBuf,
    /// The arguments its session was built with.
    pub args: Vec<String>,
    /// Its PSS in bytes when it was ended.
    pub pss: u64,
    pub secs_ago: u64,
    pub reason: String,
}

/// Why a frame could not be read or used.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("frame of {0} bytes exceeds the {1}-byte limit")]
    TooLarge(usize, usize),
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error("not a valid message: {0}")]
    Malformed(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// One frame's bytes: length prefix and body.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    let body = rmp_serde::to_vec_named(message).expect("protocol messages always encode");
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

/// The declared body length of a frame whose first four bytes are `header`.
pub fn body_len(header: [u8; 4], limit: usize) -> Result<usize, WireError> {
    let len = u32::from_be_bytes(header) as usize;
    if len > limit {
        return Err(WireError::TooLarge(len, limit));
    }
    Ok(len)
}

pub fn decode<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, WireError> {
    rmp_serde::from_slice(body).map_err(|e| WireError::Malformed(e.to_string()))
}

/// Reads one frame from a blocking stream (the client side).
pub fn read_blocking<T: for<'a> Deserialize<'a>>(
    stream: &mut impl std::io::Read,
    limit: usize,
) -> Result<T, WireError> {
    let mut header = [0u8; 4];
    read_exact(stream, &mut header)?;
    let mut body = vec![0u8; body_len(header, limit)?];
    read_exact(stream, &mut body)?;
    decode(&body)
}

fn read_exact(stream: &mut impl std::io::Read, buf: &mut [u8]) -> Result<(), WireError> {
    stream.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => WireError::Truncated,
        _ => WireError::Io(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_expose_their_envelope() {
        let frame = encode(&Request::status());
        let body = &frame[4..];
        let envelope: Envelope = decode(body).unwrap();
        assert_eq!((envelope.protocol, envelope.build), (DAEMON_PROTOCOL_VERSION, build_id()));
        assert!(matches!(decode::<Request>(body).unwrap(), Request::Status { .. }));
    }

    #[test]
    fn exit_status_requests_and_replies_round_trip() {
        let frame = encode(&Request::exit_status(42));
        assert!(matches!(decode::<Request>(&frame[4..]).unwrap(), Request::ExitStatus { pid: 42, .. }));
        let frame = encode(&Reply::Exited { code: Some(7), signal: None });
        assert!(matches!(decode::<Reply>(&frame[4..]).unwrap(), Reply::Exited { code: Some(7), signal: None }));
    }

    #[test]
    fn a_run_step_and_its_acceptance_round_trip() {
        let frame = encode(&RunStep::Streams);
        assert!(matches!(decode::<RunStep>(&frame[4..]).unwrap(), RunStep::Streams));
        let frame = encode(&Reply::Accepted);
        assert!(matches!(decode::<Reply>(&frame[4..]).unwrap(), Reply::Accepted));
        assert!(decode::<RunStep>(&encode(&Reply::Ok)[4..]).is_err());
    }

    /// Protocol 4 daemons built before `daemon_max_memory` send none of
    /// the memory fields; their status still reads.
    #[test]
    fn an_older_daemons_status_decodes() {
        #[derive(Serialize)]
        struct OldZygote {
            project: PathBuf,
            args: Vec<String>,
            state: String,
            pid: Option<u32>,
        }
        #[derive(Serialize)]
        struct OldStatus {
            pid: u32,
            build: String,
            uptime_secs: u64,
            idle_timeout_secs: u64,
            socket: PathBuf,
            zygotes: Vec<OldZygote>,
            memory: BTreeMap<String, u64>,
        }
        #[derive(Serialize)]
        #[serde(tag = "type", rename_all = "snake_case")]
        enum OldReply {
            Status(OldStatus),
        }
        let zygote = OldZygote { project: "/p".into(), args: vec!["-q".into()], state: "warm".into(), pid: Some(7) };
        let old = OldReply::Status(OldStatus {
            pid: 1,
            build: "0.0.1+old".into(),
            uptime_secs: 3,
            idle_timeout_secs: 60,
            socket: "/s".into(),
            zygotes: vec![zygote],
            memory: BTreeMap::from([("total".to_string(), 5)]),
        });
        let Reply::Status(report) = decode::<Reply>(&encode(&old)[4..]).unwrap() else { panic!("not a status") };
        assert_eq!((report.max_memory, report.evictions.len()), (None, 0));
        assert_eq!(
            (report.zygotes[0].pid, report.zygotes[0].pss, report.zygotes[0].last_run_args.clone()),
            (Some(7), None, None)
        );
    }

    #[test]
    fn oversized_and_truncated_frames_are_errors() {
        assert!(matches!(body_len([0xff; 4], MAX_REQUEST), Err(WireError::TooLarge(..))));
        let frame = encode(&Reply::Ok);
        let mut short = &frame[..frame.len() - 1];
        assert!(matches!(read_blocking::<Reply>(&mut short, MAX_REPLY), Err(WireError::Truncated)));
        assert!(matches!(decode::<Reply>(b"\x93\x01\x02\x03"), Err(WireError::Malformed(_))));
    }
}
