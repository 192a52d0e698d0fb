"""Recruiting end to end: two vendors' simulators -> the canonical store -> the evaluation.

Greenhouse holds the candidates, applications and scorecards; HackerRank knows the candidates
who took its test only by e-mail. Identity resolution joins them, so the evaluation of an
application includes its candidate's assessment without any shared id between the vendors.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.engine import Sync
from hub.evaluation.service import ProjectEvaluation
from hub.project import Project
from hub.sandbox.greenhouse import GreenhouseSimulator
from hub.sandbox.hackerrank import HackerRankSimulator

MAPPINGS = Path(__file__).resolve().parent.parent / "mappings"


def _project(tmp_path: Path, greenhouse: GreenhouseSimulator, hackerrank: HackerRankSimulator) -> Project:
    (tmp_path / "hub.toml").write_text(
        f"""
[hub]
database = "sqlite:///{tmp_path / "hub.db"}"

[connectors.greenhouse]
plugin = "greenhouse"
[connectors.greenhouse.config]
base_url = "{greenhouse.url}"
api_key = {{ env = "HUB_TEST_GH_KEY" }}
page_size = 50

[connectors.hackerrank]
plugin = "hackerrank"
[connectors.hackerrank.config]
base_url = "{hackerrank.describe()["base_url"]}"
api_key = {{ env = "HUB_TEST_HR_KEY" }}

[connectors.canonical]
plugin = "sql"
[connectors.canonical.config]
url = "sqlite:///{tmp_path / "canonical.db"}"

[pipelines.recruiting]
source = "greenhouse"
destinations = ["canonical"]
streams = [
  {{ name = "jobs", mapping = "{MAPPINGS / "greenhouse_jobs.yaml"}", destination_stream = "jobs" }},
  {{ name = "candidates", mapping = "{MAPPINGS / "greenhouse_candidates.yaml"}", destination_stream = "candidates" }},
  {{ name = "applications", mapping = "{MAPPINGS / "greenhouse_applications.yaml"}", destination_stream = "applications" }},
  {{ name = "scorecards", mapping = "{MAPPINGS / "greenhouse_scorecards.yaml"}", destination_stream = "scorecards" }},
]

[pipelines.assessments]
source = "hackerrank"
destinations = ["canonical"]
streams = [
  {{ name = "results", mapping = "{MAPPINGS / "hackerrank_results_assessment_result.yaml"}", destination_stream = "assessment_results" }},
]

[evaluation]
store = "canonical"
""",
        encoding="utf-8",
    )
    return Project(tmp_path / "hub.toml")


def test_assessment_known_only_by_email_joins_the_ats_application(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (
        GreenhouseSimulator(candidates=12, seed=3) as greenhouse,
        HackerRankSimulator(seed=3, tests=1, candidates_per_test=0) as hackerrank,
    ):
        monkeypatch.setenv("HUB_TEST_GH_KEY", greenhouse.api_token)
        monkeypatch.setenv("HUB_TEST_HR_KEY", str(hackerrank.describe()["api_key"]))
        test_id = hackerrank.tests[0]["id"]
        took_test: dict[str, float] = {}  # Greenhouse candidate id -> HackerRank percentage
        for n, candidate in enumerate(greenhouse._tables["candidates"].values()):
            if n % 2:
                continue
            invited = hackerrank.invite(
                test_id,
                candidate["email_addresses"][0]["value"],
                f"{candidate['last_name']}{candidate['first_name']}",
            )
            hackerrank.begin_attempt(test_id, invited["id"])
            finished = hackerrank.finish_attempt(test_id, invited["id"])
            took_test[str(candidate["id"])] = float(finished["percentage_score"])

        project = _project(tmp_path, greenhouse, hackerrank)
        assert Sync(project, "recruiting").run().status in ("succeeded", "partial")
        assert Sync(project, "assessments").run().status in ("succeeded", "partial")

        evaluations = ProjectEvaluation(project).evaluator().all()
    assert evaluations
    joined = 0
    for evaluation, _bundle in evaluations:
        expected = took_test.get(str(evaluation.candidate_remote_id))
        if expected is None:
            assert evaluation.assessment is None, "a candidate who took no test has no assessment"
            continue
        assert evaluation.assessment is not None, "the result reached the application through identity"
        assert evaluation.assessment.score == pytest.approx(expected, abs=0.01)
        joined += 1
    assert joined >= 3
