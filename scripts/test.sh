#!/usr/bin/env bash
# The whole test suite: Rust unit and integration tests (which run the real
# binary against generated suites and compare with `python -m pytest`), the
# same comparisons reduced to what depends on pytest's version against
# pytest 8.x and 7.4 (scripts/matrix.sh), on pytest alone, without
# pytest-xdist (scripts/pytest_only.sh), and on every other CPython the
# machine has, 3.8 to 3.13 (scripts/pythons.sh), the Python side's own tests,
# popular plugins (scripts/plugins.sh), and real third-party suites from
# PyPI. scripts/wheel.sh builds the wheel and runs the example suite with it
# from a fresh venv that has pytest only. Set RPYTEST_SKIP_MATRIX=1 to skip
# the older pytest versions, pytest alone and the other Pythons,
# RPYTEST_SKIP_PYTHONS=1 to skip only the other Pythons,
# RPYTEST_SKIP_PLUGINS=1 to skip the plugins, and RPYTEST_SKIP_THIRDPARTY=1
# to skip the last (it downloads sdists).
set -euo pipefail
cd "$(dirname "$0")/.."
# Formatting and lints first: rustfmt.toml keeps the tree's 120-column
# style, clippy warnings are errors, and ruff.toml sets the Python rules.
cargo fmt --check
cargo clippy --release --all-targets --quiet -- -D warnings
python=$(scripts/venv.sh)
"$(dirname "$python")/ruff" check --quiet pyworker bench scripts tests
# pytest's internals are reached through one module (pytest_internals.py);
# every repository path the docs and comments name exists; no file is past
# the size cap CONTRIBUTING.md states.
bash scripts/check_pytest_door.sh
"$python" scripts/check_paths.py
"$python" scripts/check_sizes.py
export RPYTEST_TEST_PYTHON="$python"
cargo build --release
source scripts/skips.sh
cargo test --release
report_skips "main battery"
# The comparison batteries again with the collection spread over the
# workers on every suite, small ones too (by default only large suites
# spread; docs/collection.md).
RPYTEST_PARALLEL_COLLECTION=always cargo test --release --test compare_outcomes --test flag_compat
bash scripts/wheel.sh
if [ "${RPYTEST_SKIP_MATRIX:-0}" != 1 ]; then
  bash scripts/matrix.sh
  bash scripts/pytest_only.sh
  [ "${RPYTEST_SKIP_PYTHONS:-0}" = 1 ] || bash scripts/pythons.sh
fi
"$python" -m pytest -q -p no:cacheprovider pyworker/tests
# Popular plugins from PyPI, each compared with plain pytest.
if [ "${RPYTEST_SKIP_PLUGINS:-0}" != 1 ]; then
  bash scripts/plugins.sh
fi
# The benchmark tooling: the report (table + SVG), on one small suite, one run.
bench_out=$(mktemp -d)
"$python" bench/report.py --quick --python "$python" --out "$bench_out" >/dev/null
test -s "$bench_out/chart.svg" && grep -q '| trivial500 |' "$bench_out/RESULTS.md"
# The edit-loop bench (warm daemon vs --no-daemon after edits), tiny: it
# exits 2 if a run's outcome does not show the edit it followed.
"$python" bench/edit_loop.py --python "$python" --rpytest target/release/rpytest \
  --tests 60 --files 3 --runs 1 --json "$bench_out/edit_loop.json" >/dev/null
grep -q '"edit-conftest"' "$bench_out/edit_loop.json"
rm -rf "$bench_out"
if [ "${RPYTEST_SKIP_THIRDPARTY:-0}" != 1 ]; then
  "$python" tests/thirdparty/run_thirdparty.py --python "$python" --rpytest target/release/rpytest
fi
