//! rpytest splits its command line: its own flags (`-n`, `--python`,
//! `--worker-start`, `--color`) are taken out and everything else goes to
//! pytest unchanged. These tests check the split: option spellings, options
//! whose value is a separate argument, config-affecting pytest options, the
//! `[tool.rpytest]` default, and flags rpytest deliberately refuses.

mod common;
use common::*;

fn suite() -> Suite {
    Suite::new(&[(
        "test_pt.py",
        r#"
        import warnings
        import pytest

        def test_alpha():
            pass

        def test_beta():
            assert 0

        @pytest.mark.xfail
        def test_xpass():
            pass

        def test_warns():
            warnings.warn("w", UserWarning)

        @pytest.mark.skip(reason="s")
        def test_skipped():
            pass
        "#,
    )])
}

#[test]
fn worker_count_inline_short_form() {
    assert_same_with(&suite(), &[], &["-n2"]);
}

#[test]
fn worker_count_long_form_with_equals() {
    assert_same_with(&suite(), &[], &["--numprocesses=2"]);
}

#[test]
fn own_flags_after_pytest_args() {
    // rpytest's flags may come anywhere on the line.
    let s = suite();
    let pytest = run_pytest(&s, &["-v", "-k", "alpha or beta"]);
    let rpytest = run_rpytest(&s, &["-k", "alpha or beta", "-n", "2"]);
    assert_pair_same(&Pair { pytest, rpytest });
}

#[test]
fn override_ini_xfail_strict_changes_outcome() {
    let pair = assert_same(&suite(), &["-o", "xfail_strict=true"], "2");
    check(&pair, pair.rpytest.words("test_pt.py::test_xpass") == ["FAILED"], "xfail_strict not applied");
}

#[test]
fn warnings_as_errors_with_w_flag() {
    let pair = assert_same(&suite(), &["-W", "error::UserWarning"], "2");
    check(&pair, pair.rpytest.words("test_pt.py::test_warns") == ["FAILED"], "-W error not applied");
}

#[test]
fn report_chars_ra_summary_same_lines() {
    let s = suite();
    let pytest = run_pytest(&s, &["-rA"]);
    let rpytest = run_rpytest(&s, &["-n", "2", "-rA"]);
    let pair = Pair { pytest, rpytest };
    assert_clean_exit(&pair.rpytest);
    check(
        &pair,
        summary_lines(&pair.pytest.stdout) == summary_lines(&pair.rpytest.stdout),
        "-rA short summary differs",
    );
}

#[test]
fn deselect_with_separate_value() {
    assert_same(&suite(), &["--deselect", "test_pt.py::test_beta"], "2");
}

#[test]
fn p_no_plugin_with_separate_value() {
    // `-p no:warnings` disables the warnings plugin: no warning count.
    let pair = assert_same(&suite(), &["-p", "no:warnings"], "2");
    check(&pair, !pair.rpytest.final_line.clone().unwrap_or_default().contains("warning"), "-p no:warnings ignored");
}

#[test]
fn unsupported_looponfail_is_refused_with_exit_4() {
    // rpytest refuses xdist's -f rather than silently ignoring it (src/cli/pytest_flags.rs).
    let r = run_rpytest(&suite(), &["-n", "2", "-f"]);
    assert_clean_exit(&r);
    assert_eq!(r.code, 4, "{}", r.dump());
    assert!(r.stderr.contains("-f"), "{}", r.dump());
}

#[test]
fn pyproject_default_workers_is_used_without_n() {
    let s = Suite::new(&[
        (
            "pyproject.toml",
            r#"
            [tool.rpytest]
            default_workers = 2
            "#,
        ),
        (
            "test_count.py",
            r#"
            import os

            def test_count():
                assert os.environ.get("PYTEST_XDIST_WORKER_COUNT") == "2"
            "#,
        ),
    ]);
    let r = run_rpytest(&s, &[]);
    assert_clean_exit(&r);
    assert_eq!(r.code, 0, "{}", r.dump());
}

#[test]
fn explicit_n_overrides_pyproject_default() {
    let s = Suite::new(&[
        ("pyproject.toml", "[tool.rpytest]\ndefault_workers = 2\n"),
        (
            "test_count.py",
            r#"
            import os

            def test_count():
                assert os.environ.get("PYTEST_XDIST_WORKER_COUNT") == "1"
            "#,
        ),
    ]);
    let r = run_rpytest(&s, &["-n", "1"]);
    assert_clean_exit(&r);
    assert_eq!(r.code, 0, "{}", r.dump());
}

#[test]
fn running_from_a_subdirectory_uses_the_same_rootdir() {
    let s = Suite::new(&[
        ("tests/test_sub.py", "def test_in_sub():\n    pass\n\ndef test_fails():\n    assert 0\n"),
        ("test_top.py", "def test_top():\n    pass\n"),
    ]);
    let py = python();
    let sub = s.join("tests");
    let pargs: Vec<String> = ["-m", "pytest", "-p", "no:cacheprovider", "-v"].iter().map(|x| x.to_string()).collect();
    let pytest = run_command(&py, &pargs, &sub, &[]);
    let rargs: Vec<String> = ["--python", py.to_str().unwrap(), "--color=no", "-p", "no:cacheprovider", "-n", "2"]
        .iter()
        .map(|x| x.to_string())
        .collect();
    let rpytest = run_command(&rpytest_bin(), &rargs, &sub, &[]);
    assert_pair_same(&Pair { pytest, rpytest });
}

/// xdist users keep `-n` in addopts: rpytest takes it as its worker count,
/// and `-n` on the command line still wins.
#[test]
fn n_in_addopts_is_the_worker_count() {
    let s = Suite::new(&[
        ("pytest.ini", "[pytest]\naddopts = -n 3\n"),
        (
            "test_n.py",
            "import os, pytest\n\n@pytest.mark.parametrize('i', range(6))\ndef test_count(i):\n    assert os.environ['PYTEST_XDIST_WORKER_COUNT'] == os.environ['EXPECTED']\n",
        ),
    ]);
    let r = run_rpytest_env(&s, &["-v"], &[("EXPECTED", "3")]);
    assert_clean_exit(&r);
    assert_eq!(r.code, 0, "addopts -n 3 should give 3 workers\n{}", r.dump());
    let r = run_rpytest_env(&s, &["-n", "2"], &[("EXPECTED", "2")]);
    assert_eq!(r.code, 0, "-n on the command line should win over addopts\n{}", r.dump());
    let r = run_rpytest_env(&s, &["--worker-start=spawn"], &[("EXPECTED", "3")]);
    assert_eq!(r.code, 0, "spawned workers must not start xdist from addopts\n{}", r.dump());
}

/// xdist's --maxprocesses caps `-n auto`, as under xdist.
#[test]
fn maxprocesses_caps_n_auto() {
    let s = Suite::new(&[(
        "test_n.py",
        "import os, pytest\n\n@pytest.mark.parametrize('i', range(4))\ndef test_count(i):\n    assert os.environ['PYTEST_XDIST_WORKER'] == 'gw0'\n",
    )]);
    let r = run_rpytest(&s, &["-n", "auto", "--maxprocesses=1"]);
    assert_clean_exit(&r);
    assert_eq!(r.code, 0, "--maxprocesses=1 should leave one worker\n{}", r.dump());
}

/// Options rpytest cannot honour are refused (exit 4) with a reason, never
/// accepted and ignored.
#[test]
fn xdist_and_fixture_trace_options_it_cannot_honour_are_refused() {
    for flag in [
        "--setup-only",
        "--setup-plan",
        "--pastebin=failed",
        "--px=popen",
        "--rsyncdir=x",
        "--maxschedchunk=4",
        "--loadscope-reorder",
    ] {
        let r = run_rpytest(&suite(), &["-n", "2", flag]);
        assert_eq!(r.code, 4, "{flag} should be refused\n{}", r.dump());
        let name = flag.split('=').next().unwrap();
        assert!(r.stderr.contains(name) && r.stderr.contains("not supported"), "{}", r.dump());
    }
}
