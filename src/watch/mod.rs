//! `rpytest --watch`: stay running and rerun the tests on every save.
//!
//! A developer who saves a file wants the tests it can break rerun at
//! once, without leaving the editor. The watch is a small event loop at
//! the edge of everything else: the saves (`events`, through `filter`),
//! the keys or stdin lines (`keys`), signals and the end of each run all
//! arrive on one channel; `state` decides what they mean; each run is a
//! child `rpytest` with the user's arguments (`child`), so it is an
//! ordinary run through the warm daemon; `status` prints one line per
//! state. See docs/watch.md.

mod child;
mod events;
mod filter;
mod keys;
mod state;
mod status;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use child::{DaemonUse, OwnDaemon, Run};
use events::{Tree, Watcher};
use keys::{Key, Keys, Pressed};
use state::{Action, Watch};
use status::{Screen, Status};

use crate::cli::CommandLine;
use crate::errors::UsageError;
use crate::exit_code::ExitCode;

/// How long a stopped run (SIGINT) may take its teardown when the watch
/// ends, before its process group is killed.
const TEARDOWN_LIMIT: Duration = Duration::from_secs(15);

/// Why the watch could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Usage(#[from] UsageError),
    #[error(
        "--watch cannot run {0}: the watch reads the keys, and a debugger needs the terminal's input; \
         run the test with {0} without --watch"
    )]
    Debugger(String),
    #[error(
        "cannot watch the rootdir {0}: {1} (on Linux, raise fs.inotify.max_user_watches if it says 'No space left')"
    )]
    Watcher(PathBuf, notify::Error),
    #[error("cannot {0}: {1}")]
    Io(&'static str, std::io::Error),
}

/// What reaches the watch's loop.
enum Event {
    Files(Vec<PathBuf>),
    WatchFailed(String),
    Line(String),
    Key(Key),
    StdinClosed,
    Signal(i32),
    RunEnded(ExitStatus),
}

/// `rpytest --watch ARGS`: `args` is the command line as given.
pub fn main(args: &[String], command_line: CommandLine) -> ExitCode {
    match watch(args, command_line) {
        Ok(code) => code,
        Err(WatchError::Usage(e)) => crate::commands::usage_error(e),
        Err(e) => {
            eprintln!("rpytest: error: {e}");
            UsageError::EXIT_CODE
        }
    }
}

fn watch(args: &[String], command_line: CommandLine) -> Result<ExitCode, WatchError> {
    if let Some(flag) = command_line.pytest_args.iter().find(|a| matches!(a.as_str(), "--pdb" | "--trace")) {
        return Err(WatchError::Debugger(flag.clone()));
    }
    let cwd = crate::plan::current_dir()?;
    let root = crate::python::rootdir::pytest_rootdir(&cwd, &command_line.pytest_args);
    let root = std::fs::canonicalize(&root).unwrap_or(root);
    let settings = crate::plan::settings(&root)?;
    let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let (tx, rx) = mpsc::channel();

    let tree = Tree::scan(&root);
    let sender = tx.clone();
    let watcher = Watcher::start(&tree, move |batch| {
        let _ = sender.send(batch.map_or_else(Event::WatchFailed, Event::Files));
    })
    .map_err(|e| WatchError::Watcher(root.clone(), e))?;
    forward_signals(tx.clone())?;
    let results = tempfile::Builder::new()
        .prefix("rpytest-watch-")
        .tempdir()
        .map_err(|e| WatchError::Io("create the watch's temporary directory", e))?;
    let off = command_line.own.no_daemon || settings.daemon == crate::config::DaemonMode::Off;
    let (daemon, daemon_use) = OwnDaemon::ensure(off);
    let screen = Screen::new(tty).map_err(|e| WatchError::Io("put the terminal in raw mode", e))?;
    read_input(tty, &tx);

    let mut session = Session {
        screen,
        tree,
        watcher,
        watch: Watch::default(),
        run: None,
        keys: Keys::default(),
        user_args: args.to_vec(),
        result_file: results.path().join("result"),
        tx,
        daemon_note: Some(daemon_note(&daemon_use)),
    };
    let begin = session.watch.begin();
    let ending = session.event_loop(begin, &rx);
    session.finish(&rx);
    drop(session);
    drop(daemon);
    Ok(match ending {
        Some(signal) if signal != libc::SIGINT => crate::supervise::signals::raise_default(signal),
        _ => ExitCode::Ok,
    })
}

fn daemon_note(daemon_use: &DaemonUse) -> String {
    match daemon_use {
        DaemonUse::Running => "reruns use the running daemon's warm sessions".into(),
        DaemonUse::Started(socket) => {
            format!("started a daemon for the reruns ({}); it stops with the watch", socket.display())
        }
        DaemonUse::Failed(why) => format!("could not start a daemon ({why}): every rerun starts Python afresh"),
        DaemonUse::Off => "no daemon (--no-daemon or daemon = \"off\"): every rerun starts Python afresh".into(),
    }
}

/// SIGINT, SIGTERM and SIGHUP as events: the watch ends its run first.
fn forward_signals(tx: Sender<Event>) -> Result<(), WatchError> {
    let mut signals = signal_hook::iterator::Signals::new([libc::SIGINT, libc::SIGTERM, libc::SIGHUP])
        .map_err(|e| WatchError::Io("install the signal handlers", e))?;
    std::thread::spawn(move || {
        for signal in signals.forever() {
            if tx.send(Event::Signal(signal)).is_err() {
                return;
            }
        }
    });
    Ok(())
}

fn read_input(tty: bool, tx: &Sender<Event>) {
    if tty {
        let tx = tx.clone();
        keys::read_keys(move |key| tx.send(Event::Key(key)).is_ok());
    } else {
        let (lines, closed) = (tx.clone(), tx.clone());
        keys::read_lines(
            move |line| lines.send(Event::Line(line)).is_ok(),
            move || {
                let _ = closed.send(Event::StdinClosed);
            },
        );
    }
}

struct Session {
    screen: Screen,
    tree: Tree,
    watcher: Watcher,
    watch: Watch,
    run: Option<Run>,
    keys: Keys,
    user_args: Vec<String>,
    result_file: PathBuf,
    tx: Sender<Event>,
    /// How the runs reach a daemon: said under the first run's line (on a
    /// terminal, the screen is cleared as a run starts).
    daemon_note: Option<String>,
}

impl Session {
    /// Until the watch should end; the signal that ended it, if one did.
    fn event_loop(&mut self, first: Action, rx: &Receiver<Event>) -> Option<i32> {
        let mut action = first;
        loop {
            match action {
                Action::Quit => return None,
                _ if status::output_gone() => return None,
                other => self.act(other),
            }
            action = match rx.recv() {
                Ok(Event::Files(paths)) => self.files_changed(&paths),
                Ok(Event::WatchFailed(why)) => self.note(format!("the file watcher failed: {why}")),
                Ok(Event::Line(line)) => match keys::parse_line(&line) {
                    Ok(command) => self.watch.command(command),
                    Err(why) => self.note(why),
                },
                Ok(Event::Key(key)) => self.key(key),
                Ok(Event::StdinClosed) => self.note("stdin closed: watching files only".into()),
                Ok(Event::Signal(libc::SIGINT)) => self.watch.interrupt(),
                Ok(Event::Signal(signal)) => return Some(signal),
                Ok(Event::RunEnded(status)) => self.run_ended(status),
                Err(_) => return None,
            };
        }
    }

    fn note(&self, text: String) -> Action {
        self.screen.show(&Status::Note(text));
        Action::Nothing
    }

    fn key(&mut self, key: Key) -> Action {
        match self.keys.press(key) {
            Pressed::Command(command) => self.watch.command(command),
            Pressed::Prompt(text) => {
                self.screen.prompt(&text);
                Action::Nothing
            }
            Pressed::Cancelled => {
                self.show_watching();
                Action::Nothing
            }
            Pressed::Nothing => Action::Nothing,
        }
    }

    fn files_changed(&mut self, paths: &[PathBuf]) -> Action {
        let mut rerun = false;
        for path in paths {
            let applied = self.tree.apply(path);
            rerun |= applied.rerun;
            self.watcher.unwatch(&applied.gone_dirs);
            if let Err(e) = self.watcher.watch(&applied.new_dirs) {
                self.note(format!("cannot watch a new directory: {e}"));
            }
        }
        crate::trace::event(|| format!("watch: {} changed paths, rerun: {rerun}", paths.len()));
        match rerun {
            true => self.watch.files_changed(),
            false => Action::Nothing,
        }
    }

    fn act(&mut self, action: Action) {
        match action {
            Action::Start(kind) => self.start(kind),
            Action::Interrupt => {
                if let Some(run) = &self.run {
                    child::signal_group(run.pid, libc::SIGINT);
                    self.screen.show(&Status::Stopping);
                }
            }
            Action::Queued(_) | Action::Nothing | Action::Quit => {}
        }
    }

    fn start(&mut self, kind: state::RunKind) {
        let args = child::child_args(&self.user_args, &self.watch.filters, kind);
        let _ = std::fs::remove_file(&self.result_file);
        self.screen.clear();
        let filters = &self.watch.filters;
        self.screen.show(&Status::Running { kind, filters });
        if let Some(note) = self.daemon_note.take() {
            self.screen.show(&Status::Note(note));
        }
        let tx = self.tx.clone();
        match child::start(&args, &self.result_file, move |status| {
            let _ = tx.send(Event::RunEnded(status));
        }) {
            Ok(run) => self.run = Some(run),
            Err(e) => {
                self.note(format!("cannot start the run: {e}"));
                let next = self.watch.run_ended();
                self.act(next);
            }
        }
    }

    fn run_ended(&mut self, status: ExitStatus) -> Action {
        let seconds = self.run.take().map_or(0.0, |run| run.started.elapsed().as_secs_f64());
        let counts = std::fs::read_to_string(&self.result_file).ok();
        self.screen.show(&Status::Finished(status::finished(counts, status, seconds)));
        let next = self.watch.run_ended();
        if next == Action::Nothing {
            self.show_watching();
        }
        next
    }

    fn show_watching(&self) {
        let tty = self.screen.tty();
        self.screen.show(&Status::Watching { files: self.tree.files(), filters: &self.watch.filters, tty });
    }

    /// The watch ends: a run still going is stopped as Ctrl-C would stop
    /// it, then its process group is killed, so nothing is left behind.
    fn finish(&mut self, rx: &Receiver<Event>) {
        let Some(run) = self.run.take() else { return };
        self.screen.show(&Status::Stopping);
        child::signal_group(run.pid, libc::SIGINT);
        let deadline = Instant::now() + TEARDOWN_LIMIT;
        let mut ended = false;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(Event::RunEnded(_)) => {
                    ended = true;
                    break;
                }
                // Ctrl-C again: hurry the teardown along.
                Ok(Event::Signal(libc::SIGINT) | Event::Key(Key::CtrlC)) => child::signal_group(run.pid, libc::SIGINT),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        child::signal_group(run.pid, libc::SIGKILL);
        if !ended {
            let _ = rx.recv_timeout(Duration::from_secs(5));
        }
    }
}

impl Drop for Session {
    /// Only a panic leaves a run here (`finish` and `run_ended` take it):
    /// SIGTERM, which rpytest answers with its teardown, as the watch
    /// cannot wait for it now.
    fn drop(&mut self) {
        if let Some(run) = self.run.take() {
            child::signal_group(run.pid, libc::SIGTERM);
        }
    }
}
