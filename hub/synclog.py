"""The sync log: runs, their per-stream counts and their events. Never personal data.

Messages are composed by hub from counts, names and positions; each one still passes
through :func:`hub.masking.mask_text` before it is stored, as a second line of defence.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from hub.leases import HOST
from hub.masking import mask_text
from hub.store import Database
from hub.store.models import Run, RunEvent, RunStat, utcnow

log = logging.getLogger("hub.sync")

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


@dataclass
class Counts:
    """How many records a stream (or destination) read, wrote, skipped or rejected."""

    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0

    def add(self, other: Counts) -> None:
        for key, value in asdict(other).items():
            setattr(self, key, getattr(self, key) + value)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class SyncLog:
    """Writes one run's rows: the run itself, its events, its counts."""

    def __init__(self, db: Database, pipeline: str, trigger: str, *, dry_run: bool = False) -> None:
        self.db = db
        self.pipeline = pipeline
        with db.session() as session:
            run = Run(
                pipeline=pipeline,
                trigger=trigger,
                status="running",
                dry_run=dry_run,
                host=HOST,
                pid=os.getpid(),
                counts={},
            )
            session.add(run)
            session.flush()
            self.run_id: int = run.id

    def event(self, level: str, kind: str, message: str, stream: str | None = None, **details: Any) -> None:
        message = mask_text(message)
        log.log(LEVELS[level], "[run %s] %s", self.run_id, message)
        with self.db.session() as session:
            session.add(
                RunEvent(
                    run_id=self.run_id,
                    level=level,
                    kind=kind,
                    stream=stream,
                    message=message,
                    details=_masked(details or {}),
                )
            )

    def heartbeat(self) -> None:
        with self.db.session() as session:
            run = session.get(Run, self.run_id)
            if run is not None:
                run.heartbeat_at = utcnow()

    def save_stats(self, stream: str, destination: str, counts: Counts) -> None:
        with self.db.session() as session:
            row = session.execute(
                select(RunStat).where(
                    RunStat.run_id == self.run_id,
                    RunStat.stream == stream,
                    RunStat.destination == destination,
                )
            ).scalar_one_or_none()
            if row is None:
                row = RunStat(run_id=self.run_id, stream=stream, destination=destination)
                session.add(row)
            for key, value in counts.as_dict().items():
                setattr(row, key, value)

    def finish(self, status: str, counts: Counts, error: str | None = None) -> None:
        with self.db.session() as session:
            run = session.get(Run, self.run_id)
            assert run is not None
            run.status = status
            run.finished_at = datetime.now(UTC)
            run.counts = counts.as_dict()
            run.error = mask_text(error) if error else None


def _masked(value: Any) -> Any:
    """Event details with every text masked (a plugin's warning may carry a value)."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    return value
