//! The watch's own lines, one per state ("watching 143 files", "running
//! tests", "12 passed in 0.21s"), and the terminal mode that lets it read
//! single keys.
//!
//! On a terminal, keys must arrive one at a time and Ctrl-C as a key (so
//! the watch, not the kernel, decides what it stops): crossterm's raw
//! mode. Raw mode also stops the terminal turning "\n" into "\r\n", which
//! would skew every line the child run prints, so output processing is
//! turned back on. The mode is undone when `Screen` drops, which happens
//! on every way out of the watch: return, `q`, Ctrl-C, a signal, a panic
//! (unwinding). Without a terminal the lines are plain and prefixed, for
//! an editor's task runner or a script to match.

use std::io::Write;

use super::state::{Filters, RunKind};

/// The prefix of the watch's lines without a terminal.
pub const PLAIN_PREFIX: &str = "rpytest --watch: ";

/// A state worth a line.
pub enum Status<'a> {
    Watching {
        files: usize,
        filters: &'a Filters,
        tty: bool,
    },
    Running {
        kind: RunKind,
        filters: &'a Filters,
    },
    /// The child's closing counts ("12 passed in 0.21s"), or what ended it.
    Finished(String),
    Stopping,
    Note(String),
}

impl Status<'_> {
    pub fn text(&self) -> String {
        match self {
            Status::Watching { files, filters, tty } => {
                let keys = match tty {
                    true => "a all · f failed · Enter rerun · p path · t name · c clear · q quit",
                    false => "commands: a, f, p PATH, t PATTERN, c, q; an empty line reruns",
                };
                format!("watching {files} files{} · {keys}", filters_text(filters))
            }
            Status::Running { kind, filters } => {
                let what = match kind {
                    RunKind::Affected => "running affected tests",
                    RunKind::All => "running all tests",
                    RunKind::Failed => "running the failed tests",
                };
                format!("{what}{}", filters_text(filters))
            }
            Status::Finished(text) | Status::Note(text) => text.clone(),
            Status::Stopping => "stopping the run (Ctrl-C again or q ends the watch)".into(),
        }
    }
}

fn filters_text(filters: &Filters) -> String {
    let parts: Vec<String> =
        [filters.path.as_ref().map(|p| format!("path {p}")), filters.name.as_ref().map(|n| format!("-k {n:?}"))]
            .into_iter()
            .flatten()
            .collect();
    match parts.is_empty() {
        true => String::new(),
        false => format!(" ({})", parts.join(", ")),
    }
}

/// How a run ended, for its status line: the counts it wrote, else its
/// exit status, with the time from its start.
pub fn finished(counts: Option<String>, status: std::process::ExitStatus, seconds: f64) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(counts) = counts.map(|c| c.trim().to_string()).filter(|c| !c.is_empty()) {
        return counts;
    }
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("the run exited with code {code} after {seconds:.2}s"),
        (None, Some(signal)) => format!("the run was killed by signal {signal} after {seconds:.2}s"),
        _ => format!("the run ended after {seconds:.2}s"),
    }
}

/// Where the lines go, and the terminal's mode while the watch runs.
pub struct Screen {
    tty: bool,
}

impl Screen {
    /// On a terminal, switches it to raw mode with output processing.
    pub fn new(tty: bool) -> std::io::Result<Screen> {
        if tty {
            crossterm::terminal::enable_raw_mode()?;
            let screen = Screen { tty };
            keep_output_processing()?;
            return Ok(screen);
        }
        Ok(Screen { tty })
    }

    pub fn tty(&self) -> bool {
        self.tty
    }

    pub fn show(&self, status: &Status) {
        let text = status.text();
        let line = match self.tty {
            true => format!("\r\x1b[2K\x1b[1m{text}\x1b[0m\n"),
            false => format!("{PLAIN_PREFIX}{text}\n"),
        };
        write_out(&line);
    }

    /// The line being typed after `p` or `t` (terminal only).
    pub fn prompt(&self, text: &str) {
        write_out(&format!("\r\x1b[2K{text}"));
    }

    /// Before a run on a terminal: a clean screen, as Jest does.
    pub fn clear(&self) {
        if self.tty {
            write_out("\x1b[2J\x1b[3J\x1b[H");
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        if self.tty {
            let _ = crossterm::terminal::disable_raw_mode();
        }
    }
}

/// Set when stdout's reader has gone (`rpytest --watch | head`).
static OUTPUT_GONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// No one reads the watch any more: it should end rather than run on unseen.
pub fn output_gone() -> bool {
    OUTPUT_GONE.load(std::sync::atomic::Ordering::Relaxed)
}

fn write_out(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            OUTPUT_GONE.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// After `enable_raw_mode`: "\n" as "\r\n" again (OPOST, ONLCR), and no
/// TOSTOP, so the child run, in its own process group, may write to the
/// terminal. crossterm restores the whole saved mode on the way out.
fn keep_output_processing() -> std::io::Result<()> {
    // SAFETY: tcgetattr fills a zeroed termios we own; tcsetattr reads it.
    unsafe {
        let mut mode: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(libc::STDIN_FILENO, &mut mode) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        mode.c_oflag |= libc::OPOST | libc::ONLCR;
        mode.c_lflag &= !libc::TOSTOP;
        if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &mode) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn one_line_per_state() {
        let none = Filters::default();
        let watching = Status::Watching { files: 143, filters: &none, tty: true };
        assert!(watching.text().starts_with("watching 143 files · a all"));
        let filters = Filters { path: Some("tests/unit".into()), name: Some("add".into()) };
        let running = Status::Running { kind: RunKind::Affected, filters: &filters };
        assert_eq!(running.text(), "running affected tests (path tests/unit, -k \"add\")");
        let running = Status::Running { kind: RunKind::All, filters: &none };
        assert_eq!(running.text(), "running all tests");
    }

    #[test]
    fn a_run_is_summed_up_by_its_counts_else_by_how_it_ended() {
        let exit = |code| std::process::ExitStatus::from_raw(code << 8);
        assert_eq!(finished(Some("12 passed in 0.21s\n".into()), exit(0), 0.3), "12 passed in 0.21s");
        assert_eq!(finished(None, exit(4), 0.3), "the run exited with code 4 after 0.30s");
        assert_eq!(
            finished(Some(String::new()), std::process::ExitStatus::from_raw(9), 1.0).split(" after").next(),
            Some("the run was killed by signal 9")
        );
    }
}
