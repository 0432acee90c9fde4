//! Unit tests of the wire format: framing, limits, decoding.

use super::*;

#[test]
fn python_speaks_the_same_protocol_version() {
    let python = include_str!("../../pyworker/rpytest_worker/protocol.py");
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
        item: None,
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
    let message = serde_json::json!({"type": "test_done", "index": 0, "warnings": [], "max_rss_kb": null, "item": null, "phases": [
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
