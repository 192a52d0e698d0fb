"""What every worker process hub spawns does first: follow its parent out.

A ``ProcessPoolExecutor`` worker waits on its task queue, whose other end it also holds, so it
never sees its parent die: a sync killed with ``kill -9`` would leave its sealing and identity
workers idle for good. A daemon thread in each worker checks its parent and ends the worker
when the parent is gone.
"""

from __future__ import annotations

import os
import threading
import time

#: How often a worker looks for its parent (seconds).
PARENT_CHECK_SECONDS = 0.5


def start_worker(parent: int, niceness: int = 0) -> None:
    """Initializer of a worker process: exit with ``parent``, run ``niceness`` below it."""
    if niceness and hasattr(os, "nice"):
        os.nice(niceness)
    threading.Thread(target=_exit_with, args=(parent,), name="hub-parent-watch", daemon=True).start()


def _exit_with(parent: int) -> None:
    while True:
        time.sleep(PARENT_CHECK_SECONDS)
        if os.getppid() != parent:  # re-parented: the process that started this one is gone
            os._exit(1)
