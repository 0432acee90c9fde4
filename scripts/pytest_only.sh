#!/usr/bin/env bash
# rpytest needs pytest and nothing else: this runs the comparisons against
# plain pytest on a venv with pytest alone (no pytest-xdist, no msgpack, so
# the pure-Python codec is used too), created from PyPI under
# .venv-matrix/pytest-only. Tests that need xdist as their oracle skip
# themselves (tests/common: skip_without_xdist).
# Budget: about 3 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/skips.sh
cargo build --release --quiet
start=$SECONDS
python=$(scripts/venv.sh .venv-matrix/pytest-only "pytest>=9,<10" "")
echo "== pytest alone: $("$python" -m pytest --version 2>&1) ($python)"
RPYTEST_TEST_PYTHON="$python" cargo test --release --test compare_outcomes --test flag_compat \
  --test session_lifecycle --test shared_fixtures --test cli_passthrough --test retries -- --skip ::n1 --skip ::n4
report_skips "pytest alone"
echo "== pytest alone done in $((SECONDS - start))s"
