"""Transforms that pick a value from a table: ``enum`` (a map in the mapping) and ``lookup``."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from hub.transforms.core import (
    Outcome,
    Transform,
    TransformContext,
    TransformParamError,
    nfkc,
    null_mask,
    object_series,
    outcome,
    param_str,
    scalar_text,
    text_of,
    trimmed,
)


def _key_text(key: Any) -> str:
    return key if isinstance(key, str) else scalar_text(key)


def fold(text: pa.Array) -> pa.Array:
    """How enum values and keys are compared: NFKC, trimmed, lower-cased."""
    return pc.utf8_lower(trimmed(nfkc(text)))


def _pick(
    keys: pa.Array, value_set: pa.Array, targets: np.ndarray, default: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The target of each key, the rows whose key is missing, and the null rows."""
    null = null_mask(keys)
    found = pc.fill_null(pc.index_in(keys, value_set=value_set), -1)
    positions = np.asarray(found.to_numpy(zero_copy_only=False), dtype=np.int64)
    choices = np.empty(len(targets) + 1, dtype=object)
    choices[: len(targets)] = targets
    choices[-1] = default
    out = choices[positions]
    missing = (positions < 0) & ~null
    out[null] = None
    return out, missing, null


# -- enum ------------------------------------------------------------------------------------


def _enum_table(params: Mapping[str, Any]) -> tuple[pa.Array, np.ndarray]:
    table = params.get("map")
    if not isinstance(table, Mapping) or not table:
        raise TransformParamError("enum: parameter 'map' must be a non-empty mapping of raw value -> value")
    if any(k is None for k in table):
        raise TransformParamError("enum: a key of 'map' is empty")
    folded = fold(pa.array([_key_text(k) for k in table], type=pa.string())).to_pylist()
    chosen: dict[str, Any] = {}
    for key, target in zip(folded, table.values(), strict=True):
        if key is None:
            raise TransformParamError("enum: a key of 'map' is empty")
        if key in chosen and chosen[key] != target:
            raise TransformParamError("enum: two keys of 'map' differ only in case or width")
        chosen[key] = target
    targets = np.empty(len(chosen), dtype=object)
    targets[:] = list(chosen.values())
    return pa.array(list(chosen), type=pa.string()), targets


def _enum(values: pd.Series, params: Mapping[str, Any], ctx: TransformContext) -> Outcome:
    value_set, targets = _enum_table(params)
    has_default = "default" in params
    out, missing, _ = _pick(fold(text_of(values).text), value_set, targets, params.get("default"))
    errors = None
    if missing.any() and not has_default:
        errors = np.full(len(out), None, dtype=object)
        errors[missing] = "enum: value not in the map"
        out[missing] = None
    return outcome(object_series(out, values.index), errors)


# -- lookup ----------------------------------------------------------------------------------

_TABLES: OrderedDict[int, tuple[Mapping[str, Any], pa.Array, np.ndarray]] = OrderedDict()
_TABLES_KEPT = 32
_TABLES_LOCK = threading.Lock()


def _lookup_table(table: Mapping[str, Any]) -> tuple[pa.Array, np.ndarray]:
    """The table's keys (trimmed text) and values, kept for the next chunks.

    A mapping's lookup tables are loaded once and never edited, so a table is recognised by
    identity; the entry holds the table itself, so its id cannot be reused while cached.
    """
    with _TABLES_LOCK:
        cached = _TABLES.get(id(table))
        if cached is not None and cached[0] is table:
            _TABLES.move_to_end(id(table))
            return cached[1], cached[2]
    keys = trimmed(pa.array([_key_text(k) for k in table], type=pa.string()))
    targets = np.empty(len(table), dtype=object)
    targets[:] = list(table.values())
    with _TABLES_LOCK:
        _TABLES[id(table)] = (table, keys, targets)
        while len(_TABLES) > _TABLES_KEPT:
            _TABLES.popitem(last=False)
    return keys, targets


def _lookup(values: pd.Series, params: Mapping[str, Any], ctx: TransformContext) -> Outcome:
    name = param_str(params, "table", "lookup")
    table = ctx.lookups.get(name)
    if table is None:
        raise TransformParamError(f"lookup: no lookup table named {name!r}")
    value_set, targets = _lookup_table(table)
    has_default = "default" in params
    keys = trimmed(text_of(values).text)
    out, missing, _ = _pick(keys, value_set, targets, params.get("default"))
    errors = None
    if missing.any() and not has_default:
        errors = np.full(len(out), None, dtype=object)
        errors[missing] = f"lookup: key not in table {name!r}"
        out[missing] = None
    return outcome(object_series(out, values.index), errors)


TRANSFORMS = [
    Transform(
        "enum",
        _enum,
        "map raw values to canonical ones (compared after NFKC, trimming and lower-casing); "
        "an unmapped value is an error unless a default is given",
        params={"map": "raw value -> canonical value", "default": "value for unmapped input"},
        required_params=frozenset({"map"}),
    ),
    Transform(
        "lookup",
        _lookup,
        "replace a key by its value in a named lookup table of the mapping (keys compared trimmed); "
        "a missing key is an error unless a default is given",
        params={"table": "name of a lookup table of the mapping", "default": "value for missing keys"},
        required_params=frozenset({"table"}),
    ),
]

__all__ = ["TRANSFORMS", "fold"]
