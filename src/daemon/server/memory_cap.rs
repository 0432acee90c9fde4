//! `daemon_max_memory`: the warm sessions' memory stays under a cap.
//!
//! Each warm session is a collected pytest process, tens to hundreds of MiB
//! for a large suite, and a daemon that serves many projects would
//! otherwise keep one per key until it held 8. The cap is on the sum of
//! the sessions' PSS (`memory.rs`: pages a session shares with the runs it
//! forked, or with other Pythons, are not counted twice). Past it, the
//! least recently used sessions end, except the one that just became warm
//! for the run that asked for it, unless that one alone is over the cap.
//! Each eviction is remembered, in a short list, for `serve --status`.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Instant;

use super::slots::{discard, Slot, SlotState};
use super::Daemon;
use crate::daemon::memory::{self, human};
use crate::daemon::wire::EvictionStatus;

/// Evictions `serve --status` remembers, the latest last.
const KEPT_EVICTIONS: usize = 16;

/// A warm session ended to make room.
pub(super) struct Eviction {
    project: PathBuf,
    args: Vec<String>,
    pss: u64,
    at: Instant,
    reason: String,
}

/// The evictions of a daemon's life, at most `KEPT_EVICTIONS` of them.
#[derive(Default)]
pub(super) struct Evictions(VecDeque<Eviction>);

impl Evictions {
    fn push(&mut self, eviction: Eviction) {
        if self.0.len() == KEPT_EVICTIONS {
            self.0.pop_front();
        }
        self.0.push_back(eviction);
    }

    pub(super) fn status(&self) -> Vec<EvictionStatus> {
        let status = |e: &Eviction| EvictionStatus {
            project: e.project.clone(),
            args: e.args.clone(),
            pss: e.pss,
            secs_ago: e.at.elapsed().as_secs(),
            reason: e.reason.clone(),
        };
        self.0.iter().map(status).collect()
    }
}

/// A warm session as the choice of evictions sees it.
#[derive(Debug, Clone)]
pub(super) struct Held<K> {
    pub id: K,
    pub last_used: Instant,
    pub pss: u64,
}

/// The sessions to end, in order, so that the rest hold at most `cap`:
/// the least recently used first, never `keep` (the session that just
/// became warm) unless it alone is over the cap.
pub(super) fn choose<K: Clone + PartialEq>(held: &[Held<K>], cap: u64, keep: Option<&K>) -> Vec<K> {
    let mut total: u64 = held.iter().map(|h| h.pss).sum();
    let mut chosen = Vec::new();
    if let Some(kept) = held.iter().find(|h| Some(&h.id) == keep) {
        if kept.pss > cap {
            chosen.push(kept.id.clone());
            total -= kept.pss;
        }
    }
    let mut others: Vec<&Held<K>> = held.iter().filter(|h| Some(&h.id) != keep).collect();
    others.sort_by_key(|h| h.last_used);
    for session in others {
        if total <= cap {
            break;
        }
        chosen.push(session.id.clone());
        total -= session.pss;
    }
    chosen
}

impl Daemon {
    /// Ends warm sessions, least recently used first, while together they
    /// hold more than `daemon_max_memory`. `just_warm`: the session that
    /// has just become warm, kept unless it alone is over the cap; then its
    /// slot says so, and its project's runs are cold.
    pub(super) fn enforce_memory_cap(&self, just_warm: Option<&str>) {
        let Some(cap) = self.options.max_memory else { return };
        let mut slots = self.slots.borrow_mut();
        let held: Vec<Held<String>> = slots
            .iter()
            .filter(|(_, slot)| matches!(slot.state, SlotState::Warm(_)))
            .map(|(id, slot)| Held { id: id.clone(), last_used: slot.last_used, pss: session_pss(&slot.state) })
            .collect();
        for id in choose(&held, cap, just_warm.map(str::to_string).as_ref()) {
            let pss = held.iter().find(|h| h.id == id).map_or(0, |h| h.pss);
            if pss > cap {
                let why = format!(
                    "its warm session ({}) alone is over daemon_max_memory {}; raise it and restart the daemon",
                    human(pss),
                    human(cap)
                );
                if let Some(slot) = slots.get_mut(&id) {
                    self.record_eviction(slot, pss, why.clone());
                    discard(std::mem::replace(&mut slot.state, SlotState::TooLarge(why)));
                }
            } else if let Some(slot) = slots.remove(&id) {
                self.record_eviction(&slot, pss, format!("over daemon_max_memory {}", human(cap)));
                discard(slot.state);
            }
        }
    }

    /// Says that `slot`'s session is being ended, and remembers why (a
    /// slot with no process left has nothing to end).
    pub(super) fn record_eviction(&self, slot: &Slot, pss: u64, reason: String) {
        if !matches!(slot.state, SlotState::Warm(_) | SlotState::Collecting { .. }) {
            return;
        }
        // Its spare goes with it: an evicted project holds nothing.
        if let Some(spare) = self.spares.borrow_mut().remove(&slot.key.spare_id()) {
            crate::daemon::warm_zygote::kill(spare.pid);
        }
        let project = slot.key.cwd.clone();
        let args = slot.build_args.clone();
        eprintln!("rpytest serve: evicted {} [{}] ({}): {reason}", project.display(), args.join(" "), human(pss));
        self.evictions.borrow_mut().push(Eviction { project, args, pss, at: Instant::now(), reason });
    }
}

/// The PSS of a slot's session, 0 when it has no process.
pub(super) fn session_pss(state: &SlotState) -> u64 {
    let pid = match state {
        SlotState::Warm(zygote) => zygote.pid,
        SlotState::Collecting { pid, .. } => *pid,
        _ => return 0,
    };
    memory::footprint(pid).map_or(0, |f| f.pss)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const MIB: u64 = 1 << 20;

    /// Sessions named by letter, each `age` seconds since its last use.
    fn held(sessions: &[(&'static str, u64, u64)]) -> Vec<Held<&'static str>> {
        let now = Instant::now() + Duration::from_secs(1000);
        let held = |&(id, age, mib): &(&'static str, u64, u64)| Held {
            id,
            last_used: now - Duration::from_secs(age),
            pss: mib * MIB,
        };
        sessions.iter().map(held).collect()
    }

    #[test]
    fn under_the_cap_nothing_goes() {
        assert!(choose(&held(&[("a", 5, 100), ("b", 1, 100)]), 200 * MIB, None).is_empty());
    }

    #[test]
    fn the_least_recently_used_go_first_until_the_rest_fit() {
        let sessions = held(&[("new", 1, 100), ("old", 50, 100), ("older", 90, 30), ("mid", 20, 100)]);
        assert_eq!(choose(&sessions, 250 * MIB, None), ["older", "old"]);
        assert_eq!(choose(&sessions, 200 * MIB, None), ["older", "old"], "at the cap is not over it");
        assert_eq!(choose(&sessions, 150 * MIB, None), ["older", "old", "mid"]);
    }

    #[test]
    fn the_session_just_warm_is_kept_even_when_least_recently_used() {
        let sessions = held(&[("a", 1, 100), ("b", 2, 100), ("warm", 30, 100)]);
        assert_eq!(choose(&sessions, 150 * MIB, Some(&"warm")), ["b", "a"]);
    }

    #[test]
    fn the_session_just_warm_goes_when_it_alone_is_over_the_cap() {
        let sessions = held(&[("a", 10, 40), ("b", 20, 40), ("huge", 1, 300)]);
        assert_eq!(choose(&sessions, 100 * MIB, Some(&"huge")), ["huge"], "the others fit once it is gone");
        assert_eq!(choose(&sessions, 60 * MIB, Some(&"huge")), ["huge", "b"]);
    }

    #[test]
    fn the_list_of_evictions_stays_short() {
        let mut evictions = Evictions::default();
        for n in 0..40 {
            let reason = format!("number {n}");
            let at = Instant::now();
            evictions.push(Eviction { project: "/p".into(), args: vec![], pss: n, at, reason });
        }
        let status = evictions.status();
        assert_eq!(status.len(), KEPT_EVICTIONS);
        assert_eq!(status.last().unwrap().reason, "number 39");
    }
}
