//! Terminal text in pytest's forms: separator lines, durations, the final
//! counts line. Pure functions, so the exact wording is unit-tested.

use console::Style;

/// pytest's `get_terminal_width`: COLUMNS, else the terminal, else 80; never under 40.
pub fn terminal_width() -> usize {
    let width = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse::<usize>().ok())
        .or_else(|| {
            let term = console::Term::stdout();
            term.is_term().then(|| term.size().1 as usize)
        })
        .unwrap_or(80);
    if width < 40 {
        80
    } else {
        width
    }
}

/// pytest's `TerminalWriter.sep`: `==== title ====` filling `width`.
pub fn sep(ch: char, title: Option<&str>, width: usize) -> String {
    let mut line = match title {
        Some(title) => {
            let n = ((width as isize - title.chars().count() as isize - 2) / 2).max(1) as usize;
            let fill: String = std::iter::repeat(ch).take(n).collect();
            format!("{fill} {title} {fill}")
        }
        None => std::iter::repeat(ch).take(width).collect(),
    };
    if line.chars().count() < width && !ch.is_whitespace() {
        line.push(ch);
    }
    line
}

/// pytest's `format_session_duration`.
pub fn session_duration(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{seconds:.2}s")
    } else {
        let whole = seconds as u64;
        format!("{seconds:.2}s ({}:{:02}:{:02})", whole / 3600, whole / 60 % 60, whole % 60)
    }
}

/// Counts by pytest's report categories, in pytest's display order.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    entries: Vec<(String, usize)>,
}

const KNOWN: &[&str] = &["failed", "passed", "skipped", "deselected", "xfailed", "xpassed", "warnings", "error"];

impl Counts {
    pub fn add(&mut self, category: &str, n: usize) {
        if category.is_empty() || n == 0 {
            return;
        }
        match self.entries.iter_mut().find(|(c, _)| c == category) {
            Some((_, count)) => *count += n,
            None => self.entries.push((category.to_string(), n)),
        }
    }

    pub fn get(&self, category: &str) -> usize {
        self.entries.iter().find(|(c, _)| c == category).map_or(0, |(_, n)| *n)
    }

    /// Known categories first in pytest's order, then others as they came.
    fn ordered(&self) -> Vec<(&str, usize)> {
        let mut out: Vec<(&str, usize)> = KNOWN.iter().map(|k| (*k, self.get(k))).filter(|(_, n)| *n > 0).collect();
        out.extend(self.entries.iter().filter(|(c, _)| !KNOWN.contains(&c.as_str())).map(|(c, n)| (c.as_str(), *n)));
        out
    }

    /// pytest's main colour: red on failures or errors, yellow on warnings,
    /// skips and the like, green when only passes.
    pub fn main_style(&self) -> Style {
        let red = ["failed", "error"].iter().any(|k| self.get(k) > 0);
        let yellow = self.ordered().iter().any(|(k, _)| !matches!(*k, "passed" | "failed" | "error"));
        if red {
            Style::new().red().bold()
        } else if yellow || self.get("passed") == 0 {
            Style::new().yellow().bold()
        } else {
            Style::new().green().bold()
        }
    }

    /// `1 failed, 9 passed, 2 warnings, 1 error`, or `no tests ran`.
    pub fn phrase(&self) -> String {
        let parts: Vec<String> = self
            .ordered()
            .into_iter()
            .map(|(key, n)| format!("{n} {}", plural(key, n)))
            .collect();
        if parts.is_empty() {
            "no tests ran".to_string()
        } else {
            parts.join(", ")
        }
    }
}

/// pytest's `_make_plural`.
fn plural(noun: &str, count: usize) -> String {
    match noun {
        "error" | "warnings" | "test" => {
            let noun = noun.replace("warnings", "warning");
            if count == 1 {
                noun
            } else {
                noun + "s"
            }
        }
        _ => noun.to_string(),
    }
}

/// pytest's `_format_trimmed`: first line of `msg` in " - {msg}", cut to fit.
pub fn trimmed_message(msg: &str, available: isize) -> Option<String> {
    let msg = msg.split('\n').next().unwrap_or("");
    let format_width = 3;
    if format_width + 3 > available {
        return None;
    }
    let mut msg: Vec<char> = msg.chars().collect();
    if format_width + msg.len() as isize > available {
        let keep = (available - 3 - format_width).max(0) as usize;
        msg.truncate(keep);
        msg.extend("...".chars());
    }
    Some(format!(" - {}", msg.into_iter().collect::<String>()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_match_pytest() {
        assert_eq!(sep('=', Some("FAILURES"), 80).len(), 80);
        assert_eq!(
            sep('=', Some("1 passed in 0.01s"), 80),
            "============================== 1 passed in 0.01s ==============================="
        );
        assert_eq!(sep('_', Some("test_fail"), 80).len(), 80);
        assert_eq!(sep('-', None, 10), "----------");
    }

    #[test]
    fn counts_line_wording_and_order() {
        let mut c = Counts::default();
        c.add("passed", 9);
        c.add("failed", 1);
        c.add("", 5);
        c.add("warnings", 1);
        c.add("error", 2);
        c.add("skipped", 1);
        assert_eq!(c.phrase(), "1 failed, 9 passed, 1 skipped, 1 warning, 2 errors");
        assert_eq!(Counts::default().phrase(), "no tests ran");
    }

    #[test]
    fn durations_like_pytest() {
        assert_eq!(session_duration(0.1234), "0.12s");
        assert_eq!(session_duration(65.0), "65.00s (0:01:05)");
    }

    #[test]
    fn messages_are_trimmed_to_the_width() {
        assert_eq!(trimmed_message("short\nsecond", 40).as_deref(), Some(" - short"));
        assert_eq!(trimmed_message("abcdefghij", 10).as_deref(), Some(" - abcd..."));
        assert_eq!(trimmed_message("abc", 4), None);
    }
}
