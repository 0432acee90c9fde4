"""rpytest's Python half: a pytest plugin package that the rpytest binary embeds.

The binary writes this package to a cache directory keyed by its content hash
and puts it on the interpreter's path, so the user's environment needs nothing
but pytest. Modules, one job each:

- ``protocol``:     the wire format (frames, message types, the codec choice).
- ``zygote``:       runs pytest's own session up to collection, then forks workers.
- ``worker``:       runs the tests it is sent through pytest's runtest protocol.
- ``reports``:      turns pytest reports into protocol records and back.
- ``warm``:         a zygote held by ``rpytest serve``: collects ahead, waits for a run.
- ``sink``:         replays the run's reports into the zygote's own session
                    (junitxml, cache, plugins), which pytest then finishes.
- ``shared_fixtures``: session fixtures set up once before the fork.
"""
