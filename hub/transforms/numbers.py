"""Number transforms: integer, decimal, money and boolean.

All of them read text after NFKC (full-width digits work) and trimming. Thousands separators
must be well placed (``1,234,567``); anything else with a comma is an error, since ``1,5`` may
be a decimal comma. Scientific notation is refused: in HR exports it means a spreadsheet
rounded the number.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from hub.transforms.core import (
    TRIM_CHARS,
    Outcome,
    Transform,
    TransformContext,
    TransformError,
    TransformParamError,
    cleaned,
    mask_of,
    null_mask,
    object_series,
    outcome,
    param_strings,
    per_row,
    reasons,
    scalar_text,
)

_GROUPED = r"(?:\d+|\d{1,3}(?:,\d{3})+)"
INTEGER_PATTERN = rf"^[+-]?{_GROUPED}(?:\.0*)?$"
DECIMAL_PATTERN = rf"^[+-]?(?:{_GROUPED}(?:\.\d*)?|\.\d+)$"
INT64_DIGITS = 18  # every 18-digit number fits in int64; 19 digits may not


# -- integer ---------------------------------------------------------------------------------


def _integer(values: pd.Series, params: Mapping[str, Any], ctx: TransformContext) -> Outcome:
    text = cleaned(values)
    n = len(text)
    null = null_mask(text)
    good = mask_of(pc.match_substring_regex(text, INTEGER_PATTERN))
    body = pc.replace_substring_regex(text, r",|^\+|\.0*$", "")
    digits = np.asarray(
        pc.binary_length(pc.replace_substring(body, "-", "")).to_numpy(zero_copy_only=False), dtype=np.float64
    )
    fits = good & (np.nan_to_num(digits) <= INT64_DIGITS)
    numbers = np.zeros(n, dtype=np.int64)
    if fits.any():
        cast = pc.cast(pc.if_else(pa.array(fits), body, "0"), pa.int64())
        numbers = np.asarray(cast.to_numpy(zero_copy_only=False), dtype=np.int64).copy()
    out_of_range = np.zeros(n, dtype=bool)
    for i in np.flatnonzero(good & ~fits):
        number = int(body[i].as_py())
        if -(2**63) <= number < 2**63:
            numbers[i] = number
            fits[i] = True
        else:
            out_of_range[i] = True
    result = pd.arrays.IntegerArray(numbers, ~fits)
    errors = reasons(
        n,
        [(out_of_range, "integer: out of range"), (~good & ~null, "integer: not a whole number")],
    )
    return outcome(pd.Series(result, index=values.index, copy=False), errors)


# -- decimal ---------------------------------------------------------------------------------


def _places(params: Mapping[str, Any], transform: str) -> Decimal | None:
    places = params.get("places")
    if places is None:
        return None
    if isinstance(places, bool) or not isinstance(places, int) or not 0 <= places <= 12:
        raise TransformParamError(f"{transform}: parameter 'places' must be a whole number from 0 to 12")
    return Decimal(1).scaleb(-places)


def _decimal(values: pd.Series, params: Mapping[str, Any], ctx: TransformContext) -> Outcome:
    quantum = _places(params, "decimal")
    text = cleaned(values)
    n = len(text)
    null = null_mask(text)
    good = mask_of(pc.match_substring_regex(text, DECIMAL_PATTERN))
    out = np.full(n, None, dtype=object)
    rows = np.flatnonzero(good)
    if len(rows):
        bodies = pc.replace_substring(text.take(pa.array(rows)), ",", "").to_pylist()
        numbers = [Decimal(b) for b in bodies]
        if quantum is not None:
            numbers = [d.quantize(quantum, rounding=ROUND_HALF_UP) for d in numbers]
        out[rows] = numbers
    return outcome(
        object_series(out, values.index), reasons(n, [(~good & ~null, "decimal: not a plain decimal number")])
    )


# -- money -----------------------------------------------------------------------------------

CURRENCY_MARKS = {
    "¥": "CNY",
    "元": "CNY",
    "人民币": "CNY",
    "人民币元": "CNY",
    "RMB": "CNY",
    "块": "CNY",
    "$": "USD",
    "US$": "USD",
    "美元": "USD",
    "美金": "USD",
    "HK$": "HKD",
    "港币": "HKD",
    "港元": "HKD",
    "€": "EUR",
    "欧元": "EUR",
    "£": "GBP",
    "英镑": "GBP",
    "日元": "JPY",
    "円": "JPY",
}
MONEY_UNITS = {
    "万": 4,
    "w": 4,
    "W": 4,
    "千": 3,
    "k": 3,
    "K": 3,
    "百万": 6,
    "千万": 7,
    "亿": 8,
}
_MONEY = re.compile(
    r"^(?P<s1>[+-]?)\s*(?P<pre>[^\d\s+.,-]*)\s*(?P<s2>[+-]?)\s*"
    r"(?P<num>(?:\d+|\d{1,3}(?:,\d{3})+)(?:\.\d+)?|\.\d+)\s*"
    r"(?P<unit>百万|千万|万|千|亿|[kKwW](?![A-Za-z]))?\s*(?P<post>[^\d\s]*)$",
    re.ASCII,
)
_CODE = re.compile(r"^[A-Za-z]{3}$")


def _currency_of(mark: str) -> str | None:
    if not mark:
        return None
    known = CURRENCY_MARKS.get(mark) or CURRENCY_MARKS.get(mark.upper())
    if known:
        return known
    if _CODE.match(mark):
        return mark.upper()
    raise TransformError("money: unknown currency mark")


def _plain(amount: Decimal) -> Decimal:
    """A scaled amount written out (1.2E+4 -> 12000)."""
    if amount == amount.to_integral_value():
        return amount.quantize(Decimal(1))
    return amount.normalize()


def parse_money(value: Any, params: Mapping[str, Any]) -> dict[str, Any]:
    """``12,345.50``, ``¥12345``, ``12345元``, ``1.2万``, ``USD 100`` -> ``{"amount", "currency"}``."""
    default = params.get("currency", "CNY")
    if isinstance(value, bool):
        raise TransformError("money: not an amount")
    text = value if isinstance(value, str) else scalar_text(value)
    text = unicodedata.normalize("NFKC", text).strip()
    match = _MONEY.match(text)
    if match is None:
        raise TransformError("money: not an amount")
    if match["s1"] and match["s2"]:
        raise TransformError("money: not an amount")
    marks = {c for c in (_currency_of(match["pre"]), _currency_of(match["post"])) if c}
    if len(marks) > 1:
        raise TransformError("money: conflicting currency marks")
    try:
        amount = Decimal(match["num"].replace(",", ""))
    except InvalidOperation:
        raise TransformError("money: not an amount") from None
    if match["unit"]:
        amount = _plain(amount.scaleb(MONEY_UNITS[match["unit"]]))
    if "-" in (match["s1"], match["s2"]):
        amount = -amount
    return {"amount": amount, "currency": marks.pop() if marks else default}


_money_rows = per_row(parse_money)
# Amounts maybe in yuan (¥ before, 元 after) and maybe with a unit (1.2万): the common cases,
# matched in bulk; the rest (other currencies, signs before ¥) goes through parse_money.
MONEY_FAST_PATTERN = rf"^(?:¥\s*)?[+-]?{_GROUPED}(?:\.\d+)?\s*(?:百万|千万|万|千|亿|[kKwW])?(?:\s*元)?$"


def _money(values: pd.Series, params: Mapping[str, Any], ctx: TransformContext) -> Outcome:
    currency = params.get("currency", "CNY")
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
        raise TransformParamError("money: parameter 'currency' must be an ISO 4217 code such as CNY")
    text = cleaned(values)
    n = len(text)
    fast = mask_of(pc.match_substring_regex(text, MONEY_FAST_PATTERN))
    out = np.full(n, None, dtype=object)
    errors: np.ndarray | None = None
    if fast.any():
        mask = pa.array(fast)
        subset = text.filter(mask)
        stripped = pc.utf8_rtrim(subset, "元" + TRIM_CHARS)
        exponents = np.zeros(len(subset), dtype=np.int64)
        for unit, exponent in sorted(MONEY_UNITS.items(), key=lambda item: -len(item[0])):
            exponents[mask_of(pc.ends_with(stripped, unit)) & (exponents == 0)] = exponent
        bodies = pc.replace_substring(pc.utf8_trim(subset, "¥元万千亿百kKwW" + TRIM_CHARS), ",", "")
        in_yuan = mask_of(pc.or_(pc.match_substring(subset, "¥"), pc.match_substring(subset, "元")))
        currencies = np.where(in_yuan, "CNY", currency).tolist()
        out[fast] = [
            {"amount": _plain(Decimal(body).scaleb(exp)) if exp else Decimal(body), "currency": code}
            for body, exp, code in zip(bodies.to_pylist(), exponents.tolist(), currencies, strict=True)
        ]
    rest = ~fast & ~null_mask(text)
    if rest.any():
        slow = _money_rows(values[rest], params, ctx)
        out[rest] = slow.values.to_numpy(dtype=object)
        if slow.errors is not None:
            errors = np.full(n, None, dtype=object)
            errors[rest] = slow.errors.to_numpy(dtype=object)
    return outcome(object_series(out, values.index), errors)


# -- boolean ---------------------------------------------------------------------------------

TRUE_WORDS = ("是", "有", "对", "真", "y", "yes", "true", "t", "1", "on", "√", "✓", "✔")
FALSE_WORDS = (
    "否",
    "无",
    "没有",
    "不是",
    "错",
    "假",
    "n",
    "no",
    "false",
    "f",
    "0",
    "off",
    "×",
    "✗",
    "✘",
    "✕",
)


def _boolean(values: pd.Series, params: Mapping[str, Any], ctx: TransformContext) -> Outcome:
    extra_true = [w.strip().lower() for w in param_strings(params, "true", "boolean")]
    extra_false = [w.strip().lower() for w in param_strings(params, "false", "boolean")]
    if set(extra_true) & set(FALSE_WORDS + tuple(extra_false)) or set(extra_false) & set(TRUE_WORDS):
        raise TransformParamError("boolean: a word cannot be both true and false")
    text = pc.utf8_lower(cleaned(values))
    n = len(text)
    yes = mask_of(pc.is_in(text, value_set=pa.array(TRUE_WORDS + tuple(extra_true), type=pa.string())))
    no = mask_of(pc.is_in(text, value_set=pa.array(FALSE_WORDS + tuple(extra_false), type=pa.string())))
    null = null_mask(text)
    result = pd.arrays.BooleanArray(yes, ~(yes | no))
    return outcome(
        pd.Series(result, index=values.index, copy=False),
        reasons(n, [(~(yes | no | null), "boolean: not a yes/no value")]),
    )


TRANSFORMS = [
    Transform(
        "integer",
        _integer,
        "a whole number (Int64): 1,234, +12, 12.0, full-width digits",
    ),
    Transform(
        "decimal",
        _decimal,
        "an exact decimal number (decimal.Decimal): 1,234.50, -0.5, full-width digits",
        params={"places": "round half up to this many decimal places"},
    ),
    Transform(
        "money",
        _money,
        'an amount with its currency {"amount": Decimal, "currency": "CNY"}: 12,345.50, ¥12345, '
        "12345元, 1.2万 (x10000), 15k, USD 100; a currency mark in the text wins over the parameter",
        params={"currency": "ISO 4217 code when the text has no currency mark (default CNY)"},
    ),
    Transform(
        "boolean",
        _boolean,
        "true/false from 是/否, 有/无, Y/N, yes/no, true/false, 1/0, √/×",
        params={"true": "extra words that mean true", "false": "extra words that mean false"},
    ),
]

__all__ = ["CURRENCY_MARKS", "FALSE_WORDS", "TRANSFORMS", "TRUE_WORDS", "parse_money"]
