"""Worker processes follow the process that started them out; garbage collection while records move (hub.workers)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.conftest import process_running

#: A parent that starts one worker (hub.workers.process_pool, niceness 10), prints its pid, waits.
PARENT = """
import os, time
from hub.workers import process_pool
pool = process_pool(1, niceness=10)
print(pool.submit(os.getpid).result(), flush=True)
time.sleep(600)
"""


def test_a_worker_exits_when_its_parent_is_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    worker = int(parent.stdout.readline())
    assert worker != parent.pid and process_running(worker)
    assert os.getpriority(os.PRIO_PROCESS, worker) >= os.getpriority(os.PRIO_PROCESS, 0) + 10
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while process_running(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not process_running(worker), "the worker outlived its parent"


def test_a_sync_collects_garbage_rarely_and_puts_the_collector_back() -> None:
    """Passes every YOUNG_PASS_EVERY new containers while it runs; the thresholds as they were after."""
    import gc

    from hub.engine import fewer_collections
    from hub.workers import YOUNG_PASS_EVERY

    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold()[0] == max(before[0], YOUNG_PASS_EVERY)
        assert gc.get_freeze_count() > 0  # what was alive is out of every pass
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
