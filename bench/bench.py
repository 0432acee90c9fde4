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

With --history --longest, a third rpytest run per round (with history)
uses `--test-order longest`: each worker runs its share longest first
instead of in collection order (the default), to compare the two.

With --warm, rpytest runs through a private `rpytest serve` daemon (its own
runtime directory, background poll off): each timed run takes a zygote that
has already collected, and the bench waits before each run until the next
zygote is warm, so what is timed is a warm run, not a wait for collection.
Each warm run is checked to have been warm (RPYTEST_TRACE). The resident
memory of the daemon and its warm zygote is printed beside the times
(workers are forked per run, so no idle workers are held).

Each command runs in the suite directory with its output captured. Exit code
1 (some tests failed, expected for --kind fixtures) counts as a normal run;
any other nonzero code aborts and shows the command's output. One untimed
warm-up round (--warmup) runs first so .pyc writing is not charged to
whichever tool happens to go first.

Usage:
  python bench/bench.py [--kind trivial|mixed|skewed|fixtures|session] [--tests 500]
                        [--files 20] [--workers 2] [--runs 7] [--history [--longest]]
                        [--python PY] [--rpytest PATH] [--skip-rpytest]
                        [--skip-pytest] [--markdown] [--warm]

The warm-daemon benchmark of docs/benchmarks.md:
  python bench/bench.py --warm

The scheduling benchmark of docs/benchmarks.md:
  python bench/bench.py --kind skewed --workers 4 --history --longest
  python bench/bench.py --kind mixed --workers 4 --history --longest
Shared session fixtures:
  python bench/bench.py --kind session --workers 4
"""
import argparse
import json
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


BYTECODE_CHOICES = ("cached", "off")
BYTECODE_HELP = ("cached (the default): Python caches compiled modules and pytest its "
                 "assertion-rewritten test modules in __pycache__, as on a developer's machine "
                 "(PYTHONDONTWRITEBYTECODE is removed from the environment); off: "
                 "PYTHONDONTWRITEBYTECODE=1, so every import compiles again and rewrites (some "
                 "sandboxes and CI images set it; collection then costs several times more)")


def set_bytecode(mode):
    """Applies --bytecode to this process's environment, which every timed
    command inherits, and returns the line the report prints about it."""
    if mode == "off":
        os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
        return "bytecode: off (PYTHONDONTWRITEBYTECODE=1: every import compiles)"
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    return "bytecode: cached in __pycache__ (as on a developer's machine)"


def resolve(path):
    """Make a path usable from another cwd (leave bare command names alone)."""
    return os.path.abspath(path) if os.sep in path else path


def run(cmd, cwd, env=None, must_say=None):
    """Times one command; a leading {"VAR": value} dict is its extra environment."""
    if isinstance(cmd[0], dict):
        env, cmd = {**(env or os.environ), **cmd[0]}, cmd[1:]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, check=False)
    elapsed = time.perf_counter() - start
    if must_say is not None and must_say.encode() not in proc.stdout:
        sys.stderr.write(f"expected {must_say!r} in the output of {' '.join(cmd)}:\n"
                         + proc.stdout.decode("utf-8", "replace") + "\n")
        sys.exit(2)
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
                lines.append(f"| {name} | {value:.3f}x |")
    else:
        lines.append(f"{'tool':<14} {'median':>8} {'min':>8} {'max':>8}   (seconds)")
        for name, med, lo, hi in rows:
            lines.append(f"{name:<14} {med:>8.3f} {lo:>8.3f} {hi:>8.3f}")
        for name, value in ratios:
            lines.append(f"{name:<22} {value:.3f}x")
    return "\n".join(lines)


def lpt_bounds(suite, workers):
    """LPT lower bounds max(total/W, longest) as (label, bound, total,
    longest): from the sleeps the suite records, and from the durations
    pytest measured (setup + call + teardown) in rpytest's history."""
    bounds = []
    for label, name, value in [
        ("sleeps", ".bench_sleeps.json", lambda v: v),
        ("measured durations", os.path.join(".rpytest", "history.json"),
         lambda t: sum(t["durations"]) / len(t["durations"]) if t["durations"] else 0.0),
    ]:
        path = os.path.join(suite, name)
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


class WarmDaemon:
    """A private `rpytest serve` for --warm, stopped on exit; `poll` is its
    --poll (0: check for changed files only when a run asks)."""

    def __init__(self, rpytest, tmp, poll=0):
        self.rpytest = rpytest
        self.env = dict(os.environ, RPYTEST_RUNTIME_DIR=os.path.join(tmp, "runtime"))
        os.makedirs(self.env["RPYTEST_RUNTIME_DIR"], mode=0o700)
        self.proc = subprocess.Popen([rpytest, "serve", "--poll", str(poll)], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.wait_for(lambda status: status is not None)
        self.run_env = dict(self.env, RPYTEST_TRACE="1")

    def status(self):
        proc = subprocess.run([self.rpytest, "serve", "--status"], env=self.env, check=False,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        return proc.stdout if proc.returncode == 0 else None

    def wait_for(self, ready, limit=60.0):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            status = self.status()
            if ready(status):
                return status
            time.sleep(0.05)
        sys.exit(f"the daemon was not ready within {limit}s:\n{self.status()}")

    def wait_until_warm(self):
        return self.wait_for(lambda status: status is not None and ": warm" in status)

    def memory_line(self):
        status = self.wait_until_warm()
        return next(line for line in status.splitlines() if line.startswith("memory:"))

    def stop(self):
        subprocess.run([self.rpytest, "serve", "--stop"], env=self.env, check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.proc.wait(timeout=10)


def run_tool(name, cmd, suite, daemon):
    if name == "rpytest warm":
        daemon.wait_until_warm()
        elapsed = run(cmd, suite, env=daemon.run_env, must_say="daemon: warm zygote")
        # The next zygote collects now: not while the other tools are timed.
        daemon.wait_until_warm()
        return elapsed
    return run(cmd, suite)


def rounds(tools, suite, a, times, daemon=None):
    """Runs each tool per round; "rpytest 1st" starts without history."""
    for i in range(a.runs):
        for name, cmd in tools:
            if name == "rpytest 1st":
                shutil.rmtree(os.path.join(suite, ".rpytest"), ignore_errors=True)
            times[name].append(run_tool(name, cmd, suite, daemon))
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
    p.add_argument("--longest", action="store_true",
                   help="with --history, also time a run with history under --test-order longest")
    p.add_argument("--markdown", action="store_true", help="print the table as markdown")
    p.add_argument("--warm", action="store_true",
                   help="time rpytest through a warm daemon (rpytest serve)")
    p.add_argument("--bytecode", choices=BYTECODE_CHOICES, default="cached", help=BYTECODE_HELP)
    a = p.parse_args()
    print(set_bytecode(a.bytecode))
    if a.warm and a.history:
        p.error("--warm and --history measure different things; pass one")

    python = resolve(a.python or default_python())
    if subprocess.run([python, "-c", "import pytest, xdist"], stderr=subprocess.DEVNULL, check=False).returncode:
        p.error(f"{python} cannot import pytest and xdist (pass --python)")
    tools = []
    if not a.skip_rpytest:
        rpytest = resolve(a.rpytest)
        if not (os.path.isfile(rpytest) and os.access(rpytest, os.X_OK)):
            p.error(f"no rpytest binary at {rpytest} (cargo build --release, or --skip-rpytest)")
        cmd = [rpytest, "-n", str(a.workers), "-q", "-p", "no:cacheprovider", "--python", python]
        if a.history:
            tools += [("rpytest 1st", cmd), ("rpytest 2nd", cmd)]
            if a.longest:
                tools.append(("rpytest longest", [*cmd, "--test-order", "longest"]))
        elif a.kind == "session":
            shared = {"RPYTEST_SHARED_SESSION_FIXTURES": "expensive_dataset"}
            tools += [("rpytest", cmd), ("rpytest shared", [shared, *cmd])]
        else:
            tools.append(("rpytest warm" if a.warm else "rpytest", cmd))
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
        daemon = WarmDaemon(rpytest, tmp) if a.warm else None
        try:
            for _ in range(a.warmup):
                for _name, cmd in tools:
                    # The first run through the daemon is cold; it prewarms.
                    run(cmd, suite, env=daemon.run_env if daemon else None)
            rounds(tools, suite, a, times, daemon)
            memory = daemon.memory_line() if daemon else None
        finally:
            if daemon:
                daemon.stop()
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
    if memory:
        print(f"warm daemon {memory} (one warm zygote; workers are forked per run, none idle)")
    if bounds:
        print(bound_report(bounds, med, a.workers))


if __name__ == "__main__":
    main()
