"""What every worker process hub spawns does first: follow its parent out.

A ``ProcessPoolExecutor`` worker waits on its task queue, whose other end it also holds, so it
never sees its parent die: a sync killed with ``kill -9`` would leave its sealing and identity
workers idle for good. Every pool hub starts comes from :func:`process_pool`, whose workers
run a daemon thread that ends the worker when its parent is gone.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

#: How often a worker looks for its parent (seconds).
PARENT_CHECK_SECONDS = 0.5


def process_pool(
    workers: int, *, niceness: int = 0, setup: Callable[..., None] | None = None, args: tuple[Any, ...] = ()
) -> ProcessPoolExecutor:
    """A pool of spawned worker processes (no thread state forked) that exit with this process.

    Each worker runs ``niceness`` below this process, then ``setup(*args)`` once.
    """
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start,
        initargs=(os.getpid(), niceness, setup, args),
    )


def _start(parent: int, niceness: int, setup: Callable[..., None] | None, args: tuple[Any, ...]) -> None:
    if niceness and hasattr(os, "nice"):
        os.nice(niceness)
    threading.Thread(target=_exit_with, args=(parent,), name="hub-parent-watch", daemon=True).start()
    if setup is not None:
        setup(*args)


def _exit_with(parent: int) -> None:
    while True:
        time.sleep(PARENT_CHECK_SECONDS)
        if os.getppid() != parent:  # re-parented: the process that started this one is gone
            os._exit(1)
