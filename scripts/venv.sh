#!/usr/bin/env bash
# Creates a venv (pytest, pytest-xdist for comparisons, msgpack, and
# pytest-timeout for rpytest's backstop to its limits) if missing,
# and prints its python. Everything the tests need comes from PyPI here.
#
#   scripts/venv.sh                       .venv with pytest 9.x (the main run)
#   scripts/venv.sh DIR SPEC              DIR with pytest SPEC, e.g.
#   scripts/venv.sh .venv-matrix/pytest8 "pytest>=8.4,<9" (scripts/matrix.sh)
#   scripts/venv.sh DIR SPEC ""           pytest alone: no xdist, msgpack, timeout
#                                         (scripts/pytest_only.sh)
#   RPYTEST_VENV_BASE=/path/to/python3.9 scripts/venv.sh DIR SPEC
#                                         a venv of another interpreter than
#                                         python3 on PATH (scripts/pythons.sh)
#
# The spec and the base interpreter are recorded in DIR/.rpytest-spec; a venv
# made for another spec or interpreter is rebuilt. pip picks the pytest-xdist
# and msgpack that fit that pytest and that Python.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-.venv}
spec=${2:-"pytest>=9,<10"}
extras=${3-"pytest-xdist msgpack pytest-timeout ruff==0.17.6"}
base=${RPYTEST_VENV_BASE:-python3}
record="$spec $extras${RPYTEST_VENV_BASE:+ ($base)}"
modules=pytest
[ -z "$extras" ] || modules="pytest, xdist, msgpack, pytest_timeout"
if [ ! -x "$dir/bin/python" ] || [ "$(cat "$dir/.rpytest-spec" 2>/dev/null)" != "$record" ] \
  || ! "$dir/bin/python" -c "import $modules" 2>/dev/null; then
  rm -rf "$dir"
  mkdir -p "$(dirname "$dir")"
  "$base" -m venv "$dir" >&2
  # shellcheck disable=SC2086 # extras is a list of packages
  "$dir/bin/python" -m pip install -q --disable-pip-version-check "$spec" $extras >&2
  echo "$record" > "$dir/.rpytest-spec"
fi
echo "$PWD/$dir/bin/python"
