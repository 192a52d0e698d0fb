"""Retrying dead letters: records a destination refused go through it again."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import orjson
from sqlalchemy import select

from hub.project import Project, actor
from hub.store.models import AuditEntry, DeadLetter, utcnow


def retry_dead_letters(project: Project, ids: list[int] | None, pipeline: str | None) -> dict[str, Any]:
    """Replay open dead letters that hold a record; resolve those that now pass.

    Rows the source could not parse (no record, or a raw line) are left open: the fix is in
    the source, and the next sync reads them again.
    """
    from hub.engine import Sync, dead_letter_context

    query = select(DeadLetter).where(DeadLetter.status == "open").order_by(DeadLetter.id)
    if ids:
        query = query.where(DeadLetter.id.in_(ids))
    if pipeline:
        query = query.where(DeadLetter.pipeline == pipeline)
    by_pipeline: dict[str, dict[str, list[tuple[int, dict[str, Any]]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    skipped = 0
    with project.db.session() as session:
        for d in session.execute(query).scalars():
            if d.payload is None or d.destination is None:
                skipped += 1
                continue
            plain = project.keyring.open(
                d.payload, "dead_letters", dead_letter_context(d.pipeline, d.stream, d.position)
            )
            record = orjson.loads(plain)
            record["_hub_position"] = d.position
            by_pipeline[d.pipeline][d.stream].append((d.id, record))
    retried = resolved = 0
    runs = []
    for name, streams in by_pipeline.items():
        if name not in project.settings.pipelines:
            continue
        sync = Sync(project, name, trigger="manual")
        result, failed = sync.replay({s: [r for _, r in rows] for s, rows in streams.items()})
        runs.append(result.run_id)
        with project.db.session() as session:
            for stream, rows in streams.items():
                for dead_id, record in rows:
                    retried += 1
                    letter = session.get(DeadLetter, dead_id)
                    assert letter is not None
                    ok = record["_hub_position"] not in failed.get(stream, set())
                    if ok:
                        letter.status, letter.resolved_at = "resolved", utcnow()
                    elif letter.run_id != result.run_id:
                        # Rejected again for another reason: that is a new dead letter now.
                        letter.status, letter.resolved_at = "superseded", utcnow()
                    resolved += ok
            session.add(
                AuditEntry(
                    actor=actor(), action="deadletters.retry", target=name, details={"run_id": result.run_id}
                )
            )
    return {
        "retried": retried,
        "resolved": resolved,
        "still_failing": retried - resolved,
        "not_retriable": skipped,
        "runs": runs,
    }
