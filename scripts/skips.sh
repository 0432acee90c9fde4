# Sourced by the test scripts: tests that skip themselves at run time
# append their reason to $RPYTEST_SKIP_LOG (tests/common: note_skip);
# `report_skips LABEL` prints how many did, and why, so a skipped check
# never passes as a silent "ok".
export RPYTEST_SKIP_LOG
RPYTEST_SKIP_LOG=$(mktemp)

report_skips() {
  local count
  count=$(grep -c . "$RPYTEST_SKIP_LOG" || true)
  echo "== $1: $count test(s) skipped themselves at run time"
  sort "$RPYTEST_SKIP_LOG" | uniq -c | sed 's/^/   /'
  : > "$RPYTEST_SKIP_LOG"
}
