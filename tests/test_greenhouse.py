"""Greenhouse: the Harvest simulator, the shipped manifest connector, the default mappings.

Everything runs for real: the simulator on loopback HTTP, the manifest through hub_airbyte
in-process, syncs into SQLite (and once PostgreSQL) with hub's engine.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
import sqlalchemy as sa
import yaml
from airbyte_cdk.models import AirbyteStateMessageSerializer, SyncMode, Type
from airbyte_cdk.sources.declarative.concurrent_declarative_source import ConcurrentDeclarativeSource
from airbyte_cdk.test.catalog_builder import CatalogBuilder

from hub import identity_worker
from hub.engine import IN_FLIGHT, Sync
from hub.pii import open_destination_value
from hub.plugins import load_plugins
from hub.project import Project, collect_connectors
from hub.sandbox import Faults, RateLimit
from hub.sandbox.greenhouse import GreenhouseSimulator, webhook_request
from hub.store.models import PersonLink, PersonRow, Run
from tests.conftest import process_running

ROOT = Path(__file__).resolve().parent.parent
MAPPINGS = ROOT / "mappings"
VENDORED = Path(__file__).parent / "fixtures" / "greenhouse" / "airbyte_source_greenhouse_0_6_1"
#: (stream, mapping file, canonical store table), the convention of the canonical store
STREAMS = (
    ("candidates", "greenhouse_candidates.yaml", "candidates"),
    ("applications", "greenhouse_applications.yaml", "applications"),
    ("jobs", "greenhouse_jobs.yaml", "jobs"),
    ("offers", "greenhouse_offers.yaml", "offers"),
    ("scorecards", "greenhouse_scorecards.yaml", "scorecards"),
    ("scheduled_interviews", "greenhouse_scheduled_interviews.yaml", "interviews"),
    ("attachments", "greenhouse_attachments.yaml", "attachments"),
)
RESOURCES = ("candidates", "applications", "jobs", "offers", "scorecards", "scheduled_interviews")
LOG = logging.getLogger("test.greenhouse")


@pytest.fixture
def sim() -> Iterator[GreenhouseSimulator]:
    with GreenhouseSimulator(candidates=30, seed=3, rate_limit=None) as simulator:
        yield simulator


def _get(sim: GreenhouseSimulator, path: str, token: str | None = None, **params: Any) -> requests.Response:
    return requests.get(sim.url + path, params=params, auth=(token or sim.api_token, ""), timeout=10)


# -- the simulator -------------------------------------------------------------------------------


def test_basic_auth_token_as_username_with_a_blank_password(sim: GreenhouseSimulator) -> None:
    assert _get(sim, "/v1/jobs").status_code == 200
    assert _get(sim, "/v1/jobs", token="wrong").status_code == 401
    with_password = requests.get(sim.url + "/v1/jobs", auth=(sim.api_token, "x"), timeout=10)
    assert with_password.status_code == 401
    assert requests.get(sim.url + "/v1/jobs", timeout=10).status_code == 401
    # the docs' example: the token as username, nothing after the colon
    header = "Basic " + base64.b64encode(f"{sim.api_token}:".encode()).decode()
    assert (
        requests.get(sim.url + "/v1/jobs", headers={"Authorization": header}, timeout=10).status_code == 200
    )


def test_link_header_pages_and_skip_count(sim: GreenhouseSimulator) -> None:
    first = _get(sim, "/v1/candidates", per_page=7)
    assert len(first.json()) == 7
    assert set(first.links) == {"next", "last"}
    assert "page=5" in first.links["last"]["url"] and "per_page=7" in first.links["last"]["url"]
    seen, url = [], sim.url + "/v1/candidates?per_page=7"
    while url:
        page = requests.get(url, auth=(sim.api_token, ""), timeout=10)
        seen += [c["id"] for c in page.json()]
        url = page.links.get("next", {}).get("url")
    assert seen == [c["id"] for c in sim.records("candidates")]
    middle = _get(sim, "/v1/candidates", per_page=7, page=2, skip_count="true")
    assert set(middle.links) == {"next", "prev"}  # no "last" when the count is skipped
    single = _get(sim, "/v1/candidates", per_page=500)
    assert "Link" not in single.headers and len(single.json()) == 30


def test_bad_parameters_are_422_validation_errors(sim: GreenhouseSimulator) -> None:
    for params in ({"per_page": 501}, {"per_page": 0}, {"page": "x"}, {"updated_after": "yesterday"}):
        answer = _get(sim, "/v1/candidates", **params)
        assert answer.status_code == 422
        body = answer.json()
        assert body["message"] == "Validation error"
        assert body["errors"][0]["field"] == next(iter(params))
    assert _get(sim, "/v1/nothing").status_code == 404
    assert _get(sim, "/v1/candidates/1").status_code == 404


def test_time_filters_after_is_inclusive_before_is_strict(sim: GreenhouseSimulator) -> None:
    candidates = sim.records("candidates")
    pivot = sorted(c["updated_at"] for c in candidates)[10]
    after = _get(sim, "/v1/candidates", per_page=500, updated_after=pivot).json()
    before = _get(sim, "/v1/candidates", per_page=500, updated_before=pivot).json()
    assert {c["id"] for c in after} == {c["id"] for c in candidates if c["updated_at"] >= pivot}
    assert {c["id"] for c in before} == {c["id"] for c in candidates if c["updated_at"] < pivot}
    created = _get(sim, "/v1/candidates", per_page=500, created_after=pivot.replace("Z", "+00:00")).json()
    assert {c["id"] for c in created} == {c["id"] for c in candidates if c["created_at"] >= pivot}
    applications = sim.records("applications")
    since = sorted(a["last_activity_at"] for a in applications)[-3]
    recent = _get(sim, "/v1/applications", per_page=500, last_activity_after=since).json()
    assert {a["id"] for a in recent} == {a["id"] for a in applications if a["last_activity_at"] >= since}


def test_rate_limit_headers_and_429_with_retry_after() -> None:
    with GreenhouseSimulator(candidates=5, rate_limit=RateLimit(2, 10.0)) as limited:
        first = _get(limited, "/v1/jobs")
        assert first.headers["X-RateLimit-Limit"] == "2" and first.headers["X-RateLimit-Remaining"] == "1"
        assert _get(limited, "/v1/jobs").headers["X-RateLimit-Remaining"] == "0"
        over = _get(limited, "/v1/jobs")
        assert over.status_code == 429
        assert 1 <= int(over.headers["Retry-After"]) <= 10
        assert int(over.headers["X-RateLimit-Reset"]) >= int(time.time())
    assert GreenhouseSimulator(candidates=1).rate_limit == RateLimit(50, 10.0)  # the documented default


def test_records_have_the_documented_shapes(sim: GreenhouseSimulator) -> None:
    candidate = sim.records("candidates")[0]
    assert candidate["email_addresses"][0]["type"] == "personal"
    assert candidate["phone_numbers"][0]["value"].startswith("+86 ")
    assert candidate["application_ids"] == [a["id"] for a in candidate["applications"]]
    resume = candidate["attachments"][0]
    assert resume["type"] == "resume" and resume["url"].startswith(sim.url + "/files/")
    application = sim.record("applications", candidate["application_ids"][0])
    assert application["candidate_id"] == candidate["id"] and application["jobs"][0]["name"]
    assert application["status"] in ("active", "rejected", "hired")
    scorecards = [s for s in sim.records("scorecards") if s["application_id"] == application["id"]]
    assert len(scorecards) == 3
    for scorecard in scorecards:
        assert {a["rating"] for a in scorecard["attributes"]} <= {
            "definitely_not",
            "no",
            "mixed",
            "yes",
            "strong_yes",
        }
    offer = sim.records("offers")[0]
    assert offer["starts_at"] and offer["keyed_custom_fields"]["salary"]["value"]["unit"] == "CNY"
    by_application = _get(sim, f"/v1/applications/{application['id']}/scorecards").json()
    assert [s["id"] for s in by_application] == [s["id"] for s in scorecards]
    assert _get(sim, f"/v1/candidates/{candidate['id']}").json()["id"] == candidate["id"]


def test_resume_behind_a_signed_url(sim: GreenhouseSimulator) -> None:
    candidate = sim.records("candidates")[4]
    url = candidate["attachments"][0]["url"]
    answer = requests.get(url, timeout=10)  # no API auth: a presigned URL
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/plain")
    assert answer.content.decode() == sim.resume_text(candidate["id"])
    assert candidate["last_name"] + candidate["first_name"] in answer.content.decode()
    assert requests.get(url.replace("Signature=", "Signature=0"), timeout=10).status_code == 403
    assert requests.get(url.split("?")[0], timeout=10).status_code == 403


def test_touch_and_add_candidates(sim: GreenhouseSimulator) -> None:
    before = {c["id"]: c["updated_at"] for c in sim.records("candidates")}
    target = next(iter(before))
    stamp = sim.touch_candidate(target)
    assert stamp > max(before.values())
    assert sim.record("candidates", target)["updated_at"] == stamp
    added = sim.add_candidate()
    assert added["id"] not in before and added["created_at"] > stamp
    assert (
        len(added["applications"]) == 1
        and added["applications"][0]["current_stage"]["name"] == "Application Review"
    )
    fresh = _get(sim, "/v1/candidates", updated_after=stamp).json()
    assert [c["id"] for c in fresh] == [target, added["id"]]


def test_v3_oauth_tokens_rotate_and_later_pages_take_only_the_cursor(sim: GreenhouseSimulator) -> None:
    client = (sim.client_id, sim.client_secret)
    first_refresh = sim.current_refresh_token()
    token = requests.post(
        sim.url + "/token",
        data={"grant_type": "refresh_token", "refresh_token": first_refresh},
        auth=client,
        timeout=10,
    )
    assert token.status_code == 200
    body = token.json()
    assert body["refresh_token"] != first_refresh and body["expires_at"].endswith("+00:00")
    reused = requests.post(
        sim.url + "/token",
        data={"grant_type": "refresh_token", "refresh_token": first_refresh},
        auth=client,
        timeout=10,
    )
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    assert (
        requests.post(sim.url + "/token", data={"grant_type": "refresh_token"}, timeout=10).status_code == 401
    )

    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    page = requests.get(
        sim.url + "/v3/candidates",
        params={"per_page": 10, "updated_at": "gte|2000-01-01T00:00:00Z|lte|2100-01-01T00:00:00.000Z"},
        headers=bearer,
        timeout=10,
    )
    assert page.status_code == 200 and isinstance(page.json(), list) and len(page.json()) == 10
    following = page.links["next"]["url"]
    assert "cursor=" in following and "per_page" not in following
    assert requests.get(following + "&per_page=10", headers=bearer, timeout=10).status_code == 422
    ids = [c["id"] for c in page.json()]
    while following:
        answer = requests.get(following, headers=bearer, timeout=10)
        ids += [c["id"] for c in answer.json()]
        following = answer.links.get("next", {}).get("url")
    assert ids == [c["id"] for c in sim.records("candidates")]
    sim.expire_tokens()
    assert requests.get(sim.url + "/v3/jobs", headers=bearer, timeout=10).status_code == 401


def test_webhook_request_signs_the_escaped_body_like_greenhouse() -> None:
    # vendor-derived vector (../shared/design/vendor-derived-vectors.json, greenhouse_webhook)
    body, headers = webhook_request("testsecret", "hire_candidate", {"application": {"id": 1}})
    assert body == b'{"action":"hire_candidate","payload":{"application":{"id":1}}}'
    assert headers["Signature"] == "sha256 766576e92c33beb10dcaf9216d57bb0adca28caf8488a6ca53ed2f7da0d05f8e"
    assert headers["Content-Type"] == "application/json"
    body, headers = webhook_request("k", "update_candidate", {"note": "<b>王 & co</b>"})
    assert b"\\u003cb\\u003e\\u738b \\u0026 co\\u003c/b\\u003e" in body and body.isascii()
    assert json.loads(body)["payload"]["note"] == "<b>王 & co</b>"
    assert headers["Signature"] == "sha256 " + hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert (
        webhook_request("k", "x", {})[1]["Greenhouse-Event-ID"]
        != webhook_request("k", "x", {})[1]["Greenhouse-Event-ID"]
    )


def test_send_webhook_posts_the_update_candidate_payload(sim: GreenhouseSimulator) -> None:
    received: list[tuple[bytes, dict[str, str]]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append((self.rfile.read(int(self.headers["Content-Length"])), dict(self.headers)))
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        candidate_id = sim.records("candidates")[0]["id"]
        event = sim.candidate_webhook_payload(candidate_id)
        assert event["action"] == "update_candidate" and event["payload"]["candidate"]["id"] == candidate_id
        hook = f"http://127.0.0.1:{server.server_address[1]}/hooks"
        status = sim.send_webhook(hook, "s3cret", event["action"], event["payload"])
        assert sim.send_ping(hook, "s3cret") == 202
    finally:
        server.shutdown()
        server.server_close()
    assert status == 202
    body, headers = received[0]
    assert headers["Signature"] == "sha256 " + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["Greenhouse-Event-ID"]
    assert json.loads(body) == json.loads(json.dumps(event))
    assert json.loads(received[1][0]) == {"action": "ping", "payload": {"web_hook_id": 1}}


# -- the connector (manifest through hub_airbyte) ------------------------------------------------


@pytest.fixture(scope="module")
def greenhouse_source_class() -> Any:
    connector = collect_connectors(load_plugins())["greenhouse"]
    assert connector.category == "ats" and connector.source is not None
    return connector.source


def _read(
    source_class: Any,
    config: dict[str, Any],
    streams: tuple[str, ...],
    state: list[dict[str, Any]] | None = None,
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Records by stream, the last state by stream, and the config updates (CONTROL) of one read."""
    builder = CatalogBuilder()
    for name in streams:
        builder = builder.with_stream(name, SyncMode.incremental)
    catalog = builder.build()
    states = [AirbyteStateMessageSerializer.load(s) for s in state or []]
    records: dict[str, list[dict[str, Any]]] = {}
    last: dict[str, dict[str, Any]] = {}
    updates: list[dict[str, Any]] = []
    for message in source_class().read(LOG, config, catalog, states):
        if message.type == Type.RECORD:
            records.setdefault(message.record.stream, []).append(message.record.data)
        elif message.type == Type.STATE:
            last[message.state.stream.stream_descriptor.name] = AirbyteStateMessageSerializer.dump(
                message.state
            )
        elif message.type == Type.CONTROL:
            updates.append(dict(message.control.connectorConfig.config))
    return records, last, updates


def _v1_config(sim: GreenhouseSimulator, **extra: Any) -> dict[str, Any]:
    return {"api_key": sim.api_token, "base_url": sim.url, "page_size": 10, **extra}


def _requests_to(sim: GreenhouseSimulator, path: str) -> list[tuple[float, str, str, int]]:
    return [entry for entry in sim.timeline if entry[2].split("?")[0] == path]


def test_acceptance_check_discover_full_and_incremental_reads(greenhouse_source_class: Any) -> None:
    """ACCEPTANCE: check / discover / full read / incremental read against the simulator,
    including a page of 429s with Retry-After honoured."""
    throttled = Faults(throttle=2, retry_after=1, only="/v1/candidates")
    with GreenhouseSimulator(candidates=30, seed=5, rate_limit=None, faults=throttled) as sim:
        source = greenhouse_source_class()
        config = _v1_config(sim)
        refused = source.check(LOG, {**config, "api_key": "not-the-token"})
        assert refused.status.value == "FAILED" and "refused the API token (401)" in (refused.message or "")
        assert "not-the-token" not in (refused.message or "")
        status = source.check(LOG, config)
        assert status.status.value == "SUCCEEDED", status.message
        catalog = source.discover(LOG, config)
        streams = {s.name: s for s in catalog.streams}
        assert set(streams) == {*RESOURCES, "attachments"}
        assert streams["candidates"].default_cursor_field == ["updated_at"]
        assert streams["applications"].default_cursor_field == ["last_activity_at"]
        assert all(SyncMode.incremental in s.supported_sync_modes for s in catalog.streams)
        assert all(s.source_defined_primary_key == [["id"]] for s in catalog.streams)

        records, states, _ = _read(greenhouse_source_class, config, RESOURCES)
        for resource in RESOURCES:
            assert sorted(r["id"] for r in records[resource]) == sorted(
                r["id"] for r in sim.records(resource)
            ), resource
        # the two 429s on the first candidates page were waited out (Retry-After: 1)
        calls = _requests_to(sim, "/v1/candidates")
        assert [c[3] for c in calls[:3]] == [429, 429, 200]
        assert calls[1][0] - calls[0][0] >= 1.0 and calls[2][0] - calls[1][0] >= 1.0
        # server-side incremental filter, page size on the first page only, Link URLs after
        first, second = calls[2][2], calls[3][2]
        assert "updated_after=1970-01-01T00%3A00%3A00.000Z" in first and "per_page=10" in first
        assert "page=2" in second
        applications = _requests_to(sim, "/v1/applications")[0][2]
        assert "last_activity_after=" in applications
        latest = max(c["updated_at"] for c in sim.records("candidates"))
        assert states["candidates"]["stream"]["stream_state"] == {"updated_at": latest}
        linked = records["applications"][0]
        assert linked["candidate_remote_id"] == str(linked["candidate_id"])

        touched_id = sim.records("candidates")[3]["id"]
        touched_at = sim.touch_candidate(touched_id)
        added = sim.add_candidate()
        mark = len(sim.timeline)
        again, states2, _ = _read(greenhouse_source_class, config, ("candidates",), list(states.values()))
        asked = [entry[2] for entry in sim.timeline[mark:]]
        assert asked == [f"/v1/candidates?per_page=10&updated_after={latest.replace(':', '%3A')}"]
        ids = [r["id"] for r in again["candidates"]]
        assert {touched_id, added["id"]} <= set(ids)
        assert all(r["updated_at"] >= latest for r in again["candidates"])  # the cursor is inclusive
        assert len(ids) <= 3
        assert states2["candidates"]["stream"]["stream_state"]["updated_at"] == max(
            touched_at, added["updated_at"]
        )


def test_acceptance_oauth_token_expiry_mid_sync_is_recovered(greenhouse_source_class: Any) -> None:
    """ACCEPTANCE: v3 with OAuth; the simulator expires the access token mid-sync, the read
    refreshes it and goes on; the rotated refresh token comes out as a config update."""
    with GreenhouseSimulator(candidates=40, seed=6, rate_limit=None) as sim:
        config = {
            "auth_type": "oauth",
            "base_url": sim.url,
            "auth_url": sim.url,
            "client_id": sim.client_id,
            "client_secret": sim.client_secret,
            "refresh_token": sim.current_refresh_token(),
            "page_size": 10,
        }
        sim.expire_tokens_after(2)
        records, _, updates = _read(greenhouse_source_class, config, ("candidates",))
        assert sorted(r["id"] for r in records["candidates"]) == sorted(
            c["id"] for c in sim.records("candidates")
        )
        calls = [(path.split("?")[0], status) for _, _, path, status in sim.timeline]
        assert calls.count(("/token", 200)) == 2  # the first token, then the refresh after the 401
        assert ("/v3/candidates", 401) in calls
        assert calls[-1] == ("/v3/candidates", 200)
        after_401 = calls[calls.index(("/v3/candidates", 401)) + 1]
        assert after_401 == ("/token", 200)
        # v3: the window and the page size on the first page, nothing but the cursor after it
        pages = [path for _, _, path, _ in sim.timeline if path.startswith("/v3/candidates")]
        assert pages[0].startswith(
            "/v3/candidates?per_page=10&updated_at=gte%7C1970-01-01T00%3A00%3A00.000Z%7Clte%7C"
        )
        assert all("?cursor=" in p and "&" not in p for p in pages[1:])
        assert updates, "the rotated refresh token must come out of the read"
        assert updates[-1]["refresh_token"] == sim.current_refresh_token() != config["refresh_token"]
        assert all(k in updates[-1] for k in ("access_token", "token_expiry_date"))


def test_attachments_stream_downloads_each_resume(
    sim: GreenhouseSimulator, greenhouse_source_class: Any
) -> None:
    records, states, _ = _read(greenhouse_source_class, _v1_config(sim), ("attachments",))
    files = records["attachments"]
    candidates = sim.records("candidates")
    assert len(files) == len(candidates)
    for record, candidate in zip(sorted(files, key=lambda r: r["candidate_id"]), candidates, strict=True):
        text = sim.resume_text(candidate["id"])
        assert record["candidate_remote_id"] == str(candidate["id"])
        assert record["content"] == text and record["content_encoding"] == "text"
        assert record["sha256"] == hashlib.sha256(text.encode()).hexdigest()
        assert record["size"] == len(text.encode()) and record["content_type"] == "text/plain"
        assert record["updated_at"] == candidate["updated_at"]
    assert states["attachments"]["stream"]["stream_state"]["updated_at"] == max(
        c["updated_at"] for c in candidates
    )


# -- Airbyte's own Greenhouse manifest against the simulator ---------------------------------------


def test_airbyte_catalogue_v1_manifest_reads_the_simulator_unmodified(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Airbyte's source-greenhouse 0.6.1 manifest (Harvest v1), only its host rewritten.

    An independent client of the same documented API: if it pages, filters and reads
    everything from the simulator, the simulator speaks Harvest as Airbyte understands it.
    """
    from airbyte_cdk.legacy.sources.declarative import declarative_stream

    # CDK 7 moved DeclarativeStream under airbyte_cdk.legacy; the vendored components.py
    # (written for CDK 6) imports it from the old place, for a type annotation.
    monkeypatch.setitem(sys.modules, "airbyte_cdk.sources.declarative.declarative_stream", declarative_stream)
    package = type(sys)("source_greenhouse")
    package.__path__ = []  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "source_greenhouse", package)
    loader = importlib.machinery.SourceFileLoader(
        "source_greenhouse.components", str(VENDORED / "components.py.txt")
    )
    spec = importlib.util.spec_from_loader("source_greenhouse.components", loader)
    assert spec is not None
    components = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "source_greenhouse.components", components)
    loader.exec_module(components)

    raw = (VENDORED / "manifest.yaml").read_text(encoding="utf-8")
    with GreenhouseSimulator(candidates=40, seed=8, rate_limit=None) as sim:
        manifest = yaml.safe_load(raw.replace("https://harvest.greenhouse.io", sim.url))
        config = {"api_key": sim.api_token}
        assert (
            ConcurrentDeclarativeSource(source_config=manifest, config=config).check(LOG, config).status.value
            == "SUCCEEDED"
        )
        wanted = {
            "candidates": "candidates",
            "applications": "applications",
            "jobs": "jobs",
            "offers": "offers",
            "scorecards": "scorecards",
            "interviews": "scheduled_interviews",
            "users": "users",
        }
        builder = CatalogBuilder()
        for name in wanted:
            builder = builder.with_stream(name, SyncMode.incremental)
        catalog = builder.build()
        source = ConcurrentDeclarativeSource(catalog=catalog, config=config, state=[], source_config=manifest)
        counts: dict[str, int] = {}
        errors = []
        for message in source.read(LOG, config, catalog, []):
            if message.type == Type.RECORD:
                counts[message.record.stream] = counts.get(message.record.stream, 0) + 1
            elif message.type == Type.TRACE and message.trace.error is not None:
                errors.append(message.trace.error.message)
        assert not errors
        assert counts == {stream: sim.count(resource) for stream, resource in wanted.items()}
        # its page size is 100: the scorecards came in two pages, the second from the Link header
        scorecard_pages = [p for _, _, p, _ in sim.timeline if p.startswith("/v1/scorecards")]
        assert len(scorecard_pages) == 2 and "page=2&per_page=100" in scorecard_pages[1]


# -- pipelines into the canonical store ---------------------------------------------------------


def _pipeline_toml(
    tmp_path: Path,
    sim: GreenhouseSimulator,
    store_url: str,
    *,
    streams: tuple[tuple[str, str, str], ...] = STREAMS,
    config: str = 'api_key = { env = "GH_API_KEY" }',
    chunk_size: int = 5000,
    page_size: int = 10,
) -> Path:
    listed = ",\n  ".join(
        f'{{ name = "{name}", sync_mode = "incremental", mapping = "{MAPPINGS / mapping}", '
        f'destination_stream = "{table}" }}'
        for name, mapping, table in streams
    )
    path = tmp_path / "hub.toml"
    path.write_text(
        f"""
[hub]
database = "sqlite:///{tmp_path / "hub.db"}"
chunk_size = {chunk_size}

[connectors.greenhouse]
plugin = "greenhouse"
[connectors.greenhouse.config]
base_url = "{sim.url}"
page_size = {page_size}
{config}

[connectors.store]
plugin = "sql"
[connectors.store.config]
url = "{store_url}"

[pipelines.greenhouse]
source = "greenhouse"
destinations = ["store"]
streams = [
  {listed}
]
""",
        encoding="utf-8",
    )
    return path


def _rows(url: str, table: str) -> list[dict[str, Any]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.text(f"SELECT * FROM {table}")).mappings()]
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_full_pipeline_into_the_canonical_store_with_the_shipped_mappings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str, request: pytest.FixtureRequest
) -> None:
    store = (
        f"sqlite:///{tmp_path / 'canonical.db'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    )
    with GreenhouseSimulator(candidates=25, seed=11, rate_limit=None) as sim:
        monkeypatch.setenv("GH_API_KEY", sim.api_token)
        project = Project(_pipeline_toml(tmp_path, sim, store))
        result = Sync(project, "greenhouse").run()
        assert result.status == "succeeded", result.error
        assert result.counts.rejected == 0
        for name, _mapping, table in STREAMS:
            resource = "candidates" if name == "attachments" else name
            rows = _rows(store, table)
            assert len(rows) == sim.count(resource) == len({r["remote_id"] for r in rows}), table
        # every candidate is linked to a person (identity: name, e-mail, phone, ID number)
        with project.db.session() as session:
            persons = (
                session.execute(sa.select(PersonLink.person_id).where(PersonLink.source == "greenhouse"))
                .scalars()
                .all()
            )
        assert len(persons) == sim.count("candidates") == len(set(persons))

        keyring = project.keyring
        scorecard = sim.records("scorecards")[0]
        row = next(r for r in _rows(store, "scorecards") if r["remote_id"] == str(scorecard["id"]))
        assert row["ratings"].startswith("hub1.")  # restricted: sealed
        ratings = json.loads(
            open_destination_value(
                keyring, "store", "scorecards", "ratings", row["remote_id"], row["ratings"]
            )
        )
        scale = {"definitely_not": 1, "no": 2, "mixed": 3, "yes": 4, "strong_yes": 5}
        assert ratings == [
            {"competency": a["name"], "score": scale[a["rating"]], "max_score": 5, "comment": a["note"]}
            for a in scorecard["attributes"]
        ]
        custom = json.loads(
            open_destination_value(
                keyring, "store", "scorecards", "custom_fields", row["remote_id"], row["custom_fields"]
            )
        )
        assert custom["application_remote_id"] == str(scorecard["application_id"])
        assert custom["candidate_remote_id"] == str(scorecard["candidate_id"])
        offer = sim.records("offers")[0]
        offer_row = next(r for r in _rows(store, "offers") if r["remote_id"] == str(offer["id"]))
        assert offer_row["compensation"].startswith("hub1.")
        pay = json.loads(
            open_destination_value(
                keyring, "store", "offers", "compensation", offer_row["remote_id"], offer_row["compensation"]
            )
        )
        salary = offer["keyed_custom_fields"]["salary"]["value"]
        assert pay == {"amount": {"amount": str(salary["amount"]), "currency": "CNY"}, "pay_period": "MONTH"}
        application = sim.records("applications")[0]
        app_row = next(r for r in _rows(store, "applications") if r["remote_id"] == str(application["id"]))
        app_custom = json.loads(
            open_destination_value(
                keyring,
                "store",
                "applications",
                "custom_fields",
                app_row["remote_id"],
                app_row["custom_fields"],
            )
        )
        assert app_custom == {
            "candidate_remote_id": str(application["candidate_id"]),
            "job_remote_id": str(application["jobs"][0]["id"]),
        }
        assert app_row["status"] == application["status"].upper()

        # resumes are stored sealed: readable through hub, nowhere in clear
        candidate = sim.records("candidates")[2]
        attachment = next(
            r for r in _rows(store, "attachments") if r["remote_id"].startswith(f"{candidate['id']}-")
        )
        opened = json.loads(
            open_destination_value(
                keyring,
                "store",
                "attachments",
                "custom_fields",
                attachment["remote_id"],
                attachment["custom_fields"],
            )
        )
        assert opened["content"] == sim.resume_text(candidate["id"])
        assert attachment["attachment_type"] == "RESUME" and attachment["file_name"].startswith("hub1.")
        if backend == "sqlite":
            stored = b"".join(p.read_bytes() for p in tmp_path.glob("*.db*"))
            for c in sim.records("candidates"):
                text = sim.resume_text(c["id"])
                assert text.encode() not in stored
                assert text.splitlines()[3].encode() not in stored  # the resume body on its own
                assert c["email_addresses"][0]["value"].encode() not in stored


def test_second_sync_reads_only_what_changed_since_the_saved_cursor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = f"sqlite:///{tmp_path / 'canonical.db'}"
    with GreenhouseSimulator(candidates=30, seed=12, rate_limit=None) as sim:
        monkeypatch.setenv("GH_API_KEY", sim.api_token)
        config = _pipeline_toml(tmp_path, sim, store, streams=STREAMS[:2])
        first = Sync(Project(config), "greenhouse").run()
        assert first.status == "succeeded", first.error
        assert first.streams["candidates"].inserted == 30
        cursor = max(c["updated_at"] for c in sim.records("candidates"))

        sim.touch_candidate(sim.records("candidates")[7]["id"])
        added = sim.add_candidate()
        mark = len(sim.timeline)
        second = Sync(Project(config), "greenhouse").run()
        assert second.status == "succeeded", second.error
        candidates = second.streams["candidates"]
        assert candidates.inserted == 1 and candidates.updated == 1
        assert candidates.read <= 3  # the two changed, and the one at the inclusive cursor
        assert second.streams["applications"].inserted == 1  # the new candidate's application
        asked = [path for _, _, path, _ in sim.timeline[mark:] if path.startswith("/v1/candidates")]
        assert asked == [f"/v1/candidates?per_page=10&updated_after={cursor.replace(':', '%3A')}"]
        rows = _rows(store, "candidates")
        assert len(rows) == 31 == len({r["remote_id"] for r in rows})
        assert str(added["id"]) in {r["remote_id"] for r in rows}


def _wait_for_commits(hub_db: str, at_least: int, timeout: float = 120) -> None:
    engine = sa.create_engine(hub_db)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                with engine.connect() as conn:
                    done = conn.execute(
                        sa.text("SELECT count(*) FROM outbox WHERE status = 'committed'")
                    ).scalar_one()
                if done >= at_least:
                    return
            except sa.exc.OperationalError:
                pass
            time.sleep(0.05)
    finally:
        engine.dispose()
    raise AssertionError("the sync never committed a chunk")


def _children(pid: int) -> list[int]:
    """The processes ``pid`` started (Linux)."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text(encoding="utf-8")
    return [int(child) for child in text.split()]


#: ``hub sync greenhouse --json`` with chunks of 10 or more people resolved in the identity worker
_SYNC_WITH_IDENTITY_WORKER = (
    "import runpy, sys; import hub.identity_worker as w; w.PARALLEL_PEOPLE = 10; "
    "sys.argv = ['hub', 'sync', 'greenhouse', '--json']; runpy.run_module('hub.cli', run_name='__main__')"
)


@pytest.mark.parametrize("in_worker", [False, True], ids=["in-thread", "identity worker"])
def test_sync_killed_midway_then_rerun_loses_and_duplicates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_worker: bool
) -> None:
    store = f"sqlite:///{tmp_path / 'canonical.db'}"
    if in_worker:  # the rerun too
        monkeypatch.setattr(identity_worker, "PARALLEL_PEOPLE", 10)
    with GreenhouseSimulator(candidates=120, seed=13, rate_limit=None, page_delay=0.3) as sim:
        monkeypatch.setenv("GH_API_KEY", sim.api_token)
        config = _pipeline_toml(tmp_path, sim, store, streams=STREAMS[:1], chunk_size=20)
        Project(config).db.upgrade()  # migrated before the race starts
        command = (
            ["-c", _SYNC_WITH_IDENTITY_WORKER]
            if in_worker
            else ["-m", "hub.cli", "sync", "greenhouse", "--json"]
        )
        proc = subprocess.Popen(
            [sys.executable, *command],
            env={**os.environ, "HUB_CONFIG": str(config)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for_commits(f"sqlite:///{tmp_path / 'hub.db'}", 2)
            workers = _children(proc.pid)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        partial = len(_rows(store, "candidates"))
        assert 0 < partial < 120, "the kill should land midway"
        if in_worker:  # the killed sync's identity worker follows it out, as any hub worker does
            assert workers, "the identity worker was running"
            deadline = time.monotonic() + 10
            while (alive := [pid for pid in workers if process_running(pid)]) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not alive, "worker processes outlived the killed sync"

        sim.page_delay = 0.0
        project = Project(config)
        result = Sync(project, "greenhouse").run()
        assert result.status == "succeeded", result.error
        rows = _rows(store, "candidates")
        assert len(rows) == 120 == len({r["remote_id"] for r in rows})
        assert {r["remote_id"] for r in rows} == {str(c["id"]) for c in sim.records("candidates")}
        # what the killed run committed stands: at most the chunks in flight are sent again
        assert result.streams["candidates"].unchanged >= partial - IN_FLIGHT * 20
        with project.db.session() as session:
            statuses = session.execute(sa.select(Run.status)).scalars().all()
            links = session.execute(sa.select(PersonLink.source, PersonLink.remote_digest)).all()
            persons = session.execute(sa.select(sa.func.count()).select_from(PersonRow)).scalar_one()
        assert "crashed" in statuses
        # every candidate is linked to a person once, and the persons are those of a run never killed
        assert len(links) == len(set(links)) == 120
        clean = tmp_path / "clean"
        clean.mkdir()
        reference = Project(
            _pipeline_toml(clean, sim, f"sqlite:///{clean / 'canonical.db'}", streams=STREAMS[:1])
        )
        assert Sync(reference, "greenhouse").run().status == "succeeded"
        with reference.db.session() as session:
            assert persons == session.execute(sa.select(sa.func.count()).select_from(PersonRow)).scalar_one()


def test_oauth_pipeline_saves_the_rotated_refresh_token_into_its_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = f"sqlite:///{tmp_path / 'canonical.db'}"
    with GreenhouseSimulator(candidates=20, seed=14, rate_limit=None) as sim:
        oauth = "\n".join(
            [
                'auth_type = "oauth"',
                f'auth_url = "{sim.url}"',
                f'client_id = "{sim.client_id}"',
                'client_secret = { secret = "greenhouse-client-secret" }',
                'refresh_token = { secret = "greenhouse-refresh-token" }',
            ]
        )
        config = _pipeline_toml(tmp_path, sim, store, streams=STREAMS[:1], config=oauth)
        project = Project(config)
        project.set_secret("greenhouse-client-secret", sim.client_secret)
        project.set_secret("greenhouse-refresh-token", sim.current_refresh_token())
        sim.expire_tokens_after(1)
        first = Sync(project, "greenhouse").run()
        assert first.status == "succeeded", first.error
        assert first.streams["candidates"].inserted == 20
        # the simulator's refresh tokens are single use: the stored one must be the latest
        assert Project(config).get_secret("greenhouse-refresh-token") == sim.current_refresh_token()
        sim.touch_candidate(sim.records("candidates")[0]["id"])
        second = Sync(Project(config), "greenhouse").run()
        assert second.status == "succeeded", second.error
        assert second.streams["candidates"].updated == 1
        assert Project(config).get_secret("greenhouse-refresh-token") == sim.current_refresh_token()
        rotated = [p for _, _, p, s in sim.timeline if p == "/token" and s == 200]
        assert len(rotated) >= 3


def test_mapping_files_check_clean() -> None:
    from hub.mapping.loader import load_mapping
    from hub.project import collect_transforms
    from hub.schema import ENTITIES

    transforms = collect_transforms(load_plugins())
    for _name, mapping, _table in STREAMS:
        spec = load_mapping(MAPPINGS / mapping, transforms, ENTITIES)
        assert spec.key == ("id",)
    ratings = transforms["greenhouse_ratings"]
    import pandas as pd

    out = ratings.apply(
        pd.Series([orjson.dumps([{"name": "SQL", "rating": "mixed", "note": None}]).decode(), None]), {}, None
    )
    assert out.values.tolist() == [[{"competency": "SQL", "score": 3, "max_score": 5, "comment": None}], None]
    bad = ratings.apply(pd.Series([[{"name": "SQL", "rating": "superb"}]]), {}, None)
    assert bad.errors is not None and "unknown rating" in bad.errors.iat[0]


def test_a_sync_reads_only_the_fields_its_mappings_select_and_stores_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub_airbyte import load_manifest
    from hub_airbyte.manifest import _component_class
    from hub_greenhouse import MANIFEST

    # the decoder class as the manifest loads it (its components.py, imported under its own name)
    decoder = _component_class(load_manifest(MANIFEST, trusted=True).document["definitions"]["json_pages"])
    told: list[list[str] | None] = []
    original_init = decoder.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        told.append(self.fields)

    monkeypatch.setattr(decoder, "__init__", init)

    def stored(work: Path) -> dict[str, list[dict[str, Any]]]:
        work.mkdir()
        store = f"sqlite:///{work / 'canonical.db'}"
        project = Project(_pipeline_toml(work, sim, store))
        result = Sync(project, "greenhouse").run()
        assert result.status == "succeeded" and result.counts.rejected == 0, result.error
        tables = {}
        for _name, _mapping, table in STREAMS:
            rows = sorted(_rows(store, table), key=lambda r: r["remote_id"])
            tables[table] = [
                {
                    column: open_destination_value(
                        project.keyring, "store", table, column, row["remote_id"], value
                    )
                    if isinstance(value, str) and value.startswith("hub1.")
                    else value
                    for column, value in row.items()
                    if column not in ("synced_at", "person_id")
                }
                for row in rows
            ]
        return tables

    with GreenhouseSimulator(candidates=40, seed=13, rate_limit=None) as sim:
        monkeypatch.setenv("GH_API_KEY", sim.api_token)
        selected = stored(tmp_path / "selected")
        candidates_fields = next(f for f in told if f and "company" in f)
        assert "applications" not in candidates_fields and "employments" not in candidates_fields
        assert "updated_at" in candidates_fields  # the cursor, which the mapping reads too
        # what the related-id copies read, though the mapping reads only the copies
        applications_fields = next(f for f in told if f and "last_activity_at" in f)
        assert {"candidate_id", "jobs"} <= set(applications_fields)
        assert "credited_to" not in applications_fields
        told.clear()
        monkeypatch.setattr(decoder, "selects_fields", False)
        whole = stored(tmp_path / "whole")
        assert not any(told)
    assert selected == whole
    assert all(selected.values())
