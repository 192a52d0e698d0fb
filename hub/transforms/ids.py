"""Chinese identifiers: resident ID numbers (GB 11643) and unified social credit codes (GB 32100).

Both are checked on a digit matrix with numpy: one weighted sum per row, no Python loop.

Resident ID numbers (居民身份证号码): 6-digit region code, birth date YYYYMMDD, 3-digit sequence
code (odd = male, even = female) and an ISO 7064 MOD 11-2 check character (``X`` for 10). Input
is NFKC-normalised (full-width digits), spaces are removed and ``x`` is upper-cased. A 15-digit
number (GB 11643-1989) is upgraded by inserting ``19`` before its birth date and computing the
check character. The birth date must be a real date, not in the future and not before 1900.
Only province prefixes are known, so a number from an unknown province (or a foreigner's permanent
residence ID starting with 9) is a warning, not an error: IDs issued under abolished county codes
remain valid.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from hub.transforms.choices import fold
from hub.transforms.core import (
    Outcome,
    Transform,
    TransformContext,
    TransformParamError,
    civil_days,
    fixed_width_bytes,
    mask_of,
    matrix_number,
    nfkc,
    null_mask,
    object_series,
    outcome,
    reasons,
    text_of,
    text_series,
    trimmed,
)
from hub.transforms.dates import DEFAULT_TIMEZONE, parse_times, to_days

ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
ID_CHECK_CHARS = b"10X98765432"  # check character for weighted sum mod 11 = 0..10
# GB/T 2260 province-level prefixes, plus 81/82/83 of the residence permits for Hong Kong,
# Macao and Taiwan residents.
_CODES_1X_4X = (11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46)
_CODES_5X_8X = (50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83)
PROVINCES = frozenset(str(code) for code in (*_CODES_1X_4X, *_CODES_5X_8X))
EARLIEST_BIRTH = np.datetime64("1900-01-01", "D")
MALE_WORDS = ("男", "男性", "m", "male", "1", "先生")
FEMALE_WORDS = ("女", "女性", "f", "female", "2", "女士")

_PROVINCE_LUT = np.zeros(100, dtype=bool)
_PROVINCE_LUT[[int(p) for p in PROVINCES]] = True


def check_digit(body17: str) -> str:
    """The GB 11643 check character of the first 17 digits (for tests and one-off use)."""
    return chr(ID_CHECK_CHARS[sum(int(d) * int(w) for d, w in zip(body17, ID_WEIGHTS, strict=True)) % 11])


def _today() -> np.datetime64:
    return np.datetime64(dt.datetime.now(zoneinfo.ZoneInfo(DEFAULT_TIMEZONE)).date(), "D")


def _from_matrix(matrix: np.ndarray) -> pa.Array:
    """Rows of an (n, width) uint8 matrix of ASCII as an Arrow string array."""
    n, width = matrix.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    data = np.ascontiguousarray(matrix).tobytes()
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data)])


def _scatter_text(n: int, rows: np.ndarray, text: pa.Array) -> pa.Array:
    """An n-row string array holding ``text`` at ``rows`` (ascending) and null elsewhere."""
    if len(rows) == n:
        return text
    mask = np.zeros(n, dtype=bool)
    mask[rows] = True
    return pc.replace_with_mask(pa.nulls(n, pa.string()), pa.array(mask), text)


@dataclass
class IdNumbers:
    """Resident ID numbers checked row by row."""

    ids: pa.Array  # normalised 18-character numbers; null where null or invalid
    birth: np.ndarray  # datetime64[D], NaT where invalid
    male: np.ndarray  # bool
    valid: np.ndarray  # bool
    null: np.ndarray  # bool
    errors: np.ndarray | None  # per-row reasons
    unknown_region: np.ndarray  # bool, valid rows only


def check_ids(values: pd.Series, transform: str = "id_number") -> IdNumbers:
    """Normalise and check a column of resident ID numbers (15 or 18 characters)."""
    column = text_of(values)
    text = pc.replace_substring(trimmed(nfkc(column.text)), " ", "")
    n = len(text)
    null = null_mask(text)
    floats = column.non_text((float, np.floating))
    as_number = floats if floats is not None else np.zeros(n, dtype=bool)
    length = np.asarray(pc.binary_length(text).to_numpy(zero_copy_only=False), dtype=np.float64)
    long, short = (length == 18) & ~as_number, (length == 15) & ~as_number

    # One (k, 18) byte matrix for every 18- or 15-character row, 15-digit ones upgraded.
    rows = np.flatnonzero(long | short)
    matrix = np.empty((len(rows), 18), dtype=np.uint8)
    is_long = long[rows]
    matrix[is_long] = fixed_width_bytes(text.filter(pa.array(long)), 18)
    legacy = fixed_width_bytes(text.filter(pa.array(short)), 15)
    matrix[~is_long, :6] = legacy[:, :6]
    matrix[~is_long, 6:8] = np.frombuffer(b"19", dtype=np.uint8)
    matrix[~is_long, 8:17] = legacy[:, 6:]
    matrix[:, 17][matrix[:, 17] == ord("x")] = ord("X")
    body_digits = ((matrix[:, :17] >= 48) & (matrix[:, :17] <= 57)).all(axis=1)
    last = matrix[:, 17]
    shaped = body_digits & (~is_long | ((last >= 48) & (last <= 57)) | (last == ord("X")))

    total = np.zeros(len(rows), dtype=np.int64)
    for k, weight in enumerate(ID_WEIGHTS):
        total += (matrix[:, k].astype(np.int64) - 48) * weight
    expected = np.frombuffer(ID_CHECK_CHARS, dtype=np.uint8)[total % 11]
    check_ok = ~is_long | (last == expected)
    matrix[:, 17] = expected

    days, real = civil_days(
        matrix_number(matrix, 6, 4), matrix_number(matrix, 10, 2), matrix_number(matrix, 12, 2)
    )
    birth = days.astype("datetime64[D]")
    future = real & (birth > _today())
    too_early = real & (birth < EARLIEST_BIRTH)

    def spread(sub: np.ndarray) -> np.ndarray:
        full = np.zeros(n, dtype=bool)
        full[rows] = sub
        return full

    wrong_shape = ~null & ~spread(shaped)
    errors = reasons(
        n,
        [
            (as_number & ~null, f"{transform}: a number, not text (digits may have been lost)"),
            (wrong_shape & long, f"{transform}: only digits and a final X are allowed"),
            (wrong_shape, f"{transform}: must be 18 characters (or 15 digits)"),
            (spread(~check_ok), f"{transform}: check digit does not match"),
            (spread(~real), f"{transform}: birth date is not a real date"),
            (spread(future), f"{transform}: birth date is in the future"),
            (spread(too_early), f"{transform}: birth date is before 1900"),
        ],
    )
    ok_sub = shaped & check_ok & real & ~future & ~too_early
    valid = spread(ok_sub)
    ids = _scatter_text(n, rows[ok_sub], _from_matrix(matrix[ok_sub]))
    birth_full = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    birth_full[rows[ok_sub]] = birth[ok_sub]
    male = spread(ok_sub & (matrix[:, 16] % 2 == 1))  # ASCII digits keep their parity
    province = np.clip(matrix_number(matrix, 0, 2), 0, 99)
    unknown = spread(ok_sub & ~_PROVINCE_LUT[province])
    return IdNumbers(ids, birth_full, male, valid, null, errors, unknown)


def _source_column(
    ctx: TransformContext, params: Mapping[str, Any], name: str, index: pd.Index
) -> pd.Series | None:
    """The column a cross-check parameter names, aligned with the values being checked."""
    column = params.get(name)
    if column is None:
        return None
    if not isinstance(column, str) or not column:
        raise TransformParamError(f"id_number: parameter {name!r} must name a source column")
    try:
        found = ctx.column(column)
    except KeyError:
        raise TransformParamError(f"id_number: the source records have no column {column!r}") from None
    return found if found.index.equals(index) else found.reindex(index)


def _join(*messages: np.ndarray | None) -> np.ndarray | None:
    present = [m for m in messages if m is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    out = np.full(len(present[0]), None, dtype=object)
    flagged = np.zeros(len(out), dtype=bool)
    for found in present:
        flagged |= pd.notna(found)
    for i in np.flatnonzero(flagged):
        out[i] = "; ".join(str(m[i]) for m in present if m[i] is not None)
    return out


def _id_number(values: pd.Series, params: Mapping[str, Any], ctx: TransformContext) -> Outcome:
    mismatch = params.get("mismatch", "error")
    if mismatch not in ("error", "warning"):
        raise TransformParamError("id_number: parameter 'mismatch' must be 'error' or 'warning'")
    checked = check_ids(values)
    n = len(checked.valid)
    disagree: list[tuple[np.ndarray, str]] = []
    births = _source_column(ctx, params, "birth_date", values.index)
    if births is not None:
        parsed = parse_times(trimmed(nfkc(text_of(births).text)))
        days = to_days(parsed)
        differs = checked.valid & parsed.ok & (days != checked.birth)
        disagree.append((differs, f"id_number: birth date disagrees with column {params['birth_date']!r}"))
    genders = _source_column(ctx, params, "gender", values.index)
    if genders is not None:
        words = fold(text_of(genders).text)
        said_male = mask_of(pc.is_in(words, value_set=pa.array(MALE_WORDS)))
        said_female = mask_of(pc.is_in(words, value_set=pa.array(FEMALE_WORDS)))
        differs = checked.valid & ((said_male & ~checked.male) | (said_female & checked.male))
        disagree.append(
            (
                differs,
                f"id_number: gender disagrees with column {params['gender']!r} "
                "(sequence code odd = male, even = female)",
            )
        )
    region = reasons(n, [(checked.unknown_region, "id_number: unknown region code")])
    errors = checked.errors
    ids = checked.ids
    if mismatch == "error":
        found = reasons(n, disagree)
        if found is not None:
            errors = _join(errors, found)
            ids = pc.if_else(pa.array(pd.notna(found)), pa.scalar(None, pa.string()), ids)
        warnings = region
    else:
        warnings = _join(region, *(reasons(n, [rule]) for rule in disagree))
    return outcome(text_series(ids, values.index), errors, warnings)


def _id_birth_date(values: pd.Series, params: Mapping[str, Any], ctx: TransformContext) -> Outcome:
    checked = check_ids(values, "id_birth_date")
    return outcome(object_series(checked.birth.astype(object), values.index), checked.errors)


def _id_gender(values: pd.Series, params: Mapping[str, Any], ctx: TransformContext) -> Outcome:
    checked = check_ids(values, "id_gender")
    genders = pc.if_else(pa.array(checked.male), "male", "female")
    result = pc.if_else(pa.array(checked.valid), genders, pa.scalar(None, pa.string()))
    return outcome(text_series(result, values.index), checked.errors)


# -- unified social credit code (GB 32100-2015) ------------------------------------------------

USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, Z, S, V
USCC_WEIGHTS = np.array([pow(3, i, 31) for i in range(17)], dtype=np.int64)
_USCC_LUT = np.full(256, 255, dtype=np.uint8)
_USCC_LUT[np.frombuffer(USCC_CHARS.encode(), dtype=np.uint8)] = np.arange(31, dtype=np.uint8)


def uscc_check_char(body17: str) -> str:
    """The GB 32100 check character of the first 17 characters."""
    total = sum(USCC_CHARS.index(c) * int(w) for c, w in zip(body17, USCC_WEIGHTS, strict=True))
    return USCC_CHARS[(31 - total % 31) % 31]


def _uscc(values: pd.Series, params: Mapping[str, Any], ctx: TransformContext) -> Outcome:
    text = pc.utf8_upper(pc.replace_substring_regex(trimmed(nfkc(text_of(values).text)), r"\s+", ""))
    n = len(text)
    null = null_mask(text)
    sized = mask_of(pc.and_(pc.equal(pc.binary_length(text), 18), pc.string_is_ascii(text)))
    rows = np.flatnonzero(sized)
    matrix = fixed_width_bytes(text.take(pa.array(rows, type=pa.int64())), 18)
    codes = _USCC_LUT[matrix].astype(np.int64)
    charset_ok = (codes != 255).all(axis=1)
    expected = (31 - (np.where(codes[:, :17] == 255, 0, codes[:, :17]) @ USCC_WEIGHTS) % 31) % 31
    check_ok = charset_ok & (codes[:, 17] == expected)
    bad_chars = np.zeros(n, dtype=bool)
    bad_chars[rows[~charset_ok]] = True
    bad_check = np.zeros(n, dtype=bool)
    bad_check[rows[charset_ok & ~check_ok]] = True
    errors = reasons(
        n,
        [
            (~null & ~sized, "uscc: must be 18 characters"),
            (bad_chars, "uscc: contains characters outside the code set (no I, O, Z, S, V)"),
            (bad_check, "uscc: check character does not match"),
        ],
    )
    good = np.zeros(n, dtype=bool)
    good[rows[check_ok]] = True
    result = pc.if_else(pa.array(good), text, pa.scalar(None, pa.string()))
    return outcome(text_series(result, values.index), errors)


_ID_PARAMS = {
    "birth_date": "a source column holding the birth date, checked against the number",
    "gender": "a source column holding the gender (男/女, M/F, male/female, 1/2), checked against the number",
    "mismatch": "error (default) or warning: what a disagreement with those columns is",
}

TRANSFORMS = [
    Transform(
        "id_number",
        _id_number,
        "a PRC resident ID number (GB 11643): check digit, birth date, 15 -> 18 digits, X upper-cased; "
        "an unknown region is a warning",
        params=_ID_PARAMS,
    ),
    Transform(
        "id_birth_date", _id_birth_date, "the birth date (datetime.date) of a valid resident ID number"
    ),
    Transform("id_gender", _id_gender, "the gender (male/female) of a valid resident ID number"),
    Transform(
        "uscc",
        _uscc,
        "a unified social credit code of a legal entity (GB 32100): 18 characters, check character",
    ),
]

__all__ = [
    "PROVINCES",
    "TRANSFORMS",
    "USCC_CHARS",
    "IdNumbers",
    "check_digit",
    "check_ids",
    "uscc_check_char",
]
