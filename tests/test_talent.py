"""Talent-pool search: query parsing, the documented ranking (computed by hand here), masking, CLI."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hub.evaluation.service import Evaluator, ProjectEvaluation
from hub.evaluation.text import BUILTIN_SKILLS
from hub.project import Project
from hub.talent import build_profiles, parse_query, search, vocabulary_of
from tests.fixtures.evaluation.recruiting import write_rows

#: five past candidates; their names and contacts must never be printed
PEOPLE: dict[str, dict[str, Any]] = {
    "C1": {
        "name": "欧阳娜娜",
        "email": "ouyang.nana@example.com",
        "phone": "13800001111",
        "skills": ["数据标注", "TensorFlow"],
        "resume_text": "欧阳娜娜，熟悉数据标注。",
        "years_experience": 5,
    },
    "C2": {
        "name": "司马相如",
        "email": "sima.xr@example.com",
        "phone": "13900002222",
        "resume_text": "司马相如，3年data annotation经验，熟悉tensorflow。",
    },
    "C3": {
        "name": "诸葛明",
        "email": "zhuge.ming@example.com",
        "phone": "13700003333",
        "skills": ["数据标注"],
        "resume_text": "诸葛明，1年工作经验。",
    },
    "C4": {
        "name": "Li Lei",
        "email": "li.lei@example.com",
        "phone": "13600004444",
        "resume_text": "Li Lei, TensorFlow专家。",
        "years_experience": 10,
    },
    "C5": {
        "name": "上官婉儿",
        "email": "shangguan@example.com",
        "phone": "13500005555",
        "skills": ["Java"],
        "resume_text": "上官婉儿，8年Java后端。",
        "years_experience": 8,
    },
}


def clear_values() -> list[str]:
    return [
        v for p in PEOPLE.values() for k, v in p.items() if k in ("name", "email", "phone", "resume_text")
    ]


@pytest.fixture
def pool(tmp_path: Path) -> Path:
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
            tables = { Candidate = "candidates", Application = "applications", Scorecard = "scorecards" }
            [evaluation]
            store = "canonical"
            """
        ),
        encoding="utf-8",
    )
    project = Project(config)
    url = f"sqlite:///{tmp_path / 'canonical.db'}"
    write_rows(
        project,
        "canonical",
        url,
        "Candidate",
        [{"remote_id": k, "custom_fields": v} for k, v in PEOPLE.items()],
    )
    # C1 was interviewed before: every competency 4 of 5, so an interview score (and composite) of 80
    write_rows(
        project,
        "canonical",
        url,
        "Application",
        [{"remote_id": "A1", "custom_fields": {"candidate_remote_id": "C1"}}],
    )
    write_rows(
        project,
        "canonical",
        url,
        "Scorecard",
        [
            {
                "remote_id": "S1",
                "ratings": [
                    {"competency": c, "score": 4, "max_score": 5}
                    for c in ("技术能力", "业务理解", "学习能力", "责任心")
                ],
                "custom_fields": {"application_remote_id": "A1", "interviewer_remote_id": "E1"},
            }
        ],
    )
    return config


def run_search(config: Path, query: str, limit: int = 20) -> list[Any]:
    service = ProjectEvaluation(Project(config))
    data = service.load()
    evaluator = Evaluator(data, service.config)
    profiles = build_profiles(data, evaluator)
    parsed = parse_query(query, vocabulary_of(profiles, evaluator.synonyms, service.config.keywords()))
    return search(profiles, parsed, evaluator.synonyms, limit=limit)


def test_query_parsing_finds_skills_and_years_in_chinese_and_english() -> None:
    query = parse_query("数据标注 TensorFlow 3年", BUILTIN_SKILLS)
    assert [t.text for t in query.terms] == ["数据标注", "TensorFlow"]
    assert query.min_years == 3
    query = parse_query("3年以上数据标注工程师经验，熟悉pytorch与C++", BUILTIN_SKILLS)
    assert [(t.text, t.free) for t in query.terms] == [
        ("数据标注", False),
        ("工程师", True),
        ("pytorch", False),
        ("C++", False),
    ]
    assert query.min_years == 3
    assert parse_query("machine learning, 5+ years", BUILTIN_SKILLS).min_years == 5
    assert parse_query("Python", BUILTIN_SKILLS).min_years is None


def test_ranking_follows_the_documented_formula(pool: Path) -> None:
    hits = run_search(pool, "数据标注 TensorFlow 3年")
    # m: 1.0 skill, 0.8 resume text; both terms are matched by 3 of the 5 candidates, so their
    # idf is equal and R is the mean m. score = 100 (0.6 R + 0.2 E + 0.2 H), E = min(1, years/3),
    # H = best composite / 100 (C1: 80), else 0.5. C5 matches nothing and is left out.
    expected = {
        "C1": 100 * (0.6 * 1.0 + 0.2 * 1.0 + 0.2 * 0.8),
        "C2": 100 * (0.6 * 0.8 + 0.2 * 1.0 + 0.2 * 0.5),  # data annotation = 数据标注; 3年 from the text
        "C4": 100 * (0.6 * 0.4 + 0.2 * 1.0 + 0.2 * 0.5),
        "C3": 100 * (0.6 * 0.5 + 0.2 * (1 / 3) + 0.2 * 0.5),
    }
    assert [h.profile.remote_id for h in hits] == list(expected)
    for hit in hits:
        assert hit.score == pytest.approx(expected[hit.profile.remote_id])
    assert hits[1].matched == {"数据标注": 0.8, "TensorFlow": 0.8}

    # rarer terms weigh more: Java is matched by 1 candidate, 数据标注 by 3; no years: 100 (0.75 R + 0.25 H)
    idf_java, idf_label = math.log(1 + 5 / 2), math.log(1 + 5 / 4)
    share = idf_label / (idf_java + idf_label)
    expected = {
        "C5": 100 * (0.75 * (1 - share) + 0.25 * 0.5),
        "C1": 100 * (0.75 * share + 0.25 * 0.8),
        "C3": 100 * (0.75 * share + 0.25 * 0.5),
        "C2": 100 * (0.75 * 0.8 * share + 0.25 * 0.5),
    }
    hits = run_search(pool, "数据标注 Java")
    assert [h.profile.remote_id for h in hits] == list(expected)
    for hit in hits:
        assert hit.score == pytest.approx(expected[hit.profile.remote_id])
    assert [h.profile.remote_id for h in run_search(pool, "数据标注 Java", limit=2)] == ["C5", "C1"]


def test_free_chinese_terms_match_by_bigrams(pool: Path) -> None:
    hits = run_search(pool, "标注熟悉")  # neither word is a skill: 标注 is free, 熟悉 is filler
    assert {h.profile.remote_id for h in hits} == {"C1", "C3"}
    hits = run_search(pool, "标注员")  # 1 of its 2 bigrams (标注) found: 0.8 x 1/2
    assert {h.profile.remote_id: round(h.matched["标注员"], 4) for h in hits} == {"C1": 0.4, "C3": 0.4}
    assert run_search(pool, "图像标注") == []  # 1 of 3 bigrams is below one half
    hits = run_search(pool, "数据标注工作")  # 数据标注 known; 工作 is filler
    assert {h.profile.remote_id for h in hits} == {"C1", "C2", "C3"}


def test_cli_talent_search_masks_names_and_contacts(pool: Path) -> None:
    from hub.cli import app

    runner = CliRunner()
    result = runner.invoke(
        app, ["talent", "search", "数据标注 TensorFlow 3年", "--json", "--limit", "2", "--config", str(pool)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["query"] == {"terms": ["数据标注", "TensorFlow"], "min_years": 3.0}
    assert [r["candidate"] for r in data["results"]] == ["C1", "C2"]
    first = data["results"][0]
    assert (first["name"], first["email"], first["phone"]) == ("欧***", "o***@example.com", "138****1111")
    assert first["best_composite"] == 80.0
    assert not [v for v in clear_values() if v in result.output]

    table = runner.invoke(app, ["talent", "search", "TensorFlow", "--config", str(pool)])
    assert table.exit_code == 0, table.output
    assert "L*****" in table.output and "136****4444" in table.output
    assert not [v for v in clear_values() if v in table.output]
