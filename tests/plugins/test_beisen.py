"""The ``beisen`` connector against its simulator, over loopback HTTP, into SQLite.

Check (both token endpoints), discover, full and incremental reads by time window and batch
(a page of 429s with Retry-After waited out, a token expired midway and fetched again), the
shipped mappings into the canonical store with personal data sealed, and a ``hub sync``
killed midway then rerun.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from airbyte_cdk.models import Status, SyncMode
from hub_beisen.source import BeisenSource, Candidates

from hub.engine import Sync
from hub.project import Project
from hub.sandbox import Faults
from hub.sandbox.beisen import BeisenSimulator
from tests import ats_helpers as ats

LOG = logging.getLogger("test.beisen")
STREAMS = ("candidates", "applications", "jobs", "offers")
API = "/RecruitV6/api/v1/"


@pytest.fixture
def sim() -> Iterator[BeisenSimulator]:
    with BeisenSimulator(count=25, seed=5, batch_size=6) as simulator:  # Beisen's limit: 1000 a minute
        yield simulator


def config_of(sim: BeisenSimulator, **extra: Any) -> dict[str, Any]:
    start = datetime.now(UTC) - timedelta(days=40)
    return {
        "base_url": sim.url,
        "auth_type": "app_key",
        "app_key": sim.app_key,
        "app_secret": sim.app_secret,
        "start_date": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "window_days": 10,
        **extra,
    }


def tenant_config(sim: BeisenSimulator, **extra: Any) -> dict[str, Any]:
    config = config_of(
        sim, auth_type="tenant", tenant_id=sim.tenant_id, app_id=sim.app_id, secret=sim.app_secret
    )
    del config["app_key"], config["app_secret"]
    return {**config, **extra}


#: one Airbyte read: records, STATE blobs and stream errors
read = ats.reader(BeisenSource)


# -- check / discover -------------------------------------------------------------------------------


def test_check_with_either_token_endpoint_and_clear_refusals(sim: BeisenSimulator) -> None:
    source = BeisenSource()
    assert source.check(LOG, config_of(sim)).status == Status.SUCCEEDED
    assert source.check(LOG, tenant_config(sim)).status == Status.SUCCEEDED
    paths = [path for _, _, path, _ in sim.timeline]
    assert "/token" in paths and "/OAuth/Token" in paths

    wrong_secret = source.check(LOG, config_of(sim, app_secret="not-the-beisen-secret"))
    assert wrong_secret.status == Status.FAILED
    assert "invalid_client" in wrong_secret.message and "app_key/app_secret" in wrong_secret.message
    wrong_tenant = source.check(LOG, tenant_config(sim, tenant_id=1))
    assert wrong_tenant.status == Status.FAILED and "invalid_tenantid" in wrong_tenant.message
    assert "not-the-beisen-secret" not in wrong_secret.message
    missing = source.check(LOG, {"base_url": sim.url, "auth_type": "tenant", "tenant_id": 1})
    assert missing.status == Status.FAILED and "app_id and secret" in missing.message


def test_discover_and_spec(sim: BeisenSimulator) -> None:
    source = BeisenSource()
    streams = {s.name: s for s in source.discover(LOG, config_of(sim)).streams}
    assert set(streams) == set(STREAMS)
    assert streams["candidates"].source_defined_primary_key == [["applicantId"]]
    assert streams["applications"].source_defined_primary_key == [["applyId"]]
    assert streams["jobs"].default_cursor_field == ["modifiedDate"]
    assert all(SyncMode.incremental in s.supported_sync_modes for s in streams.values())
    properties = source.spec(LOG).connectionSpecification["properties"]
    assert properties["app_secret"]["airbyte_secret"] and properties["secret"]["airbyte_secret"]


def test_gateway_answers_like_beisen(sim: BeisenSimulator) -> None:
    url = sim.url + API + "Job/GetJobList"
    missing = requests.post(url, json={}, timeout=5)
    assert (missing.status_code, missing.json()) == (400, {"message": "Authorization header is empty"})
    bad = requests.post(url, json={}, headers={"Authorization": "Bearer nope"}, timeout=5)
    assert (bad.status_code, bad.json()) == (401, {"message": "un-authorized"})
    token = requests.post(
        sim.url + "/token",
        json={"grant_type": "client_credentials", "app_key": sim.app_key, "app_secret": sim.app_secret},
        timeout=5,
    ).json()
    assert token["token_type"] == "bearer" and token["expires_in"] == 7200 and token["refresh_token"]
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    backwards = requests.post(
        url,
        json={"startTime": "2026-02-01T00:00:00", "endTime": "2026-01-01T00:00:00"},
        headers=headers,
        timeout=5,
    ).json()
    assert backwards == {"data": None, "code": 400, "message": "开始时间不能大于等于结束时间"}


# -- reads ------------------------------------------------------------------------------------------


def test_full_read_waits_out_429s_and_fetches_a_new_token_when_it_expires_midway(
    sim: BeisenSimulator,
) -> None:
    sim.faults = Faults(throttle=2, retry_after=1, only="GetApplyListByModifiedTime")
    sim.expire_tokens_after(5)
    records, states, errors = read(config_of(sim), "applications", SyncMode.full_refresh)

    assert errors == []
    assert sorted(r["applyId"] for r in records) == sorted(a.id for a in sim.applies)
    ats.assert_waited_out_429s(sim.timeline, 2)
    ats.assert_token_refetched(sim.timeline, lambda path, status: status == 401, "/token")
    batches = [p for _, _, p, s in sim.timeline if p.endswith("GetApplyListByModifiedTime") and s == 200]
    assert len(batches) > 5  # several windows, and batches within them
    assert states and set(states[-1]) == {"ModifiedTime"}
    sample = next(r for r in records if r["applyId"] == sim.applies[0].id)
    assert sample["stage"]["phase"] == sample["ProcessPhaseName"] and sample["candidate_remote_id"]


def test_candidate_profiles_are_flattened_with_the_og_fallback(sim: BeisenSimulator) -> None:
    records, _, errors = read(tenant_config(sim), "candidates")
    assert errors == []
    assert sorted(r["applicantId"] for r in records) == sorted(a.id for a in sim.applicants)
    by_id = {r["applicantId"]: r for r in records}
    first = by_id[sim.applicants[0].id]
    person = sim.applicants[0].person
    assert first["IDNumber"] == person.id_number and first["Mobile"] == person.phone
    assert first["IDType"] == "1" and first["IDTypeText"] == "身份证"
    assert first["ResumeUrl"].startswith(sim.url)
    assert "工作经验" in requests.get(first["ResumeUrl"], timeout=5).text
    # The applicant whose gender the parser could not read: -32767, the raw text in OgGender.
    unreadable = next(a for a in sim.applicants if a.unreadable_gender)
    assert by_id[unreadable.id]["Gender"] in ("男", "女")
    assert Candidates.flatten({"applicantId": "x", "fieldValues": [{"name": "A", "value": "1"}]}) == {
        "applicantId": "x",
        "A": "1",
    }

    others = [read(config_of(sim), name)[0] for name in ("applications", "jobs", "offers")]
    private = json.dumps(others, ensure_ascii=False)
    for applicant in sim.applicants:  # contacts and ID numbers travel with candidates only
        assert applicant.person.phone not in private and applicant.person.id_number not in private


def test_second_incremental_run_reads_only_what_changed_since_the_saved_cursor(sim: BeisenSimulator) -> None:
    config = config_of(sim, lookback_seconds=0)
    cursors = {}
    for stream in STREAMS:
        records, states, errors = read(config, stream)
        assert errors == [] and records
        cursors[stream] = states[-1]

    applicants = [sim.applicants[1].id, sim.applicants[7].id]
    sim.touch_applicants(*applicants)
    applies = [sim.applies[2].id]
    sim.touch_applies(*applies)
    sim.touch_jobs(sim.jobs[4].id)
    sim.touch_offers(sim.offers[0].id, status="已拒绝")
    time.sleep(1.1)  # Beisen's filters are to the second: let the change's second pass

    expected = {
        "candidates": ("applicantId", set(applicants)),
        "applications": ("applyId", set(applies)),
        "jobs": ("jobId", {sim.jobs[4].id}),
        "offers": ("offerId", {sim.offers[0].id}),
    }
    for stream, (key, ids) in expected.items():
        records, states, errors = read(config, stream, state=cursors[stream])
        assert errors == []
        assert {r[key] for r in records} == ids and len(records) == len(ids), stream
        again, _, _ = read(config, stream, state=states[-1])
        assert again == [], stream
    offer = read(config, "offers", state=cursors["offers"])[0][0]
    assert offer["status"] == "已拒绝"


# -- through the engine ---------------------------------------------------------------------------


#: the app secret is read from the environment, as a project would
SECRETS = {"app_secret": "BEISEN_APP_SECRET"}


def test_mapped_pipeline_fills_the_canonical_store_with_personal_data_sealed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with BeisenSimulator(count=25, seed=5, rate_limit=None) as sim:
        sim.jobs[0].deleted = 1
        monkeypatch.setenv("BEISEN_APP_SECRET", sim.app_secret)
        config = ats.mapped_project(tmp_path, "beisen", STREAMS, config_of(sim), SECRETS)
        project = Project(config)
        result = Sync(project, "beisen").run()
        assert result.status == "succeeded", result.error

        candidates = ats.out_rows(tmp_path, "candidates")
        assert sorted(r["remote_id"] for r in candidates) == sorted(a.id for a in sim.applicants)
        applications = ats.out_rows(tmp_path, "applications")
        assert len(applications) == len(sim.applies)
        assert {r["status"] for r in applications} <= {"ACTIVE", "REJECTED", "HIRED"}
        assert all(json.loads(r["current_stage"])["name"] for r in applications)
        jobs = {r["remote_id"]: r for r in ats.out_rows(tmp_path, "jobs")}
        assert len(jobs) == len(sim.jobs)
        assert jobs[sim.jobs[0].id]["remote_deleted_at"] and not jobs[sim.jobs[1].id]["remote_deleted_at"]
        offers = ats.out_rows(tmp_path, "offers")
        assert len(offers) == len(sim.offers)
        for row in offers:
            assert row["compensation"].startswith("hub1.") and row["custom_fields"].startswith("hub1.")
        offer = sim.offers[0]
        sealed = next(r for r in offers if r["remote_id"] == offer.id)
        pay = json.loads(ats.unsealed(project, "offers", sealed, "compensation"))
        assert pay == {
            "amount": {"amount": str(offer.salary), "currency": "CNY"},
            "pay_period": {
                "value": {1: "MONTH", 2: "YEAR"}[offer.salary_type],
                "raw": str(offer.salary_type),
            },
        }

        assert ats.persons_linked(project) == len(sim.applicants)
        ats.assert_nothing_in_clear(tmp_path, (a.person for a in sim.applicants))

        again = Sync(project, "beisen").run()
        assert again.status == "succeeded" and again.counts.inserted == again.counts.updated == 0


def test_sync_killed_midway_then_rerun_loses_and_duplicates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with BeisenSimulator(count=60, seed=9, rate_limit=None, batch_size=4, latency=0.05) as sim:
        monkeypatch.setenv("BEISEN_APP_SECRET", sim.app_secret)
        settings = config_of(sim, window_days=1)
        config = ats.unmapped_project(tmp_path, "beisen", "applications", settings, SECRETS, chunk_size=4)
        ats.assert_killed_sync_resumes(
            config,
            "beisen",
            stream="applications",
            table="beisen_applications",
            key=lambda r: r["applyId"],
            expected=[a.id for a in sim.applies],
        )


def test_shipped_mappings_check_clean() -> None:
    ats.check_mappings("beisen", len(STREAMS))
