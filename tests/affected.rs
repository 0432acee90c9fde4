//! `rpytest --affected` (#26): after an edit, only the tests whose recorded
//! dependencies changed run, and no test that the edit can fail is left out.
//!
//! The acceptance walk generates a project of 100 test files and 40 library
//! modules in a seeded random import graph (plus a test that imports a
//! module by a computed name inside its body, and one that reads a data
//! file), makes 30 seeded random edits, and after each checks that
//! `--affected` ran exactly the test files whose dependency closure, which
//! the test computes from the generator's own graph, holds the edited file.
//! Edits that break tests (a changed value, a deleted function) must show
//! every failure a full `python -m pytest` run shows. The other tests cover
//! the ways a dependency can hide (imports in test bodies, computed names,
//! data read through open/pathlib/json, a conftest fixture's import, a
//! namespace package, a deleted module), the warm daemon, and `-k`, paths,
//! `--lf` and shards beside `--affected`.

mod common;
use common::daemon::Daemon;
use common::*;

use std::collections::BTreeSet;

const SEED: u64 = 26;
const LIBS: usize = 40;
const TEST_FILES: usize = 100;
const EDITS: usize = 30;
/// The library module `tests/test_dynamic.py` imports by a computed name.
const DYNAMIC: usize = 17;

/// The generated project: who imports whom, and each module's constant.
struct Graph {
    /// Library module i imports these (all lower: no cycles).
    libs: Vec<Vec<usize>>,
    consts: Vec<u32>,
    /// Test file t imports these library modules at its top.
    tests: Vec<Vec<usize>>,
}

impl Graph {
    fn new(rng: &mut fastrand::Rng) -> Graph {
        let libs = (0..LIBS)
            .map(|i| {
                let mut deps: BTreeSet<usize> = BTreeSet::new();
                for _ in 0..rng.usize(0..3) {
                    if i > 0 {
                        deps.insert(rng.usize(0..i));
                    }
                }
                deps.into_iter().collect()
            })
            .collect();
        let consts = (0..LIBS).map(|_| rng.u32(1..100)).collect();
        let tests = (0..TEST_FILES)
            .map(|_| {
                let mut deps: BTreeSet<usize> = BTreeSet::new();
                for _ in 0..rng.usize(1..3) {
                    deps.insert(rng.usize(0..LIBS));
                }
                deps.into_iter().collect()
            })
            .collect();
        Graph { libs, consts, tests }
    }

    fn value(&self, i: usize) -> u64 {
        self.consts[i] as u64 + self.libs[i].iter().map(|&j| self.value(j)).sum::<u64>()
    }

    /// Library module i and every one it imports, directly or not.
    fn closure(&self, roots: &[usize]) -> BTreeSet<usize> {
        let mut seen = BTreeSet::new();
        let mut todo = roots.to_vec();
        while let Some(i) = todo.pop() {
            if seen.insert(i) {
                todo.extend(&self.libs[i]);
            }
        }
        seen
    }

    fn lib_source(&self, i: usize, with_value: bool) -> String {
        let imports: Vec<String> = self.libs[i].iter().map(|j| format!("m{j:02}")).collect();
        let mut text = String::new();
        if !imports.is_empty() {
            text += &format!("from lib import {}\n", imports.join(", "));
        }
        text += &format!("C = {}\n\n", self.consts[i]);
        let sum: String = imports.iter().map(|m| format!(" + {m}.value()")).collect();
        let name = if with_value { "value" } else { "value_renamed" };
        text += &format!("def {name}():\n    return C{sum}\n");
        text
    }

    fn files(&self) -> Vec<(String, String)> {
        let mut files = vec![
            ("pytest.ini".to_string(), "[pytest]\npythonpath = .\n".to_string()),
            ("lib/__init__.py".to_string(), String::new()),
            ("data/values.json".to_string(), "{\"answer\": 42}\n".to_string()),
        ];
        for i in 0..LIBS {
            files.push((format!("lib/m{i:02}.py"), self.lib_source(i, true)));
        }
        for (t, deps) in self.tests.iter().enumerate() {
            let names: Vec<String> = deps.iter().map(|j| format!("m{j:02}")).collect();
            let total: u64 = deps.iter().map(|&j| self.value(j)).sum();
            let sum: Vec<String> = names.iter().map(|m| format!("{m}.value()")).collect();
            files.push((
                test_file(t),
                format!(
                    "from lib import {}\n\n\ndef test_sum():\n    assert {} == {total}\n\n\n\
                     def test_each():\n    assert all(v > 0 for v in [{}])\n",
                    names.join(", "),
                    sum.join(" + "),
                    sum.join(", ")
                ),
            ));
        }
        files.push((
            "tests/test_dynamic.py".to_string(),
            format!(
                "import importlib\n\n\ndef test_dynamic():\n    name = \"m\" + str({DYNAMIC}).zfill(2)\n    \
                 assert importlib.import_module(\"lib.\" + name).value() == {}\n",
                self.value(DYNAMIC)
            ),
        ));
        files.push((
            "tests/test_data.py".to_string(),
            "import json\nimport pathlib\n\n\ndef test_data():\n    \
             path = pathlib.Path(__file__).parent.parent / \"data\" / \"values.json\"\n    \
             with open(path) as f:\n        assert json.load(f)[\"answer\"] == 42\n"
                .to_string(),
        ));
        files
    }

    /// The test files whose dependency closure holds `edited`, and how
    /// many tests they hold.
    fn affected_by(&self, edited: &str) -> (BTreeSet<String>, usize) {
        let mut files = BTreeSet::new();
        let lib = edited.strip_prefix("lib/m").and_then(|rest| rest.strip_suffix(".py")).map(|n| n.parse().unwrap());
        for (t, deps) in self.tests.iter().enumerate() {
            let hit = match lib {
                Some(m) => self.closure(deps).contains(&m),
                None => edited == test_file(t),
            };
            if hit {
                files.insert(test_file(t));
            }
        }
        let dynamic = lib.is_some_and(|m| self.closure(&[DYNAMIC]).contains(&m));
        if dynamic || edited == "tests/test_dynamic.py" {
            files.insert("tests/test_dynamic.py".to_string());
        }
        if edited == "data/values.json" || edited == "tests/test_data.py" {
            files.insert("tests/test_data.py".to_string());
        }
        let tests = files.iter().map(|f| if f.contains("test_t") { 2 } else { 1 }).sum();
        (files, tests)
    }
}

fn test_file(t: usize) -> String {
    format!("tests/test_t{t:03}.py")
}

const TOTAL_TESTS: usize = TEST_FILES * 2 + 2;

fn affected(suite: &Suite, extra: &[&str]) -> RunResult {
    let mut args = vec!["--no-daemon", "-n", "2", "--affected", "-v"];
    args.extend(extra);
    run_rpytest(suite, &args)
}

/// The test files that ran, from `-v`'s outcome lines.
fn files_run(result: &RunResult) -> BTreeSet<String> {
    result.outcomes.keys().map(|id| id.split("::").next().unwrap().to_string()).collect()
}

fn failed(result: &RunResult) -> BTreeSet<String> {
    result.outcomes.iter().filter(|(_, words)| words.iter().any(|w| w == "FAILED")).map(|(id, _)| id.clone()).collect()
}

fn append(suite: &Suite, rel: &str, text: &str) {
    let mut content = std::fs::read_to_string(suite.join(rel)).unwrap();
    content += text;
    std::fs::write(suite.join(rel), content).unwrap();
}

#[test]
fn random_edits_select_exactly_the_tests_whose_closure_holds_the_edited_file() {
    let mut rng = fastrand::Rng::with_seed(SEED);
    let graph = Graph::new(&mut rng);
    let files = graph.files();
    let owned: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    let suite = Suite::new(&owned);
    let first = affected(&suite, &[]);
    assert!(first.stdout.contains("rpytest --affected: no dependency record yet"), "{}", first.dump());
    assert_eq!(first.outcomes.len(), TOTAL_TESTS, "{}", first.dump());
    assert_eq!(first.code, 0, "{}", first.dump());
    for step in 0..EDITS {
        let edited = match rng.u32(0..100) {
            0..=69 => format!("lib/m{:02}.py", rng.usize(0..LIBS)),
            70..=84 => "data/values.json".to_string(),
            _ => match rng.usize(0..TEST_FILES + 2) {
                TEST_FILES => "tests/test_dynamic.py".to_string(),
                n if n > TEST_FILES => "tests/test_data.py".to_string(),
                t => test_file(t),
            },
        };
        let comment = if edited.ends_with(".json") { " " } else { "\n# edited\n" };
        append(&suite, &edited, comment);
        let (expected, tests) = graph.affected_by(&edited);
        let run = affected(&suite, &[]);
        let context = format!("step {step}, edited {edited}\n{}", run.dump());
        assert_eq!(files_run(&run), expected, "{context}");
        assert_eq!(run.code, 0, "{context}");
        let line = match tests {
            0 => format!("{TOTAL_TESTS} deselected (unaffected)"),
            n => format!("{n} passed, {} deselected (unaffected)", TOTAL_TESTS - n),
        };
        assert_eq!(run.final_line.as_deref(), Some(line.as_str()), "{context}");
        if tests > 0 {
            let changed = format!("{edited} changed");
            assert!(run.stdout.contains(&changed), "-v names no changed dependency: {context}");
        }
    }
    // Edits that break tests: each failure pytest shows, --affected shows.
    let used: BTreeSet<usize> = graph.tests.iter().flat_map(|deps| graph.closure(deps)).collect();
    let targets: Vec<usize> = used.into_iter().collect();
    for (kind, module) in [("value", targets[rng.usize(0..targets.len())]), ("delete", targets[0])] {
        let rel = format!("lib/m{module:02}.py");
        let original = std::fs::read_to_string(suite.join(&rel)).unwrap();
        let broken = match kind {
            "value" => original.replace(&format!("C = {}\n", graph.consts[module]), "C = 1000\n"),
            _ => graph.lib_source(module, false),
        };
        std::fs::write(suite.join(&rel), broken).unwrap();
        let run = affected(&suite, &[]);
        let pytest = run_pytest(&suite, &["-v"]);
        let context = format!("{kind} in {rel}\n{}\n{}", run.dump(), pytest.dump());
        assert!(!failed(&pytest).is_empty(), "the edit broke nothing: {context}");
        assert_eq!(failed(&run), failed(&pytest), "{context}");
        assert_eq!(files_run(&run), graph.affected_by(&rel).0, "{context}");
        assert_eq!((run.code, pytest.code), (1, 1), "{context}");
        // Undone: the tests that failed run again, and pass.
        std::fs::write(suite.join(&rel), original).unwrap();
        let again = affected(&suite, &[]);
        let ran: BTreeSet<String> = again.outcomes.keys().cloned().collect();
        assert_eq!(ran, failed(&run).union(&passed_in(&run)).cloned().collect(), "{}", again.dump());
        assert!(failed(&again).is_empty(), "{}", again.dump());
    }
}

fn passed_in(result: &RunResult) -> BTreeSet<String> {
    result.outcomes.iter().filter(|(_, words)| words.iter().all(|w| w == "PASSED")).map(|(id, _)| id.clone()).collect()
}

fn hiding_places() -> Suite {
    Suite::new(&[
        ("pytest.ini", "[pytest]\npythonpath = .\n"),
        ("lib/__init__.py", ""),
        ("lib/lazy.py", "VALUE = 2\n"),
        ("lib/computed.py", "VALUE = 3\n"),
        ("lib/fx_helper.py", "VALUE = 4\n"),
        ("lib/gone.py", "VALUE = 5\n"),
        ("nspkg/inner.py", "VALUE = 6\n"),
        ("data/a.txt", "a\n"),
        ("data/b.txt", "b\n"),
        ("data/c.json", "{\"c\": 1}\n"),
        ("tests/test_lazy_loader.py", "from lib import lazy\n\n\ndef test_loader():\n    assert lazy.VALUE\n"),
        ("tests/test_lazy.py", "def test_lazy():\n    import lib.lazy\n    assert lib.lazy.VALUE == 2\n"),
        (
            "tests/test_computed.py",
            "import importlib\n\n\ndef test_computed():\n    \
             assert importlib.import_module(\"lib.\" + \"\".join([\"comp\", \"uted\"])).VALUE == 3\n",
        ),
        (
            "tests/test_open.py",
            "import os\n\n\ndef test_open():\n    \
             with open(os.path.join(os.path.dirname(__file__), \"..\", \"data\", \"a.txt\")) as f:\n        \
             assert f.read() == \"a\\n\"\n",
        ),
        (
            "tests/test_pathlib.py",
            "import pathlib\n\n\ndef test_pathlib():\n    \
             assert (pathlib.Path(__file__).parent.parent / \"data\" / \"b.txt\").read_text() == \"b\\n\"\n",
        ),
        (
            "tests/test_json.py",
            "import json\nimport os\n\n\ndef test_json():\n    \
             with open(os.path.join(os.path.dirname(__file__), \"..\", \"data\", \"c.json\")) as f:\n        \
             assert json.load(f) == {\"c\": 1}\n",
        ),
        (
            "tests/fx/conftest.py",
            "import pytest\n\n\n@pytest.fixture(scope=\"session\")\ndef fx():\n    \
             import lib.fx_helper\n    return lib.fx_helper.VALUE\n",
        ),
        ("tests/fx/test_fixture_a.py", "def test_a(fx):\n    assert fx == 4\n"),
        ("tests/fx/test_fixture_b.py", "def test_b(fx):\n    assert fx == 4\n"),
        ("tests/test_ns.py", "from nspkg import inner\n\n\ndef test_ns():\n    assert inner.VALUE == 6\n"),
        ("tests/test_gone.py", "def test_gone():\n    import lib.gone\n    assert lib.gone.VALUE == 5\n"),
        ("tests/test_control.py", "def test_control():\n    pass\n"),
    ])
}

#[test]
fn every_way_a_dependency_can_hide_selects_its_tests() {
    let suite = hiding_places();
    let first = affected(&suite, &[]);
    assert_eq!((first.code, first.outcomes.len()), (0, 11), "{}", first.dump());
    let cases: &[(&str, &[&str])] = &[
        ("lib/lazy.py", &["tests/test_lazy.py", "tests/test_lazy_loader.py"]),
        ("lib/computed.py", &["tests/test_computed.py"]),
        ("lib/fx_helper.py", &["tests/fx/test_fixture_a.py", "tests/fx/test_fixture_b.py"]),
        ("nspkg/inner.py", &["tests/test_ns.py"]),
    ];
    for (edited, expected) in cases {
        append(&suite, edited, "\n# edited\n");
        let run = affected(&suite, &[]);
        let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
        assert_eq!(files_run(&run), expected, "{edited}\n{}", run.dump());
        assert!(run.stdout.contains(&format!("{edited} changed")), "{}", run.dump());
        assert_eq!(run.code, 0, "{}", run.dump());
    }
    // A data file whose content changes: its readers fail, and run.
    for (file, test) in [("data/a.txt", "test_open"), ("data/b.txt", "test_pathlib"), ("data/c.json", "test_json")] {
        let original = std::fs::read_to_string(suite.join(file)).unwrap();
        std::fs::write(suite.join(file), original.replace('a', "x").replace('b', "y").replace("1", "2")).unwrap();
        let run = affected(&suite, &[]);
        let expected: BTreeSet<String> = [format!("tests/{test}.py")].into();
        assert_eq!(files_run(&run), expected, "{file}\n{}", run.dump());
        assert_eq!(run.code, 1, "{}", run.dump());
        std::fs::write(suite.join(file), original).unwrap();
        assert_eq!(affected(&suite, &[]).code, 0);
    }
    // A deleted module: the test that imports it runs, and fails.
    std::fs::remove_file(suite.join("lib/gone.py")).unwrap();
    let run = affected(&suite, &[]);
    let expected: BTreeSet<String> = ["tests/test_gone.py::test_gone".to_string()].into();
    assert_eq!(failed(&run), expected, "{}", run.dump());
    assert_eq!(files_run(&run), ["tests/test_gone.py".to_string()].into(), "{}", run.dump());
    // The control test, which depends on nothing edited, never ran again.
    let untouched = affected(&suite, &[]);
    assert!(!untouched.outcomes.contains_key("tests/test_control.py::test_control"), "{}", untouched.dump());
}

fn small_suite() -> Suite {
    Suite::new(&[
        ("pytest.ini", "[pytest]\npythonpath = .\n"),
        ("lib/__init__.py", ""),
        ("lib/shared.py", "def value():\n    return 1\n"),
        ("lib/other.py", "def value():\n    return 2\n"),
        ("tests/test_a.py", "from lib import shared\n\n\ndef test_a1():\n    assert shared.value() == 1\n\n\ndef test_a2():\n    pass\n"),
        ("tests/test_b.py", "from lib import shared\n\n\ndef test_b1():\n    assert shared.value() == 1\n"),
        ("tests/test_c.py", "from lib import other\n\n\ndef test_c1():\n    assert other.value() == 2\n"),
        ("tests/test_d.py", "def test_d1():\n    pass\n"),
    ])
}

fn via(daemon: &Daemon, suite: &Suite, args: &[&str]) -> RunResult {
    let mut all = vec!["-n", "2", "-v"];
    all.extend(args);
    run_rpytest_env(suite, &all, &[("RPYTEST_RUNTIME_DIR", daemon.runtime_dir()), ("RPYTEST_TRACE", "1")])
}

#[test]
fn a_warm_daemon_serves_affected_runs_from_its_session() {
    let suite = small_suite();
    let daemon = Daemon::start(&[]);
    let first = via(&daemon, &suite, &["--affected"]);
    assert!(first.stdout.contains("no dependency record yet"), "{}", first.dump());
    assert_eq!(first.final_line.as_deref(), Some("5 passed"), "{}", first.dump());
    daemon.wait_settled();
    // A run without --affected shares the session: --affected is selection.
    let plain = via(&daemon, &suite, &[]);
    assert!(!plain.stderr.contains("running cold"), "{}", plain.dump());
    daemon.wait_settled();
    let nothing = via(&daemon, &suite, &["--affected"]);
    assert!(!nothing.stderr.contains("running cold"), "{}", nothing.dump());
    assert_eq!(nothing.final_line.as_deref(), Some("5 deselected (unaffected)"), "{}", nothing.dump());
    assert_eq!(nothing.code, 0, "{}", nothing.dump());
    append(&suite, "lib/other.py", "# edited\n");
    let edited = via(&daemon, &suite, &["--affected"]);
    assert!(!edited.stderr.contains("running cold"), "{}", edited.dump());
    assert_eq!(edited.final_line.as_deref(), Some("1 passed, 4 deselected (unaffected)"), "{}", edited.dump());
    assert!(edited.stdout.contains("tests/test_c.py: lib/other.py changed"), "{}", edited.dump());
    daemon.wait_settled();
    // A new size too: Python trusts a bytecode cache whose source has the
    // same size and mtime second.
    std::fs::write(suite.join("lib/shared.py"), "def value():\n    return 30\n").unwrap();
    let broken = via(&daemon, &suite, &["--affected"]);
    assert!(!broken.stderr.contains("running cold"), "{}", broken.dump());
    assert_eq!(
        broken.final_line.as_deref(),
        Some("2 failed, 1 passed, 2 deselected (unaffected)"),
        "{}",
        broken.dump()
    );
    assert_eq!(broken.code, 1, "{}", broken.dump());
}

#[test]
fn affected_combines_with_k_paths_lf_and_shards() {
    let suite = small_suite();
    assert_eq!(affected(&suite, &[]).code, 0);
    append(&suite, "lib/shared.py", "# edited\n");
    let keyword = affected(&suite, &["-k", "a1 or c1 or d1"]);
    let ids: BTreeSet<&str> = keyword.outcomes.keys().map(String::as_str).collect();
    assert_eq!(ids, ["tests/test_a.py::test_a1"].into(), "{}", keyword.dump());
    assert_eq!(keyword.final_line.as_deref(), Some("1 passed, 4 deselected (2 unaffected)"), "{}", keyword.dump());
    let path = affected(&suite, &["tests/test_b.py", "tests/test_c.py"]);
    assert_eq!(files_run(&path), ["tests/test_b.py".to_string()].into(), "{}", path.dump());
    // Shards split what is affected: together they run it once.
    append(&suite, "lib/shared.py", "# edited again\n");
    let shards: Vec<RunResult> =
        (0..2).map(|k| affected(&suite, &["--shard", &k.to_string(), "--total-shards", "2"])).collect();
    let mut union = BTreeSet::new();
    for shard in &shards {
        for id in shard.outcomes.keys() {
            assert!(union.insert(id.clone()), "{id} ran in both shards");
        }
    }
    let expected: BTreeSet<String> =
        ["tests/test_a.py::test_a1", "tests/test_a.py::test_a2", "tests/test_b.py::test_b1"].map(String::from).into();
    assert_eq!(union, expected, "{}\n{}", shards[0].dump(), shards[1].dump());
    // --lf reads pytest's cache: without -p no:cacheprovider.
    let lf = |extra: &[&str]| {
        let mut args: Vec<String> = ["--python", python().to_str().unwrap(), "--color=no", "--no-daemon", "-v"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        run_command(&rpytest_bin(), &args, suite.path(), &[])
    };
    std::fs::write(suite.join("lib/other.py"), "def value():\n    return 5\n").unwrap();
    assert_eq!(lf(&[]).code, 1);
    let last_failed = lf(&["--affected", "--lf"]);
    let ids: BTreeSet<&str> = last_failed.outcomes.keys().map(String::as_str).collect();
    assert_eq!(ids, ["tests/test_c.py::test_c1"].into(), "{}", last_failed.dump());
    std::fs::write(suite.join("lib/other.py"), "def value():\n    return 2\n").unwrap();
    let fixed = lf(&["--affected", "--lf"]);
    // --lf collects only the files with failures: nothing else to deselect.
    assert_eq!((fixed.code, fixed.final_line.as_deref()), (0, Some("1 passed")), "{}", fixed.dump());
}

/// Found by the daemon test above: a warm session re-collected the test
/// files of an edited module, but `from lib import shared` gave them the old
/// module, which its package still held as an attribute: a stale pass.
#[test]
fn a_warm_session_imports_an_edited_module_its_package_still_named() {
    let suite = small_suite();
    let daemon = Daemon::start(&[]);
    via(&daemon, &suite, &[]);
    daemon.wait_settled();
    assert!(!via(&daemon, &suite, &[]).stderr.contains("running cold"));
    daemon.wait_settled();
    std::fs::write(suite.join("lib/shared.py"), "def value():\n    return 30\n").unwrap();
    let run = via(&daemon, &suite, &[]);
    assert!(run.stderr.contains("daemon: re-collected"), "{}", run.dump());
    assert_eq!(run.final_line.as_deref(), Some("2 failed, 3 passed"), "{}", run.dump());
}

/// A cold run whose collection was spread over the workers imported the
/// test modules where the zygote's import graph does not see: it must not
/// leave a record without those imports. An edit to a module only a test
/// module's import pulled in is still selected by the next `--affected`.
#[test]
fn a_spread_collection_leaves_no_record_that_misses_imports() {
    // Collection is spread only on pytest 8 and later (docs/collection.md).
    if skip_unless_pytest((8, 0), "a spread collection") {
        return;
    }
    let suite = small_suite();
    let spread = [("RPYTEST_PARALLEL_COLLECTION", "always")];
    let first = run_rpytest_env(&suite, &["--no-daemon", "-n", "2", "-v"], &spread);
    assert_eq!(first.code, 0, "{}", first.dump());
    assert!(first.stderr.contains("collection spread over"), "the run did not spread\n{}", first.dump());
    suite.write("lib/shared.py", "def value():\n    return 5\n");
    let after = run_rpytest_env(&suite, &["--no-daemon", "-n", "2", "-v", "--affected"], &spread);
    let failed = failed(&after);
    assert!(
        failed.contains("tests/test_a.py::test_a1") && failed.contains("tests/test_b.py::test_b1"),
        "an edit to lib/shared.py was left out\n{}",
        after.dump()
    );
    // --affected itself collects in the zygote, so its record is whole:
    // with the edit undone, only the modules that import lib/shared.py run.
    suite.write("lib/shared.py", "def value():\n    return 1\n");
    let undone = run_rpytest_env(&suite, &["--no-daemon", "-n", "2", "-v", "--affected"], &spread);
    assert_eq!(undone.code, 0, "{}", undone.dump());
    assert!(files_run(&undone).contains("tests/test_a.py"), "{}", undone.dump());
    assert!(!files_run(&undone).contains("tests/test_d.py"), "{}", undone.dump());
}
