#!/usr/bin/env python3
"""Cold runs at scale (issue 27): the collection spread over the workers.

Generates a trivial suite (gen_suite.py; default 5,000 tests in 100 files)
and times, in alternating rounds, side by side:

  PY -m pytest -q -p no:cacheprovider                       (plain pytest)
  rpytest -n W -q ... with RPYTEST_PARALLEL_COLLECTION=off  (the zygote collects: before)
  rpytest -n W -q ... (default: the collection spread over the workers)

For each: the median wall time, its ratio to pytest's, the median CPU time
of the command's process tree, and for rpytest the trace's phases
(RPYTEST_TRACE=1): start (until the zygote says hello), collection (until
``collected``), run (until every test finished).

Then a **projection** to more cores. It is a simulation from CPU times
measured here, not a measurement: pytest's collection CPU (``--co`` minus
an empty collection) and run CPU (a full run minus ``--co``), the zygote's
start, and the spread path's serial part (finding the files and merging,
from the zygote's trace). It assumes perfect scaling of what is parallel,
which a real machine does not give; what it shows is which part stays
serial.

Usage:
  python bench/cold_collection.py [--tests 5000] [--files 100] [--workers 2]
                                  [--runs 5] [--python PY] [--rpytest PATH]
"""
import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from bench import BYTECODE_CHOICES, BYTECODE_HELP, set_bytecode

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRACE = re.compile(r"rpytest trace \+([0-9.]+)s: (.*)")
ZYGOTE_TRACE = re.compile(r"rpytest trace \(zygote\): found \d+ test files in ([0-9.]+)s|"
                          r"rpytest trace \(zygote\): collectors done at [0-9.]+s, merged in ([0-9.]+)s")


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(cmd, cwd, env=None):
    """Wall seconds, CPU seconds of the whole tree (what was waited for), stderr."""
    cpu = children_cpu()
    started = time.perf_counter()
    proc = subprocess.run(cmd, check=False, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode not in (0, 5):
        sys.exit(f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return wall, children_cpu() - cpu, proc.stderr


def phases(stderr):
    """(start, collection, run) seconds from rpytest's trace, and the
    zygote's serial part of a spread collection (find + merge)."""
    marks = {}
    for line in stderr.splitlines():
        m = TRACE.match(line)
        if m:
            t, what = float(m.group(1)), m.group(2)
            for key, prefix in (("hello", "zygote said hello"), ("collected", "collected "),
                                ("finished", "every test finished")):
                if what.startswith(prefix):
                    marks.setdefault(key, t)
    serial = sum(float(g) for m in map(ZYGOTE_TRACE.match, stderr.splitlines()) if m for g in m.groups() if g)
    hello, collected = marks.get("hello", 0.0), marks.get("collected", 0.0)
    return hello, collected - hello, marks.get("finished", collected) - collected, serial


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tests", type=int, default=5000)
    p.add_argument("--files", type=int, default=100)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--rpytest", default=os.path.join(REPO, "target", "release", "rpytest"))
    p.add_argument("--bytecode", choices=BYTECODE_CHOICES, default="cached", help=BYTECODE_HELP)
    a = p.parse_args()
    print(set_bytecode(a.bytecode))
    # Each tool runs in the suite's directory: paths given relative to here must still hold there.
    a.rpytest = os.path.abspath(a.rpytest) if os.sep in a.rpytest else a.rpytest
    a.python = os.path.abspath(a.python) if os.sep in a.python else a.python
    tmp = tempfile.mkdtemp(prefix="rpytest-cold-")
    suite = os.path.join(tmp, "suite")
    subprocess.run([a.python, os.path.join(REPO, "bench", "gen_suite.py"), "trivial", suite,
                    "--tests", str(a.tests), "--files", str(a.files)], check=True, capture_output=True)
    empty = os.path.join(tmp, "empty")
    os.makedirs(empty)
    quiet = ["-q", "-p", "no:cacheprovider"]
    rp = [a.rpytest, "--python", a.python, "-n", str(a.workers), *quiet]
    tools = {
        "pytest": ([a.python, "-m", "pytest", *quiet], {}),
        "rpytest, zygote collects (off)": (rp, {"RPYTEST_PARALLEL_COLLECTION": "off", "RPYTEST_TRACE": "1"}),
        "rpytest, spread (auto)": (rp, {"RPYTEST_TRACE": "1"}),
    }
    results = {name: [] for name in tools}
    for round_ in range(a.runs + 1):  # the first round warms the caches, untimed
        for name, (cmd, env) in tools.items():
            wall, cpu, stderr = run(cmd, suite, env)
            if round_:
                results[name].append((wall, cpu, *phases(stderr)))
    load = os.getloadavg()
    print(f"{a.tests} trivial tests in {a.files} files, cold, -n {a.workers}; medians of {a.runs} alternating "
          f"runs; load average {load[0]:.1f} on {os.cpu_count()} CPUs (a busy machine: compare ratios)\n")
    print("| tool | wall (s) | vs pytest | CPU (s) | start | collection | run |")
    print("|---|---|---|---|---|---|---|")
    base = statistics.median(r[0] for r in results["pytest"])
    med = {}
    for name, rows in results.items():
        med[name] = [statistics.median(r[i] for r in rows) for i in range(6)]
        wall, cpu, hello, collection, run_, _ = med[name]
        cols = ("-", "-", "-") if name == "pytest" else (f"{hello:.2f}", f"{collection:.2f}", f"{run_:.2f}")
        print(f"| {name} | {wall:.2f} | {wall / base:.2f}x | {cpu:.2f} | {' | '.join(cols)} |")
    project(a, suite, empty, quiet, med)


def project(a, suite, empty, quiet, med):
    """The simulation: per-phase CPU, then wall time on P ideal cores."""
    py = [a.python, "-m", "pytest", *quiet]
    cpu = {}
    for key, cmd, cwd in (("startup", [*py, "--co"], empty), ("co", [*py, "--co"], suite), ("full", py, suite)):
        cpu[key] = statistics.median(run(cmd, cwd)[1] for _ in range(3))
    collect = max(cpu["co"] - cpu["startup"], 0.0)
    run_ = max(cpu["full"] - cpu["co"], 0.0)
    start = med["rpytest, spread (auto)"][2]
    serial = med["rpytest, spread (auto)"][5]
    print(f"\nProjection (a simulation from CPU times measured here, not a measurement): "
          f"start {start:.2f}s, collection CPU {collect:.2f}s, run CPU {run_:.2f}s, "
          f"spread collection's serial part {serial:.3f}s; ideal scaling of the rest\n")
    print("| cores | pytest | rpytest, zygote collects | rpytest, spread | spread vs pytest |")
    print("|---|---|---|---|---|")
    for cores in (a.workers, 16, 64):
        plain = cpu["startup"] + collect + run_
        zygote = start + collect + run_ / cores
        spread = start + serial + (collect + run_) / cores
        print(f"| {cores} | {plain:.2f} | {zygote:.2f} | {spread:.2f} | {spread / plain:.2f}x |")


if __name__ == "__main__":
    main()
