#!/usr/bin/env bash
# The plugin stage: popular pytest plugins installed from PyPI into a venv of
# their own (.venv-matrix/plugins), each compared under `python -m pytest`
# and `rpytest -n 1/2/4` by tests/plugins/run_plugins.py (and the integration
# tests that need them, at the end). The versions are
# the ones docs/compatibility.md's plugin table names.
set -euo pipefail
cd "$(dirname "$0")/.."
plugins="pytest-xdist msgpack pytest-timeout pytest-cov==7.1.0 pytest-html==4.2.0 pytest-json-report==1.5.0 \
syrupy==7.0.2 pytest-benchmark==5.3.1 hypothesis==6.170.17 pytest-django==4.11.1 Django==5.2.8 \
pytest-instafail==0.5.0 pytest-sugar==1.1.1 anyio==4.16.0 trio==0.35.0 \
pytest-randomly==5.1.0 pytest-rerunfailures==16.7"
python=$(scripts/venv.sh .venv-matrix/plugins "pytest>=9,<10" "$plugins")
"$python" tests/plugins/run_plugins.py --python "$python" --rpytest target/release/rpytest
# The integration tests that need these plugins in the test Python (they
# skip themselves in the main battery, whose venv has none): spawned
# workers with pytest-randomly's seed and pytest-rerunfailures' thread.
source scripts/skips.sh
RPYTEST_TEST_PYTHON="$python" cargo test --release --quiet --test spawned_workers
report_skips "plugin-dependent tests"
# The accessors of the plugins' private state (pytest_internals.py), which
# skip themselves in the main run, whose venv has none of these plugins.
"$python" -m pytest -q -p no:cacheprovider -p no:randomly pyworker/tests/test_pytest_internals.py -k test_plugin_
