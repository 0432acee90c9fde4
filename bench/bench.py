#!/usr/bin/env python3
"""Compare wall-clock times of rpytest, pytest-xdist and plain pytest.

Generates a suite with gen_suite.py into a temporary directory, then times,
in alternating rounds (rpytest, xdist, pytest, rpytest, xdist, pytest, ...):

  rpytest -n W -q -p no:cacheprovider --python PY
  PY -m pytest -n W -q -p no:cacheprovider        (pytest-xdist)
  PY -m pytest -q -p no:cacheprovider             (plain pytest)

Each command runs in the suite directory with its output captured. Exit code
1 (some tests failed, expected for --kind fixtures) counts as a normal run;
any other nonzero code aborts and shows the command's output. One untimed
warm-up round (--warmup) runs first so .pyc writing is not charged to
whichever tool happens to go first.

Usage:
  python bench/bench.py [--kind trivial|mixed|fixtures] [--tests 500]
                        [--files 20] [--workers 2] [--runs 7]
                        [--python PY] [--rpytest PATH] [--skip-rpytest]
                        [--markdown]
"""
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
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
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
        lines.append(f"{'tool':<10} {'median':>8} {'min':>8} {'max':>8}   (seconds)")
        for name, med, lo, hi in rows:
            lines.append(f"{name:<10} {med:>8.3f} {lo:>8.3f} {hi:>8.3f}")
        for name, value in ratios:
            lines.append(f"{name:<16} {value:.2f}x")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kind", choices=["trivial", "mixed", "fixtures"], default="trivial")
    p.add_argument("--tests", type=int, default=500)
    p.add_argument("--files", type=int, default=20)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    p.add_argument("--python", default=None, help="interpreter with pytest + pytest-xdist")
    p.add_argument("--rpytest", default=os.path.join(REPO, "target", "release", "rpytest"))
    p.add_argument("--skip-rpytest", action="store_true", help="time only xdist and pytest")
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
        tools.append(("rpytest", [rpytest, "-n", str(a.workers), "-q", "-p", "no:cacheprovider", "--python", python]))
    tools.append(("xdist", [python, "-m", "pytest", "-n", str(a.workers), "-q", "-p", "no:cacheprovider"]))
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
        for i in range(a.runs):
            for name, cmd in tools:
                times[name].append(run(cmd, suite))
            print(f"round {i + 1}/{a.runs}: "
                  + ", ".join(f"{n} {times[n][-1]:.3f}s" for n, _ in tools), file=sys.stderr)

    rows = [(n, statistics.median(t), min(t), max(t)) for n, t in times.items()]
    med = {n: m for n, m, _, _ in rows}
    ratios = []
    if "rpytest" in med:
        ratios = [("rpytest/xdist", med["rpytest"] / med["xdist"]),
                  ("rpytest/pytest", med["rpytest"] / med["pytest"])]
    size = f"{a.files} files" if a.kind == "fixtures" else f"{a.tests} tests in {a.files} files"
    header = (f"{a.kind} suite: {size}, -n {a.workers}, "
              f"{a.runs} alternating runs, {os.cpu_count()} CPUs, python {python}")
    print(("**" + header + "**\n") if a.markdown else header)
    print(table(rows, ratios, a.markdown))


if __name__ == "__main__":
    main()
