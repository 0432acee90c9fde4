#!/usr/bin/env python3
"""Time rpytest's warm daemon in the edit-and-rerun loop (issue #25).

bench.py --warm times the best case: the same command again, nothing
changed, the next run started only once the daemon is warm. A developer's
loop is different: a new -k, one file, one node id, or a run a second after
saving an edit. This bench times those, each beside the same command run
cold (`--no-daemon`), alternately in one loop (warm first in even
repetitions, cold first in odd ones), and prints medians and the ratio
warm/cold.

The suite is `gen_suite.py trivial` (--tests / --files, default 5000 tests
in 100 files) plus what a project has and the generator does not make:

  proj_mod.py     a project module at the suite's root (pyproject.toml puts
                  the root on sys.path), imported by exactly one test file,
                  whose test_proj_mod checks proj_mod.VALUE == 1;
  conftest.py     created by the edit-conftest scenario (the suite starts
                  without one); test_conftest_value in another test file
                  checks the value the conftest sets (1 when absent).

Scenarios (--scenario NAME, repeatable; default all, in this order):

  repeat          the same command again, nothing changed;
  select-k        a new -k expression each run (every expression of the
                  whole bench is distinct);
  select-file     one test file, a different one each repetition;
  select-node     one node id, a different one each repetition;
  edit-test       flip one test's assertion (pass <-> fail) and run 1.0 s
                  after the save;
  edit-module     flip proj_mod.VALUE (test_proj_mod passes <-> fails),
                  run 1.0 s after the save;
  edit-conftest   create conftest.py and let the daemon settle, then flip
                  the value it sets (test_conftest_value passes <-> fails),
                  run 1.0 s after the save;
  memory          15 runs with distinct -k expressions, then the memory
                  line of `rpytest serve --status` (before and after).

The daemon is private (RPYTEST_RUNTIME_DIR in a 0700 temporary directory)
and runs `rpytest serve --poll 2`, as a developer's would; it is stopped at
the end, also on error or Ctrl-C. Every command is
`rpytest -n 2 -q -p no:cacheprovider --python PY [selection]`, warm through
the daemon, cold with --no-daemon, both with RPYTEST_TRACE=1: a run counts
as warm when the client printed `daemon: warm zygote` (the table's "warm"
column says how many were). Before each timed run the bench waits until the
daemon has settled (every session warm), except the warm run after an edit,
which starts 1.0 s after the save whatever the daemon is doing. The cold
run after an edit waits until the daemon has seen the edit and settled
again, so the daemon's rebuild is not charged to the cold run.

Every run's outcome is checked: after an edit, the flipped test must fail
(exit 1, `1 failed`) or pass again (exit 0), warm as cold; otherwise warm
and cold must print the same summary counts. A wrong outcome is reported
at the end and the bench exits 2.

Usage:
  python bench/edit_loop.py [--python PY] [--rpytest PATH] [--runs 5]
                            [--tests 5000] [--files 100] [--scenario NAME]...
                            [--json PATH] [--keep]
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

# bench.py sits beside this script, which Python puts first on sys.path.
from bench import BYTECODE_CHOICES, BYTECODE_HELP, HERE, REPO, WarmDaemon, default_python, resolve, set_bytecode

SCENARIOS = ["repeat", "select-k", "select-file", "select-node", "edit-test", "edit-module", "edit-conftest",
             "memory"]
POLL = 2
AFTER_SAVE = 1.0
MEMORY_RUNS = 15
STATE = re.compile(r"\](?: pid \d+)?: (warm|collecting|failed.*|evicted.*|spare.*)$")
# `serve --status`: "memory: daemon 3.0 MiB, sessions 85 MiB of daemon_max_memory 1 GiB, total 88 MiB"
# (older daemons: "zygotes" for "sessions", and no cap).
MEMORY = re.compile(r"memory: daemon ([\d.]+) MiB, (?:zygotes|sessions) ([\d.]+) MiB(?: of [^,]*)?, total ([\d.]+) MiB")
SUMMARY = re.compile(r"^(?:=+ )?(\d+ \w+(?:, \d+ \w+)*) in [\d.]+s")


class Run:
    """One timed command: wall time, exit code, whether it was warm, and
    pytest's summary counts ("1 failed, 4999 passed")."""

    def __init__(self, cmd, cwd, env):
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              check=False, text=True, errors="replace")
        self.seconds = time.perf_counter() - start
        self.cmd, self.code = cmd, proc.returncode
        self.out, self.err = proc.stdout, proc.stderr
        self.warm = "daemon: warm zygote" in proc.stderr
        self.summary = next((m.group(1) for m in map(SUMMARY.match, reversed(proc.stdout.splitlines())) if m), None)
        cold = [line.split("daemon: ", 1)[1] for line in proc.stderr.splitlines() if "daemon: cold" in line]
        self.why_cold = cold[0] if cold else None

    def describe(self):
        return (f"$ {' '.join(self.cmd)}\nexit code {self.code}\n--- stdout (tail) ---\n"
                + "\n".join(self.out.splitlines()[-15:]) + "\n--- stderr (tail) ---\n"
                + "\n".join(self.err.splitlines()[-15:]))


class Suite:
    """The generated suite, its extra project files, and the edits."""

    def __init__(self, path, tests, files):
        self.path, self.files = path, files
        subprocess.run([sys.executable, os.path.join(HERE, "gen_suite.py"), "trivial", path,
                        "--tests", str(tests), "--files", str(files)], check=True, stderr=subprocess.DEVNULL)
        self.per_file = tests // files
        self.write("pyproject.toml", '[tool.pytest.ini_options]\npythonpath = ["."]\n')
        self.write("proj_mod.py", '"""The project code one test file imports."""\n\nVALUE = 1\n\n\n'
                   "def double(x):\n    return 2 * x\n")
        self.importer = self.test_file(1)
        self.write(self.importer, "import proj_mod\n" + self.read(self.importer)
                   + "\ndef test_proj_mod():\n    assert proj_mod.double(proj_mod.VALUE) == 2\n")
        first = self.test_file(0)
        self.write(first, self.read(first) + "\ndef test_conftest_value(request):\n"
                   '    assert getattr(request.config, "bench_conftest_value", 1) == 1\n')
        self.edited = self.test_file(files - 1)

    @staticmethod
    def test_file(i):
        return f"tests/test_mod{i:03}.py"

    def write(self, rel, text):
        with open(os.path.join(self.path, rel), "w") as f:
            f.write(text)

    def read(self, rel):
        with open(os.path.join(self.path, rel)) as f:
            return f.read()

    def edit(self, rel, old, new):
        text = self.read(rel)
        if text.count(old) != 1:
            sys.exit(f"edit_loop: expected {old!r} exactly once in {rel}")
        self.write(rel, text.replace(old, new))

    def conftest(self, value):
        self.write("conftest.py", '"""The suite\'s conftest, which the bench edits."""\n\n\n'
                   f"def pytest_configure(config):\n    config.bench_conftest_value = {value}\n")


class Bench:
    def __init__(self, a, python, rpytest, tmp):
        self.a, self.python, self.rpytest = a, python, rpytest
        self.suite = Suite(os.path.join(tmp, "suite"), a.tests, a.files)
        self.tmp = tmp
        self.daemon = None
        self.k_count = 0
        self.results = {}
        self.problems = []

    # The daemon -------------------------------------------------------

    def start_daemon(self):
        self.daemon = WarmDaemon(self.rpytest, self.tmp, poll=POLL)

    def stop_daemon(self):
        runtime = os.path.join(self.tmp, "runtime")
        if self.daemon:
            self.daemon.stop()
        elif os.path.isdir(runtime):
            subprocess.run([self.rpytest, "serve", "--stop"], env=dict(os.environ, RPYTEST_RUNTIME_DIR=runtime),
                           check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def settle(self):
        """Waits until every session of the daemon is warm (or failed)."""
        def settled(status):
            if status is None:
                return False
            states = [m.group(1) for m in map(STATE.search, status.splitlines()) if m]
            return bool(states) and "collecting" not in states
        return self.daemon.wait_for(settled)

    def settle_after_change(self):
        """Waits until the daemon's poll has seen a change and it has settled."""
        time.sleep(POLL + 0.5)
        self.settle()

    def memory(self):
        status = self.settle()
        m = MEMORY.search(status)
        sessions = sum(1 for line in status.splitlines() if STATE.search(line))
        return {"daemon_mib": float(m.group(1)), "zygotes_mib": float(m.group(2)),
                "total_mib": float(m.group(3)), "sessions": sessions}

    # Runs -------------------------------------------------------------

    def cmd(self, warm, selection):
        return [self.rpytest, *([] if warm else ["--no-daemon"]), "-n", "2", "-q", "-p", "no:cacheprovider",
                "--python", self.python, *selection]

    def run(self, warm, selection):
        return Run(self.cmd(warm, selection), self.suite.path, self.daemon.run_env)

    def next_k(self):
        """A -k expression no earlier run used, selecting one test per file."""
        first = 10 if self.suite.per_file > 10 else 0
        span = self.suite.per_file - first
        k, self.k_count = self.k_count, self.k_count + 1
        expr = f"test_{first + k % span}"
        return ["-k", expr if k < span else f"{expr} and not never{k}"]

    def check(self, name, run, expect_failed=None, same_as=None):
        """Records a wrong outcome: the flipped test (expect_failed True/False)
        or, without an edit, a summary that differs from the other mode's."""
        if expect_failed is True:
            ok = run.code == 1 and run.summary is not None and run.summary.startswith("1 failed")
        elif expect_failed is False:
            ok = run.code == 0
        else:
            ok = run.code == 0 and (same_as is None or run.summary == same_as.summary)
        if not ok:
            mode = "warm" if "--no-daemon" not in run.cmd else "cold"
            want = {True: "the edited test failing", False: "every test passing"}.get(
                expect_failed, "exit 0 and the other mode's summary")
            self.problems.append(f"{name} ({mode}): expected {want}, got {run.summary!r}\n{run.describe()}")

    def record(self, name, pairs):
        warm = [w for w, _ in pairs]
        cold = [c for _, c in pairs]
        self.results[name] = {
            "warm_s": [r.seconds for r in warm], "cold_s": [r.seconds for r in cold],
            "warm_median_s": statistics.median(r.seconds for r in warm),
            "cold_median_s": statistics.median(r.seconds for r in cold),
            "warm_runs_warm": sum(r.warm for r in warm), "warm_runs": len(warm),
            "cold_reasons": sorted({r.why_cold for r in warm if r.why_cold}),
            "summaries": sorted({r.summary or "?" for r in warm + cold}),
        }
        res = self.results[name]
        res["ratio"] = res["warm_median_s"] / res["cold_median_s"]
        print(f"{name}: warm {res['warm_median_s']:.3f}s ({res['warm_runs_warm']}/{len(warm)} warm), "
              f"cold {res['cold_median_s']:.3f}s", file=sys.stderr)

    def pair(self, i, timed):
        """Runs timed(warm) for both modes, warm first in even repetitions."""
        order = [True, False] if i % 2 == 0 else [False, True]
        got = {warm: timed(warm) for warm in order}
        return got[True], got[False]

    def selection_scenario(self, name, selection_for):
        pairs = []
        for i in range(self.a.runs):
            selection = selection_for(i)

            def timed(warm, selection=selection):
                self.settle()
                return self.run(warm, selection)
            w, c = self.pair(i, timed)
            self.check(name, w, same_as=c)
            self.check(name, c)
            pairs.append((w, c))
        self.record(name, pairs)

    def edit_scenario(self, name, flip):
        """flip(failing) saves the edit that makes the watched test fail
        (True) or pass again (False)."""
        pairs, failing = [], False
        for i in range(self.a.runs):
            def timed(warm):
                nonlocal failing
                self.settle()
                failing = not failing
                flip(failing)
                time.sleep(AFTER_SAVE)
                if not warm:
                    self.settle_after_change()
                run = self.run(warm, [])
                self.check(name, run, expect_failed=failing)
                return run
            pairs.append(self.pair(i, timed))
        if failing:
            flip(False)
        self.record(name, pairs)

    # Scenarios --------------------------------------------------------

    def repeat(self):
        self.selection_scenario("repeat", lambda i: [])

    def select_k(self):
        self.selection_scenario("select-k", lambda i: self.next_k())

    def select_file(self):
        self.selection_scenario("select-file", lambda i: [self.suite.test_file((2 + i) % self.a.files)])

    def select_node(self):
        def node(i):
            return [f"{self.suite.test_file((3 + 7 * i) % self.a.files)}::test_{(5 * i) % self.suite.per_file}"]
        self.selection_scenario("select-node", node)

    def edit_test(self):
        old, new = "assert 0 + 1 == 1\n", "assert 0 + 1 == 2\n"
        edited = self.suite.edited
        self.edit_scenario("edit-test", lambda fail: self.suite.edit(edited, *((old, new) if fail else (new, old))))

    def edit_module(self):
        self.edit_scenario("edit-module", lambda fail: self.suite.edit(
            "proj_mod.py", *(("VALUE = 1\n", "VALUE = 2\n") if fail else ("VALUE = 2\n", "VALUE = 1\n"))))

    def edit_conftest(self):
        if not os.path.exists(os.path.join(self.suite.path, "conftest.py")):
            self.settle()
            self.suite.conftest(1)
            # The daemon rebuilds its session for the new conftest; a run
            # makes sure a session that has read it is warm.
            self.settle_after_change()
            self.run(True, [])
        self.edit_scenario("edit-conftest", lambda fail: self.suite.conftest(2 if fail else 1))

    def memory_scenario(self):
        before = self.memory()
        runs = []
        for _ in range(MEMORY_RUNS):
            self.settle()
            run = self.run(True, self.next_k())
            self.check("memory", run)
            runs.append(run)
        after = self.memory()
        self.results["memory"] = {"before": before, "after": after, "k_runs": MEMORY_RUNS,
                                  "k_runs_warm": sum(r.warm for r in runs),
                                  "k_median_s": statistics.median(r.seconds for r in runs)}
        print(f"memory: {before['total_mib']:.1f} MiB before, {after['total_mib']:.1f} MiB after "
              f"{MEMORY_RUNS} -k runs", file=sys.stderr)

    def warm_up(self):
        """Writes the .pyc files (one cold run) and builds the daemon's
        first session (one run through it, then settled)."""
        self.run(False, [])
        self.run(True, [])
        self.settle()


def table(results):
    lines = [f"{'scenario':<15} {'warm (s)':>9} {'cold (s)':>9} {'warm/cold':>9} {'warm runs':>10}  "
             "why warm runs were cold"]
    for name in SCENARIOS:
        res = results.get(name)
        if res is None or name == "memory":
            continue
        why = "; ".join(res["cold_reasons"]) or "-"
        lines.append(f"{name:<15} {res['warm_median_s']:>9.3f} {res['cold_median_s']:>9.3f} {res['ratio']:>9.2f} "
                     f"{str(res['warm_runs_warm']) + '/' + str(res['warm_runs']):>10}  {why}")
    mem = results.get("memory")
    if mem:
        b, f = mem["before"], mem["after"]
        lines.append(f"memory (serve --status) before {MEMORY_RUNS} distinct -k runs: daemon {b['daemon_mib']:.1f} "
                     f"MiB, zygotes {b['zygotes_mib']:.1f} MiB, total {b['total_mib']:.1f} MiB "
                     f"({b['sessions']} session(s))")
        lines.append(f"memory (serve --status) after them:            daemon {f['daemon_mib']:.1f} MiB, "
                     f"zygotes {f['zygotes_mib']:.1f} MiB, total {f['total_mib']:.1f} MiB ({f['sessions']} "
                     f"session(s)); those runs: median {mem['k_median_s']:.3f}s, {mem['k_runs_warm']}/"
                     f"{mem['k_runs']} warm")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--python", default=None, help="interpreter with pytest")
    p.add_argument("--rpytest", default=os.path.join(REPO, "target", "release", "rpytest"))
    p.add_argument("--runs", type=int, default=5, help="repetitions per scenario and mode (median)")
    p.add_argument("--tests", type=int, default=5000)
    p.add_argument("--files", type=int, default=100)
    p.add_argument("--scenario", action="append", choices=SCENARIOS, help="run only this one (repeatable)")
    p.add_argument("--json", help="also write the figures and every run's time here")
    p.add_argument("--keep", action="store_true", help="keep the suite (its path is printed)")
    p.add_argument("--bytecode", choices=BYTECODE_CHOICES, default="cached", help=BYTECODE_HELP)
    a = p.parse_args()
    print(set_bytecode(a.bytecode))
    if a.files < 3 or a.tests < 2 * a.files:
        p.error("need at least 3 files and 2 tests per file")
    if a.runs < 1:
        p.error("--runs must be at least 1")
    python = resolve(a.python or default_python())
    if subprocess.run([python, "-c", "import pytest"], stderr=subprocess.DEVNULL, check=False).returncode:
        p.error(f"{python} cannot import pytest (pass --python)")
    rpytest = resolve(a.rpytest)
    if not (os.path.isfile(rpytest) and os.access(rpytest, os.X_OK)):
        p.error(f"no rpytest binary at {rpytest} (cargo build --release, or pass --rpytest)")
    # SIGTERM unwinds like Ctrl-C, so the daemon is stopped either way.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    load = os.getloadavg()
    tmp = tempfile.mkdtemp(prefix="rpytest-edit-loop-")
    runner = None
    try:
        runner = Bench(a, python, rpytest, tmp)
        runner.start_daemon()
        runner.warm_up()
        steps = {"repeat": runner.repeat, "select-k": runner.select_k, "select-file": runner.select_file,
                 "select-node": runner.select_node, "edit-test": runner.edit_test, "edit-module": runner.edit_module,
                 "edit-conftest": runner.edit_conftest, "memory": runner.memory_scenario}
        for name in SCENARIOS:
            if not a.scenario or name in a.scenario:
                steps[name]()
    finally:
        if runner:
            runner.stop_daemon()
        if a.keep:
            print(f"suite kept in {os.path.join(tmp, 'suite')}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    header = (f"edit loop: trivial suite of {a.tests} tests in {a.files} files (+2), -n 2, {a.runs} runs per mode "
              f"alternating, daemon --poll {POLL}, edits run {AFTER_SAVE:.1f}s after the save; {os.cpu_count()} "
              f"CPUs, load average at start {load[0]:.2f}; python {python}")
    print(header)
    print(table(runner.results))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"tests": a.tests, "files": a.files, "runs": a.runs, "poll_s": POLL, "after_save_s": AFTER_SAVE,
                       "python": python, "rpytest": rpytest, "cpus": os.cpu_count(), "load_at_start": load,
                       "scenarios": runner.results, "problems": runner.problems}, f, indent=1)
    if runner.problems:
        print(f"\n{len(runner.problems)} run(s) with a wrong outcome:", file=sys.stderr)
        for problem in runner.problems:
            print(problem, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
