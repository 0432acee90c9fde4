#!/usr/bin/env bash
# The pytest version matrix. rpytest supports pytest 9.x, the latest 8.x and
# 7.4. scripts/test.sh runs the whole battery on 9.x; this script runs the
# reduced battery (scripts/battery.sh: the comparisons that can depend on
# pytest's version) and the Python side's own tests (pyworker/tests: among
# them each accessor of pytest_internals.py, rpytest's door into pytest's
# private names) on each older version, in a venv of its own under
# .venv-matrix/ (created from PyPI when missing).
# Budget: about a minute and a half per version on 2 cores.
#
#   scripts/matrix.sh            both older versions
#   scripts/matrix.sh 8          one of them (8 or 7.4)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/battery.sh
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(8 7.4)
cargo build --release --quiet
for version in "${versions[@]}"; do
  case "$version" in
    8 | 7.4) spec=$(pytest_spec "$version") ;;
    *) echo "matrix.sh: unknown pytest version $version (use 8 or 7.4)" >&2; exit 4 ;;
  esac
  start=$SECONDS
  python=$(scripts/venv.sh ".venv-matrix/pytest$version" "$spec")
  echo "== pytest matrix: $("$python" -m pytest --version 2>&1) ($python)"
  reduced_battery "pytest $version" "$python"
  "$python" -m pytest -q -p no:cacheprovider pyworker/tests
  echo "== pytest $version done in $((SECONDS - start))s"
done
