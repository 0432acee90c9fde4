//! `rpytest serve [--status | --stop] [--idle-timeout SECS] [--poll SECS]
//! [--max-memory SIZE]`, and how `--status` reads.

use std::io::Write;
use std::time::Duration;

use clap::Parser;

use super::client::{self, ClientError};
use super::memory::human;
use super::paths;
use super::server::{self, ServeOptions};
use super::wire::{Reply, Request, StatusReport, ZygoteStatus};
use crate::config;
use crate::errors::UsageError;

/// Keep collected pytest sessions warm so runs skip start-up and collection.
#[derive(Debug, Parser)]
#[command(name = "rpytest serve", disable_version_flag = true)]
struct ServeFlags {
    /// Describe the running daemon (exit 0), or exit 1 when none runs.
    #[arg(long, conflicts_with_all = ["stop", "idle_timeout", "poll", "max_memory"])]
    status: bool,

    /// Stop the running daemon.
    #[arg(long, conflicts_with_all = ["idle_timeout", "poll", "max_memory"])]
    stop: bool,

    /// Stop after this many seconds without a request (0: never).
    /// Default: [tool.rpytest] daemon_idle_timeout, else 3600.
    #[arg(long, value_name = "SECS")]
    idle_timeout: Option<u64>,

    /// Check warm zygotes for changed files every SECS seconds and rebuild
    /// them early (0: only when a run asks).
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    poll: f64,

    /// Memory the warm sessions may hold together, counted as PSS: bytes or
    /// a size ("512MiB", "2GiB"), or "auto" (a quarter of the memory
    /// available). Past it the least recently used end.
    /// Default: [tool.rpytest] daemon_max_memory, else "auto".
    #[arg(long, value_name = "SIZE", value_parser = parse_max_memory)]
    max_memory: Option<MaxMemory>,
}

/// `--max-memory`'s value: bytes, or None for "auto".
#[derive(Debug, Clone, Copy)]
struct MaxMemory(Option<u64>);

fn parse_max_memory(text: &str) -> Result<MaxMemory, String> {
    config::parse_daemon_max_memory(text).map(MaxMemory)
}

/// Serve, or ask the running daemon; `settings` give the defaults.
pub fn main(args: &[String], settings: &config::Settings) -> i32 {
    let flags =
        match ServeFlags::try_parse_from(std::iter::once("rpytest serve".to_string()).chain(args.iter().cloned())) {
            Ok(flags) => flags,
            Err(e) => {
                let _ = e.print();
                return if e.use_stderr() { UsageError::EXIT_CODE.code() } else { 0 };
            }
        };
    if !flags.poll.is_finite() || flags.poll < 0.0 {
        eprintln!("rpytest serve: error: --poll must be a number of seconds, 0 or more");
        return UsageError::EXIT_CODE.code();
    }
    let socket = paths::socket_path(&paths::runtime_dir());
    if flags.status {
        return print_status(&socket);
    }
    if flags.stop {
        return stop(&socket);
    }
    let max_memory = flags.max_memory.map_or(settings.daemon_max_memory, |MaxMemory(bytes)| bytes);
    let options = ServeOptions {
        runtime_dir: paths::runtime_dir(),
        idle_timeout: Duration::from_secs(flags.idle_timeout.unwrap_or(settings.daemon_idle_timeout)),
        poll: Duration::from_secs_f64(flags.poll),
        // "auto": a quarter of what is available as the daemon starts.
        max_memory: max_memory.or_else(|| crate::schedule::memory_budget::available_memory().map(|bytes| bytes / 4)),
    };
    match server::serve(options) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("rpytest serve: error: {e}");
            1
        }
    }
}

fn print_status(socket: &std::path::Path) -> i32 {
    match client::status(socket) {
        Ok(report) => {
            // A reader that stops early (`| grep -q warm`) is no error.
            let _ = std::io::stdout().lock().write_all(status_text(&report).as_bytes());
            0
        }
        Err(e) => {
            eprintln!("rpytest serve: {}", not_running_message(&e, socket));
            1
        }
    }
}

fn status_text(report: &StatusReport) -> String {
    let bytes = |key: &str| report.memory.get(key).copied().unwrap_or(0);
    let mut text = format!("rpytest daemon: pid {}, up {}s, {}\n", report.pid, report.uptime_secs, report.build);
    text += &format!("socket: {}\n", report.socket.display());
    text += &match report.idle_timeout_secs {
        0 => "idle timeout: none\n".to_string(),
        secs => format!("idle timeout: {secs}s\n"),
    };
    let cap =
        report.max_memory.map_or("no daemon_max_memory".to_string(), |cap| format!("daemon_max_memory {}", human(cap)));
    text += &format!(
        "memory: daemon {}, sessions {} of {cap}, total {}\n",
        human(bytes("daemon")),
        human(bytes("zygotes")),
        human(bytes("total"))
    );
    text += &format!("zygotes: {}\n", report.zygotes.len());
    for zygote in &report.zygotes {
        let pid = zygote.pid.map_or(String::new(), |pid| format!(" pid {pid}"));
        text += &format!("  {} [{}]{pid}: {}\n", zygote.project.display(), zygote.args.join(" "), zygote.state);
        text += &zygote_details(zygote);
    }
    if !report.evictions.is_empty() {
        text += "recent evictions:\n";
    }
    for e in &report.evictions {
        let (project, args) = (e.project.display(), e.args.join(" "));
        text += &format!("  evicted {project} [{args}] ({}) {}s ago: {}\n", human(e.pss), e.secs_ago, e.reason);
    }
    text
}

/// The line under a session: its memory and its last run.
fn zygote_details(zygote: &ZygoteStatus) -> String {
    let mut parts = Vec::new();
    if let (Some(pss), Some(rss)) = (zygote.pss, zygote.rss) {
        parts.push(match zygote.pss_is_rss {
            false => format!("PSS {} (RSS {})", human(pss), human(rss)),
            true => format!("RSS {} (no PSS: smaps_rollup unreadable)", human(rss)),
        });
    }
    let ago = zygote.idle_secs.map_or(String::new(), |secs| format!(" {secs}s ago"));
    match &zygote.last_run_args {
        Some(args) => parts.push(format!("last run{ago}: {}", args.join(" "))),
        None if zygote.idle_secs.is_some() => parts.push(format!("no run yet; asked for{ago}")),
        None => {}
    }
    match parts.is_empty() {
        true => String::new(),
        false => format!("    {}\n", parts.join("; ")),
    }
}

fn stop(socket: &std::path::Path) -> i32 {
    match client::ask(socket, &Request::stop(), Duration::from_secs(5)) {
        Ok(Reply::Ok) => {
            // The daemon removes its socket as it leaves.
            for _ in 0..100 {
                if !socket.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            println!("rpytest daemon stopped");
            0
        }
        Ok(other) => {
            eprintln!("rpytest serve: unexpected reply {other:?}");
            1
        }
        Err(e) => {
            eprintln!("rpytest serve: {}", not_running_message(&e, socket));
            1
        }
    }
}

fn not_running_message(error: &ClientError, socket: &std::path::Path) -> String {
    match error {
        ClientError::NotRunning => format!("no daemon runs (no socket at {})", socket.display()),
        other => other.to_string(),
    }
}
