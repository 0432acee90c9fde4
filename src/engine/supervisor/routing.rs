//! The Supervisor's message routing: each message goes to the lifecycle
//! as it is, with the time.

use actix::prelude::*;

use super::Supervisor;
use crate::engine::messages::*;

/// Each message is one call on the lifecycle (`$life`), with the time.
macro_rules! route {
    ($($message:ident => |$msg:pat_param, $life:ident, $now:ident| $call:expr;)*) => {$(
        impl Handler<$message> for Supervisor {
            type Result = ();

            fn handle(&mut self, $msg: $message, ctx: &mut Context<Self>) {
                self.apply(ctx, |$life, $now| $call);
            }
        }
    )*};
}

route! {
    ZygoteConnected => |msg, life, now| life.on_zygote_connected(msg.link, now);
    FromZygote => |msg, life, now| life.on_zygote_message(msg.0, now);
    ZygoteBroken => |msg, life, now| life.on_zygote_broken(msg.error, now);
    ZygoteExited => |msg, life, now| life.on_zygote_exited(msg.code, msg.signal, now);
    WorkerConnected => |msg, life, now| life.on_worker_connected(msg.worker, msg.pid, now);
    WorkerDisconnected => |msg, life, now| life.on_worker_disconnected(msg.worker, msg.pid, msg.finished, now);
    WorkerOutput => |msg, life, now| life.on_worker_output(msg.worker, msg.pid, msg.workeroutput, now);
    WorkerExitSeen => |msg, life, now| life.on_worker_exit(msg.0, now);
    StopTimedOut => |msg, life, now| life.on_stop_timed_out(msg.worker, msg.secs, now);
    WorkerSilent => |msg, life, now| life.on_worker_silent(msg.worker, msg.pid, msg.silent, now);
    RestartWorker => |msg, life, now| life.on_restart_worker(msg.worker, now);
    TeardownShared => |msg, life, now| life.on_teardown_shared(msg.index, now);
    RunComplete => |msg, life, now| life.on_run_complete(msg.entries, msg.exitstatus, msg.stopped, msg.notes, now);
    WarmZygoteEnded => |_, life, now| life.on_warm_zygote_ended(now);
    Interrupt => |_, life, now| life.on_interrupt(crate::supervise::signals::banner(), now);
}
