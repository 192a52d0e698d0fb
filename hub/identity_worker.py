"""Identity resolution for a sync: in the sync's writer thread, or beside it in a process.

Resolving a first sync's people (blind indexes, sealing, about ten state-store rows a person)
costs about as much CPU as reading and mapping them, and in the sync's own process it holds
the GIL they need. So a large chunk's people are handed to a worker process as soon as the
chunk is prepared, and the chunk's commit waits for them before it saves the checkpoint, as
before: after a crash the chunk is read and resolved again (resolution is idempotent).
One worker resolves chunks in the order they were handed over, so a person met in two
chunks is merged in source order. Small chunks (a webhook, a test) are resolved in-thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hub.errors import RetriableSyncError
from hub.workers import collect_rarely

if TYPE_CHECKING:
    import pandas as pd

    from hub.crypto.keyring import KeyringSpec
    from hub.identity import IdentityConfig, IdentityResolver
    from hub.project import Project
    from hub.store.db import Database

#: Chunks with at least this many people are resolved in the worker process.
PARALLEL_PEOPLE = 5_000
#: How long a resolution waits for another pipeline's resolver before the sync retries.
BUSY_SECONDS = 600


def source_people(source: str, rows: pd.DataFrame, remote_id: str, prefix: str) -> list[Any]:
    """The people of a mapped chunk: its remote id and identity columns (``prefix``-named)."""
    from hub.frames import arrow
    from hub.identity import SourcePerson

    columns = [c for c in rows.columns if str(c).startswith(prefix)]
    now = datetime.now(UTC)
    # Column by column through Arrow: DataFrame.to_dict boxes every value through pandas.
    values = [(str(c)[len(prefix) :], arrow(rows[c]).to_pylist()) for c in columns]
    people = []
    for i, remote in enumerate(arrow(rows[remote_id]).to_pylist()):
        fields = {name: v for name, column in values if (v := column[i]) not in (None, "")}
        people.append(SourcePerson(source, str(remote), now, fields))
    return people


def resolve_people(
    resolver: IdentityResolver, db: Database, people: list[Any], sleep: Callable[[float], None]
) -> dict[str, int]:
    """Resolve ``people`` under the state store's identity lease; how many of each action.

    One resolver at a time per state store: two pipelines meeting the same new person at
    once must not create it twice.
    """
    from hub.leases import LeaseHolder

    actions: dict[str, int] = {}
    if not people:
        return actions
    lease = LeaseHolder(db, "identity", ttl=120)
    deadline = time.monotonic() + BUSY_SECONDS
    while not lease.try_acquire():
        if time.monotonic() > deadline:
            raise RetriableSyncError("identity resolution stayed busy (another pipeline) for 10 minutes")
        sleep(0.2)
    try:
        for resolution in resolver.resolve(people):
            actions[resolution.action] = actions.get(resolution.action, 0) + 1
    finally:
        lease.release()
    return actions


@dataclass(frozen=True)
class ResolverSpec:
    """What the worker process needs to build the sync's resolver over its own connection."""

    database_url: str
    keyring: KeyringSpec
    config: IdentityConfig


#: the worker process's resolver, built once by :func:`_start`
_worker: tuple[IdentityResolver, Database] | None = None


def _start(spec: ResolverSpec) -> None:
    global _worker
    from hub.identity import IdentityResolver
    from hub.store.db import Database

    db = Database(spec.database_url, auto_upgrade=False)  # the sync's process migrated it
    _worker = (IdentityResolver(db, spec.keyring.open(db), spec.config), db)
    # As in the sync's process (hub.engine.fewer_collections): a chunk's people are short-lived
    # containers by the hundred thousand, and what the worker holds from now on stays.
    collect_rarely()


def _resolve_in_worker(source: str, rows: pd.DataFrame, remote_id: str, prefix: str) -> dict[str, int]:
    assert _worker is not None, "the identity worker was not started"
    resolver, db = _worker
    try:
        return resolve_people(resolver, db, source_people(source, rows, remote_id, prefix), time.sleep)
    finally:
        resolver.keyring.flush_counters()  # the nonce budget counts what this process sealed


def _ready() -> None:
    """Nothing: submitted once so that the worker process starts (and imports) early."""


class IdentityResolution:
    """A sync's identity resolution: :meth:`submit` a chunk, then wait on what it returns."""

    def __init__(self, project: Project, sleep: Callable[[float], None] = time.sleep) -> None:
        self.project = project
        self.sleep = sleep
        self._resolver: IdentityResolver | None = None
        self._pool: Executor | None = None

    def resolver(self) -> IdentityResolver:
        from hub.identity import IdentityResolver

        if self._resolver is None:
            self._resolver = IdentityResolver.for_project(self.project, self.project.identity_config)
        return self._resolver

    def _parallel(self, people: int) -> Executor | None:
        db = self.project.db
        if people < PARALLEL_PEOPLE or db.engine.url.database in (None, "", ":memory:"):
            return None
        if self._pool is None:
            from hub.workers import process_pool

            resolver = self.resolver()  # creates the data keys here, before the worker needs them
            spec = ResolverSpec(
                db.engine.url.render_as_string(hide_password=False),
                resolver.keyring.spec(),
                resolver.config,
            )
            # one worker: chunks are resolved in the order they came
            self._pool = process_pool(1, setup=_start, args=(spec,))
        return self._pool

    def warm(self, people: int) -> None:
        """Start the worker now if a chunk of ``people`` will go to it (it imports, then waits)."""
        if self._pool is None and (pool := self._parallel(people)) is not None:
            pool.submit(_ready)

    def submit(self, source: str, rows: pd.DataFrame, remote_id: str, prefix: str) -> Future[dict[str, int]]:
        """Start resolving ``rows`` now (worker) or return a future that resolves on ``result()``."""
        pool = self._parallel(len(rows))
        if pool is not None:
            return pool.submit(_resolve_in_worker, source, rows, remote_id, prefix)
        return _Deferred(
            lambda: resolve_people(
                self.resolver(), self.project.db, source_people(source, rows, remote_id, prefix), self.sleep
            )
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class _Deferred(Future[dict[str, int]]):
    """A resolution run in the thread that asks for its result (small chunks)."""

    def __init__(self, work: Callable[[], dict[str, int]]) -> None:
        super().__init__()
        self._work: Callable[[], dict[str, int]] | None = work

    def result(self, timeout: float | None = None) -> dict[str, int]:
        work, self._work = self._work, None
        if work is not None:
            try:
                self.set_result(work())
            except Exception as exc:  # noqa: BLE001 - handed to the caller by super().result()
                self.set_exception(exc)
        return super().result(timeout)
