"""Time from a save to the rerun under `rpytest --watch`.

Usage: watch_latency.py RPYTEST SUITE [--edits N] [--module REL] [-- ARGS...]

Starts `RPYTEST --watch -q ARGS` in SUITE (through pipes, so its lines are
plain), waits for the first run and the warm daemon, then saves MODULE
(default: the first .py file that is not a test) N times (default 10), as
an editor does (a temporary file renamed over it). For each save it reads
the watch's lines and prints, in seconds after the save:

  start   the watch printed "running" (the debounce and the event's way in);
  result  the watch printed the run's counts;
  run     the run's own "in X.XXs" (its session, as pytest times it).

result - start - run is the child's start and end: the process, its
daemon handover and the closing report. The medians close the output.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

PREFIX = "rpytest --watch: "


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("rpytest")
    parser.add_argument("suite")
    parser.add_argument("--edits", type=int, default=10)
    parser.add_argument("--module")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    opts = parser.parse_args(argv[:split])
    opts.args = argv[split + 1 :]
    module = opts.module or next(
        name for name in sorted(os.listdir(opts.suite)) if name.endswith(".py") and not name.startswith("test_")
    )
    path = os.path.join(opts.suite, module)
    runtime = tempfile.mkdtemp(prefix="rpytest-rt-")
    env = dict(os.environ, RPYTEST_RUNTIME_DIR=runtime)
    watch = subprocess.Popen(
        [opts.rpytest, "--watch", "-q", *opts.args],
        cwd=opts.suite,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines = []
    arrived = threading.Condition()

    def read():
        for line in watch.stdout:
            with arrived:
                lines.append((time.monotonic(), line.rstrip("\n")))
                arrived.notify_all()

    threading.Thread(target=read, daemon=True).start()

    def wait_for(pattern, start):
        with arrived:
            while True:
                for i in range(start, len(lines)):
                    if re.search(pattern, lines[i][1]):
                        return i
                if not arrived.wait(timeout=120):
                    sys.exit(f"timed out waiting for {pattern!r}")

    with open(path) as f:
        original = f.read()
    at = wait_for(f"^{PREFIX}watching", 0)
    # Two saves first: the first warm session is built after the first run.
    samples = []
    for edit in range(opts.edits + 2):
        source = original + f"\n_WATCH_EDIT = {edit}\n"
        with open(path + ".saving~", "w") as f:
            f.write(source)
        saved = time.monotonic()
        os.rename(path + ".saving~", path)
        start = wait_for(f"^{PREFIX}running", at + 1)
        result = wait_for(f"^{PREFIX}.* in [0-9.]+s$", start)
        at = wait_for(f"^{PREFIX}watching", result)
        run = float(re.search(r" in ([0-9.]+)s$", lines[result][1]).group(1))
        sample = (lines[start][0] - saved, lines[result][0] - saved, run)
        if edit >= 2:
            samples.append(sample)
            print("start %.3f  result %.3f  run %.3f  (%s)" % (*sample, lines[result][1][len(PREFIX) :]))
    with open(path, "w") as f:
        f.write(original)
    watch.stdin.write("q\n")
    watch.stdin.close()
    watch.wait(timeout=60)
    start, result, run = (statistics.median(s[i] for s in samples) for i in range(3))
    print(f"median of {len(samples)}: start {start:.3f}s, result {result:.3f}s, run {run:.3f}s")
    print(f"  child start and end (result - start - run): {result - start - run:.3f}s")


if __name__ == "__main__":
    main()
