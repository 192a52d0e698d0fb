"""Structured evaluation of applications: the acceptance run over 500 generated applications,
the formula's parts, config validation, the CLI, PostgreSQL, and a real mapped pipeline.

The reference in this file is the formula of docs/evaluation.md written out plainly over the
generated data itself; it calls nothing in hub.evaluation.
"""

from __future__ import annotations

import json
import logging
import re
import statistics
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from hub.errors import ConfigurationError
from hub.evaluation.service import ProjectEvaluation
from hub.evaluation.store import CanonicalStore, EvaluationError
from hub.evaluation.text import Document, Synonyms, bigram_coverage, keyword_in, parse_years, segment
from hub.project import Project
from tests.fixtures.evaluation import recruiting
from tests.fixtures.evaluation.recruiting import Dataset, generate, validate, write_rows, write_store

FIXTURES = Path(__file__).parent / "fixtures" / "evaluation"
EXPECTED = FIXTURES / "expected_sample.json"
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
MASTER_KEY = "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s="  # the conftest's test key (b"k" * 32)

# -- the reference: the documented formula, written out -----------------------------------------

SYNONYMS = {"数据标注": ["data annotation"], "机器学习": ["machine learning"], "数据分析": ["data analysis"]}
COMPETENCY_WEIGHTS = {"technical": 45.0, "business": 25.0, "learning": 20.0, "detail": 10.0}
COMPONENT_WEIGHTS = {"resume": 20.0, "assessment": 30.0, "interview": 50.0}
#: per job (by remote id): what [evaluation.jobs] says; J5 has no entry (its resume is not scored)
JOB_RULES: dict[str, dict[str, Any] | None] = {
    "J1": {
        "required": ["数据标注", "Python"],
        "preferred": ["TensorFlow", "机器学习"],
        "min_years": 2,
        "threshold": 50,
    },
    "J2": {
        "required": ["机器学习", "Python"],
        "preferred": ["TensorFlow", "PyTorch", "Spark"],
        "min_years": 3,
        "threshold": 60,
        "competencies": {"technical": 55.0, "business": 15.0, "learning": 20.0, "detail": 10.0},
    },
    "J3": {"required": ["SQL", "数据分析"], "preferred": ["Excel", "Python"], "min_years": 1, "threshold": 0},
    "J4": {
        "required": ["Java", "SQL"],
        "preferred": ["Docker", "Kubernetes"],
        "min_years": 0,
        "threshold": 0,
        "weights": {"resume": 30.0, "assessment": 30.0, "interview": 40.0},
        "recommend_at": 70,
    },
    "J5": None,
}
J2_CHANGED = {
    "weights": {"resume": 10.0, "assessment": 20.0, "interview": 70.0},
    "competencies": {"technical": 30.0, "business": 30.0, "learning": 30.0, "detail": 10.0},
}

HUB_TOML = """\
[hub]
database = "sqlite:///hub.db"

[connectors.canonical]
plugin = "sql"
[connectors.canonical.config]
url = "{store_url}"
tables = {{ Job = "jobs", Candidate = "candidates", Application = "applications", Interview = "interviews", Scorecard = "scorecards", AssessmentOrder = "assessment_orders", AssessmentResult = "assessment_results" }}

[evaluation]
store = "canonical"
builtin_synonyms = false
recommend_at = 75
reject_below = 55
disagreement_threshold = 20

[evaluation.synonyms]
"数据标注" = ["data annotation"]
"机器学习" = ["machine learning"]
"数据分析" = ["data analysis"]

[evaluation.jobs.J1]
required = ["数据标注", "Python"]
preferred = ["TensorFlow", "机器学习"]
min_years = 2
threshold = 50

[evaluation.jobs.J2]
required = ["机器学习", "Python"]
preferred = ["TensorFlow", "PyTorch", "Spark"]
min_years = 3
threshold = 60
{j2_extra}

[evaluation.jobs.J3]
required = ["SQL", "数据分析"]
preferred = ["Excel", "Python"]
min_years = 1

[evaluation.jobs."BE-01"]     # J4, by its code
required = ["Java", "SQL"]
preferred = ["Docker", "Kubernetes"]
weights = {{ resume = 30, assessment = 30, interview = 40 }}
recommend_at = 70
"""
J2_DEFAULT = "competencies = { technical = 55, business = 15, learning = 20, detail = 10 }"
J2_EDITED = (
    "weights = { resume = 10, assessment = 20, interview = 70 }\n"
    "competencies = { technical = 30, business = 30, learning = 30, detail = 10 }"
)


def _has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def ref_found(keyword: str, text: str) -> bool:
    """CJK forms as substrings (spaces ignored); Latin forms case-insensitively, not inside a word."""
    for form in [keyword, *SYNONYMS.get(keyword, [])]:
        if _has_cjk(form):
            if re.sub(r"\s+", "", form).lower() in re.sub(r"\s+", "", text).lower():
                return True
        else:
            words = [re.escape(w) for w in re.split(r"[\s\-_]+", form.lower())]
            if re.search(r"(?<![0-9a-z])" + r"[\s\-_]+".join(words) + r"(?![0-9a-z])", text.lower()):
                return True
    return False


def ref_label(label: str) -> tuple[str, float] | None:
    """(competency, weight) of a rating label: a question's points, or all the competency's points."""
    for competency, labels in recruiting.COMPETENCY_LABELS.items():
        if label in labels:
            return competency, sum(points for _, points in recruiting.QUESTIONS[competency])
        for qid, points in recruiting.QUESTIONS[competency]:
            if label == qid:
                return competency, points
    return None


def reference(data: Dataset, app_id: str, j2: dict[str, Any] | None = None) -> dict[str, Any]:
    """The evaluation of one application, by the documented formula over the generated rows."""
    app = data.by_id("Application")[app_id]
    job_id = app["custom_fields"]["job_remote_id"]
    rules = JOB_RULES[job_id]
    if job_id == "J2" and j2 is not None:
        rules = {**(rules or {}), **j2}
    weights = (rules or {}).get("weights", COMPONENT_WEIGHTS)
    competency_weights = (rules or {}).get("competencies", COMPETENCY_WEIGHTS)
    recommend_at = (rules or {}).get("recommend_at", 75)
    reject_below, threshold = 55, (rules or {}).get("threshold", 0)
    candidate = data.by_id("Candidate")[app["custom_fields"]["candidate_remote_id"]]

    # resume: K = 100 (2r + p) / (2R + P); E = 100 min(1, years / min_years); R = 0.8 K + 0.2 E
    resume = None
    if rules is not None:
        custom = candidate["custom_fields"]
        text = "\n".join(
            [
                custom["resume_text"],
                "、".join(custom.get("skills", [])),
                candidate["current_title"],
                "、".join(candidate["tags"]),
            ]
        )
        r = sum(ref_found(k, text) for k in rules["required"])
        p = sum(ref_found(k, text) for k in rules["preferred"])
        keywords = 100 * (2 * r + p) / (2 * len(rules["required"]) + len(rules["preferred"]))
        if rules["min_years"] > 0:
            experience = 100 * min(1.0, data.years[candidate["remote_id"]] / rules["min_years"])
            resume = 0.8 * keywords + 0.2 * experience
        else:
            resume = keywords

    # assessment: mean of 100 score / max (or of the sub-scores); cancelled orders skipped
    orders = [
        o for o in data.rows["AssessmentOrder"] if o["custom_fields"].get("application_remote_id") == app_id
    ]
    results = data.rows["AssessmentResult"]
    scores = []
    background = []
    for order in orders:
        found = [r for r in results if r["custom_fields"]["order_remote_id"] == order["remote_id"]]
        if order["package_type"] == "BACKGROUND_CHECK":
            verdicts = [r["passed"] for r in found]
            background.append("failed" if False in verdicts else "passed" if True in verdicts else "pending")
            continue
        if order["status"] == "CANCELLED":
            continue
        for result in found:
            if "score" in result:
                scores.append(100 * result["score"] / result["max_score"])
            else:
                scores.append(
                    statistics.mean(100 * s["score"] / s["max_score"] for s in result["sub_results"])
                )
    assessment = statistics.mean(scores) if scores else None
    bg = next((s for s in ("failed", "pending", "passed") if s in background), "none")

    # interview: C_ic = 100 sum(w f) / sum(w); S_i and I weigh competencies by W_c
    interviews = {i["remote_id"]: i["custom_fields"]["application_remote_id"] for i in data.rows["Interview"]}
    per: dict[str, dict[str, list[float]]] = {}
    for card in data.rows["Scorecard"]:
        custom = card["custom_fields"]
        if (
            custom.get("application_remote_id", interviews.get(custom.get("interview_remote_id", "")))
            != app_id
        ):
            continue
        sums = per.setdefault(custom["interviewer_remote_id"], {})
        for rating in card["ratings"]:
            found_label = ref_label(rating["competency"])
            if found_label is None or "score" not in rating:
                continue
            competency, w = found_label
            f = rating["score"] / rating.get("max_score", 5)
            sums.setdefault(competency, [0.0, 0.0])
            sums[competency][0] += w * f
            sums[competency][1] += w
    c = {who: {k: 100 * s / w for k, (s, w) in comps.items()} for who, comps in per.items()}
    s_i = [
        sum(competency_weights[k] * v for k, v in comps.items()) / sum(competency_weights[k] for k in comps)
        for comps in c.values()
    ]
    pooled = {k: statistics.mean(comps[k] for comps in c.values() if k in comps) for k in COMPETENCY_WEIGHTS}
    interview = sum(competency_weights[k] * v for k, v in pooled.items()) / sum(competency_weights.values())
    spread = max(s_i) - min(s_i)
    flagged = round(spread, 2) > 20

    # composite and decision
    present = {"resume": resume, "assessment": assessment, "interview": interview}
    present = {k: v for k, v in present.items() if v is not None}
    composite = round(sum(weights[k] * v for k, v in present.items()) / sum(weights[k] for k in present), 2)
    blocked = flagged or (resume is not None and threshold > 0 and round(resume, 2) < threshold)
    if bg == "failed" or composite < reject_below:  # a failed background check rejects whatever the scores
        recommendation = "reject"
    elif composite >= recommend_at and not blocked:
        recommendation = "recommend"
    else:
        recommendation = "hold"
    return {
        "resume": resume,
        "assessment": assessment,
        "interview": interview,
        "composite": composite,
        "recommendation": recommendation,
        "disagreement": flagged,
        "background_check": bg,
    }


def rounded(result: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()}


# -- the store ----------------------------------------------------------------------------------


def write_config(directory: Path, store_url: str, j2: str = J2_DEFAULT, name: str = "hub.toml") -> Path:
    path = directory / name
    path.write_text(HUB_TOML.format(store_url=store_url, j2_extra=j2), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    data = generate(500, seed=7)
    validate(data)
    return data


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, dataset: Dataset) -> Iterator[Path]:
    """A project whose canonical store (SQLite) holds the 500 generated applications, sealed."""
    directory = tmp_path_factory.mktemp("evaluation")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HUB_MASTER_KEY", MASTER_KEY)
        config = write_config(directory, f"sqlite:///{directory / 'canonical.db'}")
        write_store(Project(config), "canonical", f"sqlite:///{directory / 'canonical.db'}", dataset)
        yield config


def evaluations(config: Path) -> dict[str, Any]:
    evaluator = ProjectEvaluation(Project(config)).evaluator(now=NOW)
    return {e.application_remote_id: e for e, _ in evaluator.all()}


def as_numbers(evaluation: Any) -> dict[str, Any]:
    scores = evaluation.component_scores()
    return {
        **scores,
        "composite": evaluation.composite,
        "recommendation": evaluation.recommendation,
        "disagreement": evaluation.disagreement,
        "background_check": evaluation.background_check,
    }


def assert_matches(
    found: dict[str, Any], expected: dict[str, Any], where: str, tolerance: float = 1e-9
) -> None:
    for key, value in expected.items():
        got = found[key]
        if isinstance(value, float) and got is not None:
            assert abs(got - value) <= tolerance, f"{where} {key}: {got} != {value}"
        else:
            assert got == value, f"{where} {key}: {got} != {value}"


# -- 1. acceptance ------------------------------------------------------------------------------


def test_500_applications_match_the_reference_and_the_committed_sample(store: Path, dataset: Dataset) -> None:
    found = evaluations(store)
    assert len(found) == 500
    expected = json.loads(EXPECTED.read_text(encoding="utf-8"))
    assert len(expected) == 20
    for app_id, numbers in expected.items():
        # the committed numbers are still what the plain formula gives for the generated data ...
        assert rounded(reference(dataset, app_id)) == numbers, app_id
        # ... and what hub computes from the sealed canonical store
        assert_matches(rounded(as_numbers(found[app_id])), numbers, app_id, tolerance=0.0101)
    # the sample covers every outcome the formula has
    assert {n["recommendation"] for n in expected.values()} == {"recommend", "hold", "reject"}
    assert any(n["disagreement"] for n in expected.values())
    assert any(n["background_check"] == "failed" for n in expected.values())
    assert any(n["resume"] is None for n in expected.values())
    assert any(n["assessment"] is None for n in expected.values())
    # and every one of the 500, unrounded
    for app_id, evaluation in found.items():
        want = reference(dataset, app_id)
        assert_matches(as_numbers(evaluation), {k: v for k, v in want.items() if k != "composite"}, app_id)
        assert abs(evaluation.composite - want["composite"]) <= 0.0101, app_id


def test_changing_a_jobs_weights_changes_that_jobs_results_as_the_formula_predicts(
    store: Path, dataset: Dataset
) -> None:
    before = evaluations(store)
    store_url = f"sqlite:///{store.parent / 'canonical.db'}"
    after = evaluations(write_config(store.parent, store_url, J2_EDITED, name="edited.toml"))  # same keys
    j2 = [a for a, e in before.items() if e.job_remote_id == "J2"]
    assert len(j2) == 100
    changed = 0
    for app_id, evaluation in after.items():
        if app_id in j2:
            want = reference(dataset, app_id, J2_CHANGED)
            assert abs(evaluation.composite - want["composite"]) <= 0.0101, app_id
            assert evaluation.recommendation == want["recommendation"], app_id
            assert evaluation.weights == J2_CHANGED["weights"]
            changed += evaluation.composite != before[app_id].composite
        else:
            assert as_numbers(evaluation) == as_numbers(before[app_id]), app_id
    assert changed >= 90, f"only {changed} of 100 J2 composites changed"
    moved = sum(after[a].recommendation != before[a].recommendation for a in j2)
    assert moved > 0


# -- 2. the parts of the formula ----------------------------------------------------------------


def small_project(tmp_path: Path, extra: str = "") -> Path:
    config = tmp_path / "hub.toml"
    config.write_text(
        textwrap.dedent(
            """\
            [hub]
            database = "sqlite:///hub.db"
            [connectors.canonical]
            plugin = "sql"
            [connectors.canonical.config]
            url = "sqlite:///canonical.db"
            tables = { Job = "jobs", Candidate = "candidates", Application = "applications", Scorecard = "scorecards", AssessmentOrder = "assessment_orders", AssessmentResult = "assessment_results" }
            [evaluation]
            store = "canonical"
            """
        )
        + textwrap.dedent(extra),
        encoding="utf-8",
    )
    return config


def write_application(
    config: Path,
    app_id: str,
    interviewer_scores: list[int],
    *,
    assessment: float | None = 90,
    background_passed: bool | None = True,
    name: str = "欧阳明月",
) -> None:
    """One application with a scorecard per interviewer (every competency at that score of 5)."""
    project = Project(config)
    url = f"sqlite:///{config.parent / 'canonical.db'}"
    candidate = f"C-{app_id}"
    write_rows(project, "canonical", url, "Job", [{"remote_id": "JX", "title": "数据标注工程师"}])
    write_rows(
        project,
        "canonical",
        url,
        "Candidate",
        [
            {
                "remote_id": candidate,
                "custom_fields": {
                    "name": name,
                    "email": "ouyang.mingyue@example.com",
                    "phone": "13912345678",
                    "resume_text": f"{name}，5年数据标注经验，熟悉Python。",
                },
            }
        ],
    )
    write_rows(
        project,
        "canonical",
        url,
        "Application",
        [{"remote_id": app_id, "custom_fields": {"candidate_remote_id": candidate, "job_remote_id": "JX"}}],
    )
    write_rows(
        project,
        "canonical",
        url,
        "Scorecard",
        [
            {
                "remote_id": f"{app_id}-S{i}",
                "ratings": [
                    {"competency": c, "score": score, "max_score": 5}
                    for c in ("技术能力", "业务理解与协作", "学习能力", "细节与责任心")
                ],
                "summary": f"{name}表现",
                "custom_fields": {"application_remote_id": app_id, "interviewer_remote_id": f"I{i}"},
            }
            for i, score in enumerate(interviewer_scores)
        ],
    )
    orders, results = [], []
    if assessment is not None:
        orders.append(
            {
                "remote_id": f"{app_id}-O",
                "package_type": "SKILLS",
                "status": "COMPLETED",
                "custom_fields": {"application_remote_id": app_id},
            }
        )
        results.append(
            {
                "remote_id": f"{app_id}-R",
                "status": "COMPLETED",
                "score": assessment,
                "max_score": 100,
                "custom_fields": {"order_remote_id": f"{app_id}-O"},
            }
        )
    if background_passed is not None or assessment is None:
        orders.append(
            {
                "remote_id": f"{app_id}-B",
                "package_type": "BACKGROUND_CHECK",
                "status": "COMPLETED",
                "custom_fields": {"candidate_remote_id": candidate},
            }
        )
        if background_passed is not None:
            results.append(
                {
                    "remote_id": f"{app_id}-BR",
                    "status": "COMPLETED",
                    "passed": background_passed,
                    "custom_fields": {"order_remote_id": f"{app_id}-B"},
                }
            )
    if orders:
        write_rows(project, "canonical", url, "AssessmentOrder", orders)
    if results:
        write_rows(project, "canonical", url, "AssessmentResult", results)


def evaluate_one(config: Path, app_id: str) -> Any:
    evaluation, _ = ProjectEvaluation(Project(config)).evaluator(now=NOW).application(app_id)
    return evaluation


def test_interviewer_disagreement_is_flagged_and_holds_a_good_composite(tmp_path: Path) -> None:
    config = small_project(tmp_path)
    write_application(config, "A1", [5, 5, 1])  # 100, 100, 20: spread 80
    evaluation = evaluate_one(config, "A1")
    interview = evaluation.interview
    assert [round(i.score, 2) for i in interview.interviewers] == [100.0, 100.0, 20.0]
    assert round(interview.score, 2) == 73.33
    assert interview.spread == pytest.approx(80.0)
    assert evaluation.disagreement
    # resume not configured for JX: assessment 30 and interview 50 share the weight
    assert evaluation.composite == round((30 * 90 + 50 * (220 / 3)) / 80, 2) == 79.58
    assert evaluation.recommendation == "hold"
    reason = next(r for r in evaluation.reasons if r.code == "disagreement")
    assert (reason.component, reason.value, reason.threshold) == ("interview", pytest.approx(80.0), 20.0)
    assert "80.00" in reason.message and "interview" in reason.message

    write_application(config, "A2", [5, 4, 5])  # 100, 80, 100: spread 20 is not above 20
    calm = evaluate_one(config, "A2")
    assert not calm.disagreement and calm.recommendation == "recommend"

    # the standard deviation instead: pstdev(100, 100, 20) = 37.71
    strict = small_project(tmp_path, 'disagreement_metric = "stdev"\ndisagreement_threshold = 40\n')
    assert not evaluate_one(strict, "A1").disagreement
    assert evaluate_one(strict, "A1").interview.stdev == pytest.approx(statistics.pstdev([100, 100, 20]))


def test_failed_background_check_rejects_with_the_reason(tmp_path: Path) -> None:
    config = small_project(tmp_path)
    write_application(config, "A1", [5, 5, 5], assessment=100, background_passed=False)
    evaluation = evaluate_one(config, "A1")
    assert evaluation.composite == 100.0
    assert evaluation.background_check == "failed"
    assert evaluation.recommendation == "reject"
    assert evaluation.reasons[0].component == "background_check"
    assert evaluation.reasons[0].code == "failed"
    assert "100.00" in evaluation.reasons[0].message

    write_application(config, "A2", [5, 5, 5], assessment=None, background_passed=None)  # ordered, no verdict
    pending = evaluate_one(config, "A2")
    assert pending.background_check == "pending" and pending.recommendation == "recommend"
    assert pending.assessment is None  # a background check is not an assessment
    required = small_project(tmp_path, "require_background_check = true\n")
    held = evaluate_one(required, "A2")
    assert held.recommendation == "hold"
    assert any(r.component == "background_check" and r.code == "required" for r in held.reasons)


def test_reasons_never_carry_personal_data(store: Path, dataset: Dataset) -> None:
    found = evaluations(store)
    secrets = set()
    for candidate in dataset.rows["Candidate"]:
        custom = candidate["custom_fields"]
        secrets.update({custom["name"], custom["email"], custom["phone"], custom["resume_text"]})
    text = json.dumps([e.as_dict() for e in found.values()], ensure_ascii=False)
    assert not [s for s in secrets if s in text]


# -- 3. keywords in Chinese and English ---------------------------------------------------------


def test_keyword_match_on_chinese_and_english_text() -> None:
    synonyms = Synonyms.build({"数据标注": ["标注"]})
    doc = Document.of(
        "5年数 据 标 注经验，熟悉ＰＹＴＨＯＮ和TensorFlow；做过machine-learning项目，会用JavaScript"
    )
    assert keyword_in("数据标注", doc, synonyms)  # spaces inside CJK ignored
    assert keyword_in("python", doc, synonyms)  # full-width and case ignored, no space around it needed
    assert keyword_in("TENSORFLOW", doc, synonyms)
    assert keyword_in("机器学习", doc, synonyms)  # the built-in bilingual synonym
    assert not keyword_in("Java", doc, synonyms)  # JavaScript is not Java
    assert not keyword_in("Go", doc, synonyms)
    assert keyword_in("Machine Learning", Document.of("机器学习工程师"), synonyms)
    assert keyword_in("C++", Document.of("熟悉C++/Go"), synonyms)
    assert keyword_in(
        "标注",
        Document.of("data annotation 3 years"),
        Synonyms.build({"数据标注": ["标注", "data annotation"]}),
    )
    assert not keyword_in("机器学习", Document.of("machine learning"), Synonyms.build({}, builtin=False))

    assert parse_years("3年工作经验，2019年毕业，另有2年Python经验") == 3
    assert parse_years("5+ years of Python") == 5
    assert parse_years("工作十五年") == 15
    assert parse_years("三年级") is None
    assert segment("数据标注工程师", ["数据标注", "工程"]) == [
        ("数据标注", True),
        ("工程", True),
        ("师", False),
    ]
    assert bigram_coverage("标注工程", Document.of("数据标注与工程化")) == pytest.approx(2 / 3)


# -- 4. configuration errors name the key -------------------------------------------------------


def config_problems(tmp_path: Path, body: str) -> dict[str, str]:
    config = small_project(tmp_path, body)
    with pytest.raises(ConfigurationError) as excinfo:
        Project(config)
    return {p.path: p.message for p in excinfo.value.problems}


def test_config_validation_errors_name_the_key(tmp_path: Path) -> None:
    found = config_problems(
        tmp_path,
        """\
        weights = { resume = 20, assessment = 30, interview = 40 }
        recommend_at = 50
        reject_below = 60
        colour = "blue"
        disagreement_metric = "range"
        [evaluation.jobs.J1]
        competencies = { technical = 50, "沟通" = 50 }
        weights = { resume = 50, vibes = 50 }
        min_years = -1
        required = "Python"
        threshold = 120
        [evaluation.jobs.J2]
        competencies = { "技术能力" = 60, business = 20, learning = 20, detail = 10 }
        """,
    )
    assert "sum to 90" in found["evaluation.weights"]
    assert "recommend_at (60 > 50)" in found["evaluation.reject_below"]
    assert found["evaluation.colour"].startswith("unknown key")
    assert "spread, stdev" in found["evaluation.disagreement_metric"]
    assert found["evaluation.jobs.J1.competencies.沟通"].startswith(
        "unknown competency (known: business, detail, learning, technical)"
    )
    assert found["evaluation.jobs.J1.weights.vibes"].startswith("unknown component")
    assert "evaluation.jobs.J1.min_years" in found
    assert "evaluation.jobs.J1.threshold" in found
    assert "sum to 110" in found["evaluation.jobs.J2.competencies"]  # 技术能力 is technical
    assert "evaluation.jobs.J1.required" not in found  # one keyword as a string is fine

    found = config_problems(tmp_path, 'template = "missing.toml"\n')
    assert found == {"evaluation.template": "file not found: missing.toml"}
    (tmp_path / "bad.toml").write_text(
        '[[competencies]]\nkey = "Tech"\nweight = 50\n[[competencies]]\nkey = "craft"\nweight = 40\n'
        "[[competencies.questions]]\npoints = 3\n",
        encoding="utf-8",
    )
    found = config_problems(tmp_path, 'template = "bad.toml"\n')
    assert set(found) == {
        "bad.toml:competencies[0].key",
        "bad.toml:competencies[1].questions[0].id",
        "bad.toml:competencies",
    }

    other = (
        small_project(tmp_path)
        .read_text(encoding="utf-8")
        .replace('store = "canonical"', 'store = "nowhere"')
    )
    (tmp_path / "hub.toml").write_text(other, encoding="utf-8")
    with pytest.raises(ConfigurationError) as excinfo:
        Project(tmp_path / "hub.toml")
    assert [str(p) for p in excinfo.value.problems] == ["evaluation.store: no [connectors.nowhere] table"]


def test_a_template_file_replaces_the_default(tmp_path: Path) -> None:
    (tmp_path / "template.toml").write_text(
        textwrap.dedent(
            """\
            scale = 10
            [[competencies]]
            key = "craft"
            name = "专业技能"
            weight = 70
            aliases = ["Technical Skills"]
            levels = { 1 = "无法完成", 10 = "独当一面" }
            [[competencies.questions]]
            id = "q1"
            points = 3
            [[competencies]]
            key = "care"
            weight = 30
            """
        ),
        encoding="utf-8",
    )
    config = small_project(tmp_path, 'template = "template.toml"\n')
    project = Project(config)
    url = f"sqlite:///{tmp_path / 'canonical.db'}"
    write_rows(project, "canonical", url, "Application", [{"remote_id": "A1"}])
    write_rows(
        project,
        "canonical",
        url,
        "Scorecard",
        [
            {
                "remote_id": "S1",
                "ratings": [
                    {"competency": "Technical Skills", "score": 8},  # scale 10
                    {"competency": "q1", "score": 4},  # 3 points, weighs 3 of 6 with the line above
                    {"competency": "care", "score": 5},
                    {"competency": "技术能力", "score": 5},  # not in this template: ignored
                ],
                "custom_fields": {"application_remote_id": "A1"},
            }
        ],
    )
    evaluation = evaluate_one(config, "A1")
    assert evaluation.interview.competencies == {"craft": pytest.approx(60.0), "care": pytest.approx(50.0)}
    assert evaluation.interview.score == pytest.approx(0.7 * 60 + 0.3 * 50)
    assert evaluation.interview.ignored_ratings == 1


# -- 5. the CLI masks personal data -------------------------------------------------------------


def test_cli_evaluate_shows_scores_with_personal_data_masked(store: Path, dataset: Dataset) -> None:
    from hub.cli import app

    runner = CliRunner()
    candidate = dataset.by_id("Candidate")[
        dataset.by_id("Application")["A0001"]["custom_fields"]["candidate_remote_id"]
    ]
    custom = candidate["custom_fields"]
    clear = [custom["name"], custom["email"], custom["phone"], custom["resume_text"]]

    result = runner.invoke(app, ["evaluate", "A0001", "--config", str(store)])
    assert result.exit_code == 0, result.output
    assert "A0001" in result.output and "composite" in result.output and "reasons" in result.output
    assert custom["name"][0] + "*" * (len(custom["name"]) - 1) in result.output
    assert custom["phone"][:3] + "****" + custom["phone"][-4:] in result.output
    assert not [c for c in clear if c in result.output]
    expected = evaluations(store)["A0001"]
    assert f"{expected.composite:.2f}" in result.output

    result = runner.invoke(app, ["evaluate", "--job", "J2", "--json", "--config", str(store)])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert len(rows) == 100 and {r["job"] for r in rows} == {"J2"}
    assert all(r["candidate_contacts"]["email"].split("@")[0].endswith("***") for r in rows)
    names = {c["custom_fields"]["name"] for c in dataset.rows["Candidate"]}
    phones = {c["custom_fields"]["phone"] for c in dataset.rows["Candidate"]}
    assert not [v for v in names | phones if v in result.output]
    first = next(r for r in rows if r["application"] == "A0002")
    assert first["composite"] == evaluations(store)["A0002"].composite

    table = runner.invoke(app, ["evaluate", "--job", "ML-01", "--config", str(store)])  # by code
    assert table.exit_code == 0 and "Applications of job ML-01" in table.output
    assert not [v for v in names | phones if v in table.output]

    missing = runner.invoke(app, ["evaluate", "A9999", "--config", str(store)])
    assert missing.exit_code == 1 and "no application 'A9999'" in missing.output
    assert runner.invoke(app, ["evaluate", "--config", str(store)]).exit_code == 2

    with sa.create_engine(f"sqlite:///{store.parent / 'hub.db'}").connect() as conn:
        audited = conn.execute(
            sa.text("SELECT action, target FROM audit_log WHERE action = 'evaluation.view'")
        ).all()
    assert ("evaluation.view", "A0001") in [tuple(r) for r in audited]


# -- 6. the loader: sealed values, the contract, PostgreSQL -------------------------------------


def test_sealed_values_need_the_projects_keys(store: Path) -> None:
    url = f"sqlite:///{store.parent / 'canonical.db'}"
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        sealed = conn.execute(sa.text("SELECT custom_fields, ratings FROM scorecards LIMIT 1")).one()
    assert all(str(v).startswith("hub1.") for v in sealed)
    with pytest.raises(EvaluationError, match="sealed values; reading them needs the project's keys"):
        CanonicalStore(engine, tables=recruiting.TABLES).load()
    engine.dispose()


def test_the_loader_runs_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    data = generate(60, seed=11)
    sqlite_dir = tmp_path / "sqlite"
    sqlite_dir.mkdir()
    pg_dir = tmp_path / "pg"
    pg_dir.mkdir()
    sqlite_config = write_config(sqlite_dir, f"sqlite:///{sqlite_dir / 'canonical.db'}")
    pg_config = write_config(pg_dir, pg_url)
    write_store(Project(sqlite_config), "canonical", f"sqlite:///{sqlite_dir / 'canonical.db'}", data)
    write_store(Project(pg_config), "canonical", pg_url, data)
    on_pg = evaluations(pg_config)
    on_sqlite = evaluations(sqlite_config)
    assert len(on_pg) == 60
    assert {k: v.as_dict() for k, v in on_pg.items()} == {k: v.as_dict() for k, v in on_sqlite.items()}
    for app_id, evaluation in on_pg.items():
        assert evaluation.recommendation == reference(data, app_id)["recommendation"]


def test_entity_streams_and_table_names_follow_the_store_connector(tmp_path: Path) -> None:
    """Tables named after the entity (no ``tables``), values sealed under the entity's stream."""
    config = tmp_path / "hub.toml"
    config.write_text(
        '[hub]\ndatabase = "sqlite:///hub.db"\n[connectors.store]\nplugin = "sql"\n'
        '[connectors.store.config]\nurl = "sqlite:///store.db"\n[evaluation]\nstore = "store"\n',
        encoding="utf-8",
    )
    project = Project(config)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    hub_id = "5f0f7c8e-0c2a-4e8b-9a57-2d6c1f3b9e10"
    write_rows(
        project,
        "store",
        url,
        "Application",
        [{"remote_id": "A1", "hub_id": hub_id, "custom_fields": {"job_remote_id": "J"}}],
        tables={},
    )
    write_rows(
        project,
        "store",
        url,
        "Scorecard",
        [
            {
                "remote_id": "S1",
                "ratings": [{"competency": "technical", "score": 4}],
                "custom_fields": {"application_remote_id": "A1"},
            }
        ],
        tables={},
    )
    evaluation = evaluate_one(config, "A1")
    assert evaluation.interview.score == pytest.approx(80.0)
    assert evaluation.composite == 80.0
    assert evaluate_one(config, hub_id).application_remote_id == "A1"  # by hub id too


# -- 7. through real pipelines: mapped vendor exports in, evaluations out -------------------------

MAPPINGS = FIXTURES / "mappings"
#: entity -> (export file and mapping name, the pipeline's destination_stream or None for the entity)
EXPORTS = {
    "Job": ("jobs", None),
    "Candidate": ("candidates", "candidates"),
    "Application": ("applications", None),
    "Interview": ("interviews", None),
    "Scorecard": ("scorecards", None),
    "AssessmentOrder": ("assessment_orders", "assessment_orders"),
    "AssessmentResult": ("assessment_results", "assessment_results"),
}
IDENTITY = ("name", "email", "phone")


def write_exports(directory: Path, data: Dataset) -> None:
    """Each entity as a JSON-lines export: the vendor's id, fields, references at the top level."""
    for entity, (name, _) in EXPORTS.items():
        records = []
        for row in data.rows[entity]:
            record = {
                k: v for k, v in row.items() if k not in ("remote_id", "custom_fields", "remote_updated_at")
            }
            record["id"] = row["remote_id"]
            record["updated_at"] = row.get("remote_updated_at")
            record.update(row.get("custom_fields", {}))
            records.append(record)
        keys = sorted({k for r in records for k in r})
        with open(directory / f"{name}.jsonl", "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps({k: record.get(k) for k in keys}, ensure_ascii=False) + "\n")


def pipeline_toml(directory: Path) -> str:
    parts = []
    for name, stream in EXPORTS.values():
        destination = f', destination_stream = "{stream}"' if stream else ""
        parts.append(
            f'[connectors.export_{name}]\nplugin = "files"\n[connectors.export_{name}.config]\n'
            f'path = "{name}.jsonl"\nstream = "{name}"\nformat = "jsonl"\n\n'
            f'[pipelines.load_{name}]\nsource = "export_{name}"\ndestinations = ["canonical"]\n'
            f'streams = [{{ name = "{name}", mapping = "{MAPPINGS / (name + ".yaml")}"{destination} }}]\n'
        )
    parts.append(
        '[connectors.evaluations]\nplugin = "evaluation"\n[connectors.evaluations.config]\n'
        'project = "hub.toml"\nrecommendations = ["recommend"]\n\n'
        '[connectors.hr_master]\nplugin = "sql"\n[connectors.hr_master.config]\nurl = "sqlite:///hr.db"\n\n'
        '[pipelines.recommended]\nsource = "evaluations"\ndestinations = ["hr_master"]\n'
        'streams = [{ name = "evaluations", sync_mode = "incremental" }]\n'
    )
    return "\n".join(parts)


def test_mapped_pipelines_feed_the_evaluation_and_recommendations_flow_out(tmp_path: Path) -> None:
    from hub.engine import Sync

    data = generate(20, seed=5)
    for candidate in data.rows["Candidate"]:  # name and contacts only through identity resolution
        custom = candidate["custom_fields"]
        candidate.update({k: custom.pop(k) for k in IDENTITY})
    write_exports(tmp_path, data)
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'canonical.db'}")
    config.write_text(config.read_text(encoding="utf-8") + "\n" + pipeline_toml(tmp_path), encoding="utf-8")

    def load() -> None:
        project = Project(config)
        for _, (name, _) in EXPORTS.items():
            result = Sync(project, f"load_{name}").run()
            assert result.status == "succeeded", (name, result.error)

    load()
    with sa.create_engine(f"sqlite:///{tmp_path / 'canonical.db'}").connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        sealed = conn.execute(sa.text("SELECT custom_fields FROM candidates LIMIT 1")).scalar_one()
    assert {
        "jobs",
        "candidates",
        "applications",
        "scorecards",
        "assessment_orders",
        "assessment_results",
    } <= tables
    assert sealed.startswith("hub1.")

    service = ProjectEvaluation(Project(config))
    evaluator = service.evaluator(now=NOW)
    found = {e.application_remote_id: (e, b) for e, b in evaluator.all()}
    assert len(found) == 20
    for app_id, (evaluation, bundle) in found.items():
        want = reference(data, app_id)
        assert evaluation.recommendation == want["recommendation"], app_id
        assert abs(evaluation.composite - want["composite"]) <= 0.0101, app_id
        person = data.by_id("Candidate")[bundle.candidate_remote_id]
        contacts = service.contacts(bundle.candidate).masked()  # from the resolved person
        assert contacts["name"] == person["name"][0] + "*" * (len(person["name"]) - 1)
        assert contacts["phone"] == person["phone"][:3] + "****" + person["phone"][-4:]

    # the recommended ones go to the HR master; an unchanged store sends nothing more
    project = Project(config)
    source = project.source("evaluations")
    status = source.check(logging.getLogger("test"), project.config_of("evaluations"))
    assert (status.status.value, status.message) == ("SUCCEEDED", "20 applications in the canonical store")
    first = Sync(project, "recommended").run()
    assert first.status == "succeeded", first.error
    recommended = sorted(a for a, (e, _) in found.items() if e.recommendation == "recommend")
    assert recommended, "the sample has recommended applications"
    hr = sa.create_engine(f"sqlite:///{tmp_path / 'hr.db'}")
    with hr.connect() as conn:
        rows = (
            conn.execute(sa.text("SELECT * FROM evaluations ORDER BY application_remote_id")).mappings().all()
        )
    assert [r["application_remote_id"] for r in rows] == recommended
    assert {r["recommendation"] for r in rows} == {"recommend"}
    assert float(rows[0]["composite"]) == found[recommended[0]][0].composite
    assert json.loads(rows[0]["reasons"])[0]["component"] == "composite"
    assert Sync(project, "recommended").run().counts.read == 0

    # an application is interviewed again, scores top marks, and is sent on the next run
    app_id = next(
        a
        for a, (e, b) in sorted(found.items())
        if b.job_remote_id in ("J4", "J5")
        and e.background_check != "failed"
        and e.recommendation != "recommend"
    )
    _, bundle = found[app_id]
    cards = {c.remote_id for c in bundle.scorecards}
    results = {r.remote_id for e in bundle.assessments for r in e.results}
    for card in data.rows["Scorecard"]:
        for rating in card["ratings"] if card["remote_id"] in cards else []:
            rating["score"] = rating.get("max_score", 5)
    for row in data.rows["AssessmentResult"]:
        if row["remote_id"] in results:
            row["score"], row["max_score"] = 10, 10
    application = data.by_id("Application")[app_id]
    application["remote_updated_at"] = "2025-01-01T00:00:00+00:00"
    write_exports(tmp_path, data)
    load()
    again = Sync(Project(config), "recommended").run()
    assert again.counts.read == 1
    with hr.connect() as conn:
        sent = conn.execute(
            sa.text("SELECT recommendation FROM evaluations WHERE application_remote_id = :a"), {"a": app_id}
        ).scalar_one()
    assert sent == "recommend"
    hr.dispose()
