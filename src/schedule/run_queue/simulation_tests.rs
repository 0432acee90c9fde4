//! A simulation of the real protocol: prefetching workers drive the queue
//! exactly as the scheduler actor does, to check balance against the LPT
//! plan, even splits without history, and (with proptest) the order rule
//! under stealing, fresh steals and crashes.

use std::collections::VecDeque;

use proptest::prelude::*;

use super::tests::singles;
use super::*;

/// One worker process in the simulation.
#[derive(Debug)]
struct Proc {
    slot: usize,
    start: f64,
    local: VecDeque<usize>,
    running: Option<usize>,
    until: f64,
    asked: bool,
    no_more: bool,
    ended: Option<f64>,
    ran: Vec<usize>,
}

/// What a simulated run did.
#[derive(Debug)]
struct Outcome {
    makespan: f64,
    /// Per process: finishing time and the tests it started, in order.
    ends: Vec<f64>,
    sequences: Vec<Vec<usize>>,
    completed: Vec<usize>,
}

const FORK: f64 = 0.005;

fn apply(q: &mut RunQueue, p: &mut Proc) {
    match q.answer(p.slot) {
        Answer::Run(batch) => {
            p.local.extend(batch);
            p.asked = false;
        }
        Answer::NoMore => {
            p.no_more = true;
            p.asked = false;
        }
        Answer::Later => {}
    }
}

/// Simulates the workers of `worker.py` against the queue as the
/// scheduler actor drives it: a worker holds its running test and the
/// next (nextitem), asks for more while it holds two or fewer, waits for
/// the answer only when it has no next test; an answer that is `Later`
/// is given again after every finished test; a worker told there is no
/// more ends, and the scheduler then offers a fresh steal. `actual` are
/// the real durations; `crash` kills the process of a slot at a time.
fn simulate(q: &mut RunQueue, actual: &[f64], crash: Option<(usize, f64)>) -> Outcome {
    let mut procs: Vec<Proc> = (0..q.workers()).map(|w| new_proc(w, w as f64 * 0.002)).collect();
    let mut now = 0.0f64;
    let mut crash = crash;
    let mut completed = Vec::new();
    for step in 0.. {
        assert!(step < 200_000, "the simulation does not end: {procs:?}");
        // Everyone acts at `now` until nothing changes.
        let mut changed = true;
        while changed {
            changed = false;
            for i in 0..procs.len() {
                if let Some(fresh) = act(q, &mut procs[i], now, actual, &mut changed) {
                    procs.push(new_proc(fresh, now + FORK));
                }
            }
        }
        let live = || procs.iter().filter(|p| p.ended.is_none());
        let running = live().filter(|p| p.running.is_some()).map(|p| p.until);
        let starting = live().filter(|p| p.running.is_none() && p.start > now).map(|p| p.start);
        let mut next = running.chain(starting).fold(f64::INFINITY, f64::min);
        if let Some((_, at)) = crash {
            next = next.min(at.max(now));
        }
        if next == f64::INFINITY {
            if live().next().is_none() {
                break;
            }
            next = now + 0.1; // all wait for the fair start: the scheduler's retry
        }
        now = next;
        q.tick(now);
        if let Some((slot, _)) = crash.filter(|&(_, at)| at <= now) {
            crash = None;
            if let Some(p) = procs.iter_mut().find(|p| p.slot == slot && p.ended.is_none()) {
                p.ended = Some(now);
                p.running = None;
                let lost = q.worker_lost(slot);
                completed.extend(lost.in_flight);
                if q.has_pending() {
                    procs.push(new_proc(slot, now + FORK));
                }
            }
        }
        for p in procs.iter_mut().filter(|p| p.running.is_some() && p.until <= now) {
            let test = p.running.take().unwrap();
            assert!(q.complete(p.slot, test), "test {test} completes once");
            completed.push(test);
        }
        for p in procs.iter_mut().filter(|p| p.asked && p.ended.is_none()) {
            apply(q, p);
        }
    }
    assert!(q.is_finished(), "every test ran");
    let ends: Vec<f64> = procs.iter().map(|p| p.ended.unwrap_or(now)).collect();
    let makespan = ends.iter().copied().fold(0.0, f64::max);
    let sequences = procs.into_iter().map(|p| p.ran).collect();
    return Outcome { makespan, ends, sequences, completed };

    fn new_proc(slot: usize, start: f64) -> Proc {
        let (local, running, ran) = (VecDeque::new(), None, Vec::new());
        Proc { slot, start, local, running, until: 0.0, asked: false, no_more: false, ended: None, ran }
    }

    /// The worker loop at `now`; returns a fresh slot to start.
    fn act(q: &mut RunQueue, p: &mut Proc, now: f64, actual: &[f64], changed: &mut bool) -> Option<usize> {
        if p.ended.is_some() || p.running.is_some() || p.start > now {
            return None;
        }
        while p.local.len() < 2 && !p.no_more {
            let had = p.local.len();
            if !p.asked {
                p.asked = true;
                apply(q, p);
            }
            if p.local.len() == had && !p.no_more {
                return None; // waits for the answer
            }
        }
        *changed = true;
        let Some(test) = p.local.pop_front() else {
            p.ended = Some(now);
            return q.fresh_steal();
        };
        if p.local.len() <= 1 && !p.asked && !p.no_more {
            p.asked = true;
            apply(q, p);
        }
        p.running = Some(test);
        p.until = now + actual[test];
        p.ran.push(test);
        None
    }
}

fn run_sim(q: &mut RunQueue, actual: &[f64], crash: Option<(usize, f64)>) -> Outcome {
    simulate(q, actual, crash)
}

/// A small deterministic generator for the duration sets.
fn lcg(seed: &mut u64) -> f64 {
    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (*seed >> 11) as f64 / (1u64 << 53) as f64
}

fn increasing(sequence: &[usize]) -> bool {
    sequence.windows(2).all(|p| p[0] < p[1])
}

fn lpt_plan(weights: &[f64], workers: usize) -> f64 {
    let order = crate::schedule::lpt::heaviest_first(weights, |i| i);
    crate::schedule::lpt::assign(&order, weights, workers).1.into_iter().fold(0.0, f64::max)
}

/// Duration sets: the bench's skewed suite, the mixed suite,
/// uniform, and bimodal.
fn duration_sets() -> Vec<(&'static str, Vec<f64>)> {
    let mut seed = 7;
    let mut skewed: Vec<f64> = (0..494).map(|_| 0.002 + 0.006 * lcg(&mut seed)).collect();
    for (at, long) in [(40, 1.2), (90, 1.0), (200, 0.9), (260, 0.8), (300, 0.6), (480, 0.5)] {
        skewed.insert(at, long);
    }
    let mixed = (0..500)
        .map(|_| {
            let r = lcg(&mut seed);
            if r < 0.9 {
                0.001
            } else if r < 0.97 {
                0.05
            } else if lcg(&mut seed) < 0.5 {
                0.2
            } else {
                0.3
            }
        })
        .collect();
    let uniform = (0..200).map(|_| 0.01 + 0.09 * lcg(&mut seed)).collect();
    let bimodal = (0..300)
        .map(|_| if lcg(&mut seed) < 0.9 { 0.001 + 0.004 * lcg(&mut seed) } else { 0.2 + 0.2 * lcg(&mut seed) })
        .collect();
    vec![("skewed", skewed), ("mixed", mixed), ("uniform", uniform), ("bimodal", bimodal)]
}

#[test]
fn prefetching_workers_finish_within_five_percent_of_the_lpt_plan() {
    for order in [Order::Collection, Order::Longest] {
        for (name, expected) in duration_sets() {
            for noise in [0.0, 0.1] {
                let mut seed = 11;
                let actual: Vec<f64> =
                    expected.iter().map(|d| d * (1.0 - noise + 2.0 * noise * lcg(&mut seed))).collect();
                let history = expected.iter().map(|&d| Some(d)).collect();
                let mut q = RunQueue::new(history, singles(expected.len()), 4, order);
                let out = run_sim(&mut q, &actual, None);
                let plan = lpt_plan(&actual, 4);
                assert!(
                    out.makespan <= 1.05 * plan,
                    "{name} {order:?} noise {noise}: makespan {:.3} vs LPT plan {plan:.3}, ends {:?}",
                    out.makespan,
                    out.ends
                );
                if order == Order::Collection {
                    assert!(out.sequences.iter().all(|s| increasing(s)), "{name}: {:?}", out.sequences);
                }
            }
        }
    }
}

#[test]
fn equal_tests_without_history_split_within_one_of_even() {
    for workers in 1..=8 {
        for n in [workers, 8, 9, 20, 37, 64, 100] {
            let mut q = RunQueue::new(vec![None; n], singles(n), workers, Order::Collection);
            let out = run_sim(&mut q, &vec![1.0; n], None);
            let counts: Vec<usize> = out.sequences.iter().map(Vec::len).collect();
            let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
            assert!(hi - lo <= 1, "{n} tests on {workers}: {counts:?} {:?}", out.sequences);
            assert!(out.sequences.iter().all(|s| increasing(s)));
        }
    }
    let mut q = RunQueue::new(vec![None; 8], singles(8), 4, Order::Collection);
    let out = run_sim(&mut q, &[1.0; 8], None);
    assert!(out.makespan < 2.1, "8 equal 1 s tests on 4 workers take about 2 s: {}", out.makespan);
}

fn grouped(sizes: &[usize]) -> Vec<Vec<usize>> {
    let mut next = 0;
    sizes
        .iter()
        .map(|&s| {
            next += s;
            (next - s..next).collect()
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// For random durations and groupings, with or without history,
    /// with work stealing, fresh steals and a crash: every test finishes
    /// once and every process runs its tests in collection order.
    #[test]
    fn every_worker_runs_an_increasing_sequence(
        durations in prop::collection::vec(0.001f64..0.5, 1..120),
        group_sizes in prop::collection::vec(1usize..5, 1..120),
        workers in 1usize..6,
        known in 0u8..3,
        crash in prop::option::of((0usize..6, 0.0f64..3.0)),
        noise_seed in 0u64..1000,
    ) {
        let n = durations.len();
        let mut sizes = Vec::new();
        let mut left = n;
        for s in group_sizes.iter().cycle() {
            if left == 0 { break; }
            let s = (*s).min(left);
            sizes.push(s);
            left -= s;
        }
        let units = grouped(&sizes);
        let history: Vec<Option<f64>> = durations
            .iter()
            .enumerate()
            .map(|(i, &d)| match known { 0 => None, 1 if i % 3 == 0 => None, _ => Some(d) })
            .collect();
        let mut seed = noise_seed;
        let actual: Vec<f64> = durations.iter().map(|d| d * (0.5 + lcg(&mut seed))).collect();
        let workers = workers.min(units.len());
        let mut q = RunQueue::new(history, units, workers, Order::Collection);
        let crash = crash.filter(|&(w, _)| w < workers);
        let out = run_sim(&mut q, &actual, crash);
        for s in &out.sequences {
            prop_assert!(increasing(s), "{:?}", out.sequences);
        }
        let mut completed = out.completed.clone();
        completed.sort_unstable();
        prop_assert_eq!(completed, (0..n).collect::<Vec<_>>());
    }
}
