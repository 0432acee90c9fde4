//! The junit XML file when pytest cannot write it.
//!
//! pytest's junitxml writes the file as the session ends in the zygote, from
//! the reports the engine replays there. A run whose zygote died has no
//! session to end, so the file is written here from the same reports, in
//! the shape of pytest's default `xunit2` family: one `testsuite` of
//! `testcase`s, each with a `failure`, `error` or `skipped` child when it
//! did not pass. What only pytest knows is left out: `--junit-prefix`,
//! `junit_suite_name`, captured output and recorded properties.

use std::borrow::Cow;
use std::path::Path;

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;

use crate::protocol::{CollectedItem, Inventory, PhaseRecord, ReplayEntry};

/// How a test did not pass, as junit has it: the element, its `type`,
/// the message and the text.
struct Problem<'a> {
    tag: &'static str,
    kind: Option<&'static str>,
    message: &'a str,
    text: &'a str,
}

impl Problem<'_> {
    /// A lost worker's crash (or a test not run) fails; else the first
    /// failed phase decides (setup and teardown fail as errors, as pytest
    /// has it); else a skip or an xfail.
    fn of(entry: &ReplayEntry) -> Option<Problem<'_>> {
        if let Some(crash) = entry.crash.as_deref() {
            let text = entry.crash_text.as_deref().unwrap_or(crash);
            return Some(Problem { tag: "failure", kind: None, message: crash, text });
        }
        if let Some(p) = entry.phases.iter().find(|p| p.outcome == "failed" && p.wasxfail.is_none()) {
            let tag = if p.when == "setup" || p.when == "teardown" { "error" } else { "failure" };
            return Some(Problem {
                tag,
                kind: None,
                message: p.crash.as_deref().unwrap_or_default(),
                text: longrepr(p),
            });
        }
        let p = entry.phases.iter().find(|p| p.outcome == "skipped")?;
        let kind = Some(if p.wasxfail.is_some() { "pytest.xfail" } else { "pytest.skip" });
        let message = p.crash.as_deref().or(p.wasxfail.as_deref()).unwrap_or_default();
        Some(Problem { tag: "skipped", kind, message, text: longrepr(p) })
    }
}

fn longrepr(phase: &PhaseRecord) -> &str {
    phase.longrepr.as_deref().unwrap_or_default()
}

/// The junit file pytest would have written for `inventory`'s session
/// (`--junitxml`), from `entries`: Ok(false) when it asked for none, Err
/// the line that says why it could not be written.
pub fn write_for(inventory: &Inventory, entries: &[ReplayEntry], seconds: f64) -> Result<bool, String> {
    let Some(path) = inventory.junitxml.as_deref() else { return Ok(false) };
    let written = write(path.as_ref(), &inventory.items, entries, seconds);
    written.map(|()| true).map_err(|e| format!("rpytest: error: cannot write the junit file {path}: {e}"))
}

/// Writes the junit file for `entries` (each indexing `items`) to `path`.
pub fn write(path: &Path, items: &[CollectedItem], entries: &[ReplayEntry], seconds: f64) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, document(items, entries, seconds)?)
}

fn document(items: &[CollectedItem], entries: &[ReplayEntry], seconds: f64) -> std::io::Result<Vec<u8>> {
    let problems: Vec<Option<Problem>> = entries.iter().map(Problem::of).collect();
    let count = |tag: &str| problems.iter().flatten().filter(|p| p.tag == tag).count().to_string();
    let mut xml = Writer::new(Vec::new());
    xml.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))?;
    xml.write_event(Event::Start(BytesStart::new("testsuites").with_attributes([("name", "pytest tests")])))?;
    let suite = BytesStart::new("testsuite").with_attributes([
        ("name", "pytest"),
        ("errors", &count("error")),
        ("failures", &count("failure")),
        ("skipped", &count("skipped")),
        ("tests", &entries.len().to_string()),
        ("time", &format!("{seconds:.3}")),
        ("hostname", std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim()),
    ]);
    xml.write_event(Event::Start(suite))?;
    for (entry, problem) in entries.iter().zip(&problems) {
        let (classname, name) = names(&items[entry.index].id);
        let time = format!("{:.3}", entry.phases.iter().fold(0.0, |sum, p| sum + p.duration));
        let case = BytesStart::new("testcase").with_attributes([
            ("classname", xml_safe(&classname).as_ref()),
            ("name", xml_safe(&name).as_ref()),
            ("time", time.as_str()),
        ]);
        let Some(problem) = problem else {
            xml.write_event(Event::Empty(case))?;
            continue;
        };
        xml.write_event(Event::Start(case))?;
        let mut element = BytesStart::new(problem.tag);
        element.extend_attributes(problem.kind.map(|kind| ("type", kind)));
        element.push_attribute(("message", xml_safe(problem.message).as_ref()));
        xml.write_event(Event::Start(element))?;
        xml.write_event(Event::Text(BytesText::new(&xml_safe(problem.text))))?;
        xml.write_event(Event::End(BytesEnd::new(problem.tag)))?;
        xml.write_event(Event::End(BytesEnd::new("testcase")))?;
    }
    xml.write_event(Event::End(BytesEnd::new("testsuite")))?;
    xml.write_event(Event::End(BytesEnd::new("testsuites")))?;
    Ok(xml.into_inner())
}

/// pytest's `mangle_test_address`: the path dotted and without `.py`, the
/// classes, then the test's name (parameters kept) as `name`.
fn names(nodeid: &str) -> (String, String) {
    let (path, params) = nodeid.find('[').map_or((nodeid, ""), |at| nodeid.split_at(at));
    let mut parts: Vec<String> = path.split("::").map(str::to_string).collect();
    parts[0] = parts[0].replace('/', ".");
    if let Some(module) = parts[0].strip_suffix(".py") {
        parts[0] = module.to_string();
    }
    let name = parts.pop().unwrap_or_default() + params;
    (parts.join("."), name)
}

/// Characters XML 1.0 cannot hold at all (escaping cannot help), shown as
/// pytest's `bin_xml_escape` shows them: `#x1B`.
fn xml_safe(text: &str) -> Cow<'_, str> {
    let allowed =
        |c: char| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..);
    if text.chars().all(allowed) {
        return Cow::Borrowed(text);
    }
    let shown = text.chars().map(|c| if allowed(c) { c.to_string() } else { format!("#x{:02X}", c as u32) });
    Cow::Owned(shown.collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(when: crate::protocol::When, outcome: &str, crash: Option<&str>) -> PhaseRecord {
        PhaseRecord {
            when,
            outcome: outcome.into(),
            duration: 0.25,
            crash: crash.map(str::to_string),
            longrepr: crash.map(|c| format!("E   {c} <&> \u{1b}[31m")),
            ..PhaseRecord::default()
        }
    }

    fn item(id: &str) -> CollectedItem {
        serde_json::from_value(serde_json::json!({"id": id, "shown": id, "group": null, "timeout": 0.0}))
            .expect("a collected item")
    }

    fn entry(index: usize, phases: Vec<PhaseRecord>) -> ReplayEntry {
        ReplayEntry {
            index,
            phases,
            crash: None,
            crash_text: None,
            junit: None,
            leaks: vec![],
            failed_tries: vec![],
            item: None,
        }
    }

    #[test]
    fn names_follow_pytests_mangling() {
        assert_eq!(names("sub/test_x.py::TestA::test_b[a::b/c]"), ("sub.test_x.TestA".into(), "test_b[a::b/c]".into()));
        assert_eq!(names("test_x.py::test_a"), ("test_x".into(), "test_a".into()));
    }

    #[test]
    fn each_test_is_a_case_with_its_problem_escaped() {
        use crate::protocol::When;
        let items = [item("test_x.py::test_ok"), item("test_x.py::test_bad"), item("test_x.py::test_lost")];
        let entries = [
            entry(0, vec![phase(When::Setup, "passed", None), phase(When::Call, "passed", None)]),
            entry(1, vec![phase(When::Setup, "failed", Some("boom \"quoted\""))]),
            ReplayEntry { crash: Some("not run: the zygote was killed".into()), ..entry(2, vec![]) },
        ];
        let xml = String::from_utf8(document(&items, &entries, 1.5).unwrap()).unwrap();
        assert!(xml.contains(r#"<testsuite name="pytest" errors="1" failures="1" skipped="0" tests="3" time="1.500""#));
        assert!(xml.contains(r#"<testcase classname="test_x" name="test_ok" time="0.500"/>"#), "{xml}");
        assert!(
            xml.contains(
                r#"<error message="boom &quot;quoted&quot;">E   boom &quot;quoted&quot; &lt;&amp;&gt; #x1B[31m</error>"#
            ),
            "{xml}"
        );
        let lost = r#"<testcase classname="test_x" name="test_lost" time="0.000"><failure message="not run: the zygote was killed">not run: the zygote was killed</failure>"#;
        assert!(xml.contains(lost), "{xml}");
    }
}
