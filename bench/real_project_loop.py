#!/usr/bin/env python3
"""The edit-and-rerun loop on a real project with a heavy import (issue #25).

edit_loop.py times the daemon on a generated suite; the issue's acceptance
asks for a real project: "20 edit-and-rerun cycles. Say how many were warm,
and give their total against 20 cold runs." This bench does that.

The project is `uncertainties` 3.2.2 (its sdist from PyPI, unpacked as is):
pure Python, its package imports NumPy at import time (the heavy import),
its 4 test files (50 tests, a shared tests/helpers.py) run under plain
pytest in about 1.3 s, and it has several project modules to edit
(uncertainties/core.py, umath_core.py, unumpy/core.py). The venv pins
pytest 8.3.4 and numpy 1.26.4 (the last NumPy 1 wheel for Python 3.11).

Each cycle makes one seeded edit that keeps every test passing:

  test-body     an `assert N == N` line at the top of a test function;
  module-body   `# bench edit N` + `pass` at the top of a function (after
                its docstring) in one of the project modules;
  test-k        a test-body edit, then a run with `-k <a test's name>`;
  test-file     a test-body edit, then a run of that test file alone.

then waits 1.0 s (saving, then pressing Enter) and runs
`rpytest -n 2 -q -p no:cacheprovider --python VENV_PY [selection]` through
a private daemon (`rpytest serve --poll 2`, RPYTEST_RUNTIME_DIR in a 0700
temporary directory, stopped at the end also on error) and with
--no-daemon, both with RPYTEST_TRACE=1. Even cycles run warm first, odd
ones cold first. The cold run always starts once the daemon has seen the
edit and settled, so the daemon's rebuild is not charged to it; a warm run
that comes second therefore starts later after the save (the table's
"after save" column). A run through the daemon counts as warm when the
client printed `daemon: warm zygote`; otherwise the table gives the
`daemon: cold: <reason>` it printed. Warm and cold must both exit 0 with the
same summary counts: a mismatch is printed with both outputs and the
bench exits 2.

Usage:
  python bench/real_project_loop.py [--python BASE_PY] [--rpytest PATH]
                                    [--cycles 20] [--seed 25]
                                    [--workdir DIR] [--json PATH] [--keep]
"""
import argparse
import ast
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time

from edit_loop import REPO, STATE, Run, WarmDaemon, resolve

# edit_loop.py (which imports bench.py) sits beside this script, first on sys.path.
from bench import BYTECODE_CHOICES, BYTECODE_HELP, set_bytecode

PROJECT, VERSION = "uncertainties", "3.2.2"
PINS = ["pytest==8.3.4", "numpy==1.26.4"]
MODULES = ["uncertainties/core.py", "uncertainties/umath_core.py", "uncertainties/unumpy/core.py"]
KINDS = ["test-body"] * 3 + ["module-body"] * 3 + ["test-k", "test-file"]
POLL = 2
AFTER_SAVE = 1.0


def setup(workdir, base_python):
    """Makes (or reuses) workdir/venv and the downloaded sdist, and unpacks
    a fresh copy of the project into workdir/project."""
    venv = os.path.join(workdir, "venv")
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        subprocess.run([base_python, "-m", "venv", venv], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", *PINS], check=True)
    sdist = os.path.join(workdir, "sdist", f"{PROJECT}-{VERSION}.tar.gz")
    if not os.path.exists(sdist):
        subprocess.run([python, "-m", "pip", "download", "-q", "--no-binary", ":all:", "--no-deps",
                        f"{PROJECT}=={VERSION}", "-d", os.path.dirname(sdist)], check=True)
    unpacked = os.path.join(workdir, f"{PROJECT}-{VERSION}")
    shutil.rmtree(unpacked, ignore_errors=True)
    with tarfile.open(sdist) as tar:
        tar.extractall(workdir, filter="data")
    project = os.path.join(workdir, "project")
    shutil.rmtree(project, ignore_errors=True)
    os.rename(unpacked, project)
    return python, project


class Project:
    """The unpacked project and the edits made to it."""

    def __init__(self, path, rng):
        self.path, self.rng = path, rng
        self.test_files = sorted(os.path.join("tests", f) for f in os.listdir(os.path.join(path, "tests"))
                                 if f.startswith("test_") and f.endswith(".py"))
        self.count = 0

    def functions(self, rel, tests_only):
        """(name, line, indent) of each function whose body can take a new
        first statement: its first statement (after a docstring) starts on
        a line of its own below the def."""
        with open(os.path.join(self.path, rel)) as f:
            tree = ast.parse(f.read())
        found = []
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if tests_only and not node.name.startswith("test_"):
                continue
            body = node.body
            if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                body = body[1:]
            if body and body[0].lineno > node.lineno:
                found.append((node.name, body[0].lineno, body[0].col_offset))
        return found

    def insert(self, rel, tests_only, text):
        """Inserts text (lines, without indentation) at the top of a seeded
        choice of function in rel; returns the function's name."""
        name, line, indent = self.rng.choice(self.functions(rel, tests_only))
        path = os.path.join(self.path, rel)
        with open(path) as f:
            lines = f.readlines()
        lines[line - 1:line - 1] = [" " * indent + t + "\n" for t in text]
        with open(path, "w") as f:
            f.writelines(lines)
        return name

    def edit(self, kind):
        """Makes one edit of this kind; returns (description, selection)."""
        self.count += 1
        n = self.count
        if kind == "module-body":
            rel = self.rng.choice(MODULES)
            name = self.insert(rel, False, [f"# bench edit {n}", "pass"])
            return f"{rel}::{name}", []
        rel = self.rng.choice(self.test_files)
        name = self.insert(rel, True, [f"assert {n} == {n}  # bench edit {n}"])
        where = f"{rel}::{name}"
        if kind == "test-k":
            # A test's name (another file's, often) as a -k expression.
            other = self.rng.choice(self.test_files)
            return where, ["-k", self.rng.choice(self.functions(other, True))[0]]
        if kind == "test-file":
            return where, [rel]
        return where, []


class Loop:
    def __init__(self, a, python, project, rpytest, tmp):
        self.a, self.python, self.rpytest = a, python, rpytest
        self.project = Project(project, random.Random(a.seed))
        self.rng = random.Random(a.seed + 1)
        self.daemon = WarmDaemon(rpytest, tmp, poll=POLL)
        self.cycles, self.problems = [], []

    def settle(self):
        """Waits until every session of the daemon is warm (or failed)."""
        def settled(status):
            states = [m.group(1) for m in map(STATE.search, (status or "").splitlines()) if m]
            return bool(states) and "collecting" not in states
        return self.daemon.wait_for(settled)

    def run(self, warm, selection):
        cmd = [self.rpytest, *([] if warm else ["--no-daemon"]), "-n", "2", "-q", "-p", "no:cacheprovider",
               "--python", self.python, *selection]
        return Run(cmd, self.project.path, self.daemon.run_env)

    def warm_up(self):
        """Writes the .pyc files (one cold run) and builds the daemon's
        first session (one run through it, then settled)."""
        self.run(False, [])
        self.run(True, [])
        self.settle()

    def cycle(self, i):
        self.settle()  # the developer reads the last output
        kind = self.rng.choice(KINDS)
        where, selection = self.project.edit(kind)
        saved = time.monotonic()
        time.sleep(AFTER_SAVE)
        got, after = {}, None
        for warm in ([True, False] if i % 2 == 0 else [False, True]):
            if warm:
                after = time.monotonic() - saved
            else:
                time.sleep(max(0.0, saved + POLL + 0.5 - time.monotonic()))
                self.settle()
            got[warm] = self.run(warm, selection)
        w, c = got[True], got[False]
        trace = [line.split("daemon: ", 1)[1] for line in w.err.splitlines() if "daemon: " in line]
        row = {"cycle": i + 1, "kind": kind, "edit": where, "selection": selection, "warm_first": i % 2 == 0,
               "after_save_s": after, "warm": w.warm, "why_cold": w.why_cold, "trace": trace,
               "warm_s": w.seconds, "cold_s": c.seconds, "warm_summary": w.summary, "cold_summary": c.summary,
               "warm_code": w.code, "cold_code": c.code}
        self.cycles.append(row)
        if w.code != 0 or c.code != 0 or w.summary != c.summary or w.summary is None:
            problem = (f"cycle {i + 1} ({kind}, {where}, selection {selection}): warm {w.summary!r} exit {w.code}, "
                       f"cold {c.summary!r} exit {c.code}\n[warm]\n{w.describe()}\n[cold]\n{c.describe()}")
            self.problems.append(problem)
            print(f"MISMATCH {problem}", file=sys.stderr)
        print(f"cycle {i + 1}: {kind} warm {w.seconds:.3f}s ({'warm' if w.warm else w.why_cold}), "
              f"cold {c.seconds:.3f}s, {w.summary}", file=sys.stderr)


def table(cycles):
    lines = [f"{'#':>2} {'edit':<12} {'selection':<34} {'1st':<4} {'after save':>10} {'warm?':<6} "
             f"{'warm (s)':>8} {'cold (s)':>8}  summary / daemon trace"]
    for r in cycles:
        sel = " ".join(r["selection"]) or "-"
        state = "warm" if r["warm"] else "cold"
        note = r["warm_summary"] or "?"
        extra = [t for t in r["trace"] if not t.startswith("warm zygote")]
        if extra:
            note += " | " + "; ".join(extra)
        lines.append(f"{r['cycle']:>2} {r['kind']:<12} {sel[:34]:<34} {'warm' if r['warm_first'] else 'cold':<4} "
                     f"{r['after_save_s']:>9.2f}s {state:<6} {r['warm_s']:>8.3f} {r['cold_s']:>8.3f}  {note}")
    n = len(cycles)
    warm_n = sum(r["warm"] for r in cycles)
    warm_sum = sum(r["warm_s"] for r in cycles)
    cold_sum = sum(r["cold_s"] for r in cycles)
    lines.append(f"warm: {warm_n} of {n}; through the daemon {warm_sum:.3f}s in total vs {n} cold runs "
                 f"{cold_sum:.3f}s (ratio {warm_sum / cold_sum:.2f}); the warm ones alone "
                 f"{sum(r['warm_s'] for r in cycles if r['warm']):.3f}s vs their cold "
                 f"{sum(r['cold_s'] for r in cycles if r['warm']):.3f}s")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--python", default=sys.executable, help="base interpreter for the venv (3.11 or later)")
    p.add_argument("--rpytest", default=os.path.join(REPO, "target", "release", "rpytest"))
    p.add_argument("--cycles", type=int, default=20)
    p.add_argument("--seed", type=int, default=25)
    p.add_argument("--workdir", help="where the venv and sdist are kept (and reused); default a temporary dir")
    p.add_argument("--json", help="also write every cycle here")
    p.add_argument("--keep", action="store_true", help="keep the temporary dir (its path is printed)")
    p.add_argument("--bytecode", choices=BYTECODE_CHOICES, default="cached", help=BYTECODE_HELP)
    a = p.parse_args()
    print(set_bytecode(a.bytecode))
    if a.cycles < 1:
        p.error("--cycles must be at least 1")
    rpytest = resolve(a.rpytest)
    if not (os.path.isfile(rpytest) and os.access(rpytest, os.X_OK)):
        p.error(f"no rpytest binary at {rpytest} (cargo build --release, or pass --rpytest)")
    # SIGTERM unwinds like Ctrl-C, so the daemon is stopped either way.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    tmp = tempfile.mkdtemp(prefix="rpytest-real-loop-")
    workdir = os.path.abspath(a.workdir) if a.workdir else tmp
    os.makedirs(workdir, exist_ok=True)
    loop = None
    try:
        python, project = setup(workdir, resolve(a.python))
        load = os.getloadavg()
        loop = Loop(a, python, project, rpytest, tmp)
        loop.warm_up()
        for i in range(a.cycles):
            loop.cycle(i)
    finally:
        if loop:
            loop.daemon.stop()
        if a.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print(f"real project loop: {PROJECT} {VERSION} ({', '.join(PINS)}), {a.cycles} cycles, seed {a.seed}, -n 2, "
          f"daemon --poll {POLL}, runs {AFTER_SAVE:.1f}s after the save; {os.cpu_count()} CPUs, load average at "
          f"start {load[0]:.2f}")
    print(table(loop.cycles))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"project": f"{PROJECT}=={VERSION}", "pins": PINS, "seed": a.seed, "poll_s": POLL,
                       "after_save_s": AFTER_SAVE, "rpytest": rpytest, "cpus": os.cpu_count(),
                       "load_at_start": load, "cycles": loop.cycles, "problems": loop.problems}, f, indent=1)
    if loop.problems:
        print(f"\n{len(loop.problems)} cycle(s) where warm and cold differ:", file=sys.stderr)
        for problem in loop.problems:
            print(problem, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
