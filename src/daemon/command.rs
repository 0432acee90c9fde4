//! `rpytest serve [--status | --stop] [--idle-timeout SECS] [--poll SECS]`.

use std::io::Write;
use std::time::Duration;

use clap::Parser;

use super::client::{self, ClientError};
use super::paths;
use super::server::{self, ServeOptions};
use super::wire::{Reply, Request, StatusReport};

/// Keep collected pytest sessions warm so runs skip start-up and collection.
#[derive(Debug, Parser)]
#[command(name = "rpytest serve", disable_version_flag = true)]
struct ServeFlags {
    /// Describe the running daemon (exit 0), or exit 1 when none runs.
    #[arg(long, conflicts_with_all = ["stop", "idle_timeout", "poll"])]
    status: bool,

    /// Stop the running daemon.
    #[arg(long, conflicts_with_all = ["idle_timeout", "poll"])]
    stop: bool,

    /// Stop after this many seconds without a request (0: never).
    /// Default: [tool.rpytest] daemon_idle_timeout, else 3600.
    #[arg(long, value_name = "SECS")]
    idle_timeout: Option<u64>,

    /// Check warm zygotes for changed files every SECS seconds and rebuild
    /// them early (0: only when a run asks).
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    poll: f64,
}

pub fn main(args: &[String], default_idle_timeout: u64) -> i32 {
    let flags =
        match ServeFlags::try_parse_from(std::iter::once("rpytest serve".to_string()).chain(args.iter().cloned())) {
            Ok(flags) => flags,
            Err(e) => {
                let _ = e.print();
                return if e.use_stderr() { 4 } else { 0 };
            }
        };
    if !flags.poll.is_finite() || flags.poll < 0.0 {
        eprintln!("rpytest serve: error: --poll must be a number of seconds, 0 or more");
        return 4;
    }
    let socket = paths::socket_path(&paths::runtime_dir());
    if flags.status {
        return print_status(&socket);
    }
    if flags.stop {
        return stop(&socket);
    }
    let options = ServeOptions {
        runtime_dir: paths::runtime_dir(),
        idle_timeout: Duration::from_secs(flags.idle_timeout.unwrap_or(default_idle_timeout)),
        poll: Duration::from_secs_f64(flags.poll),
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
    let mib = |key: &str| report.memory.get(key).copied().unwrap_or(0) as f64 / (1024.0 * 1024.0);
    let mut text = format!("rpytest daemon: pid {}, up {}s, {}\n", report.pid, report.uptime_secs, report.build);
    text += &format!("socket: {}\n", report.socket.display());
    text += &match report.idle_timeout_secs {
        0 => "idle timeout: none\n".to_string(),
        secs => format!("idle timeout: {secs}s\n"),
    };
    text += &format!(
        "memory: daemon {:.1} MiB, zygotes {:.1} MiB, total {:.1} MiB\n",
        mib("daemon"),
        mib("zygotes"),
        mib("total")
    );
    text += &format!("zygotes: {}\n", report.zygotes.len());
    for zygote in &report.zygotes {
        let pid = zygote.pid.map_or(String::new(), |pid| format!(" pid {pid}"));
        text += &format!("  {} [{}]{pid}: {}\n", zygote.project.display(), zygote.args.join(" "), zygote.state);
    }
    text
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
