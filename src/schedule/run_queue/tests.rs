//! Unit tests of the queue's rules, one behaviour each; the simulation
//! of whole runs is in `simulation_tests.rs`.

use super::*;

pub(super) fn singles(n: usize) -> Vec<Vec<usize>> {
    (0..n).map(|i| vec![i]).collect()
}

#[test]
fn without_history_the_pool_keeps_collection_order() {
    let mut q = RunQueue::new(vec![None; 3], singles(3), 2, Order::Longest);
    assert_eq!(q.next_batch(0), vec![0]);
    assert_eq!(q.next_batch(1), vec![1]);
    assert_eq!(q.next_batch(0), vec![2]);
}

#[test]
fn batches_shrink_and_cover_everything_once() {
    let mut q = RunQueue::per_test(vec![None; 100], 2);
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    loop {
        let b = q.next_batch(seen.len() % 2);
        if b.is_empty() {
            break;
        }
        sizes.push(b.len());
        seen.extend(b);
    }
    assert_eq!(sizes[0], 12);
    assert_eq!(*sizes.last().unwrap(), 1);
    seen.sort();
    assert_eq!(seen, (0..100).collect::<Vec<_>>());
}

/// Workers ask for a second test at once (pytest needs the next one);
/// the first to connect must not take the others' share.
#[test]
fn without_history_every_worker_gets_its_fair_share_first() {
    let mut q = RunQueue::per_test(vec![None; 8], 4);
    let mut got = vec![Vec::new(); 4];
    for (worker, held) in got.iter_mut().enumerate() {
        // Each asks until it holds two, then once more (after a test).
        held.extend(q.next_batch(worker));
        assert!(!q.must_wait(worker), "gw{worker} may prefetch its second test");
        held.extend(q.next_batch(worker));
        if worker < 3 {
            assert!(q.complete(worker, held[0]));
            assert!(q.must_wait(worker), "gw{worker} waits: the rest is the others' share");
            assert_eq!(q.answer(worker), Answer::Later);
        }
    }
    assert_eq!(got.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 2, 2, 2]);
    assert!(!q.has_pending());
}

#[test]
fn the_fair_start_ends_after_its_limit_and_never_applies_with_history() {
    let mut q = RunQueue::per_test(vec![None; 8], 4);
    q.next_batch(0);
    q.next_batch(0);
    assert!(q.must_wait(0));
    q.tick(FAIR_START_LIMIT);
    assert!(!q.must_wait(0), "a worker that never connects does not hold the others back");
    let mut known = RunQueue::per_test(vec![Some(0.01); 8], 4);
    known.next_batch(0);
    known.next_batch(0);
    assert!(!known.must_wait(0));
    let mut one = RunQueue::per_test(vec![None; 8], 1);
    one.next_batch(0);
    assert!(!one.must_wait(0));
}

#[test]
fn long_tests_travel_alone_and_short_ones_in_batches() {
    let mut d = vec![Some(0.001); 50];
    d[0] = Some(2.0);
    let mut q = RunQueue::per_test(d, 1);
    assert_eq!(q.next_batch(0), vec![0]);
    assert!(q.complete(0, 0));
    assert!(q.next_batch(0).len() > 1);
}

#[test]
fn a_worker_holding_enough_is_answered_after_its_next_test() {
    // With history, a worker holds its running test, its next one and
    // at most PREFETCH_SECS more: the rest stays stealable.
    let mut q = RunQueue::new(vec![Some(0.05); 8], singles(8), 2, Order::Collection);
    let Answer::Run(first) = q.answer(0) else { panic!() };
    assert_eq!(first, vec![0]);
    let Answer::Run(second) = q.answer(0) else { panic!() };
    assert_eq!(second, vec![2]);
    assert_eq!(q.answer(0), Answer::Later, "running 0, next 2: enough");
    assert!(q.complete(0, 0));
    assert_eq!(q.answer(0), Answer::Run(vec![4]));
}

#[test]
fn a_lost_worker_finishes_its_running_test_and_its_replacement_gets_the_rest() {
    let mut q = RunQueue::per_test(vec![None; 200], 2);
    let batch = q.next_batch(0);
    assert!(q.complete(0, batch[0]));
    let lost = q.worker_lost(0);
    assert_eq!(lost.in_flight, Some(batch[1]));
    assert_eq!(lost.requeued, batch[2..].to_vec());
    let other = q.next_batch(1);
    assert!(other.iter().all(|t| !batch.contains(t)), "the others keep their order");
    let mut again = Vec::new();
    while again.len() < batch.len() - 2 {
        again.extend(q.next_batch(0));
    }
    assert_eq!(again[..batch.len() - 2], batch[2..]);
}

#[test]
fn a_retired_workers_unstarted_tests_wait_in_its_slot_for_a_fresh_process() {
    let mut q = RunQueue::per_test(vec![None; 40], 2);
    let batch = q.next_batch(0);
    assert!(q.complete(0, batch[0]));
    assert_eq!(q.worker_retired(0), batch[1..].to_vec());
    assert_eq!(q.next_batch(0), batch[1..].to_vec(), "the fresh process runs them, in order");
}

#[test]
fn duplicate_and_stray_reports_are_not_counted() {
    let mut q = RunQueue::per_test(vec![None; 40], 2);
    let batch = q.next_batch(0);
    assert!(q.complete(0, batch[0]));
    assert!(!q.complete(0, batch[0]));
    assert!(!q.complete(1, batch[1]));
    assert!(!q.complete(7, batch[1]));
}

#[test]
fn draining_ends_everything_left() {
    let mut q = RunQueue::per_test(vec![Some(0.01); 10], 2);
    let b = q.next_batch(0);
    q.complete(0, b[0]);
    assert_eq!(q.drain_unfinished().len(), 9);
    assert!(q.is_finished());
}

#[test]
fn a_stop_drops_pending_and_releases_held_tests() {
    let mut q = RunQueue::per_test(vec![None; 100], 2);
    let a = q.next_batch(0);
    let b = q.next_batch(1);
    assert!(q.complete(0, a[0]));
    assert_eq!(q.stop(), 100 - a.len() - b.len());
    assert!(q.next_batch(0).is_empty());
    assert_eq!(q.answer(0), Answer::NoMore);
    assert_eq!(q.release(0), a[1..].to_vec());
    assert!(!q.is_finished(), "worker 1 still holds tests");
    let lost = q.worker_lost(1);
    assert_eq!(lost.in_flight, Some(b[0]));
    assert!(lost.requeued.is_empty(), "a stopped run requeues nothing");
    assert!(q.is_finished());
}

#[test]
fn release_without_a_stop_keeps_held_tests() {
    let mut q = RunQueue::per_test(vec![None; 10], 1);
    let a = q.next_batch(0);
    assert!(q.release(0).is_empty());
    assert!(q.complete(0, a[0]));
}

#[test]
fn finishes_when_every_test_is_done_or_crashed() {
    let mut q = RunQueue::per_test(vec![None; 3], 1);
    let b = q.next_batch(0);
    assert_eq!(b.len(), 1);
    q.worker_lost(0);
    while q.has_pending() {
        for i in q.next_batch(0) {
            q.complete(0, i);
        }
    }
    assert!(q.is_finished());
}

#[test]
fn the_plan_is_lpt_and_each_worker_runs_its_share_in_collection_order() {
    // 4 long tests and 8 short ones on 2 workers: LPT gives 3 + 1 and
    // 2 + 2 (shorts spread), each share then runs by collection index.
    let mut d = vec![Some(0.01); 8];
    d.extend([Some(1.0), Some(3.0), Some(2.0), Some(2.0)]);
    let mut q = RunQueue::new(d, singles(12), 2, Order::Collection);
    let plan = |q: &RunQueue, w: usize| q.plans[w].iter().map(|&(_, t)| t).collect::<Vec<_>>();
    assert_eq!(plan(&q, 0), vec![0, 2, 4, 6, 8, 9]);
    assert_eq!(plan(&q, 1), vec![1, 3, 5, 7, 10, 11]);
    let mut ran = Vec::new();
    loop {
        let b = q.next_batch(1);
        if b.is_empty() {
            break;
        }
        b.iter().for_each(|&i| assert!(q.complete(1, i)));
        ran.extend(b);
    }
    assert_eq!(ran, vec![1, 3, 5, 7, 10, 11], "then nothing of worker 0's: all before 11");
}

#[test]
fn longest_first_is_the_explicit_order() {
    let d = vec![Some(0.01), Some(0.01), Some(0.5), Some(0.2), Some(0.2), Some(0.2)];
    let units = vec![vec![0, 1], vec![2], vec![3, 4, 5]];
    let mut q = RunQueue::new(d, units, 1, Order::Longest);
    let mut order = Vec::new();
    while q.has_pending() {
        let b = q.next_batch(0);
        b.iter().for_each(|&i| assert!(q.complete(0, i)));
        order.extend(b);
    }
    assert_eq!(order, vec![3, 4, 5, 2, 0, 1]);
}

#[test]
fn failed_or_new_tests_go_first_under_longest_first() {
    let d = vec![Some(0.5), Some(0.01), Some(2.0), Some(0.2), Some(1.0)];
    let mut q = RunQueue::per_test(d, 1);
    q.put_first(&[false, true, false, true, false]);
    let order: Vec<usize> = std::iter::from_fn(|| {
        let b = q.next_batch(0);
        b.iter().for_each(|&i| assert!(q.complete(0, i)));
        (!b.is_empty()).then_some(b)
    })
    .flatten()
    .collect();
    assert_eq!(order, vec![3, 1, 2, 4, 0]);
}

#[test]
fn running_tests_and_expected_work_left() {
    let mut q = RunQueue::per_test(vec![Some(1.0), Some(2.0), None], 2);
    assert!((q.expected_left() - (4.5 + 3.0 * PER_TEST_OVERHEAD)).abs() < 1e-9);
    q.tick(0.5);
    let a = q.next_batch(0);
    assert_eq!(q.running(), vec![(0, a[0], 0.5)]);
    assert!(q.complete(0, a[0]));
    assert!(q.expected_left() < 4.5);
}

#[test]
fn trivial_tests_share_the_pool_in_collection_order() {
    // Microsecond durations: a plan would split by their noise, and
    // under collection order its misestimate could not be stolen back.
    let durations = (0..100).map(|i| Some(1e-5 * (1 + i % 7) as f64)).collect();
    let mut q = RunQueue::new(durations, singles(100), 2, Order::Collection);
    let first = q.next_batch(0);
    assert_eq!(first, (0..first.len()).collect::<Vec<_>>());
    assert_eq!(q.next_batch(1)[0], first.len());
}

#[test]
fn a_heavy_unit_is_planned() {
    let mut durations = vec![Some(0.001); 100];
    durations[99] = Some(1.0);
    let mut q = RunQueue::new(durations, singles(100), 2, Order::Collection);
    // The plan gives the heavy last test a worker of its own.
    assert_eq!(q.next_batch(0), vec![99]);
    assert_eq!(q.next_batch(1)[0], 0);
}

#[test]
fn collection_order_ignores_durations() {
    let mut q = RunQueue::new(vec![Some(0.01), Some(5.0)], singles(2), 1, Order::Collection);
    assert_eq!(q.next_batch(0), vec![0]);
    assert_eq!(q.next_batch(0), vec![1]);
}

#[test]
fn a_big_unit_is_not_cut_to_the_batch_size() {
    let mut q = RunQueue::new(vec![None; 100], vec![(0..100).collect()], 4, Order::Longest);
    assert_eq!(q.next_batch(0).len(), 100);
}

#[test]
fn a_lost_worker_requeues_its_tests_in_order_for_its_replacement() {
    let units = vec![vec![0, 1, 2], vec![3, 4]];
    let mut q = RunQueue::new(vec![None; 5], units, 1, Order::Collection);
    assert_eq!(q.next_batch(0), vec![0, 1, 2]);
    assert_eq!(q.next_batch(0), vec![3, 4]);
    let lost = q.worker_lost(0);
    assert_eq!((lost.in_flight, lost.requeued), (Some(0), vec![1, 2, 3, 4]));
    let again: Vec<usize> = std::iter::from_fn(|| Some(q.next_batch(0)).filter(|b| !b.is_empty())).flatten().collect();
    assert_eq!(again, vec![1, 2, 3, 4]);
}

#[test]
fn a_retried_test_runs_next_once_more() {
    let mut q = RunQueue::per_test(vec![None; 3], 1);
    let b = q.next_batch(0);
    assert_eq!(b, vec![0]);
    assert!(!q.retry(0), "not finished yet");
    assert!(q.complete(0, 0));
    assert!(q.retry(0));
    assert_eq!(q.next_batch(0), vec![0]);
    assert!(q.complete(0, 0));
    let w = q.add_worker();
    assert_eq!(w, 1);
    while q.has_pending() {
        for i in q.next_batch(w) {
            assert!(q.complete(w, i));
        }
    }
    assert!(q.is_finished());
    q.stop();
    assert!(!q.retry(1), "a stopped run retries nothing");
}

#[test]
fn an_idle_worker_steals_only_what_comes_after_what_it_ran() {
    // Plans: worker 0 {0, 5}, worker 1 {1, 2, 3, 4}. Worker 0 runs its
    // 3 s test; worker 1, done with 4, takes 5 from it.
    let d = [3.0, 1.0, 1.0, 0.5, 0.5, 0.5].map(Some).to_vec();
    let mut q = RunQueue::new(d, singles(6), 2, Order::Collection);
    assert_eq!(q.answer(0), Answer::Run(vec![0]));
    for t in 1..5 {
        assert_eq!(q.next_batch(1), vec![t]);
        assert!(q.complete(1, t));
    }
    assert_eq!(q.next_batch(1), vec![5], "stolen: it follows 4");
    assert!(q.complete(1, 5));
    assert!(q.next_batch(1).is_empty());
    assert_eq!(q.answer(0), Answer::NoMore);
}

#[test]
fn what_comes_before_goes_to_a_fresh_worker() {
    // Plans {0, 2, 4, 6} and {1, 3, 5, 7}; worker 0 is stuck in test 0
    // while worker 1 runs its whole plan: 2, 4 and 6 come before 7, so
    // worker 1 may not take them, but a fresh worker may.
    let mut q = RunQueue::new(vec![Some(1.0); 8], singles(8), 2, Order::Collection);
    assert_eq!(q.answer(0), Answer::Run(vec![0]));
    for t in [1, 3, 5, 7] {
        assert_eq!(q.next_batch(1), vec![t]);
        assert!(q.complete(1, t));
    }
    assert!(q.next_batch(1).is_empty(), "2, 4 and 6 come before what it ran");
    let fresh = q.fresh_steal().expect("1 s of work is worth a fork");
    assert_eq!(q.next_batch(fresh), vec![4], "the back half of worker 0's plan, in order");
    assert_eq!(q.next_batch(fresh), vec![6]);
    assert_eq!(q.next_batch(0), vec![2]);
}

#[test]
fn an_isolated_rerun_goes_alone_to_a_new_slot_nobody_steals_from() {
    let mut q = RunQueue::new(vec![Some(0.5); 4], singles(4), 1, Order::Collection);
    for t in 0..4 {
        assert_eq!(q.next_batch(0), vec![t]);
        assert!(q.complete(0, t));
    }
    assert!(q.is_finished());
    let slot = q.isolate(2);
    assert_eq!(slot, 1);
    assert!(q.next_batch(0).is_empty(), "worker 0 may not take it");
    assert_eq!(q.fresh_steal(), None);
    assert_eq!(q.answer(slot), Answer::Run(vec![2]));
    assert_eq!(q.answer(slot), Answer::NoMore);
    assert!(q.complete(slot, 2));
    assert!(q.is_finished());
}

#[test]
fn a_run_gets_no_more_workers_than_units_and_one_worker_keeps_collection_order() {
    let tests = [("a.py::t1", None), ("a.py::t2", None), ("b.py::t3", None)];
    let d = vec![Some(0.01), Some(0.02), Some(5.0)];
    assert_eq!(RunQueue::for_run(&tests, d.clone(), DistMode::LoadFile, 4, Order::Collection).workers(), 2);
    let mut q = RunQueue::for_run(&tests, d, DistMode::Load, 1, Order::Longest);
    assert_eq!(q.next_batch(0), vec![0]);
}

/// After a spread collection each worker first runs what it collected.
#[test]
fn holders_plan_each_worker_its_own_tests() {
    let mut q = RunQueue::new(vec![None; 8], singles(8), 2, Order::Collection);
    q.plan_by_holders(&[0, 0, 0, 0, 1, 1, 1, 1]);
    let (first, second) = (q.next_batch(0), q.next_batch(1));
    assert!(!first.is_empty() && first.iter().all(|&t| t < 4), "{first:?}");
    assert!(!second.is_empty() && second.iter().all(|&t| t >= 4), "{second:?}");
    let mut longest = RunQueue::new(vec![None; 2], singles(2), 2, Order::Longest);
    longest.plan_by_holders(&[1, 1]);
    assert_eq!(longest.pending_tests(), vec![0, 1]);
}
