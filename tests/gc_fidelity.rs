//! The garbage collector sees in a worker what it sees under pytest (issue
//! #24.1). The zygote once froze everything collection had made
//! (`gc.freeze()`, to copy fewer pages after the fork): frozen objects are
//! never collected and `gc.get_referrers` cannot see them. An asyncio loop
//! outlived its test, Hypothesis warned about `register_random`, and real
//! suites exited 1 where pytest exited 0.

mod common;
use common::*;

const SUITE: &str = "\
import gc, weakref

class Node:
    pass

def cycle():
    node = Node()
    node.me = node
    return node

# Made while the module is collected, before any worker exists.
HELD = [cycle() for _ in range(3)]
REFS = [weakref.ref(node) for node in HELD]
MARKER = object()
HOLDER = [MARKER]

def test_a_cycle_made_at_import_is_freed_once_dropped():
    HELD.clear()
    gc.collect()
    assert [ref() for ref in REFS] == [None, None, None]

def test_referrers_of_an_object_made_at_import_are_seen():
    assert any(r is HOLDER for r in gc.get_referrers(MARKER))
";

#[test]
fn objects_made_during_collection_are_collected_as_under_pytest() {
    let suite = Suite::new(&[("test_gc.py", SUITE)]);
    for workers in ["1", "2"] {
        let pair = assert_same(&suite, &[], workers);
        check(&pair, pair.rpytest.code == 0, "both tests pass under pytest");
    }
}

#[test]
fn objects_made_during_collection_are_collected_as_under_xdist() {
    if skip_without_xdist("the xdist comparison") {
        return;
    }
    let suite = Suite::new(&[("test_gc.py", SUITE)]);
    let xdist = run_pytest(&suite, &["-n", "2", "-q"]);
    let rpytest = run_rpytest(&suite, &["-n", "2", "-q"]);
    assert_eq!(
        (xdist.code, &xdist.final_line),
        (rpytest.code, &rpytest.final_line),
        "{}{}",
        xdist.dump(),
        rpytest.dump()
    );
}

/// A warm session freezes what it collected so that its runs' controllers
/// skip it; the workers, where tests run, must unfreeze it first.
#[test]
fn objects_made_during_a_warm_sessions_collection_are_collected_as_under_pytest() {
    let suite = Suite::new(&[("test_gc.py", SUITE)]);
    let daemon = common::daemon::Daemon::start(&[]);
    let env = [("RPYTEST_RUNTIME_DIR", daemon.runtime_dir()), ("RPYTEST_TRACE", "1")];
    run_rpytest_env(&suite, &["-n", "2"], &env);
    daemon.wait_settled();
    for workers in ["1", "2"] {
        let warm = run_rpytest_env(&suite, &["-v", "-n", workers], &env);
        // `-v` is in the key: the first of each is cold, the next warm.
        let warm = if warm.stderr.contains("daemon: warm zygote") {
            warm
        } else {
            daemon.wait_settled();
            run_rpytest_env(&suite, &["-v", "-n", workers], &env)
        };
        assert!(warm.stderr.contains("daemon: warm zygote"), "{}", warm.dump());
        let pytest = run_pytest(&suite, &["-v"]);
        assert_pair_same(&Pair { pytest, rpytest: warm });
    }
}
