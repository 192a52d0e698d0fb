"""Change detection: keyed digests of record keys and content hashes, in the state store.

Keys are stored as keyed BLAKE2b digests (they may be ID numbers); content hashes are
two independent 64-bit pandas row hashes, salted with the column set, computed per chunk.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import and_, func, insert, select, tuple_
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from hub.connectors import META_PREFIX
from hub.store.models import BatchFingerprint, CanonicalRecord

LOOKUP_CHUNK = 500


def data_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if not str(c).startswith(META_PREFIX)]


def record_keys(frame: pd.DataFrame, primary_key: Sequence[str]) -> pd.Series:
    """The key of each row as text (parts joined by U+001F); empty where a part is missing."""
    parts = [frame[c].astype("string").fillna("").str.strip() for c in primary_key]
    if len(parts) == 1:
        return parts[0]
    joined = parts[0]
    for part in parts[1:]:
        joined = joined + "\x1f" + part
    missing = np.logical_or.reduce([p.eq("").to_numpy() for p in parts])
    return joined.mask(missing, "")


def content_hashes(frame: pd.DataFrame) -> np.ndarray:
    """A 128-bit hex hash per row over the data columns, salted with their names."""
    cols = sorted(data_columns(frame))
    sub = frame[cols].astype("string")
    salt = hashlib.sha256("\x1f".join(cols).encode()).hexdigest()
    low = pd.util.hash_pandas_object(sub, index=False, hash_key=salt[:16]).to_numpy()
    high = pd.util.hash_pandas_object(sub, index=False, hash_key=salt[16:32]).to_numpy()
    return np.char.add(np.char.mod("%016x", high), np.char.mod("%016x", low))


class KeyDigester:
    """Keyed digests of record keys: lookups work, the keys never reach the table."""

    def __init__(self, key: bytes) -> None:
        self._key = key[:32]

    def digest_all(self, keys: Iterable[str]) -> list[str]:
        key = self._key
        blake = hashlib.blake2b
        return [blake(k.encode(), key=key, digest_size=16).hexdigest() for k in keys]


def _upsert_statement(session: Session, rows: list[dict[str, Any]]) -> Any:
    dialect = session.get_bind().dialect.name
    table = CanonicalRecord.__table__
    columns = ("content_hash", "position", "run_id", "updated_at")
    if dialect == "sqlite":
        stmt = sqlite_insert(table)
        return stmt.on_conflict_do_update(
            index_elements=["pipeline", "entity", "key_digest"],
            set_={c: stmt.excluded[c] for c in columns},
        )
    if dialect == "postgresql":
        pstmt = pg_insert(table)
        return pstmt.on_conflict_do_update(
            index_elements=["pipeline", "entity", "key_digest"],
            set_={c: pstmt.excluded[c] for c in columns},
        )
    if dialect in ("mysql", "mariadb"):
        mstmt = mysql_insert(table)
        return mstmt.on_duplicate_key_update({c: mstmt.inserted[c] for c in columns})
    return insert(table)


class RecordIndex:
    """What was delivered before, for one pipeline and entity."""

    def __init__(self, pipeline: str, entity: str, source_connector: str, source_stream: str) -> None:
        self.pipeline, self.entity = pipeline, entity
        self.source_connector, self.source_stream = source_connector, source_stream
        self._empty: bool | None = None

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
                    and_(
                        CanonicalRecord.pipeline == self.pipeline,
                        CanonicalRecord.entity == self.entity,
                        CanonicalRecord.key_digest.in_(part),
                    )
                )
            )
            found.update({d: h for d, h in rows.tuples()})
        return found

    def save(
        self, session: Session, digests: Sequence[str], hashes: Sequence[str], positions: Sequence[str], run_id: int
    ) -> None:
        if not digests:
            return
        now = datetime.now(UTC)
        rows = [
            {
                "pipeline": self.pipeline,
                "entity": self.entity,
                "key_digest": d,
                "content_hash": h,
                "source_connector": self.source_connector,
                "source_stream": self.source_stream,
                "position": p[:500],
                "run_id": run_id,
                "updated_at": now,
            }
            for d, h, p in zip(digests, hashes, positions, strict=True)
        ]
        statement = _upsert_statement(session, rows)
        for start in range(0, len(rows), 5000):
            session.execute(statement, rows[start : start + 5000])
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
                    pipeline=self.pipeline, stream=self.entity, fingerprint=fingerprint, rows=rows, run_id=run_id
                )
            )

    def forget_fingerprints(self, session: Session) -> None:
        """An existing record changed: old batch digests may now describe stale content."""
        session.query(BatchFingerprint).filter(
            BatchFingerprint.pipeline == self.pipeline, BatchFingerprint.stream == self.entity
        ).delete(synchronize_session=False)
