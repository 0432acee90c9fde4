//! pytest's `short test summary info`: one line per test for each `-r`
//! character, in the order the characters were given: `f` failed (and
//! FLAKY under `--retries`), `E` errors, `p` passed, `x` xfailed, `X`
//! xpassed, `s`/`S` skips, folded by place and reason unless
//! `--no-fold-skipped`.

use super::progress::word_style;
use super::render::{sep, trimmed_message, Mark};
use super::result::FLAKY_WORD;
use super::{push_line, RunReport};
use crate::protocol::SkipKey;

impl RunReport {
    pub(super) fn short_summary(&self, out: &mut String) {
        let mut lines = Vec::new();
        for ch in self.settings.reportchars.chars() {
            match ch {
                'f' => {
                    self.simple_lines(&mut lines, "failed");
                    self.flaky_lines(&mut lines);
                }
                'E' => self.simple_lines(&mut lines, "error"),
                'p' => self.simple_lines(&mut lines, "passed"),
                'x' => self.xfail_lines(&mut lines, "xfailed"),
                'X' => self.xfail_lines(&mut lines, "xpassed"),
                's' | 'S' => self.skip_lines(&mut lines),
                _ => {}
            }
        }
        if lines.is_empty() {
            return;
        }
        let title = sep('=', Some("short test summary info"), self.settings.width);
        push_line(out, &self.paint(&[Mark::Cyan, Mark::Bold], &title));
        lines.iter().for_each(|line| push_line(out, line));
    }

    /// pytest's `_get_line_with_reprcrash_message`.
    fn simple_lines(&self, lines: &mut Vec<String>, category: &str) {
        if category == "error" {
            for report in self.collect_errors() {
                lines.push(format!("{} {}", self.paint(&[Mark::Red], "ERROR"), self.nodeid(&report.id)));
            }
        }
        for (result, phase) in self.phases_of(category) {
            let word = self.paint(&[word_style(phase)], &phase.word);
            let mut line = format!("{} {}", word, self.nodeid(&result.nodeid));
            if let Some(msg) = &phase.crash {
                // pytest measures the line with wcswidth, which is -1 when the
                // line holds escape sequences: colour leaves one column more.
                let used = if self.settings.color {
                    -1
                } else {
                    (phase.word.chars().count() + 1 + result.nodeid.chars().count()) as isize
                };
                if self.settings.summary_untrimmed {
                    line += &format!(" - {msg}");
                } else if let Some(m) = trimmed_message(msg, self.settings.width as isize - used) {
                    line += &m;
                }
            }
            lines.push(line);
        }
    }

    /// `--retries`: each test that passed on a later try, with that try.
    fn flaky_lines(&self, lines: &mut Vec<String>) {
        for result in self.results.iter().filter(|r| r.flaky()) {
            let word = self.paint(&[Mark::Yellow], FLAKY_WORD);
            lines.push(format!("{word} {} - passed on try {}", self.nodeid(&result.nodeid), result.tries));
        }
    }

    fn xfail_lines(&self, lines: &mut Vec<String>, category: &str) {
        let version = self.settings.pytest_version;
        for (result, phase) in self.phases_of(category) {
            let mut line = self.paint(&[Mark::Yellow], &phase.word);
            if category == "xfailed" && phase.when != "call" && version >= (9, 0) {
                line += &format!(" at {} of", phase.when);
            }
            line += &format!(" {}", self.nodeid(&result.nodeid));
            let reason = phase.wasxfail.as_deref().unwrap_or("");
            if category == "xpassed" && version < (8, 0) {
                line += &format!(" {reason}"); // pytest<8: no dash, even without a reason
            } else if !reason.is_empty() {
                line += &format!(" - {reason}");
            }
            lines.push(line);
        }
    }

    fn skip_lines(&self, lines: &mut Vec<String>) {
        if self.settings.fold_skipped {
            self.folded_skip_lines(lines);
        } else {
            self.unfolded_skip_lines(lines);
        }
    }

    /// --no-fold-skipped: one line per skip, the reason as it was given.
    fn unfolded_skip_lines(&self, lines: &mut Vec<String>) {
        let word = self.paint(&[Mark::Yellow], "SKIPPED");
        let collected = self.collect_reports.iter().filter_map(|c| Some((c.id.as_str(), c.skip.as_ref()?)));
        let phases = self.phases_of("skipped");
        let ran = phases.iter().filter_map(|(r, p)| Some((r.nodeid.as_str(), p.skip.as_ref()?)));
        for (nodeid, (_, _, reason)) in collected.chain(ran) {
            let mut line = format!("{word} {}", self.nodeid(nodeid));
            if !reason.is_empty() {
                line += &format!(" - {reason}");
            }
            lines.push(line);
        }
    }

    /// pytest's `_folded_skips`: `SKIPPED [n] path:line: reason`, one line
    /// per place and reason, in the order each first appeared.
    fn folded_skip_lines(&self, lines: &mut Vec<String>) {
        let word = self.paint(&[Mark::Yellow], "SKIPPED");
        let mut folded: Vec<(SkipKey, usize)> = Vec::new();
        let keys = self
            .collect_reports
            .iter()
            .filter_map(|c| c.skip.clone())
            .chain(self.phases_of("skipped").into_iter().filter_map(|(_, p)| p.skip.clone()));
        for key in keys {
            match folded.iter_mut().find(|(k, _)| *k == key) {
                Some((_, n)) => *n += 1,
                None => folded.push((key, 1)),
            }
        }
        for ((path, line, reason), n) in folded {
            let reason = reason.strip_prefix("Skipped: ").unwrap_or(&reason);
            lines.push(match line {
                Some(line) => format!("{word} [{n}] {path}:{line}: {reason}"),
                None => format!("{word} [{n}] {path}: {reason}"),
            });
        }
    }
}
