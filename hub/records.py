"""Change detection: keyed digests of record keys and content hashes, in the state store.

Keys are stored as keyed BLAKE2b digests scoped by pipeline and entity (a key may be an ID
number); content hashes are keyed 128-bit BLAKE2b hashes of each row (hub.frames.row_hashes),
so neither can confirm a guessed value without the keyring.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from hub.store.bulk import insert_all
from hub.store.models import BatchFingerprint, CanonicalRecord

LOOKUP_CHUNK = 500


class KeyDigester:
    """Keyed digests of record keys: lookups work, the keys never reach the table."""

    def __init__(self, key: bytes) -> None:
        self._key = key[:32]

    def digest_all(self, keys: Iterable[str], scope: str) -> list[str]:
        """Digests of ``keys`` within ``scope`` (pipeline and entity): unique across scopes."""
        key = self._key
        blake = hashlib.blake2b
        prefix = scope + "\x1f"
        return [blake((prefix + k).encode(), key=key, digest_size=16).hexdigest() for k in keys]


_UPSERT_COLUMNS = (
    "pipeline",
    "entity",
    "key_digest",
    "content_hash",
    "source_connector",
    "source_stream",
    "position",
    "run_id",
    "updated_at",
    "field_hashes",
)
_UPDATED = ("content_hash", "position", "run_id", "updated_at", "field_hashes")


def driver_timestamp(dialect: str) -> Any:
    """Now, in the form each driver writes into a timestamp column through ``exec_driver_sql``."""
    now: Any = datetime.now(UTC)
    if dialect == "sqlite":
        return now.strftime("%Y-%m-%d %H:%M:%S.%f")
    if dialect in ("mysql", "mariadb"):
        return now.replace(tzinfo=None)
    return now


_UPSERT_HEAD = f"INSERT INTO canonical_records ({', '.join(_UPSERT_COLUMNS)})"


def _upsert_tail(dialect: str) -> str:
    if dialect in ("mysql", "mariadb"):
        return " ON DUPLICATE KEY UPDATE " + ", ".join(f"{c} = VALUES({c})" for c in _UPDATED)
    return " ON CONFLICT (key_digest) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in _UPDATED)


class RecordIndex:
    """What was delivered before, for one pipeline and entity."""

    def __init__(self, pipeline: str, entity: str, source_connector: str, source_stream: str) -> None:
        self.pipeline, self.entity = pipeline, entity
        self.source_connector, self.source_stream = source_connector, source_stream
        self._empty: bool | None = None
        self.scope = f"{pipeline}\x1f{entity}"

    def is_empty(self, session: Session) -> bool:
        if self._empty is None or self._empty:
            count = session.execute(
                select(func.count())
                .select_from(CanonicalRecord)
                .where(CanonicalRecord.pipeline == self.pipeline, CanonicalRecord.entity == self.entity)
                .limit(1)
            ).scalar_one()
            self._empty = count == 0
        return self._empty

    def known_hashes(self, session: Session, digests: Sequence[str]) -> dict[str, str]:
        """content_hash by key digest, for the digests already delivered."""
        if self.is_empty(session):
            return {}
        found: dict[str, str] = {}
        for start in range(0, len(digests), LOOKUP_CHUNK):
            part = digests[start : start + LOOKUP_CHUNK]
            rows = session.execute(
                select(CanonicalRecord.key_digest, CanonicalRecord.content_hash).where(
                    CanonicalRecord.key_digest.in_(part)
                )
            )
            found.update({d: h for d, h in rows.tuples()})
        return found

    def stored_hashes(
        self, session: Session, digests: Sequence[str]
    ) -> dict[str, tuple[str, dict[str, Any] | None]]:
        """Content hash and field hashes (None if not kept) by key digest, for those delivered."""
        found: dict[str, tuple[str, dict[str, Any] | None]] = {}
        for start in range(0, len(digests), LOOKUP_CHUNK):
            part = digests[start : start + LOOKUP_CHUNK]
            rows = session.execute(
                select(
                    CanonicalRecord.key_digest, CanonicalRecord.content_hash, CanonicalRecord.field_hashes
                ).where(CanonicalRecord.key_digest.in_(part))
            )
            found.update({d: (h, f if isinstance(f, dict) else None) for d, h, f in rows.tuples()})
        return found

    def save(
        self,
        session: Session,
        digests: Sequence[str],
        hashes: Sequence[str],
        positions: Sequence[str],
        run_id: int,
        field_hashes: Sequence[str | None] | None = None,
    ) -> None:
        """Upsert what was delivered, with the driver's executemany (no ORM objects per row).

        ``field_hashes``: each record's keyed field hashes as JSON text (mapped streams;
        hub.changes), else NULL.
        """
        if not digests:
            return
        connection = session.connection()
        dialect = connection.dialect
        now = driver_timestamp(dialect.name)
        head = (self.pipeline, self.entity)
        tail = (self.source_connector, self.source_stream)
        fields = field_hashes if field_hashes is not None else [None] * len(digests)
        rows = [
            (*head, d, h, *tail, p[:500], run_id, now, f)
            for d, h, p, f in zip(digests, hashes, positions, fields, strict=True)
        ]
        on_conflict = _upsert_tail(dialect.name)
        for start in range(0, len(rows), 10000):
            insert_all(connection, _UPSERT_HEAD, rows[start : start + 10000], on_conflict)
        self._empty = False

    def has_fingerprint(self, session: Session, fingerprint: str) -> bool:
        return (
            session.execute(
                select(BatchFingerprint.rows).where(
                    tuple_(BatchFingerprint.pipeline, BatchFingerprint.stream, BatchFingerprint.fingerprint)
                    == (self.pipeline, self.entity, fingerprint)
                )
            ).first()
            is not None
        )

    def save_fingerprint(self, session: Session, fingerprint: str, rows: int, run_id: int) -> None:
        if session.get(BatchFingerprint, (self.pipeline, self.entity, fingerprint)) is None:
            session.add(
                BatchFingerprint(
                    pipeline=self.pipeline,
                    stream=self.entity,
                    fingerprint=fingerprint,
                    rows=rows,
                    run_id=run_id,
                )
            )

    def forget_fingerprints(self, session: Session) -> None:
        """An existing record changed: old batch digests may now describe stale content."""
        session.query(BatchFingerprint).filter(
            BatchFingerprint.pipeline == self.pipeline, BatchFingerprint.stream == self.entity
        ).delete(synchronize_session=False)
