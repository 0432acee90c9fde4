//! What the zygote's process ending means for the run: the exit-code policy.
//!
//! The zygote is the run's main process: pytest ends the session there,
//! and the exit status that session leaves is the run's. When it ends
//! otherwise (it never said hello, it could not import pytest, it died
//! before collecting or during the run) the run ends with an error that
//! says which. Plain logic, so each path is a unit test.

use std::path::Path;

use crate::exit_code::ExitCode;
use crate::python::interpreter;
use crate::run::crash::describe_exit;

/// The zygote's exit status when it cannot import pytest.
pub const EXIT_NO_PYTEST: i32 = 97;
/// The zygote's exit status when it cannot connect to the engine's socket
/// (`bootstrap.connect_to_engine`).
pub const EXIT_NO_ENGINE: i32 = 96;

/// Where the run stood when the zygote ended.
#[derive(Debug, Default)]
pub struct ZygoteExitFacts {
    /// The code already decided, waiting only for this exit.
    pub exit_after_zygote: Option<ExitCode>,
    /// The zygote was ending pytest's session with the run's reports.
    pub finishing: bool,
    /// The run already ended, or only its summary remains.
    pub run_over: bool,
    pub collected: bool,
    /// It said hello (or was a warm zygote, which had).
    pub said_hello: bool,
    /// The exit status pytest's session left, if reported.
    pub session_ended: Option<ExitCode>,
}

#[derive(Debug, PartialEq)]
pub enum ZygoteExitVerdict {
    /// End the run with this code now.
    Finish(ExitCode),
    /// pytest ended the session: summarize with this code (and say this).
    SessionFinished { code: ExitCode, note: Option<String> },
    /// Nothing waits for this exit.
    Ignore,
    /// It ended before the run could start: say this, exit with the code.
    Failed { message: String, code: ExitCode },
    /// It died while workers ran: every test left ends as lost with it.
    DiedDuringRun,
}

pub fn verdict(facts: &ZygoteExitFacts, code: Option<i32>, signal: Option<i32>, python: &Path) -> ZygoteExitVerdict {
    if let Some(code) = facts.exit_after_zygote {
        return ZygoteExitVerdict::Finish(code);
    }
    if facts.finishing {
        let (code, note) = session_exit_code(facts.session_ended, code);
        return ZygoteExitVerdict::SessionFinished { code, note };
    }
    if facts.run_over {
        return ZygoteExitVerdict::Ignore;
    }
    if code == Some(EXIT_NO_PYTEST) && !facts.collected {
        let message = format!("rpytest: error: {}", interpreter::missing_pytest(python));
        return ZygoteExitVerdict::Failed { message, code: ExitCode::UsageError };
    }
    if let Some(code) = facts.session_ended {
        return ZygoteExitVerdict::Finish(code);
    }
    if code == Some(EXIT_NO_ENGINE) && !facts.said_hello {
        let message = "rpytest: error: the Python zygote could not connect to this run's socket (its stderr above \
                       says why): the run's socket directory in $TMPDIR was removed or is unreachable. \
                       This is not a problem with the interpreter; run again, and report it if it recurs"
            .to_string();
        return ZygoteExitVerdict::Failed { message, code: ExitCode::InternalError };
    }
    if !facts.collected && !facts.said_hello {
        // It never said hello: not an interpreter that can run pytest.
        let message = format!("rpytest: error: {}", interpreter::unusable(python, &describe_exit(code, None)));
        return ZygoteExitVerdict::Failed { message, code: ExitCode::UsageError };
    }
    if !facts.collected {
        let how = describe_exit(code, signal);
        let message = format!("rpytest: error: the Python zygote ({}) {how} before collecting", python.display());
        return ZygoteExitVerdict::Failed {
            message,
            code: code.filter(|c| *c != 0).map_or(ExitCode::InternalError, ExitCode::from_code),
        };
    }
    ZygoteExitVerdict::DiedDuringRun
}

/// The zygote is gone after finishing the session: the exit status the
/// session left is the run's, or the process's own if it ended first
/// (`os._exit` or an exception in `pytest_sessionfinish`).
pub fn session_exit_code(session_ended: Option<ExitCode>, process_code: Option<i32>) -> (ExitCode, Option<String>) {
    match (session_ended, process_code) {
        (Some(code), _) => (code, None),
        (None, Some(code)) => (
            ExitCode::from_code(code),
            Some(format!("rpytest: the zygote exited with code {code} while pytest was ending the session")),
        ),
        (None, None) => (
            ExitCode::InternalError,
            Some("rpytest: error: the zygote was killed while pytest was ending the session".to_string()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(facts: ZygoteExitFacts, code: Option<i32>) -> ZygoteExitVerdict {
        verdict(&facts, code, None, Path::new("/usr/bin/python3"))
    }

    #[test]
    fn the_sessions_exit_status_is_the_runs() {
        let facts = ZygoteExitFacts {
            finishing: true,
            session_ended: Some(ExitCode::TestsFailed),
            collected: true,
            ..Default::default()
        };
        assert_eq!(
            ended(facts, Some(0)),
            ZygoteExitVerdict::SessionFinished { code: ExitCode::TestsFailed, note: None }
        );
    }

    #[test]
    fn an_exit_while_ending_the_session_is_said_and_its_code_kept() {
        let facts = ZygoteExitFacts { finishing: true, collected: true, ..Default::default() };
        match ended(facts, Some(7)) {
            ZygoteExitVerdict::SessionFinished { code: ExitCode::Other(7), note: Some(note) } => {
                assert!(note.contains("code 7"))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(session_exit_code(None, None).0, ExitCode::InternalError);
    }

    #[test]
    fn a_missing_pytest_is_a_usage_error_that_says_so() {
        match ended(ZygoteExitFacts::default(), Some(EXIT_NO_PYTEST)) {
            ZygoteExitVerdict::Failed { message, code } => {
                assert_eq!(code, ExitCode::UsageError);
                assert!(message.contains("pytest"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_lost_socket_is_named_not_blamed_on_the_interpreter() {
        match ended(ZygoteExitFacts::default(), Some(EXIT_NO_ENGINE)) {
            ZygoteExitVerdict::Failed { message, code: ExitCode::InternalError } => {
                assert!(message.contains("socket") && !message.contains("not a usable"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_zygote_dead_before_collecting_keeps_its_own_code() {
        let facts = ZygoteExitFacts { said_hello: true, ..Default::default() };
        match ended(facts, Some(2)) {
            ZygoteExitVerdict::Failed { message, code: ExitCode::Interrupted } => {
                assert!(message.contains("before collecting"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        let facts = ZygoteExitFacts { said_hello: true, ..Default::default() };
        assert!(matches!(ended(facts, Some(0)), ZygoteExitVerdict::Failed { code: ExitCode::InternalError, .. }));
    }

    #[test]
    fn a_death_during_the_run_and_a_decided_code() {
        let facts = ZygoteExitFacts { said_hello: true, collected: true, ..Default::default() };
        assert!(matches!(ended(facts, None), ZygoteExitVerdict::DiedDuringRun));
        let facts = ZygoteExitFacts { exit_after_zygote: Some(ExitCode::Interrupted), ..Default::default() };
        assert_eq!(ended(facts, Some(0)), ZygoteExitVerdict::Finish(ExitCode::Interrupted));
        let facts = ZygoteExitFacts { run_over: true, collected: true, ..Default::default() };
        assert_eq!(ended(facts, Some(0)), ZygoteExitVerdict::Ignore);
    }
}
