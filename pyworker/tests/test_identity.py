"""Tests for rpytest_worker.identity: the engine's variables are read once
and removed, the user's stay; a process made to look like ``python -m
pytest`` has pytest's ``__main__``, argv and path (checked in a fresh
interpreter: it rewrites ``__main__``)."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))

from rpytest_worker import identity

PYWORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir)


def test_takes_the_engines_variables_and_leaves_the_users():
    environ = {"RPYTEST_SOCKET": "/s", "RPYTEST_WORKER": "3", "RPYTEST_TIMEOUT": "5", "HOME": "/h"}
    env = identity.take_engine_env(environ)
    assert (env.socket, env.worker, env.role) == ("/s", "3", None)
    assert environ == {"RPYTEST_TIMEOUT": "5", "HOME": "/h"}
    assert identity.ENV is env


def test_shared_fixture_names():
    assert identity.EngineEnv({"RPYTEST_SHARED_FIXTURES": "a,,b"}).shared_fixture_names() == ["a", "b"]
    assert identity.EngineEnv().shared_fixture_names() == []


def test_looks_like_python_m_pytest(tmp_path):
    code = (
        f"import sys; sys.path.insert(0, {os.path.abspath(PYWORKER)!r}); import json, os\n"
        "from rpytest_worker import identity\n"
        "identity.masquerade(['-q', 'x'])\n"
        "main = sys.modules['__main__']\n"
        "print(json.dumps([main.__name__, main.__file__, main.__spec__.name, sys.argv,"
        " getattr(sys, 'orig_argv', [None, None])[1:],"
        " sys.path[0], any('pyworker' in p for p in sys.path)]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, "-q", "x"], cwd=tmp_path, capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr
    name, path, spec, argv, orig, first, ours = json.loads(out.stdout)
    assert (name, spec) == ("__main__", "pytest.__main__")
    assert path.endswith(os.path.join("pytest", "__main__.py"))
    assert argv == [path, "-q", "x"]
    # sys.orig_argv is 3.10+; masquerade must not invent it before.
    assert orig == (["-m", "pytest", "-q", "x"] if sys.version_info >= (3, 10) else [None])
    assert first == str(tmp_path)
    assert not ours
