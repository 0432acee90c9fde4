#!/usr/bin/env python3
"""Compare wall-clock times of rpytest, pytest-xdist and plain pytest.

Generates a suite with gen_suite.py into a temporary directory, then times,
in alternating rounds (rpytest, xdist, pytest, rpytest, xdist, pytest, ...):

  rpytest -n W -q -p no:cacheprovider --python PY
  PY -m pytest -n W -q -p no:cacheprovider        (pytest-xdist)
  PY -m pytest -q -p no:cacheprovider             (plain pytest)

With --kind session (every test uses a session fixture that burns 1 s of
CPU to set up), rpytest is timed twice per round: with the fixture set up
per worker (the default, as under xdist) and shared
(RPYTEST_SHARED_SESSION_FIXTURES=expensive_dataset: set up once before the
workers are forked).

With --history, rpytest is timed twice per round, side by side: a first
run with its history removed (.rpytest/), then a second run that schedules
from the durations the first one recorded. For suites that record their
sleeps (--kind skewed) the LPT lower bound max(total/W, longest test) is
printed with the ratio of each tool to it, and whether rpytest's second run
is within 10% (+0.6 s start-up) of it.

Each command runs in the suite directory with its output captured. Exit code
1 (some tests failed, expected for --kind fixtures) counts as a normal run;
any other nonzero code aborts and shows the command's output. One untimed
warm-up round (--warmup) runs first so .pyc writing is not charged to
whichever tool happens to go first.

Usage:
  python bench/bench.py [--kind trivial|mixed|skewed|fixtures|session] [--tests 500]
                        [--files 20] [--workers 2] [--runs 7] [--history]
                        [--python PY] [--rpytest PATH] [--skip-rpytest]
                        [--skip-pytest] [--markdown]

The scheduling benchmark of the README:
  python bench/bench.py --kind skewed --workers 4 --history
Shared session fixtures:
  python bench/bench.py --kind session --workers 4
"""
import json
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def default_python():
    venv = os.environ.get("VIRTUAL_ENV")
    if venv and os.path.exists(os.path.join(venv, "bin", "python")):
        return os.path.join(venv, "bin", "python")
    local = os.path.join(REPO, ".venv", "bin", "python")
    if os.path.exists(local):
        return local
    return shutil.which("python3") or "python3"


def resolve(path):
    """Make a path usable from another cwd (leave bare command names alone)."""
    return os.path.abspath(path) if os.sep in path else path


def run(cmd, cwd):
    """Times one command; a leading {"VAR": value} dict is its extra environment."""
    env = None
    if isinstance(cmd[0], dict):
        env, cmd = {**os.environ, **cmd[0]}, cmd[1:]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.stderr.write(
            f"command failed with exit code {proc.returncode}: {' '.join(cmd)}\n"
            f"(cwd {cwd})\n--- output ---\n"
            + proc.stdout.decode("utf-8", "replace") + "\n"
        )
        sys.exit(2)
    return elapsed


def table(rows, ratios, markdown):
    lines = []
    if markdown:
        lines.append("| tool | median (s) | min (s) | max (s) |")
        lines.append("|---|---:|---:|---:|")
        for name, med, lo, hi in rows:
            lines.append(f"| {name} | {med:.3f} | {lo:.3f} | {hi:.3f} |")
        if ratios:
            lines.append("")
            lines.append("| ratio of medians | value |")
            lines.append("|---|---:|")
            for name, value in ratios:
                lines.append(f"| {name} | {value:.2f}x |")
    else:
        lines.append(f"{'tool':<14} {'median':>8} {'min':>8} {'max':>8}   (seconds)")
        for name, med, lo, hi in rows:
            lines.append(f"{name:<14} {med:>8.3f} {lo:>8.3f} {hi:>8.3f}")
        for name, value in ratios:
            lines.append(f"{name:<22} {value:.2f}x")
    return "\n".join(lines)


def lpt_bounds(suite, workers):
    """LPT lower bounds max(total/W, longest) as (label, bound, total,
    longest): from the sleeps the suite records, and from the durations
    pytest measured (setup + call + teardown) in rpytest's history."""
    bounds = []
    for label, path, value in [
        ("sleeps", ".bench_sleeps.json", lambda v: v),
        ("measured durations", os.path.join(".rpytest", "history.json"),
         lambda t: sum(t["durations"]) / len(t["durations"]) if t["durations"] else 0.0),
    ]:
        path = os.path.join(suite, path)
        if not os.path.exists(path):
            continue
        with open(path) as f:
            data = json.load(f)
        seconds = [value(v) for v in data.get("tests", data).values()]
        total, longest = sum(seconds), max(seconds)
        bounds.append((label, max(total / workers, longest), total, longest))
    return bounds


def bound_report(bounds, med, workers):
    """Lines comparing each median with each LPT lower bound."""
    lines = []
    for label, lb, total, longest in bounds:
        lines.append(f"LPT lower bound from {label}: max({total:.3f}/{workers}, {longest:.3f}) = {lb:.3f}s")
        lines += [f"  {name:<14} {value:.3f}s = {value / lb:.2f}x bound" for name, value in med.items()]
        if "rpytest 2nd" in med:
            target = 1.1 * lb + 0.6
            verdict = "met" if med["rpytest 2nd"] <= target else "NOT met"
            lines.append(f"  rpytest with history <= 1.1 x bound + 0.6s = {target:.3f}s: {verdict}")
    return "\n".join(lines)


def rounds(tools, suite, a, times):
    """Runs each tool per round; "rpytest 1st" starts without history."""
    for i in range(a.runs):
        for name, cmd in tools:
            if name == "rpytest 1st":
                shutil.rmtree(os.path.join(suite, ".rpytest"), ignore_errors=True)
            times[name].append(run(cmd, suite))
        print(f"round {i + 1}/{a.runs}: "
              + ", ".join(f"{n} {times[n][-1]:.3f}s" for n, _ in tools), file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kind", choices=["trivial", "mixed", "skewed", "fixtures", "session"], default="trivial")
    p.add_argument("--tests", type=int, default=500)
    p.add_argument("--files", type=int, default=20)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    p.add_argument("--python", default=None, help="interpreter with pytest + pytest-xdist")
    p.add_argument("--rpytest", default=os.path.join(REPO, "target", "release", "rpytest"))
    p.add_argument("--skip-rpytest", action="store_true", help="time only xdist and pytest")
    p.add_argument("--skip-pytest", action="store_true", help="do not time plain pytest")
    p.add_argument("--history", action="store_true",
                   help="time rpytest's first run (no history) and second run (with history)")
    p.add_argument("--markdown", action="store_true", help="print the table as markdown")
    a = p.parse_args()

    python = resolve(a.python or default_python())
    if subprocess.run([python, "-c", "import pytest, xdist"], stderr=subprocess.DEVNULL).returncode:
        p.error(f"{python} cannot import pytest and xdist (pass --python)")
    tools = []
    if not a.skip_rpytest:
        rpytest = resolve(a.rpytest)
        if not (os.path.isfile(rpytest) and os.access(rpytest, os.X_OK)):
            p.error(f"no rpytest binary at {rpytest} (cargo build --release, or --skip-rpytest)")
        cmd = [rpytest, "-n", str(a.workers), "-q", "-p", "no:cacheprovider", "--python", python]
        if a.history:
            tools += [("rpytest 1st", cmd), ("rpytest 2nd", cmd)]
        elif a.kind == "session":
            shared = {"RPYTEST_SHARED_SESSION_FIXTURES": "expensive_dataset"}
            tools += [("rpytest", cmd), ("rpytest shared", [shared, *cmd])]
        else:
            tools.append(("rpytest", cmd))
    tools.append(("xdist", [python, "-m", "pytest", "-n", str(a.workers), "-q", "-p", "no:cacheprovider"]))
    if not a.skip_pytest:
        tools.append(("pytest", [python, "-m", "pytest", "-q", "-p", "no:cacheprovider"]))

    times = {name: [] for name, _ in tools}
    with tempfile.TemporaryDirectory(prefix="rpytest-bench-") as tmp:
        suite = os.path.join(tmp, "suite")
        subprocess.run(
            [sys.executable, os.path.join(HERE, "gen_suite.py"), a.kind, suite,
             "--tests", str(a.tests), "--files", str(a.files)],
            check=True, stderr=subprocess.DEVNULL,
        )
        for _ in range(a.warmup):
            for name, cmd in tools:
                run(cmd, suite)
        rounds(tools, suite, a, times)
        bounds = lpt_bounds(suite, a.workers) if a.history or a.kind == "skewed" else []

    rows = [(n, statistics.median(t), min(t), max(t)) for n, t in times.items()]
    med = {n: m for n, m, _, _ in rows}
    ratios = [(f"{n}/{base}", med[n] / med[base])
              for n in med if n.startswith("rpytest") for base in ("xdist", "pytest") if base in med]
    if "rpytest shared" in med:
        ratios.append(("rpytest shared/rpytest", med["rpytest shared"] / med["rpytest"]))
    size = f"{a.files} files" if a.kind == "fixtures" else f"{a.tests} tests in {a.files} files"
    header = (f"{a.kind} suite: {size}, -n {a.workers}, "
              f"{a.runs} alternating runs, {os.cpu_count()} CPUs, python {python}")
    print(("**" + header + "**\n") if a.markdown else header)
    print(table(rows, ratios, a.markdown))
    if bounds:
        print(bound_report(bounds, med, a.workers))


if __name__ == "__main__":
    main()
