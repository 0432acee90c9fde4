#!/usr/bin/env bash
# Builds rpytest and runs it on the bundled example suite with 2 workers.
# The example has a deliberate failure, so rpytest exits 1, like pytest would.
set -uo pipefail
cd "$(dirname "$0")/.."
python=$(scripts/venv.sh) || exit 1
cargo build --release --quiet || exit 1
cd examples/demo && ../../target/release/rpytest --python "$python" -n 2 "$@"
