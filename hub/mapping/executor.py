"""Run a mapping over a chunk of source records, column by column.

One record (a webhook) is a chunk of one: the same code gives the same result. Each record
either yields its canonical fields or is rejected with every field-level reason at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jmespath
import numpy as np
import orjson
import pandas as pd

from hub.connectors import POSITION, Rejection, records_of
from hub.errors import FatalSyncError
from hub.mapping.loader import Condition, FieldRule, MappingSpec
from hub.masking import mask_text, mask_value

#: Columns carrying identity fields: hub metadata, never written to a destination or hashed.
IDENTITY_PREFIX = "_hub_identity_"
#: Column a mapped record carries with its id at the source (the record's key).
REMOTE_ID = "remote_id"


@dataclass
class MappingResult:
    """Mapped records (one column per target field), and what was rejected or warned about."""

    frame: pd.DataFrame
    rejections: list[Rejection] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    kept: np.ndarray | None = None  # boolean mask over the input rows that were mapped


def _nullish(values: pd.Series) -> np.ndarray:
    """Null, NaN, or text that is empty once trimmed."""
    items = values.to_numpy(dtype=object)
    blank = np.fromiter((isinstance(v, str) and not v.strip() for v in items), dtype=bool, count=len(items))
    return values.isna().to_numpy(dtype=bool) | blank


def _condition(cond: Condition, frame: pd.DataFrame) -> np.ndarray:
    column = _column(frame, cond.column)
    if cond.not_empty:
        return ~_nullish(column)
    text = (
        column.astype(object)
        .where(column.notna(), None)
        .map(lambda v: v.strip() if isinstance(v, str) else v)
    )
    if cond.any_of is not None:
        return text.isin([str(v) for v in cond.any_of]).to_numpy(dtype=bool)
    return (text == str(cond.equals)).to_numpy(dtype=bool)


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame.columns:
        raise FatalSyncError(f"the mapping reads column {name!r}, which the source records do not have")
    column = frame[name]
    if isinstance(column.dtype, pd.ArrowDtype) or column.dtype == "string":
        column = column.astype(object).where(column.notna(), None)
    return column


def _json_path(rule: FieldRule, frame: pd.DataFrame) -> pd.Series:
    """Evaluate a JMESPath rooted at a JSON column, per row (nested vendor payloads)."""
    assert rule.path is not None and rule.json_column is not None
    column = _column(frame, rule.json_column)
    rest = rule.path[len(rule.json_column) :].lstrip(".")
    compiled = jmespath.compile(rest) if rest else None

    def pick(value: Any) -> Any:
        if value is None:
            return None
        document = orjson.loads(value) if isinstance(value, str | bytes) else value
        return compiled.search(document) if compiled is not None else document

    return column.map(pick, na_action="ignore")


def _shown(value: Any, kind: str | None) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "empty"
    if kind is not None:
        return mask_value(kind, value)
    return mask_text(str(value))[:40]


def apply_mapping(
    spec: MappingSpec,
    frame: pd.DataFrame,
    transforms: Mapping[str, Any],
    pii_kinds: Mapping[str, str | None] | None = None,
) -> MappingResult:
    """Map ``frame`` (source columns, plus ``_hub_position``) into the spec's entity fields.

    ``pii_kinds`` maps target fields that hold personal data to their masking kind, so
    rejection reasons show such values masked (and other values scanned for PII shapes).
    """
    from hub.transforms import TransformContext

    pii_kinds = pii_kinds or {}
    n = len(frame)
    if n == 0:
        return MappingResult(
            frame=pd.DataFrame(columns=[*spec.fields, POSITION]), kept=np.zeros(0, dtype=bool)
        )
    index = frame.index
    reasons: dict[int, list[str]] = {}
    warnings: list[tuple[str, str]] = []
    positions = (
        frame[POSITION].astype(str).tolist() if POSITION in frame.columns else [str(i) for i in range(n)]
    )
    source = pd.DataFrame(
        {c: _column(frame, c) for c in spec.source_columns() if c in frame.columns}, index=index
    )
    ctx = TransformContext(frame=source, lookups=spec.lookups)
    out: dict[str, pd.Series] = {}

    identity_kinds = {"id_number": "id_number", "phone": "phone", "email": "email", "birth_date": "text"}
    rules = [(rule, rule.target) for rule in spec.fields.values()]
    rules += [(rule, IDENTITY_PREFIX + rule.target) for rule in spec.identity.values()]
    for rule, column in rules:
        kind = pii_kinds.get(rule.target) if column == rule.target else identity_kinds.get(rule.target)
        if rule.source is not None:
            values = _column(frame, rule.source)
        elif rule.path is not None:
            values = _json_path(rule, frame)
        else:
            values = pd.Series([None] * n, index=index, dtype=object)
        original = values
        active = _condition(rule.when, frame) if rule.when is not None else np.ones(n, dtype=bool)
        failed = np.zeros(n, dtype=bool)
        for step in rule.steps:
            outcome = transforms[step.name].apply(values, step.params, ctx)
            values = outcome.values
            if outcome.errors is not None:
                bad = outcome.errors.notna().to_numpy(dtype=bool) & active & ~failed
                for i in np.flatnonzero(bad):
                    shown = _shown(original.iat[i], kind)
                    reasons.setdefault(int(i), []).append(f"{rule.target} ({shown}): {outcome.errors.iat[i]}")
                failed |= bad
            if outcome.warnings is not None:
                flagged = outcome.warnings.notna().to_numpy(dtype=bool) & active
                for i in np.flatnonzero(flagged):
                    warnings.append((positions[i], f"{rule.target}: {outcome.warnings.iat[i]}"))
        values = values.astype(object)
        empty = _nullish(values)
        if rule.default is not None:
            if isinstance(rule.default, list | dict):  # pandas would take a list as a column
                items = values.to_numpy(dtype=object)
                filled = [rule.default if e else v for v, e in zip(items, empty, strict=True)]
                values = pd.Series(filled, index=index, dtype=object)
            else:
                values = values.where(~pd.Series(empty, index=index), rule.default)
            empty = _nullish(values)
        if rule.required:
            for i in np.flatnonzero(empty & active & ~failed):
                reasons.setdefault(int(i), []).append(f"{rule.target}: required value is missing")
        values = values.where(pd.Series(active & ~empty, index=index), None)
        out[column] = values

    if spec.custom_fields:
        columns = {c: _column(frame, c) for c in spec.custom_fields if c in frame.columns}
        custom = pd.DataFrame(columns, index=index)
        out["custom_fields"] = pd.Series(
            [{k: v for k, v in row.items() if v is not None} for row in custom.to_dict("records")],
            index=index,
            dtype=object,
        )

    mapped = pd.DataFrame(out, index=index)
    if POSITION in frame.columns:
        mapped[POSITION] = frame[POSITION]
    keep = np.ones(n, dtype=bool)
    rejections = []
    if reasons:
        rows = sorted(reasons)
        keep[rows] = False
        for row in rows:
            record = records_of(frame.iloc[[row]])[0]
            rejections.append(
                Rejection(position=positions[row], reason="; ".join(reasons[row]), record=record)
            )
    return MappingResult(frame=mapped.loc[keep], rejections=rejections, warnings=warnings, kept=keep)


def pii_kinds(entity: Any) -> dict[str, str | None]:
    """Target fields of ``entity`` that hold personal data, with their masking kind."""
    from hub.schema import PIIClass, pii_fields

    return {name: kind or "text" for name, (cls, kind) in pii_fields(entity).items() if cls != PIIClass.NONE}


def canonical_text(value: Any) -> str | None:
    """A mapped value as the text a destination receives (dates ISO, money and objects as JSON)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    if isinstance(value, dict | list | tuple):
        return orjson.dumps(value, default=str, option=orjson.OPT_SORT_KEYS).decode()
    return str(value)
