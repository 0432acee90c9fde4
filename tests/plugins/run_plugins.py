#!/usr/bin/env python3
"""Popular pytest plugins under rpytest, compared with plain pytest.

For each plugin a small suite is generated in a temp dir and run with
``PY -m pytest`` and ``rpytest -n N``; what the plugin produces must agree:
exit code, the counts line, the plugin's terminal lines and files
(coverage table and XML, the HTML and JSON reports' results, hypothesis
statistics and examples under a fixed seed, syrupy's snapshot files and
report through create, check, update and prune, instafail's failures).
pytest-sugar must be refused by name. pytest-benchmark must be handled as
docs/compatibility.md says: disabled with a warning (as pytest-xdist does).
Exit status 1 on any difference.

PY must have the plugins (scripts/plugins.sh makes that venv from PyPI).

Usage:
  python tests/plugins/run_plugins.py --python PY --rpytest PATH [--only NAME]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap

TIMEOUT = 300
MODULE = """
def add(a, b):
    if a < 0:
        return -1
    return a + b


def unused():
    return 42
"""
TESTS = """
from mod import add


def test_add():
    assert add(1, 2) == 3


def test_add_more():
    assert add(2, 2) == 4


def test_metadata(json_metadata):
    json_metadata["answer"] = 42
"""


def run(cmd, cwd):
    env = dict(os.environ, COLUMNS="80", PYTHONPATH=cwd)
    env.pop("PYTEST_ADDOPTS", None)
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=TIMEOUT, check=False)
    return proc.returncode, proc.stdout.decode("utf-8", "replace")


def counts(out):
    lines = [line for line in out.splitlines() if re.search(r" in [\d.]+s\b", line)]
    return re.sub(r" in [\d.]+s.*", "", lines[-1]).strip("= ") if lines else None


def write(root, files):
    for name, text in files:
        with open(os.path.join(root, name), "w") as f:
            f.write(textwrap.dedent(text))


def read(path):
    """The file's text, or "" when it was not written."""
    if not os.path.exists(path):
        return ""
    with open(path) as f:
        return f.read()


class Case:
    """One plugin: a suite, the arguments, and what must agree."""

    name = ""
    files = (("mod.py", MODULE), ("test_plugin.py", TESTS))
    args = ()
    # Also compared with pytest-xdist at -n 2 (what users migrate from).
    xdist = False
    # rpytest's own arguments, each compared in turn (how workers start).
    starts = ((),)
    # pytest-randomly is installed in the stage's venv: each run would
    # shuffle with a seed of its own, and the two sides' orders (the short
    # summary's) differ. Only the randomly case keeps it on.
    common = ("-p", "no:cacheprovider", "-p", "no:randomly")

    def __init__(self, py, rpytest):
        self.py, self.rpytest = py, rpytest

    def pytest(self, root, args):
        return run([self.py, "-m", "pytest", *self.common, *args], root)

    def rpy(self, root, workers, args, start=()):
        return run([self.rpytest, "--python", self.py, "--color=no", *self.common, "-n", workers, *start, *args], root)

    def check(self, problems):
        for start in self.starts:
            for workers in ("1", "2", "4"):
                with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
                    write(a, self.files)
                    write(b, self.files)
                    expected = self.observe(a, *self.pytest(a, self.args))
                    seen = self.observe(b, *self.rpy(b, workers, self.args, start))
                    if seen != expected:
                        problems.append(f"{self.name} -n {workers} {' '.join(start)}:\n"
                                        f"  pytest:  {expected}\n  rpytest: {seen}")
        if self.xdist:
            self.check_xdist(problems)

    def check_xdist(self, problems):
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            write(a, self.files)
            write(b, self.files)
            expected = self.observe(a, *self.pytest(a, ["-n", "2", *self.args]))
            seen = self.observe(b, *self.rpy(b, "2", self.args))
            if seen != expected:
                problems.append(f"{self.name} -n 2:\n  xdist:   {expected}\n  rpytest: {seen}")

    def observe(self, root, code, out):
        return {"exit": code, "counts": counts(out)}


class Cov(Case):
    name = "pytest-cov"
    args = ("--cov=mod", "--cov-report=term", "--cov-report=xml:cov.xml", "--cov-fail-under=90")
    # A spawned worker is xdist's worker from its start: it measures centrally all the same.
    starts = ((), ("--worker-start", "spawn"))

    def observe(self, root, code, out):
        total = next((line.split() for line in out.splitlines() if line.startswith("TOTAL")), None)
        xml = read(os.path.join(root, "cov.xml"))
        rate = re.search(r'line-rate="([\d.]+)"', xml)
        return {**super().observe(root, code, out), "total": total, "xml_rate": rate and rate.group(1),
                "fail_under": "Required test coverage of 90% not reached" in out}


class Html(Case):
    name = "pytest-html"
    args = ("--html=report.html", "--self-contained-html")

    def observe(self, root, code, out):
        html = read(os.path.join(root, "report.html"))
        results = sorted(re.findall(r"&#34;result&#34;: &#34;(\w+)", html))
        return {**super().observe(root, code, out), "results": results, "line": "Generated html report" in out}


class JsonReport(Case):
    name = "pytest-json-report"
    args = ("--json-report", "--json-report-file=report.json", "-v")

    def observe(self, root, code, out):
        text = read(os.path.join(root, "report.json"))
        report = json.loads(text) if text else {}
        tests = sorted((t["nodeid"], t["outcome"], json.dumps(t.get("metadata"))) for t in report.get("tests", []))
        return {**super().observe(root, code, out), "summary": report.get("summary"), "tests": tests,
                "line": "report saved to" in out}


class Hypothesis(Case):
    name = "hypothesis"
    files = (("test_h.py", """
        from hypothesis import given, settings, strategies as st

        @settings(max_examples=20, derandomize=True)
        @given(st.integers())
        def test_int(x):
            assert isinstance(x, int)
    """),)
    args = ("--hypothesis-show-statistics",)

    def observe(self, root, code, out):
        stats = [line for line in out.splitlines() if "Hypothesis Statistics" in line or "passing," in line]
        return {**super().observe(root, code, out), "statistics": [re.sub(r"[\d.]+ seconds", "", s) for s in stats]}


class Benchmark(Case):
    """As pytest-xdist: benchmarks disabled with a warning; --benchmark-only refused."""

    name = "pytest-benchmark"
    files = (("test_b.py", "def test_bench(benchmark):\n    benchmark(sum, range(10))\n\n"
                           "def test_plain():\n    pass\n"),)

    def check(self, problems):
        with tempfile.TemporaryDirectory() as root:
            write(root, self.files)
            code, out = self.rpy(root, "2", [])
            if code != 0 or counts(out) != "2 passed, 1 warning" or "Benchmarks are automatically disabled" not in out:
                problems.append(f"{self.name}: expected 2 passed and xdist's warning, got {code}:\n{out}")
            code, out = self.rpy(root, "2", ["--benchmark-only"])
            if code != 4 or "--benchmark-only" not in out:
                problems.append(f"{self.name} --benchmark-only: expected a usage error, got {code}:\n{out}")


class Syrupy(Case):
    """Snapshots created, checked, updated and pruned as under pytest, step by
    step on two copies of a suite whose module's snapshots are split across
    workers; with pytest-xdist installed and without it (``-p no:xdist``)."""

    name = "syrupy"
    SNAP = """
        import pytest

        @pytest.mark.parametrize("i", range(6))
        def test_snap(snapshot, i):
            assert {"a": i * FACTOR} == snapshot
    """
    # (what the step does to the suite, the arguments)
    STEPS = (
        ("create", ["--snapshot-update"]),
        ("", []),
        ("change", []),
        ("", ["--snapshot-update"]),
        ("remove", []),
        ("", ["--snapshot-update"]),
        ("", []),
    )

    def check(self, problems):
        for extra, workers in (([], "2"), ([], "4"), (["-p", "no:xdist"], "2")):
            with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
                for step, args in self.STEPS:
                    self.edit(a, step)
                    self.edit(b, step)
                    expected = self.observe(a, *self.pytest(a, [*extra, *args]))
                    seen = self.observe(b, *self.rpy(b, workers, [*extra, *args]))
                    if seen != expected:
                        problems.append(f"{self.name} -n {workers} {extra} after {step or 'nothing'}, {args}:\n"
                                        f"  pytest:  {expected}\n  rpytest: {seen}")
                        break

    def edit(self, root, step):
        if step == "create":
            write(root, [("test_s.py", "FACTOR = 1\n" + textwrap.dedent(self.SNAP)),
                         ("test_t.py", "def test_other(snapshot):\n    assert 'hello' == snapshot\n")])
        elif step == "change":
            write(root, [("test_s.py", "FACTOR = 2\n" + textwrap.dedent(self.SNAP))])
        elif step == "remove":
            os.remove(os.path.join(root, "test_t.py"))

    def observe(self, root, code, out):
        lines = out.splitlines()
        start = next((i for i, line in enumerate(lines) if "snapshot report summary" in line), None)
        report = [line for line in lines[start:] if line.strip() and " in " not in line] if start is not None else []
        snapdir = os.path.join(root, "__snapshots__")
        files = {name: read(os.path.join(snapdir, name)) for name in sorted(os.listdir(snapdir))} \
            if os.path.isdir(snapdir) else {}
        return {**super().observe(root, code, out), "report": report, "files": files}


class Django(Case):
    """A small Django project on SQLite: each worker gets its own test
    database, as under xdist (pytest-django suffixes it with the worker id)."""

    name = "pytest-django"
    files = (
        ("settings.py", """
            SECRET_KEY = "test"
            INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth"]
            DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3",
                                     "TEST": {"NAME": "test_db.sqlite3"}}}
            USE_TZ = True
        """),
        ("pytest.ini", "[pytest]\nDJANGO_SETTINGS_MODULE = settings\n"),
        ("test_django.py", """
            import os

            import pytest
            from django.contrib.auth.models import User
            from django.db import connection


            @pytest.mark.parametrize("i", range(6))
            def test_users_are_isolated(db, i):
                User.objects.create(username=f"user{i}")
                assert User.objects.count() == 1


            def test_database_is_this_workers(db):
                worker = os.environ.get("PYTEST_XDIST_WORKER")
                name = str(connection.settings_dict["NAME"])
                assert name.endswith(f"test_db.sqlite3_{worker}" if worker else "test_db.sqlite3")


            def test_no_database_without_the_fixture():
                with pytest.raises(RuntimeError, match="Database access not allowed"):
                    User.objects.count()
        """),
    )


class HypothesisSeed(Case):
    """A fixed seed gives the examples pytest gives: the worker package must
    not look like the user's code, or Hypothesis mixes its string constants
    into the examples (and writes them under .hypothesis/constants)."""

    xdist = True
    name = "hypothesis-seed"
    files = (("test_seed.py", """
        import json, os
        from hypothesis import given, settings, strategies as st

        @settings(max_examples=40, database=None)
        @given(st.text())
        def test_text(s):
            with open(f"seen-{os.getpid()}.jsonl", "a") as f:
                f.write(json.dumps(s) + "\\n")
    """),)
    args = ("--hypothesis-seed=1",)

    def observe(self, root, code, out):
        seen = sorted(line for name in os.listdir(root) if name.startswith("seen-")
                      for line in read(os.path.join(root, name)).splitlines())
        constants = os.path.join(root, ".hypothesis", "constants")
        ours = [name for name in (os.listdir(constants) if os.path.isdir(constants) else [])
                if "rpytest" in read(os.path.join(constants, name))]
        return {**super().observe(root, code, out), "examples": seen, "rpytest_constants": ours}


class GarbageCollector(Case):
    """Hypothesis, with trio installed, raises no warning of its own under
    ``filterwarnings = error``, in a test or in its terminal summary (the
    zygote once froze the collected session, hiding objects from
    ``gc.get_referrers``; ``tests/gc_fidelity.rs`` checks the collector
    itself). anyio's plugin is active. Its event-loop case (a loop freed
    once its test drops it) is left out: it failed once in CI against
    xdist and is being looked into."""

    xdist = True
    name = "gc-anyio-hypothesis"
    files = (
        ("pytest.ini", "[pytest]\nfilterwarnings = error\n"),
        ("test_gc.py", """
            import anyio, pytest

            @pytest.mark.parametrize("i", range(3))
            def test_anyio_runs(i):
                async def main():
                    return i
                assert anyio.run(main) == i

            def test_import_hypothesis():
                import hypothesis  # noqa: F401
        """),
    )


class Instafail(Case):
    """--instafail: each failure's text as it happens, no FAILURES section."""

    xdist = True
    name = "pytest-instafail"
    files = (("test_i.py", """
        import pytest

        @pytest.fixture
        def broken():
            raise RuntimeError("setup broke")

        def test_ok():
            pass

        def test_fail():
            print("seen")
            assert 1 == 2

        def test_error(broken):
            pass

        @pytest.mark.xfail
        def test_xfail():
            assert 0
    """),)
    args = ("--instafail", "-p", "no:sugar")

    def observe(self, root, code, out):
        lines = out.splitlines()
        blocks = sorted(line for line in lines if line.startswith(("_____", "E   ", "-----")))
        return {**super().observe(root, code, out), "blocks": blocks,
                "failures_section": any("= FAILURES =" in line for line in lines)}


class Sugar(Case):
    """pytest-sugar replaces the terminal reporter: refused by name, with
    the -p no:sugar that turns it off; with it off, the run is pytest's."""

    name = "pytest-sugar"
    files = (("test_s.py", "def test_a():\n    pass\n\ndef test_b():\n    assert 0\n"),)

    def check(self, problems):
        with tempfile.TemporaryDirectory() as root:
            write(root, self.files)
            code, out = self.rpy(root, "2", ["--force-sugar"])
            if code != 4 or "-p no:sugar" not in out:
                problems.append(f"{self.name}: expected a usage error naming -p no:sugar, got {code}:\n{out}")
        self.args = ("-p", "no:sugar")
        super().check(problems)


SEED_RECORDING_TEST = """
    import os

    import pytest


    @pytest.mark.parametrize("n", range(6))
    def test_n(n, request):
        seed = request.config.getoption("randomly_seed")
        with open(os.path.join(os.path.dirname(__file__), "seeds", str(os.getpid())), "a") as f:
            f.write(f"{seed}\\n")
"""


class Randomly(Case):
    """Shuffled modules and tests: every process shuffles with the seed the
    header names (xdist passes the controller's to its workers), forked
    workers and spawned ones, which collect for themselves."""

    common = ("-p", "no:cacheprovider")
    name = "pytest-randomly"
    files = (("test_one.py", SEED_RECORDING_TEST), ("test_two.py", SEED_RECORDING_TEST),
             ("test_three.py", SEED_RECORDING_TEST))
    args = ("-v",)
    starts = ((), ("--worker-start", "spawn"))

    def pytest(self, root, args):
        os.makedirs(os.path.join(root, "seeds"), exist_ok=True)
        return super().pytest(root, args)

    def rpy(self, root, workers, args, start=()):
        os.makedirs(os.path.join(root, "seeds"), exist_ok=True)
        return super().rpy(root, workers, args, start)

    def observe(self, root, code, out):
        header = re.search(r"Using --randomly-seed=(\d+)", out)
        seeds = set()
        for name in os.listdir(os.path.join(root, "seeds")):
            seeds.update(read(os.path.join(root, "seeds", name)).split())
        passed = sorted(re.findall(r"^(?:\[worker \d+\] )?(\S+::\S+) PASSED", out, re.MULTILINE))
        return {**super().observe(root, code, out), "passed": passed,
                "one_seed_as_said": bool(header) and seeds == {header.group(1)}}


class Rerunfailures(Case):
    """A flaky test rerun until it passes. With pytest-xdist installed the
    plugin serves its rerun database from a thread started at configure
    time; idle, that thread does not make rpytest spawn its workers."""

    name = "pytest-rerunfailures"
    files = (("test_flaky.py", """
        import os

        import pytest


        def test_flaky():
            mark = os.path.join(os.path.dirname(__file__), "ran-once")
            if not os.path.exists(mark):
                open(mark, "w").close()
                assert False, "first try"


        @pytest.mark.flaky(reruns=1)
        def test_marked():
            pass


        def test_plain():
            pass
    """),)
    args = ("--reruns", "2")

    def observe(self, root, code, out):
        return {**super().observe(root, code, out), "spawned": "start with spawn" in out}


CASES = [Cov, Html, JsonReport, Hypothesis, Benchmark, Syrupy, Django, Randomly, Rerunfailures, HypothesisSeed,
         GarbageCollector, Instafail, Sugar]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", required=True)
    parser.add_argument("--rpytest", required=True)
    parser.add_argument("--only")
    a = parser.parse_args()
    problems = []
    for case in CASES:
        if a.only and case.name != a.only:
            continue
        before = len(problems)
        case(a.python, os.path.abspath(a.rpytest)).check(problems)
        print(f"{case.name:20} {'ok' if len(problems) == before else 'DIFFERS'}", file=sys.stderr)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
