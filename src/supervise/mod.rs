//! Supervision of the run's Python processes, as plain logic: the run's
//! lifecycle (`lifecycle`: its phases, timers, Ctrl-C, the zygote's end
//! and the exit code), the worker slots' state machine (`slots`), how
//! processes are started (`launch`), what the run decides once collected
//! (`run_start`), and the signals that stop processes (here), the run's
//! memory (`memory_watch`) and process tree (`proctree`), the signals that
//! stop a run (`signals`), a worker silent where a reply is due
//! (`silence`) and its private socket directory (`socket_dir`). The
//! Supervisor actor (`src/engine/supervisor.rs`) routes messages to these and
//! performs the lifecycle's actions.

pub mod launch;
pub mod lifecycle;
pub mod memory_watch;
pub mod proctree;
pub mod run_start;
pub mod signals;
pub mod silence;
pub mod slots;
pub mod socket_dir;

/// Signals a worker and every process under it. A worker leads no
/// process group (a test may `os.setsid()`, which a leader cannot), so what
/// its tests started is found as its descendants: it is their subreaper,
/// so detached ones stay under it too (`proctree`). The tree is read
/// before the worker is signalled, while they are still its.
pub fn signal_worker(pid: u32, signal: i32) {
    let tree = proctree::descendants(pid as i32);
    // SAFETY: plain syscalls on a worker process this run started and its descendants.
    unsafe {
        libc::kill(pid as i32, signal);
        for child in tree {
            libc::kill(child, signal);
        }
    }
}

/// SIGKILL to the zygote and its forked children. Outside a debugging run
/// the zygote leads its own process group, so one signal reaches them all;
/// in one, forked children die with it (PR_SET_PDEATHSIG).
pub fn kill_zygote(pid: u32, interactive: bool) {
    // SAFETY: plain syscalls on a pid this run started.
    unsafe {
        if interactive {
            libc::kill(pid as i32, libc::SIGKILL);
        } else {
            libc::killpg(pid as i32, libc::SIGKILL);
        }
    }
}

/// One signal to one process (SIGINT to the zygote or a worker).
pub fn signal(pid: u32, signal: i32) {
    // SAFETY: a plain syscall on a pid this run started.
    unsafe { libc::kill(pid as i32, signal) };
}
