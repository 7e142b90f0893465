"""`make test`: the whole suite, as three pytest processes side by side.

One pytest process keeps about one core busy: torch runs one thread in each (below),
compiling and the snippets' subprocesses are serial, and the site's checks mostly wait
on Chromium. So the suite runs as three groups at once, which fills both cores of a
2-core machine:

- the site and browser checks (two strict builds, then Chromium), started first;
- the tests that compile: models (``test_smollm2.py``, ``test_compile.py``), whose
  compiles take minutes on a cold cache, and the C++ kernels (``test_kernels.py``);
- everything else, whose output shows as it runs; the other groups' logs (kept in
  ``.cache/``) follow it, in order.

The compiling group is the longest chain of work that cannot be split: one compile after
another, about four minutes with a core to itself. The other two groups run at a lower
priority (``nice`` 10): while the compiling group runs they share the second core, then they
take both. At equal priority, three processes shared two cores evenly and the compiling group
finished last, well after the others (see CONTRIBUTING.md).

Each process's torch uses one thread (``OMP_NUM_THREADS=1``): with two threads each,
a process whose core is busy with another keeps its own two threads waiting for each
other at every operation (one test took 163 s instead of 10).
The run fails if any group fails; Ctrl-C stops them all. Arguments are passed to
every pytest.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / ".cache"
# The groups run in the background, each with its log; everything else in the foreground.
BACKGROUND = {
    "site-and-browser": ["tests/test_site.py", "tests/test_browser.py"],
    # With test_compile.py in "the rest", that group ran alone for its last two minutes; with
    # test_kernels.py (three builds of a kernel), the rest finished 100 s after this group.
    "compiling": ["tests/test_smollm2.py", "tests/test_compile.py", "tests/test_kernels.py"],
}


# The group on the longest path keeps its priority; the others yield to it.
FIRST = "compiling"
YIELDING = 10  # a nice value: a weight a tenth of the compiling group's


def pytest(args: list[str], nice: int = 0, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", *args], cwd=ROOT, env=env, preexec_fn=lambda: os.nice(nice), **kwargs
    )


def _stop(signum, frame):
    raise KeyboardInterrupt  # a SIGTERM (a CI timeout) stops the groups as Ctrl-C does


def main(args: list[str]) -> int:
    signal.signal(signal.SIGTERM, _stop)
    LOGS.mkdir(exist_ok=True)
    logs = {name: LOGS / f"tests-{name}.log" for name in BACKGROUND}
    # Process groups of their own: Ctrl-C reaches the foreground pytest alone, and each
    # group, with the builds, browsers and model processes it started, stops as one.
    background, rest = {}, None
    ignored = [f"--ignore={f}" for files in BACKGROUND.values() for f in files]
    try:
        for name, files in BACKGROUND.items():
            with logs[name].open("w", encoding="utf-8") as log:
                nice = 0 if name == FIRST else YIELDING
                background[name] = pytest([*files, *args], nice, stdout=log, stderr=subprocess.STDOUT, process_group=0)
        rest = pytest([*ignored, *args], YIELDING)
        statuses = {"the rest": rest.wait()}
        statuses.update({name: process.wait() for name, process in background.items()})
    except KeyboardInterrupt:
        if rest is not None:
            rest.terminate()  # Ctrl-C has stopped it already; a SIGTERM reached this process alone
        for process in background.values():
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:  # that group had finished
                pass
        return 130
    for name, files in BACKGROUND.items():
        print(f"\n=== {' '.join(files)}, run alongside (.cache/{logs[name].name}) ===", flush=True)
        sys.stdout.write(logs[name].read_text(encoding="utf-8"))
    failed = [name for name, status in statuses.items() if status != 0]
    if failed:
        print(f"\nFailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
