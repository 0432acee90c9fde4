//! pytest's command-line options, one by one, under rpytest.
//!
//! `docs/compatibility.md` lists every pytest and pytest-xdist option with
//! its status. Each option marked "works identically" there, and not already
//! covered by another test file, is checked here: `python -m pytest ARGS` and
//! `rpytest -n 2 ARGS` run on the same suite, and must agree on
//!
//! - the exit code,
//! - every test's outcome (from the junit file both write),
//! - the session header (up to `collected N items`),
//! - everything after the per-test progress lines (ERRORS, FAILURES,
//!   PASSES, warnings summary, short test summary, counts line), byte for
//!   byte once durations and object addresses are masked.
//!
//! The per-test progress lines are rpytest's own (`nodeid WORD` as tests
//! complete) and are not compared. Options that are new in a pytest version
//! skip themselves on older pytest (`skip_without_option`), so the file runs
//! unchanged in the pytest 8 and 7.4 matrix (`scripts/matrix.sh`).

mod common;
use common::*;

use std::path::Path;

/// A suite with every kind of outcome and output the options act on:
/// passes with captured output, failures with locals and long diffs, a
/// setup and a teardown error, skips, xfail/xpass (strict too), warnings,
/// logging, parametrization, a class, a doctest module and text file, a
/// subdirectory and a conftest fixture.
fn rich_suite() -> Suite {
    Suite::new(&[
        (
            "pytest.ini",
            r#"
            [pytest]
            markers =
                slow: slow tests
            "#,
        ),
        (
            "conftest.py",
            r#"
            import pytest

            @pytest.fixture
            def resource():
                print("setting up resource")
                yield {"k": 1}
                print("tearing down resource")

            @pytest.fixture
            def broken_teardown():
                yield
                raise RuntimeError("teardown boom")
            "#,
        ),
        (
            "test_main.py",
            r#"
            import logging
            import sys
            import warnings
            import pytest

            log = logging.getLogger("suite")

            def helper(n):
                return n * 2

            def test_pass(resource):
                assert resource["k"] == 1

            def test_fail_locals():
                items = [1, 2, 3]
                total = sum(items)
                assert helper(total) == 13

            def test_fail_output():
                print("to stdout")
                sys.stderr.write("to stderr\n")
                log.warning("a logged warning")
                log.info("a logged info")
                assert False, "with message"

            def test_pass_output():
                print("passing stdout")
                log.warning("passing log")

            @pytest.mark.skip(reason="skipped reason")
            def test_skip():
                pass

            def test_skip_inside():
                pytest.skip("inner skip")

            @pytest.mark.xfail(reason="expected")
            def test_xfail():
                assert 1 == 2

            @pytest.mark.xfail(reason="unexpectedly ok")
            def test_xpass():
                print("xpass output")

            @pytest.mark.xfail(strict=True, reason="strict")
            def test_xpass_strict():
                pass

            @pytest.fixture
            def broken():
                raise ValueError("setup boom")

            def test_setup_error(broken):
                pass

            def test_teardown_error(broken_teardown):
                pass

            def test_warning():
                warnings.warn(DeprecationWarning("old api"))
                warnings.warn(UserWarning("user warn"))

            @pytest.mark.slow
            @pytest.mark.parametrize("x", [1, 2, 3])
            def test_param(x):
                assert x != 2

            class TestGroup:
                def test_method_ok(self):
                    pass

                def test_method_fail(self):
                    d = {"a": 1, "b": [1, 2]}
                    assert d == {"a": 1, "b": [1, 3]}

            def test_long_string():
                a = "line\n" * 30 + "x"
                b = "line\n" * 30 + "y"
                assert a == b

            def deep(n):
                if n == 0:
                    raise KeyError("deep")
                return deep(n - 1)

            def test_deep_traceback():
                deep(4)
            "#,
        ),
        (
            "mod_doc.py",
            r#"
            def add(a, b):
                """
                >>> add(1, 2)
                3
                >>> add(2, 2)
                5
                >>> add(0, 0)
                1
                """
                return a + b
            "#,
        ),
        ("test_doc.txt", ">>> 1 + 1\n2\n"),
        (
            "sub/test_sub.py",
            r#"
            def test_in_sub():
                pass

            def test_sub_fail():
                assert [1, 2] == [1, 2, 3]
            "#,
        ),
    ])
}

/// Three passing tests, two of them warning: for `--max-warnings`.
fn warning_suite() -> Suite {
    Suite::new(&[(
        "test_warns.py",
        r#"
        import warnings
        import pytest

        @pytest.mark.parametrize("warns", [True, True, False])
        def test_maybe_warns(warns):
            if warns:
                warnings.warn(UserWarning("careful"))
        "#,
    )])
}

// ------------------------------------------------------------ comparison ---

/// `0.12s` -> `N.NNs` where a duration stands alone (after a space or `(`).
fn mask_durations(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let starts = chars[i].is_ascii_digit() && (i == 0 || matches!(chars[i - 1], ' ' | '('));
        if starts {
            let mut j = i;
            while j < chars.len() && chars[j].is_ascii_digit() {
                j += 1;
            }
            if j < chars.len() && chars[j] == '.' {
                let mut k = j + 1;
                while k < chars.len() && chars[k].is_ascii_digit() {
                    k += 1;
                }
                if k > j + 1 && k < chars.len() && chars[k] == 's' {
                    out.push_str("N.NNs");
                    i = k + 1;
                    continue;
                }
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// Lines as compared: addresses and durations masked, the counts line
/// reduced to its words (its `=` fill depends on the duration's length).
fn normalized(lines: &[&str], suite_dir: &Path) -> Vec<String> {
    let dir = suite_dir.display().to_string();
    lines
        .iter()
        .map(|l| {
            let l = mask_addresses(l).replace(&dir, "SUITE");
            if is_final_line(&l) {
                format!("<counts line> {}", normalize_final_line(&l))
            } else {
                mask_durations(l.trim_end())
            }
        })
        .collect()
}

/// The session header (through `collected N items`) and the closing text
/// (from the first section rule or the counts line after the progress lines).
fn split_output(stdout: &str) -> (Vec<&str>, Vec<&str>) {
    let lines: Vec<&str> = stdout.lines().collect();
    // `collected 3 items`, or `collecting ... collected 3 items` with -v.
    let header_end = lines
        .iter()
        .map(|l| strip_ansi(l))
        .position(|l| l.starts_with("collected ") || (l.starts_with("collecting ") && l.contains(" collected ")))
        .map_or(0, |i| i + 1);
    let closing_start = (header_end..lines.len())
        .find(|&i| {
            let plain = strip_ansi(lines[i]);
            plain.starts_with("==") || plain.starts_with("!!") || is_final_line(lines[i])
        })
        .unwrap_or(lines.len());
    (lines[..header_end].to_vec(), lines[closing_start..].to_vec())
}

/// How much of the output to compare.
#[derive(Clone, Copy, PartialEq)]
enum Compare {
    /// Header and closing text (the progress lines are rpytest's own).
    HeaderAndClosing,
    /// All of stdout: pytest itself writes everything (`--co`, `--markers`).
    Everything,
}

/// `rpytest --python PY -n 2 -p no:cacheprovider ARGS`: like the harness's
/// `run_rpytest`, but without its `--color=no`, so tests can pass `--color`
/// (stdout is a pipe: colour is off unless asked for, for both tools).
fn rpytest_with(suite: &Suite, args: &[&str]) -> RunResult {
    let py = python().display().to_string();
    let mut full: Vec<String> = ["--python", &py, "-n", "2", "-p", "no:cacheprovider"].map(String::from).to_vec();
    full.extend(args.iter().map(|s| s.to_string()));
    run_command(&rpytest_bin(), &full, suite.path(), &[])
}

/// Without pytest-xdist, rpytest still provides xdist's `worker_id` and
/// `testrun_uid` fixtures (suites written for xdist use them), so pytest's
/// "available fixtures" list shows two more names than plain pytest's, and
/// `--fixtures` a section more.
fn without_xdist_fixtures(stdout: &str) -> String {
    if has_xdist() {
        return stdout.to_string();
    }
    let stdout = stdout.replace(", testrun_uid", "").replace(", worker_id", "");
    if !stdout.contains("fixtures defined from rpytest_worker.fixtures") {
        return stdout;
    }
    // `--fixtures` lists them in a section of their own.
    let mut in_section = false;
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|line| {
            if line.starts_with("---") {
                in_section = line.contains("fixtures defined from rpytest_worker.fixtures");
            }
            !in_section
        })
        .collect();
    lines.join("\n") + "\n"
}

fn outcomes_from_junit(path: &Path) -> Option<Junit> {
    let found = path.exists().then(|| parse_junit(path));
    let _ = std::fs::remove_file(path);
    found
}

/// Run `python -m pytest ARGS` and `rpytest -n 2 ARGS` in `suite` (both with
/// `-p no:cacheprovider`, and with a junit file for per-test outcomes unless
/// `junit` is false) and require the same exit code, outcomes and output.
fn assert_same_output_in(suite: &Suite, args: &[&str], what: Compare, junit: bool) -> Pair {
    let xml = suite.join("outcomes.xml");
    let xml_arg = format!("--junitxml={}", xml.display());
    let mut full: Vec<&str> = args.to_vec();
    if junit {
        full.push(&xml_arg);
    }
    let pytest = run_pytest(suite, &full);
    assert!(!pytest.timed_out, "pytest itself hung\n{}", pytest.dump());
    let pytest_junit = outcomes_from_junit(&xml);
    let rpytest = rpytest_with(suite, &full);
    let rpytest_junit = outcomes_from_junit(&xml);
    let pair = Pair { pytest, rpytest };
    assert_clean_exit(&pair.rpytest);
    let (p, r) = (&pair.pytest, &pair.rpytest);
    check(&pair, p.code == r.code, &format!("exit code: pytest {} vs rpytest {}", p.code, r.code));
    // Asked for junit, both must write it (pytest only fails to on a usage
    // error): two missing files would otherwise compare equal.
    let usage_error = p.code == 4;
    check(&pair, !junit || usage_error || pytest_junit.is_some(), "pytest wrote no junit file");
    check(&pair, !junit || usage_error || rpytest_junit.is_some(), "rpytest wrote no junit file");
    if pytest_junit != rpytest_junit {
        panic!(
            "MISMATCH: per-test outcomes (junit) differ with {args:?}\npytest: {pytest_junit:#?}\nrpytest: {rpytest_junit:#?}\n\n{}",
            pair.dump()
        );
    }
    let parts = |stdout: &str| -> Vec<String> {
        match what {
            Compare::Everything => normalized(&stdout.lines().collect::<Vec<_>>(), suite.path()),
            Compare::HeaderAndClosing => {
                let (head, closing) = split_output(stdout);
                let mut v = normalized(&head, suite.path());
                v.push("<progress lines>".into());
                v.extend(normalized(&closing, suite.path()));
                v
            }
        }
    };
    let (pl, rl) = (parts(&p.stdout), parts(&without_xdist_fixtures(&r.stdout)));
    if pl != rl {
        let first = pl.iter().zip(&rl).position(|(a, b)| a != b).unwrap_or(pl.len().min(rl.len()));
        panic!(
            "MISMATCH: output differs with {args:?} from compared line {first}:\n  pytest:  {:?}\n  rpytest: {:?}\n\n{}",
            pl.get(first),
            rl.get(first),
            pair.dump()
        );
    }
    pair
}

fn assert_same_output(args: &[&str]) -> Pair {
    assert_same_output_in(&rich_suite(), args, Compare::HeaderAndClosing, true)
}

/// One test per option set; `needs FLAG` skips it on a pytest without FLAG.
macro_rules! same_output {
    ($($name:ident: [$($arg:expr),*] $(needs $flag:expr)?;)*) => {$(
        #[test]
        fn $name() {
            $(if skip_without_option($flag) { return; })?
            assert_same_output(&[$($arg),*]);
        }
    )*};
}

// ------------------------------------------------------------- reporting ---

same_output! {
    default_output: [];
    verbose_twice_whole_messages: ["-vv"];
    verbosity_option: ["--verbosity=2"];
    quiet_counts_line_has_no_rule: ["-q"];
    quiet_twice_no_counts_line: ["-qq"];
    report_chars_passes_section: ["-rP"];
    report_chars_all: ["-rA"];
    report_chars_a: ["-ra"];
    report_chars_none: ["-rN"];
    report_chars_xfail_xpass: ["-rxX"];
    report_chars_skips: ["-rs"];
    no_fold_skipped: ["--no-fold-skipped", "-rs"] needs "--no-fold-skipped";
    force_short_summary: ["-vv", "--force-short-summary"] needs "--force-short-summary";
    xfail_tb_section: ["--xfail-tb", "-rA"] needs "--xfail-tb";
    xfail_tb_line_style: ["--xfail-tb", "--tb=line"] needs "--xfail-tb";
    showlocals: ["-l"];
    showlocals_negated: ["--showlocals", "--no-showlocals"];
    show_capture_no: ["--show-capture=no", "-rA"];
    show_capture_stdout: ["--show-capture=stdout", "-rA"];
    show_capture_log: ["--show-capture=log", "-rA"];
    no_header: ["--no-header"];
    no_summary: ["--no-summary"];
    disable_warnings: ["--disable-warnings"];
    tb_no_with_passes: ["--tb=no", "-rP"];
    color_yes: ["--color=yes", "-rA"];
    color_yes_verbose: ["--color=yes", "-vv"];
    color_yes_quiet: ["--color=yes", "-q"];
    color_yes_no_code_highlight: ["--color=yes", "--code-highlight=no"];
    runxfail: ["--runxfail", "-rA"];
    strict_option: ["--strict"];
    console_output_style_classic: ["-o", "console_output_style=classic"];
}

// ------------------------------------------------------ capture and logs ---

same_output! {
    capture_sys: ["--capture=sys", "-rA"];
    capture_tee_sys_sections: ["--capture=tee-sys", "-rA"];
    log_level_debug: ["--log-level=DEBUG", "-rA"];
    log_format: ["--log-format=%(levelname)s|%(name)s|%(message)s", "-rA"];
    log_disable: ["--log-disable=suite", "-rA"];
    log_auto_indent: ["--log-auto-indent=on", "-rA"];
    log_cli_level_closing_sections: ["--log-cli-level=INFO"];
}

#[test]
fn log_file_gets_every_record() {
    let suite = rich_suite();
    let read_sorted = |name: &str| {
        let text = std::fs::read_to_string(suite.join(name)).unwrap_or_default();
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        lines.sort();
        lines
    };
    let args = ["--log-file=run.log", "--log-file-level=INFO", "--log-file-format=%(levelname)s %(message)s"];
    let pytest = run_pytest(&suite, &args);
    let from_pytest = read_sorted("run.log");
    let rpytest = rpytest_with(&suite, &args);
    let from_rpytest = read_sorted("run.log");
    let pair = Pair { pytest, rpytest };
    assert_clean_exit(&pair.rpytest);
    check(&pair, !from_pytest.is_empty(), "pytest wrote no log file");
    // Workers write as tests finish: same records, any order.
    check(&pair, from_pytest == from_rpytest, &format!("log files differ:\n{from_pytest:#?}\n{from_rpytest:#?}"));
}

// ------------------------------------------------------------ collection ---

same_output! {
    ignore_dir: ["--ignore=sub"];
    ignore_glob: ["--ignore-glob=sub/*"];
    deselect_prefix: ["--deselect=sub"];
    confcutdir: ["--confcutdir=sub"];
    noconftest: ["--noconftest"];
    keep_duplicates: ["--keep-duplicates", "test_main.py", "test_main.py"];
    import_mode_importlib: ["--import-mode=importlib"];
    import_mode_append: ["--import-mode=append"];
    doctest_modules_udiff: ["--doctest-modules", "--doctest-report=udiff"];
    doctest_continue_on_failure: ["--doctest-modules", "--doctest-continue-on-failure"];
    doctest_glob: ["--doctest-glob=*.txt"];
    pyargs: ["--pyargs", "test_main"];
    strict_markers: ["--strict-markers", "-m", "slow"];
    strict_config: ["--strict-config"];
    assert_plain: ["--assert=plain"];
    no_doctest_plugin: ["-p", "no:doctest"];
    disable_plugin_autoload: ["--disable-plugin-autoload"];
    rootdir: ["--rootdir=sub"];
}

/// Options after which pytest writes everything itself (in the zygote).
macro_rules! same_whole_output {
    ($($name:ident: [$($arg:expr),*];)*) => {$(
        #[test]
        fn $name() {
            assert_same_output_in(&rich_suite(), &[$($arg),*], Compare::Everything, false);
        }
    )*};
}

same_whole_output! {
    collect_only: ["--collect-only"];
    collect_only_quiet: ["--co", "-q"];
    markers: ["--markers"];
    fixtures: ["--fixtures"];
    fixtures_per_test: ["--fixtures-per-test"];
}

#[test]
fn strict_markers_refuses_unknown_marker_like_pytest() {
    let suite = Suite::new(&[(
        "test_m.py",
        r#"
        import pytest

        @pytest.mark.unknownmark
        def test_x():
            pass
        "#,
    )]);
    assert_same_output_in(&suite, &["--strict-markers"], Compare::Everything, false);
}

// ------------------------------------------------------ pytest's plugins ---

#[test]
fn no_terminal_plugin_prints_nothing() {
    let pair = assert_same_output(&["-p", "no:terminal"]);
    check(&pair, pair.rpytest.stdout.trim().is_empty(), "rpytest printed with -p no:terminal");
}

#[test]
fn max_warnings_exceeded_exits_6() {
    if skip_without_option("--max-warnings") {
        return;
    }
    let pair = assert_same_output_in(&warning_suite(), &["--max-warnings=1"], Compare::HeaderAndClosing, true);
    check(&pair, pair.rpytest.code == 6, "exit code is not 6");
    assert_same_output_in(&warning_suite(), &["--max-warnings=2"], Compare::HeaderAndClosing, true);
}

#[test]
fn basetemp_holds_the_workers_tmp_paths() {
    let suite = Suite::new(&[(
        "test_tmp.py",
        r#"
        def test_tmp(tmp_path):
            (tmp_path / "f").write_text("x")
            assert (tmp_path / "f").read_text() == "x"
        "#,
    )]);
    let base = suite.join("bt");
    let arg = format!("--basetemp={}", base.display());
    assert_same_output_in(&suite, &[&arg], Compare::HeaderAndClosing, true);
    // As under xdist: each worker's tmp paths under <basetemp>/popen-gwN.
    let made: Vec<String> = std::fs::read_dir(&base)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    assert!(made.iter().any(|n| n.starts_with("popen-gw")), "basetemp holds {made:?}");
}

#[test]
fn junit_prefix_and_family() {
    let suite = rich_suite();
    for args in [vec!["--junit-prefix=pre"], vec!["-o", "junit_family=xunit2", "-o", "junit_suite_name=S"]] {
        assert_same_output_in(&suite, &args, Compare::HeaderAndClosing, true);
    }
    // The prefix reaches the classnames: compare the raw case lists too.
    let xml = suite.join("p.xml");
    let arg = format!("--junitxml={}", xml.display());
    run_rpytest(&suite, &["-n", "2", "--junit-prefix=pre", &arg]);
    let j = parse_junit(&xml);
    assert!(j.cases.iter().all(|c| c.0.starts_with("pre.")), "{j:?}");
}

// ----------------------------------------------------- pytest-xdist flags ---

#[test]
fn testrunuid_sets_the_fixture_like_xdist() {
    let suite = Suite::new(&[(
        "test_uid.py",
        r#"
        def test_uid(testrun_uid):
            assert testrun_uid == "fixed-uid-123"
        "#,
    )]);
    // The oracle is xdist itself: plain pytest ignores --testrunuid.
    if skip_without_xdist("--testrunuid") {
        return;
    }
    let pytest = run_pytest(&suite, &["-n", "2", "--testrunuid=fixed-uid-123"]);
    let rpytest = run_rpytest(&suite, &["-n", "2", "--testrunuid=fixed-uid-123"]);
    let pair = Pair { pytest, rpytest };
    assert_clean_exit(&pair.rpytest);
    check(&pair, pair.pytest.code == 0 && pair.rpytest.code == 0, "testrun_uid is not the given value");
}

// ------------------------------------------------------------ the cache ---

/// Run `first` then `second` with the cache on, pytest in one copy of the
/// suite and rpytest in another; compare the second runs.
fn assert_same_after(first: &[&str], second: &[&str]) {
    let (ps, rs) = (rich_suite(), rich_suite());
    let py = python().display().to_string();
    let with =
        |lead: &[&str], args: &[&str]| -> Vec<String> { lead.iter().chain(args).map(|s| s.to_string()).collect() };
    run_command(&python(), &with(&["-m", "pytest"], first), ps.path(), &[]);
    let pytest = run_command(&python(), &with(&["-m", "pytest"], second), ps.path(), &[]);
    let lead = ["--python", py.as_str(), "--color=no", "-n", "2"];
    run_command(&rpytest_bin(), &with(&lead, first), rs.path(), &[]);
    let rpytest = run_command(&rpytest_bin(), &with(&lead, second), rs.path(), &[]);
    let pair = Pair { pytest, rpytest };
    assert_clean_exit(&pair.rpytest);
    check(&pair, pair.pytest.code == pair.rpytest.code, "exit code differs");
    let (ph, pc) = split_output(&pair.pytest.stdout);
    let (rh, rc) = split_output(&pair.rpytest.stdout);
    check(&pair, normalized(&ph, ps.path()) == normalized(&rh, rs.path()), "header differs");
    check(&pair, normalized(&pc, ps.path()) == normalized(&rc, rs.path()), "closing text differs");
}

#[test]
fn last_failed_reruns_the_failures() {
    assert_same_after(&["-q"], &["--lf"]);
}

#[test]
fn failed_first() {
    assert_same_after(&["-q"], &["--ff"]);
}

#[test]
fn new_first() {
    assert_same_after(&["-q"], &["--nf"]);
}

#[test]
fn last_failed_with_no_failures_none() {
    assert_same_after(&["-q", "-k", "test_pass"], &["--lf", "--lfnf=none"]);
}

#[test]
fn cache_clear_then_last_failed() {
    assert_same_after(&["-q"], &["--lf", "--cache-clear"]);
}

#[test]
fn cache_show() {
    let (ps, rs) = (rich_suite(), rich_suite());
    run_command(&python(), &["-m".into(), "pytest".into(), "-q".into()], ps.path(), &[]);
    let py = python().display().to_string();
    run_command(&rpytest_bin(), &["--python".into(), py.clone(), "-n".into(), "2".into(), "-q".into()], rs.path(), &[]);
    let pytest = run_command(&python(), &["-m".into(), "pytest".into(), "--cache-show".into()], ps.path(), &[]);
    let rpytest = run_command(&rpytest_bin(), &["--python".into(), py, "--cache-show".into()], rs.path(), &[]);
    let pair = Pair { pytest, rpytest };
    let (p, r) = (&pair.pytest, &pair.rpytest);
    let lines = |s: &str, dir: &Path| normalized(&s.lines().collect::<Vec<_>>(), dir);
    // The sink wrote pytest's own lastfailed cache: the same entries.
    check(
        &pair,
        p.code == r.code && lines(&p.stdout, ps.path()) == lines(&r.stdout, rs.path()),
        "--cache-show differs",
    );
}
