//! How the run's Python processes are started: the interpreter, the
//! bootstrap program, pytest's arguments, and the `RPYTEST_*` environment
//! (the contract `pyworker/rpytest_worker/protocol.py` documents).
//!
//! Kept apart from the Supervisor so the environment each role gets can be
//! read, and tested, in one place.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

use crate::config::WorkerStart;
use crate::plan::RunPlan;
use crate::protocol::Inventory;
use crate::python::embed;

/// What every Python process of the run is started from.
pub struct Launcher {
    pub python: PathBuf,
    pub pytest_args: Vec<String>,
    pub pyworker_dir: PathBuf,
    pub socket: PathBuf,
    retrying: bool,
    interactive: bool,
    sharding: bool,
    /// Session fixtures the zygote sets up before forking (fork only).
    shared_fixtures: Vec<String>,
    /// `--worker-start fork` given: the zygote forks past its threads.
    fork_forced: bool,
    /// Workers the zygote may spread the collection over (0: none), and
    /// whether small suites too (`parallel_collection = "always"`).
    collect_shares: usize,
    collect_always: bool,
}

/// A spawned worker the run asks for: its slot, the `-n` in force, the
/// zygote's `node_configured` file for it, and this shard's selection.
#[derive(Debug)]
pub struct WorkerSpawn {
    pub worker: usize,
    pub count: usize,
    pub input: Option<PathBuf>,
    pub shard_keep: Option<Vec<usize>>,
}

/// A spawned worker's own settings, from the collected inventory.
pub struct SpawnedWorker<'a> {
    pub worker: usize,
    pub count: usize,
    pub basetemp: &'a str,
    pub testrunuid: &'a str,
    /// This shard's selection, written where the worker can read it.
    pub shard_keep: Option<&'a Path>,
    /// The zygote's process group, which the worker joins (see `spawned_worker`).
    pub group: Option<u32>,
    /// The zygote's `node_configured` file: workerinput and item order.
    pub input: Option<&'a Path>,
}

impl Launcher {
    pub fn new(plan: &RunPlan, pyworker_dir: PathBuf, socket: PathBuf) -> Self {
        let forking = plan.worker_start == WorkerStart::Fork;
        Launcher {
            python: plan.python.clone(),
            pytest_args: plan.pytest_args.clone(),
            pyworker_dir,
            socket,
            retrying: plan.retries > 0,
            interactive: plan.interactive,
            sharding: plan.shard.is_some(),
            shared_fixtures: if forking { plan.shared_fixtures.clone() } else { Vec::new() },
            fork_forced: plan.fork_forced,
            collect_shares: if plan.shared_fixtures.is_empty() { plan.collect_shares } else { 0 },
            collect_always: plan.collect_always,
        }
    }

    fn python(&self) -> Command {
        let mut cmd = Command::new(&self.python);
        cmd.arg("-c")
            .arg(embed::bootstrap(&self.pyworker_dir))
            .args(&self.pytest_args)
            .env("RPYTEST_SOCKET", &self.socket)
            // Set below when this run shards; never inherited from a parent run.
            .env_remove("RPYTEST_SHARDING")
            .env_remove("RPYTEST_SHARD_KEEP")
            .env_remove("RPYTEST_SHARED_FIXTURES")
            .env_remove("RPYTEST_SPAWN_INPUT")
            .env_remove("RPYTEST_FORK_PAST_THREADS")
            .env_remove("RPYTEST_COLLECT_SHARES")
            // --retries: workers leave -x/--maxfail to the engine's count.
            .env("RPYTEST_RETRYING", if self.retrying { "1" } else { "0" })
            .stdin(if self.interactive { Stdio::inherit() } else { Stdio::null() })
            .kill_on_drop(true);
        cmd
    }

    /// The zygote: collects, then forks the workers.
    pub fn zygote(&self) -> Command {
        let mut cmd = self.python();
        if !self.interactive {
            // Its own group, out of the terminal's (a Ctrl-C there reaches
            // the engine alone, which forwards it), so one signal ends it,
            // its workers and what they started. A debugger instead needs
            // the terminal's foreground group.
            cmd.process_group(0);
        }
        cmd.env("RPYTEST_ROLE", "zygote");
        if self.sharding {
            cmd.env("RPYTEST_SHARDING", "1");
        }
        if !self.shared_fixtures.is_empty() {
            cmd.env("RPYTEST_SHARED_FIXTURES", self.shared_fixtures.join(","));
        }
        if self.fork_forced {
            cmd.env("RPYTEST_FORK_PAST_THREADS", "1");
        }
        if self.collect_shares > 1 {
            let always = if self.collect_always { ":always" } else { "" };
            cmd.env("RPYTEST_COLLECT_SHARES", format!("{}{always}", self.collect_shares));
        }
        cmd
    }

    /// A worker in a fresh interpreter that collects for itself.
    pub fn spawned_worker(&self, spec: &SpawnedWorker) -> Command {
        let mut cmd = self.python();
        cmd.env("RPYTEST_ROLE", "worker")
            .env("RPYTEST_WORKER", spec.worker.to_string())
            .env("RPYTEST_WORKER_COUNT", spec.count.to_string())
            .env("RPYTEST_BASETEMP", spec.basetemp)
            .env("RPYTEST_TESTRUNUID", spec.testrunuid);
        if let Some(path) = spec.shard_keep {
            cmd.env("RPYTEST_SHARD_KEEP", path);
        }
        if !self.interactive {
            // Out of the terminal's group, as the zygote, but not leading a
            // group of its own: a test may call os.setsid(), which fails
            // for a group leader (under xdist it works). So it joins the
            // zygote's group, where forked workers are; a warm zygote's
            // group is in the daemon's session, out of reach: then its own.
            let group = spec.group.unwrap_or(0) as libc::pid_t;
            // SAFETY: setpgid is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    if group == 0 || libc::setpgid(0, group) != 0 {
                        libc::setpgid(0, 0);
                    }
                    Ok(())
                });
            }
        }
        if let Some(path) = spec.input {
            cmd.env("RPYTEST_SPAWN_INPUT", path);
        }
        cmd
    }

    /// The shard selection as a JSON file next to the socket (0700 dir),
    /// for spawned workers to apply to their own collection.
    pub fn write_shard_keep(&self, keep: &[usize]) -> std::io::Result<PathBuf> {
        let path = self.socket.with_file_name("shard-keep.json");
        std::fs::write(&path, serde_json::to_vec(keep)?)?;
        Ok(path)
    }

    /// Spawns the worker `spawn` asks for into `inventory`'s session, in
    /// the zygote's process `group`, with this shard's selection written
    /// where it can read it; Err says what failed.
    pub fn spawn_worker(
        &self,
        spawn: &WorkerSpawn,
        inventory: &Inventory,
        group: Option<u32>,
        on_exit: impl FnOnce(u32, Option<i32>, Option<i32>) + Send + 'static,
    ) -> Result<u32, String> {
        let keep = spawn.shard_keep.as_ref().map(|keep| self.write_shard_keep(keep)).transpose();
        let keep =
            keep.map_err(|e| format!("rpytest: error: cannot pass the shard selection to a spawned worker: {e}"))?;
        let spec = SpawnedWorker {
            worker: spawn.worker,
            count: spawn.count,
            basetemp: &inventory.basetemp,
            testrunuid: &inventory.testrunuid,
            shard_keep: keep.as_deref(),
            group,
            input: spawn.input.as_deref(),
        };
        let spawned = spawn_watched(self.spawned_worker(&spec), on_exit);
        spawned.map_err(|e| format!("rpytest: cannot spawn worker gw{}: {e}", spawn.worker))
    }
}

/// Starts `cmd` and calls `on_exit(pid, exit code, signal)` once it has
/// ended; returns its pid.
pub fn spawn_watched(
    mut cmd: Command,
    on_exit: impl FnOnce(u32, Option<i32>, Option<i32>) + Send + 'static,
) -> std::io::Result<u32> {
    use std::os::unix::process::ExitStatusExt;
    let mut child = cmd.spawn()?;
    let pid = child.id().unwrap_or(0);
    tokio::spawn(async move {
        let status = child.wait().await.ok();
        on_exit(pid, status.and_then(|s| s.code()), status.and_then(|s| s.signal()));
    });
    Ok(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launcher(shared: &[&str], sharding: bool) -> Launcher {
        Launcher {
            python: "python3".into(),
            pytest_args: vec!["-q".into()],
            pyworker_dir: "/tmp/pyworker".into(),
            socket: "/tmp/run/engine.sock".into(),
            retrying: false,
            interactive: false,
            sharding,
            shared_fixtures: shared.iter().map(|s| s.to_string()).collect(),
            fork_forced: false,
            collect_shares: 0,
            collect_always: false,
        }
    }

    fn env(cmd: &Command) -> Vec<(String, Option<String>)> {
        let text = |s: &std::ffi::OsStr| s.to_string_lossy().into_owned();
        cmd.as_std().get_envs().map(|(k, v)| (text(k), v.map(text))).collect()
    }

    fn value(cmd: &Command, key: &str) -> Option<String> {
        env(cmd).into_iter().find(|(k, _)| k == key).and_then(|(_, v)| v)
    }

    #[test]
    fn the_zygote_gets_its_role_and_the_runs_settings_only() {
        let zygote = launcher(&["db"], true).zygote();
        assert_eq!(value(&zygote, "RPYTEST_ROLE").as_deref(), Some("zygote"));
        assert_eq!(value(&zygote, "RPYTEST_SHARDING").as_deref(), Some("1"));
        assert_eq!(value(&zygote, "RPYTEST_SHARED_FIXTURES").as_deref(), Some("db"));
        assert_eq!(value(&zygote, "RPYTEST_SOCKET").as_deref(), Some("/tmp/run/engine.sock"));
        let plain = launcher(&[], false).zygote();
        // Removed, not merely unset: a parent run's values never leak in.
        assert!(env(&plain).contains(&("RPYTEST_SHARDING".into(), None)));
        assert!(env(&plain).contains(&("RPYTEST_COLLECT_SHARES".into(), None)));
        let spread = Launcher { collect_shares: 4, collect_always: true, ..launcher(&[], false) };
        assert_eq!(value(&spread.zygote(), "RPYTEST_COLLECT_SHARES").as_deref(), Some("4:always"));
    }

    #[test]
    fn a_spawned_worker_learns_its_identity_from_the_environment() {
        let keep = PathBuf::from("/tmp/run/shard-keep.json");
        let spec = SpawnedWorker {
            worker: 3,
            count: 4,
            basetemp: "/tmp/bt",
            testrunuid: "abc",
            shard_keep: Some(&keep),
            group: None,
            input: None,
        };
        let cmd = launcher(&[], false).spawned_worker(&spec);
        assert_eq!(value(&cmd, "RPYTEST_ROLE").as_deref(), Some("worker"));
        assert_eq!(value(&cmd, "RPYTEST_WORKER").as_deref(), Some("3"));
        assert_eq!(value(&cmd, "RPYTEST_WORKER_COUNT").as_deref(), Some("4"));
        assert_eq!(value(&cmd, "RPYTEST_SHARD_KEEP").as_deref(), Some("/tmp/run/shard-keep.json"));
        let args: Vec<String> = cmd.as_std().get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(args.last().map(String::as_str), Some("-q"));
    }
}
