#!/usr/bin/env python3
"""A cold run of a large real suite: packaging's 64,000 tests (issue #27).

The generated suites of bench.py are small and uniform; issue #27's
acceptance asks for "the full packaging test suite (about 64,000 tests),
cold, -n 2: outcomes identical to pytest, and at most 0.55x pytest's wall".
packaging 26.4's sdist (from PyPI) holds that suite: 64,204 tests that
pass, 3 skips, 446 property tests its own addopts deselect (`-m "not
property"`, `-p no:logging`, `--capture=sys`, `-ra`, `--showlocals`).

A venv under --workdir (kept and reused) gets the pinned test requirements
(pytest, hypothesis, pretend, tomli_w); the package is put on PYTHONPATH
from the extracted sdist, as tests/thirdparty/run_thirdparty.py does.
Then, in alternating rounds (the first one untimed: it writes the bytecode
caches), it times

  pytest        PY -m pytest -p no:cacheprovider --junitxml=...
  rpytest -n 2  rpytest --no-daemon -n 2 --python PY -p no:cacheprovider --junitxml=...

and checks every run against pytest's first: the same exit code and the
same outcome for every test (junit testcase -> passed/failed/skipped/error).
It prints the medians, the ratio, and rpytest's phases from RPYTEST_TRACE
(collected, every test finished, done). Exit status 2 on any difference.

Usage:
  python bench/large_suite.py [--python BASE_PY] [--rpytest PATH] [--runs 3]
                              [--workers 2] [--workdir DIR] [--bytecode cached|off]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

from bench import BYTECODE_CHOICES, BYTECODE_HELP, REPO, resolve, set_bytecode

sys.path.insert(0, os.path.join(REPO, "tests", "thirdparty"))
import run_thirdparty

SUITE = run_thirdparty.Suite("packaging", "26.4", "src", ".", [], "64,204 tests, mostly parametrized")
REQUIREMENTS = ["pytest==9.2.0", "hypothesis==6.170.29", "pretend==1.0.9", "tomli_w==1.2.0"]
PHASES = {"collected": "collected", "finished": "every test finished", "done": "done, exit code"}


def make_venv(base_python, workdir):
    venv = os.path.join(workdir, "venv")
    python = os.path.join(venv, "bin", "python")
    stamp = os.path.join(venv, "requirements.txt")
    if os.path.exists(stamp):
        with open(stamp) as f:
            if f.read().split() == REQUIREMENTS:
                return python
    subprocess.run([base_python, "-m", "venv", "--clear", venv], check=True)
    subprocess.run([python, "-m", "pip", "install", "-q", *REQUIREMENTS], check=True)
    with open(stamp, "w") as f:
        f.write("\n".join(REQUIREMENTS))
    return python


def timed(cmd, cwd, env, junit):
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    seconds = time.perf_counter() - start
    outcomes = run_thirdparty.parse_junit(junit) if os.path.exists(junit) else None
    return {"seconds": seconds, "code": proc.returncode, "outcomes": outcomes,
            "stderr": proc.stderr.decode("utf-8", "replace"), "stdout": proc.stdout.decode("utf-8", "replace")}


def phases(stderr):
    found = {}
    for line in stderr.splitlines():
        m = re.match(r"rpytest trace \+([0-9.]+)s: (.*)", line)
        if m:
            for key, start in PHASES.items():
                if m.group(2).startswith(start):
                    found.setdefault(key, float(m.group(1)))
    return found


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--python", default=sys.executable, help="base interpreter for the venv")
    p.add_argument("--rpytest", default=os.path.join(REPO, "target", "release", "rpytest"))
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--workdir", help="where the venv and sdist are kept (and reused); default a temporary dir")
    p.add_argument("--bytecode", choices=BYTECODE_CHOICES, default="cached", help=BYTECODE_HELP)
    a = p.parse_args()
    print(set_bytecode(a.bytecode))
    rpytest = resolve(a.rpytest)
    workdir = os.path.abspath(a.workdir) if a.workdir else tempfile.mkdtemp(prefix="rpytest-large-")
    os.makedirs(workdir, exist_ok=True)
    python = make_venv(a.python, workdir)
    archive = run_thirdparty.fetch(python, os.path.join(workdir, "sdists"), SUITE)
    root = run_thirdparty.extract(archive, tempfile.mkdtemp(prefix="src-", dir=workdir))
    env = dict(os.environ, PYTHONPATH=os.path.join(root, SUITE.path), RPYTEST_TRACE="1")
    env.pop("PYTEST_ADDOPTS", None)
    junit = os.path.join(workdir, "junit.xml")
    tools = {
        "pytest": [python, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={junit}"],
        f"rpytest -n {a.workers}": [rpytest, "--no-daemon", "-n", str(a.workers), "--python", python,
                                    "-p", "no:cacheprovider", f"--junitxml={junit}"],
    }
    results = {name: [] for name in tools}
    baseline, problems = None, []
    for round_ in range(a.runs + 1):
        for name, cmd in (tools.items() if round_ % 2 == 0 else reversed(tools.items())):
            if os.path.exists(junit):
                os.remove(junit)
            run = timed(cmd, root, env, junit)
            if baseline is None and name == "pytest":
                baseline = run
            if run["outcomes"] is None:
                problems.append(f"{name}: exit {run['code']}, no junit file\n{run['stdout'][-2000:]}")
            elif baseline is not None and (run["code"], run["outcomes"]) != (baseline["code"], baseline["outcomes"]):
                keys = set(run["outcomes"]) | set(baseline["outcomes"])
                bad = sorted(k for k in keys if run["outcomes"].get(k) != baseline["outcomes"].get(k))
                problems.append(f"{name}: exit {run['code']} vs {baseline['code']}, "
                                f"{len(bad)} outcomes differ: {bad[:5]}")
            untimed = " (untimed)" if round_ == 0 else ""
            print(f"round {round_}{untimed}: {name} {run['seconds']:.1f}s exit {run['code']}"
                  f" {len(run['outcomes'] or {})} tests", file=sys.stderr, flush=True)
            if round_:
                results[name].append(run)
    print(f"\npackaging {SUITE.version}: {len(baseline['outcomes'])} tests in junit, "
          f"{a.runs} timed rounds, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} at the end")
    pytest_median = statistics.median(r["seconds"] for r in results["pytest"])
    print(f"{'tool':<12} {'median (s)':>10} {'vs pytest':>10}  phases (median s: collected / finished / done)")
    for name, runs in results.items():
        median = statistics.median(r["seconds"] for r in runs)
        traced = [phases(r["stderr"]) for r in runs]
        shown = " / ".join(f"{statistics.median(t[k] for t in traced):.1f}" if all(k in t for t in traced) else "-"
                           for k in PHASES)
        print(f"{name:<12} {median:>10.2f} {median / pytest_median:>9.2f}x  {shown if 'rpytest' in name else ''}")
    if problems:
        print("\nDIFFERENCES:\n" + "\n".join(problems))
        return 2
    print("outcomes: identical to pytest's in every run (exit code and every test)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
