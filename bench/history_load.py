#!/usr/bin/env python3
"""Time and memory a big history costs: load it, and a run that saves into it.

Writes a history of --tests tests (default 100,000; five durations, an
outcome and a peak RSS each, ~18 MB of JSON) into a project with one tiny
test file, then for each rpytest binary given:

  one untimed run of the tiny suite (it rewrites the history in that
  binary's own form), then --runs rounds of
  rpytest --inventory-status     loads the whole history (no Python)
  rpytest -q (the tiny suite)    loads what the run needs, saves (merge)

Each command runs under /usr/bin/time: the wall time, the CPU time (user +
system, steadier than wall on a shared machine) and the peak resident
memory (maxrss: the largest single process, rpytest or its Python) are
printed, median and max over the rounds. A row "empty history" times the tiny run without
a history, for reference: its peak is the Python process's.

Usage:
  python bench/history_load.py [--tests 100000] [--runs 5] [--python PY]
                               --rpytest PATH [--rpytest OTHER ...]

Before/after a change:
  python bench/history_load.py --rpytest /path/to/old/rpytest --rpytest target/release/rpytest
"""
import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def write_history(path, tests):
    """A history as rpytest writes it, for `tests` tests spread over files."""
    rng = random.Random(1)
    entries = {}
    for i in range(tests):
        nodeid = f"tests/pkg{i // 5000:03d}/test_mod{i // 100:04d}.py::TestGroup{i % 7}::test_case_{i}[p{i % 13}]"
        entries[nodeid] = {
            "durations": [rng.random() * 2 for _ in range(5)],
            "last_outcome": "passed",
            "peak_rss_kb": 50000 + i % 1000,
        }
    last_run = {"finished_at": 1700000000, "tests": tests, "workers": 4, "wall": 100.0}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump({"format": 1, "last_run": last_run, "tests": entries}, f, separators=(",", ":"))


def timed(cmd, cwd):
    """(wall seconds, CPU seconds, peak RSS KB) of one command under /usr/bin/time."""
    with tempfile.NamedTemporaryFile("r") as out:
        proc = subprocess.run(["/usr/bin/time", "-o", out.name, "-f", "%e %U %S %M"] + cmd, cwd=cwd,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
        if proc.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout.decode(errors='replace')}")
        wall, user, system, rss = out.read().split()[-4:]
    return float(wall), float(user) + float(system), int(rss)


def project(root, tests):
    os.makedirs(root)
    with open(os.path.join(root, "pytest.ini"), "w") as f:
        f.write("[pytest]\n")
    with open(os.path.join(root, "test_tiny.py"), "w") as f:
        f.write("def test_a():\n    pass\n")
    if tests:
        write_history(os.path.join(root, ".rpytest", "history.json"), tests)


def row(name, samples):
    walls, cpus, rss = zip(*samples)
    return (f"{name:<44} {statistics.median(walls):>8.3f} {max(walls):>8.3f} {statistics.median(cpus):>8.3f} "
            f"{statistics.median(rss) / 1024:>9.1f} {max(rss) / 1024:>9.1f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tests", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--python", default=os.path.join(REPO, ".venv", "bin", "python"))
    parser.add_argument("--rpytest", action="append", required=True)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="rpytest-history-bench-")
    try:
        print(f"history of {args.tests} tests, {args.runs} rounds")
        print(f"{'':<44} {'wall s':>8} {'max s':>8} {'cpu s':>8} {'RSS MB':>9} {'max MB':>9}")
        for n, given in enumerate(args.rpytest):
            binary = os.path.abspath(given)
            run = [binary, "--python", args.python, "-q", "-p", "no:cacheprovider", "--color=no"]
            root = os.path.join(work, f"p{n}")
            project(root, args.tests)
            timed(run, root)  # untimed: the history in this binary's form
            size = os.path.getsize(os.path.join(root, ".rpytest", "history.json"))
            status = [timed([binary, "--inventory-status"], root) for _ in range(args.runs)]
            tiny = [timed(run, root) for _ in range(args.runs)]
            empty_root = os.path.join(work, f"e{n}")
            project(empty_root, 0)
            empty = []
            for _ in range(args.runs):
                shutil.rmtree(os.path.join(empty_root, ".rpytest"), ignore_errors=True)
                empty.append(timed(run, empty_root))
            print(f"{binary} (history file {size / 1e6:.1f} MB)")
            print(row("  --inventory-status (whole history)", status))
            print(row("  1-test run with the history (load + save)", tiny))
            print(row("  1-test run, empty history", empty))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
