"""Chunks of records as pandas frames of Arrow strings, and the vectorised operations on them.

Values travel as text (an 18-digit ID number must never become a float); Arrow-backed
columns keep them out of Python objects until a destination needs them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

META_PREFIX = "_hub_"
TEXT = pd.ArrowDtype(pa.string())


def data_columns(frame: pd.DataFrame) -> list[str]:
    """Columns that are record data (hub's own ``_hub_*`` columns excluded)."""
    return [c for c in frame.columns if not str(c).startswith(META_PREFIX)]


def arrow(series: pd.Series) -> pa.Array:
    """A column as one Arrow string array (zero-copy when it already is one)."""
    if isinstance(series.dtype, pd.ArrowDtype):
        array = pa.array(series)
        return array if array.type == pa.string() else array.cast(pa.string())
    values = series.to_numpy(dtype=object, na_value=None)
    array = _all_text(values)
    if array is not None:
        return array
    return pa.array([v if v is None or isinstance(v, str) else as_text(v) for v in values], type=pa.string())


def text_column(values: Sequence[Any]) -> pa.Array:
    """Values as a source yields them (missing markers such as NaN included) as one Arrow
    string array, as :func:`arrow` makes a column of them, without building the column first."""
    array = _all_text(values)
    return array if array is not None else arrow(pd.Series(values, dtype=object))


def _all_text(values: Sequence[Any]) -> pa.Array | None:
    """Text and nulls alone (most columns of JSON records) as Arrow strings in one call; None
    when anything else is among them (numbers, objects, bytes), to be converted value by value."""
    first = next((v for v in values if v is not None), None)
    if first is not None and type(first) is not str:
        return None
    try:
        array = pa.array(values)  # inferred: string only if every value is text or null
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if array.type == pa.null():
        return array.cast(pa.string())
    return array if array.type == pa.string() else None


def as_text(value: Any) -> str:
    """A non-text value as text: JSON for objects and lists, ``true``/``false``, ISO dates."""
    kind = type(value)  # the common JSON types first, by exact type (bool is an int)
    if kind is str:
        return str(value)
    if kind is int:
        return str(value)
    if kind is dict or kind is list:
        return orjson.dumps(value, default=str, option=orjson.OPT_SORT_KEYS).decode()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list | tuple):
        return orjson.dumps(value, default=str, option=orjson.OPT_SORT_KEYS).decode()
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    if isinstance(value, float) and value != value:  # NaN
        return ""
    return str(value)


def text_frame(frame: pd.DataFrame, as_they_are: Collection[str] = ()) -> pd.DataFrame:
    """``frame`` with every column as Arrow strings, but those named in ``as_they_are``."""
    if all(dtype == TEXT for c, dtype in frame.dtypes.items() if c not in as_they_are):
        return frame
    return pd.DataFrame(
        {
            c: frame[c]
            if c in as_they_are
            else pd.Series(pd.arrays.ArrowExtensionArray(arrow(frame[c])), index=frame.index)
            for c in frame.columns
        },
        index=frame.index,
    )


def key_strings(frame: pd.DataFrame, primary_key: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Each row's key as text (parts joined by U+001F), and a mask of rows with a part missing."""
    parts = [pc.utf8_trim_whitespace(arrow(frame[c])) for c in primary_key]
    missing = np.zeros(len(frame), dtype=bool)
    for part in parts:
        empty = pc.or_kleene(pc.is_null(part), pc.equal(part, ""))
        missing |= np.asarray(pc.fill_null(empty, True).to_numpy(zero_copy_only=False), dtype=bool)
    joined = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, "\x1f")
    return [k or "" for k in joined.to_pylist()], missing


def row_hashes(frame: pd.DataFrame, secret: bytes = b"") -> list[str]:
    """A 128-bit keyed BLAKE2b hash of each row's data columns.

    The key mixes ``secret`` (so a stored hash cannot confirm a guessed value) with the
    column names: renaming or adding a column changes every hash. Null and empty differ.
    """
    columns = sorted(data_columns(frame))
    if not len(frame):
        return []
    key = hashlib.sha256(secret + b"\x00" + "\x1f".join(columns).encode()).digest()
    arrays = [pc.fill_null(arrow(frame[c]), "\x00") for c in columns]
    joined = pc.binary_join_element_wise(*arrays, "\x1f") if len(arrays) > 1 else arrays[0]
    blake = hashlib.blake2b
    return [blake(s.encode(), key=key, digest_size=16).hexdigest() for s in joined.to_pylist()]


def to_arrow_table(frame: pd.DataFrame, columns: Sequence[str]) -> pa.Table:
    return pa.table({c: arrow(frame[c]) for c in columns})
