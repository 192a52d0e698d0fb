"""The record every mode of the ``assessment`` connector produces: one row per result.

Platforms without a public API (Beisen assessment, in-house tests) deliver results as exports or
through a customer-specific REST API. Both are turned into the same columns, so one pair of
mapping files (``mappings/assessment_results_*.yaml``) serves them all:

=====================  ===================================================================
``result_id``          the result's id at the platform (required: the record's key)
``candidate_remote_id`` the ATS candidate id, when the platform carries it
``candidate_name``     read by identity resolution only (never written to a destination)
``candidate_email``    read by identity resolution only
``candidate_phone``    read by identity resolution only
``test_id``            the assessment package's id
``test_name``          the assessment package's name
``test_type``          cognitive, personality, skills, coding, language ... (free text)
``status``             the platform's status text (mapped to the canonical status)
``score``              overall score
``max_score``          highest possible overall score
``passed``             pass/fail verdict (是/否, Y/N, true/false ...)
``band``               result band or grade
``report_url``         link to the full report
``invited_at``         when the candidate was invited
``completed_at``       when the candidate finished
``updated_at``         when the platform last changed the result (REST incremental cursor)
``sub_scores``         JSON list of ``{"label", "score", "max_score"}``
=====================  ===================================================================

In files, sub-scores are columns named ``sub:<label>`` (and ``sub_max:<label>`` for their
maxima), or one ``sub_scores`` column holding JSON (that list, or ``{"label": score}``).
Other columns of a file are dropped: the connector passes on what the convention names, and
nothing else it might not know to protect.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import pandas as pd

from hub_assessment.http import plain_number

FIELDS: tuple[str, ...] = (
    "result_id",
    "candidate_remote_id",
    "candidate_name",
    "candidate_email",
    "candidate_phone",
    "test_id",
    "test_name",
    "test_type",
    "status",
    "score",
    "max_score",
    "passed",
    "band",
    "report_url",
    "invited_at",
    "completed_at",
    "updated_at",
    "sub_scores",
)
NUMBERS = frozenset({"score", "max_score"})
SUB_PREFIX = "sub:"
SUB_MAX_PREFIX = "sub_max:"

SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        **{name: {"type": ["null", "string"]} for name in FIELDS},
        "result_id": {"type": "string"},
        "sub_scores": {
            "type": ["null", "array"],
            "items": {
                "type": "object",
                "properties": {
                    "label": {"type": "string"},
                    "score": {"type": ["null", "string"]},
                    "max_score": {"type": ["null", "string"]},
                },
            },
        },
    },
}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value != value:  # NaN from a frame
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    text = str(value).strip()
    return text or None


def sub_scores(value: Any) -> list[dict[str, Any]]:
    """Sub-scores as ``[{"label", "score", "max_score"}]`` from a list of objects, an object
    ``{label: score}`` (or ``{label: {score, max_score}}``), or JSON text of either."""
    if value is None or value == "":
        return []
    if isinstance(value, str | bytes):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return []
    items: list[tuple[Any, Any]] = []
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, list):
        for entry in value:
            if isinstance(entry, Mapping):
                label = entry.get("label", entry.get("name"))
                items.append((label, entry))
    out = []
    for label, entry in items:
        if label is None or str(label).strip() == "":
            continue
        if isinstance(entry, Mapping):
            score, top = entry.get("score"), entry.get("max_score", entry.get("full_score"))
        else:
            score, top = entry, None
        out.append(
            {"label": str(label).strip(), "score": plain_number(score), "max_score": plain_number(top)}
        )
    return out


def normalise_record(values: Mapping[str, Any]) -> dict[str, Any]:
    """One result in the convention: every field present (None when unknown), values as text,
    numbers without float noise, sub-scores as a list."""
    record: dict[str, Any] = {}
    for name in FIELDS:
        value = values.get(name)
        if name == "sub_scores":
            record[name] = sub_scores(value)
        elif name in NUMBERS:
            record[name] = plain_number(value) if plain_number(value) is not None else _text(value)
        else:
            record[name] = _text(value)
    return record


def normalise_frame(
    frame: pd.DataFrame,
    rename: Mapping[str, str] | None = None,
    sub_prefix: str = SUB_PREFIX,
    sub_max_prefix: str = SUB_MAX_PREFIX,
) -> pd.DataFrame:
    """A chunk of an export in the convention: headers renamed, ``sub:<label>`` columns
    folded into ``sub_scores``, missing convention columns added empty, other columns dropped.

    Hub's own ``_hub_*`` columns (source positions) are kept.
    """
    renamed = frame.rename(columns={str(k): str(v) for k, v in (rename or {}).items()})
    renamed.columns = [str(c).strip() for c in renamed.columns]
    meta = [c for c in renamed.columns if c.startswith("_hub_")]
    subs = [c for c in renamed.columns if c.startswith(sub_prefix) and not c.startswith(sub_max_prefix)]
    maxima = {c[len(sub_max_prefix) :].strip(): c for c in renamed.columns if c.startswith(sub_max_prefix)}
    rows = renamed.astype(object).where(renamed.notna(), None).to_dict("records")
    out: dict[str, list[Any]] = {name: [] for name in FIELDS}
    for row in rows:
        folded = sub_scores(row.get("sub_scores"))
        for column in subs:
            label = column[len(sub_prefix) :].strip()
            score = row.get(column)
            if label and _text(score) is not None:
                top = row.get(maxima[label]) if label in maxima else None
                folded.append({"label": label, "score": plain_number(score), "max_score": plain_number(top)})
        values = {**row, "sub_scores": folded}
        record = normalise_record(values)
        for name in FIELDS:
            value = record[name]
            out[name].append(_text(value) if name == "sub_scores" and value else (value or None))
    result = pd.DataFrame(out, index=renamed.index)
    for column in meta:
        result[column] = renamed[column]
    return result
