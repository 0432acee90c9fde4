"""rpytest's Python half: a pytest plugin package that the rpytest binary embeds.

The binary writes this package to a cache directory keyed by its content hash
and puts it on the interpreter's path, so the user's environment needs nothing
but pytest. Modules, one job each; imports go one way (``bootstrap`` imports
the roles, ``warm`` -> ``zygote`` -> ``worker`` -> ``collection``, and those the rest):

- ``bootstrap``:        where every process starts: picks its role, runs pytest.
- ``identity``:         takes the engine's variables; looks like ``python -m pytest``.
- ``prctl``:            ties each process's lifetime to the run (Linux prctl).
- ``pristine``:         the standard library bound before user code ran (tests patch it).
- ``protocol``:         the wire format: frames, every message each way, samples.
- ``msgpack_fallback``: pure-Python MessagePack, where ``msgpack`` is missing.
- ``zygote``:           the fork server: announces the collection, forks, reaps.
- ``warm``:             a zygote held by ``rpytest serve``: collects ahead, waits.
- ``fixture_order``:    pytest's fixture ordering of a warm session, worked out once.
- ``spawned``:          a worker that collects for itself instead of being forked.
- ``worker``:           runs the tests it is sent through pytest's runtest protocol.
- ``collection``:       what the engine learns from a collection (``collected``).
- ``reports``:          turns pytest reports into protocol records and back.
- ``sink``:             replays the run's reports into the zygote's own session
                        (junitxml, cache, plugins), which pytest then finishes.
- ``terminal_summary``: runs plugins' terminal summaries for the engine to print.
- ``shared_fixtures``:  session fixtures set up once before the fork.
- ``xdist_compat``:     what pytest-xdist gives users and plugins (-n, workerinput,
                        the node lifecycle hooks).
- ``fixtures``:         xdist's ``worker_id`` and ``testrun_uid`` fixtures.
- ``plugin_compat``:    plugins that need one process per session (cov, benchmark, syrupy).
- ``pytest_internals``: the one door into pytest's (and plugins') private names.
"""
