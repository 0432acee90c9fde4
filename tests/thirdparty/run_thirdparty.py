#!/usr/bin/env python3
"""Run real third-party test suites under plain pytest and under rpytest.

For each pinned suite below: download its sdist from PyPI (once; kept in
--cache), extract it to a temp dir, run

  PY -m pytest -p no:cacheprovider --junitxml=A.xml TESTDIR [extra]
  rpytest -n N --python PY -p no:cacheprovider --junitxml=B.xml TESTDIR [extra]

for each N in --workers, and compare the exit codes and per-test outcomes
(junit testcase classname + name -> passed / failed / error / skipped).
The package under test is put on PYTHONPATH (nothing is installed), so
after the first download everything runs offline with only pytest in the
venv. Exit status 1 if anything differs (or plain pytest itself does not
give the pinned exit code), 0 otherwise.

Usage:
  python tests/thirdparty/run_thirdparty.py [--python PY] [--rpytest PATH]
      [--workers 1,2,4] [--cache DIR] [--only NAME] [--pytest-only]
"""
import argparse
import collections
import glob
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
import zipfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

Suite = collections.namedtuple("Suite", "name version path testdir extra style")

# Each passes under plain pytest 9 offline with only pytest installed.
# path: what goes on PYTHONPATH, relative to the extracted sdist root.
SUITES = [
    Suite("cachetools", "5.5.0", "src", "tests", [],
          "unittest.TestCase classes, src layout"),
    Suite("toolz", "1.0.0", ".", "toolz/tests", [],
          "plain test functions inside the package"),
    Suite("six", "1.16.0", ".", "test_six.py",
          # needs the optional dbm.ndbm C module, absent from many Pythons
          ["--deselect", "test_six.py::test_move_items[dbm_ndbm]"],
          "one big module: parametrize, monkeypatch, skips"),
    Suite("more-itertools", "10.5.0", ".", "tests", [],
          "unittest.TestCase with many subTest()s, ~660 tests"),
]
EXPECTED_EXIT = 0
TIMEOUT = 900


def default_python():
    venv = os.environ.get("VIRTUAL_ENV")
    if venv and os.path.exists(os.path.join(venv, "bin", "python")):
        return os.path.join(venv, "bin", "python")
    local = os.path.join(REPO, ".venv", "bin", "python")
    if os.path.exists(local):
        return local
    return shutil.which("python3") or "python3"


def resolve(path):
    return os.path.abspath(path) if os.sep in path else path


def find_sdist(cache, suite):
    variants = {suite.name, suite.name.replace("-", "_"), suite.name.replace("_", "-")}
    for v in variants:
        for ext in (".tar.gz", ".zip"):
            hits = glob.glob(os.path.join(cache, f"{v}-{suite.version}{ext}"))
            if hits:
                return hits[0]
    return None


def fetch(python, cache, suite):
    path = find_sdist(cache, suite)
    if path:
        return path
    os.makedirs(cache, exist_ok=True)
    cmd = [python, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           f"{suite.name}=={suite.version}", "-d", cache, "-q"]
    print(f"downloading {suite.name}=={suite.version} ...", flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    path = find_sdist(cache, suite)
    if proc.returncode or not path:
        sys.exit(f"pip download failed for {suite.name}=={suite.version}:\n"
                 + proc.stdout.decode("utf-8", "replace"))
    return path


def extract(archive, dest):
    if archive.endswith(".zip"):
        with zipfile.ZipFile(archive) as z:
            z.extractall(dest)
    else:
        with tarfile.open(archive) as t:
            if hasattr(tarfile, "data_filter"):
                t.extractall(dest, filter="data")
            else:
                t.extractall(dest)
    (root,) = os.listdir(dest)  # sdists hold exactly one top-level dir
    return os.path.join(dest, root)


def parse_junit(path):
    """testcase (classname::name[#k]) -> outcome."""
    outcomes = {}
    seen = collections.Counter()
    for case in ET.parse(path).getroot().iter("testcase"):
        key = f"{case.get('classname', '')}::{case.get('name', '')}"
        seen[key] += 1
        if seen[key] > 1:
            key += f"#{seen[key]}"
        kinds = sorted({c.tag for c in case if c.tag in ("failure", "error", "skipped")})
        outcomes[key] = "+".join(
            {"failure": "failed", "error": "error", "skipped": "skipped"}[k] for k in kinds
        ) or "passed"
    return outcomes


def run(cmd, cwd, env, junit):
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=TIMEOUT, check=False)
        code, out = proc.returncode, proc.stdout.decode("utf-8", "replace")
    except subprocess.TimeoutExpired as e:
        code, out = "timeout", (e.stdout or b"").decode("utf-8", "replace")
    elapsed = time.perf_counter() - start
    outcomes = parse_junit(junit) if os.path.exists(junit) else None
    return code, outcomes, elapsed, out


def summary(outcomes):
    counts = collections.Counter(outcomes.values())
    return ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))


def tail(text, n=30):
    return "\n".join("    " + line for line in text.rstrip().splitlines()[-n:])


def check_suite(suite, args, python, rpytest, workers):
    ok = True
    archive = fetch(python, args.cache, suite)
    with tempfile.TemporaryDirectory(prefix=f"rpytest-3p-{suite.name}-") as tmp:
        root = extract(archive, os.path.join(tmp, "src"))
        env = dict(os.environ)
        env.pop("PYTEST_ADDOPTS", None)
        env["PYTHONPATH"] = os.path.normpath(os.path.join(root, suite.path))
        label = f"{suite.name}=={suite.version}"

        junit = os.path.join(tmp, "pytest.xml")
        cmd = [python, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={junit}",
               suite.testdir] + suite.extra
        code, base, secs, out = run(cmd, root, env, junit)
        if base is None or code != EXPECTED_EXIT:
            print(f"{label:<24} pytest: exit {code} (expected {EXPECTED_EXIT}), "
                  f"{'no junit file' if base is None else summary(base)} [{secs:.1f}s]  BROKEN\n"
                  + tail(out))
            return False
        print(f"{label:<24} pytest       : {len(base)} tests ({summary(base)}), exit {code} [{secs:.1f}s]",
              flush=True)

        for n in workers:
            junit = os.path.join(tmp, f"rpytest-{n}.xml")
            cmd = [rpytest, "-n", str(n), "--python", python, "-p", "no:cacheprovider",
                   f"--junitxml={junit}", suite.testdir] + suite.extra
            rcode, got, rsecs, rout = run(cmd, root, env, junit)
            if got is None:
                print(f"{label:<24} rpytest -n {n:<2}: exit {rcode}, no junit file [{rsecs:.1f}s]  MISMATCH\n"
                      + tail(rout))
                ok = False
                continue
            keys = sorted(set(base) | set(got))
            bad = [k for k in keys if base.get(k) != got.get(k)]
            same = len(keys) - len(bad)
            status = "ok" if not bad and rcode == code else "MISMATCH"
            print(f"{label:<24} rpytest -n {n:<2}: {len(got)} tests, {same} match, {len(bad)} mismatches, "
                  f"exit {rcode} vs {code} [{rsecs:.1f}s]  {status}", flush=True)
            for k in bad[:10]:
                print(f"    {k}: pytest={base.get(k, 'missing')} rpytest={got.get(k, 'missing')}")
            if len(bad) > 10:
                print(f"    ... and {len(bad) - 10} more")
            if status != "ok":
                ok = False
                if rcode != code or not got:
                    print(tail(rout))
    return ok


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rpytest", default=os.path.join(REPO, "target", "release", "rpytest"))
    p.add_argument("--python", default=None, help="interpreter with pytest installed")
    p.add_argument("--workers", default="1,2,4", help="comma-separated -n values (default 1,2,4)")
    p.add_argument("--cache", default=os.path.expanduser("~/.cache/rpytest-thirdparty"),
                   help="where downloaded sdists are kept")
    p.add_argument("--only", action="append", metavar="NAME",
                   help="run only this suite (repeatable); one of: " + ", ".join(s.name for s in SUITES))
    p.add_argument("--pytest-only", action="store_true", help="run only plain pytest (checks the suites)")
    a = p.parse_args()

    python = resolve(a.python or default_python())
    workers = [] if a.pytest_only else [int(w) for w in a.workers.split(",") if w.strip()]
    rpytest = resolve(a.rpytest)
    if workers and not (os.path.isfile(rpytest) and os.access(rpytest, os.X_OK)):
        p.error(f"no rpytest binary at {rpytest} (cargo build --release, or --pytest-only)")
    suites = SUITES
    if a.only:
        unknown = set(a.only) - {s.name for s in SUITES}
        if unknown:
            p.error(f"unknown suite(s): {', '.join(sorted(unknown))}")
        suites = [s for s in SUITES if s.name in a.only]

    results = [check_suite(s, a, python, rpytest, workers) for s in suites]
    if all(results):
        print(f"all {len(suites)} suites agree")
        return 0
    print(f"{results.count(False)} of {len(suites)} suites differ or are broken")
    return 1


if __name__ == "__main__":
    sys.exit(main())
