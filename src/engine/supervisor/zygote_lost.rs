//! The zygote lost while the run goes on: killed (a test killed its parent,
//! the OOM killer), or stopped (SIGSTOP) so that it answers nothing, which
//! the watch here notices and ends. Only the zygote forks workers and ends
//! pytest's session, so the run cannot go on; yet every collected test gets
//! one outcome: the workers are stopped and their tests in flight fail as
//! lost with it, the others are reported as not run (as after a spent
//! `--max-worker-restart`). The junit file pytest would have written in the
//! zygote is written from what is known (`report::junit`), and the
//! summary's banner names the cause. The exit code is 3, pytest's
//! INTERNAL_ERROR (`RunState::on_zygote_lost` says why).

use std::time::{Duration, Instant};

use actix::prelude::*;

use super::Supervisor;
use crate::engine::messages::ZygoteLost;
use crate::protocol::ReplayEntry;
use crate::report::Stopped;
use crate::run::crash::describe_exit;
use crate::supervise::ending::EXIT_INTERNAL_ERROR;

/// How often the zygote's process state is looked at.
const WATCH_EVERY: Duration = Duration::from_millis(250);
/// How long the zygote may stay stopped before the run ends it.
/// `RPYTEST_ZYGOTE_STOPPED_TIMEOUT` (seconds) sets it.
const STOPPED_LIMIT: Duration = Duration::from_secs(10);
/// How long a run that lost its zygote waits for its last tests' outcomes.
const LOST_RUN_LIMIT: Duration = Duration::from_secs(10);

/// What the Supervisor knows of a zygote it may lose.
#[derive(Default)]
pub struct ZygoteWatch {
    /// Since when the zygote has been seen stopped.
    stopped_since: Option<Instant>,
    /// How rpytest ended it, when it did.
    pub ended_by_us: Option<String>,
    /// The run's reports while pytest ends the session with junit on, to
    /// write the file here should the zygote die doing so.
    pub replay: Option<Vec<ReplayEntry>>,
    /// The junit file was written here.
    pub junit_written: bool,
}

fn stopped_limit() -> Duration {
    let from_env = std::env::var("RPYTEST_ZYGOTE_STOPPED_TIMEOUT").ok().and_then(|s| s.parse::<f64>().ok());
    from_env.filter(|secs| *secs > 0.0 && secs.is_finite()).map_or(STOPPED_LIMIT, Duration::from_secs_f64)
}

impl Supervisor {
    pub(super) fn watch_zygote(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(WATCH_EVERY, |act, _| act.check_zygote_stopped());
    }

    /// A zygote stopped past the limit is killed; its exit then ends the
    /// run as a death would, named for what happened.
    fn check_zygote_stopped(&mut self) {
        let Some(pid) = self.zygote_pid.filter(|_| self.watch.ended_by_us.is_none()) else { return };
        if !crate::supervise::proctree::is_stopped(pid as i32) {
            self.watch.stopped_since = None;
            return;
        }
        let limit = stopped_limit();
        if self.watch.stopped_since.get_or_insert_with(Instant::now).elapsed() < limit {
            return;
        }
        let how = format!("killed by rpytest after it stayed stopped (SIGSTOP) for {}s", limit.as_secs_f64());
        self.say(format!("rpytest: error: the zygote (pid {pid}) is stopped and answers nothing; stopping it"));
        self.watch.ended_by_us = Some(how);
        self.kill_zygote();
    }

    /// How the zygote ended: as rpytest ended it, else as its exit says.
    pub(super) fn zygote_end(&mut self, code: Option<i32>, signal: Option<i32>) -> String {
        self.watch.ended_by_us.take().unwrap_or_else(|| describe_exit(code, signal))
    }

    /// The zygote died while workers ran (`how` it ended): stop the
    /// workers, end every test, and summarize once the Scheduler has.
    pub(super) fn zygote_lost(&mut self, how: String, ctx: &mut Context<Self>) {
        self.say(format!("rpytest: error: the zygote died during the run ({how})"));
        let cause = match how.starts_with("killed") {
            true => format!("the zygote was {how}"),
            false => format!("the zygote {how}"),
        };
        self.zygote = None;
        self.kill_everything();
        self.scheduler.zygote_lost.do_send(ZygoteLost { cause: cause.clone() });
        for ending in self.slots.abandon_all(&cause) {
            self.on_ending(ending, ctx);
        }
        ctx.run_later(LOST_RUN_LIMIT, move |act, ctx| {
            if act.end.exitstatus.is_none() && act.done.is_some() {
                act.say("rpytest: error: the run's last outcomes did not come after the zygote died");
                act.summarize(EXIT_INTERNAL_ERROR, Some(Stopped::plain(cause)), ctx);
            }
        });
    }

    /// The junit file pytest could not write, from `entries`; the file
    /// name is the one pytest resolved.
    pub(super) fn write_junit(&mut self, entries: &[ReplayEntry]) {
        let Some(inventory) = self.inventory.clone() else { return };
        let Some(path) = inventory.junitxml.as_deref() else { return };
        let seconds = self.plan.started.elapsed().as_secs_f64();
        match crate::report::junit::write(path.as_ref(), &inventory.items, entries, seconds) {
            Ok(()) => self.watch.junit_written = true,
            Err(e) => self.say(format!("rpytest: error: cannot write the junit file {path}: {e}")),
        }
    }
}
