"""Date and date-time transforms: ``date`` (to ``datetime.date``) and ``datetime`` (tz-aware).

Accepted text (after NFKC, so full-width digits work):

- ``2024-03-01``, ``2024/3/1``, ``2024.3.1``, ``2024年3月1日``, each optionally followed by a time
  ``10:20``, ``10:20:30``, ``10:20:30.123456`` (separator ``T`` or spaces) and an offset ``Z``,
  ``+08:00`` or ``+0800``;
- ``20240301`` (8 digits) and ``20240301102030`` (14 digits);
- Excel serial days (1900 system, up to 5 digits, fraction = time of day): ``45352`` is 2024-03-01;
- Unix timestamps: 9-10 digits are seconds (a fraction allowed), 12-13 digits milliseconds;
- any strptime ``formats`` given as a parameter (tried first, in order).

Timezone semantics (parameter ``timezone``, default ``Asia/Shanghai``):

- a date, or a date-time without an offset, is a wall-clock reading in ``timezone``: ``date``
  takes its calendar date as written; ``datetime`` localises it (an ambiguous hour counts as
  standard time, a skipped one moves forward);
- an instant (a Unix timestamp, or text with ``Z``/an offset) is converted to ``timezone``:
  ``datetime`` returns it there, ``date`` takes the calendar date there. 1709251200 is
  2024-03-01 00:00 UTC = 08:00 in Shanghai, so both give 2024-03-01; 1709222400 (16:00 UTC on
  29 February) is 2024-03-01 in Shanghai but 2024-02-29 with ``timezone: UTC``;
- Excel serials are wall-clock readings, like text without an offset.

Text shaped like a date that is not a real one (``2024-02-30``, ``25:00``) is an error, as is
anything no format recognises.
"""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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
    civil_days,
    cleaned,
    fixed_width_bytes,
    mask_of,
    matrix_number,
    null_mask,
    object_series,
    outcome,
    param_strings,
    reasons,
)

DEFAULT_TIMEZONE = "Asia/Shanghai"
US_PER_SECOND = 1_000_000
US_PER_DAY = 86_400 * US_PER_SECOND
EXCEL_EPOCH = 25_569  # days from 1899-12-30 (Excel 1900 system, after the 1900-02-29 bug) to 1970-01-01
EXCEL_FIRST = 61  # serial 61 = 1900-03-01; 1..60 straddle Lotus's fictitious 1900-02-29

DATE_PATTERN = r"^(?P<y>\d{4})[-/.年](?P<mo>\d{1,2})[-/.月](?P<d>\d{1,2})日?$"
TEXT_PATTERN = (
    r"^(?P<y>\d{4})[-/.年](?P<mo>\d{1,2})[-/.月](?P<d>\d{1,2})日?"
    r"(?:(?:T|\s+)(?P<h>\d{1,2})[:时](?P<mi>\d{1,2})(?:[:分](?P<s>\d{1,2})(?:[.,](?P<f>\d{1,9}))?秒?)?分?"
    r"\s*(?:(?P<z>Z)|(?P<os>[+-])(?P<oh>\d{2}):?(?P<om>\d{2}))?)?$"
)
NUMBER_PATTERN = r"^(?P<int>\d{1,14})(?:\.(?P<frac>\d{1,9}))?$"


@dataclass
class ParsedTimes:
    """Per row: microseconds since 1970-01-01, as a wall-clock reading or (``instant``) UTC."""

    micros: np.ndarray  # int64
    instant: np.ndarray  # bool: micros is UTC, not wall-clock
    ok: np.ndarray  # bool: parsed
    unreal: np.ndarray  # bool: shaped like a date or time, but not a real one
    null: np.ndarray  # bool: no value

    @classmethod
    def empty(cls, n: int, null: np.ndarray) -> ParsedTimes:
        zeros = np.zeros(n, dtype=bool)
        return cls(np.zeros(n, dtype=np.int64), zeros.copy(), zeros.copy(), zeros.copy(), null)

    def pending(self) -> np.ndarray:
        """Rows that hold a value no parser has taken or refused yet."""
        return np.flatnonzero(~self.null & ~self.ok & ~self.unreal)

    def merge(self, rows: np.ndarray, found: ParsedTimes) -> None:
        """Take what a parser made of ``rows`` (``found`` is indexed like ``rows``)."""
        hit = rows[found.ok]
        self.micros[hit] = found.micros[found.ok]
        self.instant[hit] = found.instant[found.ok]
        self.ok[hit] = True
        self.unreal[rows[found.unreal & ~found.ok]] = True


def _group(parts: pa.Array, name: str, width: int) -> np.ndarray:
    """A regex group of at most ``width`` decimal digits as int64; a missing group is 0."""
    field = pc.fill_null(pc.struct_field(parts, name), "")
    return matrix_number(fixed_width_bytes(pc.utf8_lpad(field, width, "0"), width), 0, width)


def _civil(
    y: np.ndarray,
    mo: np.ndarray,
    d: np.ndarray,
    h: np.ndarray,
    mi: np.ndarray,
    s: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Microseconds since the epoch of civil date-times, and which of them are real."""
    days, real = civil_days(y, mo, d)
    real &= (h < 24) & (mi < 60) & (s < 60)
    micros = days * US_PER_DAY + (h * 3600 + mi * 60 + s) * US_PER_SECOND
    return np.where(real, micros, 0), real


def _user_format(text: pa.Array, fmt: str) -> ParsedTimes:
    n = len(text)
    found = ParsedTimes.empty(n, np.zeros(n, dtype=bool))
    aware = "%z" in fmt or "%Z" in fmt
    try:
        got = pd.to_datetime(
            pd.Series(text.to_numpy(zero_copy_only=False), dtype=object),
            format=fmt,
            errors="coerce",
            utc=aware,
        )
    except (ValueError, TypeError) as exc:
        raise TransformParamError(f"date: format {fmt!r} cannot be used: {exc}") from None
    if aware:
        got = got.dt.tz_convert("UTC").dt.tz_localize(None)
    found.ok = got.notna().to_numpy()
    found.micros = np.where(found.ok, got.to_numpy(dtype="datetime64[us]").astype(np.int64), 0)
    found.instant[:] = aware
    return found


def _parse_fixed(text: pa.Array) -> ParsedTimes:
    """The common fixed-width shapes, straight from the bytes: ``2024-03-01`` (also with ``/`` or
    ``.``) and ``2024-03-01 10:20:30`` (also with ``T``). Other text is left for the regex."""
    n = len(text)
    found = ParsedTimes.empty(n, np.zeros(n, dtype=bool))
    length = np.asarray(pc.binary_length(text).to_numpy(zero_copy_only=False), dtype=np.int64)
    for width in (10, 19):
        rows = np.flatnonzero(length == width)
        if not len(rows):
            continue
        matrix = fixed_width_bytes(text.take(pa.array(rows, type=pa.int64())), width)
        digit_columns = [0, 1, 2, 3, 5, 6, 8, 9] + ([11, 12, 14, 15, 17, 18] if width == 19 else [])
        digits = matrix[:, digit_columns]
        shaped = ((digits >= 48) & (digits <= 57)).all(axis=1)
        shaped &= (matrix[:, 4] == matrix[:, 7]) & np.isin(matrix[:, 4], np.frombuffer(b"-/.", np.uint8))
        zero = np.zeros(len(rows), dtype=np.int64)
        h = mi = s = zero
        if width == 19:
            shaped &= np.isin(matrix[:, 10], np.frombuffer(b" T", np.uint8))
            shaped &= (matrix[:, 13] == ord(":")) & (matrix[:, 16] == ord(":"))
            h, mi, s = (
                matrix_number(matrix, 11, 2),
                matrix_number(matrix, 14, 2),
                matrix_number(matrix, 17, 2),
            )
        micros, real = _civil(
            matrix_number(matrix, 0, 4), matrix_number(matrix, 5, 2), matrix_number(matrix, 8, 2), h, mi, s
        )
        found.micros[rows] = micros
        found.ok[rows] = shaped & real
        found.unreal[rows] = shaped & ~real
    return found


def _parse_date(text: pa.Array) -> ParsedTimes:
    """Dates without a time, any separators: ``2024/3/1``, ``2024.3.1``, ``2024年3月1日``."""
    n = len(text)
    found = ParsedTimes.empty(n, np.zeros(n, dtype=bool))
    parts = pc.extract_regex(text, DATE_PATTERN)
    rows = mask_of(parts.is_valid())
    if rows.any():
        zero = np.zeros(n, dtype=np.int64)
        y, mo, d = _group(parts, "y", 4), _group(parts, "mo", 2), _group(parts, "d", 2)
        micros, real = _civil(y, mo, d, zero, zero, zero)
        found.micros = np.where(rows & real, micros, 0)
        found.ok = rows & real
        found.unreal = rows & ~real
    return found


def _parse_text(text: pa.Array) -> ParsedTimes:
    """Dates with a time and maybe an offset."""
    n = len(text)
    found = ParsedTimes.empty(n, np.zeros(n, dtype=bool))
    parts = pc.extract_regex(text, TEXT_PATTERN)
    rows = mask_of(parts.is_valid())
    if not rows.any():
        return found
    y, mo, d = _group(parts, "y", 4), _group(parts, "mo", 2), _group(parts, "d", 2)
    h, mi, s = _group(parts, "h", 2), _group(parts, "mi", 2), _group(parts, "s", 2)
    frac = pc.utf8_slice_codeunits(pc.utf8_rpad(pc.fill_null(pc.struct_field(parts, "f"), ""), 6, "0"), 0, 6)
    us = matrix_number(fixed_width_bytes(frac, 6), 0, 6)
    micros, real = _civil(y, mo, d, h, mi, s)
    zulu = mask_of(pc.equal(pc.struct_field(parts, "z"), "Z"))
    signed = mask_of(pc.not_equal(pc.struct_field(parts, "os"), ""))
    oh, om = _group(parts, "oh", 2), _group(parts, "om", 2)
    sign = np.where(mask_of(pc.equal(pc.struct_field(parts, "os"), "-")), -1, 1)
    offset = np.where(signed, sign * (oh * 3600 + om * 60) * US_PER_SECOND, 0)
    real &= ~signed | ((oh <= 23) & (om < 60))
    found.micros = np.where(rows & real, micros + us - offset, 0)
    found.instant = zulu | signed
    found.ok = rows & real
    found.unreal = rows & ~real
    return found


def _parse_numbers(text: pa.Array) -> ParsedTimes:
    n = len(text)
    found = ParsedTimes.empty(n, np.zeros(n, dtype=bool))
    parts = pc.extract_regex(text, NUMBER_PATTERN)
    rows = mask_of(parts.is_valid())
    if not rows.any():
        return found
    whole = pc.fill_null(pc.struct_field(parts, "int"), "")
    length = np.asarray(pc.binary_length(whole).to_numpy(zero_copy_only=False), dtype=np.int64)
    frac_text = pc.fill_null(pc.struct_field(parts, "frac"), "")
    has_frac = mask_of(pc.not_equal(frac_text, ""))
    digits = fixed_width_bytes(pc.utf8_lpad(whole, 14, "0"), 14)
    value = matrix_number(digits, 0, 14)
    frac_us = matrix_number(
        fixed_width_bytes(pc.utf8_slice_codeunits(pc.utf8_rpad(frac_text, 6, "0"), 0, 6), 6), 0, 6
    )

    def take(mask: np.ndarray, micros: np.ndarray, instant: bool, real: np.ndarray | None = None) -> None:
        if real is not None:
            found.unreal |= mask & ~real
            mask = mask & real
        found.micros[mask] = micros[mask]
        found.instant[mask] = instant
        found.ok |= mask

    # Excel serial days (1900 system); the fraction is the time of day, kept to the millisecond.
    excel = rows & (length <= 5)
    if excel.any():
        day_fraction = np.zeros(n, dtype=np.float64)
        if has_frac.any():
            digits_after = pc.if_else(pa.array(has_frac), frac_text, "0")
            as_float = pc.cast(pc.binary_join_element_wise("0.", digits_after, ""), pa.float64())
            day_fraction = np.nan_to_num(
                np.asarray(as_float.to_numpy(zero_copy_only=False), dtype=np.float64)
            )
        millis = np.rint(day_fraction * 86_400_000).astype(np.int64)
        take(excel, (value - EXCEL_EPOCH) * US_PER_DAY + millis * 1000, False, value >= EXCEL_FIRST)
    # YYYYMMDD and YYYYMMDDhhmmss
    zero = np.zeros(n, dtype=np.int64)
    compact8 = rows & (length == 8) & ~has_frac
    if compact8.any():
        ymd = (matrix_number(digits, 6, 4), matrix_number(digits, 10, 2), matrix_number(digits, 12, 2))
        micros, real = _civil(*ymd, zero, zero, zero)
        take(compact8, micros, False, real)
    compact14 = rows & (length == 14) & ~has_frac
    if compact14.any():
        micros, real = _civil(*(matrix_number(digits, k, 4 if k == 0 else 2) for k in (0, 4, 6, 8, 10, 12)))
        take(compact14, micros, False, real)
    # Unix timestamps: seconds (9-10 digits, a fraction allowed) and milliseconds (12-13 digits)
    take(rows & ((length == 9) | (length == 10)), value * US_PER_SECOND + frac_us, True)
    take(rows & ((length == 12) | (length == 13)) & ~has_frac, value * 1000, True)
    return found


def parse_times(text: pa.Array, formats: list[str] | None = None) -> ParsedTimes:
    """Parse cleaned text (NFKC, trimmed, empty as null) into :class:`ParsedTimes`.

    Each parser sees only the rows the ones before it left: user formats, the fixed-width
    shapes, dates, dates with times, then numbers (compact dates, Excel serials, timestamps).
    """
    parsed = ParsedTimes.empty(len(text), null_mask(text))
    steps: list[Callable[[pa.Array], ParsedTimes]] = [
        functools.partial(_user_format, fmt=fmt) for fmt in formats or []
    ]
    for step in (*steps, _parse_fixed, _parse_date, _parse_text, _parse_numbers):
        rows = parsed.pending()
        if not len(rows):
            break
        sub = text if len(rows) == len(text) else text.take(pa.array(rows, type=pa.int64()))
        parsed.merge(rows, step(sub))
    return parsed


def zone_param(params: Mapping[str, Any], transform: str) -> str:
    """The ``timezone`` parameter, checked. Kept as a name: pandas converts by name in bulk,
    whereas a ``ZoneInfo`` object makes it call ``utcoffset`` once per value."""
    name = params.get("timezone", DEFAULT_TIMEZONE)
    if not isinstance(name, str):
        raise TransformParamError(f"{transform}: parameter 'timezone' must be a time zone name")
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise TransformParamError(f"{transform}: unknown time zone {name!r}") from None
    return name


def _utc_to_wall(micros: np.ndarray, zone: str) -> np.ndarray:
    index = pd.DatetimeIndex(micros.astype("datetime64[us]")).tz_localize("UTC").tz_convert(zone)
    return index.tz_localize(None).to_numpy().astype("datetime64[us]").astype(np.int64)


def _wall_to_utc(micros: np.ndarray, zone: str) -> np.ndarray:
    index = pd.DatetimeIndex(micros.astype("datetime64[us]"))
    local = index.tz_localize(zone, ambiguous=np.zeros(len(micros), dtype=bool), nonexistent="shift_forward")
    return local.tz_convert("UTC").tz_localize(None).to_numpy().astype("datetime64[us]").astype(np.int64)


FIRST_DAY = np.datetime64("0001-01-01", "D")
LAST_DAY = np.datetime64("9999-12-31", "D")


def to_days(parsed: ParsedTimes, zone: str = DEFAULT_TIMEZONE) -> np.ndarray:
    """The calendar date of each parsed row as ``datetime64[D]`` (NaT where nothing parsed).

    An instant whose date in ``zone`` falls outside years 1-9999 (which ``datetime.date``
    cannot hold) is marked unreal in ``parsed``.
    """
    wall = parsed.micros.copy()
    instants = parsed.ok & parsed.instant
    if instants.any():
        wall[instants] = _utc_to_wall(parsed.micros[instants], zone)
    days = np.floor_divide(wall, US_PER_DAY).astype("datetime64[D]")
    outside = parsed.ok & ((days < FIRST_DAY) | (days > LAST_DAY))
    if outside.any():
        parsed.ok &= ~outside
        parsed.unreal |= outside
    days[~parsed.ok] = np.datetime64("NaT")
    return days


def date_errors(parsed: ParsedTimes, transform: str) -> np.ndarray | None:
    failed = ~parsed.ok & ~parsed.null
    return reasons(
        len(parsed.ok),
        [
            (failed & parsed.unreal, f"{transform}: not a real calendar date or time"),
            (failed, f"{transform}: not a recognised date format"),
        ],
    )


def _date(values: pd.Series, params: Mapping[str, Any], ctx: TransformContext) -> Outcome:
    zone = zone_param(params, "date")
    parsed = parse_times(cleaned(values), param_strings(params, "formats", "date"))
    days = to_days(parsed, zone)
    return outcome(object_series(days.astype(object), values.index), date_errors(parsed, "date"))


def _datetime(values: pd.Series, params: Mapping[str, Any], ctx: TransformContext) -> Outcome:
    zone = zone_param(params, "datetime")
    parsed = parse_times(cleaned(values), param_strings(params, "formats", "datetime"))
    utc = parsed.micros.copy()
    wall = parsed.ok & ~parsed.instant
    if wall.any():
        utc[wall] = _wall_to_utc(parsed.micros[wall], zone)
    stamps = utc.astype("datetime64[us]")
    stamps[~parsed.ok] = np.datetime64("NaT")
    index = pd.DatetimeIndex(stamps).tz_localize("UTC").tz_convert(zone)
    result = pd.Series(index, index=values.index, copy=False)
    return outcome(result, date_errors(parsed, "datetime"))


_FORMATS_DOC = "extra strptime formats (a string or a list), tried before the built-in ones"
_ZONE_DOC = f"IANA time zone for wall-clock readings and for dates of instants (default {DEFAULT_TIMEZONE})"

TRANSFORMS = [
    Transform(
        "date",
        _date,
        "a calendar date (datetime.date) from ISO, 2024/3/1, 2024.3.1, 2024年3月1日, 20240301, "
        "Excel serials and Unix timestamps (s or ms)",
        params={"formats": _FORMATS_DOC, "timezone": _ZONE_DOC},
    ),
    Transform(
        "datetime",
        _datetime,
        "a timezone-aware date-time from the same inputs as date",
        params={"formats": _FORMATS_DOC, "timezone": _ZONE_DOC},
    ),
]

__all__ = ["DEFAULT_TIMEZONE", "TRANSFORMS", "ParsedTimes", "date_errors", "parse_times", "to_days"]
