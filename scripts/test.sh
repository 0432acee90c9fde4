#!/usr/bin/env bash
# The whole test suite: Rust unit and integration tests (which run the real
# binary against generated suites and compare with `python -m pytest`), the
# Python side's own tests, and real third-party suites from PyPI.
# Set RPYTEST_SKIP_THIRDPARTY=1 to skip the last (it downloads sdists).
set -euo pipefail
cd "$(dirname "$0")/.."
python=$(scripts/venv.sh)
export RPYTEST_TEST_PYTHON="$python"
cargo build --release
cargo test --release
"$python" -m pytest -q -p no:cacheprovider pyworker/tests
if [ "${RPYTEST_SKIP_THIRDPARTY:-0}" != 1 ]; then
  "$python" tests/thirdparty/run_thirdparty.py --python "$python" --rpytest target/release/rpytest
fi
