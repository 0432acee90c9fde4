//! One connection from a Python process: not an actor, a task per socket.
//!
//! The first frame must be `hello` with our protocol version. A zygote's
//! messages then go to the Supervisor; a worker's run-time messages go
//! straight to the Scheduler (in order, from one sender) and its end of
//! stream to the Supervisor. A malformed frame closes this connection only.
//! A worker's connection also keeps its `SilenceWatch`, fed every message
//! each way, and tells the Supervisor of a worker silent where a reply is
//! due (`WorkerSilent`). What goes wrong on a connection is said on the
//! terminal's stderr as a diagnostic event, like every other actor's.

use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::time::Duration;

use actix::prelude::*;
use tokio::io::BufReader;
use tokio::net::unix::OwnedReadHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

use super::messages::{
    EventBus, FromZygote, StopRequested, TestFinished, TestInterrupted, TestsLeaked, WorkRequest, WorkerConnected,
    WorkerDisconnected, WorkerFinished, WorkerJoined, WorkerOutput, WorkerSilent, ZygoteBroken, ZygoteConnected,
};
use super::scheduler::Scheduler;
use super::supervisor::Supervisor;
use crate::protocol::{read_message, write_message, FromPython, Hello, Role, ToPython, PROTOCOL_VERSION};
use crate::supervise::silence::{self, SilenceWatch};

/// A worker connection's watch: its reader owns it, its writer and clock
/// look at it while the reader lives.
type Watch = Rc<RefCell<SilenceWatch>>;

const HELLO_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a connection's messages go: the two actors, and the terminal for
/// what goes wrong.
#[derive(Clone)]
pub struct Peers {
    pub supervisor: Addr<Supervisor>,
    pub scheduler: Addr<Scheduler>,
    pub diagnostics: EventBus,
}

pub async fn accept_loop(listener: UnixListener, peers: Peers) {
    while let Ok((stream, _)) = listener.accept().await {
        if !peer_is_us(&stream) {
            peers.diagnostics.diagnostic("rpytest: refused a connection from another user");
            continue;
        }
        actix::spawn(serve(stream, peers.clone()));
    }
}

/// Only processes of our own user may talk to the engine.
fn peer_is_us(stream: &UnixStream) -> bool {
    // SAFETY: getuid has no preconditions.
    let me = unsafe { libc::getuid() };
    stream.peer_cred().map(|cred| cred.uid() == me).unwrap_or(false)
}

async fn serve(stream: UnixStream, peers: Peers) {
    let say = |line: String| peers.diagnostics.diagnostic(line);
    let (read, write) = stream.into_split();
    let mut reader = BufReader::with_capacity(1 << 16, read);
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, read_message(&mut reader)).await {
        Ok(Ok(Some(FromPython::Hello(hello)))) => hello,
        Ok(Ok(None)) => return,
        Ok(Ok(Some(other))) => {
            return say(format!("rpytest: a connection opened with {other:?} instead of hello; closed"))
        }
        Ok(Err(e)) => return say(format!("rpytest: bad first frame on a connection ({e}); closed")),
        Err(_) => return say(format!("rpytest: a connection sent no hello within {HELLO_TIMEOUT:?}; closed")),
    };
    if hello.protocol != PROTOCOL_VERSION {
        return say(format!(
            "rpytest: protocol mismatch: a Python process speaks version {}, this binary {PROTOCOL_VERSION} \
             (a stale worker cache? remove ~/.cache/rpytest); connection closed",
            hello.protocol
        ));
    }
    match hello.role {
        Role::Zygote => serve_zygote(reader, hello, spawn_writer(write, None), peers.supervisor).await,
        Role::Worker => {
            let watch = Rc::new(RefCell::new(SilenceWatch::new(silence::limit())));
            let link = spawn_writer(write, Some(Rc::downgrade(&watch)));
            serve_worker(reader, hello, link, watch, peers).await
        }
    }
}

fn spawn_writer(
    mut write: tokio::net::unix::OwnedWriteHalf,
    watch: Option<Weak<RefCell<SilenceWatch>>>,
) -> UnboundedSender<ToPython> {
    let (tx, mut rx) = unbounded_channel::<ToPython>();
    actix::spawn(async move {
        while let Some(message) = rx.recv().await {
            // Noted before it is written: the worker cannot answer sooner.
            if let Some(watch) = watch.as_ref().and_then(Weak::upgrade) {
                watch.borrow_mut().sent(&message);
            }
            if write_message(&mut write, &message).await.is_err() {
                break;
            }
        }
    });
    tx
}

async fn serve_zygote(
    mut reader: BufReader<OwnedReadHalf>,
    _hello: Hello,
    link: UnboundedSender<ToPython>,
    supervisor: Addr<Supervisor>,
) {
    supervisor.do_send(ZygoteConnected { link });
    loop {
        match read_message(&mut reader).await {
            Ok(Some(message)) => supervisor.do_send(FromZygote(message)),
            Ok(None) => break,
            Err(e) => {
                // Without the zygote the run cannot go on: the Supervisor
                // stops it, and its exit ends the run with an error.
                supervisor.do_send(ZygoteBroken { error: e.to_string() });
                break;
            }
        }
    }
}

/// Ticks the worker's silence watch until the connection ends (`watch`
/// dropped by the reader); a worker silent past the limit is reported once.
fn spawn_silence_clock(watch: &Watch, worker: usize, pid: u32, supervisor: Addr<Supervisor>) {
    let watch = Rc::downgrade(watch);
    actix::spawn(async move {
        let mut clock = tokio::time::interval(silence::TICK);
        clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        clock.tick().await;
        loop {
            clock.tick().await;
            let Some(watch) = watch.upgrade() else { break };
            let Some(silent) = watch.borrow_mut().tick() else { continue };
            supervisor.do_send(WorkerSilent { worker, pid, silent });
        }
    });
}

async fn serve_worker(
    mut reader: BufReader<OwnedReadHalf>,
    hello: Hello,
    link: UnboundedSender<ToPython>,
    watch: Watch,
    peers: Peers,
) {
    let Peers { supervisor, scheduler, diagnostics } = peers;
    let Some(worker) = hello.worker else {
        return diagnostics.diagnostic("rpytest: a worker said hello without its number; closed");
    };
    let pid = hello.pid;
    scheduler.do_send(WorkerJoined { worker, inventory: hello.inventory, link });
    supervisor.do_send(WorkerConnected { worker, pid });
    spawn_silence_clock(&watch, worker, pid, supervisor.clone());
    let mut finished = false;
    loop {
        let message = read_message(&mut reader).await;
        if let Ok(Some(message)) = &message {
            watch.borrow_mut().heard(message);
        }
        match message {
            Ok(Some(FromPython::Ready)) => scheduler.do_send(WorkRequest { worker }),
            Ok(Some(FromPython::Started { .. })) => {}
            Ok(Some(FromPython::TestDone(done))) => scheduler.do_send(TestFinished { worker, done }),
            Ok(Some(FromPython::Interrupted(interruption))) => {
                scheduler.do_send(TestInterrupted { worker, interruption })
            }
            Ok(Some(FromPython::StopRequested { reason, interrupted })) => {
                scheduler.do_send(StopRequested { reason, interrupted })
            }
            Ok(Some(FromPython::Leaked { leaks })) => scheduler.do_send(TestsLeaked { worker, leaks }),
            Ok(Some(FromPython::Finished { workeroutput })) => {
                finished = true;
                // Before the Scheduler hears of it: the zygote must have every
                // node's output before the run's end reaches it.
                supervisor.do_send(WorkerOutput { worker, pid, workeroutput });
                scheduler.do_send(WorkerFinished { worker });
            }
            Ok(Some(FromPython::InternalError { message })) => {
                diagnostics.diagnostic(format!("rpytest: worker gw{worker}: {message}"))
            }
            Ok(Some(other)) => {
                diagnostics.diagnostic(format!("rpytest: worker gw{worker} sent an unexpected {other:?}; ignored"))
            }
            Ok(None) => break,
            Err(e) => {
                diagnostics.diagnostic(format!("rpytest: error on worker gw{worker}'s connection: {e}; closing it"));
                break;
            }
        }
    }
    supervisor.do_send(WorkerDisconnected { worker, pid, finished });
}
