"""The ``assessment`` connector: assessment results from platforms without a public API.

Two modes, one output (the columns of :mod:`hub_assessment.convention`, stream ``results``):

* ``mode = "file"``: CSV, Excel or JSON exports (a Beisen assessment report export, an in-house
  test's spreadsheet), read by the ``files`` connector's reader (encodings, Excel, malformed
  rows to dead letters, resumable by row, an unchanged file skipped), then renamed
  (``rename = { "报告编号" = "result_id", ... }``) and folded: ``sub:<label>`` columns become
  the ``sub_scores`` list;
* ``mode = "rest"``: a customer's results API with OAuth client credentials, configured rather
  than coded (:mod:`hub_assessment.rest`).

Map the stream with ``mappings/assessment_results_assessment_result.yaml`` (and
``..._assessment_order.yaml``): scores are restricted personal data, sealed in every destination
that encrypts personal data; the candidate's name, e-mail and phone feed identity resolution
only, so a result joins the ATS candidate's person without contact details being stored with it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

import pandas as pd
from airbyte_cdk.models import (
    AirbyteCatalog,
    AirbyteConnectionStatus,
    AirbyteStateMessageSerializer,
    AirbyteStream,
    ConfiguredAirbyteCatalog,
    ConfiguredAirbyteStream,
    ConnectorSpecification,
    DestinationSyncMode,
    Status,
    SyncMode,
    Type,
)
from hub_files.source import FilesSource

from hub.connectors import HubSource, RecordBatch
from hub.errors import FatalSyncError
from hub_assessment.convention import FIELDS, SCHEMA, SUB_MAX_PREFIX, SUB_PREFIX, normalise_frame
from hub_assessment.rest import REST_PROPERTIES, STREAM, AssessmentRestSource

FILE_PROPERTIES: dict[str, Any] = {
    "path": {"type": "string", "x-hub-path": True, "description": "the export, relative to hub.toml"},
    "format": {"enum": ["auto", "csv", "xlsx", "json", "jsonl"], "default": "auto"},
    "encoding": {"type": "string", "default": "auto", "description": "auto, utf-8, gb18030, ..."},
    "delimiter": {"type": "string", "minLength": 1, "maxLength": 1, "default": ","},
    "sheet": {"type": "string", "description": "Excel sheet (default: the first)"},
    "rename": {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "description": 'file column -> convention column, e.g. { "报告编号" = "result_id", "逻辑" = "sub:逻辑" }',
    },
    "sub_prefix": {"type": "string", "minLength": 1, "default": SUB_PREFIX},
    "sub_max_prefix": {"type": "string", "minLength": 1, "default": SUB_MAX_PREFIX},
}

SPEC: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "assessment",
    "type": "object",
    "required": ["mode"],
    "additionalProperties": False,
    "properties": {
        "mode": {"enum": ["file", "rest"], "description": "file: an export; rest: a results API"},
        **FILE_PROPERTIES,
        **REST_PROPERTIES,
    },
    "allOf": [
        {"if": {"properties": {"mode": {"const": "file"}}}, "then": {"required": ["path"]}},
        {
            "if": {"properties": {"mode": {"const": "rest"}}},
            "then": {"required": ["base_url", "results_path"]},
        },
        {
            "if": {
                "properties": {"mode": {"const": "rest"}, "auth": {"const": "oauth2_client_credentials"}},
                "required": ["mode"],
            },
            "then": {"required": ["oauth_url", "client_id", "client_secret"]},
        },
        {
            "if": {"properties": {"auth": {"const": "bearer"}}, "required": ["auth"]},
            "then": {"required": ["api_key"]},
        },
    ],
}


def _files_config(config: Mapping[str, Any]) -> dict[str, Any]:
    keep = ("path", "format", "encoding", "delimiter", "sheet")
    return {"stream": STREAM, **{k: config[k] for k in keep if config.get(k) is not None}}


class AssessmentSource(HubSource):
    """One stream, ``results``, in the convention columns, from a file or a REST API."""

    def spec(self, logger: logging.Logger) -> ConnectorSpecification:
        return ConnectorSpecification(connectionSpecification=SPEC, supportsIncremental=True)

    @staticmethod
    def _mode(config: Mapping[str, Any]) -> str:
        return str(config.get("mode") or "file")

    def _file_columns(self, config: Mapping[str, Any]) -> list[str]:
        rename = {str(k): str(v) for k, v in (config.get("rename") or {}).items()}
        return [rename.get(c, c) for c in FilesSource().header(_files_config(config))]

    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        if self._mode(config) == "rest":
            return AssessmentRestSource().check(logger, config)
        status = FilesSource().check(logger, _files_config(config))
        if status.status != Status.SUCCEEDED:
            return status
        if "result_id" not in self._file_columns(config):
            return AirbyteConnectionStatus(
                status=Status.FAILED,
                message="the export has no result_id column (name it so, or map it with rename)",
            )
        return status

    def discover(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteCatalog:
        return AirbyteCatalog(streams=[self._stream()])

    @staticmethod
    def _stream() -> AirbyteStream:
        return AirbyteStream(
            name=STREAM,
            json_schema=SCHEMA,
            supported_sync_modes=[SyncMode.full_refresh, SyncMode.incremental],
            source_defined_cursor=True,
            default_cursor_field=["updated_at"],
            source_defined_primary_key=[["result_id"]],
        )

    def read_batches(
        self,
        logger: logging.Logger,
        config: Mapping[str, Any],
        stream: str,
        state: Mapping[str, Any] | None,
        options: Mapping[str, Any] | None = None,
    ) -> Iterator[RecordBatch]:
        if stream != STREAM:
            raise FatalSyncError(f"the assessment connector has one stream, {STREAM!r}, not {stream!r}")
        if self._mode(config) == "rest":
            yield from self._rest_batches(logger, config, state, int((options or {}).get("chunk_size", 5000)))
            return
        if "result_id" not in self._file_columns(config):
            raise FatalSyncError("the export has no result_id column (name it so, or map it with rename)")
        rename = config.get("rename") or {}
        prefixes = (
            str(config.get("sub_prefix") or SUB_PREFIX),
            str(config.get("sub_max_prefix") or SUB_MAX_PREFIX),
        )
        for batch in FilesSource().read_batches(logger, _files_config(config), STREAM, state, options):
            batch.frame = normalise_frame(batch.frame, rename, *prefixes)
            yield batch

    def _rest_batches(
        self,
        logger: logging.Logger,
        config: Mapping[str, Any],
        state: Mapping[str, Any] | None,
        chunk_size: int,
    ) -> Iterator[RecordBatch]:
        """The REST source's records, cut into chunks at its STATE messages.

        Always read as incremental: without a saved state that reads everything (what a full
        refresh asks, since the engine then passes no state), with one it reads what changed.
        """
        catalog = ConfiguredAirbyteCatalog(
            streams=[
                ConfiguredAirbyteStream(
                    stream=self._stream(),
                    sync_mode=SyncMode.incremental,
                    destination_sync_mode=DestinationSyncMode.append_dedup,
                    cursor_field=["updated_at"],
                    primary_key=[["result_id"]],
                )
            ]
        )
        states = []
        if state:
            states = [
                AirbyteStateMessageSerializer.load(
                    {
                        "type": "STREAM",
                        "stream": {"stream_descriptor": {"name": STREAM}, "stream_state": dict(state)},
                    }
                )
            ]
        rows: list[dict[str, Any]] = []

        def frame() -> pd.DataFrame:
            return (
                pd.DataFrame.from_records(rows, columns=list(FIELDS))
                if rows
                else pd.DataFrame(columns=list(FIELDS))
            )

        for message in AssessmentRestSource().read(logger, config, catalog, states):
            if message.type == Type.RECORD and message.record is not None:
                rows.append(dict(message.record.data))
                if len(rows) >= chunk_size:
                    yield RecordBatch(stream=STREAM, frame=frame())
                    rows = []
            elif (
                message.type == Type.STATE and message.state is not None and message.state.stream is not None
            ):
                blob = AirbyteStateMessageSerializer.dump(message.state)["stream"].get("stream_state") or {}
                yield RecordBatch(stream=STREAM, frame=frame(), state=dict(blob))
                rows = []
        if rows:
            yield RecordBatch(stream=STREAM, frame=frame())
