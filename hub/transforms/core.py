"""The transform record, its outcome, and the column helpers every transform shares.

A transform maps a whole column at once: ``apply(values, params, ctx)`` gets a pandas Series
and returns an :class:`Outcome` over the same index. Null input (None, NaN, ``pd.NA``, text
that is empty once trimmed) comes out null and is never an error; requiredness is the
mapping's job. A row whose value is wrong comes out null with a reason in ``errors``; the
reason names the rule, never the value.

Text travels as Arrow strings: :func:`text_of` turns any column into one Arrow string array
(zero-copy for Arrow-backed columns), and text-valued transforms return ``ArrowDtype`` string
Series, so a chain of steps converts to Python objects at most once.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from hub.errors import FatalSyncError

TEXT = pd.ArrowDtype(pa.string())

# Characters trimmed from both ends: Python's whitespace (str.strip) plus zero-width marks
# and the BOM, which spreadsheets and copy-paste leave behind.
TRIM_CHARS = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    + "".join(chr(c) for c in range(0x2000, 0x200B))
    + "\u2028\u2029\u202f\u205f\u3000"
    + "\u180e\u200b\u200c\u200d\u2060\ufeff"
)


class TransformError(ValueError):
    """A value a per-row transform rejects; the message is the reason (never the value)."""


class TransformParamError(FatalSyncError):
    """A transform got parameters it cannot use (a bad pattern, an unknown table); the run fails."""


@dataclass
class TransformContext:
    """What a transform can see besides its own column."""

    frame: pd.DataFrame  # the whole source chunk (for cross-field checks)
    lookups: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # named lookup tables

    def column(self, name: str) -> pd.Series:
        """A source column of the chunk (``KeyError`` if the chunk has no such column)."""
        if name not in self.frame.columns:
            raise KeyError(name)
        column = self.frame[name]
        if not isinstance(column, pd.Series):
            raise KeyError(name)  # a duplicated column name: not one column
        return column


@dataclass
class Outcome:
    """What a transform made of a column."""

    values: pd.Series  # same index as the input; object dtype or a pandas extension dtype
    errors: pd.Series | None = None  # per row None or a reason -> that row is rejected
    warnings: pd.Series | None = None  # per row None or a warning (kept, reported)


ApplyFn = Callable[[pd.Series, Mapping[str, Any], TransformContext], Outcome]


@dataclass(frozen=True)
class Transform:
    """A named value transform that mapping files can use in a field's ``transforms`` chain."""

    name: str
    apply: ApplyFn
    description: str = ""
    params: Mapping[str, str] = field(default_factory=dict)  # allowed param -> description
    required_params: frozenset[str] = frozenset()


# -- turning a column into text ------------------------------------------------------------


def is_null(value: Any) -> bool:
    """None, NaN, NaT, ``pd.NA``, or text that is empty once trimmed."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, str):
        return not value.strip(TRIM_CHARS)
    if isinstance(value, float | np.floating):
        return bool(np.isnan(value))
    if isinstance(value, np.datetime64 | np.timedelta64):
        return bool(np.isnat(value))
    return False


def scalar_text(value: Any) -> str:
    """A non-text value as the text a source would have sent for it."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        return str(int(number)) if number.is_integer() and abs(number) < 1e16 else repr(number)
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, dt.date | dt.time):  # datetime, pd.Timestamp included
        return value.isoformat()
    return str(value)


@dataclass(frozen=True)
class TextColumn:
    """A column as one Arrow string array; ``converted`` marks rows that held a non-text value."""

    text: pa.StringArray
    converted: np.ndarray | None  # bool per row, None when every value was text or null
    original: np.ndarray | None  # the object values, kept only when some were converted

    def non_text(self, kinds: type | tuple[type, ...]) -> np.ndarray | None:
        """Rows whose original value was of ``kinds`` (None if there are none)."""
        if self.converted is None or self.original is None:
            return None
        found = np.fromiter(
            (bool(c) and isinstance(v, kinds) for c, v in zip(self.converted, self.original, strict=True)),
            dtype=bool,
            count=len(self.original),
        )
        return found if found.any() else None


def _combined(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    return array


def text_of(values: pd.Series) -> TextColumn:
    """``values`` as Arrow strings: zero-copy for Arrow strings, nulls as nulls, other values as text."""
    dtype = values.dtype
    if isinstance(dtype, pd.ArrowDtype) and pa.types.is_string(dtype.pyarrow_dtype):
        return TextColumn(_combined(pa.array(values.array)), None, None)
    if isinstance(dtype, pd.ArrowDtype) and pa.types.is_large_string(dtype.pyarrow_dtype):
        return TextColumn(_combined(pa.array(values.array)).cast(pa.string()), None, None)
    if isinstance(dtype, pd.StringDtype):
        raw = values.to_numpy(dtype=object, na_value=None)
        return TextColumn(pa.array(raw, type=pa.string(), from_pandas=True), None, None)
    if pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        # Arrow writes integers and booleans as scalar_text does (123, true/false)
        numbers = pa.array(values.array, from_pandas=True)
        return TextColumn(_combined(numbers).cast(pa.string()), None, None)
    raw = values.to_numpy(dtype=object)
    try:
        return TextColumn(pa.array(raw, type=pa.string(), from_pandas=True), None, None)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        pass
    converted = np.zeros(len(raw), dtype=bool)
    texts: list[str | None] = []
    for i, value in enumerate(raw):
        if isinstance(value, str):
            texts.append(value)
        elif is_null(value):
            texts.append(None)
        else:
            texts.append(scalar_text(value))
            converted[i] = True
    return TextColumn(pa.array(texts, type=pa.string()), converted, raw)


def trimmed(text: pa.Array) -> pa.Array:
    """Text with surrounding whitespace removed, and empty text as null."""
    stripped = pc.utf8_trim(text, TRIM_CHARS)
    return pc.if_else(pc.equal(pc.binary_length(stripped), 0), pa.scalar(None, pa.string()), stripped)


def nfkc(text: pa.Array) -> pa.Array:
    """NFKC (full-width to half-width), applied only to the non-ASCII values."""
    other = pc.invert(pc.fill_null(pc.string_is_ascii(text), True))
    if not pc.any(other).as_py():
        return text
    return pc.replace_with_mask(text, other, pc.utf8_normalize(text.filter(other), "NFKC"))


def cleaned(values: pd.Series) -> pa.Array:
    """The usual first step of a parsing transform: text, NFKC, trimmed, empty as null."""
    return trimmed(nfkc(text_of(values).text))


def mask_of(array: pa.Array) -> np.ndarray:
    """A boolean Arrow array as a numpy mask, null counting as False."""
    return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=bool)


def null_mask(array: pa.Array) -> np.ndarray:
    return np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def fixed_width_bytes(text: pa.Array, width: int) -> np.ndarray:
    """An (n, width) uint8 matrix of ASCII strings that are all exactly ``width`` bytes long."""
    n = len(text)
    if n == 0:
        return np.zeros((0, width), dtype=np.uint8)
    array = text if text.null_count == 0 else pc.fill_null(text, "0" * width)
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)[array.offset : array.offset + n + 1]
    data = np.frombuffer(array.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    return data.reshape(n, width)


def matrix_number(matrix: np.ndarray, start: int, width: int) -> np.ndarray:
    """Columns ``start:start+width`` of an ASCII digit matrix, read as one decimal int64 per row."""
    out = np.zeros(len(matrix), dtype=np.int64)
    for k in range(start, start + width):
        out *= 10
        out += matrix[:, k]
        out -= 48
    return out


_DAYS_IN_MONTH = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def civil_days(y: np.ndarray, mo: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Days since 1970-01-01 of Gregorian dates, and which are real dates of years 1-9999.

    Integer arithmetic only (H. Hinnant's ``days_from_civil``); unreal dates give day 0.
    """
    leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    month_ok = (mo >= 1) & (mo <= 12)
    month = np.where(month_ok, mo, 1)
    real = (
        (y >= 1)
        & (y <= 9999)
        & month_ok
        & (d >= 1)
        & (d <= _DAYS_IN_MONTH[month - 1] + ((month == 2) & leap))
    )
    year = np.where(real, y, 1970) - (month <= 2)
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + np.where(real, d, 1) - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return np.where(real, era * 146_097 + day_of_era - 719_468, 0), real


# -- building outcomes -----------------------------------------------------------------------


def reasons(n: int, rules: Iterable[tuple[np.ndarray, str]]) -> np.ndarray | None:
    """Per-row reasons: the first rule whose mask is set wins; None when no row failed."""
    out: np.ndarray | None = None
    taken = np.zeros(n, dtype=bool)
    for mask, reason in rules:
        fresh = mask & ~taken
        if not fresh.any():
            continue
        if out is None:
            out = np.full(n, None, dtype=object)
        out[fresh] = reason
        taken |= fresh
    return out


def text_series(text: pa.Array, index: pd.Index) -> pd.Series:
    """An Arrow string array as an ``ArrowDtype`` string Series."""
    return pd.Series(pd.arrays.ArrowExtensionArray(text), index=index, copy=False)


def object_series(values: Sequence[Any] | np.ndarray, index: pd.Index) -> pd.Series:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return pd.Series(array, index=index, dtype=object, copy=False)


def outcome(
    values: pd.Series,
    errors: np.ndarray | None = None,
    warnings: np.ndarray | None = None,
) -> Outcome:
    """An Outcome over ``values.index``; error and warning arrays become Series (or stay None)."""
    index = values.index
    return Outcome(
        values=values,
        errors=None if errors is None else pd.Series(errors, index=index, dtype=object),
        warnings=None if warnings is None else pd.Series(warnings, index=index, dtype=object),
    )


def with_nulls(text: pa.Array, mask: np.ndarray | None) -> pa.Array:
    """``text`` with the rows in ``mask`` set to null."""
    if mask is None or not mask.any():
        return text
    return pc.if_else(pa.array(mask), pa.scalar(None, text.type), text)


# -- per-row transforms -------------------------------------------------------------------


def per_row(func: Callable[[Any, Mapping[str, Any]], Any]) -> ApplyFn:
    """Turn ``func(value, params)`` into an ``apply``: nulls skip it, ``TransformError`` rejects the row.

    The wrapped function sees every non-null value as it is (text untrimmed, numbers as
    numbers) and returns the new value; raising :class:`TransformError` sets the row's
    reason to the exception's message and its value to null.
    """

    @functools.wraps(func)
    def apply(values: pd.Series, params: Mapping[str, Any], ctx: TransformContext | None = None) -> Outcome:
        raw = values.to_numpy(dtype=object)
        n = len(raw)
        out = np.full(n, None, dtype=object)
        errors: np.ndarray | None = None
        for i, value in enumerate(raw):
            if is_null(value):
                continue
            try:
                out[i] = func(value, params)
            except TransformError as exc:
                if errors is None:
                    errors = np.full(n, None, dtype=object)
                errors[i] = str(exc) or "rejected"
        return outcome(pd.Series(out, index=values.index, dtype=object), errors)

    return apply


def param_str(params: Mapping[str, Any], name: str, transform: str, default: str | None = None) -> str:
    value = params.get(name, default)
    if not isinstance(value, str) or not value:
        raise TransformParamError(f"{transform}: parameter {name!r} must be a non-empty string")
    return value


def param_strings(params: Mapping[str, Any], name: str, transform: str) -> list[str]:
    """A parameter that is one string or a list of strings."""
    value = params.get(name)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    raise TransformParamError(f"{transform}: parameter {name!r} must be a string or a list of strings")
