#!/usr/bin/env bash
# pyworker/rpytest_worker/pytest_internals.py is the one door into pytest's
# internals: no other worker module may name `_pytest` (add an accessor there).
cd "$(dirname "$0")/.." || exit 4
others=$(grep -rl --include='*.py' _pytest pyworker/rpytest_worker | grep -vx pyworker/rpytest_worker/pytest_internals.py)
[ -z "$others" ] || { printf '_pytest named outside pytest_internals.py:\n%s\n' "$others" >&2; exit 1; }
