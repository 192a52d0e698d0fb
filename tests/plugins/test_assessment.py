"""The generic ``assessment`` connector: exports (file mode) and a results API (REST mode, against
its simulator over loopback), mapped into AssessmentOrder / AssessmentResult in SQLite."""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from airbyte_cdk.models import Status
from hub_assessment.convention import FIELDS, normalise_frame, sub_scores
from hub_assessment.source import AssessmentSource

from hub.engine import Sync
from hub.errors import ConfigurationError
from hub.identity import IdentityResolver
from hub.project import Project
from hub.sandbox import Faults
from hub.sandbox.assessment_rest import CLIENT_ID, CLIENT_SECRET, RESULTS_PATH, AssessmentRestSimulator
from tests import ats_helpers as ats

RESULT_MAPPING = ats.MAPPINGS / "assessment_results_assessment_result.yaml"
ORDER_MAPPING = ats.MAPPINGS / "assessment_results_assessment_order.yaml"
LOG = logging.getLogger("test.assessment")
#: Where the simulator's vendor shape keeps each convention field.
FIELD_PATHS = {
    "result_id": "id",
    "candidate_remote_id": "candidate.ats_id",
    "candidate_name": "candidate.name",
    "candidate_email": "candidate.email",
    "candidate_phone": "candidate.mobile",
    "test_id": "assessment.id",
    "test_name": "assessment.name",
    "test_type": "assessment.type",
    "score": "total_score",
    "max_score": "full_score",
    "band": "level",
    "sub_scores": "dimensions[].{label: name, score: score, max_score: full_score}",
}


def _valid_phone(index: int) -> str:
    return f"139{index:08d}"  # the generator's numbers are not all valid in CN


# -- the convention -------------------------------------------------------------------------------


def test_sub_score_columns_and_json_fold_into_one_list() -> None:
    frame = pd.DataFrame(
        {
            "测评编号": ["R1", "R2"],
            "sub:逻辑": ["80", None],
            "sub_max:逻辑": ["100", None],
            "sub:言语": ["72.50", "90"],
            "sub_scores": [None, '{"数字": 65}'],
            "身份证": ["110105199003071234", "110105199003071234"],  # not in the convention: dropped
            "_hub_position": ["f.csv:2", "f.csv:3"],
        }
    )
    out = normalise_frame(frame, {"测评编号": "result_id"})
    assert list(out.columns) == [*FIELDS, "_hub_position"]
    assert orjson.loads(out["sub_scores"][0]) == [
        {"label": "逻辑", "score": "80", "max_score": "100"},
        {"label": "言语", "score": "72.5", "max_score": None},
    ]
    assert orjson.loads(out["sub_scores"][1]) == [
        {"label": "数字", "score": "65", "max_score": None},
        {"label": "言语", "score": "90", "max_score": None},
    ]
    assert out["result_id"].tolist() == ["R1", "R2"] and out["score"].isna().all()
    assert sub_scores([{"name": "A", "score": 1.10, "full_score": 5}]) == [
        {"label": "A", "score": "1.1", "max_score": "5"}
    ]


# -- file mode ------------------------------------------------------------------------------------


def write_export(path: Path, candidates: list[dict[str, str]]) -> None:
    """A Beisen-style report export: Chinese headers, one column per dimension."""
    with open(path, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["报告编号", "姓名", "邮箱", "手机", "测评名称", "状态", "总分", "满分", "是否通过", "等级",
             "完成时间", "逻辑推理", "言语理解", "内部备注"]
        )  # fmt: skip
        for i, c in enumerate(candidates):
            writer.writerow(
                [f"BS-{i:04d}", c["name"], c["email"], c["phone"], "通用认知能力测评", "已完成",
                 f"{70 + i}.5", "100", "通过" if i % 2 == 0 else "未通过", "B", f"2025/3/{i + 1} 10:30",
                 str(60 + i), str(80 - i), "不应写出"]
            )  # fmt: skip


def file_project(tmp_path: Path, export: Path, ats_csv: Path) -> Path:
    rename = {
        "报告编号": "result_id", "姓名": "candidate_name", "邮箱": "candidate_email",
        "手机": "candidate_phone", "测评名称": "test_name", "状态": "status", "总分": "score",
        "满分": "max_score", "是否通过": "passed", "等级": "band", "完成时间": "completed_at",
        "逻辑推理": "sub:逻辑推理", "言语理解": "sub:言语理解",
    }  # fmt: skip
    return ats.write_hub_toml(
        tmp_path,
        connector="beisen_export",
        plugin="assessment",
        pipeline="assessment",
        settings={"mode": "file", "path": str(export), "rename": rename},
        streams=[ats.stream_entry("results", "assessment_results", mapping=RESULT_MAPPING)],
        identity=["ats_export", "beisen_export"],
        extra=ats.ats_export_toml(ats_csv),
    )


def test_an_export_maps_to_sealed_results_with_sub_scores_linked_to_the_ats_person(tmp_path: Path) -> None:
    candidates = ats.write_ats_csv(tmp_path / "ats.csv", count=4, seed=11, phone_prefix="139")
    write_export(tmp_path / "export.csv", candidates)
    project = Project(file_project(tmp_path, tmp_path / "export.csv", tmp_path / "ats.csv"))
    assert Sync(project, "ats").run().status == "succeeded"
    result = Sync(project, "assessment").run()
    assert result.status == "succeeded", result.error
    assert result.counts.inserted == 4

    stored = ats.out_rows(tmp_path, "assessment_results")
    assert sorted(r["remote_id"] for r in stored) == ["BS-0000", "BS-0001", "BS-0002", "BS-0003"]
    first = next(r for r in stored if r["remote_id"] == "BS-0000")
    assert first["status"] == "COMPLETED"
    assert first["completed_at"].startswith("2025-03-01T10:30:00+08:00")
    for column in ("score", "max_score", "passed", "band", "sub_results"):
        assert first[column].startswith("hub1."), column

    def opened(column: str) -> str:
        return ats.unsealed(project, "assessment_results", first, column)

    assert opened("score") == "70.5" and opened("passed") == "true"
    assert orjson.loads(opened("sub_results")) == [
        {"label": "逻辑推理", "max_score": None, "score": "60"},
        {"label": "言语理解", "max_score": None, "score": "80"},
    ]
    text = json.dumps(stored, ensure_ascii=False, default=str)
    assert "不应写出" not in text and not any(c["email"] in text for c in candidates)

    resolver = IdentityResolver.for_project(project, project.identity_config)
    for i, candidate in enumerate(candidates):
        person = resolver.person_of("ats_export", candidate["candidate_id"])
        assert person is not None and resolver.person_of("beisen_export", f"BS-{i:04d}") == person

    again = Sync(project, "assessment").run()  # the same file again: nothing read, nothing written
    assert again.status == "succeeded" and again.counts.inserted == again.counts.updated == 0


def test_an_export_without_a_result_id_is_refused_with_the_reason(tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    export.write_text("姓名,总分\n张三,80\n", encoding="utf-8")
    config = {"mode": "file", "path": str(export)}
    status = AssessmentSource().check(LOG, config)
    assert status.status == Status.FAILED and "result_id" in status.message
    assert (
        AssessmentSource().check(LOG, {**config, "rename": {"姓名": "result_id"}}).status == Status.SUCCEEDED
    )


def test_the_spec_asks_each_mode_for_what_it_needs(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text(
        """
[connectors.api]
plugin = "assessment"
[connectors.api.config]
mode = "rest"
oauth_url = "https://assess.example.com/oauth/token"
client_id = "c"
client_secret = "written-in-clear"
[connectors.export]
plugin = "assessment"
[connectors.export.config]
mode = "file"
""",
        encoding="utf-8",
    )
    with pytest.raises(ConfigurationError) as caught:
        Project(config)
    problems = {str(p) for p in caught.value.problems}
    assert "connectors.api.config.base_url: required field is missing" in problems
    assert "connectors.api.config.results_path: required field is missing" in problems
    assert "connectors.export.config.path: required field is missing" in problems
    assert any(
        p.startswith("connectors.api.config.client_secret: plaintext secret refused") for p in problems
    )
    assert "written-in-clear" not in str(caught.value)


# -- REST mode ------------------------------------------------------------------------------------


@pytest.fixture
def api() -> Iterator[AssessmentRestSimulator]:
    with AssessmentRestSimulator(seed=7, size=45) as simulator:
        yield simulator


def rest_config(api: AssessmentRestSimulator, **extra: Any) -> dict[str, Any]:
    return {
        "mode": "rest",
        "base_url": api.url,
        "results_path": RESULTS_PATH,
        "oauth_url": api.url + "/oauth/token",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "oauth_body": "json",
        "oauth_field_names": {"client_id": "app_key", "client_secret": "app_secret"},
        "page_size": 10,
        "fields": FIELD_PATHS,
        **extra,
    }


def rest_project(tmp_path: Path, api: AssessmentRestSimulator, chunk_size: int = 10) -> Path:
    settings = {
        "mode": "rest",
        "base_url": api.url,
        "results_path": RESULTS_PATH,
        "oauth_url": f"{api.url}/oauth/token",
        "client_id": CLIENT_ID,
        "client_secret": {"env": "ASSESSMENT_SECRET"},
        "page_size": 10,
        "fields": FIELD_PATHS,
    }
    orders = ats.stream_entry("results", "assessment_orders", mapping=ORDER_MAPPING)
    return ats.write_hub_toml(
        tmp_path,
        connector="results_api",
        plugin="assessment",
        pipeline="results",
        settings=settings,
        streams=[
            ats.stream_entry("results", "assessment_results", mapping=RESULT_MAPPING, sync_mode="incremental")
        ],
        chunk_size=chunk_size,
        extra=f'[pipelines.orders]\nsource = "results_api"\ndestinations = ["out"]\nstreams = [\n{orders}\n]\n',
    )


def test_rest_check_and_discover(api: AssessmentRestSimulator) -> None:
    source = AssessmentSource()
    assert source.check(LOG, rest_config(api)).status == Status.SUCCEEDED
    refused = source.check(LOG, rest_config(api, client_secret="wrong-secret"))
    assert refused.status == Status.FAILED and "HTTP 401" in refused.message
    assert "wrong-secret" not in refused.message
    [stream] = source.discover(LOG, rest_config(api)).streams
    assert stream.name == "results" and stream.source_defined_primary_key == [["result_id"]]
    assert stream.default_cursor_field == ["updated_at"]


def test_rest_recovers_a_token_expired_mid_sync_and_waits_out_a_429(
    tmp_path: Path, api: AssessmentRestSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSESSMENT_SECRET", CLIENT_SECRET)
    project = Project(rest_project(tmp_path, api))
    api.faults = Faults(throttle=1, retry_after=1, only=RESULTS_PATH)
    api.expire_tokens_after(3)  # the token dies after the third page
    result = Sync(project, "results").run()
    assert result.status == "succeeded", result.error
    assert result.counts.inserted == len(api.results)

    statuses = [(path.split("?")[0], status) for _, path, status in api.requests]
    assert statuses.count((RESULTS_PATH, 429)) == 1
    assert statuses.count((RESULTS_PATH, 401)) == 1
    assert statuses.count(("/oauth/token", 200)) == 2  # the first token, and its replacement
    first_401 = statuses.index((RESULTS_PATH, 401))
    assert statuses[first_401 + 1] == ("/oauth/token", 200) and statuses[first_401 + 2] == (RESULTS_PATH, 200)

    stored = {r["remote_id"]: r for r in ats.out_rows(tmp_path, "assessment_results")}
    assert set(stored) == set(api.results)
    sample = stored["R000001"]
    assert sample["score"].startswith("hub1.") and sample["sub_results"].startswith("hub1.")
    dims = orjson.loads(ats.unsealed(project, "assessment_results", sample, "sub_results"))
    assert [d["label"] for d in dims] == [d["name"] for d in api.results["R000001"]["dimensions"]]

    orders = Sync(project, "orders").run()
    assert orders.status == "succeeded" and orders.counts.inserted == len(api.results)
    assert {o["package_type"] for o in ats.out_rows(tmp_path, "assessment_orders")} == {
        "COGNITIVE", "PERSONALITY", "SKILLS"
    }  # fmt: skip


def test_rest_incremental_asks_only_for_what_changed_since_the_cursor(
    tmp_path: Path, api: AssessmentRestSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSESSMENT_SECRET", CLIENT_SECRET)
    project = Project(rest_project(tmp_path, api))
    assert Sync(project, "results").run().counts.read == len(api.results)

    waiting = next(r for r, v in sorted(api.results.items()) if v["status"] != "completed")
    api.finish(waiting)
    api.rescore("R000002", 99.5)
    fresh = api.add_result("新同学", "fresh@example.com", _valid_phone(999), "C99999")  # invited now
    mark = len(api.requests)
    second = Sync(project, "results").run()
    assert second.status == "succeeded", second.error
    # The finished and the re-scored results were delivered before (updated); the invitation is new.
    assert second.counts.read == 3 and second.counts.inserted == 1 and second.counts.updated == 2
    asked = [path for _, path, status in api.requests[mark:] if path.startswith(RESULTS_PATH)]
    assert asked and all("updated_since=" in path for path in asked)
    assert fresh["id"] in {r["remote_id"] for r in ats.out_rows(tmp_path, "assessment_results")}

    third = Sync(project, "results").run()
    assert third.status == "succeeded" and third.counts.read == 0


def test_rest_credentials_rotated_midway_fail_clearly_and_a_rerun_resumes_without_loss(
    tmp_path: Path, api: AssessmentRestSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSESSMENT_SECRET", CLIENT_SECRET)
    project = Project(rest_project(tmp_path, api, chunk_size=5))
    api.expire_tokens_after(3, new_secret="rotated-secret")  # token and secret both rotated
    failed = Sync(project, "results").run()
    assert failed.status == "failed"
    assert "refused the client credentials (HTTP 401)" in failed.error
    assert CLIENT_SECRET not in failed.error
    written = len(ats.out_rows(tmp_path, "assessment_results"))
    assert 0 < written < len(api.results)

    monkeypatch.setenv("ASSESSMENT_SECRET", "rotated-secret")
    rerun = Sync(Project(project.path), "results").run()
    assert rerun.status == "succeeded", rerun.error
    assert rerun.counts.read < len(api.results), "the rerun resumes on its page, not from the start"
    stored = ats.out_rows(tmp_path, "assessment_results")
    assert sorted(r["remote_id"] for r in stored) == sorted(api.results)


def test_rest_cursor_paging_and_epoch_ms_filters(api: AssessmentRestSimulator) -> None:
    config = rest_config(api, pagination="cursor", updated_since_format="epoch_ms")
    batches = list(AssessmentSource().read_batches(LOG, config, "results", None, {"chunk_size": 1000}))
    assert sum(len(b) for b in batches) == len(api.results)
    state = batches[-1].state
    assert state is not None and "pass" not in state
    api.rescore("R000003", 12)
    mark = len(api.requests)
    again = list(AssessmentSource().read_batches(LOG, config, "results", state, {"chunk_size": 1000}))
    assert [r for b in again for r in b.frame["result_id"]] == ["R000003"]
    asked = [path for _, path, _ in api.requests[mark:] if path.startswith(RESULTS_PATH)]
    assert all("updated_since=" in p and p.split("updated_since=")[1][:13].isdigit() for p in asked)
