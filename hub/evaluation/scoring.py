"""The scoring formula: four components, a composite, a recommendation and its reasons.

Written out in ``docs/evaluation.md``; in short, for an application of job *j* (rules merged
from ``[evaluation]`` and ``[evaluation.jobs.j]``), every score on 0-100:

- **resume** R: keyword part ``K = 100 (2 r + p) / (2 Nr + Np)`` (r of Nr required and p of Np
  preferred keywords found, synonyms counted), experience part ``E = 100 min(1, years / min_years)``,
  ``R = (1 - s) K + s E`` with ``s = experience_share / 100`` (only K, or only E, when the job
  sets only keywords, or only ``min_years``; no R when it sets neither or there is no resume);
- **assessment** A: the mean over the application's results of ``100 score / max_score``
  (``max_score`` 100 when missing; the mean of the sub-scores, normalised the same way, when a
  result has no overall score);
- **interview** I: each rating is ``f = score / max_score`` (the template's scale when
  ``max_score`` is missing), weighed by its question's points (a rating of the whole
  competency weighs all the competency's points); interviewer i's competency score
  ``C_ic = 100 sum(w f) / sum(w)``; pooled ``P_c = mean_i C_ic``; ``I = sum(W_c P_c) / sum(W_c)``
  over the competencies rated, ``W_c`` the competency weights. Interviewer i's own score
  ``S_i = sum(W_c C_ic) / sum(W_c)`` over what i rated; the spread ``max S_i - min S_i`` (or the
  population standard deviation) above ``disagreement_threshold`` is flagged;
- **background check**: failed if any check failed, else pending if any is pending, else passed
  if any passed, else none;
- **composite** ``C = round(sum(w_k X_k) / sum(w_k), 2)`` over the components X_k present;
- **recommendation**: a failed background check rejects; no component at all holds; ``C <
  reject_below`` rejects; ``C >= recommend_at`` recommends unless something blocks it (no
  interview, interviewer disagreement, resume score below the job's threshold, a required
  background check not passed), which holds; anything else holds.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hub.evaluation.config import COMPONENTS, JobRules
from hub.evaluation.store import ApplicationBundle, Row, as_bool, as_float, coded, text_list
from hub.evaluation.text import Document, Synonyms, keyword_in, parse_years

RECOMMEND, HOLD, REJECT = "recommend", "hold", "reject"
BG_PASSED, BG_PENDING, BG_FAILED, BG_NONE = "passed", "pending", "failed", "none"
#: Weight of a required keyword relative to a preferred one in the keyword part.
REQUIRED_WEIGHT, PREFERRED_WEIGHT = 2.0, 1.0
_SKIPPED_STATUSES = frozenset({"CANCELLED", "EXPIRED", "ERROR"})


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _fmt(value: float) -> str:
    return f"{value:.2f}"


@dataclass(frozen=True)
class Reason:
    """Why: the component, what was found, and the number behind it (never personal data)."""

    component: str
    code: str
    message: str
    value: float | None = None
    threshold: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "code": self.code,
            "value": _r(self.value),
            "threshold": _r(self.threshold),
            "message": self.message,
        }


@dataclass
class ResumeScore:
    score: float
    keyword_score: float | None
    experience_score: float | None
    required: dict[str, bool]
    preferred: dict[str, bool]
    years: float | None
    min_years: float
    threshold: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "score": _r(self.score),
            "keyword_score": _r(self.keyword_score),
            "experience_score": _r(self.experience_score),
            "required": self.required,
            "preferred": self.preferred,
            "years": self.years,
            "min_years": self.min_years,
            "threshold": self.threshold,
        }


@dataclass
class AssessmentItem:
    name: str
    score: float
    passed: bool | None
    sub_scores: dict[str, float]


@dataclass
class AssessmentScore:
    score: float
    items: list[AssessmentItem]
    pending: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "score": _r(self.score),
            "results": [
                {
                    "name": i.name,
                    "score": _r(i.score),
                    "passed": i.passed,
                    "sub_scores": {k: _r(v) for k, v in i.sub_scores.items()},
                }
                for i in self.items
            ],
            "pending": self.pending,
        }


@dataclass
class InterviewerScore:
    interviewer: str
    score: float
    competencies: dict[str, float]


@dataclass
class InterviewScore:
    score: float
    competencies: dict[str, float]
    interviewers: list[InterviewerScore]
    spread: float | None
    stdev: float | None
    metric: str
    threshold: float
    flagged: bool
    ignored_ratings: int
    unrated: list[str]
    #: the template's competency weights (percent) and display names, in template order
    weights: dict[str, float] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)

    @property
    def disagreement(self) -> float | None:
        return self.spread if self.metric == "spread" else self.stdev

    def as_dict(self) -> dict[str, Any]:
        return {
            "score": _r(self.score),
            "competencies": {k: _r(v) for k, v in self.competencies.items()},
            "competency_weights": self.weights,
            "interviewers": [
                {
                    "interviewer": i.interviewer,
                    "score": _r(i.score),
                    "competencies": {k: _r(v) for k, v in i.competencies.items()},
                }
                for i in self.interviewers
            ],
            "spread": _r(self.spread),
            "stdev": _r(self.stdev),
            "disagreement_metric": self.metric,
            "disagreement_threshold": self.threshold,
            "disagreement": self.flagged,
            "ignored_ratings": self.ignored_ratings,
            "unrated_competencies": self.unrated,
        }


@dataclass
class Evaluation:
    """The evaluation of one application."""

    application_remote_id: str
    application_hub_id: str | None
    candidate_remote_id: str | None
    job_remote_id: str | None
    job_title: str | None
    rules_key: str | None
    weights: dict[str, float]
    resume: ResumeScore | None
    assessment: AssessmentScore | None
    interview: InterviewScore | None
    background_check: str
    composite: float | None
    recommendation: str
    reasons: list[Reason]
    inputs_updated_at: datetime | None
    evaluated_at: datetime
    notes: list[Reason] = field(default_factory=list)

    @property
    def disagreement(self) -> bool:
        return bool(self.interview and self.interview.flagged)

    def component_scores(self) -> dict[str, float | None]:
        return {
            "resume": self.resume.score if self.resume else None,
            "assessment": self.assessment.score if self.assessment else None,
            "interview": self.interview.score if self.interview else None,
        }

    def as_dict(self) -> dict[str, Any]:
        """Nested, for ``hub evaluate --json`` (no personal data: ids, numbers, keywords)."""
        scores = self.component_scores()
        details: dict[str, Any] = {
            "resume": self.resume.as_dict() if self.resume else None,
            "assessment": self.assessment.as_dict() if self.assessment else None,
            "interview": self.interview.as_dict() if self.interview else None,
        }
        return {
            "application": self.application_remote_id,
            "application_hub_id": self.application_hub_id,
            "candidate": self.candidate_remote_id,
            "job": self.job_remote_id,
            "job_title": self.job_title,
            "job_rules": self.rules_key,
            "composite": _r(self.composite),
            "recommendation": self.recommendation,
            "components": {
                k: {"score": _r(scores[k]), "weight": self.weights.get(k, 0.0), "detail": details[k]}
                for k in COMPONENTS
            },
            "background_check": self.background_check,
            "disagreement": self.disagreement,
            "reasons": [r.as_dict() for r in self.reasons],
            "notes": [r.as_dict() for r in self.notes],
            "inputs_updated_at": self.inputs_updated_at.isoformat() if self.inputs_updated_at else None,
            "evaluated_at": self.evaluated_at.isoformat(),
        }

    def as_record(self) -> dict[str, Any]:
        """Flat, for the ``evaluations`` stream of the ``evaluation`` source."""
        scores = self.component_scores()
        return {
            "application_remote_id": self.application_remote_id,
            "application_hub_id": self.application_hub_id,
            "candidate_remote_id": self.candidate_remote_id,
            "job_remote_id": self.job_remote_id,
            "composite": _r(self.composite),
            "resume_score": _r(scores["resume"]),
            "assessment_score": _r(scores["assessment"]),
            "interview_score": _r(scores["interview"]),
            "competency_scores": {k: _r(v) for k, v in self.interview.competencies.items()}
            if self.interview
            else {},
            "background_check": self.background_check,
            "recommendation": self.recommendation,
            "reasons": [r.as_dict() for r in self.reasons],
            "disagreement": self.disagreement,
            "interviewer_spread": _r(self.interview.spread) if self.interview else None,
            "evaluated_at": self.evaluated_at.isoformat(),
            "inputs_updated_at": self.inputs_updated_at.isoformat() if self.inputs_updated_at else None,
        }


# -- components ---------------------------------------------------------------------------------


def candidate_document(bundle: ApplicationBundle) -> Document:
    """The text keywords are looked for in: resumes, title, skills and tags."""
    parts: list[str | None] = []
    for row in (bundle.candidate, bundle.application):
        if row is None:
            continue
        custom = row.custom
        parts.append(str(custom.get("resume_text") or "") or None)
        parts.append("、".join(text_list(custom.get("skills"))) or None)
    if bundle.candidate is not None:
        parts.append(str(bundle.candidate.get("current_title") or "") or None)
        parts.append("、".join(text_list(bundle.candidate.get("tags"))) or None)
    return Document.of(*parts)


def years_of_experience(candidate: Row | None, application: Row | None = None) -> float | None:
    """``custom_fields.years_experience`` if numeric, else the largest mention in the resume text."""
    for row in (candidate, application):
        if row is None:
            continue
        stated = as_float(row.custom.get("years_experience"))
        if stated is not None and stated >= 0:
            return stated
    for row in (candidate, application):
        if row is None:
            continue
        found = parse_years(str(row.custom.get("resume_text") or ""))
        if found is not None:
            return found
    return None


def score_resume(bundle: ApplicationBundle, rules: JobRules, synonyms: Synonyms) -> ResumeScore | None:
    """The resume component, or None when the job sets no keywords and no ``min_years``, or no resume."""
    if not rules.required and not rules.preferred and rules.min_years <= 0:
        return None
    doc = candidate_document(bundle)
    years = years_of_experience(bundle.candidate, bundle.application)
    if not doc and years is None:
        return None
    required = {k: keyword_in(k, doc, synonyms) for k in rules.required}
    preferred = {k: keyword_in(k, doc, synonyms) for k in rules.preferred}
    keyword_score: float | None = None
    total = REQUIRED_WEIGHT * len(required) + PREFERRED_WEIGHT * len(preferred)
    if total:
        hits = REQUIRED_WEIGHT * sum(required.values()) + PREFERRED_WEIGHT * sum(preferred.values())
        keyword_score = 100.0 * hits / total
    experience_score: float | None = None
    if rules.min_years > 0:
        experience_score = 100.0 * min(1.0, (years or 0.0) / rules.min_years)
    if keyword_score is not None and experience_score is not None:
        share = rules.experience_share / 100.0
        score = (1.0 - share) * keyword_score + share * experience_score
    else:
        score = keyword_score if keyword_score is not None else float(experience_score or 0.0)
    return ResumeScore(
        score=score,
        keyword_score=keyword_score,
        experience_score=experience_score,
        required=required,
        preferred=preferred,
        years=years,
        min_years=rules.min_years,
        threshold=rules.threshold,
    )


def _normalised(score: float, maximum: float | None, default_max: float) -> float:
    top = maximum if maximum is not None and maximum > 0 else default_max
    return max(0.0, min(100.0, 100.0 * score / top))


def score_assessments(bundle: ApplicationBundle) -> AssessmentScore | None:
    """The assessment component: the mean normalised score of the application's results."""
    items: list[AssessmentItem] = []
    pending = 0
    for evidence in bundle.assessments:
        if evidence.order is not None and coded(evidence.order.get("status")) in _SKIPPED_STATUSES:
            continue
        scored = False
        for result in evidence.results:
            if coded(result.get("status")) in _SKIPPED_STATUSES:
                continue
            subs: dict[str, float] = {}
            for i, sub in enumerate(result.get("sub_results") or []):
                if not isinstance(sub, Mapping):
                    continue
                value = as_float(sub.get("score"))
                if value is not None:
                    label = str(sub.get("label") or f"sub {i + 1}")
                    subs[label] = _normalised(value, as_float(sub.get("max_score")), 100.0)
            overall = as_float(result.get("score"))
            if overall is not None:
                score = _normalised(overall, as_float(result.get("max_score")), 100.0)
            elif subs:
                score = statistics.fmean(subs.values())
            else:
                continue
            scored = True
            items.append(AssessmentItem(evidence.name, score, as_bool(result.get("passed")), subs))
        if not scored:
            pending += 1
    if not items:
        return None
    return AssessmentScore(score=statistics.fmean(i.score for i in items), items=items, pending=pending)


def interviewer_of(card: Row) -> str:
    """Who filled a scorecard (for grouping only: output shows interviewers as #1, #2 ...)."""
    found = card.link("interviewer") or card.ref("interviewer")
    if found:
        return found
    named = card.custom.get("interviewer")
    if isinstance(named, Mapping):
        named = named.get("id")
    return str(named) if named not in (None, "") else card.remote_id


def score_interviews(bundle: ApplicationBundle, rules: JobRules) -> InterviewScore | None:
    """The interview component against the job's template, with interviewer disagreement."""
    template = rules.template
    weighted: dict[str, dict[str, list[float]]] = {}  # interviewer -> competency -> [sum w f, sum w]
    ignored = 0
    order: list[str] = []
    for card in bundle.scorecards:
        who = interviewer_of(card)
        ratings = card.get("ratings")
        for rating in ratings if isinstance(ratings, list) else []:
            if not isinstance(rating, Mapping):
                ignored += 1
                continue
            found = template.resolve(str(rating.get("competency") or ""))
            score = as_float(rating.get("score"))
            if found is None or score is None:
                ignored += 1
                continue
            competency, question = found
            top = as_float(rating.get("max_score"))
            fraction = max(0.0, min(1.0, score / (top if top and top > 0 else template.scale)))
            weight = question.points if question is not None else competency.points
            if who not in weighted:
                weighted[who] = {}
                order.append(who)
            sums = weighted[who].setdefault(competency.key, [0.0, 0.0])
            sums[0] += weight * fraction
            sums[1] += weight
    weights = template.weights()
    interviewers: list[InterviewerScore] = []
    for who in order:
        label = f"#{len(interviewers) + 1}"
        per = {key: 100.0 * s / w for key, (s, w) in weighted[who].items() if w > 0}
        total = sum(weights[k] for k in per)
        if total <= 0:
            continue
        interviewers.append(
            InterviewerScore(
                interviewer=label,
                score=sum(weights[k] * v for k, v in per.items()) / total,
                competencies={k: per[k] for k in template.keys if k in per},
            )
        )
    if not interviewers:
        return None
    pooled: dict[str, float] = {}
    for key in template.keys:
        values = [i.competencies[key] for i in interviewers if key in i.competencies]
        if values:
            pooled[key] = statistics.fmean(values)
    total = sum(weights[k] for k in pooled)
    score = sum(weights[k] * v for k, v in pooled.items()) / total
    scores = [i.score for i in interviewers]
    spread = max(scores) - min(scores) if len(scores) > 1 else None
    stdev = statistics.pstdev(scores) if len(scores) > 1 else None
    measured = spread if rules.disagreement_metric == "spread" else stdev
    return InterviewScore(
        score=score,
        competencies=pooled,
        interviewers=interviewers,
        spread=spread,
        stdev=stdev,
        metric=rules.disagreement_metric,
        threshold=rules.disagreement_threshold,
        flagged=measured is not None and round(measured, 2) > rules.disagreement_threshold,
        ignored_ratings=ignored,
        unrated=[k for k in template.keys if k not in pooled and weights[k] > 0],
        weights=weights,
        names={c.key: f"{c.name} / {c.name_en}" for c in template.competencies},
    )


def background_status(bundle: ApplicationBundle) -> str:
    """passed / pending / failed / none, over the application's background-check orders."""
    found: list[str] = []
    for evidence in bundle.background_orders:
        if evidence.order is not None and coded(evidence.order.get("status")) in _SKIPPED_STATUSES:
            continue
        verdicts = [
            as_bool(r.get("passed"))
            for r in evidence.results
            if coded(r.get("status")) not in _SKIPPED_STATUSES
        ]
        if any(v is False for v in verdicts):
            found.append(BG_FAILED)
        elif any(v is True for v in verdicts):
            found.append(BG_PASSED)
        else:
            found.append(BG_PENDING)
    for status in (BG_FAILED, BG_PENDING, BG_PASSED):
        if status in found:
            return status
    return BG_NONE


# -- the whole ----------------------------------------------------------------------------------


def composite_of(scores: Mapping[str, float | None], weights: Mapping[str, float]) -> float | None:
    """``round(sum(w_k X_k) / sum(w_k), 2)`` over the components present with a positive weight."""
    present = {k: v for k, v in scores.items() if v is not None and weights.get(k, 0.0) > 0}
    if not present:
        return None
    total = sum(weights[k] for k in present)
    return round(sum(weights[k] * v for k, v in present.items()) / total, 2)


def evaluate(bundle: ApplicationBundle, rules: JobRules, synonyms: Synonyms, *, now: datetime) -> Evaluation:
    """Score one application and decide (the formula is in the module docstring)."""
    resume = score_resume(bundle, rules, synonyms)
    assessment = score_assessments(bundle)
    interview = score_interviews(bundle, rules)
    background = background_status(bundle)
    scores = {
        "resume": resume.score if resume else None,
        "assessment": assessment.score if assessment else None,
        "interview": interview.score if interview else None,
    }
    composite = composite_of(scores, rules.weights)

    findings: list[Reason] = []  # what keeps a good composite from a recommendation
    notes: list[Reason] = []  # what the reader should know, deciding nothing
    if resume is not None:
        missing = [k for k, hit in resume.required.items() if not hit]
        if missing:
            notes.append(
                Reason(
                    "resume",
                    "missing_required",
                    f"resume: {len(missing)} of {len(resume.required)} required keywords missing: "
                    + ", ".join(missing),
                    float(len(missing)),
                    float(len(resume.required)),
                )
            )
        if resume.min_years > 0 and (resume.years or 0.0) < resume.min_years:
            notes.append(
                Reason(
                    "resume",
                    "experience",
                    f"resume: {'unknown' if resume.years is None else format(resume.years, 'g')} years of experience, "
                    f"the job asks for {resume.min_years:g}",
                    resume.years,
                    resume.min_years,
                )
            )
        if rules.threshold > 0 and round(resume.score, 2) < rules.threshold:
            findings.append(
                Reason(
                    "resume",
                    "below_threshold",
                    f"resume: score {_fmt(resume.score)} is below the job's threshold {rules.threshold:g}",
                    resume.score,
                    rules.threshold,
                )
            )
    for name, score in scores.items():
        if score is None and rules.weights.get(name, 0.0) > 0:
            notes.append(
                Reason(
                    name,
                    "missing",
                    f"{name}: no score (weight {rules.weights[name]:g}% shared among the other components)",
                    None,
                    rules.weights[name],
                )
            )
    if interview is None:
        findings.append(
            Reason("interview", "no_scorecards", "interview: 0 scorecards with template ratings", 0.0)
        )
    else:
        if interview.flagged and interview.disagreement is not None:
            findings.append(
                Reason(
                    "interview",
                    "disagreement",
                    f"interview: interviewer {interview.metric} {_fmt(interview.disagreement)} exceeds "
                    f"{interview.threshold:g} ({len(interview.interviewers)} interviewers)",
                    interview.disagreement,
                    interview.threshold,
                )
            )
        if interview.ignored_ratings:
            notes.append(
                Reason(
                    "interview",
                    "ignored_ratings",
                    f"interview: {interview.ignored_ratings} ratings ignored (no score, or a competency "
                    "the template does not know)",
                    float(interview.ignored_ratings),
                )
            )
    if assessment is not None and assessment.pending:
        notes.append(
            Reason(
                "assessment",
                "pending",
                f"assessment: {assessment.pending} orders without a result yet",
                float(assessment.pending),
            )
        )
    if rules.require_background_check and background != BG_PASSED and background != BG_FAILED:
        findings.append(
            Reason(
                "background_check",
                "required",
                f"background_check: {background}; a passed check is required (1 needed, 0 passed)",
                0.0,
                1.0,
            )
        )

    reasons: list[Reason] = []
    if background == BG_FAILED:
        recommendation = REJECT
        reasons.append(
            Reason(
                "background_check",
                "failed",
                "background_check: failed, which rejects whatever the scores"
                + (f" (composite {_fmt(composite)})" if composite is not None else ""),
                composite,
            )
        )
    elif composite is None:
        recommendation = HOLD
        reasons.append(Reason("composite", "no_scores", "composite: 0 components scored", 0.0))
    elif composite < rules.reject_below:
        recommendation = REJECT
        reasons.append(
            Reason(
                "composite",
                "below_reject",
                f"composite: {_fmt(composite)} is below reject_below {rules.reject_below:g}",
                composite,
                rules.reject_below,
            )
        )
    elif composite >= rules.recommend_at and not findings:
        recommendation = RECOMMEND
        reasons.append(
            Reason(
                "composite",
                "recommend",
                f"composite: {_fmt(composite)} reaches recommend_at {rules.recommend_at:g}",
                composite,
                rules.recommend_at,
            )
        )
    else:
        recommendation = HOLD
        if composite >= rules.recommend_at:
            message = f"composite: {_fmt(composite)} reaches recommend_at {rules.recommend_at:g}, but:"
            threshold = rules.recommend_at
        else:
            message = (
                f"composite: {_fmt(composite)} is between reject_below {rules.reject_below:g} "
                f"and recommend_at {rules.recommend_at:g}"
            )
            threshold = rules.recommend_at
        reasons.append(Reason("composite", "hold", message, composite, threshold))
    reasons += findings

    app = bundle.application
    return Evaluation(
        application_remote_id=app.remote_id,
        application_hub_id=app.hub_id,
        candidate_remote_id=bundle.candidate_remote_id,
        job_remote_id=bundle.job_remote_id,
        job_title=str(bundle.job.get("title"))
        if bundle.job is not None and bundle.job.get("title")
        else None,
        rules_key=rules.key,
        weights=dict(rules.weights),
        resume=resume,
        assessment=assessment,
        interview=interview,
        background_check=background,
        composite=composite,
        recommendation=recommendation,
        reasons=reasons,
        notes=notes,
        inputs_updated_at=bundle.inputs_changed_at,
        evaluated_at=now,
    )
