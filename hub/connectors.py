"""The connector contract: Airbyte sources and destinations, plus hub's batch fast path.

Every connector speaks the Airbyte protocol (spec / check / discover / read, and
``Destination.write`` that echoes STATE only after a commit), built on airbyte-cdk's own
classes and models. Connectors that move bulk data may also implement ``read_batches`` /
``write_batch``: the engine then moves columnar chunks instead of one message per record,
and the Airbyte methods remain available (and tested) on top of the same code.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
from airbyte_cdk.destinations import Destination
from airbyte_cdk.models import (
    AirbyteLogMessage,
    AirbyteMessage,
    AirbyteRecordMessage,
    AirbyteStateBlob,
    AirbyteStateMessage,
    AirbyteStateType,
    AirbyteStreamState,
    ConfiguredAirbyteCatalog,
    ConnectorSpecification,
    Level,
    StreamDescriptor,
    Type,
)
from airbyte_cdk.sources.source import Source

from hub import _contain_airbyte_logging
from hub.frames import META_PREFIX

_contain_airbyte_logging()  # importing airbyte_cdk put its JSON handler on the root logger

Category = Literal["ats", "assessment", "hris", "oa", "finance", "econtract", "generic"]
CATEGORIES: tuple[str, ...] = ("ats", "assessment", "hris", "oa", "finance", "econtract", "generic")

#: Column holding each record's source position (``file.csv:12``); never written to a destination.
POSITION = "_hub_position"


@dataclass(frozen=True)
class Connector:
    """A connector a plugin registers: a name, a category and its Airbyte classes."""

    name: str
    category: Category
    source: type[Source] | None = None
    destination: type[Destination] | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"connector {self.name!r}: unknown category {self.category!r}")
        if self.source is None and self.destination is None:
            raise ValueError(f"connector {self.name!r} has neither a source nor a destination")

    def spec(self) -> ConnectorSpecification:
        impl = self.source or self.destination
        assert impl is not None
        return impl().spec(logging.getLogger("hub.connectors"))


@dataclass(frozen=True)
class Rejection:
    """A record the source or a destination could not take, bound for dead letters."""

    position: str
    reason: str
    record: Mapping[str, Any] | None = None


@dataclass
class RecordBatch:
    """A chunk of one stream: records as a frame of strings, plus the checkpoint after it.

    ``state`` is the per-stream state to save once every destination committed this batch.
    ``fingerprint`` (optional) is a digest of the raw bytes behind the batch: a batch whose
    fingerprint was committed before holds exactly the records committed then.
    """

    stream: str
    frame: pd.DataFrame
    state: dict[str, Any] | None = None
    rejections: list[Rejection] = field(default_factory=list)
    fingerprint: str | None = None

    def __len__(self) -> int:
        return len(self.frame)


def stream_state_message(stream: str, state: Mapping[str, Any]) -> AirbyteMessage:
    """A per-stream Airbyte STATE message."""
    return AirbyteMessage(
        type=Type.STATE,
        state=AirbyteStateMessage(
            type=AirbyteStateType.STREAM,
            stream=AirbyteStreamState(
                stream_descriptor=StreamDescriptor(name=stream),
                stream_state=AirbyteStateBlob(**dict(state)),
            ),
        ),
    )


def state_of(message: AirbyteStateMessage) -> tuple[str, dict[str, Any]]:
    """Stream name and plain-dict state of a per-stream STATE message."""
    stream = message.stream
    if stream is None:
        raise ValueError("only per-stream STATE messages are supported")
    blob = stream.stream_state
    data = dict(blob.__dict__) if blob is not None else {}
    return stream.stream_descriptor.name, data


def records_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a frame as dicts, without hub metadata columns, nulls dropped."""
    data_cols = [c for c in frame.columns if not str(c).startswith(META_PREFIX)]
    sub = frame[data_cols].astype(object).where(frame[data_cols].notna(), None)
    return [{k: v for k, v in row.items() if v is not None} for row in sub.to_dict("records")]


class HubSource(Source):
    """An Airbyte source whose ``read`` is built on :meth:`read_batches`."""

    def read_batches(
        self,
        logger: logging.Logger,
        config: Mapping[str, Any],
        stream: str,
        state: Mapping[str, Any] | None,
        options: Mapping[str, Any] | None = None,
    ) -> Iterator[RecordBatch]:
        """Yield the stream's records in chunks, each with the state to resume after it."""
        raise NotImplementedError

    def read(
        self,
        logger: logging.Logger,
        config: Mapping[str, Any],
        catalog: ConfiguredAirbyteCatalog,
        state: Any = None,
    ) -> Iterator[AirbyteMessage]:
        states: dict[str, dict[str, Any]] = {}
        for message in state or []:
            name, data = state_of(message)
            states[name] = data
        for configured in catalog.streams:
            name = configured.stream.name
            for batch in self.read_batches(logger, config, name, states.get(name)):
                now = int(time.time() * 1000)
                for rejection in batch.rejections:
                    yield AirbyteMessage(
                        type=Type.LOG,
                        log=AirbyteLogMessage(
                            level=Level.WARN,
                            message=f"{name}: rejected {rejection.position}: {rejection.reason}",
                        ),
                    )
                for record in records_of(batch.frame):
                    yield AirbyteMessage(
                        type=Type.RECORD,
                        record=AirbyteRecordMessage(stream=name, data=record, emitted_at=now),
                    )
                if batch.state is not None:
                    yield stream_state_message(name, batch.state)


@dataclass
class WriteResult:
    """What a destination did with one batch."""

    written: int
    rejections: list[tuple[int, str]] = field(default_factory=list)  # (row index in batch, reason)


class HubDestination(Destination):
    """An Airbyte destination whose ``write`` is built on :meth:`write_batch`.

    ``write_batch`` must commit before it returns, and be idempotent for a given
    ``idempotency_key``: after a crash the engine replays the batch with the same key.
    """

    def write_batch(
        self,
        config: Mapping[str, Any],
        stream: str,
        frame: pd.DataFrame,
        primary_key: list[str],
        idempotency_key: str,
        schema: Mapping[str, Any] | None = None,
    ) -> WriteResult:
        """Write (upsert) ``frame`` into ``stream`` and commit; ``schema`` is its JSON Schema."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections; called once at the end of a run."""

    def write(
        self,
        config: Mapping[str, Any],
        configured_catalog: ConfiguredAirbyteCatalog,
        input_messages: Iterable[AirbyteMessage],
    ) -> Iterable[AirbyteMessage]:
        keys = {
            s.stream.name: [p[0] for p in (s.primary_key or s.stream.source_defined_primary_key or [])]
            for s in configured_catalog.streams
        }
        schemas = {s.stream.name: s.stream.json_schema for s in configured_catalog.streams}
        buffers: dict[str, list[dict[str, Any]]] = {}
        seen: dict[str, int] = {}
        sequence = 0

        def flush() -> list[AirbyteMessage]:
            """Write and commit what is buffered; a LOG message for each record refused."""
            nonlocal sequence
            warnings: list[AirbyteMessage] = []
            for stream, rows in buffers.items():
                if rows:
                    sequence += 1
                    frame = pd.DataFrame.from_records(rows)
                    pk = [k for k in keys.get(stream, []) if k in frame.columns]
                    if pk:  # a key sent twice since the last state: its last version wins
                        frame = frame.drop_duplicates(subset=pk, keep="last").reset_index(drop=True)
                    result = self.write_batch(
                        config, stream, frame, keys.get(stream, []), f"write:{sequence}", schemas.get(stream)
                    )
                    for row, reason in result.rejections:
                        warnings.append(
                            AirbyteMessage(
                                type=Type.LOG,
                                log=AirbyteLogMessage(
                                    level=Level.WARN,
                                    message=f"{stream}: rejected {frame[POSITION].iat[row]}: {reason}",
                                ),
                            )
                        )
            buffers.clear()
            return warnings

        try:
            for message in input_messages:
                if message.type == Type.RECORD and message.record is not None:
                    stream = message.record.stream
                    seen[stream] = seen.get(stream, 0) + 1
                    data = {**message.record.data, POSITION: f"{stream}#{seen[stream]}"}
                    buffers.setdefault(stream, []).append(data)
                elif message.type == Type.STATE:
                    yield from flush()  # committed: only now may the state go back
                    yield message
            yield from flush()
        finally:
            self.close()
