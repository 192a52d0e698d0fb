"""The ``[evaluation]`` table of hub.toml: weights, thresholds, job requirements, the template.

::

    [evaluation]
    store = "canonical"                 # the sql connector the recruiting pipelines write
    recommend_at = 75                   # composite at or above: recommend (unless blocked)
    reject_below = 55                   # composite below: reject
    disagreement_threshold = 20         # interviewer spread (points) above which it is flagged
    disagreement_metric = "spread"      # or "stdev"
    require_background_check = false    # true: recommend only once a check passed
    experience_share = 20               # percent of the resume score from years of experience
    builtin_synonyms = true
    weights = { resume = 20, assessment = 30, interview = 50 }         # percent, sum 100
    competencies = { technical = 45, business = 25, learning = 20, detail = 10 }
    # template = "evaluation/template.toml"                            # replaces the default template

    [evaluation.synonyms]
    "数据标注" = ["data annotation", "标注"]

    [evaluation.jobs."J-1001"]          # a job's remote id or its code
    required = ["Python", "数据标注"]
    preferred = ["TensorFlow"]
    min_years = 3
    threshold = 60                      # resume score below it: at most hold
    weights = { resume = 30, assessment = 20, interview = 50 }
    competencies = { technical = 50, business = 20, learning = 20, detail = 10 }

Every problem is reported with its TOML path (``evaluation.jobs.J-1001.weights``), together
with the rest of the file's problems; nothing runs on a bad file.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import orjson

from hub.errors import ConfigProblem
from hub.evaluation.template import (
    DEFAULT_TEMPLATE,
    Competency,
    Question,
    RubricLevel,
    Template,
)

#: Components of the composite score, and their default weights (percent).
COMPONENTS: tuple[str, ...] = ("resume", "assessment", "interview")
DEFAULT_WEIGHTS: Mapping[str, float] = {"resume": 20.0, "assessment": 30.0, "interview": 50.0}
DISAGREEMENT_METRICS = ("spread", "stdev")

TOP_KEYS = frozenset(
    {
        "store",
        "weights",
        "competencies",
        "recommend_at",
        "reject_below",
        "disagreement_threshold",
        "disagreement_metric",
        "require_background_check",
        "experience_share",
        "builtin_synonyms",
        "synonyms",
        "template",
        "jobs",
    }
)
JOB_KEYS = frozenset(
    {
        "required",
        "preferred",
        "min_years",
        "threshold",
        "weights",
        "competencies",
        "recommend_at",
        "reject_below",
        "experience_share",
    }
)
_WEIGHT_TOLERANCE = 1e-6
_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True)
class JobSettings:
    """What hub.toml says about one job (keyed by its remote id or code)."""

    key: str
    required: tuple[str, ...] = ()
    preferred: tuple[str, ...] = ()
    min_years: float = 0.0
    threshold: float = 0.0
    weights: Mapping[str, float] | None = None
    competencies: Mapping[str, float] | None = None
    recommend_at: float | None = None
    reject_below: float | None = None
    experience_share: float | None = None


@dataclass(frozen=True)
class JobRules:
    """Everything scoring needs for one job: its settings merged over the defaults."""

    key: str | None
    required: tuple[str, ...]
    preferred: tuple[str, ...]
    min_years: float
    threshold: float
    weights: Mapping[str, float]
    template: Template
    recommend_at: float
    reject_below: float
    experience_share: float
    disagreement_threshold: float
    disagreement_metric: str
    require_background_check: bool


@dataclass(frozen=True)
class EvaluationConfig:
    """A validated ``[evaluation]`` table (defaults when hub.toml has none)."""

    store: str | None = None
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    recommend_at: float = 75.0
    reject_below: float = 55.0
    disagreement_threshold: float = 20.0
    disagreement_metric: str = "spread"
    require_background_check: bool = False
    experience_share: float = 20.0
    builtin_synonyms: bool = True
    synonyms: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    template: Template = DEFAULT_TEMPLATE
    jobs: Mapping[str, JobSettings] = field(default_factory=dict)

    def job_settings(self, *ids: str | None) -> JobSettings | None:
        """The ``[evaluation.jobs.X]`` entry for the first of ``ids`` (remote id, code) that has one."""
        for job_id in ids:
            if job_id and job_id in self.jobs:
                return self.jobs[job_id]
        return None

    def rules(self, *ids: str | None) -> JobRules:
        """The rules for a job known by ``ids`` (its remote id, then its code)."""
        job = self.job_settings(*ids)
        template = self.template
        if job is not None and job.competencies is not None:
            template = template.with_weights(job.competencies)

        def pick(value: float | None, default: float) -> float:
            return default if value is None else value

        return JobRules(
            key=job.key if job else None,
            required=job.required if job else (),
            preferred=job.preferred if job else (),
            min_years=job.min_years if job else 0.0,
            threshold=job.threshold if job else 0.0,
            weights=dict(job.weights) if job and job.weights is not None else dict(self.weights),
            template=template,
            recommend_at=pick(job.recommend_at if job else None, self.recommend_at),
            reject_below=pick(job.reject_below if job else None, self.reject_below),
            experience_share=pick(job.experience_share if job else None, self.experience_share),
            disagreement_threshold=self.disagreement_threshold,
            disagreement_metric=self.disagreement_metric,
            require_background_check=self.require_background_check,
        )

    def keywords(self) -> list[str]:
        """Every keyword a job requires or prefers (talent search segments queries with them)."""
        return sorted({k for job in self.jobs.values() for k in (*job.required, *job.preferred)})

    def digest(self) -> str:
        """A fingerprint of everything that changes a score (the evaluation source's state keeps it)."""
        data = {
            "weights": dict(self.weights),
            "thresholds": [self.recommend_at, self.reject_below, self.disagreement_threshold],
            "metric": self.disagreement_metric,
            "bg": self.require_background_check,
            "experience_share": self.experience_share,
            "synonyms": [self.builtin_synonyms, {k: list(v) for k, v in self.synonyms.items()}],
            "template": [
                [c.key, c.weight, list(c.labels()), [[q.id, q.points, list(q.aliases)] for q in c.questions]]
                for c in self.template.competencies
            ]
            + [self.template.scale],
            "jobs": {k: _job_data(j) for k, j in sorted(self.jobs.items())},
        }
        return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def _job_data(job: JobSettings) -> dict[str, Any]:
    return {
        "required": list(job.required),
        "preferred": list(job.preferred),
        "min_years": job.min_years,
        "threshold": job.threshold,
        "weights": dict(job.weights) if job.weights is not None else None,
        "competencies": dict(job.competencies) if job.competencies is not None else None,
        "recommend_at": job.recommend_at,
        "reject_below": job.reject_below,
        "experience_share": job.experience_share,
    }


# -- validation ---------------------------------------------------------------------------------


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(
    table: Mapping[str, Any],
    key: str,
    path: str,
    problems: list[ConfigProblem],
    *,
    low: float = 0.0,
    high: float = 100.0,
) -> float | None:
    """``table[key]`` as a float within ``[low, high]``, None when absent or wrong (a problem noted)."""
    if key not in table:
        return None
    value = table[key]
    if not _is_number(value) or not low <= float(value) <= high:
        problems.append(ConfigProblem(f"{path}.{key}", f"must be a number from {low:g} to {high:g}"))
        return None
    return float(value)


def _keywords(
    table: Mapping[str, Any], key: str, path: str, problems: list[ConfigProblem]
) -> tuple[str, ...]:
    value = table.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        problems.append(ConfigProblem(f"{path}.{key}", "must be a list of non-empty keywords"))
        return ()
    return tuple(dict.fromkeys(v.strip() for v in value))


def _percentages(
    value: Any,
    path: str,
    problems: list[ConfigProblem],
    resolve: Mapping[str, str] | Any,
    known: tuple[str, ...],
    what: str,
) -> dict[str, float] | None:
    """A table of ``name = percent`` over ``known`` names that sums to 100; names left out weigh 0.

    ``resolve`` maps a spelling (a competency's Chinese name, an alias) to its key, or is a
    callable doing so; unknown names are problems naming the key.
    """
    if not isinstance(value, Mapping):
        problems.append(ConfigProblem(path, f"must be a table of {what} = percent"))
        return None
    weights: dict[str, float] = dict.fromkeys(known, 0.0)
    ok = True
    for name, weight in value.items():
        key = resolve(name) if callable(resolve) else resolve.get(name)
        if key is None:
            problems.append(
                ConfigProblem(f"{path}.{name}", f"unknown {what} (known: {', '.join(sorted(known))})")
            )
            ok = False
            continue
        if not _is_number(weight) or weight < 0:
            problems.append(ConfigProblem(f"{path}.{name}", "must be a number of percent, 0 or more"))
            ok = False
            continue
        weights[key] += float(weight)
    if not ok:
        return None
    total = sum(weights.values())
    if abs(total - 100.0) > _WEIGHT_TOLERANCE:
        problems.append(ConfigProblem(path, f"weights must sum to 100 (percent); they sum to {total:g}"))
        return None
    return weights


def _component(name: str) -> str | None:
    return name if name in COMPONENTS else None


def _thresholds(recommend_at: float, reject_below: float, path: str, problems: list[ConfigProblem]) -> None:
    if reject_below > recommend_at:
        problems.append(
            ConfigProblem(
                f"{path}.reject_below",
                f"must not be above recommend_at ({reject_below:g} > {recommend_at:g})",
            )
        )


def evaluation_from(
    raw: Any,
    base: Path,
    connectors: Mapping[str, Any],
    problems: list[ConfigProblem],
) -> EvaluationConfig:
    """Validate the ``[evaluation]`` table; add each problem (with its TOML path) to ``problems``.

    ``connectors`` are the configured ``[connectors.*]`` (objects with a ``plugin``), to check
    that ``store`` names a ``sql`` connector; ``base`` is hub.toml's folder (template paths).
    """
    if raw is None:
        return EvaluationConfig()
    if not isinstance(raw, Mapping):
        problems.append(ConfigProblem("evaluation", "must be a table"))
        return EvaluationConfig()
    for key in sorted(set(raw) - TOP_KEYS):
        problems.append(
            ConfigProblem(f"evaluation.{key}", f"unknown key (known: {', '.join(sorted(TOP_KEYS))})")
        )

    store = raw.get("store")
    if store is not None:
        if not isinstance(store, str) or not store:
            problems.append(ConfigProblem("evaluation.store", "must be the name of a [connectors.NAME]"))
            store = None
        elif store not in connectors:
            problems.append(ConfigProblem("evaluation.store", f"no [connectors.{store}] table"))
        elif getattr(connectors[store], "plugin", None) != "sql":
            problems.append(
                ConfigProblem(
                    "evaluation.store", f'connector {store!r} is not a sql connector (plugin = "sql")'
                )
            )

    template = DEFAULT_TEMPLATE
    if "template" in raw:
        template = _template_file(raw["template"], base, problems) or DEFAULT_TEMPLATE

    defaults = EvaluationConfig()
    weights = dict(defaults.weights)
    if "weights" in raw:
        weights = (
            _percentages(raw["weights"], "evaluation.weights", problems, _component, COMPONENTS, "component")
            or weights
        )
    if "competencies" in raw:
        found = _competencies(raw["competencies"], "evaluation.competencies", template, problems)
        if found is not None:
            template = template.with_weights(found)

    recommend_at = _number(raw, "recommend_at", "evaluation", problems)
    reject_below = _number(raw, "reject_below", "evaluation", problems)
    recommend_at = defaults.recommend_at if recommend_at is None else recommend_at
    reject_below = defaults.reject_below if reject_below is None else reject_below
    _thresholds(recommend_at, reject_below, "evaluation", problems)
    disagreement = _number(raw, "disagreement_threshold", "evaluation", problems)
    experience_share = _number(raw, "experience_share", "evaluation", problems)
    metric = raw.get("disagreement_metric", defaults.disagreement_metric)
    if metric not in DISAGREEMENT_METRICS:
        problems.append(
            ConfigProblem(
                "evaluation.disagreement_metric", f"must be one of {', '.join(DISAGREEMENT_METRICS)}"
            )
        )
        metric = defaults.disagreement_metric
    flags: dict[str, bool] = {}
    for key in ("require_background_check", "builtin_synonyms"):
        value = raw.get(key, getattr(defaults, key))
        if not isinstance(value, bool):
            problems.append(ConfigProblem(f"evaluation.{key}", "must be true or false"))
            value = getattr(defaults, key)
        flags[key] = value

    synonyms: dict[str, tuple[str, ...]] = {}
    table = raw.get("synonyms", {})
    if not isinstance(table, Mapping):
        problems.append(ConfigProblem("evaluation.synonyms", 'must be a table of keyword = ["synonym", ...]'))
    else:
        for keyword in table:
            words = _keywords(table, keyword, "evaluation.synonyms", problems)
            if words:
                synonyms[str(keyword)] = words

    jobs: dict[str, JobSettings] = {}
    jobs_raw = raw.get("jobs", {})
    if not isinstance(jobs_raw, Mapping):
        problems.append(ConfigProblem("evaluation.jobs", "must be a table of [evaluation.jobs.JOB] tables"))
        jobs_raw = {}
    for job_id, job_table in jobs_raw.items():
        job = _job_from(str(job_id), job_table, template, recommend_at, reject_below, problems)
        if job is not None:
            jobs[str(job_id)] = job

    return EvaluationConfig(
        store=store,
        weights=weights,
        recommend_at=recommend_at,
        reject_below=reject_below,
        disagreement_threshold=defaults.disagreement_threshold if disagreement is None else disagreement,
        disagreement_metric=str(metric),
        require_background_check=flags["require_background_check"],
        experience_share=defaults.experience_share if experience_share is None else experience_share,
        builtin_synonyms=flags["builtin_synonyms"],
        synonyms=synonyms,
        template=template,
        jobs=jobs,
    )


def _competencies(
    value: Any, path: str, template: Template, problems: list[ConfigProblem]
) -> dict[str, float] | None:
    def resolve(name: str) -> str | None:
        competency = template.competency(str(name))
        return competency.key if competency is not None else None

    return _percentages(value, path, problems, resolve, template.keys, "competency")


def _job_from(
    job_id: str,
    table: Any,
    template: Template,
    recommend_at: float,
    reject_below: float,
    problems: list[ConfigProblem],
) -> JobSettings | None:
    path = f"evaluation.jobs.{job_id}"
    if not isinstance(table, Mapping):
        problems.append(ConfigProblem(path, "must be a table"))
        return None
    for key in sorted(set(table) - JOB_KEYS):
        problems.append(ConfigProblem(f"{path}.{key}", f"unknown key (known: {', '.join(sorted(JOB_KEYS))})"))
    weights = None
    if "weights" in table:
        weights = _percentages(
            table["weights"], f"{path}.weights", problems, _component, COMPONENTS, "component"
        )
    competencies = None
    if "competencies" in table:
        competencies = _competencies(table["competencies"], f"{path}.competencies", template, problems)
    job_recommend = _number(table, "recommend_at", path, problems)
    job_reject = _number(table, "reject_below", path, problems)
    if job_recommend is not None or job_reject is not None:
        _thresholds(
            recommend_at if job_recommend is None else job_recommend,
            reject_below if job_reject is None else job_reject,
            path,
            problems,
        )
    return JobSettings(
        key=job_id,
        required=_keywords(table, "required", path, problems),
        preferred=_keywords(table, "preferred", path, problems),
        min_years=_number(table, "min_years", path, problems, high=50.0) or 0.0,
        threshold=_number(table, "threshold", path, problems) or 0.0,
        weights=weights,
        competencies=competencies,
        recommend_at=job_recommend,
        reject_below=job_reject,
        experience_share=_number(table, "experience_share", path, problems),
    )


# -- a template file ----------------------------------------------------------------------------


def _template_file(value: Any, base: Path, problems: list[ConfigProblem]) -> Template | None:
    """Read and check a template file (same shape as the default template; see docs/evaluation.md)."""
    if not isinstance(value, str) or not value:
        problems.append(ConfigProblem("evaluation.template", "must be the path of a template file"))
        return None
    path = base / value
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.append(ConfigProblem("evaluation.template", f"file not found: {value}"))
        return None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        problems.append(ConfigProblem("evaluation.template", f"cannot read {value}: {exc}"))
        return None
    return template_from(data, value, problems)


def template_from(data: Mapping[str, Any], origin: str, problems: list[ConfigProblem]) -> Template | None:
    """A :class:`Template` from its TOML data; problems are located as ``origin:competencies[0].weight``."""
    before = len(problems)
    for key in sorted(set(data) - {"scale", "competencies"}):
        problems.append(ConfigProblem(f"{origin}:{key}", "unknown key (known: competencies, scale)"))
    scale = data.get("scale", 5)
    if not _is_number(scale) or scale <= 0:
        problems.append(
            ConfigProblem(f"{origin}:scale", "must be a positive number (the rating scale's top)")
        )
        scale = 5
    items = data.get("competencies")
    if not isinstance(items, list) or not items:
        problems.append(
            ConfigProblem(f"{origin}:competencies", "must be a non-empty list of [[competencies]]")
        )
        return None
    competencies: list[Competency] = []
    seen: set[str] = set()
    known = {"key", "name", "name_en", "weight", "aliases", "levels", "questions"}
    for i, item in enumerate(items):
        where = f"{origin}:competencies[{i}]"
        if not isinstance(item, Mapping):
            problems.append(ConfigProblem(where, "must be a table"))
            continue
        for unknown in sorted(set(item) - known):
            problems.append(
                ConfigProblem(f"{where}.{unknown}", f"unknown key (known: {', '.join(sorted(known))})")
            )
        key_value = item.get("key")
        if not isinstance(key_value, str) or not _KEY_RE.match(key_value):
            problems.append(ConfigProblem(f"{where}.key", "must be a lower-case identifier (e.g. technical)"))
            continue
        if key_value in seen:
            problems.append(ConfigProblem(f"{where}.key", f"duplicate competency {key_value!r}"))
            continue
        seen.add(key_value)
        raw_weight = item.get("weight")
        weight = float(raw_weight) if _is_number(raw_weight) and raw_weight >= 0 else -1.0
        if weight < 0:
            problems.append(ConfigProblem(f"{where}.weight", "must be a number of percent, 0 or more"))
            weight = 0.0
        aliases = _keywords(item, "aliases", where, problems)
        levels = _levels_from(item.get("levels", {}), f"{where}.levels", problems)
        questions = _questions_from(item.get("questions", []), f"{where}.questions", problems)
        competencies.append(
            Competency(
                key=key_value,
                name=str(item.get("name") or key_value),
                name_en=str(item.get("name_en") or key_value),
                weight=weight,
                aliases=aliases,
                levels=levels,
                questions=questions,
            )
        )
    total = sum(c.weight for c in competencies)
    if competencies and abs(total - 100.0) > _WEIGHT_TOLERANCE:
        problems.append(
            ConfigProblem(
                f"{origin}:competencies", f"weights must sum to 100 (percent); they sum to {total:g}"
            )
        )
    if len(problems) > before:
        return None
    return Template(tuple(competencies), float(scale))


def _levels_from(value: Any, where: str, problems: list[ConfigProblem]) -> tuple[RubricLevel, ...]:
    if not isinstance(value, Mapping):
        problems.append(ConfigProblem(where, 'must be a table of level = "behaviour"'))
        return ()
    levels = []
    for level, text in value.items():
        if not str(level).isdigit() or not isinstance(text, str):
            problems.append(ConfigProblem(f"{where}.{level}", 'must be a level number = "behaviour"'))
            continue
        levels.append(RubricLevel(level=int(level), label=f"L{int(level)}", behaviour=text))
    return tuple(sorted(levels, key=lambda lv: lv.level))


def _questions_from(value: Any, where: str, problems: list[ConfigProblem]) -> tuple[Question, ...]:
    if not isinstance(value, list):
        problems.append(ConfigProblem(where, "must be a list of [[competencies.questions]]"))
        return ()
    questions = []
    for j, item in enumerate(value):
        path = f"{where}[{j}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("id"), str) or not item["id"].strip():
            problems.append(ConfigProblem(f"{path}.id", "required field is missing"))
            continue
        points = item.get("points", 1)
        if not _is_number(points) or points <= 0:
            problems.append(ConfigProblem(f"{path}.points", "must be a positive number"))
            continue
        questions.append(
            Question(
                id=item["id"].strip(),
                text=str(item.get("text") or item["id"]),
                points=float(points),
                aliases=_keywords(item, "aliases", path, problems),
            )
        )
    return tuple(questions)
