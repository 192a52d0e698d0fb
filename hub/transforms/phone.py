"""Phone numbers to E.164 with ``phonenumbers``, with a vectorised path for mainland numbers.

The fast path (region CN) strips spaces, dashes, dots and brackets, then takes

- mobiles: 11 digits starting with 1, optionally after ``+86``, ``0086``, ``86`` or ``0``;
- fixed lines written with the trunk ``0`` (``010-12345678``) or after ``+86``/``0086``;

and accepts a number only if it matches ``phonenumbers``' own CN patterns and lengths (the
general description, and the mobile or fixed-line one), which is exactly when
``phonenumbers`` would parse it to that national number and call it valid. Everything else,
including every number the fast path does not accept, is parsed row by row, so errors and
their wording always come from ``phonenumbers``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
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
    cleaned,
    mask_of,
    null_mask,
    outcome,
    text_series,
)


@dataclass(frozen=True)
class _Desc:
    pattern: str  # anchored, for RE2
    lengths: tuple[int, ...]


@functools.cache
def _cn_descs() -> tuple[_Desc, _Desc, _Desc]:
    """phonenumbers' CN general, mobile and fixed-line descriptions."""
    import phonenumbers

    metadata = phonenumbers.PhoneMetadata.metadata_for_region("CN")
    if metadata is None:  # pragma: no cover - phonenumbers always ships CN
        raise RuntimeError("phonenumbers has no metadata for CN")
    descs = []
    for desc in (metadata.general_desc, metadata.mobile, metadata.fixed_line):
        if desc is None or not desc.national_number_pattern:  # pragma: no cover
            raise RuntimeError("phonenumbers has no CN number patterns")
        descs.append(_Desc(f"^(?:{desc.national_number_pattern})$", tuple(desc.possible_length)))
    return descs[0], descs[1], descs[2]


def _matches(national: pa.Array, rows: np.ndarray, desc: _Desc) -> np.ndarray:
    """Which of ``rows`` (a mask) match ``desc`` in length and pattern; only those are tested."""
    found = np.zeros(len(national), dtype=bool)
    where = np.flatnonzero(rows)
    if not len(where):
        return found
    subset = national if len(where) == len(national) else national.filter(pa.array(rows))
    length = np.asarray(pc.binary_length(subset).to_numpy(zero_copy_only=False), dtype=np.int64)
    fits = np.isin(length, desc.lengths) if desc.lengths else np.ones(len(where), dtype=bool)
    found[where] = fits & mask_of(pc.match_substring_regex(subset, desc.pattern))
    return found


def _fast_cn(text: pa.Array, mobile_only: bool) -> tuple[np.ndarray, pa.Array]:
    """Rows the fast path accepts, and their national numbers."""
    compact = pc.replace_substring_regex(text, r"[\s\-().]", "")
    plus86, zero086 = pc.starts_with(compact, "+86"), pc.starts_with(compact, "0086")
    trunk = pc.and_(pc.starts_with(compact, "0"), pc.invert(pc.starts_with(compact, "00")))
    bare86 = pc.match_substring_regex(compact, r"^861\d{10}$")
    national = compact
    for prefixed, cut in ((plus86, 3), (zero086, 4), (trunk, 1), (bare86, 2)):  # mutually exclusive
        if pc.any(prefixed).as_py():
            national = pc.if_else(prefixed, pc.utf8_slice_codeunits(compact, cut), national)
    general, mobile, fixed = _cn_descs()
    present = ~null_mask(national)
    typed = _matches(national, present, mobile)
    if not mobile_only:
        written_with_prefix = mask_of(pc.or_(pc.or_(plus86, zero086), trunk))
        typed |= _matches(national, present & written_with_prefix & ~typed, fixed)
    return _matches(national, typed, general), national


def _region(params: Mapping[str, Any]) -> str:
    import phonenumbers

    region = params.get("region", "CN")
    if not isinstance(region, str) or region.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise TransformParamError("phone: parameter 'region' must be a region code such as CN")
    return region.upper()


def parse_phone(text: str, region: str, mobile_only: bool) -> tuple[str | None, str | None, str | None]:
    """One number as ``(E.164, error, warning)``."""
    import phonenumbers

    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None, "phone: not a phone number", None
    if not phonenumbers.is_valid_number(number):
        return None, f"phone: not a valid number for region {region}", None
    if mobile_only and phonenumbers.number_type(number) not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        return None, "phone: not a mobile number", None
    warning = "phone: extension dropped" if number.extension else None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None, warning


def _phone(values: pd.Series, params: Mapping[str, Any], ctx: TransformContext) -> Outcome:
    region = _region(params)
    mobile_only = params.get("mobile_only", False)
    if not isinstance(mobile_only, bool):
        raise TransformParamError("phone: parameter 'mobile_only' must be true or false")
    text = cleaned(values)
    n = len(text)
    todo = ~null_mask(text)
    result = pa.nulls(n, pa.string())
    if region == "CN" and todo.any():
        fast, national = _fast_cn(text, mobile_only)
        if fast.any():
            result = pc.if_else(
                pa.array(fast), pc.binary_join_element_wise("+86", national, ""), pa.scalar(None, pa.string())
            )
            todo &= ~fast
    errors: np.ndarray | None = None
    warnings: np.ndarray | None = None
    rows = np.flatnonzero(todo)
    if len(rows):
        out = result.to_numpy(zero_copy_only=False)
        errors = np.full(n, None, dtype=object)
        warnings = np.full(n, None, dtype=object)
        seen: dict[str, tuple[str | None, str | None, str | None]] = {}  # junk ("无", "-") repeats
        for i, item in zip(rows, text.take(pa.array(rows, type=pa.int64())).to_pylist(), strict=True):
            parsed = seen.get(item)
            if parsed is None:
                parsed = seen[item] = parse_phone(item, region, mobile_only)
            out[i], errors[i], warnings[i] = parsed
        result = pa.array(out, type=pa.string())
        errors = errors if pd.notna(errors).any() else None
        warnings = warnings if pd.notna(warnings).any() else None
    return outcome(text_series(result, values.index), errors, warnings)


TRANSFORMS = [
    Transform(
        "phone",
        _phone,
        "a phone number in E.164 (+8613800138000): +86/0086/86 prefixes, spaces, dashes and "
        "full-width digits accepted; invalid numbers are errors",
        params={
            "region": "region of numbers written without a country code (default CN)",
            "mobile_only": "true: numbers that are not mobile numbers are errors",
        },
    ),
]

__all__ = ["TRANSFORMS", "parse_phone"]
