#!/usr/bin/env bash
# The Python version stage. scripts/test.sh runs the whole battery on the
# main interpreter (python3 on PATH); this script runs the reduced battery
# (scripts/battery.sh, the same one as the pytest matrix) and the Python
# side's own tests (pyworker/tests) on every other CPython the machine has,
# each in a venv of its own under .venv-matrix/python3.X (created from PyPI
# when missing) with the newest supported pytest that runs on it.
# Interpreters are looked for in pyenv's versions directory and as python3.X
# on PATH; one per minor version.
#
# Which pytest on which Python (Requires-Python of each supported line on
# PyPI): pytest 9.x needs 3.10+, the latest 8.x (8.4) 3.9+, 7.4 3.7+; and
# rpytest itself needs what packaging/pyproject.toml says (3.8+). Older ones
# are listed as not covered. An interpreter that is present but cannot make
# a venv, install pytest or pass the tests fails the stage.
#
# Budget: about 6 minutes on 2 cores for 3.8, 3.9, 3.10, 3.12 and 3.13. The
# oldest and the newest run the whole reduced battery (about two minutes
# each); the ones between run its compare_outcomes and process_identity.
#
#   scripts/pythons.sh                  every interpreter found
#   scripts/pythons.sh 3.9 3.13         those versions only (an error if missing)
#   scripts/pythons.sh --full [3.X...]  the whole reduced battery on each
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/battery.sh
full=0
[ "${1:-}" != --full ] || { full=1 && shift; }

# "IMPLEMENTATION X.Y.Z" of an interpreter, or nothing if it does not run
# (pyenv's shims fail for the versions that are not active).
probe() {
  "$1" -c 'import platform, sys; print(platform.python_implementation() + " %d.%d.%d" % sys.version_info[:3])' \
    2>/dev/null || true
}

# Its arguments, comma-separated.
list() {
  local out
  [ $# -gt 0 ] || { echo none; return; }
  out=$(printf '%s, ' "$@")
  echo "${out%, }"
}

# The supported pytest line (see battery.sh) for Python 3.MINOR, or nothing.
pytest_line() {
  if [ "$1" -ge 10 ]; then echo 9; elif [ "$1" -eq 9 ]; then echo 8; elif [ "$1" -ge 7 ]; then echo 7.4; fi
}

rpytest_min=$(sed -n 's/^requires-python = ">=3\.\([0-9][0-9]*\)"$/\1/p' packaging/pyproject.toml)
[ -n "$rpytest_min" ] || { echo "pythons.sh: no requires-python \">=3.N\" in packaging/pyproject.toml" >&2; exit 4; }
read -r _ main_version <<< "$(probe python3)"
main_minor=${main_version%.*}

candidates=()
if command -v pyenv > /dev/null; then pyenv_root=$(pyenv root); else pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}; fi
for dir in "$pyenv_root"/versions/*; do
  for name in python3 python; do
    if [ -x "$dir/bin/$name" ]; then candidates+=("$dir/bin/$name") && break; fi
  done
done
IFS=: read -r -a path_dirs <<< "$PATH"
for dir in "${path_dirs[@]}"; do
  for python in "$dir"/python3.*; do
    if [[ $python =~ /python3\.[0-9]+$ && -x $python ]]; then candidates+=("$python"); fi
  done
done

# One interpreter per minor version, not the main one's, in version order.
declare -A found=()
for python in "${candidates[@]}"; do
  read -r impl version <<< "$(probe "$python")"
  [ -n "${version:-}" ] || continue
  minor=${version%.*}
  [ "$minor" != "$main_minor" ] && [ -z "${found[$minor]:-}" ] || continue
  if [ "$impl" != CPython ]; then
    echo "== Python $version ($python): not covered: $impl, not CPython"
    continue
  fi
  found[$minor]="$version $python"
done
minors=()
[ ${#found[@]} -eq 0 ] || mapfile -t minors < <(printf '%s\n' "${!found[@]}" | sort -t. -k1,1n -k2,2n)
if [ $# -gt 0 ]; then
  for wanted in "$@"; do
    [ -n "${found[$wanted]:-}" ] || { echo "pythons.sh: no Python $wanted found (main: $main_minor)" >&2; exit 4; }
  done
  minors=("$@")
fi

# Those that a supported pytest and rpytest run on, with that pytest's line.
runnable=()
declare -A lines=()
for minor in "${minors[@]}"; do
  read -r version base <<< "${found[$minor]}"
  line=
  [ "${minor%%.*}" != 3 ] || line=$(pytest_line "${minor#3.}")
  if [ -z "$line" ]; then
    echo "== Python $version ($base): not covered: no supported pytest (9.x, 8.4, 7.4) runs on it"
  elif [ "${minor#3.}" -lt "$rpytest_min" ]; then
    echo "== Python $version ($base): not covered: rpytest needs Python 3.$rpytest_min+ (packaging/pyproject.toml)"
  else
    runnable+=("$minor")
    lines[$minor]=$line
  fi
done

# venv_start MINOR makes that interpreter's venv in the background: pip
# mostly waits on the network, so it overlaps the battery of the one before
# (one pip at a time); then `wait` for its pid, and its python is in
# $venvs/MINOR.python.
venvs=$(mktemp -d)
trap 'rm -rf "$venvs"' EXIT
declare -A venv_pids=()
venv_start() {
  local base
  read -r _ base <<< "${found[$1]}"
  RPYTEST_VENV_BASE="$base" scripts/venv.sh ".venv-matrix/python$1" "$(pytest_spec "${lines[$1]}")" \
    > "$venvs/$1.python" 2> "$venvs/$1.log" &
  venv_pids[$1]=$!
}

cargo build --release --quiet
covered=() failed=()
[ ${#runnable[@]} -eq 0 ] || venv_start "${runnable[0]}"
for i in "${!runnable[@]}"; do
  minor=${runnable[$i]}
  read -r version base <<< "${found[$minor]}"
  start=$SECONDS
  made=0
  wait "${venv_pids[$minor]}" || made=$?
  [ $((i + 1)) -eq ${#runnable[@]} ] || venv_start "${runnable[$((i + 1))]}"
  if [ $made != 0 ]; then
    cat "$venvs/$minor.log"
    echo "== Python $version ($base): FAILED: cannot make a venv with $(pytest_spec "${lines[$minor]}") and the" \
      "test tools (its output above)"
    failed+=("$version (venv)")
    continue
  fi
  python=$(cat "$venvs/$minor.python")
  # The oldest and the newest run the whole battery; between them, only
  # what depends most on Python: compare_outcomes and process_identity.
  # flag_compat (half the time) and shared_fixtures compare pytest's
  # rendering and internals, which the pytest matrix covers.
  tests=() depth="whole battery"
  if [ "$full" != 1 ] && [ "$i" -gt 0 ] && [ $((i + 1)) -lt ${#runnable[@]} ]; then
    tests=(compare_outcomes process_identity) depth="${tests[*]}"
  fi
  pytest=$("$python" -c 'import pytest; print(pytest.__version__)')
  echo "== Python $version, pytest $pytest ($python): $depth, pyworker/tests"
  passed=1
  reduced_battery "Python $version" "$python" "${tests[@]}" || passed=0
  "$python" -m pytest -q -p no:cacheprovider pyworker/tests || passed=0
  if [ $passed = 1 ]; then
    echo "== Python $version, pytest $pytest: passed in $((SECONDS - start))s"
    covered+=("$version (pytest $pytest)")
  else
    echo "== Python $version, pytest $pytest: FAILED in $((SECONDS - start))s"
    failed+=("$version (pytest $pytest)")
  fi
done
echo "== Python versions covered besides the main $main_version: $(list "${covered[@]}")"
if [ ${#failed[@]} -gt 0 ]; then
  echo "== Python versions FAILED: $(list "${failed[@]}")"
  exit 1
fi
