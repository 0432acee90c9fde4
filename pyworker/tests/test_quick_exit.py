"""The zygote's quick exit gives way to the interpreter's own whenever a
file is open for writing (a Python file object on it may hold data that
only freeing it would flush). Checked in a fresh interpreter: pytest's own
capture files are open here."""
import os
import subprocess
import sys

PYWORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir)

PROGRAM = """
import os, sys
from rpytest_worker.quick_exit import files_open_for_writing
mode, path = sys.argv[1:3] if len(sys.argv) > 2 else (None, None)
held = os.open(path, {"read": os.O_RDONLY, "write": os.O_WRONLY | os.O_APPEND | os.O_CREAT}[mode]) if mode else None
print(files_open_for_writing())
"""


def _answer(*args):
    env = dict(os.environ, PYTHONPATH=PYWORKER)
    out = subprocess.run([sys.executable, "-c", PROGRAM, *args], capture_output=True, text=True, env=env, check=True)
    return out.stdout.strip()


def test_a_file_open_for_writing_counts(tmp_path):
    assert _answer("write", str(tmp_path / "log.txt")) == "True"


def test_a_file_open_for_reading_does_not(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("x")
    assert _answer("read", str(path)) == "False"


def test_only_the_standard_streams_do_not():
    assert _answer() == "False"
