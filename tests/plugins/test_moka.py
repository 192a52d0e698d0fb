"""The ``moka`` connector against its simulator, over loopback HTTP, into SQLite.

Check, discover, full and incremental reads (a page of 429s with Retry-After waited out, an
access token expired midway and fetched again), the shipped mappings into the canonical store
with personal data sealed, and a ``hub sync`` killed midway then rerun.
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
from airbyte_cdk.sources.streams.call_rate import CallRateLimitHit
from airbyte_cdk.utils import AirbyteTracedException
from hub_moka.source import MokaSettings, MokaSource, checked_body, shared_budget

from hub.engine import Sync
from hub.project import Project
from hub.sandbox import Faults
from hub.sandbox.moka import MokaSimulator
from tests import ats_helpers as ats

LOG = logging.getLogger("test.moka")
STREAMS = ("candidates", "applications", "jobs", "interviews", "offers", "attachments")


@pytest.fixture
def sim() -> Iterator[MokaSimulator]:
    with MokaSimulator(count=25, seed=7) as simulator:  # Moka's own limit: 60 requests a minute
        yield simulator


def config_of(sim: MokaSimulator, **extra: Any) -> dict[str, Any]:
    start = datetime.now(UTC) - timedelta(days=40)
    return {
        "base_url": sim.url,
        "auth_type": "oauth2",
        "client_id": sim.client_id,
        "client_secret": sim.client_secret,
        "org_id": sim.org_id,
        "start_date": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "window_days": 10,
        "requests_per_minute": 600,
        **extra,
    }


#: one Airbyte read: records, STATE blobs and stream errors
read = ats.reader(MokaSource)


def token_fetches(sim: MokaSimulator, since: int = 0) -> int:
    return sum(
        1 for _, _, path, status in sim.timeline[since:] if path.endswith("/getToken") and status == 200
    )


# -- check / discover -------------------------------------------------------------------------------


def test_check_accepts_both_auth_modes_and_names_rejected_credentials(sim: MokaSimulator) -> None:
    source = MokaSource()
    assert source.check(LOG, config_of(sim)).status == Status.SUCCEEDED
    basic = config_of(sim, auth_type="api_key", api_key=sim.api_key)
    assert source.check(LOG, basic).status == Status.SUCCEEDED

    wrong_key = source.check(LOG, config_of(sim, auth_type="api_key", api_key="not-the-moka-key"))
    assert wrong_key.status == Status.FAILED
    assert "does not know this API key" in wrong_key.message
    wrong_secret = source.check(LOG, config_of(sim, client_secret="not-the-secret"))
    assert wrong_secret.status == Status.FAILED
    assert "110020" in wrong_secret.message and "client_secret" in wrong_secret.message
    for status in (wrong_key, wrong_secret):
        assert "not-the" not in status.message
    missing = source.check(LOG, {"base_url": sim.url, "auth_type": "oauth2", "client_id": "x"})
    assert missing.status == Status.FAILED and "client_secret" in missing.message


def test_token_endpoint_failures_are_retried_after_retry_after(sim: MokaSimulator) -> None:
    sim.token_faults = 2
    assert MokaSource().check(LOG, config_of(sim)).status == Status.SUCCEEDED
    calls = [(t, status) for t, _, path, status in sim.timeline if path.endswith("/getToken")]
    assert [status for _, status in calls] == [503, 503, 200]
    assert calls[1][0] - calls[0][0] >= 1.0 and calls[2][0] - calls[1][0] >= 1.0


def test_discover_and_spec(sim: MokaSimulator) -> None:
    source = MokaSource()
    streams = {s.name: s for s in source.discover(LOG, config_of(sim)).streams}
    assert set(streams) == set(STREAMS)
    for stream in streams.values():
        assert SyncMode.incremental in stream.supported_sync_modes
    assert streams["candidates"].source_defined_primary_key == [["candidateId"]]
    assert streams["interviews"].source_defined_primary_key == [["id"], ["applicationId"]]
    assert streams["applications"].default_cursor_field == ["updatedAt"]
    assert streams["interviews"].default_cursor_field == ["createdAt"]
    assert "citizenId" in streams["candidates"].json_schema["properties"]
    properties = source.spec(LOG).connectionSpecification["properties"]
    assert properties["api_key"]["airbyte_secret"] and properties["client_secret"]["airbyte_secret"]


def test_client_budget_is_shared_per_credential_and_stops_at_the_limit(sim: MokaSimulator) -> None:
    settings = MokaSettings.parse(config_of(sim, requests_per_minute=3))
    budget = shared_budget(settings)
    assert shared_budget(MokaSettings.parse(config_of(sim, requests_per_minute=3))) is budget
    request = requests.Request("POST", sim.url + "/api-platform/v3/applications/list_by_condition").prepare()
    for _ in range(3):
        budget.acquire_call(request, block=False)
    with pytest.raises(CallRateLimitHit) as hit:
        budget.acquire_call(request, block=False)
    assert timedelta(seconds=50) < hit.value.time_to_wait <= timedelta(minutes=1)


# -- reads ------------------------------------------------------------------------------------------


def test_full_read_waits_out_429s_and_fetches_a_new_token_when_it_expires_midway(sim: MokaSimulator) -> None:
    sim.faults = Faults(throttle=2, retry_after=1, only="list_by_condition")
    sim.expire_tokens_after(4)  # the 4th data request finds every token expired
    records, states, errors = read(config_of(sim), "applications", SyncMode.full_refresh)

    assert errors == []
    assert sorted(r["applicationId"] for r in records) == sorted(a.id for a in sim.applications)
    ats.assert_waited_out_429s(sim.timeline, 2)
    # Moka's answer to a dead token: HTTP 500, 无法识别的认证信息; the same page, with a new token
    token = "/api-platform/v1/auth/oauth2/getToken"
    ats.assert_token_refetched(sim.timeline, lambda path, status: status == 500 and "list_by" in path, token)
    assert token_fetches(sim) == 2
    assert states and set(states[-1]) == {"updatedAt"}
    sample = records[0]
    assert "candidateBaseInfo" not in sample and sample["candidate_remote_id"] == str(sample["candidateId"])


def test_streams_have_the_documented_shapes_and_carry_personal_data_once(sim: MokaSimulator) -> None:
    config = config_of(sim)
    candidates, _, errors = read(config, "candidates")
    assert errors == []
    assert {c["candidateId"] for c in candidates} == {c.id for c in sim.candidates}
    one = next(c for c in candidates if c["candidateId"] == sim.candidates[0].id)
    assert one["citizenId"] == sim.candidates[0].person.id_number
    assert one["phone"] == sim.candidates[0].person.phone and one["tags"]

    interviews, _, _ = read(config, "interviews")
    assert {(i["id"], i["applicationId"]) for i in interviews} == {
        (i.id, i.application.id) for i in sim.interviews
    }
    offers, _, _ = read(config, "offers")
    assert {o["applicationId"] for o in offers} == {o.application.id for o in sim.offers}
    assert all(isinstance(o["salaryNumber"], str) for o in offers)
    jobs, _, _ = read(config, "jobs")
    assert {j["id"] for j in jobs} == {j.id for j in sim.jobs}
    attachments, _, _ = read(config, "attachments")
    assert len(attachments) == len(sim.applications)
    resume = requests.get(attachments[0]["url"], timeout=5)
    assert resume.status_code == 200 and "工作经验" in resume.text

    private = json.dumps([interviews, offers, jobs, attachments], ensure_ascii=False)
    for candidate in sim.candidates:  # contacts and ID numbers travel with candidates only
        person = candidate.person
        assert person.phone not in private and person.email not in private and person.id_number not in private


def test_second_incremental_run_reads_only_what_changed_since_the_saved_cursor(sim: MokaSimulator) -> None:
    config = config_of(sim, lookback_seconds=0)
    first: dict[str, dict[str, Any]] = {}
    for stream in ("applications", "candidates", "jobs", "offers"):
        records, states, errors = read(config, stream)
        assert errors == [] and records
        first[stream] = states[-1]

    moved = [sim.applications[0].id, sim.applications[5].id]
    sim.touch_applications(*moved)
    changed = sim.candidates[3]
    via_candidate = sim.touch_candidates(changed.id)
    offer = sim.offers[0]
    sim.touch_offers(offer.application.id, status="rejected")
    job = sim.jobs[2]
    sim.touch_jobs(job.id)
    time.sleep(0.05)  # the changes happened before the next sync starts

    applications, states, _ = read(config, "applications", state=first["applications"])
    expected = {*moved, *via_candidate, offer.application.id}
    assert {a["applicationId"] for a in applications} == expected
    assert len(applications) == len(expected)
    candidates, _, _ = read(config, "candidates", state=first["candidates"])
    assert {c["candidateId"] for c in candidates} == {
        a.candidate.id for a in sim.applications if a.id in expected
    }
    assert next(c for c in candidates if c["candidateId"] == changed.id)["lastCompany"] == "新公司科技"
    offers, _, _ = read(config, "offers", state=first["offers"])
    assert [(o["applicationId"], o["status"]) for o in offers if o["id"] == offer.id] == [
        (offer.application.id, "rejected")
    ]
    jobs, _, _ = read(config, "jobs", state=first["jobs"])
    assert [(j["id"], j["status"]) for j in jobs] == [(job.id, "closed")]

    nothing, _, _ = read(config, "applications", state=states[-1])
    assert nothing == []
    # The default lookback re-reads the last 5 minutes before the cursor (late writes at Moka).
    overlap, _, _ = read({**config, "lookback_seconds": 300}, "applications", state=states[-1])
    assert {a["applicationId"] for a in overlap} == expected


def test_envelope_errors_are_clear_and_mask_personal_data(sim: MokaSimulator) -> None:
    _, _, errors = read(config_of(sim, org_id="wrong-org"), "offers")
    assert errors and "getOfferInfos" in errors[0] and "300400" in errors[0]
    _, _, errors = read(config_of(sim, org_id=""), "offers")
    assert errors and "org_id" in errors[0]

    answer = requests.Response()
    answer.status_code = 200
    answer._content = '{"code": 300515, "msg": "候选人 13800138000 / zhang.san@example.com 不存在"}'.encode()
    answer.request = requests.Request("POST", sim.url + "/api-platform/v3/x").prepare()
    with pytest.raises(AirbyteTracedException) as failure:
        checked_body(answer, (200,))
    assert "300515" in failure.value.message
    assert "13800138000" not in failure.value.message and "zhang.san@example.com" not in failure.value.message


# -- through the engine ---------------------------------------------------------------------------


#: the client secret is read from the environment, as a project would
SECRETS = {"client_secret": "MOKA_CLIENT_SECRET"}


def test_mapped_pipeline_fills_the_canonical_store_with_personal_data_sealed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with MokaSimulator(count=25, seed=7, rate_limit=None) as sim:
        monkeypatch.setenv("MOKA_CLIENT_SECRET", sim.client_secret)
        config = ats.mapped_project(tmp_path, "moka", STREAMS, config_of(sim), SECRETS)
        project = Project(config)
        result = Sync(project, "moka").run()
        assert result.status == "succeeded", result.error

        candidates = ats.out_rows(tmp_path, "candidates")
        assert sorted(r["remote_id"] for r in candidates) == sorted(str(c.id) for c in sim.candidates)
        applications = ats.out_rows(tmp_path, "applications")
        assert len(applications) == len(sim.applications)
        assert {r["status"] for r in applications} <= {"ACTIVE", "REJECTED", "WITHDRAWN", "HIRED"}
        assert "HIRED" in {r["status"] for r in applications}
        stages = [json.loads(r["current_stage"]) for r in applications]
        assert all(set(s) == {"remote_id", "name"} for s in stages)
        assert len(ats.out_rows(tmp_path, "jobs")) == len(sim.jobs)
        interviews = ats.out_rows(tmp_path, "interviews")
        assert len(interviews) == len(sim.interviews)
        assert {r["status"] for r in interviews} <= {"SCHEDULED", "COMPLETE", "CANCELLED"}
        assert len(ats.out_rows(tmp_path, "attachments")) == len(sim.applications)
        offers = ats.out_rows(tmp_path, "offers")
        assert len(offers) == len(sim.offers)

        # Sealed at rest: offer pay, custom fields (cross references included), rejection reasons.
        for row in offers:
            assert row["compensation"].startswith("hub1.") and row["custom_fields"].startswith("hub1.")
        offer = sim.offers[0]
        sealed = next(r for r in offers if r["remote_id"] == str(offer.id))
        pay = json.loads(ats.unsealed(project, "offers", sealed, "compensation"))
        period = {3: "MONTH", 4: "YEAR"}[offer.salary_type]
        assert pay == {
            "amount": {"amount": str(offer.salary), "currency": "CNY"},
            "pay_period": {"value": period, "raw": str(offer.salary_type)},
        }
        assert all(r["reject_reason"] is None or r["reject_reason"].startswith("hub1.") for r in applications)

        # Each candidate linked to a person (by ID number, then e-mail, then phone + name).
        assert ats.persons_linked(project) == len(sim.candidates)

        # No ID number, phone, e-mail or salary in clear anywhere hub keeps data.
        ats.assert_nothing_in_clear(tmp_path, (c.person for c in sim.candidates), also=[f'"{offer.salary}"'])

        again = Sync(project, "moka").run()
        assert again.status == "succeeded" and again.counts.inserted == again.counts.updated == 0


def test_sync_killed_midway_then_rerun_loses_and_duplicates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with MokaSimulator(count=60, seed=11, rate_limit=None, latency=0.05) as sim:
        monkeypatch.setenv("MOKA_CLIENT_SECRET", sim.client_secret)
        settings = config_of(sim, window_days=1)
        config = ats.unmapped_project(tmp_path, "moka", "applications", settings, SECRETS, chunk_size=5)
        ats.assert_killed_sync_resumes(
            config,
            "moka",
            stream="applications",
            table="moka_applications",
            key=lambda r: int(r["applicationId"]),
            expected=[a.id for a in sim.applications],
        )


def test_shipped_mappings_check_clean() -> None:
    ats.check_mappings("moka", len(STREAMS))


def test_a_sync_through_429s_prints_no_airbyte_message_to_stdout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """The CDK prints a TRACE "rate limited" message on a 429: hub keeps stdout its own."""
    with MokaSimulator(count=10, seed=3, rate_limit=None) as sim:
        monkeypatch.setenv("MOKA_CLIENT_SECRET", sim.client_secret)
        config = ats.mapped_project(tmp_path, "moka", STREAMS, config_of(sim), SECRETS)
        sim.faults = Faults(throttle=2, retry_after=0.1)
        capfd.readouterr()
        result = Sync(Project(config), "moka").run()
        assert result.status == "succeeded", result.error
        assert 429 in [status for *_, status in sim.requests]
    printed = capfd.readouterr().out
    assert '"type": "TRACE"' not in printed and '"type":"TRACE"' not in printed, printed[:500]
