//! The warm zygotes the daemon holds, one slot per run key: starting one
//! (`prewarm`), waiting for it to collect, taking it out for a run, and
//! discarding the least recently used or those whose dependencies changed.

use std::rc::Rc;
use std::time::{Duration, Instant};

use super::Daemon;
use crate::daemon::key::RunKey;
use crate::daemon::warm_zygote::{self, WarmZygote};

/// A run waits this long for a zygote that is still collecting.
const WAIT_FOR_COLLECTION: Duration = Duration::from_secs(10);
/// Zygotes held at once, across projects; the least recently used goes first.
const MAX_ZYGOTES: usize = 8;

pub(super) enum SlotState {
    Collecting { pid: u32 },
    Warm(WarmZygote),
    Failed(String),
}

pub(super) struct Slot {
    pub(super) key: RunKey,
    pub(super) state: SlotState,
    pub(super) last_used: Instant,
}

impl Daemon {
    /// Takes the key's zygote out of its slot once it is warm.
    pub(super) async fn wait_for_warm(&self, id: &str) -> Result<WarmZygote, String> {
        let deadline = Instant::now() + WAIT_FOR_COLLECTION;
        loop {
            {
                let mut slots = self.slots.borrow_mut();
                match slots.get(id).map(|slot| &slot.state) {
                    None => return Err("no warm zygote for these arguments, environment and terminal yet".into()),
                    Some(SlotState::Collecting { .. }) if Instant::now() < deadline => {}
                    Some(SlotState::Collecting { .. }) => return Err("the warm zygote is still collecting".into()),
                    Some(_) => match slots.remove(id).map(|slot| slot.state) {
                        Some(SlotState::Warm(zygote)) if warm_zygote::alive(zygote.pid) => return Ok(zygote),
                        Some(SlotState::Failed(why)) => return Err(why),
                        _ => return Err("the warm zygote had ended".into()),
                    },
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A zygote taken for a run that did not happen (its client left):
    /// back into its slot, unless a newer one took the slot meanwhile.
    pub(super) fn put_back(&self, key: RunKey, zygote: WarmZygote) {
        let id = key.id();
        if self.slots.borrow().contains_key(&id) {
            return warm_zygote::kill(zygote.pid);
        }
        self.make_room();
        self.slots.borrow_mut().insert(id, Slot { key, state: SlotState::Warm(zygote), last_used: Instant::now() });
    }

    /// Starts a zygote for `key` unless one is warm or collecting.
    pub(super) fn prewarm(self: &Rc<Self>, key: RunKey) {
        let id = key.id();
        if let Some(slot) = self.slots.borrow_mut().get_mut(&id) {
            if !matches!(slot.state, SlotState::Failed(_)) {
                slot.last_used = Instant::now();
                return;
            }
        }
        self.make_room();
        let reaper = self.clone();
        let on_exit =
            move |pid, status: std::process::ExitStatus| reaper.handed_over.borrow_mut().ended(pid, status.into());
        let state = match warm_zygote::start(&key, &self.pyworker_dir, on_exit) {
            Ok(starting) => {
                let pid = starting.pid;
                let daemon = self.clone();
                let slot_id = id.clone();
                tokio::task::spawn_local(async move {
                    let result = starting.collected().await;
                    daemon.settle(&slot_id, pid, result.map_err(|e| e.to_string()));
                });
                SlotState::Collecting { pid }
            }
            Err(e) => SlotState::Failed(e.to_string()),
        };
        self.slots.borrow_mut().insert(id, Slot { key, state, last_used: Instant::now() });
    }

    /// A zygote finished collecting (or failed): record it, unless its
    /// slot was given up meanwhile.
    fn settle(&self, id: &str, pid: u32, result: Result<WarmZygote, String>) {
        let mut slots = self.slots.borrow_mut();
        let current =
            slots.get_mut(id).filter(|slot| matches!(slot.state, SlotState::Collecting { pid: p } if p == pid));
        match (current, result) {
            (Some(slot), Ok(zygote)) => slot.state = SlotState::Warm(zygote),
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
                discard(slot.state);
            }
        }
    }

    pub(super) fn discard_all(&self) {
        for (_, slot) in self.slots.borrow_mut().drain() {
            discard(slot.state);
        }
    }

    /// Warm zygotes whose dependencies changed (or that ended): replaced now,
    /// so the next run finds a fresh one.
    pub(super) fn refresh(self: &Rc<Self>) {
        let stale: Vec<RunKey> = {
            let mut slots = self.slots.borrow_mut();
            let ids: Vec<String> = slots
                .iter()
                .filter(|(_, slot)| match &slot.state {
                    SlotState::Warm(zygote) => !warm_zygote::alive(zygote.pid) || zygote.deps.changed().is_some(),
                    _ => false,
                })
                .map(|(id, _)| id.clone())
                .collect();
            ids.iter()
                .filter_map(|id| slots.remove(id))
                .map(|slot| {
                    discard(slot.state);
                    slot.key
                })
                .collect()
        };
        for key in stale {
            self.prewarm(key);
        }
    }
}

fn discard(state: SlotState) {
    match state {
        SlotState::Collecting { pid } => warm_zygote::kill(pid),
        SlotState::Warm(zygote) => warm_zygote::kill(zygote.pid),
        SlotState::Failed(_) => {}
    }
}
