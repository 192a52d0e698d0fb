"""Personal data on its way out of hub: column encryption for destinations, and raw records.

A destination whose connector has ``encrypt_pii = true`` (the default) never receives a
personal-data column in clear: each value becomes a text ciphertext (``hub1.`` prefix, see
:mod:`hub.crypto.envelope`) sealed with the data key of the column's class and bound to
``(f"{destination}/{entity}", column, record id)``, and columns of kinds that are looked up
by value (ID numbers, phones, e-mails, bank accounts) get a ``<column>_bidx`` blind index
next to them. Which columns hold personal data:

- mapped streams: the canonical entity's PII fields (:func:`hub.mapping.executor.pii_kinds`);
- raw streams: the source connector's ``pii = { column = "kind" }`` declaration, plus any
  undeclared column whose values look like resident ID numbers, mainland mobile phones or
  bank cards (checked on the first chunk written; the sync log names the column).

Identity-only columns (``_hub_identity_*``, hub metadata read by identity resolution) are
dropped before any destination sees a chunk. Content hashes and change detection run on the
plaintext before this step, so only inserted and updated records are encrypted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from hub.connectors import POSITION, records_of
from hub.crypto import CLASS_OF_KIND, INDEXED_KINDS, Keyring
from hub.crypto.keyring import ColumnTask, seal_text_columns
from hub.errors import FatalSyncError
from hub.frames import arrow, data_columns, key_strings
from hub.mapping.executor import IDENTITY_PREFIX, REMOTE_ID
from hub.workers import process_pool

if TYPE_CHECKING:
    from hub.config import PipelineConfig
    from hub.engine import StreamContext
    from hub.project import Project
    from hub.synclog import SyncLog

#: Suffix of the blind-index column written next to an indexed PII column.
BIDX_SUFFIX = "_bidx"
#: Share of a column's non-empty values that must look like personal data for the safety net.
DETECT_SHARE = 0.5
#: What the safety net calls each kind in the sync log.
DETECTED_NAMES = {
    "id_number": "resident ID numbers",
    "phone": "mobile phone numbers",
    "bank_account": "bank card numbers",
}
_PHONE_PATTERN = r"^(?:\+?86|0086)?1[3-9]\d{9}$"
_CARD_PATTERN = r"^\d{16,19}$"
_TEXT = pd.ArrowDtype(pa.string())


def raw_record_context(pipeline: str, stream: str, key_digest: str) -> tuple[str, str]:
    """Associated data binding a raw record's ciphertext to its row."""
    return ("raw_records", f"{pipeline}|{stream}|{key_digest}")


def destination_table(destination: str, entity: str) -> str:
    """The ``table`` part of a destination value's encryption context."""
    return f"{destination}/{entity}"


def open_destination_value(
    keyring: Keyring, destination: str, entity: str, column: str, record_id: str, value: str
) -> str:
    """Decrypt one value hub wrote to a destination (``record_id``: the record's key string)."""
    return keyring.open_text(value, destination_table(destination, entity), column, record_id)


# -- the safety net ----------------------------------------------------------------------------


def _luhn_valid(compact: pa.Array) -> np.ndarray:
    """Rows that are 16 to 19 digits with a valid Luhn check digit."""
    n = len(compact)
    out = np.zeros(n, dtype=bool)
    shaped = np.asarray(
        pc.fill_null(pc.match_substring_regex(compact, _CARD_PATTERN), False).to_numpy(zero_copy_only=False),
        dtype=bool,
    )
    if not shaped.any():
        return out
    length = np.asarray(pc.fill_null(pc.binary_length(compact), 0).to_numpy(zero_copy_only=False))
    from hub.transforms.core import fixed_width_bytes

    for width in range(16, 20):
        rows = np.flatnonzero(shaped & (length == width))
        if not len(rows):
            continue
        digits = fixed_width_bytes(compact.take(pa.array(rows)), width).astype(np.int64) - 48
        doubled = digits[:, width - 2 :: -2] * 2  # every second digit from the right
        total = digits[:, width - 1 :: -2].sum(axis=1) + (doubled - 9 * (doubled > 9)).sum(axis=1)
        out[rows] = total % 10 == 0
    return out


def _id_numbers(compact: pa.Array) -> np.ndarray:
    """Rows that are 18-character resident ID numbers with a valid GB 11643 check digit."""
    from hub.transforms.ids import check_ids

    length = np.asarray(pc.fill_null(pc.binary_length(compact), 0).to_numpy(zero_copy_only=False))
    long = length == 18
    if not long.any():
        return long
    found = check_ids(pd.Series(pd.arrays.ArrowExtensionArray(compact), dtype=_TEXT)).valid
    return np.asarray(found, dtype=bool) & long


def detect_pii(frame: pd.DataFrame, columns: Sequence[str]) -> dict[str, str]:
    """Columns whose values mostly look like ID numbers, mobile phones or bank cards, with the kind.

    Vectorised over each column; never returns or logs a value.
    """
    found: dict[str, str] = {}
    for column in columns:
        if column not in frame.columns:
            continue
        text = arrow(frame[column])
        if isinstance(text, pa.ChunkedArray):
            text = text.combine_chunks()
        compact = pc.replace_substring_regex(pc.utf8_trim_whitespace(text), r"[\s\-]", "")
        present = np.asarray(
            pc.fill_null(pc.greater(pc.binary_length(compact), 0), False).to_numpy(zero_copy_only=False),
            dtype=bool,
        )
        total = int(present.sum())
        if not total:
            continue
        phone = np.asarray(
            pc.fill_null(pc.match_substring_regex(compact, _PHONE_PATTERN), False).to_numpy(
                zero_copy_only=False
            ),
            dtype=bool,
        )
        hits = {
            "id_number": int(_id_numbers(compact).sum()),
            "phone": int(phone.sum()),
            "bank_account": int(_luhn_valid(compact).sum()),
        }
        kind = max(hits, key=lambda k: hits[k])
        if hits[kind] and hits[kind] >= DETECT_SHARE * total:
            found[column] = kind
    return found


# -- encryption --------------------------------------------------------------------------------


#: Chunks with at least this many rows are sealed in worker processes, in parallel with the
#: rest of the sync (AES-GCM in cryptography holds the GIL: threads would not help).
PARALLEL_ROWS = 20_000
#: Added to the sealing workers' niceness (POSIX).
WORKER_NICENESS = 10


class ColumnSealer:
    """Worker processes that seal columns while the sync prepares its next chunk.

    Started on the first large chunk (spawned, so no thread state is forked), stopped with
    :meth:`close` at the end of the run. Small chunks are sealed in-process.
    """

    def __init__(self) -> None:
        self._pool: Executor | None = None
        #: worker processes of the pool: a chunk is cut in this many row ranges
        self.workers = min(2, os.cpu_count() or 1)
        self._warm = False

    def pool(self, rows: int) -> Executor | None:
        if rows < PARALLEL_ROWS or (os.cpu_count() or 1) < 2:
            return None
        if self._pool is None:
            # Below the sync's own priority: the writer thread is the sync's critical path,
            # the workers only have to stay one chunk ahead of it.
            self._pool = process_pool(self.workers, niceness=WORKER_NICENESS)
        return self._pool

    def warm(self, rows: int) -> None:
        """Spawn the workers now if a chunk of ``rows`` will be sealed in them.

        A spawned worker spends a second or more importing hub before it seals anything;
        started when a large chunk arrives, that overlaps with the chunk's preparation instead
        of holding up its write.
        """
        pool = self.pool(rows)
        if pool is not None and not self._warm:
            self._warm = True
            for _ in range(self.workers):  # one task per worker: each submit spawns one
                pool.submit(seal_text_columns, [], [], pa.array([], pa.string()))

    def close(self) -> None:
        self._warm = False
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


@dataclass
class SealingJob:
    """A chunk's PII columns being sealed, in row ranges (futures with a pool), collected once.

    ``parts`` holds, per row range, one ``(ciphertexts, blind indexes or None)`` pair of Arrow
    arrays per column of ``columns``, in that order.
    """

    frame: pd.DataFrame
    columns: list[str]
    parts: list[Any]
    parallel: bool

    def collect(self) -> pd.DataFrame:
        parts: list[list[tuple[pa.Array, pa.Array | None]]] = [
            part.result() if self.parallel else part for part in self.parts
        ]
        frame = self.frame
        position = {column: i for i, column in enumerate(self.columns)}

        def series(arrays: list[pa.Array]) -> pd.Series:
            whole = arrays[0] if len(arrays) == 1 else pa.concat_arrays(arrays)
            return pd.Series(pd.arrays.ArrowExtensionArray(whole), index=frame.index)

        columns: dict[str, Any] = {}
        for column in frame.columns:
            i = position.get(column)
            if i is None:
                columns[column] = frame[column]
                continue
            columns[column] = series([part[i][0] for part in parts])
            if parts[0][i][1] is not None:
                columns[f"{column}{BIDX_SUFFIX}"] = series([part[i][1] for part in parts])
        return pd.DataFrame(columns, index=frame.index)


def _row_ranges(rows: int, parts: int) -> list[tuple[int, int]]:
    """``(offset, length)`` of up to ``parts`` row ranges of about equal size covering ``rows``."""
    if rows == 0:
        return [(0, 0)]
    step = -(-rows // parts)
    return [(start, min(step, rows - start)) for start in range(0, rows, step)]


def _compact(array: pa.Array, offset: int, length: int, whole: bool) -> pa.Array:
    """A row range as its own buffers: a pickled slice would carry the whole column's."""
    return array if whole else pa.concat_arrays([array.slice(offset, length)])


def start_sealing(
    frame: pd.DataFrame,
    kinds: Mapping[str, str],
    keyring: Keyring,
    table: str,
    record_ids: Sequence[str],
    pool: Executor | None = None,
    workers: int = 1,
) -> SealingJob:
    """Seal each PII column and blind-index it; in ``pool``, one task per row range.

    Each task seals all the chunk's PII columns of its rows, so a row's id crosses to a worker
    once; columns go as Arrow arrays both ways (:func:`~hub.crypto.keyring.seal_text_columns`).
    """
    columns: list[str] = []
    tasks: list[ColumnTask] = []
    arrays: list[pa.Array] = []
    for column in frame.columns:
        kind = kinds.get(column)
        if kind is None:
            continue
        values = arrow(frame[column])
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        task = keyring.column_task(CLASS_OF_KIND[kind], table, str(column))
        present = pc.sum(pc.greater(pc.binary_length(values), 0)).as_py() or 0
        keyring.count_sealed(task[2], present)  # the nonce budget counts every value sealed
        columns.append(str(column))
        tasks.append((task, keyring.blind_key(kind) if kind in INDEXED_KINDS else None))
        arrays.append(values)
    ids = pa.array(record_ids, pa.string())
    if pool is None or not columns:
        return SealingJob(frame, columns, [seal_text_columns(tasks, arrays, ids)], False)
    ranges = _row_ranges(len(ids), max(1, workers))
    whole = len(ranges) == 1
    parts = [
        pool.submit(
            seal_text_columns,
            tasks,
            [_compact(a, offset, length, whole) for a in arrays],
            _compact(ids, offset, length, whole),
        )
        for offset, length in ranges
    ]
    return SealingJob(frame, columns, parts, True)


def encrypt_columns(
    frame: pd.DataFrame,
    kinds: Mapping[str, str],
    keyring: Keyring,
    table: str,
    record_ids: Sequence[str],
    pool: Executor | None = None,
    workers: int = 1,
) -> pd.DataFrame:
    """``frame`` with each PII column sealed and blind indexes added.

    Null and empty values stay as they are (nothing to hide, no nonce spent). With ``pool``
    the columns are sealed in worker processes; the ciphertexts are the same either way.
    """
    return start_sealing(frame, kinds, keyring, table, record_ids, pool, workers).collect()


def encrypted_schema(schema: Mapping[str, Any] | None, kinds: Mapping[str, str]) -> dict[str, Any]:
    """The stream's JSON Schema with PII columns (and their blind indexes) as nullable strings."""
    base = dict(schema or {"type": "object"})
    properties = dict(base.get("properties") or {})
    text = {"type": ["null", "string"]}
    for column, kind in kinds.items():
        properties[column] = dict(text)
        if kind in INDEXED_KINDS:
            properties[f"{column}{BIDX_SUFFIX}"] = dict(text)
    base["properties"] = properties
    return base


# -- per run -------------------------------------------------------------------------------------


@dataclass
class _StreamPii:
    kinds: dict[str, str]
    detected: dict[str, str] | None = None
    schemas: dict[tuple[str, frozenset[tuple[str, str]]], Mapping[str, Any]] = field(default_factory=dict)


class PiiGuard:
    """What one sync run does to personal data before destinations see it."""

    def __init__(self, project: Project, pipeline: PipelineConfig) -> None:
        self.sealer = ColumnSealer()
        #: (destination, id of the chunk) -> (the chunk, its sealing job), started by prefetch()
        self._pending: dict[tuple[str, int], tuple[pd.DataFrame, SealingJob]] = {}
        self.project = project
        self.pipeline = pipeline
        self._streams: dict[tuple[str, str], _StreamPii] = {}

    def _declared(self, ctx: StreamContext) -> dict[str, str]:
        if ctx.selection.mapping is not None:  # a mapped stream (or its dead letters replayed)
            return {c: k or "text" for c, k in ctx.pii_kinds.items()}
        connector = self.project.settings.connectors.get(self.pipeline.source)
        return dict(connector.pii) if connector is not None else {}

    def _stream(self, ctx: StreamContext, frame: pd.DataFrame, synclog: SyncLog | None) -> _StreamPii:
        key = (ctx.selection.name, ctx.entity)
        state = self._streams.get(key)
        if state is None:
            kinds = self._declared(ctx)
            keys = [c for c in kinds if c in ctx.primary_key]
            if ctx.selection.mapping is not None:
                connector = self.project.settings.connectors.get(self.pipeline.source)
                declared = connector.pii if connector is not None else {}
                keys += [f"{REMOTE_ID} (from {c})" for c in ctx.record_key if c in declared]
            if keys:
                raise FatalSyncError(
                    f"stream {ctx.selection.name!r}: {', '.join(keys)} holds personal data and is "
                    "the destination's record key, which cannot be encrypted (a ciphertext differs "
                    "on every write); key the stream on another column, or set encrypt_pii = false "
                    "on the destination to write it in clear"
                )
            state = self._streams[key] = _StreamPii(kinds)
        if state.detected is None and ctx.selection.mapping is None:
            state.detected = {}
            candidates = [
                c for c in data_columns(frame) if c not in state.kinds and not str(c).endswith(BIDX_SUFFIX)
            ]
            found = detect_pii(frame, candidates)
            for column, kind in sorted(found.items()):
                in_key = column in ctx.primary_key
                if not in_key:
                    state.detected[column] = kind
                if synclog is not None:
                    action = (
                        "it is the record key, which cannot be encrypted, so it is written as it "
                        "is (key the stream on another column)"
                        if in_key
                        else "it is encrypted in destinations that encrypt personal data"
                    )
                    synclog.event(
                        "warning",
                        "pii.undeclared",
                        f"column {column!r} looks like {DETECTED_NAMES[kind]} but is not declared as "
                        f"personal data; {action}. Declare it in connectors.{self.pipeline.source}.pii "
                        f'(pii = {{ {column} = "{kind}" }})',
                        stream=ctx.selection.name,
                    )
        return state

    def _plan(
        self, destination: str, ctx: StreamContext, frame: pd.DataFrame, synclog: SyncLog | None
    ) -> tuple[pd.DataFrame, dict[str, str], Mapping[str, Any] | None]:
        """The chunk without identity columns, the PII columns to seal for ``destination``, its schema."""
        identity = [c for c in frame.columns if str(c).startswith(IDENTITY_PREFIX)]
        if identity:
            frame = frame.drop(columns=identity)
        connector = self.project.settings.connectors.get(destination)
        if connector is not None and not connector.encrypt_pii:
            return frame, {}, ctx.schema
        state = self._stream(ctx, frame, synclog)
        kinds = {c: k for c, k in {**state.kinds, **(state.detected or {})}.items() if c in frame.columns}
        if not kinds:
            return frame, {}, ctx.schema
        key = (destination, frozenset(kinds.items()))
        schema = state.schemas.get(key)
        if schema is None:
            schema = state.schemas[key] = encrypted_schema(ctx.schema, kinds)
        return frame, kinds, schema

    def warm(self, ctx: StreamContext, rows: int) -> None:
        """Start the sealing workers early for a large chunk of a stream with declared personal data."""
        if not self._declared(ctx):
            return
        connectors = self.project.settings.connectors
        if any((c := connectors.get(d)) is None or c.encrypt_pii for d in self.pipeline.destinations):
            self.sealer.warm(rows)

    def prefetch(self, ctx: StreamContext, frame: pd.DataFrame, synclog: SyncLog | None = None) -> None:
        """Start sealing a large chunk for each destination now, while the chunk before is written."""
        pool = self.sealer.pool(len(frame))
        if pool is None:
            return
        for destination in self.pipeline.destinations:
            planned, kinds, _schema = self._plan(destination, ctx, frame, synclog)
            if kinds:
                table = destination_table(destination, ctx.entity)
                ids = self.record_ids(ctx, planned)
                job = start_sealing(
                    planned, kinds, self.project.keyring, table, ids, pool, self.sealer.workers
                )
                self._pending[(destination, id(frame))] = (frame, job)

    def for_destination(
        self,
        destination: str,
        ctx: StreamContext,
        frame: pd.DataFrame,
        synclog: SyncLog | None = None,
    ) -> tuple[pd.DataFrame, Mapping[str, Any] | None]:
        """The chunk and schema ``destination`` receives: identity columns dropped, PII sealed."""
        pending = self._pending.pop((destination, id(frame)), None)
        planned, kinds, schema = self._plan(destination, ctx, frame, synclog)
        if not kinds or not len(planned):
            return planned, schema
        if pending is not None and pending[0] is frame:  # sealed ahead by prefetch(): the same chunk
            return pending[1].collect(), schema
        table = destination_table(destination, ctx.entity)
        pool = self.sealer.pool(len(planned))
        ids = self.record_ids(ctx, planned)
        return encrypt_columns(
            planned, kinds, self.project.keyring, table, ids, pool, self.sealer.workers
        ), schema

    def close(self) -> None:
        """Stop the sealing workers (end of the run)."""
        self._pending.clear()
        self.sealer.close()

    @staticmethod
    def record_ids(ctx: StreamContext, frame: pd.DataFrame) -> list[str]:
        """Each row's key string: the source id of a mapped record, else its primary key values."""
        if ctx.mapping is not None and REMOTE_ID in frame.columns:
            return [v or "" for v in arrow(frame[REMOTE_ID]).to_pylist()]
        return key_strings(frame, ctx.record_key)[0]

    # -- keep_raw ----------------------------------------------------------------------------

    def seal_raw(self, stream: str, source: pd.DataFrame, digests: Sequence[str]) -> list[dict[str, Any]]:
        """Rows for ``raw_records``: each source record sealed under the "personal" data key."""
        keyring = self.project.keyring
        positions = (
            source[POSITION].astype(str).tolist() if POSITION in source.columns else [""] * len(source)
        )
        rows = []
        for record, digest, position in zip(records_of(source), digests, positions, strict=True):
            payload = orjson.dumps(record, default=str)
            sealed = keyring.seal(
                payload, "personal", *raw_record_context(self.pipeline.name, stream, digest)
            )
            rows.append(
                {
                    "pipeline": self.pipeline.name,
                    "stream": stream,
                    "key_digest": digest,
                    "position": position[:500],
                    "payload": sealed,
                }
            )
        return rows


def save_raw_records(session: Any, rows: Sequence[Mapping[str, Any]], run_id: int) -> None:
    """Insert sealed raw records in the caller's transaction (the chunk's checkpoint commits them)."""
    if not rows:
        return
    from sqlalchemy import insert

    from hub.store.models import RawRecord

    session.execute(insert(RawRecord), [{**row, "run_id": run_id} for row in rows])
