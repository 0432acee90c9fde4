//! The watch's decisions, apart from any process, file or terminal: what
//! a save, a key or a finished run leads to.
//!
//! One run at a time. A save or a key during a run is remembered and runs
//! when it ends (the latest request wins, and a save never downgrades a
//! requested full run); Ctrl-C stops the run and forgets what was queued;
//! a second Ctrl-C, or Ctrl-C with nothing running, or `q`, ends the watch.

use super::keys::Command;

/// Which tests a run asks for (within the filters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// After a save: those the save can affect.
    Affected,
    /// `a`, or a new filter: all of them.
    All,
    /// `f`: those that failed last time.
    Failed,
}

/// The `p` and `t` filters, kept until changed or cleared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    pub path: Option<String>,
    pub name: Option<String>,
}

/// What the watch must do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    Start(RunKind),
    /// SIGINT to the run, as a Ctrl-C on its terminal would.
    Interrupt,
    /// The run goes on; this is queued for after it.
    Queued(RunKind),
    /// End the watch (stopping the run, if one is going).
    Quit,
    Nothing,
}

#[derive(Debug, Default)]
pub struct Watch {
    /// The run going on: its kind, and whether Ctrl-C already stopped it.
    running: Option<(RunKind, bool)>,
    queued: Option<RunKind>,
    last: Option<RunKind>,
    pub filters: Filters,
}

impl Watch {
    /// The watch has started: the first run.
    pub fn begin(&mut self) -> Action {
        self.start(RunKind::Affected)
    }

    /// A batch of saves with at least one relevant file.
    pub fn files_changed(&mut self) -> Action {
        self.request(RunKind::Affected)
    }

    pub fn command(&mut self, command: Command) -> Action {
        match command {
            Command::Rerun => self.request(self.last.unwrap_or(RunKind::Affected)),
            Command::All => self.request(RunKind::All),
            Command::Failed => self.request(RunKind::Failed),
            Command::Path(path) => {
                self.filters.path = Some(path).filter(|p| !p.is_empty());
                self.request(RunKind::All)
            }
            Command::Name(name) => {
                self.filters.name = Some(name).filter(|n| !n.is_empty());
                self.request(RunKind::All)
            }
            Command::Clear => {
                self.filters = Filters::default();
                self.request(RunKind::All)
            }
            Command::Quit => Action::Quit,
            Command::Interrupt => self.interrupt(),
        }
    }

    /// Ctrl-C (the key, or SIGINT).
    pub fn interrupt(&mut self) -> Action {
        match self.running.as_mut() {
            Some((_, stopped @ false)) => {
                *stopped = true;
                self.queued = None;
                Action::Interrupt
            }
            _ => Action::Quit,
        }
    }

    /// The run ended: the queued one starts, if any.
    pub fn run_ended(&mut self) -> Action {
        self.running = None;
        match self.queued.take() {
            Some(kind) => self.start(kind),
            None => Action::Nothing,
        }
    }

    fn request(&mut self, kind: RunKind) -> Action {
        if self.running.is_none() {
            return self.start(kind);
        }
        self.queued = Some(match (self.queued, kind) {
            (Some(RunKind::All), RunKind::Affected) => RunKind::All,
            _ => kind,
        });
        Action::Queued(kind)
    }

    fn start(&mut self, kind: RunKind) -> Action {
        self.running = Some((kind, false));
        self.last = Some(kind);
        Action::Start(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_save_runs_at_once_when_idle_and_after_the_run_otherwise() {
        let mut watch = Watch::default();
        assert_eq!(watch.begin(), Action::Start(RunKind::Affected));
        assert_eq!(watch.files_changed(), Action::Queued(RunKind::Affected));
        assert_eq!(watch.files_changed(), Action::Queued(RunKind::Affected));
        assert_eq!(watch.run_ended(), Action::Start(RunKind::Affected));
        assert_eq!(watch.run_ended(), Action::Nothing);
        assert_eq!(watch.files_changed(), Action::Start(RunKind::Affected));
    }

    #[test]
    fn keys_choose_the_run_and_a_save_does_not_downgrade_a_queued_full_run() {
        let mut watch = Watch::default();
        watch.begin();
        watch.command(Command::All);
        watch.files_changed();
        assert_eq!(watch.run_ended(), Action::Start(RunKind::All));
        assert_eq!(watch.command(Command::Failed), Action::Queued(RunKind::Failed));
        assert_eq!(watch.run_ended(), Action::Start(RunKind::Failed));
        watch.run_ended();
        // Enter repeats the last kind.
        assert_eq!(watch.command(Command::Rerun), Action::Start(RunKind::Failed));
    }

    #[test]
    fn filters_stay_until_changed_and_run_everything_they_select() {
        let mut watch = Watch::default();
        assert_eq!(watch.command(Command::Path("tests/unit".into())), Action::Start(RunKind::All));
        watch.run_ended();
        watch.command(Command::Name("add".into()));
        watch.run_ended();
        assert_eq!(watch.filters, Filters { path: Some("tests/unit".into()), name: Some("add".into()) });
        watch.command(Command::Path(String::new()));
        watch.run_ended();
        assert_eq!(watch.filters.path, None);
        watch.command(Command::Clear);
        assert_eq!(watch.filters, Filters::default());
    }

    #[test]
    fn ctrl_c_stops_the_run_then_ends_the_watch() {
        let mut watch = Watch::default();
        watch.begin();
        watch.files_changed();
        assert_eq!(watch.command(Command::Interrupt), Action::Interrupt);
        assert_eq!(watch.interrupt(), Action::Quit);
        // Stopped, the queued save is forgotten; idle, Ctrl-C quits.
        let mut watch = Watch::default();
        watch.begin();
        watch.files_changed();
        watch.interrupt();
        assert_eq!(watch.run_ended(), Action::Nothing);
        assert_eq!(watch.interrupt(), Action::Quit);
        assert_eq!(watch.command(Command::Quit), Action::Quit);
    }
}
