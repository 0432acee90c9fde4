//! A run's conversation with the daemon: ask the warm session whether it
//! can serve the run, accept it, receive the client's streams, hand them
//! to the session, which forks the run's own process.
//!
//! The client's stdout and stderr come only after the daemon has answered
//! `accepted`. A daemon that was stopped or stuck therefore holds nothing of
//! a client that gave up on it and ran embedded: otherwise that client's
//! pipe would stay open for as long as the daemon is stopped, and a late
//! handover would write a second, failing session into it. A client that
//! left is seen as a closed connection, and nothing runs.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::rc::Rc;

use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

use super::{read_request, Daemon, REQUEST_LIMIT};
use crate::daemon::fdpass;
use crate::daemon::key::RunKey;
use crate::daemon::wire::{self, Reply, RunStep, WireError};

impl Daemon {
    /// Hands a run of `args` to the warm session for `key`, or says why not.
    pub(super) async fn take(
        self: &Rc<Self>,
        key: RunKey,
        args: &[String],
        engine_socket: &Path,
        stream: &mut UnixStream,
    ) -> Reply {
        let id = key.id();
        let mut zygote = match self.wait_for_warm(&id).await {
            Ok(zygote) => zygote,
            Err(reason) => return Reply::Cold { reason },
        };
        let (recollected, rebuilt) = match zygote.refresh().await {
            Ok(recollected) => (recollected, None),
            Err(reason) => {
                // Built again now, and waited for while that beats a cold run:
                // the same work, done where the next run finds it.
                self.rebuild(&id, &zygote);
                zygote = match self.wait_for_warm(&id).await {
                    Ok(zygote) => zygote,
                    Err(why) => return Reply::Cold { reason: format!("{reason}; {why}") },
                };
                (vec![], Some(format!("{reason} (since the warm session collected)")))
            }
        };
        match zygote.verdict(args).await {
            Ok(None) => {}
            Ok(Some(reason)) => return Reply::Declined { reason },
            Err(e) => {
                self.forget(&id, &zygote);
                return Reply::Cold { reason: e.to_string() };
            }
        }
        let fds = match receive_streams(stream).await {
            Ok(fds) => fds,
            Err(why) => return Reply::Error { message: format!("{why}; nothing ran") },
        };
        let runs_beside = self.handed_over.borrow().running() as u32;
        match zygote.hand_over(engine_socket, args, &fds).await {
            Ok(pid) => {
                self.served(&id, args);
                Reply::Warm { pid, runs_beside, recollected, rebuilt }
            }
            Err(e) => {
                self.forget(&id, &zygote);
                Reply::Cold { reason: e.to_string() }
            }
        }
    }
}

/// Says `accepted` and reads the client's stdout and stderr, unless the
/// client has gone (it gave up waiting) or sends something else.
async fn receive_streams(stream: &mut UnixStream) -> Result<Vec<OwnedFd>, String> {
    let gone = |e: &dyn std::fmt::Display| format!("the client left before its run was handed over ({e})");
    match tokio::time::timeout(REQUEST_LIMIT, stream.write_all(&wire::encode(&Reply::Accepted))).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(gone(&e)),
        Err(_) => return Err(format!("the client took no answer within {REQUEST_LIMIT:?}")),
    }
    let (body, fds) = match tokio::time::timeout(REQUEST_LIMIT, read_request(stream)).await {
        Ok(Ok(frame)) => frame,
        Ok(Err(WireError::Truncated)) => return Err(gone(&"connection closed")),
        Ok(Err(e)) => return Err(format!("bad streams frame: {e}")),
        Err(_) => return Err(format!("the client sent no streams within {REQUEST_LIMIT:?}")),
    };
    match wire::decode::<RunStep>(&body) {
        Ok(RunStep::Streams) if fds.len() == 2 => {}
        Ok(RunStep::Streams) => return Err(format!("a run must send its stdout and stderr, got {} fds", fds.len())),
        Err(e) => return Err(format!("bad streams frame: {e}")),
    }
    // Sent, then the client gave up waiting for `warm` (the daemon was
    // stopped in between): its streams must not be used.
    if fdpass::peer_closed(stream.as_raw_fd()) {
        return Err(gone(&"connection closed after it sent its streams"));
    }
    Ok(fds)
}
