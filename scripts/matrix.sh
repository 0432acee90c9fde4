#!/usr/bin/env bash
# The pytest version matrix. rpytest supports pytest 9.x, the latest 8.x and
# 7.4. scripts/test.sh runs the whole battery on 9.x; this script runs a
# reduced battery on each older version, in a venv of its own under
# .venv-matrix/ (created from PyPI when missing):
#   - compare_outcomes, with the suites that run at 1, 2 and 4 workers run
#     at 2 workers only, and without the tests of rpytest's own machinery
#     (spawn mode, crashing workers) or of plain pytest alone (the baseline),
#     which do not depend on pytest's version;
#   - flag_compat (options whose output pytest renders differently by version).
#   - shared_fixtures (it works with pytest's fixture internals, which differ
#     by version).
#   - process_identity (pytest's __main__, its parser's program name and
#     pytester differ by version).
# Budget: about a minute and a half per version on 2 cores.
#
#   scripts/matrix.sh            both older versions
#   scripts/matrix.sh 8          one of them (8 or 7.4)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/skips.sh
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(8 7.4)
cargo build --release --quiet
for version in "${versions[@]}"; do
  case "$version" in
    8) spec="pytest>=8,<9" ;;
    7.4) spec="pytest>=7.4,<7.5" ;;
    *) echo "matrix.sh: unknown pytest version $version (use 8 or 7.4)" >&2; exit 4 ;;
  esac
  start=$SECONDS
  python=$(scripts/venv.sh ".venv-matrix/pytest$version" "$spec")
  echo "== pytest matrix: $("$python" -m pytest --version 2>&1) ($python)"
  RPYTEST_TEST_PYTHON="$python" cargo test --release --test compare_outcomes --test flag_compat --test shared_fixtures --test process_identity \
    -- --skip ::n1 --skip ::n4 --skip spawn_mode --skip crashing_worker --skip baseline_suites
  report_skips "pytest $version"
  echo "== pytest $version done in $((SECONDS - start))s"
done
