#!/usr/bin/env bash
# Builds the pip-installable wheel (packaging/pyproject.toml, maturin from
# PyPI) and checks it as a user would get it: pip-installed into a new venv
# that has pytest only (no pytest-xdist, no msgpack), `rpytest` found on that
# venv's PATH, run on the bundled example suite with 2 workers. The example
# has one deliberate failure, so the run must exit 1 with exactly these
# counts. Then `cargo install --path .` must put a working `rpytest` in a
# scratch root.
#
#   bash scripts/wheel.sh            # wheel lands in target/wheels/
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
build=.venv-build
if ! "$build/bin/maturin" --version >/dev/null 2>&1; then
  rm -rf "$build"
  python3 -m venv "$build"
  "$build/bin/pip" install -q --disable-pip-version-check "maturin>=1.5,<2"
fi
rm -rf target/wheels
(cd packaging && "$repo/$build/bin/maturin" build --release --quiet -o "$repo/target/wheels")
wheel=$(ls target/wheels/rpytest_runner-*.whl)
echo "wheel: $wheel"
python3 - "$wheel" <<'PY' || { echo "the wheel lacks the binary or the worker package" >&2; exit 1; }
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
sys.exit(0 if any(n.endswith(".data/scripts/rpytest") for n in names) and "rpytest_worker/zygote.py" in names else 1)
PY

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
python3 -m venv "$scratch/venv"
"$scratch/venv/bin/pip" install -q --disable-pip-version-check "$wheel"
if "$scratch/venv/bin/python" -c "import xdist" 2>/dev/null; then
  echo "the user venv must not have pytest-xdist" >&2
  exit 1
fi

expect_demo() {  # $1: the rpytest to run; checks exit code 1 and the counts
  local out code=0
  out=$(cd examples/demo && "$1" -n 2 -p no:cacheprovider 2>&1) || code=$?
  echo "$out" | tail -n 1
  if [ "$code" != 1 ] || ! echo "$out" | tail -n 1 | grep -Eq '= 1 failed, 23 passed, 1 skipped, 1 xfailed in '; then
    echo "$out" >&2
    echo "expected exit 1 and '1 failed, 23 passed, 1 skipped, 1 xfailed' from $1, got exit $code" >&2
    exit 1
  fi
}

# From the venv's PATH, as after `source venv/bin/activate`.
found=$(PATH="$scratch/venv/bin:$PATH" VIRTUAL_ENV="$scratch/venv" command -v rpytest)
[ "$found" = "$scratch/venv/bin/rpytest" ] || { echo "rpytest on PATH is $found" >&2; exit 1; }
PATH="$scratch/venv/bin:$PATH" VIRTUAL_ENV="$scratch/venv" rpytest --version
PATH="$scratch/venv/bin:$PATH" VIRTUAL_ENV="$scratch/venv" expect_demo rpytest

# cargo install --path . (reusing this build's artifacts; --locked as a user should).
cargo install --quiet --locked --path . --root "$scratch/cargo" --target-dir target
VIRTUAL_ENV="$scratch/venv" expect_demo "$scratch/cargo/bin/rpytest"
echo "wheel and cargo install: ok"
