"""A generic Airbyte source, written only against airbyte-cdk: no hub base class.

It reads ``{"stream": [records]}`` from a JSON file, incrementally by each record's ``seq``,
emits a per-stream STATE every ``state_every`` records and at the end of each stream, and
appends the state ``read`` was given to ``<file>.reads.jsonl`` so tests can see it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from airbyte_cdk.models import (
    AirbyteCatalog,
    AirbyteConnectionStatus,
    AirbyteMessage,
    AirbyteRecordMessage,
    AirbyteStateBlob,
    AirbyteStateMessage,
    AirbyteStateMessageSerializer,
    AirbyteStateType,
    AirbyteStream,
    AirbyteStreamState,
    ConfiguredAirbyteCatalog,
    ConnectorSpecification,
    Status,
    StreamDescriptor,
    SyncMode,
    Type,
)
from airbyte_cdk.sources.source import Source

import hub

STREAMS: dict[str, dict[str, Any]] = {
    "people": {
        "primary_key": "id",
        "properties": {
            "id": {"type": "string"},
            "name": {"type": ["null", "string"]},
            "seq": {"type": "integer"},
            "hired": {"type": ["null", "string"], "format": "date"},
        },
    },
    "teams": {
        "primary_key": "code",
        "properties": {"code": {"type": "string"}, "title": {"type": "string"}, "seq": {"type": "integer"}},
    },
}


def state_message(stream: str, seq: int) -> AirbyteMessage:
    return AirbyteMessage(
        type=Type.STATE,
        state=AirbyteStateMessage(
            type=AirbyteStateType.STREAM,
            stream=AirbyteStreamState(
                stream_descriptor=StreamDescriptor(name=stream), stream_state=AirbyteStateBlob(seq=seq)
            ),
        ),
    )


class ExportSource(Source):
    def spec(self, logger: logging.Logger) -> ConnectorSpecification:
        return ConnectorSpecification(
            connectionSpecification={
                "type": "object",
                "required": ["path"],
                "additionalProperties": False,
                "properties": {
                    "path": {"type": "string", "x-hub-path": True},
                    "state_every": {"type": "integer", "minimum": 1},
                },
            },
            supportsIncremental=True,
        )

    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        ok = Path(config["path"]).is_file()
        return AirbyteConnectionStatus(status=Status.SUCCEEDED if ok else Status.FAILED)

    def discover(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteCatalog:
        return AirbyteCatalog(
            streams=[
                AirbyteStream(
                    name=name,
                    json_schema={"type": "object", "properties": spec["properties"]},
                    supported_sync_modes=[SyncMode.full_refresh, SyncMode.incremental],
                    source_defined_cursor=True,
                    default_cursor_field=["seq"],
                    source_defined_primary_key=[[spec["primary_key"]]],
                )
                for name, spec in STREAMS.items()
            ]
        )

    def read(
        self,
        logger: logging.Logger,
        config: Mapping[str, Any],
        catalog: ConfiguredAirbyteCatalog,
        state: list[AirbyteStateMessage] | None = None,
    ) -> Iterator[AirbyteMessage]:
        path = Path(config["path"])
        data = json.loads(path.read_text(encoding="utf-8"))
        given: dict[str, Any] = {}
        for message in state or []:
            dumped = AirbyteStateMessageSerializer.dump(message)
            given[dumped["stream"]["stream_descriptor"]["name"]] = dumped["stream"].get("stream_state")
        with open(path.with_suffix(".reads.jsonl"), "a", encoding="utf-8") as handle:
            streams = [s.stream.name for s in catalog.streams]
            handle.write(json.dumps({"streams": streams, "state": given}) + "\n")
        every = int(config.get("state_every", 2))
        for configured in catalog.streams:
            name = configured.stream.name
            incremental = configured.sync_mode == SyncMode.incremental
            last = int((given.get(name) or {}).get("seq", 0)) if incremental else 0
            fresh = [r for r in data.get(name, []) if r["seq"] > last]
            for i, record in enumerate(fresh, start=1):
                yield AirbyteMessage(
                    type=Type.RECORD,
                    record=AirbyteRecordMessage(stream=name, data=record, emitted_at=int(time.time() * 1000)),
                )
                last = record["seq"]
                if i % every == 0:
                    yield state_message(name, last)
            yield state_message(name, last)


@hub.hookimpl
def hub_register_connectors() -> list[hub.Connector]:
    return [hub.Connector(name="airbyte_export", category="generic", source=ExportSource)]
