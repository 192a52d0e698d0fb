"""Connectors that fail on purpose: ``flaky`` (a HubSource) and ``flaky_sql`` (a HubDestination).

Each read or write attempt appends a JSON line to ``log`` (so tests can count attempts and see
the state a retry resumed from). The first ``fail_times`` attempts of a run fail with ``error``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import requests
from airbyte_cdk.models import (
    AirbyteCatalog,
    AirbyteConnectionStatus,
    AirbyteStream,
    ConnectorSpecification,
    Status,
    SyncMode,
)
from hub_sql.common import SPEC as SQL_SPEC
from hub_sql.destination import SqlDestination

import hub

FAILURE_PROPERTIES: dict[str, Any] = {
    "log": {"type": "string", "x-hub-path": True},
    "fail_times": {"type": "integer", "minimum": 0},
    "error": {"enum": ["retriable", "http503", "http400", "value"]},
    "retry_after": {"type": "number"},
}


def failure(config: Mapping[str, Any]) -> Exception:
    kind = config.get("error", "retriable")
    retry_after = config.get("retry_after")
    if kind == "retriable":
        return hub.RetriableSyncError("429 Too Many Requests", retry_after=retry_after)
    if kind in ("http503", "http400"):
        response = requests.Response()
        response.status_code = int(kind[4:])
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return requests.HTTPError(f"{response.status_code} Server Error", response=response)
    return ValueError("the export has a column nobody declared")


def note(config: Mapping[str, Any], **entry: Any) -> None:
    with open(Path(config["log"]), "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")


class FlakySource(hub.HubSource):
    """``rows`` people in chunks; a failing read fails after ``fail_after`` chunks (after ``pause``)."""

    def __init__(self) -> None:
        self.reads = 0

    def spec(self, logger: logging.Logger) -> ConnectorSpecification:
        return ConnectorSpecification(
            connectionSpecification={
                "type": "object",
                "required": ["log"],
                "additionalProperties": False,
                "properties": {
                    **FAILURE_PROPERTIES,
                    "rows": {"type": "integer"},
                    "fail_after": {"type": "integer", "minimum": 0},
                    "pause": {"type": "number"},
                },
            }
        )

    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        return AirbyteConnectionStatus(status=Status.SUCCEEDED)

    def discover(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteCatalog:
        return AirbyteCatalog(
            streams=[
                AirbyteStream(
                    name="people",
                    json_schema={
                        "type": "object",
                        "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
                    },
                    supported_sync_modes=[SyncMode.full_refresh, SyncMode.incremental],
                    source_defined_primary_key=[["id"]],
                )
            ]
        )

    def read_batches(
        self,
        logger: logging.Logger,
        config: Mapping[str, Any],
        stream: str,
        state: Mapping[str, Any] | None,
        options: Mapping[str, Any] | None = None,
    ) -> Iterator[hub.RecordBatch]:
        self.reads += 1
        note(config, read=self.reads, state=dict(state) if state is not None else None)
        failing = self.reads <= int(config.get("fail_times", 0))
        rows = int(config.get("rows", 10))
        size = int((options or {}).get("chunk_size", 4))
        start = int((state or {}).get("after", 0))
        for chunk, low in enumerate(range(start, rows, size)):
            if failing and chunk == int(config.get("fail_after", 0)):
                break
            high = min(low + size, rows)
            ids = [f"E{i:04d}" for i in range(low + 1, high + 1)]
            frame = pd.DataFrame({"id": ids, "name": [f"person {i}" for i in ids]})
            yield hub.RecordBatch(stream=stream, frame=frame, state={"after": high})
        if failing:
            time.sleep(float(config.get("pause", 0)))  # lets the last chunk's write finish first
            raise failure(config)
        yield hub.RecordBatch(stream=stream, frame=pd.DataFrame(), state={"after": rows})


class FlakyDestination(SqlDestination):
    """The sql destination, whose first ``fail_times`` writes of a run fail."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def spec(self, logger: logging.Logger) -> ConnectorSpecification:
        properties = {**SQL_SPEC["properties"], **FAILURE_PROPERTIES}
        return ConnectorSpecification(connectionSpecification={**SQL_SPEC, "properties": properties})

    def write_batch(
        self,
        config: Mapping[str, Any],
        stream: str,
        frame: pd.DataFrame,
        primary_key: list[str],
        idempotency_key: str,
        schema: Mapping[str, Any] | None = None,
    ) -> hub.WriteResult:
        self.writes += 1
        note(config, write=self.writes, key=idempotency_key, rows=len(frame))
        if self.writes <= int(config.get("fail_times", 0)):
            raise failure(config)
        return super().write_batch(config, stream, frame, primary_key, idempotency_key, schema)


@hub.hookimpl
def hub_register_connectors() -> list[hub.Connector]:
    return [
        hub.Connector(name="flaky", category="generic", source=FlakySource),
        hub.Connector(name="flaky_sql", category="generic", destination=FlakyDestination),
    ]
