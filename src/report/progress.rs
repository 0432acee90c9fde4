//! The progress while tests run: a line per finished test
//! (`path::test PASSED`, `[worker N] ` first under `-v`), or its letter
//! under `-q`, wrapped at the terminal's width. Recording a test also
//! counts it for the closing counts line.

use super::render::Mark;
use super::result::{FLAKY_LETTER, FLAKY_WORD, RETRY_LETTER};
use super::{RunReport, TestResult};
use crate::protocol::PhaseRecord;

impl RunReport {
    /// Records a finished test; returns the progress text to print for it.
    pub fn record(&mut self, result: TestResult) -> String {
        let mut out = String::new();
        let flaky = result.flaky();
        if flaky {
            self.counts.add("flaky", 1);
        }
        for phase in &result.phases {
            self.counts.add(&phase.category, 1);
            if phase.letter.is_empty() && phase.word.is_empty() {
                continue;
            }
            let (mark, letter, word) = match flaky && phase.when == "call" {
                true => (Mark::Yellow, FLAKY_LETTER, format!("{FLAKY_WORD} (passed on try {})", result.tries)),
                false => (word_style(phase), phase.letter.as_str(), phase.word.clone()),
            };
            out += &self.progress(&result.nodeid, result.worker, &[mark], letter, &word);
        }
        self.counts.add("warnings", result.warnings.len());
        if self.settings.instafail {
            let failures = self.instant_failures(&result);
            if !failures.is_empty() && self.column > 0 {
                // pytest-instafail ends the line of progress letters first.
                out.push('\n');
                self.column = 0;
            }
            out += &failures;
        }
        self.results.push(result);
        out
    }

    /// A failed try that goes back in the queue (`--retries`): its line
    /// (`path::test FAILED (try 1 of 3, retrying)`) or, under `-q`, an R.
    pub fn retrying(
        &mut self,
        nodeid: &str,
        worker: usize,
        failed: Option<&PhaseRecord>,
        (n, of): (usize, usize),
    ) -> String {
        let word = failed.map_or("CRASHED", |p| p.word.as_str());
        let word = if word.is_empty() { "FAILED" } else { word };
        self.progress(nodeid, worker, &[Mark::Red], RETRY_LETTER, &format!("{word} (try {n} of {of}, retrying)"))
    }

    /// One progress item: a letter under `-q`, else a line (with the worker under `-v`).
    fn progress(&mut self, nodeid: &str, worker: usize, style: &[Mark], letter: &str, word: &str) -> String {
        let mut out = String::new();
        if self.settings.verbosity < 0 {
            if self.column >= self.settings.width {
                out.push('\n');
                self.column = 0;
            }
            out += &self.paint(style, letter);
            self.column += letter.chars().count();
            return out;
        }
        if self.settings.verbosity > 0 {
            out += &format!("[worker {worker}] ");
        }
        out + &format!("{nodeid} {}\n", self.paint(style, word))
    }
}

/// pytest's colours for an outcome word.
pub(super) fn word_style(phase: &PhaseRecord) -> Mark {
    match (phase.outcome.as_str(), phase.wasxfail.is_some()) {
        ("passed", false) => Mark::Green,
        ("failed", _) => Mark::Red,
        _ => Mark::Yellow,
    }
}
