//! Ctrl-C (and SIGTERM, SIGHUP: `signals.rs`). The first interrupts the
//! running tests as pytest's does (SIGINT to each worker: the test in
//! flight raises KeyboardInterrupt), then the run ends the normal way,
//! teardown, junit and cache included, within `INTERRUPT_GRACE`. A second
//! one stops everything at once. During collection pytest gets the SIGINT
//! and reports it itself.

use std::time::{Duration, Instant};

use super::{Action, Lifecycle, Phase, Timer, ZYGOTE_EXIT_GRACE};
use crate::exit_code::ExitCode;
use crate::report::Stopped;

/// How long teardown may take after the first Ctrl-C.
pub(super) const INTERRUPT_GRACE: Duration = Duration::from_secs(10);

impl Lifecycle {
    /// A stop signal; `banner` names it in the summary (`signals::banner`).
    pub fn on_interrupt(&mut self, banner: &'static str, _now: Instant) -> Vec<Action> {
        if self.phase == Phase::Done {
            return self.take();
        }
        self.banner = banner;
        if !self.collected {
            self.interrupt_collection();
        } else if self.interrupted {
            self.stop_at_once();
        } else {
            self.interrupted = true;
            self.say("\nrpytest: interrupted; tearing down (Ctrl-C again to stop at once)");
            if self.phase != Phase::EndingSession {
                for (_, pid) in self.slots.processes() {
                    self.emit(Action::Signal { pid, signal: libc::SIGINT });
                }
                self.emit(Action::InterruptRun);
            }
            self.arm(INTERRUPT_GRACE, Timer::InterruptGrace);
        }
        self.take()
    }

    /// Interrupted while pytest collects: pytest handles the interrupt
    /// itself, printing what plain pytest prints (the KeyboardInterrupt
    /// banner, "no tests ran"); stopped if it has not exited in time.
    fn interrupt_collection(&mut self) {
        let Some(pid) = self.zygote.pid else { return self.finish(ExitCode::Interrupted) };
        self.emit(Action::Signal { pid, signal: libc::SIGINT });
        self.enter(Phase::AwaitingZygoteExit(ExitCode::Interrupted));
        self.arm(ZYGOTE_EXIT_GRACE, Timer::CollectionInterruptGrace);
    }

    pub(super) fn interrupt_grace_over(&mut self) {
        if self.phase != Phase::Done {
            self.say(format!(
                "rpytest: teardown after Ctrl-C did not end within {}s; stopping everything",
                INTERRUPT_GRACE.as_secs()
            ));
            self.stop_at_once();
        }
    }

    fn stop_at_once(&mut self) {
        self.kill_everything();
        self.forget_zygote();
        self.summarize(ExitCode::Interrupted, Some(Stopped::plain(self.banner)));
    }
}
