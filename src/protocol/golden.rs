//! The golden protocol test: Python writes one sample of every message it
//! sends, built with its real constructors (`python -m
//! rpytest_worker.protocol samples`), and this side decodes them all.
//! A field renamed on either side fails here (the fields are required),
//! and so does a message added to one side only: the exhaustive match in
//! `kind` must name every variant, and every variant must be sampled.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use super::{decode, FromPython, PROTOCOL_VERSION};

fn kind(message: &FromPython) -> &'static str {
    match message {
        FromPython::Hello(_) => "hello",
        FromPython::ShardRequest { .. } => "shard_request",
        FromPython::Collected(_) => "collected",
        FromPython::Ready => "ready",
        FromPython::Started { .. } => "started",
        FromPython::TestDone(_) => "test_done",
        FromPython::Interrupted(_) => "interrupted",
        FromPython::StopRequested { .. } => "stop_requested",
        FromPython::Leaked { .. } => "leaked",
        FromPython::Finished { .. } => "finished",
        FromPython::WorkerForked { .. } => "worker_forked",
        FromPython::WorkerExited(_) => "worker_exited",
        FromPython::NodeConfigured { .. } => "node_configured",
        FromPython::SharedTeardownDone { .. } => "shared_teardown_done",
        FromPython::TerminalSummary { .. } => "terminal_summary",
        FromPython::SessionEnded { .. } => "session_ended",
        FromPython::InternalError { .. } => "internal_error",
    }
}

const EVERY_KIND: [&str; 17] = [
    "hello",
    "shard_request",
    "collected",
    "ready",
    "started",
    "test_done",
    "interrupted",
    "stop_requested",
    "leaked",
    "finished",
    "worker_forked",
    "worker_exited",
    "node_configured",
    "shared_teardown_done",
    "terminal_summary",
    "session_ended",
    "internal_error",
];

/// The frames Python writes for `which` (`samples`, `daemon-samples`).
fn python_frames(which: &str) -> Vec<Vec<u8>> {
    let python = std::env::var("RPYTEST_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = tempfile::NamedTempFile::new().unwrap();
    let package = Path::new(env!("CARGO_MANIFEST_DIR")).join("pyworker");
    let status = Command::new(python)
        .args(["-m", "rpytest_worker.protocol", which])
        .arg(out.path())
        .env("PYTHONPATH", &package)
        .status()
        .expect("run the test Python");
    assert!(status.success(), "python -m rpytest_worker.protocol {which} failed");
    split_frames(&std::fs::read(out.path()).unwrap())
}

fn split_frames(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    while data.len() >= 4 {
        let len = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
        frames.push(data[4..4 + len].to_vec());
        data = &data[4 + len..];
    }
    assert!(data.is_empty(), "a truncated frame at the end");
    frames
}

#[test]
fn rust_decodes_every_message_python_sends() {
    let mut seen = BTreeSet::new();
    for frame in python_frames("samples") {
        let message = decode(&frame).unwrap_or_else(|e| {
            let value: rmpv::Value = rmp_serde::from_slice(&frame).unwrap();
            panic!("Rust cannot decode what Python sends ({e}):\n{value}")
        });
        if let FromPython::Hello(hello) = &message {
            assert_eq!(hello.protocol, PROTOCOL_VERSION, "the two sides' protocol versions differ");
        }
        seen.insert(kind(&message));
    }
    let missing: Vec<&str> = EVERY_KIND.iter().copied().filter(|k| !seen.contains(k)).collect();
    assert!(missing.is_empty(), "protocol.samples() has no sample of {missing:?}");
}

/// The warm zygote's messages to the daemon, as Python writes them.
#[test]
fn the_daemon_decodes_every_message_a_warm_zygote_sends() {
    use super::warm::FromWarmZygote;
    let frames = python_frames("daemon-samples");
    let kinds: Vec<&str> = frames
        .iter()
        .map(|frame| match rmp_serde::from_slice::<FromWarmZygote>(frame) {
            Ok(FromWarmZygote::Warm { .. }) => "warm",
            Ok(FromWarmZygote::Verdict { .. }) => "verdict",
            Ok(FromWarmZygote::Taken { .. }) => "taken",
            Ok(FromWarmZygote::Ended { .. }) => "ended",
            Ok(FromWarmZygote::Refreshed { .. }) => "refreshed",
            Ok(FromWarmZygote::Stale { .. }) => "stale",
            Err(e) => panic!("the daemon cannot decode a warm zygote's message: {e}"),
        })
        .collect();
    assert_eq!(kinds, ["warm", "verdict", "verdict", "taken", "ended", "ended", "refreshed", "stale"]);
}

#[test]
fn a_renamed_field_fails_to_decode() {
    // The check above is only worth something if a rename cannot pass.
    let frames = python_frames("samples");
    let collected = frames.iter().find(|f| matches!(decode(f), Ok(FromPython::Collected(_)))).unwrap();
    let rmpv::Value::Map(mut map) = rmp_serde::from_slice(collected).unwrap() else { panic!("not a map") };
    let same = rmp_serde::to_vec(&rmpv::Value::Map(map.clone())).unwrap();
    assert!(decode(&same).is_ok(), "re-encoding alone must not break the message");
    let entry = map.iter_mut().find(|(k, _)| k.as_str() == Some("numprocesses")).unwrap();
    entry.0 = rmpv::Value::from("num_processes");
    let renamed = rmp_serde::to_vec(&rmpv::Value::Map(map)).unwrap();
    assert!(decode(&renamed).is_err(), "a renamed required field decoded anyway");
}
