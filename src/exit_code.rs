//! pytest's exit codes (`pytest.ExitCode`), for the decisions that pick one.
//!
//! rpytest exits with the code pytest would have, so the run's logic speaks
//! of pytest's names; the number appears only where it leaves the engine
//! (`code()`): the zygote's `finish`, the process's exit status.

/// How a session ended, by pytest's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Every test passed (or none failed).
    Ok,
    TestsFailed,
    /// KeyboardInterrupt, `pytest.exit()` without a code, `session.shouldstop`.
    Interrupted,
    InternalError,
    UsageError,
    NoTestsCollected,
    /// pytest>=9.1 `--max-warnings`: every test passed, with too many warnings.
    MaxWarningsError,
    /// Any other number, chosen by `pytest.exit(returncode=N)`.
    Other(i32),
}

impl ExitCode {
    /// The code for a number; pytest's own numbers get their names.
    pub fn from_code(code: i32) -> Self {
        match code {
            0 => ExitCode::Ok,
            1 => ExitCode::TestsFailed,
            2 => ExitCode::Interrupted,
            3 => ExitCode::InternalError,
            4 => ExitCode::UsageError,
            5 => ExitCode::NoTestsCollected,
            6 => ExitCode::MaxWarningsError,
            other => ExitCode::Other(other),
        }
    }

    /// The process exit status.
    pub fn code(self) -> i32 {
        match self {
            ExitCode::Ok => 0,
            ExitCode::TestsFailed => 1,
            ExitCode::Interrupted => 2,
            ExitCode::InternalError => 3,
            ExitCode::UsageError => 4,
            ExitCode::NoTestsCollected => 5,
            ExitCode::MaxWarningsError => 6,
            ExitCode::Other(code) => code,
        }
    }

    /// Whether pytest prints its summary sections (and calls the plugins'
    /// `pytest_terminal_summary`) for a session ending so: its terminal
    /// reporter does for these codes only.
    pub fn prints_summary(self) -> bool {
        matches!(
            self,
            ExitCode::Ok
                | ExitCode::TestsFailed
                | ExitCode::Interrupted
                | ExitCode::UsageError
                | ExitCode::NoTestsCollected
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_and_pytests_own_get_their_names() {
        for code in -1..10 {
            assert_eq!(ExitCode::from_code(code).code(), code);
        }
        assert_eq!(ExitCode::from_code(2), ExitCode::Interrupted);
        assert_eq!(ExitCode::from_code(7), ExitCode::Other(7));
    }

    #[test]
    fn summary_sections_follow_pytests_terminal_reporter() {
        let summarized: Vec<i32> = (0..8).filter(|&c| ExitCode::from_code(c).prints_summary()).collect();
        assert_eq!(summarized, [0, 1, 2, 4, 5]);
    }
}
