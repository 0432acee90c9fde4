#!/usr/bin/env bash
# Creates .venv (pytest, pytest-xdist for comparisons, msgpack) if missing,
# and prints its python. Everything the tests need comes from PyPI here.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import pytest, xdist, msgpack" 2>/dev/null; then
  python3 -m venv .venv >&2
  .venv/bin/python -m pip install -q --disable-pip-version-check "pytest>=9,<10" pytest-xdist msgpack >&2
fi
echo "$PWD/.venv/bin/python"
