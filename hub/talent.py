"""Talent-pool search over past candidates: skills, resume text, experience and track record.

``hub talent search "数据标注 TensorFlow 3年"`` ranks every candidate in the canonical store.

**The query.** Years of experience (``3年``, ``3年以上``, ``三年``, ``3+ years``) become a
minimum; the rest is split on spaces and punctuation, Latin runs become terms as they are
(``TensorFlow``, ``C++``), and CJK runs are segmented against the vocabulary (built-in skills,
synonyms, the jobs' keywords, every skill and tag in the pool), longest match first:
``数据标注工程师`` gives the known term ``数据标注`` and the free term ``工程师``. Filler such as
``经验`` or ``熟悉`` is dropped.

**The score** of a candidate, on 0-100:

- each term t gets a match ``m_t``: 1.0 when it (or a synonym) is among the candidate's skills
  or tags, 0.8 when it occurs in the resume text or title (the evaluation's keyword rules), and
  for a free CJK term not found whole, ``0.8 x`` the share of its character bigrams found
  when that share is at least one half, else 0;
- rarer terms count more: ``idf_t = ln(1 + N / (1 + df_t))``, N candidates, ``df_t`` of them
  matching t; relevance ``R = sum(idf_t m_t) / sum(idf_t)`` (1 when the query has no term);
- experience fit ``E = min(1, years / min_years)`` (0 when the years are unknown);
- track record ``H`` = the best composite of the candidate's evaluated applications / 100,
  0.5 (neutral) when none was evaluated;
- ``score = 100 (0.6 R + 0.2 E + 0.2 H)`` with a years minimum, ``100 (0.75 R + 0.25 H)`` without.

Candidates with ``R = 0`` are left out; ties go to the higher R, then the candidate's remote id.
Names and contacts are only ever shown masked.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hub.evaluation.scoring import Evaluation, years_of_experience
from hub.evaluation.service import Contacts, Evaluator
from hub.evaluation.store import CanonicalData, Row, text_list
from hub.evaluation.text import (
    BUILTIN_SKILLS,
    CJK_RE,
    Document,
    Synonyms,
    bigram_coverage,
    compact,
    keyword_in,
    parse_years,
    segment,
    years_mentions,
)

SKILL_MATCH, TEXT_MATCH = 1.0, 0.8
MIN_COVERAGE = 0.5
NEUTRAL_HISTORY = 0.5
_SPLIT_RE = re.compile(r"[\s,，、;；/|。.!！?？()（）]+")
_RUNS_RE = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+|[^\u3400-\u9fff\uf900-\ufaff]+")
_LATIN_STOP = frozenset({"and", "or", "with", "in", "of", "the", "a", "an", "experience", "skills"})
_CJK_STOP = (
    "以上",
    "经验",
    "熟悉",
    "精通",
    "掌握",
    "了解",
    "工作",
    "相关",
    "左右",
    "的",
    "和",
    "与",
    "或",
    "及",
)


@dataclass(frozen=True)
class QueryTerm:
    """One term of a query; ``free`` terms are not in the vocabulary and also match by bigrams."""

    text: str
    free: bool = False


@dataclass(frozen=True)
class TalentQuery:
    text: str
    terms: tuple[QueryTerm, ...]
    min_years: float | None


def _strip_cjk_stop(piece: str) -> str:
    for word in _CJK_STOP:
        piece = piece.replace(word, "")
    return piece


def parse_query(query: str, vocabulary: Iterable[str]) -> TalentQuery:
    """Terms and a years minimum from a free-text query (rules in the module docstring)."""
    vocabulary = list(vocabulary)
    mentions = years_mentions(query)
    min_years = max((v for v, _ in mentions), default=None)
    rest = query
    for _, (start, end) in sorted((span for span in mentions), key=lambda m: -m[1][0]):
        rest = rest[:start] + " " + rest[end:]
    terms: list[QueryTerm] = []
    seen: set[str] = set()

    def add(text: str, free: bool) -> None:
        key = compact(text)
        if key and key not in seen:
            seen.add(key)
            terms.append(QueryTerm(text, free))

    for token in _SPLIT_RE.split(rest):
        for run in _RUNS_RE.findall(token):
            if CJK_RE.match(run):
                for piece, known in segment(run, vocabulary):
                    if known:
                        add(piece, False)
                    else:
                        leftover = _strip_cjk_stop(piece)
                        if len(leftover) >= 2:
                            add(leftover, True)
            else:
                word = run.strip(" -_'\"")
                if word and word.lower() not in _LATIN_STOP and not word.isdigit():
                    add(word, False)
    return TalentQuery(text=query, terms=tuple(terms), min_years=min_years)


@dataclass
class TalentProfile:
    """What the pool knows about one candidate (no contacts: those are looked up to be masked)."""

    candidate: Row
    skills: list[str]
    skills_doc: Document
    text_doc: Document
    years: float | None
    evaluations: list[Evaluation] = field(default_factory=list)

    @property
    def remote_id(self) -> str:
        return self.candidate.remote_id

    @property
    def best_composite(self) -> float | None:
        scores = [e.composite for e in self.evaluations if e.composite is not None]
        return max(scores) if scores else None


@dataclass
class TalentHit:
    profile: TalentProfile
    score: float
    relevance: float
    experience_fit: float | None
    history: float
    matched: dict[str, float]
    contacts: Contacts = field(default_factory=Contacts)

    def as_dict(self) -> dict[str, Any]:
        """For output: contacts masked, no resume text."""
        profile = self.profile
        return {
            "candidate": profile.remote_id,
            **self.contacts.masked(),
            "score": round(self.score, 2),
            "relevance": round(self.relevance, 4),
            "experience_fit": None if self.experience_fit is None else round(self.experience_fit, 4),
            "history": round(self.history, 4),
            "matched": {k: round(v, 2) for k, v in self.matched.items()},
            "years": profile.years,
            "best_composite": profile.best_composite,
            "applications": [
                {
                    "application": e.application_remote_id,
                    "job": e.job_remote_id,
                    "composite": e.composite,
                    "recommendation": e.recommendation,
                }
                for e in profile.evaluations
            ],
        }


def build_profiles(data: CanonicalData, evaluator: Evaluator) -> list[TalentProfile]:
    """One profile per candidate in the store, with the evaluations of its applications."""
    by_candidate: dict[str, list[Evaluation]] = {}
    for evaluation, bundle in evaluator.all():
        if bundle.candidate is not None:
            by_candidate.setdefault(bundle.candidate.remote_id, []).append(evaluation)
    profiles = []
    for candidate in sorted(data.candidates.rows, key=lambda c: c.remote_id):
        custom = candidate.custom
        skills = text_list(custom.get("skills")) + text_list(candidate.get("tags"))
        resumes = [str(custom.get("resume_text") or "")]
        evaluations = by_candidate.get(candidate.remote_id, [])
        for app in data.applications_of_candidate(candidate):
            resumes.append(str(app.custom.get("resume_text") or ""))
            skills += text_list(app.custom.get("skills"))
        years = years_of_experience(candidate)
        if years is None:
            found = [y for y in (parse_years(r) for r in resumes) if y is not None]
            years = max(found) if found else None
        profiles.append(
            TalentProfile(
                candidate=candidate,
                skills=list(dict.fromkeys(skills)),
                skills_doc=Document.of("、".join(skills)),
                text_doc=Document.of(*resumes, str(candidate.get("current_title") or "")),
                years=years,
                evaluations=evaluations,
            )
        )
    return profiles


def vocabulary_of(
    profiles: Sequence[TalentProfile], synonyms: Synonyms, keywords: Iterable[str]
) -> list[str]:
    """Terms a query is segmented against."""
    terms = {*BUILTIN_SKILLS, *synonyms.terms(), *keywords}
    for profile in profiles:
        terms.update(profile.skills)
    return sorted(terms)


def term_match(term: QueryTerm, profile: TalentProfile, synonyms: Synonyms) -> float:
    """``m_t`` of the module docstring."""
    if keyword_in(term.text, profile.skills_doc, synonyms):
        return SKILL_MATCH
    if keyword_in(term.text, profile.text_doc, synonyms):
        return TEXT_MATCH
    if term.free:
        coverage = max(
            bigram_coverage(term.text, profile.text_doc), bigram_coverage(term.text, profile.skills_doc)
        )
        if coverage >= MIN_COVERAGE:
            return TEXT_MATCH * coverage
    return 0.0


def search(
    profiles: Sequence[TalentProfile], query: TalentQuery, synonyms: Synonyms, *, limit: int = 20
) -> list[TalentHit]:
    """The best ``limit`` candidates for ``query``, best first (the ranking is in the module docstring)."""
    matches = [{t.text: term_match(t, p, synonyms) for t in query.terms} for p in profiles]
    n = len(profiles)
    idf = {t.text: math.log(1.0 + n / (1.0 + sum(1 for m in matches if m[t.text] > 0))) for t in query.terms}
    total_idf = sum(idf.values())
    hits: list[TalentHit] = []
    for profile, found in zip(profiles, matches, strict=True):
        relevance = sum(idf[t] * m for t, m in found.items()) / total_idf if total_idf else 1.0
        if query.terms and relevance <= 0:
            continue
        best = profile.best_composite
        history = best / 100.0 if best is not None else NEUTRAL_HISTORY
        fit: float | None = None
        if query.min_years:
            fit = min(1.0, (profile.years or 0.0) / query.min_years)
            score = 100.0 * (0.6 * relevance + 0.2 * fit + 0.2 * history)
        else:
            score = 100.0 * (0.75 * relevance + 0.25 * history)
        hits.append(
            TalentHit(
                profile=profile,
                score=score,
                relevance=relevance,
                experience_fit=fit,
                history=history,
                matched={t: m for t, m in found.items() if m > 0},
            )
        )
    hits.sort(key=lambda h: (-round(h.score, 6), -round(h.relevance, 6), h.profile.remote_id))
    return hits[:limit]
