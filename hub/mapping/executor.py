"""Run a mapping over a chunk of source records, column by column.

One record (a webhook) is a chunk of one: the same code gives the same result. Each record
either yields its canonical fields or is rejected with every field-level reason at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jmespath
import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
from jmespath.visitor import TreeInterpreter

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


Search = Callable[[Any], Any]


def _identity(value: Any) -> Any:
    return value


def _chain(steps: list[Search]) -> Search:
    if len(steps) == 1:
        return steps[0]
    if len(steps) == 2:
        first, second = steps
        return lambda value: second(first(value))

    def chained(value: Any) -> Any:
        for step in steps:
            value = step(value)
        return value

    return chained


#: ``to_string`` of these is known without the JSON encoder (3-4 µs a call with its separators)
_JSON_CONSTANTS: dict[Any, str] = {None: "null", True: "true", False: "false"}


def _to_string(value: Any) -> str:
    """JMESPath's ``to_string``: text as it is, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    if type(value) is int:  # most ids: the JSON of an int is its decimal text
        return str(value)
    if value is None or type(value) is bool:
        return _JSON_CONSTANTS[value]
    return json.dumps(value, separators=(",", ":"), default=str)


def _compile_node(node: Mapping[str, Any]) -> Search | None:
    """A plain-Python function doing what jmespath's interpreter does for ``node``.

    Only the node types vendor mappings use for picking values (fields, indexes, flattening
    and list projections, multi-selects, literals, ``to_string``); None for anything else,
    which then goes to jmespath itself. Each function follows ``jmespath.visitor.TreeInterpreter``
    exactly (what a missing key, a wrong type or an index out of range give).
    """
    kind = node["type"]
    children = [c for c in node.get("children", ()) if isinstance(c, Mapping)]
    parts = [_compile_node(child) for child in children]
    if any(part is None for part in parts):
        return None
    steps: list[Search] = [part for part in parts if part is not None]
    if kind in ("identity", "current"):
        return _identity
    if kind == "field":
        name = node["value"]
        return lambda value: value.get(name) if isinstance(value, dict) else None
    if kind in ("subexpression", "index_expression", "pipe"):
        return _chain(steps) if steps else _identity
    if kind == "index":
        position = node["value"]
        if not isinstance(position, int):
            return None

        def index(value: Any) -> Any:
            if not isinstance(value, list):
                return None
            try:
                return value[position]
            except IndexError:
                return None

        return index
    if kind == "flatten" and len(steps) == 1:
        base_of = steps[0]

        def flatten(value: Any) -> Any:
            base = base_of(value)
            if not isinstance(base, list):
                return None
            merged: list[Any] = []
            for element in base:
                if isinstance(element, list):
                    merged.extend(element)
                else:
                    merged.append(element)
            return merged

        return flatten
    if kind == "projection" and len(steps) == 2:
        base_of, each = steps

        def project(value: Any) -> Any:
            base = base_of(value)
            if not isinstance(base, list):
                return None
            return [current for element in base if (current := each(element)) is not None]

        return project
    if kind == "multi_select_dict" and all(c["type"] == "key_val_pair" for c in children):
        pairs = [(str(c["value"]), step) for c, step in zip(children, steps, strict=True)]
        return lambda value: None if value is None else {key: pick(value) for key, pick in pairs}
    if kind == "key_val_pair" and len(steps) == 1:
        return steps[0]
    if kind == "multi_select_list":
        return lambda value: None if value is None else [pick(value) for pick in steps]
    if kind == "literal" and not children:
        constant = node["value"]
        return lambda value: constant
    if kind == "function_expression" and node["value"] == "to_string" and len(steps) == 1:
        argument = steps[0]
        return lambda value: _to_string(argument(value))
    return None


def compile_path(expression: str) -> Search:
    """A JMESPath expression as a function of a document.

    Simple paths (``a.b[0].c``, ``list[].{x: x}``...) run as direct dict and list access, the
    rest through one jmespath interpreter per compiled expression (jmespath's own ``search``
    makes an interpreter per call, which costs more than the lookup).
    """
    parsed = jmespath.compile(expression)
    direct = _compile_node(parsed.parsed)
    if direct is not None:
        return direct
    interpreter = TreeInterpreter()
    tree = parsed.parsed
    return lambda value: interpreter.visit(tree, value)


def _json_path(rule: FieldRule, frame: pd.DataFrame) -> pd.Series:
    """Evaluate a JMESPath rooted at a JSON column, per row (nested vendor payloads)."""
    assert rule.path is not None and rule.json_column is not None
    column = _column(frame, rule.json_column)
    rest = rule.path[len(rule.json_column) :].lstrip(".")
    search = compile_path(rest) if rest else _identity
    loads = orjson.loads

    def pick(value: Any) -> Any:
        if value is None or (type(value) is float and value != value):
            return value  # null (None or NaN) as it is, as Series.map(na_action="ignore") left it
        return search(loads(value) if isinstance(value, str | bytes) else value)

    # a list, not Series.map: its per-value overhead was as large as most searches
    return pd.Series([pick(value) for value in column.tolist()], index=column.index, dtype=object)


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
    *,
    as_text: bool = False,
) -> MappingResult:
    """Map ``frame`` (source columns, plus ``_hub_position``) into the spec's entity fields.

    ``pii_kinds`` maps target fields that hold personal data to their masking kind, so
    rejection reasons show such values masked (and other values scanned for PII shapes).
    ``as_text``: the mapped fields come as Arrow strings, each value as :func:`canonical_text`
    makes it (what a destination receives), converted column by column rather than value by
    value (dates and times especially).
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
    columns_read = {c: _column(frame, c) for c in spec.source_columns() if c in frame.columns}
    source = pd.DataFrame(columns_read, index=index)
    ctx = TransformContext(frame=source, lookups=spec.lookups)
    out: dict[str, pd.Series] = {}

    identity_kinds = {"id_number": "id_number", "phone": "phone", "email": "email", "birth_date": "text"}
    rules = [(rule, rule.target) for rule in spec.fields.values()]
    rules += [(rule, IDENTITY_PREFIX + rule.target) for rule in spec.identity.values()]
    for rule, column in rules:
        kind = pii_kinds.get(rule.target) if column == rule.target else identity_kinds.get(rule.target)
        if rule.source is not None:
            # Converted once above; each rule gets its own Series (over the same values).
            read = columns_read.get(rule.source)
            values = read.copy() if read is not None else _column(frame, rule.source)
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
        if as_text and rule.default is None and _is_datetimes(values):
            empty = values.isna().to_numpy(dtype=bool)
            if rule.required:
                for i in np.flatnonzero(empty & active & ~failed):
                    reasons.setdefault(int(i), []).append(f"{rule.target}: required value is missing")
            out[column] = _text_series(iso_texts(values, active & ~empty), index)
            continue
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
        out[column] = _text_series(_texts(values), index) if as_text else values

    if spec.custom_fields:
        columns = {c: _column(frame, c) for c in spec.custom_fields if c in frame.columns}
        custom = pd.DataFrame(columns, index=index)
        out["custom_fields"] = pd.Series(
            [{k: v for k, v in row.items() if v is not None} for row in custom.to_dict("records")],
            index=index,
            dtype=object,
        )
        if as_text:
            out["custom_fields"] = _text_series(_texts(out["custom_fields"]), index)

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


def _texts(values: pd.Series) -> list[str | None]:
    """:func:`canonical_text` of each value (text as it is)."""
    return [v if v is None or type(v) is str else canonical_text(v) for v in values.to_numpy(dtype=object)]


def _text_series(texts: list[str | None], index: pd.Index) -> pd.Series:
    return pd.Series(pd.arrays.ArrowExtensionArray(pa.array(texts, type=pa.string())), index=index)


def _is_datetimes(values: pd.Series) -> bool:
    return isinstance(values.dtype, pd.DatetimeTZDtype) or (
        isinstance(values.dtype, np.dtype) and values.dtype.kind == "M"
    )


def _offset_text(microseconds: int) -> str:
    """A UTC offset as ``datetime.isoformat`` writes it: ``+08:00``, ``+08:05:43``, ``-03:30``."""
    sign = "-" if microseconds < 0 else "+"
    hours, rest = divmod(abs(microseconds), 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    seconds, micros = divmod(rest, 1_000_000)
    text = f"{sign}{hours:02d}:{minutes:02d}"
    if seconds or micros:
        text += f":{seconds:02d}"
        if micros:
            text += f".{micros:06d}"
    return text


def iso_texts(values: pd.Series, keep: np.ndarray) -> list[str | None]:
    """``Timestamp.isoformat()`` of each datetime where ``keep`` (None elsewhere), vectorised.

    As :func:`canonical_text` writes a mapped date-time: microseconds only when there are
    some, the UTC offset of each value's own time zone. Values it cannot write this way
    (nanoseconds, years outside 1-9999) are written one by one.
    """
    n = len(values)
    out: list[str | None] = [None] * n
    rows = np.flatnonzero(keep)
    if not len(rows):
        return out
    series = values.iloc[rows]
    zoned = isinstance(series.dtype, pd.DatetimeTZDtype)
    local = (series.dt.tz_localize(None) if zoned else series).to_numpy()
    unit = np.datetime_data(local.dtype)[0]
    if unit == "ns":
        plain = local.astype(np.int64) % 1000 == 0
    elif unit in ("s", "ms", "us"):
        plain = np.ones(len(rows), dtype=bool)
    else:
        plain = np.zeros(len(rows), dtype=bool)
    micros = local.astype("datetime64[us]")
    years = micros.astype("datetime64[Y]").astype(np.int64) + 1970
    plain &= (years >= 1) & (years <= 9999)
    whole = micros.astype(np.int64) % 1_000_000 == 0
    texts = np.where(
        whole,
        np.datetime_as_string(micros.astype("datetime64[s]"), unit="s"),
        np.datetime_as_string(micros, unit="us"),
    ).tolist()
    if zoned:
        utc = series.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[us]")
        offsets = micros.astype(np.int64) - utc.astype(np.int64)
        suffix = {int(o): _offset_text(int(o)) for o in np.unique(offsets)}
        texts = [t + suffix[o] for t, o in zip(texts, offsets.tolist(), strict=True)]
    objects = series.astype(object).to_numpy() if not plain.all() else None
    for position, row in enumerate(rows.tolist()):
        if plain[position]:
            out[row] = texts[position]
        else:
            assert objects is not None
            out[row] = canonical_text(objects[position])
    return out


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
