"""Change events: which canonical records a sync created or updated, and which fields changed.

For a mapped stream (a mapping turns source records into a canonical entity) every delivered
record has, besides its content hash, a short keyed hash of each field with a value
(``canonical_records.field_hashes``): 12 hex characters of a SipHash-2-4 keyed per field from
the content-hash secret, computed a column at a time. Identity fields (the mapping's
``identity:`` section, never written to a destination) count as fields named
``identity.<name>``, in the content hash as well, so a corrected ID number alone makes the
record *updated* and sends it through identity resolution again.

When a chunk commits, each record it created or changed gets a row in ``change_events``:
``created`` (its changed fields: every field with a value) or ``updated`` (the fields whose
hash differs, including fields that gained or lost their value). Field names only, never
values; the record's id (its source key) is sealed with context
``("change_events", key_digest)``. A record re-delivered with the same field hashes (a new
destination, a full refresh, an edited but equivalent mapping) is not a change and has no
event. A record saved before field hashes existed lists all its fields.

The events are inserted in the transaction that saves the chunk's hashes and checkpoint: a
crash before it loses nothing (the chunk is replayed and emits them then), a crash after it
replays nothing that changed (the stored hashes now match), so every change has exactly one
event. Plugins get them after the commit through the ``hub_records_changed`` hook (at most
once: a crash between commit and hook skips the hook, never the row); ``hub changes list
--after ID`` reads the table itself.

Streams without a mapping are copies of a vendor's table, not canonical entities: they have
no field hashes and emit no change events.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.frames import META_PREFIX, arrow, row_hashes
from hub.mapping.executor import IDENTITY_PREFIX
from hub.records import RecordIndex, driver_timestamp
from hub.store.bulk import insert_all
from hub.store.models import ChangeEvent

#: Change events name identity fields ``identity.<field>``.
IDENTITY_FIELD_PREFIX = "identity."
#: Hex characters kept of each field hash (48 bits: enough to tell two values apart).
FIELD_HASH_CHARS = 12
CREATED, UPDATED = "created", "updated"
_SLICE = 10_000
#: byte -> its two hex digits, as one uint16 (so a lookup writes both)
_HEX_PAIRS = np.array([f"{i:02x}" for i in range(256)], dtype="S2").view(np.uint16)


def field_name(column: str) -> str:
    """The name a change event uses for a column of a mapped chunk."""
    if column.startswith(IDENTITY_PREFIX):
        return IDENTITY_FIELD_PREFIX + column[len(IDENTITY_PREFIX) :]
    return column


def hashed_columns(frame: pd.DataFrame, key_column: str) -> dict[str, str]:
    """Columns of a mapped chunk that are fields (``column -> field name``), sorted by name."""
    found = {
        str(c): field_name(str(c))
        for c in frame.columns
        if str(c) != key_column and (str(c).startswith(IDENTITY_PREFIX) or not str(c).startswith(META_PREFIX))
    }
    return dict(sorted(found.items(), key=lambda item: item[1]))


def content_hashes(frame: pd.DataFrame, secret: bytes) -> list[str]:
    """:func:`hub.frames.row_hashes` of a mapped chunk, its identity fields included."""
    renamed = {c: field_name(str(c)) for c in frame.columns if str(c).startswith(IDENTITY_PREFIX)}
    return row_hashes(frame.rename(columns=renamed) if renamed else frame, secret)


def _one_array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _pieces(prefix: bytes, hashes: np.ndarray, valid: pa.Array | None) -> pa.Array:
    """``prefix`` + the top ``FIELD_HASH_CHARS`` hex digits of each hash + ``"``, one Arrow
    string per row (null where ``valid`` is false), laid out in numpy in one pass."""
    n, width = len(hashes), len(prefix) + FIELD_HASH_CHARS + 1
    data = np.empty((n, width), dtype=np.uint8)
    data[:, : len(prefix)] = np.frombuffer(prefix, dtype=np.uint8)
    top = hashes.astype(">u8").view(np.uint8).reshape(-1, 8)[:, : FIELD_HASH_CHARS // 2]
    data[:, len(prefix) : width - 1] = _HEX_PAIRS[top].view(np.uint8).reshape(n, FIELD_HASH_CHARS)
    data[:, width - 1] = ord('"')
    offsets = np.arange(0, width * (n + 1), width, dtype=np.int32)
    validity = None if valid is None else valid.buffers()[1]
    nulls = -1 if valid is not None else 0
    return pa.Array.from_buffers(
        pa.string(), n, [validity, pa.py_buffer(offsets), pa.py_buffer(data)], null_count=nulls
    )


class FieldHasher:
    """Keyed hashes of each field of each row, vectorised per column."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._keys: dict[str, str] = {}
        self._names: dict[tuple[tuple[str, ...], bytes], str] = {}

    def key(self, name: str) -> str:
        """The field's 16-character SipHash key (96 bits), derived from the secret and its name."""
        key = self._keys.get(name)
        if key is None:
            digest = hmac.new(self._secret, b"field-hash\x00" + name.encode(), hashlib.sha256).digest()
            key = self._keys[name] = base64.b64encode(digest).decode()[:16]
        return key

    def hash_values(self, name: str, values: pa.Array) -> np.ndarray:
        """64-bit keyed hashes (SipHash-2-4) of a column's values; nulls hash as empty text."""
        texts = pc.fill_null(values, "").to_numpy(zero_copy_only=False) if values.null_count else None
        if texts is None:
            texts = values.to_numpy(zero_copy_only=False)
        return pd.util.hash_array(texts, hash_key=self.key(name), categorize=False)

    def hash_frame(self, frame: pd.DataFrame, key_column: str) -> tuple[list[str], list[str]]:
        """Per row: its field hashes (a JSON object, fields with a value only) and the names of
        those fields (a JSON list), both as text, ready for the state store."""
        n = len(frame)
        if not n:
            return [], []
        names = tuple(hashed_columns(frame, key_column).items())
        if not names:
            return ["{}"] * n, ["[]"] * n
        columns = {column: _one_array(arrow(frame[column])) for column, _ in names}
        present = np.ones((n, len(names)), dtype=bool)  # [row, i]: field i has a value
        hashes: list[str] = []
        for start in range(0, n, _SLICE):  # slices: the intermediate arrays stay small
            parts: list[pa.Array] = []
            for i, (column, name) in enumerate(names):
                values = columns[column].slice(start, _SLICE)
                valid = pc.is_valid(values) if values.null_count else None
                prefix = orjson.dumps(name) + b':"'
                parts.append(_pieces(prefix, self.hash_values(name, values), valid))
                if valid is not None:
                    present[start : start + len(values), i] = valid.to_numpy(zero_copy_only=False)
            joined = (
                parts[0]
                if len(parts) == 1
                else pc.binary_join_element_wise(*parts, ",", null_handling="skip")
            )
            hashes += pc.binary_join_element_wise("{", pc.fill_null(joined, ""), "}", "").to_pylist()
        # A chunk has few combinations of present fields: one shared JSON text each.
        packed = np.packbits(present, axis=1)
        patterns, inverse = np.unique(packed.view(f"V{packed.shape[1]}").ravel(), return_inverse=True)
        fields = tuple(name for _, name in names)
        lists = [self._field_list(fields, bytes(pattern)) for pattern in patterns]
        return hashes, [lists[j] for j in inverse.tolist()]

    def _field_list(self, fields: tuple[str, ...], pattern: bytes) -> str:
        """The JSON list of the ``fields`` whose bit is set in ``pattern`` (np.packbits order)."""
        text = self._names.get((fields, pattern))
        if text is None:
            bits = np.unpackbits(np.frombuffer(pattern, dtype=np.uint8))[: len(fields)]
            text = orjson.dumps([name for name, bit in zip(fields, bits, strict=True) if bit]).decode()
            self._names[(fields, pattern)] = text
        return text


@dataclass(frozen=True)
class Change:
    """One change event, as the ``hub_records_changed`` hook gets it.

    ``record_id`` is the record's source key in clear (a candidate id, but possibly an ID
    number): never log it. Everything else holds no personal data.
    """

    id: int
    kind: str
    pipeline: str
    stream: str
    entity: str
    key_digest: str
    changed_fields: tuple[str, ...]
    record_id: str = field(repr=False)


@dataclass
class PreparedChanges:
    """What a prepared chunk of a mapped stream carries for its change events, per row it
    writes: field hashes and the names of the fields with a value (JSON text), the record's
    key, and the key sealed for ``change_events.record_id``."""

    field_hashes: list[str]
    field_names: list[str]
    keys: list[str]
    sealed_ids: list[bytes]


def _changed(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    if old is None:  # saved before field hashes existed: every field may have changed
        return sorted(new)
    return sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))


_EVENT_COLUMNS = (
    "run_id",
    "pipeline",
    "stream",
    "entity",
    "kind",
    "key_digest",
    "record_id",
    "changed_fields",
    "created_at",
)
_INSERT_HEAD = f"INSERT INTO change_events ({', '.join(_EVENT_COLUMNS)})"
#: what a change event's sealed record id is bound to, with the event's key digest last
_RECORD_ID_CONTEXT = ("change_events",)


class ChangeRecorder:
    """Decides a chunk's change events and inserts them in the caller's transaction."""

    def __init__(self, keyring: Any, secret: bytes, pipeline: str) -> None:
        self.keyring = keyring
        self.pipeline = pipeline
        self.hasher = FieldHasher(secret)

    def seal_record_id(self, key: str, key_digest: str) -> bytes:
        return bytes(self.keyring.seal_each([key], "personal", _RECORD_ID_CONTEXT, [key_digest])[0])

    def prepare(self, frame: pd.DataFrame, digests: Sequence[str], key_column: str) -> PreparedChanges:
        """Field hashes and sealed ids of the rows a chunk writes (while the chunk before commits)."""
        hashes, names = self.hasher.hash_frame(frame, key_column)
        keys = frame[key_column].astype(str).tolist()
        sealed = self.keyring.seal_each(keys, "personal", _RECORD_ID_CONTEXT, digests)
        return PreparedChanges(hashes, names, keys, sealed)

    def record(
        self,
        session: Session,
        index: RecordIndex,
        changes: PreparedChanges,
        *,
        keep: Sequence[int],
        digests: Sequence[str],
        hashes: Sequence[str],
        is_new: Sequence[bool],
        run_id: int,
        stream: str,
        entity: str,
        full_refresh: bool,
        notices: bool = False,
    ) -> tuple[int, list[Change]]:
        """Insert the events of the rows ``keep`` of a chunk (``digests``, ``hashes`` and
        ``is_new`` are the chunk's, row by row); call it before ``index.save`` stores the new hashes.

        Returns how many events were inserted and, with ``notices``, the events themselves.
        """
        lookup = [digests[i] for i in keep if full_refresh or not is_new[i]]
        stored = index.stored_hashes(session, lookup) if lookup else {}
        events: list[tuple[int, str, list[str] | None]] = []  # row, kind, fields (None: all listed)
        for i in keep:
            if is_new[i] and not full_refresh:
                events.append((i, CREATED, None))
                continue
            before = stored.get(digests[i])
            if before is None:
                events.append((i, CREATED, None))
            elif before[0] != hashes[i]:
                changed = _changed(before[1], orjson.loads(changes.field_hashes[i]))
                if changed:
                    events.append((i, UPDATED, changed))
        if not events:
            return 0, []
        connection = session.connection()
        dialect = connection.dialect
        now = driver_timestamp(dialect.name)
        for start in range(0, len(events), 10000):
            params = [
                (
                    run_id,
                    self.pipeline,
                    stream,
                    entity,
                    kind,
                    digests[i],
                    changes.sealed_ids[i],
                    changes.field_names[i] if fields is None else orjson.dumps(fields).decode(),
                    now,
                )
                for i, kind, fields in events[start : start + 10000]
            ]
            insert_all(connection, _INSERT_HEAD, params)
        if not notices:
            return len(events), []
        ids: dict[str, int] = {}
        wanted = [digests[i] for i, _, _ in events]
        for start in range(0, len(wanted), 500):
            for event_id, digest in session.execute(
                select(ChangeEvent.id, ChangeEvent.key_digest).where(
                    ChangeEvent.run_id == run_id,
                    ChangeEvent.stream == stream,
                    ChangeEvent.key_digest.in_(wanted[start : start + 500]),
                )
            ):
                ids[digest] = max(event_id, ids.get(digest, 0))  # a key changed twice in a run: the last
        return len(events), [
            Change(
                id=ids.get(digests[i], 0),
                kind=kind,
                pipeline=self.pipeline,
                stream=stream,
                entity=entity,
                key_digest=digests[i],
                changed_fields=tuple(orjson.loads(changes.field_names[i]) if fields is None else fields),
                record_id=changes.keys[i],
            )
            for i, kind, fields in events
        ]


def open_record_id(keyring: Any, event: ChangeEvent) -> str:
    """The record id of a change event, in clear (show it masked)."""
    return bytes(keyring.open(event.record_id, "change_events", event.key_digest)).decode()


@dataclass(frozen=True)
class ChangeView:
    """A row of ``hub changes list``; ``record_id`` is already masked."""

    id: int
    run_id: int
    pipeline: str
    stream: str
    entity: str
    kind: str
    record_id: str
    changed_fields: tuple[str, ...]
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "stream": self.stream,
            "entity": self.entity,
            "kind": self.kind,
            "record_id": self.record_id,
            "changed_fields": list(self.changed_fields),
            "created_at": self.created_at.isoformat(),
        }


def list_changes(
    db: Any,
    keyring: Any,
    *,
    entity: str | None = None,
    pipeline: str | None = None,
    after: int | None = None,
    limit: int = 100,
) -> list[ChangeView]:
    """Change events oldest first: those after event ``after``, else the latest ``limit``."""
    from hub.crypto import DecryptionError
    from hub.masking import mask_text

    query = select(ChangeEvent)
    if entity is not None:
        query = query.where(ChangeEvent.entity == entity)
    if pipeline is not None:
        query = query.where(ChangeEvent.pipeline == pipeline)
    if after is not None:
        query = query.where(ChangeEvent.id > after).order_by(ChangeEvent.id).limit(limit)
    else:
        query = query.order_by(ChangeEvent.id.desc()).limit(limit)
    with db.session() as session:
        rows = list(session.execute(query).scalars())
    if after is None:
        rows.reverse()
    views = []
    for row in rows:
        try:
            record_id = mask_text(open_record_id(keyring, row))
        except DecryptionError:  # a retired key, a tampered row: say so, never fail the listing
            record_id = "(sealed)"
        at = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
        views.append(
            ChangeView(
                id=row.id,
                run_id=row.run_id,
                pipeline=row.pipeline,
                stream=row.stream,
                entity=row.entity,
                kind=row.kind,
                record_id=record_id,
                changed_fields=tuple(row.changed_fields or ()),
                created_at=at,
            )
        )
    return views
