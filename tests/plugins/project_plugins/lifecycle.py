"""A project plugin that records every lifecycle hook call in ``calls.jsonl`` beside hub.toml."""

import json
from pathlib import Path
from typing import Any

import hub

CALLS = Path(__file__).resolve().parent.parent / "calls.jsonl"


def _record(hook: str, **kwargs: Any) -> None:
    with open(CALLS, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"hook": hook, **kwargs}) + "\n")


@hub.hookimpl
def hub_run_started(run_id: int, pipeline: str, trigger: str) -> None:
    _record("hub_run_started", run_id=run_id, pipeline=pipeline, trigger=trigger)


@hub.hookimpl
def hub_run_finished(run_id: int, pipeline: str, status: str, counts: dict[str, int]) -> None:
    _record("hub_run_finished", run_id=run_id, pipeline=pipeline, status=status, counts=counts)


@hub.hookimpl
def hub_record_rejected(run_id: int, pipeline: str, stream: str, position: str, reason: str) -> None:
    _record(
        "hub_record_rejected",
        run_id=run_id,
        pipeline=pipeline,
        stream=stream,
        position=position,
        reason=reason,
    )
