//! The run's completion: stops, lost workers that are not replaced, and
//! the run complete with its exit code.

use super::{Effect, RunState, SharedTeardown, MAX_STARTUP_FAILURES};
use crate::exit_code::ExitCode;
use crate::protocol::ToPython;
use crate::report::Stopped;

impl RunState {
    /// Stops dispatch on every worker at once: queued tests never start.
    /// pytest-xdist, by contrast, lets workers run what they prefetched.
    /// The first stop decides the banner and the exit code.
    pub(super) fn stop(&mut self, stopped: Stopped, exit_override: Option<ExitCode>) {
        if self.stopped.is_some() {
            return;
        }
        let pending = self.queue.pending_tests();
        self.queue.stop();
        self.stopped = Some(stopped);
        self.exit_override = exit_override;
        let stop_each = self.connected.iter().map(|&worker| Effect::ToWorker { worker, message: ToPython::Stop });
        self.effects.extend(stop_each);
        self.end_waiting_retries(&pending);
    }

    /// A lost worker's slot gets a fresh process while there is work and
    /// restarts are left. Workers that keep dying before running a test
    /// end the run instead, as does a spent `--max-worker-restart`.
    pub(super) fn replace_lost(&mut self, worker: usize, cause: &str) {
        let spent = self.restarts.spend(worker).filter(|_| self.queue.has_pending());
        if self.startup_failures >= MAX_STARTUP_FAILURES {
            let cause = format!("not run: workers keep dying before running a test (last: {cause})");
            self.say(format!("rpytest: error: {cause}"));
            self.abandon_pending(&cause);
        } else if let Some(banner) = spent {
            self.give_up_restarting(banner);
        } else if self.queue.has_pending() {
            self.emit(Effect::RestartWorker { worker });
        }
    }

    /// `--max-worker-restart` is spent: nothing more starts, the tests left
    /// are reported as not run, and the banner says why (xdist's wording).
    fn give_up_restarting(&mut self, banner: String) {
        let line = format!("rpytest: {banner} (--max-worker-restart); the tests left are not run");
        self.say(line);
        let cause = format!("not run: {banner} (--max-worker-restart)");
        self.end_unstarted(banner, cause, None);
    }

    /// Stops the run for good: the tests not yet handed out, and those the
    /// lost workers still held (`on_worker_lost`), are reported as not run
    /// with `cause`.
    pub(super) fn end_unstarted(&mut self, banner: String, cause: String, exit: Option<ExitCode>) {
        let pending = self.queue.pending_tests();
        self.not_run = Some(cause.clone());
        self.stop(Stopped::plain(banner), exit);
        self.report_not_run(pending, &cause);
    }

    /// The run is complete once every test is done and every worker has
    /// ended, the `--rerun-isolated` reruns included, and the shared
    /// session fixtures are torn down (asked for here, once).
    pub(super) fn maybe_complete(&mut self) {
        let live = self.connected.iter().any(|w| !self.finished_workers.contains(w));
        if self.completed || !self.queue.is_finished() || live || self.start_isolated_reruns() {
            return;
        }
        if self.shared_teardown != SharedTeardown::Done {
            if self.shared_teardown == SharedTeardown::Pending {
                self.shared_teardown = SharedTeardown::Requested;
                self.emit(Effect::TeardownShared { last_ran: self.last_ran.map(|(index, _)| index) });
            }
            return;
        }
        self.completed = true;
        let entries = self.entries.iter_mut().filter_map(Option::take).collect();
        let (exit, stopped, notes) = (self.exit_code(), self.stopped.clone(), std::mem::take(&mut self.notes));
        self.emit(Effect::RunComplete { entries, exit, stopped, notes });
    }

    /// pytest's: what an interrupt or `pytest.exit()` chose, else whether
    /// a test (or, with `--continue-on-collection-errors`, a collector) failed.
    fn exit_code(&self) -> ExitCode {
        let failed = self.testsfailed + self.inventory.collect_failed;
        self.exit_override.unwrap_or(if failed > 0 { ExitCode::TestsFailed } else { ExitCode::Ok })
    }
}
