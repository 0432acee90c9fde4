//! The warm sessions (checkpoints) the daemon holds, one slot per run key:
//! starting one (`prewarm`), waiting for it to collect, lending it to runs
//! (it stays in its slot: each run forks from it), and retiring the least
//! recently used or those whose dependencies changed.

use std::rc::Rc;
use std::time::{Duration, Instant};

use super::memory_cap::session_pss;
use super::Daemon;
use crate::daemon::key::RunKey;
use crate::daemon::spare;
use crate::daemon::warm_zygote::{self, WarmZygote};

/// A run waits this long for a zygote that is still collecting.
const WAIT_FOR_COLLECTION: Duration = Duration::from_secs(10);
/// Zygotes held at once, across projects; the least recently used goes first.
const MAX_ZYGOTES: usize = 8;

/// `TooLarge`: evicted because it alone held more than `daemon_max_memory`;
/// its runs are cold, and it is not rebuilt for the same arguments.
pub(super) enum SlotState {
    Collecting { pid: u32, since: Instant },
    Warm(Rc<WarmZygote>),
    Failed(String),
    TooLarge(String),
}

pub(super) struct Slot {
    pub(super) key: RunKey,
    /// The arguments its checkpoint was built with: the key's and paths.
    pub(super) build_args: Vec<String>,
    pub(super) state: SlotState,
    pub(super) last_used: Instant,
    /// The command line of the last run it served, for `serve --status`.
    pub(super) last_run_args: Option<Vec<String>>,
}

impl Daemon {
    /// The key's checkpoint once it is warm (it stays in its slot).
    pub(super) async fn wait_for_warm(&self, id: &str) -> Result<Rc<WarmZygote>, String> {
        let deadline = Instant::now() + WAIT_FOR_COLLECTION;
        loop {
            {
                let mut slots = self.slots.borrow_mut();
                match slots.get_mut(id).map(|slot| (&slot.state, &mut slot.last_used)) {
                    None => return Err("no warm session for these options, environment and terminal yet".into()),
                    Some((SlotState::Collecting { since, .. }, _)) if self.too_slow(id, *since, deadline) => {
                        return Err("the warm session is being rebuilt, and a cold run finishes sooner".into())
                    }
                    Some((SlotState::Collecting { .. }, _)) if Instant::now() < deadline => {}
                    Some((SlotState::Collecting { .. }, _)) => {
                        return Err("the warm session is still collecting".into())
                    }
                    Some((SlotState::Warm(zygote), last_used)) if warm_zygote::alive(zygote.pid) => {
                        *last_used = Instant::now();
                        return Ok(zygote.clone());
                    }
                    Some((SlotState::Failed(why) | SlotState::TooLarge(why), _)) => return Err(why.clone()),
                    Some(_) => {
                        slots.remove(id);
                        return Err("the warm session had ended".into());
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Starts a spare for `key` and the `args` just built, unless one for
    /// them waits: the next session built with them (a conftest edited)
    /// skips Python's start, pytest's import and the plugins'. Started once
    /// a build has settled, so it never competes with one; one per project,
    /// for the session built last (the one most likely rebuilt first).
    fn keep_a_spare(&self, key: &RunKey, args: &[String]) {
        let id = key.spare_id();
        if self.spares.borrow().get(&id).is_some_and(|spare| warm_zygote::alive(spare.pid) && spare.fits(args)) {
            return;
        }
        if let Ok(spare) = spare::start(key, args, &self.pyworker_dir) {
            if let Some(old) = self.spares.borrow_mut().insert(id, spare) {
                warm_zygote::kill(old.pid);
            }
        }
    }

    /// Whether a session building since `since` would be ready after
    /// `deadline`, going by how long its last build took: the run then goes
    /// cold at once instead of waiting for it.
    fn too_slow(&self, id: &str, since: Instant, deadline: Instant) -> bool {
        self.build_times.borrow().get(id).is_some_and(|took| since + *took > deadline)
    }

    /// Retires the checkpoint in `id`'s slot if it is still `zygote`.
    pub(super) fn forget(&self, id: &str, zygote: &Rc<WarmZygote>) {
        let mut slots = self.slots.borrow_mut();
        if matches!(slots.get(id).map(|slot| &slot.state), Some(SlotState::Warm(z)) if Rc::ptr_eq(z, zygote)) {
            if let Some(slot) = slots.remove(id) {
                discard(slot.state);
            }
        }
    }

    /// Starts a checkpoint for `key`, built with `build_args`, unless one
    /// is warm or collecting. `replace`: the one there declined a run; if
    /// it was built for some paths, it gives way to one for the whole suite
    /// (the key's arguments alone), which serves any path inside it. One
    /// built for the whole suite stays: runs of paths outside it are cold,
    /// and two runs of different paths cannot make it flip back and forth.
    pub(super) fn prewarm(self: &Rc<Self>, key: RunKey, mut build_args: Vec<String>, replace: bool) {
        let id = key.id();
        if let Some(slot) = self.slots.borrow_mut().get_mut(&id) {
            let narrower = replace && slot.build_args != key.args;
            if narrower {
                build_args = key.args.clone();
            }
            if !narrower && !matches!(slot.state, SlotState::Failed(_)) {
                slot.last_used = Instant::now();
                return;
            }
        }
        if let Some(slot) = self.slots.borrow_mut().remove(&id) {
            discard(slot.state);
        }
        self.make_room();
        let reaper = self.clone();
        let on_run_ended: warm_zygote::OnRunEnded = Rc::new(move |pid, status| match status {
            None if pid > 0 => reaper.handed_over.borrow_mut().started(pid),
            None => {}
            Some(status) => reaper.handed_over.borrow_mut().ended(pid, status),
        });
        let started = match self.spares.borrow_mut().remove(&key.spare_id()) {
            Some(spare) if warm_zygote::alive(spare.pid) && spare.fits(&build_args) => Ok(spare.build(on_run_ended)),
            Some(spare) => {
                warm_zygote::kill(spare.pid);
                warm_zygote::start(&key, &build_args, &self.pyworker_dir, on_run_ended)
            }
            None => warm_zygote::start(&key, &build_args, &self.pyworker_dir, on_run_ended),
        };
        let state = match started {
            Ok(starting) => {
                let pid = starting.pid;
                let daemon = self.clone();
                let slot_id = id.clone();
                let spare_key = key.clone();
                let args = build_args.clone();
                tokio::task::spawn_local(async move {
                    let result = starting.collected().await;
                    if let Err(warm_zygote::ZygoteError::StaleSpare(_)) = result {
                        // The spare predates a change to what it imported: start afresh.
                        daemon.slots.borrow_mut().remove(&slot_id);
                        return daemon.prewarm(spare_key, args, false);
                    }
                    let built = result.is_ok();
                    daemon.settle(&slot_id, pid, result.map_err(|e| e.to_string()));
                    if built {
                        daemon.keep_a_spare(&spare_key, &args);
                    }
                });
                SlotState::Collecting { pid, since: Instant::now() }
            }
            Err(e) => SlotState::Failed(e.to_string()),
        };
        let slot = Slot { key, build_args, state, last_used: Instant::now(), last_run_args: None };
        self.slots.borrow_mut().insert(id, slot);
    }

    /// A zygote finished collecting (or failed): record it, unless its
    /// slot was given up meanwhile. A newly warm one may push the sessions
    /// over `daemon_max_memory`.
    fn settle(&self, id: &str, pid: u32, result: Result<WarmZygote, String>) {
        let mut slots = self.slots.borrow_mut();
        let current =
            slots.get_mut(id).filter(|slot| matches!(slot.state, SlotState::Collecting { pid: p, .. } if p == pid));
        match (current, result) {
            (Some(slot), Ok(zygote)) => {
                if let SlotState::Collecting { since, .. } = slot.state {
                    self.build_times.borrow_mut().insert(id.to_string(), since.elapsed());
                }
                slot.state = SlotState::Warm(Rc::new(zygote));
                drop(slots);
                self.enforce_memory_cap(Some(id));
            }
            (Some(slot), Err(why)) => {
                warm_zygote::kill(pid);
                slot.state = SlotState::Failed(why);
            }
            (None, _) => warm_zygote::kill(pid),
        }
    }

    fn make_room(&self) {
        let mut slots = self.slots.borrow_mut();
        while slots.len() >= MAX_ZYGOTES {
            let Some(oldest) = slots.iter().min_by_key(|(_, slot)| slot.last_used).map(|(id, _)| id.clone()) else {
                return;
            };
            if let Some(slot) = slots.remove(&oldest) {
                let reason = format!("more than {MAX_ZYGOTES} warm sessions");
                self.record_eviction(&slot, session_pss(&slot.state), reason);
                discard(slot.state);
            }
        }
    }

    /// A run of `args` was handed to `id`'s session.
    pub(super) fn served(&self, id: &str, args: &[String]) {
        if let Some(slot) = self.slots.borrow_mut().get_mut(id) {
            slot.last_run_args = Some(args.to_vec());
        }
    }

    /// The daemon stops: every checkpoint ends now. The runs forked from
    /// them are process groups of their own and go on.
    pub(super) fn discard_all(&self) {
        for (_, spare) in self.spares.borrow_mut().drain() {
            warm_zygote::kill(spare.pid);
        }
        for (_, slot) in self.slots.borrow_mut().drain() {
            match slot.state {
                SlotState::Collecting { pid, .. } => warm_zygote::kill(pid),
                SlotState::Warm(zygote) => warm_zygote::kill(zygote.pid),
                SlotState::Failed(_) | SlotState::TooLarge(_) => {}
            }
        }
    }

    /// Checkpoints whose files changed: refreshed in place, or replaced now
    /// when they cannot be (or have ended), so the next run finds a fresh one.
    /// `project_only`: look only at the files under each session's directory
    /// (cheap enough to do often); else at every dependency.
    /// One pass at a time, most recently used session first, each rebuild
    /// awaited before the next: one edit to a conftest that eight sessions
    /// share costs one build at a time, the one most likely asked for
    /// first. A session that failed because a file changed while it
    /// collected is built again too.
    pub(super) fn refresh(self: &Rc<Self>, project_only: bool) {
        if self.refreshing.replace(true) {
            return;
        }
        let mut due: Vec<(Instant, String, Option<Rc<WarmZygote>>)> = self
            .slots
            .borrow()
            .iter()
            .filter_map(|(id, slot)| match &slot.state {
                SlotState::Warm(zygote) if !project_only || zygote.project_changed(&slot.key.cwd) => {
                    Some((slot.last_used, id.clone(), Some(zygote.clone())))
                }
                SlotState::Failed(why) if !project_only && why.contains("while the zygote was collecting") => {
                    Some((slot.last_used, id.clone(), None))
                }
                _ => None,
            })
            .collect();
        due.sort_by_key(|entry| std::cmp::Reverse(entry.0));
        let daemon = self.clone();
        tokio::task::spawn_local(async move {
            for (_, id, zygote) in due {
                let stale = match &zygote {
                    Some(zygote) => !warm_zygote::alive(zygote.pid) || zygote.refresh().await.is_err(),
                    None => true,
                };
                if stale {
                    match &zygote {
                        Some(zygote) => daemon.rebuild(&id, zygote),
                        None => daemon.retry(&id),
                    }
                    daemon.settled(&id).await;
                }
            }
            daemon.refreshing.set(false);
        });
    }

    /// Builds a failed slot's session again.
    fn retry(self: &Rc<Self>, id: &str) {
        let build = self.slots.borrow().get(id).map(|slot| (slot.key.clone(), slot.build_args.clone()));
        if let Some((key, build_args)) = build {
            self.prewarm(key, build_args, false);
        }
    }

    /// Waits (within the collection limit) until `id`'s slot is no longer collecting.
    async fn settled(&self, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(300);
        while Instant::now() < deadline
            && matches!(self.slots.borrow().get(id).map(|slot| &slot.state), Some(SlotState::Collecting { .. }))
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Replaces the checkpoint in `id`'s slot if it is still `zygote`.
    pub(super) fn rebuild(self: &Rc<Self>, id: &str, zygote: &Rc<WarmZygote>) {
        let build = self.slots.borrow().get(id).map(|slot| (slot.key.clone(), slot.build_args.clone()));
        self.forget(id, zygote);
        if let Some((key, build_args)) = build {
            self.prewarm(key, build_args, false);
        }
    }
}

/// Ends a slot's checkpoint: one still collecting at once, a warm one once
/// the runs forked from it have ended (they belong to their clients).
pub(super) fn discard(state: SlotState) {
    match state {
        SlotState::Collecting { pid, .. } => warm_zygote::kill(pid),
        SlotState::Warm(zygote) => {
            tokio::task::spawn_local(async move { zygote.retire().await });
        }
        SlotState::Failed(_) | SlotState::TooLarge(_) => {}
    }
}
