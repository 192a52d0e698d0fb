"""What every worker process hub spawns does first: follow its parent out.

A ``ProcessPoolExecutor`` worker waits on its task queue, whose other end it also holds, so it
never sees its parent die: a sync killed with ``kill -9`` would leave its sealing and identity
workers idle for good. Every pool hub starts comes from :func:`process_pool`, whose workers
run a daemon thread that ends the worker when its parent is gone.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

#: How often a worker looks for its parent (seconds).
PARENT_CHECK_SECONDS = 0.5
#: New containers between two passes of the young-generation garbage collector while records
#: move (CPython's default: 700). A chunk's records are alive until it is mapped (50,000
#: Greenhouse candidates are about 1.5 million containers): passes every 50,000 walked them
#: again and again (1.2 s of a 100,000-candidate sync's 20 s of CPU); at this size most are
#: freed by reference counting before any pass sees them.
YOUNG_PASS_EVERY = 2_000_000


def collect_rarely() -> tuple[int, int, int]:
    """Freeze what is alive now out of every pass and collect garbage rarely; returns the old thresholds.

    For a sync's process while it runs and for its worker processes for good: what they hold
    from then on (modules, keys, config) stays, and the containers of records come and go.
    """
    threshold = gc.get_threshold()
    gc.freeze()
    # The middle generation every 100 young passes, not 10: each walks the chunk of records alive.
    gc.set_threshold(max(threshold[0], YOUNG_PASS_EVERY), max(threshold[1], 100), threshold[2])
    return threshold


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
