"""The ``hackerrank`` connector against its simulator, over loopback HTTP, into SQLite.

Check, discover, full and incremental reads (429 + Retry-After honoured), the canonical
mappings (scores sealed), a key rotated mid-sync, a ``hub sync`` killed midway, and a result
joined to the ATS candidate's person by e-mail.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airbyte_cdk.models import Status, SyncMode
from airbyte_cdk.utils.traced_exception import AirbyteTracedException
from hub_hackerrank import source as hackerrank

from hub.engine import Sync
from hub.identity import IdentityResolver
from hub.project import Project
from hub.sandbox import Faults
from hub.sandbox.hackerrank import DEFAULT_KEY, STATUS_COMPLETED, HackerRankSimulator
from tests import ats_helpers as ats
from tests.conftest import run_cli

ORDERS_MAPPING = ats.MAPPINGS / "hackerrank_candidates_assessment_order.yaml"
RESULTS_MAPPING = ats.MAPPINGS / "hackerrank_results_assessment_result.yaml"
LOG = logging.getLogger("test.hackerrank")


@pytest.fixture
def sim() -> Iterator[HackerRankSimulator]:
    with HackerRankSimulator(seed=3, tests=2, candidates_per_test=30) as simulator:
        yield simulator


def config_of(sim: HackerRankSimulator, **extra: Any) -> dict[str, Any]:
    return {"api_key": DEFAULT_KEY, "base_url": sim.url + "/x/api/v3", "page_size": 10, **extra}


def read(
    config: dict[str, Any], stream: str, mode: SyncMode, state: dict[str, Any] | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Records and STATE blobs of one Airbyte read of ``stream`` (which must not fail)."""
    records, states, errors = ats.read_stream(hackerrank.HackerRankSource(), config, stream, mode, state)
    assert errors == []
    return records, states


def finished(sim: HackerRankSimulator) -> set[tuple[str, str]]:
    return {(test_id, c["id"]) for test_id, c in sim.completed()}


def write_project(
    tmp_path: Path,
    sim: HackerRankSimulator,
    *,
    chunk_size: int = 10,
    rescore_days: float = 0,
    extra: str = "",
) -> Path:
    settings = {
        "api_key": {"env": "HR_KEY"},
        "base_url": f"{sim.url}/x/api/v3",
        "page_size": 10,
        "rescore_window_days": rescore_days,
    }
    streams = [
        ats.stream_entry("candidates", "assessment_orders", mapping=ORDERS_MAPPING, sync_mode="incremental"),
        ats.stream_entry("results", "assessment_results", mapping=RESULTS_MAPPING, sync_mode="incremental"),
    ]
    return ats.write_hub_toml(
        tmp_path,
        connector="hackerrank",
        settings=settings,
        streams=streams,
        chunk_size=chunk_size,
        identity=["ats_export", "hackerrank"],
        extra=extra,
    )


def detail_requests(sim: HackerRankSimulator, since: int = 0) -> list[str]:
    return [p for _, _, p, status in sim.timeline[since:] if p.count("/candidates/") and status == 200]


# -- check / discover -------------------------------------------------------------------------------


def test_check_accepts_bearer_and_basic_keys_and_names_a_rejected_one(sim: HackerRankSimulator) -> None:
    source = hackerrank.HackerRankSource()
    assert source.check(LOG, config_of(sim)).status == Status.SUCCEEDED
    assert source.check(LOG, config_of(sim, auth="basic")).status == Status.SUCCEEDED
    refused = source.check(LOG, config_of(sim, api_key="not-the-key"))
    assert refused.status == Status.FAILED
    assert "HTTP 401" in refused.message and "revoked or rotated" in refused.message
    assert "not-the-key" not in refused.message


def test_discover_describes_three_streams_with_keys_and_cursors(sim: HackerRankSimulator) -> None:
    streams = {s.name: s for s in hackerrank.HackerRankSource().discover(LOG, config_of(sim)).streams}
    assert set(streams) == {"tests", "candidates", "results"}
    assert streams["tests"].supported_sync_modes == [SyncMode.full_refresh]
    for name in ("candidates", "results"):
        assert SyncMode.incremental in streams[name].supported_sync_modes
        assert streams[name].default_cursor_field == ["updated_at"]
        assert streams[name].source_defined_primary_key == [["test_id"], ["id"]]
    assert "question_scores" in streams["results"].json_schema["properties"]


def test_next_links_to_another_host_are_not_followed(sim: HackerRankSimulator) -> None:
    stream = hackerrank.Tests(hackerrank.HackerRankConfig(config_of(sim)))
    assert stream.follow("/x/api/v3/tests?limit=10&offset=10").startswith(sim.url + "/x/api/v3/")
    with pytest.raises(AirbyteTracedException, match="another host"):
        stream.follow("https://elsewhere.example.com/x/api/v3/tests?offset=10")


# -- reads ------------------------------------------------------------------------------------------


def test_full_read_follows_next_links_and_waits_out_a_page_of_429s(sim: HackerRankSimulator) -> None:
    sim.faults = Faults(throttle=2, retry_after=1, only="/candidates")
    records, states = read(config_of(sim), "results", SyncMode.full_refresh)

    assert {(r["test_id"], r["id"]) for r in records} == finished(sim)
    assert len(records) == len(finished(sim))  # each once
    ats.assert_waited_out_429s(sim.timeline, 2)
    # Every list page was read (next links followed to the end), 10 per page.
    pages = [p for _, _, p, s in sim.timeline if p.endswith("/candidates") and s == 200]
    assert len(pages) == 2 * 3
    sample = next(r for r in records if r["status"] == STATUS_COMPLETED)
    assert sample["question_scores"] and all(set(q) == {"label", "score"} for q in sample["question_scores"])
    assert "solution to" not in json.dumps(sample)  # submitted code never leaves the connector
    assert sample["candidate_remote_id"].startswith("C")
    assert states[-1]["tests"] and "pass" not in states[-1]


def test_incremental_reads_only_candidates_changed_since_the_cursor(sim: HackerRankSimulator) -> None:
    config = config_of(sim, rescore_window_days=0)
    first, states = read(config, "results", SyncMode.incremental)
    assert len(first) == len(finished(sim))

    test_id = sim.tests[1]["id"]
    waiting = [c for c in sim.candidates[test_id] if c["status"] != STATUS_COMPLETED]
    for candidate in waiting[:2]:
        sim.finish_attempt(test_id, candidate["id"])
    invited = sim.invite(test_id, "new.person@example.com", "新人")
    mark = len(sim.timeline)
    second, states = read(config, "results", SyncMode.incremental, states[-1])
    assert sorted(r["id"] for r in second) == sorted(c["id"] for c in waiting[:2])
    assert len(detail_requests(sim, mark)) == 2  # no detail request for what did not change

    orders, _ = read(config, "candidates", SyncMode.incremental, None)
    assert len(orders) == sum(len(c) for c in sim.candidates.values())
    assert any(o["id"] == invited["id"] and o["status"] == -1 for o in orders)

    mark = len(sim.timeline)
    third, _ = read(config, "results", SyncMode.incremental, states[-1])
    assert third == [] and detail_requests(sim, mark) == []


def test_rescore_window_rereads_recent_attempts(sim: HackerRankSimulator) -> None:
    config = config_of(sim, rescore_window_days=3)
    _, states = read(config, "results", SyncMode.incremental)
    test_id = sim.tests[0]["id"]
    waiting = next(c for c in sim.candidates[test_id] if c["status"] != STATUS_COMPLETED)
    sim.finish_attempt(test_id, waiting["id"])
    second, states = read(config, "results", SyncMode.incremental, states[-1])
    assert [r["id"] for r in second] == [waiting["id"]]
    # Re-scored without a new timestamp: still within the window, so read again.
    sim.find(test_id, waiting["id"])["score"] = 1
    third, _ = read(config, "results", SyncMode.incremental, states[-1])
    assert [r["id"] for r in third] == [waiting["id"]]


# -- through the engine ---------------------------------------------------------------------------


def test_sync_maps_orders_and_results_and_seals_the_scores(
    tmp_path: Path, sim: HackerRankSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HR_KEY", DEFAULT_KEY)
    project = Project(write_project(tmp_path, sim))
    result = Sync(project, "hackerrank").run()
    assert result.status == "succeeded", result.error

    invitations = sum(len(c) for c in sim.candidates.values())
    orders, results = (
        ats.out_rows(tmp_path, "assessment_orders"),
        ats.out_rows(tmp_path, "assessment_results"),
    )
    assert len(orders) == invitations and len({o["remote_id"] for o in orders}) == invitations
    assert {tuple(r["remote_id"].split("\x1f")) for r in results} == finished(sim)
    for row in results:
        assert row["status"] == "SCORED"
        assert row["completed_at"]
        for sealed in ("score", "max_score", "result_url", "sub_results", "custom_fields"):
            assert row[sealed].startswith("hub1."), sealed  # restricted / encrypted: never in clear
    assert all(o["access_url"].startswith("hub1.") for o in orders)
    assert {o["status"] for o in orders} <= {"INVITED", "IN_PROGRESS", "COMPLETED"}
    # No contact detail is stored with an order or a result, in any column.
    emails = {c["email"] for items in sim.candidates.values() for c in items}
    stored = json.dumps([orders, results], default=str)
    assert not any(email in stored for email in emails)
    assert not any(name in stored for name in ("email", "full_name"))

    again = Sync(project, "hackerrank").run()
    assert again.status == "succeeded" and again.counts.read == 0


def test_hub_sync_json_stays_json_through_429s(
    tmp_path: Path, sim: HackerRankSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HR_KEY", DEFAULT_KEY)
    sim.faults = Faults(throttle=1, retry_after=1, only="/candidates")
    done = run_cli(["sync", "hackerrank", "--json"], write_project(tmp_path, sim))
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)  # nothing but the report on stdout, 429 or not
    assert report["status"] == "succeeded" and report["streams"]["results"]["inserted"] == len(finished(sim))
    assert DEFAULT_KEY not in done.stdout + done.stderr


def test_a_key_revoked_midway_fails_clearly_and_a_rerun_with_the_new_key_loses_nothing(
    tmp_path: Path, sim: HackerRankSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HR_KEY", DEFAULT_KEY)
    project = Project(write_project(tmp_path, sim, chunk_size=5))
    # Orders: the tests page + 2 x 3 list pages. Results: the tests page, then per test its 3 list
    # pages and one detail per finished attempt. Revoked two requests into the second test.
    first_test = sum(1 for test_id, _ in sim.completed() if test_id == sim.tests[0]["id"])
    sim.revoke_after(DEFAULT_KEY, requests=7 + 1 + 3 + first_test + 2)
    failed = Sync(project, "hackerrank").run()
    assert failed.status == "failed"
    assert "rejected the API key (HTTP 401)" in failed.error and "revoked or rotated" in failed.error
    assert DEFAULT_KEY not in failed.error
    partial = ats.out_rows(tmp_path, "assessment_results")
    assert 0 < len(partial) < len(finished(sim)), "the revocation should land midway through results"

    sim.add_key("rotated-key")
    monkeypatch.setenv("HR_KEY", "rotated-key")
    rerun = Sync(Project(project.path), "hackerrank").run()
    assert rerun.status == "succeeded", rerun.error
    assert rerun.streams["results"].read < len(finished(sim)), "the rerun resumes, it does not start over"
    results = ats.out_rows(tmp_path, "assessment_results")
    assert {tuple(r["remote_id"].split("\x1f")) for r in results} == finished(sim)
    assert len(results) == len(finished(sim))
    assert len(ats.out_rows(tmp_path, "assessment_orders")) == sum(len(c) for c in sim.candidates.values())


def test_sigkill_midway_then_rerun_loses_and_duplicates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with HackerRankSimulator(seed=5, tests=3, candidates_per_test=20, latency=0.05) as sim:
        config = write_project(tmp_path, sim, chunk_size=5)
        monkeypatch.setenv("HR_KEY", DEFAULT_KEY)
        # The orders are all written first; kill once results past a checkpoint (the first
        # list page's) are committed too.
        ats.assert_killed_sync_resumes(
            config,
            "hackerrank",
            stream="results",
            table="assessment_results",
            key=lambda r: tuple(r["remote_id"].split("\x1f")),
            expected=sorted(finished(sim)),
            at_least=15,
        )
        orders = ats.out_rows(tmp_path, "assessment_orders")
        invitations = sum(len(c) for c in sim.candidates.values())
        assert len(orders) == len({o["remote_id"] for o in orders}) == invitations


# -- identity -------------------------------------------------------------------------------------


def test_a_result_links_to_the_person_of_the_ats_candidate_with_the_same_email(
    tmp_path: Path, sim: HackerRankSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    candidates = ats.write_ats_csv(tmp_path / "candidates.csv", count=60, seed=3)
    monkeypatch.setenv("HR_KEY", DEFAULT_KEY)
    config = write_project(tmp_path, sim, extra=ats.ats_export_toml(tmp_path / "candidates.csv"))
    project = Project(config)
    assert Sync(project, "ats").run().status == "succeeded"
    assert Sync(project, "hackerrank").run().status == "succeeded"

    resolver = IdentityResolver.for_project(project, project.identity_config)
    by_email = {c["email"]: c for c in candidates}
    checked = 0
    for test_id, candidate in sim.completed():
        ats_row = by_email[candidate["email"]]
        person = resolver.person_of("ats_export", ats_row["candidate_id"])
        assert person is not None
        assert resolver.person_of("hackerrank", f"{test_id}\x1f{candidate['id']}") == person
        assert resolver.find("email", candidate["email"]) == [person]
        checked += 1
    assert checked == len(finished(sim))

    email = sim.completed()[0][1]["email"]
    found = run_cli(["people", "find", "--email", email, "--json"], config)
    assert found.returncode == 0, found.stderr
    [summary] = json.loads(found.stdout)
    assert {"ats_export", "hackerrank"} <= set(summary["sources"])
    assert email not in found.stdout  # shown masked
