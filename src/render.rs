//! Terminal text in pytest's forms: separator lines, durations, the final
//! counts line. Pure functions, so the exact wording is unit-tested.

/// A text attribute as pytest's `TerminalWriter.markup` writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Red,
    Green,
    Yellow,
    Cyan,
    Bold,
}

impl Mark {
    fn code(self) -> u8 {
        match self {
            Mark::Red => 31,
            Mark::Green => 32,
            Mark::Yellow => 33,
            Mark::Cyan => 36,
            Mark::Bold => 1,
        }
    }
}

/// pytest's `TerminalWriter.markup`: one escape per attribute, in order, the
/// text, one reset. Written by hand, not with `console::Style`, which drops
/// colours when stdout is not a terminal (`--color=yes` into a pipe).
pub fn markup(text: &str, marks: &[Mark]) -> String {
    if marks.is_empty() {
        return text.to_string();
    }
    let mut out: String = marks.iter().map(|m| format!("\x1b[{}m", m.code())).collect();
    out.push_str(text);
    out.push_str("\x1b[0m");
    out
}

/// pytest's `_color_for_type`.
fn color_for(category: &str) -> Mark {
    match category {
        "failed" | "error" | "subtests failed" => Mark::Red,
        "passed" | "subtests passed" => Mark::Green,
        _ => Mark::Yellow,
    }
}

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

/// What to write before the live status is cleared after an interrupt.
/// The status keeps the cursor at the right edge of its last line (so the
/// next print starts a new line), and a terminal's Ctrl-C echoes `^C` there,
/// which wraps onto a new line: the clear, counting lines up from the
/// cursor, would then miss the status's top line and leave it on screen.
/// So when the terminal echoes control characters (`ECHO` and `ECHOCTL` in
/// its local flags) and the interrupt was a SIGINT, erase the echo's line
/// and step back up first.
pub fn before_interrupted_clear(sigint: bool, local_flags: Option<libc::tcflag_t>) -> &'static str {
    let echoes = |flags: libc::tcflag_t| flags & libc::ECHO != 0 && flags & libc::ECHOCTL != 0;
    if sigint && local_flags.is_some_and(echoes) {
        "\r\x1b[2K\x1b[1A"
    } else {
        ""
    }
}

/// pytest's `TerminalWriter.sep`: `==== title ====` filling `width`.
pub fn sep(ch: char, title: Option<&str>, width: usize) -> String {
    let mut line = match title {
        Some(title) => {
            let n = ((width as isize - title.chars().count() as isize - 2) / 2).max(1) as usize;
            let fill: String = std::iter::repeat_n(ch, n).collect();
            format!("{fill} {title} {fill}")
        }
        None => std::iter::repeat_n(ch, width).collect(),
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

/// pytest's `KNOWN_TYPES`: their order in the counts line.
const KNOWN: &[&str] = &[
    "failed",
    "passed",
    "skipped",
    "deselected",
    "xfailed",
    "xpassed",
    "warnings",
    "error",
    "subtests passed",
    "subtests failed",
    "subtests skipped",
];

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

    /// pytest's `_determine_main_color`: red on failures or errors; yellow on
    /// warnings, xpasses or a category pytest does not know; green when
    /// something passed (skips and xfails do not change that); else yellow.
    pub fn main_color(&self) -> Mark {
        let unknown = self.entries.iter().any(|(c, _)| !KNOWN.contains(&c.as_str()));
        if self.get("failed") > 0 || self.get("error") > 0 {
            Mark::Red
        } else if self.get("warnings") > 0 || self.get("xpassed") > 0 || unknown {
            Mark::Yellow
        } else if self.get("passed") > 0 {
            Mark::Green
        } else {
            Mark::Yellow
        }
    }

    /// pytest's `summary_stats` line, coloured as pytest colours it: each
    /// count in its own colour (bold when that is the main colour), the
    /// duration and the `=` rule (absent with `-q`) in the main colour.
    pub fn colored_line(&self, duration: &str, width: Option<usize>) -> String {
        let main = self.main_color();
        let mut parts: Vec<String> = self
            .ordered()
            .into_iter()
            .map(|(key, n)| {
                let color = color_for(key);
                let marks: &[Mark] = if color == main { &[color, Mark::Bold] } else { &[color] };
                markup(&format!("{n} {}", plural(key, n)), marks)
            })
            .collect();
        if parts.is_empty() {
            parts.push(markup("no tests ran", &[Mark::Yellow]));
        }
        let mut msg = parts.join(", ") + &markup(&format!(" in {duration}"), &[main]);
        let Some(width) = width else { return markup(&msg, &[main]) };
        msg += &format!("\x1b[{}m", main.code());
        let plain = format!("{} in {duration}", self.phrase());
        let rule = sep('=', Some(&plain), width).replacen(&plain, &msg, 1);
        markup(&rule, &[main])
    }

    /// `1 failed, 9 passed, 2 warnings, 1 error`, or `no tests ran`.
    pub fn phrase(&self) -> String {
        let parts: Vec<String> = self.ordered().into_iter().map(|(key, n)| format!("{n} {}", plural(key, n))).collect();
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
    fn colored_counts_line_is_pytests_bytes() {
        let mut c = Counts::default();
        c.add("passed", 3);
        c.add("warnings", 2);
        // Copied from `pytest --color=yes` (COLUMNS=80).
        assert_eq!(
            c.colored_line("0.01s", Some(80)),
            "\x1b[33m======================== \x1b[32m3 passed\x1b[0m, \x1b[33m\x1b[1m2 warnings\x1b[0m\
             \x1b[33m in 0.01s\x1b[0m\x1b[33m =========================\x1b[0m"
        );
        // -q: no rule, the whole line wrapped in the main colour.
        assert_eq!(
            c.colored_line("0.01s", None),
            "\x1b[33m\x1b[32m3 passed\x1b[0m, \x1b[33m\x1b[1m2 warnings\x1b[0m\x1b[33m in 0.01s\x1b[0m\x1b[0m"
        );
    }

    #[test]
    fn main_color_follows_pytest() {
        let of = |cats: &[&str]| {
            let mut c = Counts::default();
            for cat in cats {
                c.add(cat, 1);
            }
            c.main_color()
        };
        assert_eq!(of(&["passed", "skipped", "xfailed", "deselected"]), Mark::Green);
        assert_eq!(of(&["passed", "xpassed"]), Mark::Yellow);
        assert_eq!(of(&["passed", "warnings"]), Mark::Yellow);
        assert_eq!(of(&["passed", "something new"]), Mark::Yellow);
        assert_eq!(of(&["skipped"]), Mark::Yellow);
        assert_eq!(of(&["passed", "error"]), Mark::Red);
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

    #[test]
    fn an_echoed_ctrl_c_line_is_erased_before_the_status_is_cleared() {
        let echoing = libc::ECHO | libc::ECHOCTL;
        assert_eq!(before_interrupted_clear(true, Some(echoing)), "\r\x1b[2K\x1b[1A");
        assert_eq!(before_interrupted_clear(true, Some(libc::ECHO)), "", "stty -echoctl: nothing echoed");
        assert_eq!(before_interrupted_clear(false, Some(echoing)), "", "SIGTERM is not typed at the terminal");
        assert_eq!(before_interrupted_clear(true, None), "", "not a terminal");
    }
}
