//! Terminal text in pytest's forms: colours and markup, separator lines,
//! the terminal's width, durations, trimmed messages. Pure functions, so
//! the exact wording is unit-tested.

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
    pub(super) fn code(self) -> u8 {
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

/// The local mode flags (`c_lflag`) of the terminal on stdout, if it is one.
pub fn terminal_local_flags() -> Option<libc::tcflag_t> {
    // SAFETY: tcgetattr fills a zeroed termios for a descriptor we only read.
    unsafe {
        let mut termios: libc::termios = std::mem::zeroed();
        (libc::tcgetattr(libc::STDOUT_FILENO, &mut termios) == 0).then_some(termios.c_lflag)
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
