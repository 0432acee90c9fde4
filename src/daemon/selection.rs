//! Which of a run's pytest arguments only select, and so stay out of the
//! daemon's key.
//!
//! A warm session (a checkpoint) has configured pytest and collected; a
//! run that differs from it only in what it selects can fork from it and
//! apply its selection there (`pyworker/rpytest_worker/selection.py`).
//! Left out of the key: `-k`, `-m`, `--deselect`, `-x`/`--exitfirst`,
//! `--maxfail`, `--ff`, `--nf`, `--sw` (with `--sw-skip`, `--sw-reset`),
//! `--affected` and the positional paths and node ids. Everything else
//! stays in, compared exactly. The split errs towards the key: an argument
//! it cannot place (the value of an option it does not know) stays in, and
//! the checkpoint checks the whole command line again with pytest's own
//! parser before it serves a run.

use crate::cli::pytest_flags::TAKES_VALUE;

/// Options that only select, and whether each takes a value.
/// `--ff`, `--nf` and `--sw` only order or cut the collected list: the fork
/// reads pytest's cache again for them (`cache_plugins.py`). `--lf` is not
/// here: it skips whole files while collecting.
const SELECTING: &[(&str, bool)] = &[
    ("-k", true),
    ("-m", true),
    ("--deselect", true),
    ("-x", false),
    ("--exitfirst", false),
    ("--maxfail", true),
    ("--ff", false),
    ("--failed-first", false),
    ("--nf", false),
    ("--new-first", false),
    ("--sw", false),
    ("--stepwise", false),
    ("--sw-skip", false),
    ("--stepwise-skip", false),
    ("--sw-reset", false),
    ("--stepwise-reset", false),
    (crate::cli::AFFECTED_OPTION, false),
];
/// pytest's short flags that take no value: a bundle of them (`-xvs`)
/// loses its `x` to the selection.
const SHORT_BOOLEANS: &str = "vqslx";
/// Long options known to take no value: a word after one is a path.
const LONG_BOOLEANS: &[&str] = &[
    "--verbose",
    "--quiet",
    "--exitfirst",
    "--strict-markers",
    "--strict-config",
    "--strict",
    "--showlocals",
    "--no-header",
    "--no-summary",
    "--co",
    "--collect-only",
    "--collectonly",
    "--continue-on-collection-errors",
    "--runxfail",
    "--full-trace",
    "--disable-warnings",
    "--disable-pytest-warnings",
    "--keep-duplicates",
    "--noconftest",
    "--doctest-modules",
    "--doctest-continue-on-failure",
    "--color=yes",
    "--color=no",
    "--color=auto",
    "--lf",
    "--last-failed",
    "--ff",
    "--failed-first",
    "--nf",
    "--new-first",
    "--sw",
    "--stepwise",
    "--cache-clear",
    "--pdb",
    "--trace",
];

/// A command line split into the key's part and the selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// What a checkpoint must have been built with to serve the run.
    pub key_args: Vec<String>,
    /// The positional paths and node ids, in order.
    pub positionals: Vec<String>,
}

impl Split {
    /// The arguments to build a checkpoint with for this run: its key and
    /// its paths, without the selecting options (each run brings its own).
    pub fn build_args(&self) -> Vec<String> {
        self.key_args.iter().chain(&self.positionals).cloned().collect()
    }
}

pub fn split(args: &[String]) -> Split {
    let mut key_args = Vec::new();
    let mut positionals = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "--" {
            key_args.push(arg.clone());
            key_args.extend(rest.by_ref().cloned());
            break;
        }
        if let Some(takes_value) = selecting(arg) {
            if takes_value {
                rest.next();
            }
            continue;
        }
        if let Some(kept) = without_exitfirst(arg) {
            key_args.push(kept);
            continue;
        }
        if !arg.starts_with('-') || arg == "-" {
            positionals.push(arg.clone());
            continue;
        }
        key_args.push(arg.clone());
        if may_take_separate_value(arg) {
            if let Some(value) = rest.next() {
                key_args.push(value.clone());
            }
        }
    }
    Split { key_args, positionals }
}

/// `Some(takes a separate value)` for a selecting option.
fn selecting(arg: &str) -> Option<bool> {
    for (flag, takes_value) in SELECTING {
        if arg == *flag {
            return Some(*takes_value);
        }
        let attached = if flag.starts_with("--") { arg.strip_prefix(&format!("{flag}=")) } else { None };
        let short_attached = if !flag.starts_with("--") && *takes_value { arg.strip_prefix(flag) } else { None };
        if attached.is_some() || short_attached.is_some_and(|v| !v.is_empty()) {
            return Some(false);
        }
    }
    None
}

/// A bundle of short boolean flags with an `x` in it, without the `x`
/// (`-xvs` -> `-vs`); `None` when the argument is no such bundle.
fn without_exitfirst(arg: &str) -> Option<String> {
    let flags = arg.strip_prefix('-').filter(|f| !f.starts_with('-') && f.len() > 1)?;
    if !flags.contains('x') || !flags.chars().all(|c| SHORT_BOOLEANS.contains(c)) {
        return None;
    }
    Some(format!("-{}", flags.replace('x', "")))
}

/// Whether the next argument may be this option's value: a known option
/// that takes one, or an option rpytest does not know (kept with its
/// possible value, to be safe).
fn may_take_separate_value(arg: &str) -> bool {
    if arg.contains('=') {
        return false;
    }
    if TAKES_VALUE.contains(&arg) {
        return true;
    }
    match arg.strip_prefix('-').filter(|flags| !flags.starts_with('-')) {
        // A bundle of booleans takes nothing; `-pxdist` has its value attached.
        Some(flags) => flags.len() == 1 && !SHORT_BOOLEANS.contains(flags),
        None => !LONG_BOOLEANS.contains(&arg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    fn check(args: &[&str], key: &[&str], positionals: &[&str]) {
        let split = split(&strings(args));
        assert_eq!(split.key_args, strings(key), "key of {args:?}");
        assert_eq!(split.positionals, strings(positionals), "positionals of {args:?}");
    }

    #[test]
    fn selecting_options_leave_the_key() {
        check(&["-q", "-k", "test_1", "-m", "slow"], &["-q"], &[]);
        check(&["-ktest_1", "--deselect", "a.py::t", "--maxfail=2"], &[], &[]);
        check(&["--maxfail", "3", "-x", "--exitfirst", "-v"], &["-v"], &[]);
        check(&["--deselect=a.py::t", "-q"], &["-q"], &[]);
        check(&["--ff", "--nf", "-q", "--sw-skip", "tests"], &["-q"], &["tests"]);
        check(&["--stepwise", "--lf"], &["--lf"], &[]);
    }

    #[test]
    fn a_bundle_loses_only_its_x() {
        check(&["-xvs"], &["-vs"], &[]);
        check(&["-vx"], &["-v"], &[]);
        check(&["-vs"], &["-vs"], &[]);
    }

    #[test]
    fn paths_and_node_ids_are_positionals() {
        check(&["tests/test_a.py::test_x[1]", "-q", "tests/b"], &["-q"], &["tests/test_a.py::test_x[1]", "tests/b"]);
        check(&["-v", "tests", "--tb", "short", "x.py"], &["-v", "--tb", "short"], &["tests", "x.py"]);
    }

    #[test]
    fn an_unknown_option_keeps_the_word_after_it() {
        check(&["--randomly-seed", "5", "tests"], &["--randomly-seed", "5"], &["tests"]);
        check(&["--timeout=5", "tests"], &["--timeout=5"], &["tests"]);
        check(&["-p", "no:randomly", "tests"], &["-p", "no:randomly"], &["tests"]);
        check(&["-pxdist", "tests"], &["-pxdist"], &["tests"]);
        check(&["--lf", "tests"], &["--lf"], &["tests"]);
    }

    #[test]
    fn everything_after_a_double_dash_stays_in_the_key() {
        check(&["-q", "--", "-k", "x"], &["-q", "--", "-k", "x"], &[]);
    }

    #[test]
    fn build_args_are_the_key_then_the_paths() {
        let split = split(&strings(&["tests", "-k", "x", "-q"]));
        assert_eq!(split.build_args(), strings(&["-q", "tests"]));
    }
}
