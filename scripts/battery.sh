# Sourced by scripts/matrix.sh (older pytest versions) and scripts/pythons.sh
# (other Python versions): the supported pytest lines and the reduced battery
# both run, kept in one place so the two stages test the same things.
# shellcheck source=scripts/skips.sh
source scripts/skips.sh

# pytest_spec LINE: the pip requirement for a supported pytest line (9, 8 or
# 7.4). "8" is the latest 8.x (8.4), the one rpytest supports.
pytest_spec() {
  case "$1" in
    9) echo "pytest>=9,<10" ;;
    8) echo "pytest>=8.4,<9" ;;
    7.4) echo "pytest>=7.4,<7.5" ;;
    *) echo "unknown pytest line $1 (use 9, 8 or 7.4)" >&2; return 4 ;;
  esac
}

# The reduced battery: the comparisons whose result can depend on pytest's or
# Python's version.
#   - compare_outcomes, with the suites that run at 1, 2 and 4 workers run
#     at 2 workers only, and without the tests of rpytest's own machinery
#     (spawn mode, crashing workers) or of plain pytest alone (the baseline);
#   - flag_compat (options whose output pytest renders differently by version);
#   - shared_fixtures (it works with pytest's fixture internals);
#   - process_identity (pytest's __main__, its parser's program name and
#     pytester differ by version);
#   - affected (--affected: its record rides pytest's collection hooks and
#     terminal counts, and Python's import machinery and audit hooks).
battery_tests=(compare_outcomes flag_compat shared_fixtures process_identity warm_selection affected)

# reduced_battery LABEL PYTHON [TEST...]: runs the battery's tests (or the
# TESTs named) with PYTHON as the test Python. Every test binary runs even
# when one fails (--no-fail-fast), so one run shows every failure; tests that
# skip themselves are counted and printed under LABEL.
reduced_battery() {
  local label=$1 python=$2 status=0 tests=() test
  shift 2
  [ $# -gt 0 ] || set -- "${battery_tests[@]}"
  for test in "$@"; do tests+=(--test "$test"); done
  RPYTEST_TEST_PYTHON="$python" cargo test --release --no-fail-fast "${tests[@]}" \
    -- --skip ::n1 --skip ::n4 --skip spawn_mode --skip crashing_worker --skip baseline_suites || status=$?
  report_skips "$label"
  return "$status"
}
