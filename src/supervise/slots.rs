//! What is known of each worker process's ending, and when it is certain.
//!
//! A worker ends in two halves that arrive in either order: its connection
//! closes, and its exit status is seen. Reports can still be in the socket
//! when the process is already gone, so a worker is declared lost only when
//! both halves are known, or a grace period after the first has passed.
//! A slot is a worker index; each process started in it gets a new
//! generation, so a late event of an old process never lands on its
//! replacement. Plain logic: the clock is passed in, so the grace period
//! is tested without sleeping.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// One worker process, as far as its ending is known.
#[derive(Debug, Default)]
struct Slot {
    generation: u64,
    /// The pid the zygote forked (before the worker says hello).
    forked: Option<u32>,
    /// The pid of a spawned worker.
    spawned: Option<u32>,
    /// The pid the worker said hello with.
    pid: Option<u32>,
    disconnected: bool,
    /// It sent `finished`: its session ended on purpose.
    finished: bool,
    exit: Option<String>,
    /// When the missing half of its ending stops being waited for.
    grace_until: Option<Instant>,
    /// Stopped by the watchdog for passing this limit (seconds).
    timed_out: Option<f64>,
    /// Stopped for its silence where a reply was due: the cause of its end.
    silent: Option<String>,
    /// A fresh process takes this slot over once this one has ended (a
    /// worker retired for memory): started then, so that no late event of
    /// the old process lands on the new one.
    restart_when_gone: bool,
}

impl Slot {
    /// Whether `pid` is this slot's process (unknown yet counts as yes).
    fn owns(&self, pid: u32) -> bool {
        self.process().is_none_or(|own| own == pid)
    }

    /// The worker's pid, as far as it is known.
    fn process(&self) -> Option<u32> {
        self.pid.or(self.forked).or(self.spawned)
    }
}

/// What settling a slot decided about its process's end.
#[derive(Debug, PartialEq)]
pub enum SlotVerdict {
    /// One half is known: look again at this instant (`Slots::expire`).
    WaitUntil(Instant),
    /// The worker died under its tests (or was stopped for a timeout).
    Lost {
        worker: usize,
        cause: String,
        process: Option<u32>,
        timed_out: Option<f64>,
        /// It had said hello: plugins hear of its end (`node_down`).
        said_hello: bool,
    },
    /// It ended after finishing its session.
    Ended { worker: usize, process: Option<u32>, restart: bool },
}

/// The run's worker slots.
#[derive(Debug)]
pub struct Slots {
    slots: HashMap<usize, Slot>,
    next_generation: u64,
    grace: Duration,
}

impl Slots {
    /// `grace`: how long the second half of an ending is waited for.
    pub fn new(grace: Duration) -> Self {
        Slots { slots: HashMap::new(), next_generation: 0, grace }
    }

    /// A new process is starting in `worker`'s slot; returns its generation.
    pub fn start(&mut self, worker: usize) -> u64 {
        let generation = self.next_generation;
        self.next_generation += 1;
        self.slots.insert(worker, Slot { generation, ..Slot::default() });
        generation
    }

    /// The zygote forked `worker` as `pid`.
    pub fn forked(&mut self, worker: usize, pid: u32) {
        if let Some(slot) = self.slots.get_mut(&worker).filter(|s| s.forked.is_none()) {
            slot.forked = Some(pid);
        }
    }

    pub fn spawned(&mut self, worker: usize, pid: u32) {
        self.slots.entry(worker).or_default().spawned = Some(pid);
    }

    /// Whether `worker`'s slot was started and has no process yet (a
    /// spawned worker waits for the zygote's `node_configured`).
    pub fn awaits_process(&self, worker: usize) -> bool {
        self.slots.get(&worker).is_some_and(|s| s.process().is_none() && s.exit.is_none())
    }

    /// The worker said hello.
    pub fn connected(&mut self, worker: usize, pid: u32) {
        let slot = self.slots.entry(worker).or_default();
        if slot.owns(pid) {
            slot.pid = Some(pid);
        }
    }

    /// The worker sent `finished`; false if `pid` is not the slot's process.
    pub fn finished(&mut self, worker: usize, pid: u32) -> bool {
        match self.slots.get_mut(&worker).filter(|slot| slot.owns(pid)) {
            Some(slot) => {
                slot.finished = true;
                true
            }
            None => false,
        }
    }

    pub fn disconnected(&mut self, worker: usize, pid: u32, finished: bool, now: Instant) -> Option<SlotVerdict> {
        let slot = self.slots.get_mut(&worker).filter(|slot| slot.owns(pid))?;
        slot.disconnected = true;
        slot.finished |= finished;
        self.settle(worker, now, false)
    }

    /// Whether `pid` in `worker`'s slot was stopped for a timeout (its
    /// SIGKILL is ours, not the OOM killer's); None if it is not the slot's.
    pub fn stopped_by_us(&self, worker: usize, pid: u32) -> Option<bool> {
        self.slots
            .get(&worker)
            .filter(|slot| slot.owns(pid))
            .map(|slot| slot.timed_out.is_some() || slot.silent.is_some())
    }

    /// The process ended, as `cause` describes.
    pub fn exited(&mut self, worker: usize, pid: u32, cause: String, now: Instant) -> Option<SlotVerdict> {
        let slot = self.slots.get_mut(&worker).filter(|slot| slot.owns(pid))?;
        slot.exit = Some(cause);
        if slot.pid.is_none() {
            // It died before saying hello: there is no connection to wait for.
            slot.disconnected = true;
        }
        self.settle(worker, now, false)
    }

    /// Settles every slot whose grace period is over.
    pub fn expire(&mut self, now: Instant) -> Vec<SlotVerdict> {
        let due: Vec<usize> = (self.slots.iter())
            .filter(|(_, slot)| slot.grace_until.is_some_and(|until| until <= now))
            .map(|(&worker, _)| worker)
            .collect();
        due.into_iter().filter_map(|worker| self.settle(worker, now, true)).collect()
    }

    fn settle(&mut self, worker: usize, now: Instant, grace_over: bool) -> Option<SlotVerdict> {
        let slot = self.slots.get_mut(&worker)?;
        let both_known = slot.disconnected && slot.exit.is_some();
        if !both_known && !grace_over {
            if slot.grace_until.is_some() {
                return None;
            }
            let until = now + self.grace;
            slot.grace_until = Some(until);
            return Some(SlotVerdict::WaitUntil(until));
        }
        let slot = self.slots.remove(&worker)?;
        let process = slot.process();
        // A timed-out worker's test is the timeout's, even if it ended (a
        // signal can cut a sleep short) before the kill.
        if !slot.finished || slot.timed_out.is_some() || slot.silent.is_some() {
            let cause = (slot.silent.or(slot.exit)).unwrap_or_else(|| "its connection closed unexpectedly".to_string());
            let said_hello = !slot.finished && slot.pid.is_some();
            return Some(SlotVerdict::Lost { worker, cause, process, timed_out: slot.timed_out, said_hello });
        }
        Some(SlotVerdict::Ended { worker, process, restart: slot.restart_when_gone })
    }

    /// The Scheduler wants a fresh process in `worker`'s slot: true to start
    /// it now; false when the old one finished but has not ended yet (it
    /// starts with `SlotVerdict::Ended { restart: true }`).
    pub fn restart_now(&mut self, worker: usize) -> bool {
        match self.slots.get_mut(&worker) {
            Some(slot) if slot.finished => {
                slot.restart_when_gone = true;
                false
            }
            _ => true,
        }
    }

    /// Marks the worker's process as stopped for passing `secs`; its pid,
    /// unless it is already stopped, gone, or has not said hello.
    pub fn time_out(&mut self, worker: usize, secs: f64) -> Option<u32> {
        let slot = self.slots.get_mut(&worker).filter(|s| s.timed_out.is_none())?;
        let pid = slot.pid.filter(|_| slot.exit.is_none())?;
        slot.timed_out = Some(secs);
        Some(pid)
    }

    /// Marks `pid`, the process in `worker`'s slot, as stopped for its
    /// silence (`cause`); its pid, unless it is already stopped or gone.
    pub fn silenced(&mut self, worker: usize, pid: u32, cause: String) -> Option<u32> {
        let slot = self.slots.get_mut(&worker).filter(|s| s.pid == Some(pid) && s.silent.is_none())?;
        slot.exit.is_none().then(|| {
            slot.silent = Some(cause);
            pid
        })
    }

    /// The process of `generation` in `worker`'s slot if it has neither
    /// said hello nor ended: `Some(None)` when not even its pid is known.
    pub fn not_connected(&self, worker: usize, generation: u64) -> Option<Option<u32>> {
        let slot = self.slots.get(&worker).filter(|s| s.generation == generation)?;
        (slot.pid.is_none() && slot.exit.is_none()).then(|| slot.forked.or(slot.spawned))
    }

    /// Every slot ends now as lost to `cause` (the zygote died: no exit
    /// status will come, nor a replacement). Late events find no slot.
    pub fn abandon_all(&mut self, cause: &str) -> Vec<SlotVerdict> {
        let mut workers: Vec<usize> = self.slots.keys().copied().collect();
        workers.sort_unstable();
        let slots = workers.into_iter().filter_map(|worker| self.slots.remove(&worker).map(|slot| (worker, slot)));
        slots
            .map(|(worker, slot)| SlotVerdict::Lost {
                worker,
                cause: cause.to_string(),
                process: slot.process(),
                timed_out: slot.timed_out,
                said_hello: slot.pid.is_some(),
            })
            .collect()
    }

    /// Every live worker process: (worker, pid).
    pub fn processes(&self) -> Vec<(usize, u32)> {
        self.slots.iter().filter_map(|(&worker, slot)| slot.process().map(|pid| (worker, pid))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(2);

    fn lost(worker: usize, cause: &str, process: u32, said_hello: bool) -> SlotVerdict {
        SlotVerdict::Lost { worker, cause: cause.into(), process: Some(process), timed_out: None, said_hello }
    }

    #[test]
    fn a_crash_is_certain_once_both_halves_are_known() {
        let (mut slots, t0) = (Slots::new(GRACE), Instant::now());
        slots.start(0);
        slots.forked(0, 10);
        slots.connected(0, 10);
        assert_eq!(slots.exited(0, 10, "killed by SIGSEGV".into(), t0), Some(SlotVerdict::WaitUntil(t0 + GRACE)));
        assert_eq!(slots.disconnected(0, 10, false, t0), Some(lost(0, "killed by SIGSEGV", 10, true)));
        assert!(slots.processes().is_empty());
    }

    #[test]
    fn a_missing_half_is_waited_for_until_the_grace_period_ends() {
        let (mut slots, t0) = (Slots::new(GRACE), Instant::now());
        slots.start(0);
        slots.connected(0, 10);
        assert_eq!(slots.disconnected(0, 10, false, t0), Some(SlotVerdict::WaitUntil(t0 + GRACE)));
        assert!(slots.expire(t0 + GRACE / 2).is_empty(), "too early");
        let cause = "its connection closed unexpectedly";
        assert_eq!(slots.expire(t0 + GRACE), vec![lost(0, cause, 10, true)]);
    }

    #[test]
    fn a_finished_worker_ends_cleanly_and_a_deferred_restart_starts_then() {
        let (mut slots, t0) = (Slots::new(GRACE), Instant::now());
        slots.start(1);
        slots.connected(1, 11);
        assert!(slots.finished(1, 11));
        assert!(!slots.restart_now(1), "the old process has not ended");
        slots.disconnected(1, 11, true, t0);
        let ended = slots.exited(1, 11, "exited with code 0".into(), t0);
        assert_eq!(ended, Some(SlotVerdict::Ended { worker: 1, process: Some(11), restart: true }));
        assert!(slots.restart_now(1), "an empty slot starts at once");
    }

    #[test]
    fn abandoned_slots_are_lost_at_once_and_late_events_ignored() {
        let (mut slots, t0) = (Slots::new(GRACE), Instant::now());
        slots.start(0);
        slots.connected(0, 10);
        slots.start(1);
        slots.forked(1, 11);
        let cause = "its zygote was killed by signal 9 (SIGKILL)";
        assert_eq!(slots.abandon_all(cause), vec![lost(0, cause, 10, true), lost(1, cause, 11, false)]);
        assert_eq!(slots.disconnected(0, 10, false, t0), None);
        assert!(slots.processes().is_empty());
    }

    #[test]
    fn late_events_of_a_replaced_process_are_ignored() {
        let (mut slots, t0) = (Slots::new(GRACE), Instant::now());
        slots.start(0);
        slots.connected(0, 10);
        let generation = slots.start(0);
        slots.forked(0, 20);
        assert_eq!(slots.exited(0, 10, "killed by SIGKILL".into(), t0), None);
        assert_eq!(slots.disconnected(0, 10, false, t0), None);
        assert_eq!(slots.not_connected(0, generation), Some(Some(20)));
        assert_eq!(slots.not_connected(0, generation - 1), None);
    }

    #[test]
    fn a_timed_out_worker_is_lost_to_its_timeout_even_if_it_finished() {
        let (mut slots, t0) = (Slots::new(GRACE), Instant::now());
        slots.start(0);
        slots.connected(0, 10);
        assert_eq!(slots.time_out(0, 5.0), Some(10));
        assert_eq!(slots.time_out(0, 5.0), None, "stopped once");
        assert_eq!(slots.stopped_by_us(0, 10), Some(true));
        slots.disconnected(0, 10, true, t0);
        let ending = slots.exited(0, 10, "killed by SIGTERM".into(), t0);
        let expected = SlotVerdict::Lost {
            worker: 0,
            cause: "killed by SIGTERM".into(),
            process: Some(10),
            timed_out: Some(5.0),
            said_hello: false,
        };
        assert_eq!(ending, Some(expected));
    }

    #[test]
    fn a_silenced_worker_is_lost_to_its_silence_once() {
        let (mut slots, t0) = (Slots::new(GRACE), Instant::now());
        slots.start(0);
        slots.connected(0, 10);
        assert_eq!(slots.silenced(0, 11, "silent".into()), None, "not its process");
        assert_eq!(slots.silenced(0, 10, "silent".into()), Some(10));
        assert_eq!(slots.silenced(0, 10, "silent".into()), None, "stopped once");
        assert_eq!(slots.stopped_by_us(0, 10), Some(true), "our SIGKILL, not the OOM killer's");
        slots.disconnected(0, 10, false, t0);
        assert_eq!(slots.exited(0, 10, "killed by signal 9 (SIGKILL)".into(), t0), Some(lost(0, "silent", 10, true)));
    }

    #[test]
    fn a_worker_dead_before_hello_needs_no_disconnect() {
        let (mut slots, t0) = (Slots::new(GRACE), Instant::now());
        slots.start(2);
        slots.spawned(2, 30);
        let ending = slots.exited(2, 30, "exited with code 1".into(), t0);
        assert_eq!(ending, Some(lost(2, "exited with code 1", 30, false)));
    }
}
