//! Processes a run leaves behind, found through /proc and ended.
//!
//! Tests start servers and helpers and sometimes forget them; some detach
//! with `setsid` and a double fork. Nothing of a run may outlive rpytest, so
//! the engine makes itself a child subreaper (`PR_SET_CHILD_SUBREAPER`):
//! orphans of the run (a crashed worker's children, a daemonized helper)
//! become its children instead of init's, and `end_orphans` kills them when
//! the run ends. Workers do the same for their own tests (see `worker.py`),
//! which is how a leak is attributed to a test. Also used to kill a
//! timed-out worker's whole tree, detached children included.

use std::collections::HashMap;

/// Makes this process the reaper of its orphaned descendants.
pub fn become_subreaper() {
    // SAFETY: prctl with integer arguments has no memory effects.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

/// pid -> parent pid of every live process (zombies excluded).
fn parents() -> HashMap<i32, i32> {
    let mut map = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return map };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        if let Some((state, ppid)) = stat_of(pid) {
            if state != 'Z' {
                map.insert(pid, ppid);
            }
        }
    }
    map
}

/// (state, parent pid) from /proc/<pid>/stat.
fn stat_of(pid: i32) -> Option<(char, i32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields follow the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Whether `pid` is stopped by a signal (SIGSTOP, SIGTSTP), not traced.
pub fn is_stopped(pid: i32) -> bool {
    stat_of(pid).is_some_and(|(state, _)| state == 'T')
}

/// Every live descendant of `root`, parents before children.
pub fn descendants(root: i32) -> Vec<i32> {
    descendants_in(&parents(), root)
}

fn descendants_in(parents: &HashMap<i32, i32>, root: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        let mut children: Vec<i32> = parents.iter().filter(|(_, &pp)| pp == parent).map(|(&p, _)| p).collect();
        children.sort_unstable();
        out.extend(&children);
        frontier.extend(children);
    }
    out
}

/// SIGKILL to each pid (a process already gone is no error).
pub fn kill_all(pids: &[i32]) {
    for &pid in pids {
        // SAFETY: a plain syscall; pids come from /proc and are our descendants.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// Kills every process still descended from this one; returns how many.
/// Called when the run is over: whatever is left is an orphan of the run.
/// A daemon this run started (`rpytest serve`, our own executable) and
/// its warm zygotes are not orphans: they are spared.
pub fn end_orphans() -> usize {
    if !has_children() {
        // Nothing to walk /proc for: every process of the run is gone.
        return 0;
    }
    let me = std::process::id() as i32;
    let map = parents();
    let ours = std::env::current_exe().ok();
    let is_rpytest = |pid: i32| ours.is_some() && std::fs::read_link(format!("/proc/{pid}/exe")).ok() == ours;
    let mut spared = Vec::new();
    for daemon in descendants_in(&map, me).into_iter().filter(|&p| is_rpytest(p)) {
        spared.push(daemon);
        spared.extend(descendants_in(&map, daemon));
    }
    let left: Vec<i32> = descendants_in(&map, me).into_iter().filter(|p| !spared.contains(p)).collect();
    kill_all(&left);
    reap_children();
    left.len()
}

/// Whether this process has any child, alive or not yet reaped: one
/// syscall (`waitid` fails with ECHILD without one; WNOWAIT reaps none).
/// As a subreaper, every descendant left over is, or has, such a child.
fn has_children() -> bool {
    // SAFETY: waitid with a zeroed siginfo it may write into.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT | libc::__WALL;
    let rc = unsafe { libc::waitid(libc::P_ALL, 0, &mut info, flags) };
    !(rc == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD))
}

/// Collects the exit status of any dead child that nobody waits for (an
/// adopted orphan), so no zombie stays behind.
fn reap_children() {
    loop {
        // SAFETY: waitpid with WNOHANG and a valid status pointer.
        let pid = unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG | libc::__WALL) };
        if pid <= 0 {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descendants_walk_the_tree() {
        let map: HashMap<i32, i32> = [(2, 1), (3, 2), (4, 2), (5, 3), (9, 8)].into_iter().collect();
        let mut found = descendants_in(&map, 1);
        found.sort_unstable();
        assert_eq!(found, [2, 3, 4, 5]);
        assert!(descendants_in(&map, 5).is_empty());
    }

    #[test]
    fn finds_a_real_child() {
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let found = descendants(std::process::id() as i32);
        assert!(found.contains(&(child.id() as i32)), "{found:?}");
        kill_all(&[child.id() as i32]);
        child.wait().unwrap();
        assert!(!descendants(std::process::id() as i32).contains(&(child.id() as i32)));
    }
}
