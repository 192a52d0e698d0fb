"""Text transforms: trim, nfkc, upper, lower, split_name, email, regex, prefix, strip_prefix."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
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
    TransformParamError,
    cleaned,
    mask_of,
    null_mask,
    object_series,
    outcome,
    param_str,
    reasons,
    text_of,
    text_series,
    trimmed,
    with_nulls,
)


def _blank_to_null(text: pa.Array) -> pa.Array:
    blank = pc.equal(pc.binary_length(pc.utf8_trim(text, TRIM_CHARS)), 0)
    return pc.if_else(blank, pa.scalar(None, pa.string()), text)


def _string_op(op: Callable[[pa.Array], pa.Array]) -> Callable[..., Outcome]:
    """An apply running ``op`` over the text values; values that are not text pass through."""

    def apply(values: pd.Series, params: Mapping[str, Any], ctx: TransformContext) -> Outcome:
        column = text_of(values)
        result = _blank_to_null(op(column.text))
        if column.converted is None or column.original is None:
            return outcome(text_series(result, values.index))
        out = result.to_numpy(zero_copy_only=False)
        out[column.converted] = column.original[column.converted]
        return outcome(object_series(out, values.index))

    return apply


def _trim(text: pa.Array) -> pa.Array:
    return pc.utf8_trim(text, TRIM_CHARS)


# -- split_name ------------------------------------------------------------------------------

# Chinese compound (two-character) surnames, simplified and traditional spellings.
COMPOUND_SURNAMES = frozenset(
    """
    欧阳 太史 端木 上官 司马 东方 独孤 南宫 万俟 闻人 夏侯 诸葛 尉迟 公羊 赫连 澹台 皇甫 宗政 濮阳
    公冶 太叔 申屠 公孙 慕容 仲孙 钟离 长孙 宇文 司徒 鲜于 司空 闾丘 子车 亓官 司寇 巫马 公西 颛孙
    壤驷 公良 漆雕 乐正 宰父 谷梁 拓跋 夹谷 轩辕 令狐 段干 百里 呼延 东郭 南门 羊舌 微生 公户 公玉
    公仪 梁丘 公仲 公上 公门 公山 公坚 左丘 公伯 西门 公祖 第五 公乘 贯丘 公皙 南荣 东里 东宫 仲长
    子书 子桑 即墨 达奚 褚师 呼延 纳兰 完颜 爱新 叶赫 尔朱 独孤 贺兰 长孙 宇文 单于 淳于 仉督 鲜于
    歐陽 司馬 諸葛 東方 尉遲 公孫 長孫 鍾離 鐘離 聞人 軒轅 澹臺 東郭 南宮 夏侯 濮陽 閭丘 樂正 穀梁
    """.split()  # noqa: SIM905 - a word list reads best as words
)

_MIDDLE_DOTS = re.compile("[\u00b7\u2022\u2027\u2219\u30fb\uff0e\u00b8]")
_SPACES = re.compile(f"[{re.escape(TRIM_CHARS)}]+")


def _is_han(char: str) -> bool:
    code = ord(char)
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x20000 <= code <= 0x3134F
        or 0xF900 <= code <= 0xFAFF
        or code == 0x3007
    )


def _split_han(name: str) -> tuple[str, str | None]:
    if len(name) >= 3 and name[:2] in COMPOUND_SURNAMES:
        return name[:2], name[2:]
    return name[:1], (name[1:] or None)


def split_one_name(name: str) -> tuple[str | None, str | None]:
    """A full name as ``(family, given)``.

    - Chinese ``欧阳娜娜`` -> ``欧阳`` / ``娜娜`` (compound surnames), ``张伟`` -> ``张`` / ``伟``;
      with a space (``张 伟``) the first part is the family name.
    - Transliterated minority names with a middle dot (``买买提·艾力``): the part after the last
      dot is the family name, as in Western order.
    - ``Family, Given`` with a comma; otherwise ``Given Family``, split on the last space.
    - One word that is not Chinese is a family name with no given name.
    """
    name = _SPACES.sub(" ", name.strip(TRIM_CHARS))
    if not name:
        return None, None
    if "," in name or "，" in name:
        family, _, given = name.replace("，", ",").partition(",")
        return family.strip() or None, given.strip() or None
    if _MIDDLE_DOTS.search(name):
        parts = [p.strip() for p in _MIDDLE_DOTS.split(name) if p.strip()]
        if len(parts) >= 2:
            return parts[-1], "·".join(parts[:-1])
        name = parts[0] if parts else ""
        if not name:
            return None, None
    if " " in name:
        first, _, rest = name.partition(" ")
        if all(_is_han(c) for c in first):
            return first, rest.replace(" ", "") or None
        given, _, family = name.rpartition(" ")
        return family, given
    if all(_is_han(c) for c in name):
        return _split_han(name)
    return name, None


def _split_name(values: pd.Series, params: Mapping[str, Any], ctx: TransformContext) -> Outcome:
    part = params.get("part")
    if part not in ("family", "given"):
        raise TransformParamError("split_name: parameter 'part' must be 'family' or 'given'")
    text = trimmed(text_of(values).text)
    han = mask_of(pc.match_substring_regex(text, r"^\p{Han}+$"))
    first2 = pc.utf8_slice_codeunits(text, 0, 2)
    compound = pc.and_(
        pc.is_in(first2, value_set=pa.array(sorted(COMPOUND_SURNAMES))),
        pc.greater_equal(pc.utf8_length(text), 3),
    )
    if part == "family":
        result = pc.if_else(compound, first2, pc.utf8_slice_codeunits(text, 0, 1))
    else:
        result = pc.if_else(compound, pc.utf8_slice_codeunits(text, 2), pc.utf8_slice_codeunits(text, 1))
    result = with_nulls(_blank_to_null(result), ~han)
    others = np.flatnonzero(~han & ~null_mask(text))
    if len(others):
        out = result.to_numpy(zero_copy_only=False)
        pick = 0 if part == "family" else 1
        for i, name in zip(others, text.take(pa.array(others)).to_pylist(), strict=True):
            out[i] = split_one_name(name)[pick]
        result = pa.array(out, type=pa.string())
    return outcome(text_series(result, values.index))


# -- email -----------------------------------------------------------------------------------

_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_TLD = r"(?:[A-Za-z]{2,63}|[Xx][Nn]--[A-Za-z0-9-]{1,59})"
# No capture groups: RE2 then matches with a DFA, twenty times faster than extracting.
EMAIL_PATTERN = rf"^{_LOCAL}@(?:{_LABEL}\.)+{_TLD}$"


def _email(values: pd.Series, params: Mapping[str, Any], ctx: TransformContext) -> Outcome:
    text = cleaned(values)
    at = pc.find_substring(text, "@")
    valid = mask_of(
        pc.and_(
            pc.match_substring_regex(text, EMAIL_PATTERN),
            pc.and_(pc.less_equal(at, 64), pc.less_equal(pc.binary_length(text), 254)),
        )
    )
    result = pa.nulls(len(text), pa.string())
    if valid.any():
        mask = pa.array(valid)
        parts = pc.split_pattern(text.filter(mask), "@", max_splits=1)
        joined = pc.binary_join_element_wise(
            pc.list_element(parts, 0), pc.utf8_lower(pc.list_element(parts, 1)), "@"
        )
        result = pc.replace_with_mask(result, mask, joined)
    bad = ~valid & ~null_mask(text)
    return outcome(
        text_series(result, values.index), reasons(len(text), [(bad, "email: not a valid address")])
    )


# -- regex, prefix, strip_prefix ---------------------------------------------------------------


def _compiled(params: Mapping[str, Any]) -> re.Pattern[str]:
    pattern = param_str(params, "pattern", "regex")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise TransformParamError(f"regex: parameter 'pattern' is not a valid expression: {exc}") from None
    if compiled.groups > 1:
        raise TransformParamError("regex: parameter 'pattern' must have at most one group")
    return compiled


def _regex(values: pd.Series, params: Mapping[str, Any], ctx: TransformContext) -> Outcome:
    compiled = _compiled(params)
    group = 1 if compiled.groups else 0
    text = trimmed(text_of(values).text)
    items = text.to_pylist()
    out: list[str | None] = [None] * len(items)
    bad = np.zeros(len(items), dtype=bool)
    for i, item in enumerate(items):
        if item is None:
            continue
        match = compiled.search(item)
        if match is None:
            bad[i] = True
        else:
            out[i] = match.group(group) or None
    return outcome(
        text_series(pa.array(out, type=pa.string()), values.index),
        reasons(len(items), [(bad, "regex: no match")]),
    )


def _prefix(values: pd.Series, params: Mapping[str, Any], ctx: TransformContext) -> Outcome:
    prefix = param_str(params, "value", "prefix")
    text = trimmed(text_of(values).text)
    result = pc.binary_join_element_wise(pa.scalar(prefix), text, "")
    return outcome(text_series(result, values.index))


def _strip_prefix(values: pd.Series, params: Mapping[str, Any], ctx: TransformContext) -> Outcome:
    prefix = param_str(params, "value", "strip_prefix")
    text = trimmed(text_of(values).text)
    result = pc.if_else(pc.starts_with(text, prefix), pc.utf8_slice_codeunits(text, len(prefix)), text)
    return outcome(text_series(trimmed(result), values.index))


TRANSFORMS = [
    Transform("trim", _string_op(_trim), "strip surrounding whitespace (also NBSP, U+3000, zero-width)"),
    Transform(
        "nfkc",
        _string_op(lambda text: pc.utf8_normalize(text, "NFKC")),
        "normalise full-width characters to half-width (NFKC), e.g. １３８ -> 138",
    ),
    Transform("upper", _string_op(pc.utf8_upper), "upper-case"),
    Transform("lower", _string_op(pc.utf8_lower), "lower-case"),
    Transform(
        "split_name",
        _split_name,
        "one part of a full name: Chinese (compound surnames such as 欧阳), Given·Family, "
        "'Family, Given' or 'Given Family'",
        params={"part": "family or given"},
        required_params=frozenset({"part"}),
    ),
    Transform("email", _email, "an e-mail address: trimmed, domain lower-cased, checked"),
    Transform(
        "regex",
        _regex,
        "the first group (or the whole match) of a regular expression; no match is an error",
        params={"pattern": "a Python regular expression with at most one group"},
        required_params=frozenset({"pattern"}),
    ),
    Transform(
        "prefix",
        _prefix,
        "put a fixed text in front",
        params={"value": "the text to put in front"},
        required_params=frozenset({"value"}),
    ),
    Transform(
        "strip_prefix",
        _strip_prefix,
        "remove a fixed text from the front when it is there",
        params={"value": "the text to remove"},
        required_params=frozenset({"value"}),
    ),
]

__all__ = ["COMPOUND_SURNAMES", "EMAIL_PATTERN", "TRANSFORMS", "split_one_name"]
