#!/usr/bin/env bash
# Creates a venv (pytest, pytest-xdist for comparisons, msgpack) if missing,
# and prints its python. Everything the tests need comes from PyPI here.
#
#   scripts/venv.sh                 .venv with pytest 9.x (the main run)
#   scripts/venv.sh DIR SPEC        DIR with pytest SPEC, e.g.
#   scripts/venv.sh .venv-matrix/pytest8 "pytest>=8,<9"   (scripts/matrix.sh)
#
# The spec is recorded in DIR/.rpytest-spec; a venv made for another spec is
# rebuilt. pip picks the pytest-xdist and msgpack that fit that pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-.venv}
spec=${2:-"pytest>=9,<10"}
if [ ! -x "$dir/bin/python" ] || [ "$(cat "$dir/.rpytest-spec" 2>/dev/null)" != "$spec" ] \
  || ! "$dir/bin/python" -c "import pytest, xdist, msgpack" 2>/dev/null; then
  rm -rf "$dir"
  mkdir -p "$(dirname "$dir")"
  python3 -m venv "$dir" >&2
  "$dir/bin/python" -m pip install -q --disable-pip-version-check "$spec" pytest-xdist msgpack >&2
  echo "$spec" > "$dir/.rpytest-spec"
fi
echo "$PWD/$dir/bin/python"
