"""The ``evaluations`` stream: one record per application, scored by hub.evaluation.

::

    [connectors.evaluations]
    plugin = "evaluation"
    [connectors.evaluations.config]
    project = "hub.toml"                 # whose [evaluation] rules, canonical store and keys to use
    recommendations = ["recommend"]      # emit only these (default: all)
    # jobs = ["J-1001"]                  # only these jobs' applications (remote id or code)

    [pipelines.recommended_to_hr]
    source = "evaluations"
    streams = [{ name = "evaluations", sync_mode = "incremental" }]
    destinations = ["hr_master"]

Records carry ids, scores, the recommendation and its reasons, never a name or a contact.
The key is ``application_remote_id``. Incremental reads emit the applications whose inputs
changed (``inputs_updated_at``, the latest ``remote_updated_at`` / ``remote_created_at`` of
any record an evaluation reads) after the last run's cursor (those at the cursor itself that
the last run did not emit count too), and every application whose records have no timestamp;
a change of the ``[evaluation]`` rules starts over from the beginning. A filter
(``recommendations``, ``jobs``) only limits what is emitted: an application that stops being
recommended is not emitted again, so a destination keeps its last recommendation.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from airbyte_cdk.models import (
    AirbyteCatalog,
    AirbyteConnectionStatus,
    AirbyteStream,
    ConnectorSpecification,
    Status,
    SyncMode,
)

from hub.connectors import POSITION, HubSource, RecordBatch
from hub.errors import FatalSyncError, HubError
from hub.frames import as_text
from hub.masking import mask_text

STREAM = "evaluations"
PRIMARY_KEY = "application_remote_id"
CURSOR = "inputs_updated_at"
RECOMMENDATIONS = ("recommend", "hold", "reject")

SPEC: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "evaluation",
    "type": "object",
    "required": ["project"],
    "additionalProperties": False,
    "properties": {
        "project": {
            "type": "string",
            "x-hub-path": True,
            "description": "hub.toml whose [evaluation] rules, canonical store and keys to use "
            '(relative to this hub.toml: usually "hub.toml")',
        },
        "recommendations": {
            "type": "array",
            "items": {"enum": list(RECOMMENDATIONS)},
            "description": "emit only applications with these recommendations (default: all)",
        },
        "jobs": {
            "type": "array",
            "items": {"type": "string"},
            "description": "emit only applications of these jobs (remote id, hub id or code)",
        },
    },
}

_TEXT = {"type": ["null", "string"]}
_NUMBER = {"type": ["null", "string"], "x-hub-type": "number"}
#: The stream's columns: everything travels as text, numbers marked for destinations.
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "application_remote_id": {"type": "string"},
        "application_hub_id": _TEXT,
        "candidate_remote_id": _TEXT,
        "job_remote_id": _TEXT,
        "composite": _NUMBER,
        "resume_score": _NUMBER,
        "assessment_score": _NUMBER,
        "interview_score": _NUMBER,
        "competency_scores": _TEXT,
        "background_check": _TEXT,
        "recommendation": _TEXT,
        "reasons": _TEXT,
        "disagreement": {"type": ["null", "boolean"]},
        "interviewer_spread": _NUMBER,
        "evaluated_at": {"type": ["null", "string"], "format": "date-time"},
        "inputs_updated_at": {"type": ["null", "string"], "format": "date-time"},
    },
}


def _project(config: Mapping[str, Any]) -> Any:
    from hub.project import Project

    return Project(Path(str(config["project"])))


class EvaluationSource(HubSource):
    """Reads the canonical store through :mod:`hub.evaluation` and emits one record per application."""

    def spec(self, logger: logging.Logger) -> ConnectorSpecification:
        return ConnectorSpecification(connectionSpecification=SPEC, supportsIncremental=True)

    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        from hub.evaluation.service import ProjectEvaluation

        try:
            data = ProjectEvaluation(_project(config)).load()
        except (HubError, OSError) as exc:
            return AirbyteConnectionStatus(status=Status.FAILED, message=mask_text(str(exc))[:500])
        except Exception as exc:  # noqa: BLE001 - a failed check says why
            return AirbyteConnectionStatus(
                status=Status.FAILED, message=f"{type(exc).__name__}: {mask_text(str(exc))[:300]}"
            )
        count = len(data.applications.rows)
        return AirbyteConnectionStatus(
            status=Status.SUCCEEDED, message=f"{count} applications in the canonical store"
        )

    def discover(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteCatalog:
        return AirbyteCatalog(
            streams=[
                AirbyteStream(
                    name=STREAM,
                    json_schema=SCHEMA,
                    supported_sync_modes=[SyncMode.full_refresh, SyncMode.incremental],
                    source_defined_cursor=True,
                    default_cursor_field=[CURSOR],
                    source_defined_primary_key=[[PRIMARY_KEY]],
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
    ) -> Iterator[RecordBatch]:
        from hub.evaluation.service import ProjectEvaluation

        if stream != STREAM:
            raise FatalSyncError(f"the evaluation source has one stream, {STREAM!r}, not {stream!r}")
        options = options or {}
        chunk_size = int(options.get("chunk_size", 20000))
        incremental = options.get("cursor_field") is not None
        service = ProjectEvaluation(_project(config))
        evaluator = service.evaluator()
        digest = service.config.digest()
        since: datetime | None = None
        seen: set[str] = set()
        if incremental and state and state.get("config") == digest and state.get("cursor"):
            since = datetime.fromisoformat(str(state["cursor"]))
            seen = set(state.get("seen") or [])

        apps = None
        if config.get("jobs"):
            of_jobs: dict[str, Any] = {}
            for job in config["jobs"]:
                for app in evaluator.data.applications_of_job(str(job)):
                    of_jobs[app.remote_id] = app
            apps = [of_jobs[k] for k in sorted(of_jobs)]
        wanted = set(config.get("recommendations") or RECOMMENDATIONS)
        evaluations = [e for e, _ in evaluator.all(apps)]

        def new(e: Any) -> bool:
            stamp = e.inputs_updated_at
            if since is None or stamp is None or stamp > since:
                return True
            return stamp == since and e.application_remote_id not in seen

        stamps = [e.inputs_updated_at for e in evaluations if e.inputs_updated_at is not None]
        cursor = max([*stamps, *([since] if since else [])], default=None)
        chosen = [e for e in evaluations if e.recommendation in wanted and new(e)]
        # the applications at the cursor: a later one with the same time is still new next run
        at_cursor = sorted(
            e.application_remote_id
            for e in evaluations
            if cursor is not None and e.inputs_updated_at == cursor
        )
        if cursor is not None and cursor == since:
            at_cursor = sorted(seen | set(at_cursor))
        final_state = {"cursor": cursor.isoformat() if cursor else None, "seen": at_cursor, "config": digest}
        for start in range(0, len(chosen), chunk_size):
            part = chosen[start : start + chunk_size]
            frame = pd.DataFrame.from_records(
                [{k: None if v is None else as_text(v) for k, v in e.as_record().items()} for e in part],
                columns=list(SCHEMA["properties"]),
            ).astype("string")
            frame[POSITION] = [f"{STREAM}#{i}" for i in range(start + 1, start + len(part) + 1)]
            last = start + len(part) >= len(chosen)
            yield RecordBatch(stream=STREAM, frame=frame, state=dict(final_state) if last else None)
        if not chosen:
            yield RecordBatch(stream=STREAM, frame=pd.DataFrame(), state=final_state)
        logger.info("evaluation: %d of %d applications emitted", len(chosen), len(evaluations))
