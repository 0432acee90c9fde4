//! One connection from a Python process: not an actor, a task per socket.
//!
//! The first frame must be `hello` with our protocol version. A zygote's
//! messages then go to the Supervisor; a worker's run-time messages go
//! straight to the Scheduler (in order, from one sender) and its end of
//! stream to the Supervisor. A malformed frame closes this connection only.

use std::time::Duration;

use actix::prelude::*;
use tokio::io::BufReader;
use tokio::net::unix::OwnedReadHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

use super::messages::{
    FromZygote, StopRequested, TestFinished, TestInterrupted, TestsLeaked, WorkRequest, WorkerConnected,
    WorkerDisconnected, WorkerFinished, WorkerJoined, WorkerOutput, ZygoteBroken, ZygoteConnected,
};
use super::scheduler::Scheduler;
use super::supervisor::Supervisor;
use crate::protocol::{read_message, write_message, FromPython, Hello, Role, ToPython, PROTOCOL_VERSION};

const HELLO_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn accept_loop(listener: UnixListener, supervisor: Addr<Supervisor>, scheduler: Addr<Scheduler>) {
    while let Ok((stream, _)) = listener.accept().await {
        if !peer_is_us(&stream) {
            eprintln!("rpytest: refused a connection from another user");
            continue;
        }
        actix::spawn(serve(stream, supervisor.clone(), scheduler.clone()));
    }
}

/// Only processes of our own user may talk to the engine.
fn peer_is_us(stream: &UnixStream) -> bool {
    // SAFETY: getuid has no preconditions.
    let me = unsafe { libc::getuid() };
    stream.peer_cred().map(|cred| cred.uid() == me).unwrap_or(false)
}

async fn serve(stream: UnixStream, supervisor: Addr<Supervisor>, scheduler: Addr<Scheduler>) {
    let (read, write) = stream.into_split();
    let mut reader = BufReader::with_capacity(1 << 16, read);
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, read_message(&mut reader)).await {
        Ok(Ok(Some(FromPython::Hello(hello)))) => hello,
        Ok(Ok(None)) => return,
        Ok(Ok(Some(other))) => {
            return eprintln!("rpytest: a connection opened with {other:?} instead of hello; closed")
        }
        Ok(Err(e)) => return eprintln!("rpytest: bad first frame on a connection ({e}); closed"),
        Err(_) => return eprintln!("rpytest: a connection sent no hello within {HELLO_TIMEOUT:?}; closed"),
    };
    if hello.protocol != PROTOCOL_VERSION {
        return eprintln!(
            "rpytest: protocol mismatch: a Python process speaks version {}, this binary {PROTOCOL_VERSION} \
             (a stale worker cache? remove ~/.cache/rpytest); connection closed",
            hello.protocol
        );
    }
    let link = spawn_writer(write);
    match hello.role {
        Role::Zygote => serve_zygote(reader, hello, link, supervisor).await,
        Role::Worker => serve_worker(reader, hello, link, supervisor, scheduler).await,
    }
}

fn spawn_writer(mut write: tokio::net::unix::OwnedWriteHalf) -> UnboundedSender<ToPython> {
    let (tx, mut rx) = unbounded_channel::<ToPython>();
    actix::spawn(async move {
        while let Some(message) = rx.recv().await {
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

async fn serve_worker(
    mut reader: BufReader<OwnedReadHalf>,
    hello: Hello,
    link: UnboundedSender<ToPython>,
    supervisor: Addr<Supervisor>,
    scheduler: Addr<Scheduler>,
) {
    let Some(worker) = hello.worker else {
        return eprintln!("rpytest: a worker said hello without its number; closed");
    };
    let pid = hello.pid;
    scheduler.do_send(WorkerJoined { worker, inventory: hello.inventory, link });
    supervisor.do_send(WorkerConnected { worker, pid });
    let mut finished = false;
    loop {
        match read_message(&mut reader).await {
            Ok(Some(FromPython::Ready)) => scheduler.do_send(WorkRequest { worker }),
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
            Ok(Some(FromPython::InternalError { message })) => eprintln!("rpytest: worker gw{worker}: {message}"),
            Ok(Some(other)) => eprintln!("rpytest: worker gw{worker} sent an unexpected {other:?}; ignored"),
            Ok(None) => break,
            Err(e) => {
                eprintln!("rpytest: error on worker gw{worker}'s connection: {e}; closing it");
                break;
            }
        }
    }
    supervisor.do_send(WorkerDisconnected { worker, pid, finished });
}
