//! What the user asks of a watch, from keys on a terminal or lines on a
//! pipe.
//!
//! On a terminal the keys are Jest's, one press each (`a`, `f`, Enter,
//! `q`; `p` and `t` open a one-line prompt for a path or a `-k`
//! expression). An editor's task runner or a script has no terminal, so
//! the same commands come as lines on stdin (`a`, `f`, `p tests/x`,
//! `t name`, `q`; an empty line reruns). Both become a `Command`; the
//! threads that read them are at the bottom.

use std::io::BufRead;

/// A request from the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Enter: run again what ran last.
    Rerun,
    /// `a`: every selected test.
    All,
    /// `f`: the tests that failed last time (`--lf`).
    Failed,
    /// `p PATH`: run only under PATH (empty: no path filter).
    Path(String),
    /// `t PATTERN`: run only tests matching `-k PATTERN` (empty: none).
    Name(String),
    /// `c`: drop both filters.
    Clear,
    /// `q`: end the watch.
    Quit,
    /// Ctrl-C.
    Interrupt,
}

/// The command a line on stdin names; `Err` says what is accepted.
pub fn parse_line(line: &str) -> Result<Command, String> {
    let line = line.trim();
    let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim().to_string();
    match (word, rest.is_empty()) {
        ("", _) => Ok(Command::Rerun),
        ("a", true) => Ok(Command::All),
        ("f", true) => Ok(Command::Failed),
        ("c", true) => Ok(Command::Clear),
        ("q", true) => Ok(Command::Quit),
        ("p", _) => Ok(Command::Path(rest)),
        ("t", _) => Ok(Command::Name(rest)),
        _ => Err(format!(
            "unknown command {line:?}: use a (all), f (failed), p PATH, t PATTERN, c (clear filters), q (quit), \
             or an empty line (rerun)"
        )),
    }
}

/// A key as the watch cares about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Enter,
    Backspace,
    Escape,
    CtrlC,
}

/// What a key press did.
#[derive(Debug, PartialEq, Eq)]
pub enum Pressed {
    Command(Command),
    /// The prompt changed: show this line.
    Prompt(String),
    /// The prompt was left without a command.
    Cancelled,
    Nothing,
}

/// Turns key presses into commands, with the line being typed after `p`
/// or `t`.
#[derive(Debug, Default)]
pub struct Keys {
    prompt: Option<(char, String)>,
}

impl Keys {
    pub fn press(&mut self, key: Key) -> Pressed {
        if key == Key::CtrlC {
            self.prompt = None;
            return Pressed::Command(Command::Interrupt);
        }
        let Some((kind, text)) = self.prompt.as_mut() else {
            return match key {
                Key::Enter => Pressed::Command(Command::Rerun),
                Key::Char('a') => Pressed::Command(Command::All),
                Key::Char('f') => Pressed::Command(Command::Failed),
                Key::Char('c') => Pressed::Command(Command::Clear),
                Key::Char('q') => Pressed::Command(Command::Quit),
                Key::Char(kind @ ('p' | 't')) => {
                    self.prompt = Some((kind, String::new()));
                    Pressed::Prompt(prompt_line(kind, ""))
                }
                _ => Pressed::Nothing,
            };
        };
        match key {
            Key::Char(c) => text.push(c),
            Key::Backspace => {
                text.pop();
            }
            Key::Escape => {
                self.prompt = None;
                return Pressed::Cancelled;
            }
            Key::Enter => {
                let (kind, text) = self.prompt.take().expect("in a prompt");
                let text = text.trim().to_string();
                return Pressed::Command(if kind == 'p' { Command::Path(text) } else { Command::Name(text) });
            }
            Key::CtrlC => unreachable!("handled above"),
        }
        Pressed::Prompt(prompt_line(*kind, text))
    }
}

fn prompt_line(kind: char, text: &str) -> String {
    match kind {
        'p' => format!("path filter (Enter to apply, empty for none, Esc to cancel) › {text}"),
        _ => format!("test name filter, as -k (Enter to apply, empty for none, Esc to cancel) › {text}"),
    }
}

/// Reads lines from stdin until it ends, each handed to `send` (false:
/// stop reading); then `closed`, once. A closed stdin (`< /dev/null`, a
/// task runner) leaves the watch running on file changes alone.
pub fn read_lines(send: impl Fn(String) -> bool + Send + 'static, closed: impl FnOnce() + Send + 'static) {
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if !send(line) {
                break;
            }
        }
        closed();
    });
}

/// Reads key presses from the terminal (in raw mode) until `send` says stop.
pub fn read_keys(send: impl Fn(Key) -> bool + Send + 'static) {
    use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
    std::thread::spawn(move || loop {
        let key = match event::read() {
            Ok(Event::Key(k)) if k.kind != KeyEventKind::Release => k,
            Ok(_) => continue,
            Err(_) => return,
        };
        let control = key.modifiers.contains(KeyModifiers::CONTROL);
        let key = match key.code {
            KeyCode::Char('c') if control => Key::CtrlC,
            KeyCode::Char(c) if !control => Key::Char(c),
            KeyCode::Enter => Key::Enter,
            KeyCode::Backspace => Key::Backspace,
            KeyCode::Esc => Key::Escape,
            _ => continue,
        };
        if !send(key) {
            return;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_the_same_commands_as_keys() {
        assert_eq!(parse_line(""), Ok(Command::Rerun));
        assert_eq!(parse_line("  a "), Ok(Command::All));
        assert_eq!(parse_line("f"), Ok(Command::Failed));
        assert_eq!(parse_line("p tests/unit"), Ok(Command::Path("tests/unit".into())));
        assert_eq!(parse_line("p"), Ok(Command::Path(String::new())));
        assert_eq!(parse_line("t add and not slow"), Ok(Command::Name("add and not slow".into())));
        assert_eq!(parse_line("c"), Ok(Command::Clear));
        assert_eq!(parse_line("q"), Ok(Command::Quit));
        assert!(parse_line("a b").unwrap_err().contains("unknown command"));
        assert!(parse_line("x").is_err());
    }

    #[test]
    fn single_keys_and_the_filter_prompt() {
        let mut keys = Keys::default();
        assert_eq!(keys.press(Key::Enter), Pressed::Command(Command::Rerun));
        assert_eq!(keys.press(Key::Char('a')), Pressed::Command(Command::All));
        assert_eq!(keys.press(Key::Char('x')), Pressed::Nothing);
        assert!(matches!(keys.press(Key::Char('t')), Pressed::Prompt(_)));
        for c in "adq".chars() {
            keys.press(Key::Char(c));
        }
        assert!(matches!(keys.press(Key::Backspace), Pressed::Prompt(line) if line.ends_with("› ad")));
        assert_eq!(keys.press(Key::Enter), Pressed::Command(Command::Name("ad".into())));
        // The prompt is closed: `q` quits again.
        keys.press(Key::Char('p'));
        keys.press(Key::Char('q'));
        assert_eq!(keys.press(Key::Escape), Pressed::Cancelled);
        assert_eq!(keys.press(Key::Char('q')), Pressed::Command(Command::Quit));
        keys.press(Key::Char('p'));
        assert_eq!(keys.press(Key::CtrlC), Pressed::Command(Command::Interrupt));
        assert_eq!(keys.press(Key::Char('f')), Pressed::Command(Command::Failed));
    }
}
