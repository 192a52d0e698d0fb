"""The sync engine: source -> (mapping) -> destinations, in checkpointed chunks.

For each chunk: drop what is unchanged (content hash), write every destination (each
write committed and idempotent), then in one transaction of the state store record the
new hashes, the change events of mapped streams (hub.changes), the dead letters and the
stream's checkpoint. A crash anywhere replays at most the chunk after the last checkpoint,
and replays are upserts: nothing is lost and nothing is written twice.
"""

from __future__ import annotations

import gc
import hashlib
import hmac
import itertools
import logging
import os
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from operator import itemgetter
from typing import Any, TypeVar

import orjson
import pandas as pd
from airbyte_cdk.models import (
    AirbyteStateMessageSerializer,
    ConfiguredAirbyteCatalog,
    ConfiguredAirbyteStream,
    DestinationSyncMode,
    SyncMode,
    Type,
)
from sqlalchemy import select

from hub.airbyte_containment import ConfigCapture, contained
from hub.changes import Change, ChangeRecorder, PreparedChanges, content_hashes
from hub.config import PipelineConfig, StreamSelection
from hub.connectors import POSITION, HubDestination, HubSource, RecordBatch, Rejection, records_of
from hub.errors import FatalSyncError, PipelineBusy, SyncError
from hub.frames import TEXT, key_strings, row_hashes, text_column, text_frame
from hub.identity_worker import IdentityResolution
from hub.leases import LeaseHolder
from hub.mapping.executor import IDENTITY_PREFIX, REMOTE_ID, apply_mapping, canonical_text, pii_kinds
from hub.mapping.loader import MappingSpec
from hub.masking import mask_text
from hub.pii import PiiGuard, save_raw_records
from hub.privacy import TombstoneScreen
from hub.project import Project
from hub.records import KeyDigester, RecordIndex
from hub.retry import ATTEMPTS, backoff_delay, call_with_retry, is_transient, retry_after_of
from hub.store.models import DeadLetter, OutboxEntry, Run, StreamState, utcnow
from hub.synclog import Counts, SyncLog
from hub.workers import collect_rarely

log = logging.getLogger("hub.sync")
cdk_logger = logging.getLogger("hub.airbyte")

SOURCE_ATTEMPTS = 5
#: Column a mapped record carries with its id at the source (the destination's default key).

ProgressCallback = Callable[[str, int], None]


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Collect garbage rarely while a run moves millions of short-lived records (hub.workers).

    CPython's default (a young-generation pass every 700 new containers) makes decoding large
    JSON pages and building frames spend most of their time in the collector (3x slower reads
    from an HTTP source, measured with bench/ats_sync.py).
    """
    threshold = collect_rarely()
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


@dataclass
class RunResult:
    """What ``hub sync`` reports."""

    run_id: int
    pipeline: str
    status: str
    counts: Counts
    streams: dict[str, Counts] = field(default_factory=dict)
    error: str | None = None
    duration: float = 0.0

    @property
    def exit_code(self) -> int:
        return {"succeeded": 0, "partial": 3}.get(self.status, 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "status": self.status,
            "counts": self.counts.as_dict(),
            "streams": {k: v.as_dict() for k, v in self.streams.items()},
            "error": self.error,
            "duration_seconds": round(self.duration, 3),
        }


def dead_letter_context(pipeline: str, stream: str, position: str) -> str:
    """Associated data binding a dead letter's ciphertext to its row."""
    return f"dead_letters|{pipeline}|{stream}|{position}"


def configured_catalog(
    source: Any, config: Mapping[str, Any], selections: tuple[StreamSelection, ...]
) -> Any:
    """Discover the source and configure the selected streams."""
    catalog = source.discover(cdk_logger, config)
    by_name = {s.name: s for s in catalog.streams}
    streams = []
    for sel in selections:
        stream = by_name.get(sel.name)
        if stream is None:
            known = ", ".join(sorted(by_name)) or "none"
            raise FatalSyncError(f"the source has no stream {sel.name!r} (it has: {known})")
        mode = SyncMode.incremental if sel.sync_mode == "incremental" else SyncMode.full_refresh
        if mode not in (stream.supported_sync_modes or [SyncMode.full_refresh]):
            raise FatalSyncError(f"stream {sel.name!r} does not support {sel.sync_mode} sync")
        pk = [[p] for p in sel.primary_key] or stream.source_defined_primary_key
        cursor = [sel.cursor_field] if sel.cursor_field else stream.default_cursor_field
        streams.append(
            ConfiguredAirbyteStream(
                stream=stream,
                sync_mode=mode,
                destination_sync_mode=DestinationSyncMode.append_dedup,
                cursor_field=cursor if mode == SyncMode.incremental else None,
                primary_key=pk,
            )
        )
    return ConfiguredAirbyteCatalog(streams=streams)


def with_fields_selected(
    configured: ConfiguredAirbyteStream, fields: Collection[str]
) -> ConfiguredAirbyteStream:
    """``configured``, selecting only ``fields`` (top level) and its key and cursor.

    Field selection as Airbyte's protocol has it: the configured schema lists the selected
    properties, out of those the source declares, and allows no others. A source may leave
    the rest out of its records (hub's manifest connector then skips them while parsing each
    page); one that sends them anyway loses nothing, as the chunk keeps the same columns
    either way. A field the source does not declare cannot be selected: the stream is then
    configured as it is, every field read.
    """
    schema = configured.stream.json_schema if isinstance(configured.stream.json_schema, Mapping) else {}
    properties = schema.get("properties") or {}
    kept = set(fields)
    kept.update(path[0] for path in configured.primary_key or [] if path)
    kept.update((configured.cursor_field or [])[:1])
    if not kept <= properties.keys():
        return configured
    narrowed = {
        **schema,
        "properties": {name: properties[name] for name in sorted(kept)},
        "additionalProperties": False,
    }
    if isinstance(schema.get("required"), list):
        narrowed["required"] = [name for name in schema["required"] if name in kept]
    return replace(configured, stream=replace(configured.stream, json_schema=narrowed))


#: Chunks with records a stream may have submitted to the writer and not yet seen committed:
#: while the writer waits on one (its identity resolution, or the last chunks of the stream
#: before), the next is read and prepared. Each costs a chunk's memory, and a kill re-sends
#: what is in flight.
IN_FLIGHT = 2
#: what a step of a chunk's write or commit returns (:meth:`Sync._in_order`)
_Result = TypeVar("_Result")
#: What a chunk's read records are replaced with once it is prepared (memory).
EMPTY_FRAME = pd.DataFrame()


@dataclass
class Prepared:
    """A chunk after validation and change detection, ready to be written."""

    batch: RecordBatch
    counts: Counts
    rejections: list[tuple[Rejection, str | None]]
    fingerprint: str | None = None
    skipped: bool = False
    to_write: pd.DataFrame | None = None
    digests: list[str] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    is_new: list[bool] = field(default_factory=list)
    #: mapped streams: field hashes and sealed ids of the rows of to_write (hub.changes)
    changes: PreparedChanges | None = None
    delivered: dict[str, str] = field(default_factory=dict)
    rows: int = 0
    #: sealed source records for ``raw_records`` (``keep_raw`` pipelines; hub.pii)
    raw: list[dict[str, Any]] = field(default_factory=list)
    updates_existing: bool = False
    #: mapped streams with an identity section: the chunk's people being resolved (hub.identity_worker)
    identity: Future[dict[str, int]] | None = None


def records_frame(
    rows: Sequence[Mapping[str, Any]],
    stream: str,
    before: int,
    columns: Collection[str] | None = None,
    as_decoded: Collection[str] | None = None,
) -> pd.DataFrame:
    """A chunk of records as a frame, each with its position (``stream#N``, counting on from ``before``).

    ``columns``: only these are kept (those a mapping reads), picked from each record rather
    than building every column of a wide record (a Greenhouse candidate has forty) first; a
    column no record has stays absent, as pandas would leave it. dtype object: nullable
    integers (ids, epoch ms) must not become floats. ``as_decoded`` (with ``columns``): every
    column but these is made Arrow strings here, as :func:`hub.frames.text_frame` makes it,
    straight from the picked values.
    """
    if not rows:
        return pd.DataFrame(dtype=object)
    positions = [f"{stream}#{i}" for i in range(before + 1, before + len(rows) + 1)]
    if columns is None:
        frame = pd.DataFrame(list(rows), dtype=object)
        frame[POSITION] = positions
        return frame
    index = pd.RangeIndex(len(rows))
    picked = _picked(rows, [c for c in columns if c in rows[0] or any(c in row for row in rows)])
    if as_decoded is None:
        frame = pd.DataFrame(picked, index=index, dtype=object)
        frame[POSITION] = positions
        return frame
    data = {
        column: pd.Series(values, index=index, dtype=object)
        if column in as_decoded
        else pd.Series(pd.arrays.ArrowExtensionArray(text_column(values)), index=index)
        for column, values in picked.items()
    }
    data[POSITION] = pd.Series(pd.arrays.ArrowExtensionArray(text_column(positions)), index=index)
    return pd.DataFrame(data, index=index)


def _picked(rows: Sequence[Mapping[str, Any]], columns: list[str]) -> dict[str, Sequence[Any]]:
    """Each column's values, row by row: one lookup of all of them in each record (its keys are
    near each other in memory, unlike one column's across records) when every record has them."""
    if not columns:
        return {}
    try:
        tuples = list(map(itemgetter(*columns), rows))
    except KeyError:  # a record without one of them: None there
        return {column: [row.get(column) for row in rows] for column in columns}
    if len(columns) == 1:
        return {columns[0]: tuples}
    return dict(zip(columns, zip(*tuples, strict=True), strict=True))


#: what it takes to read a stream again: its selection, catalog entry, primary key and counts
_Stream = tuple[StreamSelection, ConfiguredAirbyteStream, list[str], Counts]


def _with_records(in_flight: list[tuple[Future[Counts], Prepared]]) -> int:
    """How many chunks in flight carry records (not only a checkpoint)."""
    return sum(1 for _, chunk in in_flight if chunk.rows or chunk.rejections)


@dataclass
class StreamContext:
    """What the chunks of one stream share."""

    selection: StreamSelection
    entity: str
    primary_key: list[str]  # the destination's key columns
    schema: Mapping[str, Any] | None
    index: RecordIndex
    record_key: list[str] = field(default_factory=list)  # source columns identifying a record
    mapping: MappingSpec | None = None
    pii_kinds: dict[str, str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.record_key:
            self.record_key = list(self.primary_key)

    def columns_read(self, keep_raw: bool) -> tuple[set[str], set[str]] | None:
        """(the source columns a chunk needs, those of them kept as decoded); None: all, as text.

        Only what the mapping reads becomes text: a nested column it does not read (a
        Greenhouse candidate's embedded applications) costs more to serialise than the rest,
        and one it reads only through JSON paths would be parsed again from that text.
        """
        if self.mapping is None or keep_raw:
            return None
        key = set(self.record_key)
        return self.mapping.source_columns() | key, self.mapping.path_only_columns() - key


class Sync:
    """One run of one pipeline."""

    def __init__(
        self,
        project: Project,
        pipeline: str,
        *,
        trigger: str = "manual",
        dry_run: bool = False,
        full_refresh: bool = False,
        progress: ProgressCallback | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if pipeline not in project.settings.pipelines:
            known = ", ".join(sorted(project.settings.pipelines)) or "none"
            raise FatalSyncError(f"no pipeline named {pipeline!r} in hub.toml (known: {known})")
        self.project = project
        self.db = project.db
        self.pipeline: PipelineConfig = project.settings.pipelines[pipeline]
        self.trigger, self.dry_run, self.full_refresh = trigger, dry_run, full_refresh
        self.progress = progress
        self.sleep = sleep
        self.chunk_size = self.pipeline.chunk_size or project.settings.chunk_size
        self.digester = KeyDigester(project.keyring.hmac_key("record-keys"))
        self.signature = self._pipeline_signature()
        self.synclog: SyncLog | None = None
        self._dest_counts: dict[tuple[str, str], Counts] = {}
        self._rejected_positions: list[str] = []
        self._resume_state: dict[str, Any] | None = None
        self._hash_secret = project.keyring.hmac_key("content-hashes")
        self._changes = ChangeRecorder(project.keyring, self._hash_secret, self.pipeline.name)
        self._lease: LeaseHolder | None = None
        self._identity = IdentityResolution(project, self.sleep)
        #: the run's writer thread: chunks commit on it one at a time, in order, across streams
        self._writer: ThreadPoolExecutor | None = None
        #: the thread writing chunks to the destinations, in the same order, ahead of their
        #: commits: a chunk is written while the one before waits for its identity resolution
        self._destination_writer: ThreadPoolExecutor | None = None
        #: the last chunks of the stream being read, still committing when its read ends
        self._tail: list[tuple[Future[Counts], Prepared]] = []
        #: streams ending on the writer (:meth:`_end_stream`), in order
        self._finishing: list[tuple[_Stream, Future[None]]] = []
        #: per stream, its first chunk that failed (number, what failed): no later chunk commits
        self._write_failures: dict[str, tuple[int, str]] = {}
        #: numbers the chunks in the order they are submitted (:meth:`_submit_chunk`)
        self._chunk_numbers = itertools.count()
        self._pii = PiiGuard(project, self.pipeline)
        self._privacy = TombstoneScreen(project, self.pipeline, dry_run=dry_run)

    def _pipeline_signature(self) -> str:
        """Changes when what decides a record's delivered form changes.

        The destinations (a new one gets everything), the source's configuration (declared
        column types), mapping files and the lookup tables they load, keys.
        """
        parts = [self.pipeline.source, *sorted(self.pipeline.destinations)]
        source_config = self.project.settings.connectors[self.pipeline.source].config
        parts.append(orjson.dumps(dict(source_config), default=str, option=orjson.OPT_SORT_KEYS).decode())
        for mapping in sorted({sel.mapping for sel in self.pipeline.streams if sel.mapping}):
            parts.append(hashlib.sha256(mapping.read_bytes()).hexdigest())
            spec = self.project.mappings.get(mapping)
            if spec is not None:
                parts.append(orjson.dumps(spec.lookups, default=str, option=orjson.OPT_SORT_KEYS).decode())
        for sel in self.pipeline.streams:
            parts.append(f"{sel.name}:{','.join(sel.primary_key)}:{sel.destination_stream}")
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()

    # -- the run ---------------------------------------------------------------------------

    def run(self) -> RunResult:
        lease = LeaseHolder(self.db, f"pipeline:{self.pipeline.name}", ttl=60)
        if not lease.try_acquire():
            raise PipelineBusy(
                f"pipeline {self.pipeline.name!r} is already running ({lease.current_owner()}); "
                "one run at a time per pipeline"
            )
        lease.start_renewing()
        self._lease = lease
        started = time.monotonic()
        try:
            self._close_abandoned_runs()
            self.synclog = SyncLog(self.db, self.pipeline.name, self.trigger, dry_run=self.dry_run)
            with fewer_collections():
                return self._run(started)
        finally:
            self._pii.close()  # the sealing workers, if the run started any
            self._identity.close()  # and the identity worker
            self._flush_key_counters()
            lease.release()

    def _flush_key_counters(self) -> None:
        """Add this run's encryptions to ``crypto_keys.encryptions`` (``hub keys status``)."""
        try:
            self.project.keyring.flush_counters()
        except Exception:  # a count is not worth failing a run that committed
            log.warning("could not save the encryption counts of the data keys", exc_info=True)

    def _notify(self, hook_name: str, **kwargs: Any) -> None:
        """Call a lifecycle hook; a plugin that raises is logged, and the sync goes on."""
        try:
            getattr(self.project.registry.pm.hook, hook_name)(**kwargs)
        except Exception as exc:
            if os.environ.get("HUB_STRICT_PLUGINS", "") not in ("", "0", "false"):
                raise
            message = f"plugin hook {hook_name} raised {type(exc).__name__}: {mask_text(str(exc))}"
            if self.synclog is not None:
                self.synclog.event("warning", "plugin.error", message)
            else:
                log.warning("%s", message)

    def _close_abandoned_runs(self) -> None:
        """We hold the pipeline's lease, so any other 'running' run of it is dead."""
        with self.db.session() as session:
            for run in session.execute(
                select(Run).where(Run.pipeline == self.pipeline.name, Run.status == "running")
            ).scalars():
                run.status, run.finished_at = "crashed", utcnow()
                run.error = "the process running this sync stopped without finishing (killed or crashed)"

    def _run(self, started: float) -> RunResult:
        synclog = self.synclog
        assert synclog is not None
        self._notify(
            "hub_run_started", run_id=synclog.run_id, pipeline=self.pipeline.name, trigger=self.trigger
        )
        synclog.event(
            "info",
            "run.start",
            f"{self.trigger} run of {self.pipeline.name}: {self.pipeline.source} -> "
            f"{', '.join(self.pipeline.destinations)}" + (" (dry run)" if self.dry_run else ""),
        )
        per_stream: dict[str, Counts] = {}
        status, error = "succeeded", None
        destinations: dict[str, tuple[Any, dict[str, Any]]] = {}
        with (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="hub-writer") as self._writer,
            ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="hub-destination-writer"
            ) as self._destination_writer,
        ):
            try:
                source = self.project.source(self.pipeline.source)
                source_config = self.project.config_of(self.pipeline.source)
                for name in self.pipeline.destinations:
                    destinations[name] = (self.project.destination(name), self.project.config_of(name))
                catalog = configured_catalog(source, source_config, self.pipeline.streams)
                for sel, configured in zip(self.pipeline.streams, catalog.streams, strict=True):
                    pk = [p[0] for p in (configured.primary_key or [])]
                    counts = per_stream[sel.name] = Counts()
                    self._sync_stream(source, source_config, sel, configured, pk, destinations, counts)
                failures = self._streams_finished()
                for (sel, configured, pk, counts), failure in failures:
                    if not is_transient(failure):
                        raise failure
                    # The stream's last chunks failed after the next stream had started: it is
                    # read once more from its checkpoint, as a failure within it would have been.
                    synclog.event(
                        "warning",
                        "retry",
                        f"the last chunks of stream {sel.name} failed ({type(failure).__name__}: "
                        f"{mask_text(str(failure))}); retry from the last checkpoint",
                        stream=sel.name,
                    )
                    self._sync_stream(source, source_config, sel, configured, pk, destinations, counts)
                for _stream, failure in self._streams_finished():
                    raise failure
            except Exception as exc:
                status = "failed"
                error = mask_text(f"{type(exc).__name__}: {exc}")
                synclog.event("error", "run.error", error)
                log.debug("run failed", exc_info=True)
            finally:
                # A stream's last chunks may still be committing: they must be done before the
                # destinations close, and what they committed counts.
                for _stream, failure in self._streams_finished():
                    synclog.event("error", "run.error", mask_text(f"{type(failure).__name__}: {failure}"))
                for dest, _config in destinations.values():
                    if isinstance(dest, HubDestination):
                        try:
                            dest.close()
                        except Exception:
                            log.warning("closing a destination failed", exc_info=True)
        totals = Counts()
        for counts in per_stream.values():  # what a failing stream committed before it failed counts
            totals.add(counts)
        if status == "succeeded" and totals.rejected:
            status = "partial"
        synclog.event(
            "info" if status != "failed" else "error",
            "run.end",
            f"run {status}: read {totals.read}, inserted {totals.inserted}, updated {totals.updated}, "
            f"unchanged {totals.unchanged}, rejected {totals.rejected}",
            details=totals.as_dict(),
        )
        synclog.finish(status, totals, error)
        self._notify(
            "hub_run_finished",
            run_id=synclog.run_id,
            pipeline=self.pipeline.name,
            status=status,
            counts=totals.as_dict(),
        )
        return RunResult(
            run_id=synclog.run_id,
            pipeline=self.pipeline.name,
            status=status,
            counts=totals,
            streams=per_stream,
            error=error,
            duration=time.monotonic() - started,
        )

    # -- one stream ------------------------------------------------------------------------

    def _load_state(self, stream: str, incremental: bool) -> dict[str, Any] | None:
        """The source state to start from: a full refresh resumes only an unfinished pass."""
        with self.db.session() as session:
            row = session.get(StreamState, (self.pipeline.name, stream))
            if row is None or self.full_refresh:
                return None
            saved = dict(row.state or {})
        if incremental or not saved.get("complete", False):
            return saved.get("source")
        return None

    def _save_state(self, session: Any, stream: str, source_state: Any, complete: bool) -> None:
        assert self.synclog is not None
        row = session.get(StreamState, (self.pipeline.name, stream))
        value = {"source": source_state, "complete": complete}
        if row is None:
            session.add(
                StreamState(
                    pipeline=self.pipeline.name, stream=stream, state=value, run_id=self.synclog.run_id
                )
            )
        else:
            row.state, row.run_id, row.updated_at = value, self.synclog.run_id, utcnow()

    def _sync_stream(
        self,
        source: Any,
        source_config: Mapping[str, Any],
        sel: StreamSelection,
        configured: ConfiguredAirbyteStream,
        pk: list[str],
        destinations: dict[str, tuple[Any, dict[str, Any]]],
        counts: Counts,
    ) -> Counts:
        synclog = self.synclog
        assert synclog is not None
        incremental = configured.sync_mode == SyncMode.incremental
        ctx = self._stream_context(sel, configured, pk)
        if not ctx.record_key:
            raise FatalSyncError(
                f"stream {sel.name!r} has no primary key: set primary_key in the pipeline's streams"
            )
        state = self._load_state(sel.name, incremental)
        synclog.event(
            "info",
            "stream.start",
            f"stream {sel.name} ({configured.sync_mode.value})"
            + (" resuming from checkpoint" if state else ""),
            stream=sel.name,
        )
        last_state = state
        attempt = 0
        while True:
            try:
                last_state = self._pipelined(
                    source, source_config, configured, ctx, destinations, counts, last_state
                )
                break
            except Exception as exc:
                if not is_transient(exc):
                    raise
                attempt += 1
                if attempt >= SOURCE_ATTEMPTS:
                    raise SyncError(
                        f"source {self.pipeline.source!r} stream {sel.name!r} kept failing after "
                        f"{attempt} attempts: {type(exc).__name__}: {mask_text(str(exc))}"
                    ) from exc
                delay = backoff_delay(attempt, retry_after=retry_after_of(exc))
                synclog.event(
                    "warning",
                    "retry",
                    f"source read failed ({type(exc).__name__}: {mask_text(str(exc))}); "
                    f"retry {attempt}/{SOURCE_ATTEMPTS - 1} from the last checkpoint in {delay:.1f}s",
                    stream=sel.name,
                )
                self.sleep(delay)
                last_state = self._resume_state
        # The stream's last chunks are still being written: the stream ends on the writer, after
        # them, while the next stream is read and prepared.
        tail, self._tail = self._tail, []
        ending = self._writer_pool().submit(self._end_stream, ctx, destinations, counts, last_state, tail)
        self._finishing.append(((sel, configured, pk, counts), ending))
        return counts

    def _end_stream(
        self,
        ctx: StreamContext,
        destinations: Mapping[str, Any],
        counts: Counts,
        state: dict[str, Any] | None,
        tail: list[tuple[Future[Counts], Prepared]],
    ) -> None:
        """On the writer, after the stream's last chunks: the stream's state is complete."""
        synclog = self.synclog
        assert synclog is not None
        name = ctx.selection.name
        if name in self._write_failures and not tail:
            raise SyncError(
                f"stream {name} not ended: an earlier chunk failed ({self._write_failures[name][1]})"
            )
        for in_flight, chunk in tail:  # done: the writer runs one task at a time, in order
            counts.add(in_flight.result())
            if chunk.batch.state is not None:
                state = chunk.batch.state
        if tail and self.progress:
            self.progress(name, counts.read)
        if not self.dry_run:
            with self.db.session() as session:
                self._save_state(session, name, state, complete=True)
            synclog.save_stats(name, "", counts)
            for destination in destinations:
                synclog.save_stats(name, destination, self._dest_counts.get((name, destination), Counts()))
        synclog.event(
            "info",
            "stream.end",
            f"stream {name}: read {counts.read}, inserted {counts.inserted}, updated {counts.updated}, "
            f"unchanged {counts.unchanged}, rejected {counts.rejected}",
            stream=name,
            details=counts.as_dict(),
        )

    def _writer_pool(self) -> ThreadPoolExecutor:
        assert self._writer is not None, "chunks are written only during a run"
        return self._writer

    def _submit_chunk(
        self,
        prepared: Prepared,
        ctx: StreamContext,
        destinations: dict[str, tuple[Any, dict[str, Any]]],
        read_before: int,
    ) -> Future[Counts]:
        """Write the chunk to the destinations, then commit it; the commit's future.

        Both threads take chunks in submission order. The commit waits for the chunk's write,
        whatever happened to it, so when a commit is settled nothing of its chunk is still
        being written (a stream retried from its checkpoint never races its earlier attempt).
        """
        assert self._destination_writer is not None, "chunks are written only during a run"
        number = next(self._chunk_numbers)
        written = self._destination_writer.submit(self._write_in_order, prepared, ctx, destinations, number)
        return self._writer_pool().submit(self._commit_in_order, prepared, ctx, read_before, written, number)

    def _streams_finished(self) -> list[tuple[_Stream, BaseException]]:
        """Wait for every stream still ending on the writer; those that failed, in stream order."""
        failures: list[tuple[_Stream, BaseException]] = []
        while self._finishing:
            stream, ending = self._finishing.pop(0)
            try:
                ending.result()
            except Exception as exc:  # noqa: BLE001 - the run reports it (or retries the stream)
                failures.append((stream, exc))
        return failures

    def _batches(
        self,
        source: Any,
        config: Mapping[str, Any],
        configured: ConfiguredAirbyteStream,
        state: dict[str, Any] | None,
        columns: tuple[Collection[str], Collection[str]] | None = None,
    ) -> Iterator[RecordBatch]:
        """The stream's chunks; from an Airbyte source, as ``columns`` asks (:meth:`StreamContext.columns_read`)."""
        name = configured.stream.name
        if isinstance(source, HubSource):
            options: dict[str, Any] = {"chunk_size": self.chunk_size}
            if configured.cursor_field:  # the pipeline's cursor_field, as Airbyte sources get it
                options["cursor_field"] = configured.cursor_field[0]
            yield from source.read_batches(cdk_logger, config, name, state, options)
            return
        yield from self._batches_from_messages(source, config, configured, state, columns)

    def _batches_from_messages(
        self,
        source: Any,
        config: Mapping[str, Any],
        configured: ConfiguredAirbyteStream,
        state: dict[str, Any] | None,
        columns: tuple[Collection[str], Collection[str]] | None = None,
    ) -> Iterator[RecordBatch]:
        """Group an Airbyte source's RECORD messages into chunks, cut at its STATE messages."""
        name = configured.stream.name
        if columns is not None:
            configured = with_fields_selected(configured, columns[0])
        catalog = ConfiguredAirbyteCatalog(streams=[configured])
        states = []
        if state:
            states = [
                AirbyteStateMessageSerializer.load(
                    {"type": "STREAM", "stream": {"stream_descriptor": {"name": name}, "stream_state": state}}
                )
            ]
        # Python CDK sources print TRACE / CONTROL messages to stdout (a 429's "rate limited"):
        # taken off stdout for any source, as the manifest connector does for its own calls.
        with contained(ConfigCapture(config, ())):
            yield from self._read_messages(source, cdk_logger, config, catalog, states, name, columns)

    def _read_messages(
        self,
        source: Any,
        cdk_logger: logging.Logger,
        config: Mapping[str, Any],
        catalog: ConfiguredAirbyteCatalog,
        states: list[Any],
        name: str,
        columns: tuple[Collection[str], Collection[str]] | None = None,
    ) -> Iterator[RecordBatch]:
        rows: list[Mapping[str, Any]] = []
        ordinal = 0
        picked, as_decoded = columns or (None, None)
        for message in source.read(cdk_logger, config, catalog, states):
            if message.type == Type.RECORD and message.record is not None and message.record.stream == name:
                rows.append(message.record.data)
                if len(rows) >= self.chunk_size:
                    yield RecordBatch(
                        stream=name, frame=records_frame(rows, name, ordinal, picked, as_decoded)
                    )
                    ordinal, rows = ordinal + len(rows), []
            elif message.type == Type.STATE and message.state is not None:
                blob = message.state.stream.stream_state if message.state.stream else None
                new_state = (
                    AirbyteStateMessageSerializer.dump(message.state)["stream"].get("stream_state")
                    if blob
                    else None
                )
                frame = records_frame(rows, name, ordinal, picked, as_decoded)
                yield RecordBatch(stream=name, frame=frame, state=new_state or {})
                ordinal, rows = ordinal + len(rows), []
            elif message.type == Type.LOG and message.log is not None:
                cdk_logger.info("%s", mask_text(message.log.message))
            elif message.type == Type.CONTROL and message.control is not None:
                update = message.control.connectorConfig.config if message.control.connectorConfig else None
                if update:
                    self._config_rotated(config, update, name)
        if rows:
            yield RecordBatch(stream=name, frame=records_frame(rows, name, ordinal, picked, as_decoded))

    def _config_rotated(self, config: Mapping[str, Any], update: Mapping[str, Any], stream: str) -> None:
        """The source rotated credentials (a single-use OAuth refresh token): keep them now.

        The vendor already invalidated the old token, so this cannot wait for a checkpoint,
        and a dry run saves it too. Retries and later streams of this run use the new config.
        """
        for level, message in self.project.save_rotated_config(self.pipeline.source, update):
            if self.synclog is not None:
                self.synclog.event(level, "config.rotated", message, stream=stream)
        if isinstance(config, dict):
            config.update(update)

    # -- one chunk -------------------------------------------------------------------------

    def _pipelined(
        self,
        source: Any,
        source_config: Mapping[str, Any],
        configured: ConfiguredAirbyteStream,
        ctx: StreamContext,
        destinations: dict[str, tuple[Any, dict[str, Any]]],
        counts: Counts,
        state: dict[str, Any] | None,
    ) -> dict[str, Any] | None:
        """Read and prepare the next chunk while earlier ones are written and committed.

        Up to IN_FLIGHT chunks with records wait for or are on the writer threads (one writes
        to the destinations, one commits: :meth:`_submit_chunk`). The database drivers release
        the GIL while they write (SQLite many rows to a statement, hub.store.bulk), so reading
        and mapping overlap with writing. Chunks commit in order, and the checkpoint of a
        chunk is saved only with that chunk's commit. The last
        chunks are left in flight (``self._tail``): the next stream starts reading while they
        commit, and the stream ends after them on the writer (:meth:`_end_stream`).
        """
        self._resume_state = state
        # A retry of this stream: its chunks submitted before are all settled (or ended).
        self._write_failures.pop(ctx.selection.name, None)
        #: submitted, not settled, in order: chunks with records (IN_FLIGHT), and state-only ones
        in_flight: list[tuple[Future[Counts], Prepared]] = []
        base, prepared_total = counts.read, 0
        try:
            columns = ctx.columns_read(self.pipeline.keep_raw)
            for batch in self._batches(source, source_config, configured, state, columns):
                state_only = not len(batch.frame) and not batch.rejections
                unsettled = [chunk for _, chunk in in_flight]
                prepared = self._prepare(batch, ctx, base + prepared_total, unsettled)
                prepared_total += prepared.counts.read
                batch.frame = EMPTY_FRAME  # the commit needs what was prepared, not the records as read
                # A checkpoint alone waits for nothing (a stream's last state); a chunk with
                # records waits until fewer than IN_FLIGHT are still being written.
                while not state_only and _with_records(in_flight) >= IN_FLIGHT:
                    self._settle(*in_flight.pop(0), ctx, counts)
                in_flight.append((self._submit_chunk(prepared, ctx, destinations, counts.read), prepared))
        except BaseException:
            # Wait for every chunk in flight, done or not: their counts and checkpoints must not
            # be lost, and none may still be running when the stream is retried.
            for future, chunk in in_flight:
                try:
                    self._settle(future, chunk, ctx, counts)
                except Exception:
                    log.debug("a chunk in flight failed too", exc_info=True)
            raise
        self._tail = in_flight
        return self._resume_state

    def _stream_context(
        self, sel: StreamSelection, configured: ConfiguredAirbyteStream, pk: list[str]
    ) -> StreamContext:
        """Where a stream's records go: as they are, or mapped into a canonical entity."""
        spec = self.project.mappings.get(sel.mapping) if sel.mapping is not None else None
        if spec is None:
            entity = sel.destination_stream or sel.name
            return StreamContext(
                selection=sel,
                entity=entity,
                primary_key=pk,
                schema=configured.stream.json_schema,
                index=RecordIndex(self.pipeline.name, entity, self.pipeline.source, sel.name),
            )
        from hub.schema import ENTITIES, field_specs

        model = ENTITIES[spec.entity]
        entity = sel.destination_stream or spec.entity
        properties: dict[str, Any] = {REMOTE_ID: {"type": "string"}}
        for fs in field_specs(model):
            if fs.name in spec.fields or (fs.name == "custom_fields" and spec.custom_fields):
                properties[fs.name] = {"type": ["null", "string"]}
                if fs.type.startswith("date"):
                    properties[fs.name]["format"] = "date"
        return StreamContext(
            selection=sel,
            entity=entity,
            primary_key=list(sel.primary_key) or [REMOTE_ID],
            schema={"type": "object", "properties": properties},
            index=RecordIndex(self.pipeline.name, entity, self.pipeline.source, sel.name),
            record_key=list(spec.key),
            mapping=spec,
            pii_kinds=pii_kinds(model),
        )

    def _map(
        self, ctx: StreamContext, frame: pd.DataFrame, keys: pd.Series, prepared: Prepared
    ) -> tuple[pd.DataFrame, pd.Series]:
        """Apply the stream's mapping: canonical fields as text, plus the record's source id."""
        assert ctx.mapping is not None
        result = apply_mapping(ctx.mapping, frame, self.project.transforms, ctx.pii_kinds, as_text=True)
        prepared.rejections += [(r, None) for r in result.rejections]
        if result.warnings and self.synclog is not None:
            self.synclog.event(
                "warning",
                "mapping",
                f"{len(result.warnings)} mapping warning(s); first: {result.warnings[0][0]}: {result.warnings[0][1]}",
                stream=ctx.selection.name,
                details={"warnings": [f"{p}: {w}" for p, w in result.warnings[:50]]},
            )
        kept = keys.loc[result.kept] if result.kept is not None else keys
        mapped = result.frame
        # as_text: already canonical text (Arrow strings), but for an empty chunk
        columns = {
            c: mapped[c] if mapped[c].dtype == TEXT else mapped[c].map(canonical_text)
            for c in mapped.columns
            if c != POSITION
        }
        columns[REMOTE_ID] = kept
        columns[POSITION] = mapped[POSITION]
        return text_frame(pd.DataFrame(columns, index=mapped.index)), kept

    def _settle(
        self, in_flight: Future[Counts], chunk: Prepared | None, ctx: StreamContext, counts: Counts
    ) -> None:
        """Wait for the chunk being written; its counts and checkpoint now stand."""
        counts.add(in_flight.result())
        if chunk is not None and chunk.batch.state is not None:
            self._resume_state = chunk.batch.state
        if self.progress:
            self.progress(ctx.selection.name, counts.read)

    def _prepare(
        self, batch: RecordBatch, ctx: StreamContext, seen: int, unsettled: Sequence[Prepared] = ()
    ) -> Prepared:
        """Validate a chunk and keep only what changed (runs while earlier chunks are written).

        ``unsettled``: the stream's chunks submitted and maybe not yet committed, in order.
        """
        sel, pk, index = ctx.selection, ctx.record_key, ctx.index
        frame = batch.frame
        prepared = Prepared(
            batch=batch,
            counts=Counts(read=len(frame) + len(batch.rejections)),
            rejections=[(r, None) for r in batch.rejections],
        )
        chunk = prepared.counts
        if batch.fingerprint:
            prepared.fingerprint = hmac.new(
                self._hash_secret, (batch.fingerprint + self.signature).encode(), hashlib.sha256
            ).hexdigest()
            # Not while the chunk before is in flight with updates: they may change what this
            # chunk's old digest stood for (a key in both chunks).
            in_flight_updates = any(earlier.updates_existing for earlier in unsettled)
            if not batch.rejections and not self.dry_run and not self.full_refresh and not in_flight_updates:
                with self.db.session() as session:
                    if index.has_fingerprint(session, prepared.fingerprint):
                        chunk.unchanged = len(frame)
                        prepared.skipped = True
                        return prepared
        if not len(frame):
            return prepared
        if not self.dry_run:
            self._pii.warm(ctx, len(frame))  # the sealing workers import while this chunk is prepared
            if ctx.mapping is not None and ctx.mapping.identity:
                self._identity.warm(len(frame))  # and so does the identity worker
        if POSITION not in frame.columns:
            frame = frame.assign(
                **{POSITION: [f"{sel.name}#{i}" for i in range(seen + 1, seen + len(frame) + 1)]}
            )
        as_decoded: Collection[str] = ()
        columns = ctx.columns_read(self.pipeline.keep_raw)
        if columns is not None:
            needed, as_decoded = columns
            kept = [c for c in frame.columns if c in needed or c == POSITION]
            if len(kept) < len(frame.columns):
                frame = frame[kept]
        frame = text_frame(frame, as_decoded)
        missing = [c for c in pk if c not in frame.columns]
        if missing:
            raise FatalSyncError(f"stream {sel.name!r}: primary key column(s) {missing} not in the records")
        key_list, empty = key_strings(frame, pk)
        if empty.any():
            for i in empty.nonzero()[0]:
                record = records_of(frame.iloc[[int(i)]])[0]
                position = str(frame[POSITION].iat[int(i)])
                prepared.rejections.append(
                    (Rejection(position, f"primary key {'+'.join(pk)} is empty", record), None)
                )
            frame = frame.loc[~empty]
            key_list = [k for k, e in zip(key_list, empty, strict=True) if not e]
        keys = pd.Series(key_list, index=frame.index, dtype=object)
        dup = keys.duplicated(keep="last").to_numpy()
        if dup.any():
            # A key repeated within the chunk: the last row wins, the earlier ones are not written.
            frame, keys = frame.loc[~dup], keys.loc[~dup]
            chunk.unchanged += int(dup.sum())
        source = frame  # the records as read, for keep_raw
        if ctx.mapping is not None:
            frame, keys = self._map(ctx, frame, keys, prepared)
        digests = self.digester.digest_all(keys.tolist(), index.scope)
        # Erased persons (privacy tombstones) leave the chunk here: not written, resolved or dead-lettered.
        frame, digests, consented = self._privacy.screen(ctx, frame, keys, digests, prepared, self.synclog)
        secret = self._hash_secret + self.signature.encode()
        # Mapped: the identity fields count too, so a corrected ID number alone is an update.
        hashes = content_hashes(frame, secret) if ctx.mapping is not None else row_hashes(frame, secret)
        known: dict[str, str] = {}
        if not self.full_refresh:  # a full refresh re-delivers every record
            with self.db.session() as session:
                known = index.known_hashes(session, digests)
        for earlier in unsettled:
            # Chunks before may not be committed yet: what they deliver counts as known.
            known.update(earlier.delivered)
        for digest in consented:  # an erasure lifted by new consent: delivered again, as new
            known.pop(digest, None)
        is_new = [d not in known for d in digests]
        changed = [n or known[d] != h for d, h, n in zip(digests, hashes, is_new, strict=True)]
        chunk.inserted += sum(is_new)
        chunk.updated += sum(changed) - sum(is_new)
        chunk.unchanged += len(changed) - sum(changed)
        prepared.to_write = frame.loc[pd.Series(changed, index=frame.index)].reset_index(drop=True)
        prepared.digests = [d for d, c in zip(digests, changed, strict=True) if c]
        prepared.hashes = [h for h, c in zip(hashes, changed, strict=True) if c]
        prepared.is_new = [n for n, c in zip(is_new, changed, strict=True) if c]
        prepared.updates_existing = not all(prepared.is_new)
        prepared.delivered = dict(zip(prepared.digests, prepared.hashes, strict=True))
        prepared.rows = len(frame)
        if ctx.mapping is not None and not self.dry_run and len(prepared.to_write):
            # For the change events, here while the chunk before commits (hub.changes).
            prepared.changes = self._changes.prepare(prepared.to_write, prepared.digests, REMOTE_ID)
            if ctx.mapping.identity:
                # Resolution starts now, in a worker process for a large chunk; the commit
                # waits for it before the checkpoint. A row a destination rejects is resolved
                # too: its person exists, and the record is linked again when it is retried.
                people = [
                    REMOTE_ID,
                    *(c for c in prepared.to_write.columns if str(c).startswith(IDENTITY_PREFIX)),
                ]
                prepared.identity = self._identity.submit(
                    self.pipeline.source, prepared.to_write[people], REMOTE_ID, IDENTITY_PREFIX
                )
        if not self.dry_run and len(prepared.to_write):
            # Sealing for the destinations starts here, in worker processes, while the chunk
            # before is written (hub.pii); large chunks only.
            self._pii.prefetch(ctx, prepared.to_write, self.synclog)
        if self.pipeline.keep_raw and not self.dry_run:
            written = frame.index[[bool(c) for c in changed]]
            prepared.raw = self._pii.seal_raw(sel.name, source.loc[written], prepared.digests)
        return prepared

    def _in_order(self, stream: str, number: int, step: Callable[[], _Result]) -> _Result:
        """``step()`` for chunk ``number`` of ``stream``, unless a chunk before it failed.

        Chunks are submitted before the ones ahead of them are seen committed; one that
        committed after a failed one would save a checkpoint past records never written.
        A failure stops the chunks after it, never one before it (still to commit while a
        later one is written).
        """
        failed = self._write_failures.get(stream)
        if failed is not None and failed[0] < number:
            raise SyncError(f"chunk not written: an earlier chunk of the stream failed ({failed[1]})")
        try:
            return step()
        except BaseException as exc:
            failure = (number, mask_text(f"{type(exc).__name__}: {exc}"))
            self._write_failures[stream] = min(self._write_failures.get(stream, failure), failure)
            raise

    def _write_in_order(
        self,
        prepared: Prepared,
        ctx: StreamContext,
        destinations: dict[str, tuple[Any, dict[str, Any]]],
        number: int,
    ) -> set[int]:
        """:meth:`_write_chunk` on the destination writer."""
        return self._in_order(
            ctx.selection.name, number, lambda: self._write_chunk(prepared, ctx, destinations)
        )

    def _commit_in_order(
        self, prepared: Prepared, ctx: StreamContext, read_before: int, written: Future[set[int]], number: int
    ) -> Counts:
        """:meth:`_commit` on the writer, once the chunk's write is over; its failure, if it failed."""
        failure = written.exception()  # waits for the write, whatever happens to it
        if failure is not None:
            raise failure
        return self._in_order(
            ctx.selection.name, number, lambda: self._commit(prepared, ctx, read_before, written.result())
        )

    def _write_chunk(
        self,
        prepared: Prepared,
        ctx: StreamContext,
        destinations: dict[str, tuple[Any, dict[str, Any]]],
    ) -> set[int]:
        """Write a prepared chunk to every destination; the rows one of them rejected.

        A destination's rejections join the chunk's (dead letters at its commit).
        """
        if self._lease is not None and self._lease.lost.is_set():
            raise FatalSyncError("lost the pipeline's lease (the state store was unreachable); stopping")
        failed_rows: set[int] = set()
        to_write = prepared.to_write
        if self.dry_run or prepared.skipped or to_write is None or not len(to_write):
            return failed_rows
        sel = ctx.selection
        for name, (dest, config) in destinations.items():
            rejected_here = self._write(name, dest, config, ctx, to_write, prepared.hashes)
            dest_counts = self._dest_counts.setdefault((sel.name, name), Counts())
            dest_counts.read += len(to_write)
            dest_counts.rejected += len(rejected_here)
            for row, reason in rejected_here:
                failed_rows.add(row)
                position = str(to_write[POSITION].iat[row])
                record = records_of(to_write.iloc[[row]])[0]
                prepared.rejections.append((Rejection(position, reason, record), name))
        return failed_rows

    def _commit(
        self, prepared: Prepared, ctx: StreamContext, read_before: int, failed_rows: set[int]
    ) -> Counts:
        """Commit a chunk written to the destinations: hashes, dead letters, checkpoint.

        ``failed_rows``: the rows of ``prepared.to_write`` a destination rejected.
        """
        sel, index = ctx.selection, ctx.index
        synclog = self.synclog
        assert synclog is not None
        batch, chunk, rejections = prepared.batch, prepared.counts, prepared.rejections
        if self._lease is not None and self._lease.lost.is_set():
            raise FatalSyncError("lost the pipeline's lease (the state store was unreachable); stopping")
        if self.dry_run:
            chunk.rejected = len(rejections)
            return chunk
        if prepared.skipped:
            with self.db.session() as session:
                self._save_state(session, sel.name, batch.state, complete=False)
            return chunk
        to_write = prepared.to_write
        rejected_before_write = sum(1 for _, destination in rejections if destination is None)
        # A row that failed in any destination is not marked delivered: the next run retries it.
        for row in failed_rows:
            prepared.delivered.pop(prepared.digests[row], None)
            if prepared.is_new[row]:
                chunk.inserted -= 1
            else:
                chunk.updated -= 1
        chunk.rejected = rejected_before_write + len(failed_rows)
        updated_existing = prepared.updates_existing

        if prepared.identity is not None:
            # Before the checkpoint: after a crash the chunk is replayed and resolved again (idempotent).
            self._identities_resolved(ctx, prepared.identity)
        notices: list[Change] = []
        with self.db.session() as session:
            if updated_existing:
                index.forget_fingerprints(session)
            if to_write is not None and len(to_write):
                keep = [i for i in range(len(to_write)) if i not in failed_rows]
                positions = to_write[POSITION].astype(str).tolist()
                if prepared.changes is not None:  # change events: before the new hashes replace the old
                    notices = self._record_changes(session, ctx, prepared, keep)
                index.save(
                    session,
                    [prepared.digests[i] for i in keep],
                    [prepared.hashes[i] for i in keep],
                    [positions[i] for i in keep],
                    synclog.run_id,
                    [prepared.changes.field_hashes[i] for i in keep] if prepared.changes else None,
                )
            save_raw_records(session, prepared.raw, synclog.run_id)
            for rejection, destination in rejections:
                self._dead_letter(session, sel.name, rejection, destination)
                self._rejected_positions.append(rejection.position)
            if prepared.fingerprint and not rejections and not updated_existing:
                index.save_fingerprint(session, prepared.fingerprint, prepared.rows, synclog.run_id)
            if batch.state is not None:
                self._save_state(session, sel.name, batch.state, complete=False)
            run = session.get(Run, synclog.run_id)
            if run is not None:
                run.heartbeat_at = utcnow()
        if notices:
            self._notify(
                "hub_records_changed",
                run_id=synclog.run_id,
                pipeline=self.pipeline.name,
                entity=ctx.entity,
                events=notices,
            )
        if rejections:
            for rejection, _ in rejections:
                self._notify(
                    "hub_record_rejected",
                    run_id=synclog.run_id,
                    pipeline=self.pipeline.name,
                    stream=sel.name,
                    position=rejection.position,
                    reason=rejection.reason,
                )
            synclog.event(
                "warning",
                "rejected",
                f"{len(rejections)} record(s) to dead letters; first: {rejections[0][0].position}: "
                f"{rejections[0][0].reason}",
                stream=sel.name,
                details={"positions": [r.position for r, _ in rejections[:50]]},
            )
        if batch.state is not None and chunk.read:
            synclog.event(
                "debug", "checkpoint", f"checkpoint after {read_before + chunk.read} records", stream=sel.name
            )
        return chunk

    def _record_changes(
        self, session: Any, ctx: StreamContext, prepared: Prepared, keep: list[int]
    ) -> list[Change]:
        """Insert the chunk's change events in the transaction of its checkpoint (hub.changes).

        Returns them for the ``hub_records_changed`` hook, if a plugin implements it.
        """
        assert self.synclog is not None and prepared.changes is not None
        hooked = bool(self.project.registry.pm.hook.hub_records_changed.get_hookimpls())
        _count, notices = self._changes.record(
            session,
            ctx.index,
            prepared.changes,
            keep=keep,
            digests=prepared.digests,
            hashes=prepared.hashes,
            is_new=prepared.is_new,
            run_id=self.synclog.run_id,
            stream=ctx.selection.name,
            entity=ctx.entity,
            full_refresh=self.full_refresh,
            notices=hooked,
        )
        return notices

    def _identities_resolved(self, ctx: StreamContext, resolving: Future[dict[str, int]]) -> None:
        """Wait for the chunk's identity resolution (hub.identity_worker) and log what it did."""
        actions = resolving.result()
        if self.synclog is not None and actions:
            summary = ", ".join(f"{n} {a}" for a, n in sorted(actions.items()))
            self.synclog.event(
                "warning" if actions.get("review") else "info",
                "identity",
                f"identity: {summary}" + (" (see identity reviews)" if actions.get("review") else ""),
                stream=ctx.selection.name,
                details=actions,
            )

    def _write(
        self,
        name: str,
        dest: Any,
        config: Mapping[str, Any],
        ctx: StreamContext,
        frame: pd.DataFrame,
        hashes: list[str],
    ) -> list[tuple[int, str]]:
        """Write one chunk to one destination through the outbox; return rejected rows."""
        sel, entity, pk = ctx.selection, ctx.entity, ctx.primary_key
        synclog = self.synclog
        assert synclog is not None
        digest = hashlib.sha256()
        digest.update(f"{self.pipeline.name}|{name}|{entity}|".encode())
        digest.update("".join(hashes).encode())
        key = digest.hexdigest()
        with self.db.session() as session:
            entry = session.execute(
                select(OutboxEntry).where(OutboxEntry.idempotency_key == key)
            ).scalar_one_or_none()
            if entry is None:
                entry = OutboxEntry(
                    idempotency_key=key,
                    run_id=synclog.run_id,
                    pipeline=self.pipeline.name,
                    destination=name,
                    stream=entity,
                    rows=len(frame),
                    attempts=0,
                )
                session.add(entry)
            entry.attempts += 1
            entry.status = "pending"

        def on_retry(attempt: int, exc: BaseException, delay: float) -> None:
            synclog.event(
                "warning",
                "retry",
                f"destination {name} write failed ({type(exc).__name__}: {mask_text(str(exc))}); "
                f"retry {attempt} in {delay:.1f}s",
                stream=sel.name,
            )

        if not isinstance(dest, HubDestination):
            raise FatalSyncError(f"destination {name!r} does not implement write_batch")
        # Identity-only columns dropped; personal data sealed unless the destination opts out.
        frame, schema = self._pii.for_destination(name, ctx, frame, synclog)
        try:
            result = call_with_retry(
                lambda: dest.write_batch(config, entity, frame, pk, key, schema),
                on_retry=on_retry,
                sleep=self.sleep,
            )
        except Exception as exc:
            with self.db.session() as session:
                row = session.execute(
                    select(OutboxEntry).where(OutboxEntry.idempotency_key == key)
                ).scalar_one()
                row.status, row.last_error = "failed", mask_text(f"{type(exc).__name__}: {exc}")[:2000]
            if is_transient(exc):  # retries used up: not a source failure to retry from the checkpoint
                raise SyncError(
                    f"destination {name!r} kept failing after {ATTEMPTS} attempts: "
                    f"{type(exc).__name__}: {mask_text(str(exc))}"
                ) from exc
            raise
        with self.db.session() as session:
            row = session.execute(select(OutboxEntry).where(OutboxEntry.idempotency_key == key)).scalar_one()
            row.status, row.committed_at = "committed", utcnow()
        return result.rejections

    def _dead_letter(self, session: Any, stream: str, rejection: Rejection, destination: str | None) -> None:
        """Record a rejection; the same record rejected again for the same reason updates its row."""
        assert self.synclog is not None
        reason = mask_text(rejection.reason)
        existing = (
            session.execute(
                select(DeadLetter).where(
                    DeadLetter.pipeline == self.pipeline.name,
                    DeadLetter.stream == stream,
                    DeadLetter.position == rejection.position[:500],
                    DeadLetter.status == "open",
                )
            )
            .scalars()
            .first()
        )
        payload = None
        if rejection.record is not None:
            # The stored position (500 chars at most) is what opening it will have.
            context = dead_letter_context(self.pipeline.name, stream, rejection.position[:500])
            payload = self.project.keyring.seal(
                orjson.dumps(dict(rejection.record), default=str), "personal", "dead_letters", context
            )
        if existing is not None and existing.reason == reason and existing.destination == destination:
            # The same place rejected again for the same reason: one row, holding the latest record
            # (positions like "stream#3" restart each run and may now hold another record).
            existing.run_id, existing.payload = self.synclog.run_id, payload
            return
        session.add(
            DeadLetter(
                run_id=self.synclog.run_id,
                pipeline=self.pipeline.name,
                stream=stream,
                destination=destination,
                position=rejection.position[:500],
                reason=reason,
                payload=payload,
            )
        )

    # -- replaying dead letters ------------------------------------------------------------

    def replay(self, records: Mapping[str, list[dict[str, Any]]]) -> tuple[RunResult, dict[str, set[str]]]:
        """Send records (by stream) through the destinations again, as one run.

        Returns the run and, per stream, the positions that were rejected again.
        """
        lease = LeaseHolder(self.db, f"pipeline:{self.pipeline.name}", ttl=60)
        if not lease.try_acquire():
            raise PipelineBusy(f"pipeline {self.pipeline.name!r} is running; retry when it is done")
        lease.start_renewing()
        started = time.monotonic()
        failed: dict[str, set[str]] = {}
        try:
            self.synclog = synclog = SyncLog(self.db, self.pipeline.name, self.trigger)
            synclog.event("info", "run.start", f"retry of {sum(map(len, records.values()))} dead letter(s)")
            source = self.project.source(self.pipeline.source)
            catalog = configured_catalog(
                source, self.project.config_of(self.pipeline.source), self.pipeline.streams
            )
            destinations = {
                n: (self.project.destination(n), self.project.config_of(n))
                for n in self.pipeline.destinations
            }
            totals = Counts()
            streams: dict[str, Counts] = {}
            try:
                for sel, configured in zip(self.pipeline.streams, catalog.streams, strict=True):
                    rows = records.get(sel.name)
                    if not rows:
                        continue
                    pk = [p[0] for p in (configured.primary_key or [])]
                    ctx = self._stream_context(sel, configured, pk)
                    if ctx.mapping is not None:  # dead letters of a destination hold mapped rows
                        ctx = replace(ctx, mapping=None, record_key=[REMOTE_ID])
                    counts = Counts()
                    before = len(self._rejected_positions)
                    batch = RecordBatch(stream=sel.name, frame=pd.DataFrame.from_records(rows))
                    prepared = self._prepare(batch, ctx, 0)
                    written = self._write_chunk(prepared, ctx, destinations)
                    counts.add(self._commit(prepared, ctx, 0, written))
                    failed[sel.name] = set(self._rejected_positions[before:])
                    streams[sel.name] = counts
                    totals.add(counts)
                    synclog.save_stats(sel.name, "", counts)
            finally:
                for dest, _config in destinations.values():
                    if isinstance(dest, HubDestination):
                        dest.close()
            status = "partial" if totals.rejected else "succeeded"
            synclog.event(
                "info",
                "run.end",
                f"retry {status}: {totals.rejected} still rejected",
                details=totals.as_dict(),
            )
            synclog.finish(status, totals)
            return RunResult(
                synclog.run_id,
                self.pipeline.name,
                status,
                totals,
                streams,
                duration=time.monotonic() - started,
            ), failed
        finally:
            self._pii.close()  # the sealing workers, if the run started any
            self._identity.close()  # and the identity worker
            self._flush_key_counters()
            lease.release()
