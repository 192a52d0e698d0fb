"""Keyword matching over Chinese and English resume text, and years of experience.

Chinese is written without spaces, so a tokenizer would need a dictionary and a model; a
curated keyword list does not. A keyword is matched in one of two ways, by what it contains:

- with any CJK character (``数据标注``, ``SQL优化``): as a substring of the text, both NFKC
  normalised, case-folded and with whitespace removed (``数 据 标 注`` still matches);
- Latin only (``TensorFlow``, ``C++``, ``machine learning``): case-insensitively, with no
  letter or digit directly before or after it, so ``Java`` does not match ``JavaScript`` but
  does match ``熟悉Java开发``; spaces, hyphens and underscores between its words are
  interchangeable (``machine-learning``).

A keyword matches when any form of it does: the keyword itself and its synonyms
(:class:`Synonyms`, bilingual groups such as ``机器学习`` / ``machine learning``). Free text
that is not a known keyword (a talent-search query) is matched by CJK character bigrams
(:func:`bigram_coverage`) instead.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

_CJK = "\u3400-\u9fff\uf900-\ufaff"
CJK_RE = re.compile(f"[{_CJK}]")
_SPACE_RE = re.compile(r"\s+")
_WORD_SPLIT_RE = re.compile(r"[\s\-_]+")

#: Bilingual synonym groups hub knows without configuration (``builtin_synonyms = false`` drops them).
BUILTIN_SYNONYMS: tuple[tuple[str, ...], ...] = (
    ("数据标注", "data annotation", "data labeling", "data labelling"),
    ("机器学习", "machine learning"),
    ("深度学习", "deep learning"),
    ("自然语言处理", "natural language processing", "NLP"),
    ("计算机视觉", "computer vision"),
    ("数据分析", "data analysis", "data analytics"),
    ("推荐系统", "recommender systems", "recommendation systems"),
    ("大数据", "big data"),
    ("项目管理", "project management"),
    ("产品设计", "product design"),
    ("财务分析", "financial analysis"),
    ("招聘", "recruiting", "recruitment"),
    ("Kubernetes", "k8s"),
    ("PostgreSQL", "postgres"),
)

#: Skills a talent-search query is segmented against, besides synonyms and configured keywords.
BUILTIN_SKILLS: tuple[str, ...] = (
    "Python", "Java", "Go", "SQL", "TensorFlow", "PyTorch", "Spark", "Kubernetes", "React", "Docker",
    "Linux", "Hadoop", "Excel", "数据标注", "机器学习", "深度学习", "数据分析", "自然语言处理",
    "计算机视觉", "财务分析", "招聘", "项目管理", "产品设计", "测试", "推荐系统", "大数据",
)  # fmt: skip


def normalise(text: str) -> str:
    """NFKC (full-width letters and digits become ASCII) and case-folded."""
    return unicodedata.normalize("NFKC", text).casefold()


def compact(text: str) -> str:
    """:func:`normalise`, with all whitespace removed (how CJK forms are compared)."""
    return _SPACE_RE.sub("", normalise(text))


def has_cjk(text: str) -> bool:
    return CJK_RE.search(text) is not None


@dataclass(frozen=True)
class Document:
    """A text prepared once for many keyword look-ups."""

    norm: str = field(repr=False)  # resume text: never in a repr or traceback
    compact: str = field(repr=False)

    @classmethod
    def of(cls, *parts: str | None) -> Document:
        text = "\n".join(p for p in parts if p)
        norm = normalise(text)
        return cls(norm=norm, compact=_SPACE_RE.sub("", norm))

    def __bool__(self) -> bool:
        return bool(self.norm.strip())


@lru_cache(maxsize=4096)
def _latin_pattern(form: str) -> re.Pattern[str]:
    words = [re.escape(w) for w in _WORD_SPLIT_RE.split(form) if w]
    return re.compile(r"(?<![0-9a-z])" + r"[\s\-_]+".join(words) + r"(?![0-9a-z])")


def form_in(form: str, doc: Document) -> bool:
    """Whether one keyword form occurs in ``doc`` (rules in the module docstring)."""
    if not form.strip():
        return False
    if has_cjk(form):
        return compact(form) in doc.compact
    return _latin_pattern(normalise(form).strip()).search(doc.norm) is not None


class Synonyms:
    """Groups of interchangeable keyword forms; looking up any member yields the whole group."""

    def __init__(self, groups: Iterable[Sequence[str]] = ()) -> None:
        self._groups: dict[str, tuple[str, ...]] = {}
        for group in groups:
            self.add(group)

    def add(self, group: Sequence[str]) -> None:
        members: list[str] = []
        for term in group:
            for known in (term, *self._groups.get(compact(term), ())):
                if compact(known) not in {compact(m) for m in members}:
                    members.append(known)
        merged = tuple(members)
        for term in merged:
            self._groups[compact(term)] = merged

    def forms(self, keyword: str) -> tuple[str, ...]:
        """The keyword first, then its synonyms."""
        group = self._groups.get(compact(keyword), ())
        return (keyword, *(g for g in group if compact(g) != compact(keyword)))

    def terms(self) -> list[str]:
        return sorted({t for group in self._groups.values() for t in group})

    @classmethod
    def build(cls, configured: Mapping[str, Sequence[str]], *, builtin: bool = True) -> Synonyms:
        """Built-in groups (unless ``builtin`` is false), then ``keyword = [synonyms]`` from hub.toml."""
        synonyms = cls(BUILTIN_SYNONYMS if builtin else ())
        for keyword, others in configured.items():
            synonyms.add([keyword, *others])
        return synonyms


def keyword_in(keyword: str, doc: Document, synonyms: Synonyms) -> bool:
    """Whether ``keyword`` or any of its synonyms occurs in ``doc``."""
    return any(form_in(form, doc) for form in synonyms.forms(keyword))


def bigrams(text: str) -> set[str]:
    """Character bigrams of the CJK runs in ``text`` (a single-character run counts as itself)."""
    grams: set[str] = set()
    for run in re.findall(f"[{_CJK}]+", compact(text)):
        if len(run) == 1:
            grams.add(run)
        else:
            grams.update(run[i : i + 2] for i in range(len(run) - 1))
    return grams


def bigram_coverage(term: str, doc: Document) -> float:
    """Share of the term's CJK bigrams that occur in ``doc`` (0 to 1): fuzzy matching for free text."""
    wanted = bigrams(term)
    if not wanted:
        return 0.0
    return sum(1 for gram in wanted if gram in doc.compact) / len(wanted)


# -- years of experience ------------------------------------------------------------------------

_CN_DIGITS = {
    "零": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
#: "3年", "3 年以上", "3+ years", "5 yrs", "三年", "十五年"; not "2019年" (more than MAX_YEARS), "3年级".
YEARS_RE = re.compile(
    r"(?<![0-9.])(\d{1,2}(?:\.\d)?|[零一二两三四五六七八九十]{1,3})\s*\+?\s*"
    r"(?:年(?![级龄前])|years?\b|yrs?\b)",
    re.IGNORECASE,
)
MAX_YEARS = 50.0


def chinese_number(text: str) -> int | None:
    """``三`` -> 3, ``十五`` -> 15, ``二十`` -> 20 (up to 99); None for anything else."""
    if not text or any(ch not in _CN_DIGITS and ch != "十" for ch in text):
        return None
    if "十" not in text:
        return _CN_DIGITS[text] if len(text) == 1 else None
    tens, _, ones = text.partition("十")
    if "十" in ones or len(tens) > 1 or len(ones) > 1:
        return None
    return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[ones] if ones else 0)


def _years_value(token: str) -> float | None:
    if token[0].isdigit():
        value: float | None = float(token)
    else:
        number = chinese_number(token)
        value = float(number) if number is not None else None
    if value is None or math.isnan(value) or value > MAX_YEARS:
        return None
    return value


def years_mentions(text: str) -> list[tuple[float, tuple[int, int]]]:
    """Every years-of-experience mention in ``text``: ``(years, (start, end))``."""
    found = []
    for match in YEARS_RE.finditer(unicodedata.normalize("NFKC", text)):
        value = _years_value(match.group(1))
        if value is not None:
            found.append((value, match.span()))
    return found


def parse_years(text: str | None) -> float | None:
    """Years of experience a text states: the largest mention (``3年工作经验…2年Python`` -> 3)."""
    if not text:
        return None
    mentions = years_mentions(text)
    return max(value for value, _ in mentions) if mentions else None


def segment(text: str, vocabulary: Iterable[str]) -> list[tuple[str, bool]]:
    """Split a CJK run into known terms, longest first from the left: ``[(piece, known)]``.

    ``数据标注工程师`` with ``数据标注`` known gives ``[("数据标注", True), ("工程师", False)]``.
    Unknown stretches stay whole (they are matched by bigrams).
    """
    known = {compact(v): v for v in vocabulary if has_cjk(v)}
    longest = max((len(k) for k in known), default=0)
    pieces: list[tuple[str, bool]] = []
    pending = ""
    i = 0
    source = compact(text)
    while i < len(source):
        for size in range(min(longest, len(source) - i), 1, -1):
            piece = source[i : i + size]
            if piece in known:
                if pending:
                    pieces.append((pending, False))
                    pending = ""
                pieces.append((known[piece], True))
                i += size
                break
        else:
            pending += source[i]
            i += 1
    if pending:
        pieces.append((pending, False))
    return pieces
