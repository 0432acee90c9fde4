//! What rpytest must know of pytest's flags to split the command line:
//! those it refuses (and how argparse bundles short flags), and those
//! whose value may follow as a separate argument.

use super::ClapOrUsage;
use crate::errors::UsageError;

/// pytest flags rpytest refuses until it can honour them across workers.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("--setup-show", "per-fixture output from workers is not rendered yet; use `python -m pytest --setup-show`"),
    ("--setup-only", "per-fixture output from workers is not rendered yet; use `python -m pytest --setup-only`"),
    ("--setup-plan", "per-fixture output from workers is not rendered yet; use `python -m pytest --setup-plan`"),
    ("--pastebin", "pytest sends to the pastebin from its terminal summary, which rpytest renders itself"),
    ("--tx", "xdist's remote distribution is not supported"),
    ("--px", "xdist's remote distribution is not supported"),
    ("--rsyncdir", "xdist's remote distribution is not supported"),
    ("--rsyncignore", "xdist's remote distribution is not supported"),
    ("--looponfail", "xdist's loop-on-fail mode is not supported"),
    ("-f", "xdist's loop-on-fail mode is not supported"),
    ("--maxschedchunk", "rpytest sizes its batches from the queue and recorded durations; see docs/architecture.md"),
    ("--loadscope-reorder", "rpytest orders --dist loadscope groups longest first from history"),
    ("--no-loadscope-reorder", "rpytest orders --dist loadscope groups longest first from history"),
];

/// pytest options whose value may follow as a separate argument.
pub(crate) const TAKES_VALUE: &[&str] = &[
    "-k",
    "-m",
    "-p",
    "-c",
    "-o",
    "-r",
    "-W",
    "--deselect",
    "--ignore",
    "--ignore-glob",
    "--rootdir",
    "--basetemp",
    "--junitxml",
    "--junit-xml",
    "--junitprefix",
    "--junit-prefix",
    "--tb",
    "--capture",
    "--import-mode",
    "--confcutdir",
    "--override-ini",
    "--show-capture",
    "--log-level",
    "--log-format",
    "--log-date-format",
    "--log-cli-level",
    "--log-cli-format",
    "--log-cli-date-format",
    "--log-file",
    "--log-file-level",
    "--log-file-format",
    "--log-file-date-format",
    "--log-file-mode",
    "--pythonwarnings",
    "--inifile",
    "--config-file",
    "--cache-show",
    "--doctest-glob",
    "--doctest-report",
    "--verbosity",
    "--assert",
];
pub(super) fn reject_unsupported(arg: &str) -> Result<(), ClapOrUsage> {
    let name = arg.split('=').next().unwrap_or(arg);
    let bundle = short_bundle(arg);
    let refused =
        UNSUPPORTED.iter().find(|(flag, _)| *flag == name || (flag.len() == 2 && bundle.contains(&flag[1..])));
    match refused {
        Some((flag, why)) => {
            Err(ClapOrUsage::Usage(UsageError::Unsupported { flag: flag.to_string(), why: why.to_string() }))
        }
        None => Ok(()),
    }
}

/// The flag letters of `-vx`-style bundles, as argparse allows them. Stops at
/// a flag that takes a value (`-rfE` is -r with value "fE": no flags).
fn short_bundle(arg: &str) -> String {
    if !arg.starts_with('-') || arg.starts_with("--") || arg.len() <= 2 {
        return String::new();
    }
    let letters: String = arg[1..].chars().take_while(|c| !"kmpcorWn".contains(*c)).collect();
    if letters.chars().all(|c| "vqsxlf".contains(c)) {
        letters
    } else {
        String::new()
    }
}
