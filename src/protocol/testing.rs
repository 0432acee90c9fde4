//! Protocol records for unit tests elsewhere (the run state, the
//! terminal): built from what Python sends, with every required field.

use serde_json::{json, Value};

use super::Inventory;

/// An inventory of `tests` tests, `t.py::t0` on; `extra` overrides fields
/// (`maxfail`, `shared_fixtures`, ...).
pub(crate) fn inventory(tests: usize, extra: Value) -> Inventory {
    let items: Vec<Value> = (0..tests)
        .map(|i| json!({"id": format!("t.py::t{i}"), "shown": format!("t.py::t{i}"), "group": null, "timeout": null}))
        .collect();
    let mut fields = json!({
        "items": items, "deselected": 0, "unaffected": 0, "inventory": "hash", "basetemp": "/tmp/b", "testrunuid": "u",
        "collect_reports": [], "warnings": [], "rootdir": "/r", "terminal": true, "reportchars": "fE",
        "verbosity": 0, "tbstyle": "auto", "summary_untrimmed": false, "no_summary": false,
        "fold_skipped": true, "xfail_tb": false, "instafail": false, "show_capture": "all", "capture": "fd", "collect_failed": 0,
        "durations_min": 0.005, "durations_hint": false, "pytest_version": [8, 3],
        // Required even when empty: Python always sends them (protocol::golden).
        "junitxml": null, "max_warnings": null, "maxfail": 0, "numprocesses": null, "durations": null,
        "dist": null, "shared_fixtures": [], "threads": [], "holders": null, "timeout_plugin": null,
        "timeout_plugin_active": false,
    });
    fields.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    serde_json::from_value(fields).unwrap()
}
