"""The webhook receiver: verified callbacks, the sealed inbox, exactly-once processing, hub serve.

Everything runs for real: uvicorn on loopback (in a thread, and ``hub serve`` as a process),
hub's SQLite state store, the files -> SQLite pipeline of the other tests, and the Greenhouse
simulator for the acceptance test. A project plugin (``stamped``) stands for the vendors that
sign a timestamp and answer a GET handshake (e签宝, WeCom, Feishu): the verifier interface is
exercised by a vendor that is not Greenhouse.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import logging
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
import sqlalchemy as sa
import uvicorn
from hub_greenhouse.webhook import GreenhouseVerifier

from hub.errors import ConfigurationError
from hub.leases import LeaseHolder
from hub.project import Project
from hub.sandbox.base import free_port
from hub.sandbox.greenhouse import webhook_request
from hub.store.models import Run, WebhookInboxEntry
from hub.webhooks import Accepted, Handshake, WebhookRejected, WebhookRequest
from hub.webhooks.app import create_app
from hub.webhooks.inbox import Inbox
from hub.webhooks.processor import ProcessingPolicy, SyncDispatcher
from hub.webhooks.registry import check_webhook_settings, webhook_endpoints
from hub.webhooks.service import WebhookService
from tests.conftest import files_to_sql_toml
from tests.datagen import HEADER, write_people_csv

FAST = ProcessingPolicy(busy_retry=0.2, retry_base=0.2, poll=0.2, settle=0.0, max_attempts=2)
STAMP_TOKEN = "stamped-test-token"

#: A vendor that signs a timestamp (hex HMAC of "timestamp.body", like e签宝) and checks its URL
#: with a GET challenge (like WeCom's echostr): the interface, exercised without Greenhouse.
STAMPED_PLUGIN = """
import hashlib, hmac
from datetime import UTC, datetime

import orjson

import hub
from hub.webhooks import Accepted, Reply, WebhookHandler, WebhookRejected, WebhookVerifier, same_text


class StampedVerifier(WebhookVerifier):
    settings_spec = {
        "type": "object",
        "required": ["token"],
        "properties": {
            "token": {"type": "string", "airbyte_secret": True},
            "ack_duplicates": {"type": "boolean"},
        },
    }
    signs_timestamp = True

    def _sign(self, *parts: bytes) -> str:
        return hmac.new(self.settings["token"].encode(), b".".join(parts), hashlib.sha256).hexdigest()

    def verify(self, request):
        stamp = request.header("x-stamp") or ""
        if not same_text(self._sign(stamp.encode(), request.body), request.header("x-stamp-signature") or ""):
            raise WebhookRejected("bad_signature", "the signature does not match")
        document = orjson.loads(request.body)
        return Accepted(
            event_id=request.header("x-stamp-event") or "",
            action=document["action"],
            body=request.body,
            signed_at=datetime.fromtimestamp(int(stamp), UTC),
        )

    def handshake(self, request):
        challenge = request.query.get("challenge", "")
        if not same_text(self._sign(challenge.encode()), request.query.get("signature", "")):
            raise WebhookRejected("bad_signature", "the challenge signature does not match")
        return Reply.text(challenge)

    def duplicate_reply(self, event):
        return Reply.text("success") if self.settings.get("ack_duplicates") else None


@hub.hookimpl
def hub_register_webhooks():
    return [WebhookHandler(connector="files", verifier=StampedVerifier)]
"""


HubCli = Callable[[list[str], Path], tuple[int, str, str]]


@pytest.fixture
def hub_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[HubCli]:
    """``hub ARGS`` run by ``main()`` in this process (a CLI start-up costs seconds): code, out, err."""
    from hub.cli import main

    def call(args: list[str], config: Path) -> tuple[int, str, str]:
        monkeypatch.setenv("HUB_CONFIG", str(config))
        monkeypatch.setattr(sys, "argv", ["hub", *args])
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            main()
        captured = capsys.readouterr()
        return int(exited.value.code or 0), captured.out, captured.err

    root = logging.getLogger()
    level = root.level
    yield call
    for handler in [h for h in root.handlers if getattr(h, "_hub", False)]:
        root.removeHandler(handler)  # it writes to a stream capsys closes
    root.setLevel(level)


def stamped_sign(*parts: bytes) -> str:
    return hmac.new(STAMP_TOKEN.encode(), b".".join(parts), hashlib.sha256).hexdigest()


def stamped_request(
    document: dict[str, Any], *, event_id: str | None = None, at: datetime | None = None
) -> tuple[bytes, dict[str, str]]:
    body = orjson.dumps(document)
    stamp = str(int((at or datetime.now(UTC)).timestamp()))
    return body, {
        "Content-Type": "application/json",
        "X-Stamp": stamp,
        "X-Stamp-Event": event_id or str(uuid.uuid4()),
        "X-Stamp-Signature": stamped_sign(stamp.encode(), body),
    }


@pytest.fixture
def stamped_project(
    tmp_path: Path, write_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, list[list[str]]]:
    """files (people.csv) -> SQLite, the files connector taking ``stamped`` webhooks."""
    monkeypatch.setenv("STAMP_TOKEN", STAMP_TOKEN)
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "stamped.py").write_text(STAMPED_PLUGIN, encoding="utf-8")
    rows = write_people_csv(tmp_path / "people.csv", 20)
    body = files_to_sql_toml(tmp_path / "people.csv", f"sqlite:///{tmp_path / 'target.db'}")
    body = body.replace("[hub]\n", '[hub]\nplugins_dir = "plugins"\n', 1)
    body += textwrap.dedent(
        """
        [connectors.src.webhook]
        token = { env = "STAMP_TOKEN" }
        max_age = "2m"
        """
    )
    return write_project(body), rows


def rewrite_department(csv_path: Path, row_index: int, department: str) -> list[list[str]]:
    with open(csv_path, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    rows[row_index][HEADER.index("department")] = department
    with open(csv_path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return rows


def department_of(target: Path, person_id: str) -> str:
    engine = sa.create_engine(f"sqlite:///{target}")
    with engine.connect() as conn:
        value = conn.execute(
            sa.text("SELECT department FROM people WHERE id = :id"), {"id": person_id}
        ).scalar()
    engine.dispose()
    return str(value)


def runs_of(project: Project) -> list[Run]:
    with project.db.session() as session:
        return list(session.execute(sa.select(Run).order_by(Run.id)).scalars())


def inbox_rows(project: Project) -> list[WebhookInboxEntry]:
    with project.db.session() as session:
        return list(session.execute(sa.select(WebhookInboxEntry).order_by(WebhookInboxEntry.id)).scalars())


def wait_for(what: str, condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def serving(service: WebhookService) -> Iterator[str]:
    """The app on real uvicorn, loopback, an ephemeral port, in a thread; yields its base URL."""
    config = uvicorn.Config(create_app(service), host="127.0.0.1", port=0, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    wait_for("uvicorn to start", lambda: server.started, timeout=15)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def message(person: list[str], action: str = "updated") -> dict[str, Any]:
    """A callback body carrying personal data (as vendors' do)."""
    return {
        "action": action,
        "record": {"id": person[0], "name": person[1], "id_number": person[2], "phone": person[3]},
    }


# -- Greenhouse's verifier ---------------------------------------------------------------------


def greenhouse_request(body: bytes, headers: dict[str, str]) -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        headers={k.lower(): v for k, v in headers.items()},
        query={},
        body=body,
        received_at=datetime.now(UTC),
        remote="127.0.0.1",
    )


def test_greenhouse_verifier_accepts_the_signed_raw_body_and_refuses_anything_else() -> None:
    verifier = GreenhouseVerifier({"secret": "whsec-1"})
    payload = {"candidate": {"id": 7, "first_name": "<b>李</b>", "title": "R&D"}}
    body, headers = webhook_request("whsec-1", "update_candidate", payload)
    assert b"\\u003cb\\u003e" in body and b"\\u674e" in body  # escaped before signing, as Greenhouse does

    verdict = verifier.verify(greenhouse_request(body, headers))
    assert isinstance(verdict, Accepted)
    assert (verdict.action, verdict.event_id, verdict.body) == (
        "update_candidate",
        headers["Greenhouse-Event-ID"],
        body,
    )
    # The same document re-serialised (unescaped) is not what was signed.
    reserialised = orjson.dumps(orjson.loads(body))
    assert reserialised != body
    cases = {
        "bad_signature": (reserialised, headers),
        "missing_signature": (body, {k: v for k, v in headers.items() if k != "Signature"}),
        "other secret": webhook_request("whsec-2", "update_candidate", payload),
        "bad scheme": (body, {**headers, "Signature": headers["Signature"].replace("sha256", "sha1")}),
        "truncated": (body, {**headers, "Signature": headers["Signature"][:-2]}),
    }
    for name, (raw, hdrs) in cases.items():
        with pytest.raises(WebhookRejected) as refused:
            verifier.verify(greenhouse_request(raw, hdrs))
        assert refused.value.status == 401, name
        assert refused.value.reason in ("bad_signature", "missing_signature"), name
        assert "whsec" not in str(refused.value) and "李" not in str(refused.value)


def test_greenhouse_ping_is_a_handshake_and_events_need_their_event_id() -> None:
    verifier = GreenhouseVerifier({"secret": "whsec-1"})
    body, headers = webhook_request(
        "whsec-1", "ping", {"web_hook": {"name": "hub", "events": ["update_candidate"]}}
    )
    verdict = verifier.verify(greenhouse_request(body, headers))
    assert isinstance(verdict, Handshake) and verdict.reply.status == 200 and verdict.what == "ping"

    body, headers = webhook_request("whsec-1", "update_candidate", {"candidate": {"id": 1}})
    del headers["Greenhouse-Event-ID"]
    with pytest.raises(WebhookRejected, match="missing_event_id"):
        verifier.verify(greenhouse_request(body, headers))

    not_json = b"not json"
    signed = {"Signature": "sha256 " + hmac.new(b"whsec-1", not_json, hashlib.sha256).hexdigest()}
    with pytest.raises(WebhookRejected) as refused:
        verifier.verify(greenhouse_request(not_json, signed))
    assert (refused.value.reason, refused.value.status) == ("malformed", 400)


# -- configuration -----------------------------------------------------------------------------


def test_webhook_tables_are_checked_and_every_problem_names_its_key(
    tmp_path: Path, write_project: Callable[..., Path], hub_cli: HubCli
) -> None:
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "stamped.py").write_text(STAMPED_PLUGIN, encoding="utf-8")
    (tmp_path / "people.csv").write_text("id\n1\n", encoding="utf-8")
    base = files_to_sql_toml(tmp_path / "people.csv", f"sqlite:///{tmp_path / 'target.db'}")
    base = base.replace("[hub]\n", '[hub]\nplugins_dir = "plugins"\n', 1)

    plaintext = write_project(
        base + '[connectors.src.webhook]\ntoken = "in-clear"\nmax_age = "soon"\n', name="plain.toml"
    )
    with pytest.raises(ConfigurationError) as bad:
        Project(plaintext)
    assert {p.path for p in bad.value.problems} == {
        "connectors.src.webhook.token",
        "connectors.src.webhook.max_age",
    }
    assert "in-clear" not in str(bad.value)

    unknown = write_project(base + '[connectors.src.webhook]\ntokn = { env = "T" }\n', name="unknown.toml")
    with pytest.raises(ConfigurationError) as bad:
        check_webhook_settings(Project(unknown))
    assert {p.path for p in bad.value.problems} == {
        "connectors.src.webhook.tokn",
        "connectors.src.webhook.token",  # required, and missing
    }

    unsupported = write_project(base + '[connectors.dst.webhook]\nsecret = { env = "T" }\n', name="dst.toml")
    with pytest.raises(ConfigurationError) as bad:
        check_webhook_settings(Project(unsupported))
    (problem,) = bad.value.problems
    assert problem.path == "connectors.dst.webhook" and "connector 'sql' takes no webhooks" in problem.message

    missing_env = write_project(
        base + '[connectors.src.webhook]\ntoken = { env = "NO_SUCH_VAR_HUB" }\n', name="env.toml"
    )
    with pytest.raises(ConfigurationError) as bad:
        webhook_endpoints(Project(missing_env))
    assert [p.path for p in bad.value.problems] == ["connectors.src.webhook.token"]

    code, _, stderr = hub_cli(["config", "check"], unknown)
    assert code == 2 and "connectors.src.webhook.tokn: unknown key" in stderr


def test_greenhouse_has_no_signed_timestamp_so_max_age_is_refused(
    tmp_path: Path, write_project: Callable[..., Path]
) -> None:
    from hub.webhooks.registry import _settings_problems
    from hub.webhooks.verifier import WebhookHandler

    handler = WebhookHandler(connector="greenhouse", verifier=GreenhouseVerifier)
    problems = _settings_problems(
        "connectors.gh.webhook", handler, {"secret": {"secret": "GH"}, "max_age": "5m", "extra": 1}
    )
    assert {p.path for p in problems} == {"connectors.gh.webhook.max_age", "connectors.gh.webhook.extra"}
    assert _settings_problems("connectors.gh.webhook", handler, {"secret": {"secret": "GH"}}) == []


# -- the inbox ---------------------------------------------------------------------------------


def test_inbox_seals_bodies_bound_to_their_event_and_refuses_replays(stamped_project: Any) -> None:
    config, people = stamped_project
    project = Project(config)
    inbox = Inbox(project.db, project.keyring)
    body = orjson.dumps(message(people[0]))
    event = inbox.store("src", Accepted(event_id="ev-1", action="updated", body=body))
    assert inbox.open(event) == body

    with pytest.raises(WebhookRejected, match="replayed: this event id"):
        inbox.store("src", Accepted(event_id="ev-1", action="updated", body=b"{}"))
    with pytest.raises(WebhookRejected, match="replayed: this signed body"):
        inbox.store("src", Accepted(event_id="ev-2", action="updated", body=body))
    other = inbox.store("other", Accepted(event_id="ev-1", action="updated", body=body))  # another connector

    # A sealed body moved to another event does not open.
    with project.db.session() as session:
        first, second = session.get(WebhookInboxEntry, event.id), session.get(WebhookInboxEntry, other.id)
        assert first is not None and second is not None
        second.payload = first.payload
    with pytest.raises(Exception, match="does not authenticate"):
        inbox.open(other)
    assert people[0][3].encode() not in (first.payload or b"")


def test_two_deliveries_of_one_event_at_once_store_it_once(
    stamped_project: Any, any_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On every state-store backend: the unique keys decide, not the check before the insert."""
    config, _ = stamped_project
    monkeypatch.setenv("HUB_DATABASE_URL", any_db_url)
    project = Project(config)
    inbox = Inbox(project.db, project.keyring)
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def deliver(i: int) -> None:
        barrier.wait()
        try:
            inbox.store("src", Accepted(event_id="same", action="updated", body=b'{"n":%d}' % i))
            outcomes.append("stored")
        except WebhookRejected as exc:
            outcomes.append(exc.reason)

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["replayed", "replayed", "replayed", "stored"]
    assert [r.status for r in inbox_rows(project)] == ["received"]


# -- the receiver over HTTP --------------------------------------------------------------------


def test_served_callbacks_are_stored_sealed_and_refusals_are_logged_with_their_reason(
    stamped_project: Any, caplog: pytest.LogCaptureFixture
) -> None:
    config, people = stamped_project
    project = Project(config)
    service = WebhookService(project, worker=False)
    caplog.set_level("INFO", logger="hub.webhooks")
    with serving(service) as url:
        assert requests.get(f"{url}/healthz", timeout=10).json()["endpoints"] == ["src"]
        hook = f"{url}/webhooks/src"
        body, headers = stamped_request(message(people[0]), event_id="ev-ok")
        accepted = requests.post(hook, data=body, headers=headers, timeout=10)
        assert (accepted.status_code, accepted.json()) == (200, {"status": "ok"})

        replay = requests.post(hook, data=body, headers=headers, timeout=10)
        assert (replay.status_code, replay.json()) == (401, {"error": "replayed"})
        forged = requests.post(
            hook, data=body + b" ", headers={**headers, "X-Stamp-Event": "ev-f"}, timeout=10
        )
        assert (forged.status_code, forged.json()) == (401, {"error": "bad_signature"})
        for _ in range(2):  # repeats of one refusal from one address share a row
            again = requests.post(hook, data=body + b" ", headers=headers, timeout=10)
            assert again.status_code == 401
        old_body, old_headers = stamped_request(
            message(people[1]), at=datetime.now(UTC) - timedelta(minutes=3)
        )
        stale = requests.post(hook, data=old_body, headers=old_headers, timeout=10)
        assert (stale.status_code, stale.json()) == (401, {"error": "stale"})
        ahead_body, ahead_headers = stamped_request(
            message(people[1]), at=datetime.now(UTC) + timedelta(minutes=3)
        )
        assert requests.post(hook, data=ahead_body, headers=ahead_headers, timeout=10).status_code == 401

        assert requests.post(f"{url}/webhooks/dst", data=body, headers=headers, timeout=10).status_code == 404
        assert (
            requests.post(f"{url}/webhooks/nope", data=body, headers=headers, timeout=10).status_code == 404
        )
        huge = requests.post(hook, data=b"x" * (1024 * 1024 + 1), headers=headers, timeout=10)
        assert huge.status_code == 413

        challenge = requests.get(
            hook, params={"challenge": "c-1", "signature": stamped_sign(b"c-1")}, timeout=10
        )
        assert (challenge.status_code, challenge.text) == (200, "c-1")
        wrong = requests.get(hook, params={"challenge": "c-1", "signature": stamped_sign(b"c-2")}, timeout=10)
        assert wrong.status_code == 401
        health = requests.get(f"{url}/healthz", timeout=10).json()
        assert health["inbox"] == {"received": 1, "rejected": 5} and health["worker"] == "stopped"

    rows = inbox_rows(project)
    accepted_row = rows[0]
    assert (accepted_row.status, accepted_row.event_id, accepted_row.action) == (
        "received",
        "ev-ok",
        "updated",
    )
    refused = [(r.reason or "").split(":")[0] for r in rows[1:]]
    assert refused == ["replayed", "bad_signature", "stale", "stale", "bad_signature"]
    assert rows[2].repeats == 3 and rows[1].repeats == 1
    assert all(r.payload is None and r.status == "rejected" for r in rows[1:])
    assert re.search(r"signed timestamp 18\ds old \(max_age 120s\)", rows[3].reason or "")
    # The log has each refusal and its reason, never the body.
    refusals = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("replayed" in m for m in refusals) and any("bad_signature" in m for m in refusals)
    assert not any(people[0][3] in r.getMessage() or people[0][2] in r.getMessage() for r in caplog.records)


def test_a_vendor_may_acknowledge_a_redelivery_without_processing_it_twice(
    stamped_project: Any,
) -> None:
    config, people = stamped_project
    config.write_text(config.read_text() + "ack_duplicates = true\n", encoding="utf-8")
    project = Project(config)
    service = WebhookService(project, worker=False)
    with serving(service) as url:
        body, headers = stamped_request(message(people[0]))
        first = requests.post(f"{url}/webhooks/src", data=body, headers=headers, timeout=10)
        second = requests.post(f"{url}/webhooks/src", data=body, headers=headers, timeout=10)
    assert (first.status_code, second.status_code, second.text) == (200, 200, "success")
    assert [(r.status, (r.reason or "")[:8]) for r in inbox_rows(project)] == [
        ("received", ""),
        ("rejected", "replayed"),
    ]


# -- processing --------------------------------------------------------------------------------


def test_a_callback_runs_the_pipeline_with_trigger_webhook_over_http(stamped_project: Any) -> None:
    config, people = stamped_project
    project = Project(config)
    from hub.engine import Sync

    assert Sync(project, "load").run().status == "succeeded"
    rewrite_department(config.parent / "people.csv", 4, "法务")
    service = WebhookService(project, policy=FAST)
    with serving(service) as url:
        body, headers = stamped_request(message(people[4]))
        assert requests.post(f"{url}/webhooks/src", data=body, headers=headers, timeout=10).status_code == 200
        wait_for("the event to be processed", lambda: inbox_rows(project)[0].status == "processed")
        assert requests.get(f"{url}/healthz", timeout=10).json()["worker"] == "leading"

    (event,) = inbox_rows(project)
    first, webhook_run = runs_of(project)
    assert (first.trigger, webhook_run.trigger, webhook_run.status) == ("manual", "webhook", "succeeded")
    assert event.run_ids == [webhook_run.id] and event.attempts == 0 and event.processed_at is not None
    assert event.payload is None  # processed: the sealed body is dropped, the record stays
    assert webhook_run.counts["updated"] == 1 and webhook_run.counts["unchanged"] == 19
    assert department_of(config.parent / "target.db", people[4][0]) == "法务"


def test_events_arriving_together_are_one_run_and_busy_pipelines_postpone_them(stamped_project: Any) -> None:
    config, people = stamped_project
    project = Project(config)
    service = WebhookService(project, policy=FAST, worker=False)
    inbox = service.inbox
    for person in people[:3]:
        inbox.store(
            "src", Accepted(event_id=f"ev-{person[0]}", action="updated", body=orjson.dumps(message(person)))
        )

    holder = LeaseHolder(project.db, "pipeline:load")  # a scheduled run of the pipeline, say
    assert holder.try_acquire()
    assert service.processor.run_once() == 0
    rows = inbox_rows(project)
    assert {(r.status, r.attempts) for r in rows} == {("received", 0)}  # waiting, no attempt counted
    assert all("pipeline busy" in (r.reason or "") and r.next_attempt_at is not None for r in rows)
    assert runs_of(project) == []
    assert service.processor.run_once() == 0  # not due yet
    holder.release()

    time.sleep(FAST.busy_retry)
    assert service.processor.run_once() == 3
    (run,) = runs_of(project)
    assert run.trigger == "webhook" and run.counts["inserted"] == 20
    assert {(r.status, tuple(r.run_ids)) for r in inbox_rows(project)} == {("processed", (run.id,))}


def test_failed_runs_count_attempts_then_fail_until_retried(stamped_project: Any, hub_cli: HubCli) -> None:
    config, people = stamped_project
    project = Project(config)
    service = WebhookService(project, policy=FAST, worker=False)
    service.inbox.store(
        "src", Accepted(event_id="ev-1", action="updated", body=orjson.dumps(message(people[0])))
    )
    source = config.parent / "people.csv"
    hidden = source.rename(config.parent / "people.csv.away")

    assert service.processor.run_once() == 0
    (row,) = inbox_rows(project)
    assert (row.status, row.attempts, len(row.run_ids)) == ("received", 1, 1)
    assert row.next_attempt_at is not None and "failed" in (row.reason or "")
    assert service.processor.run_once() == 0  # backing off
    assert service.processor.run_once(now=datetime.now(UTC) + timedelta(hours=1)) == 0
    (row,) = inbox_rows(project)
    assert (row.status, row.attempts, len(row.run_ids)) == ("failed", 2, 2)
    assert [r.status for r in runs_of(project)] == ["failed", "failed"]

    code, listing, _ = hub_cli(["webhooks", "list", "--status", "failed", "--json"], config)
    assert code == 0
    (shown,) = orjson.loads(listing)
    assert shown["id"] == row.id and shown["attempts"] == 2 and "failed" in shown["reason"]

    hidden.rename(source)
    code, retried, _ = hub_cli(["webhooks", "retry"], config)
    assert code == 0 and f"1 event(s) queued again: {row.id}" in retried
    assert service.processor.run_once() == 1
    (row,) = inbox_rows(project)
    assert row.status == "processed" and runs_of(project)[-1].status == "succeeded"


def test_a_crash_between_the_run_and_the_mark_reruns_a_sync_that_changes_nothing(
    stamped_project: Any,
) -> None:
    """The documented guarantee: effects once, even when the worker dies before marking the event."""
    config, people = stamped_project
    project = Project(config)
    from hub.engine import Sync

    assert Sync(project, "load").run().status == "succeeded"
    rewrite_department(config.parent / "people.csv", 2, "审计")
    service = WebhookService(project, policy=FAST, worker=False)
    service.inbox.store(
        "src", Accepted(event_id="ev-1", action="updated", body=orjson.dumps(message(people[2])))
    )

    # The worker ran the sync for the event, and died before marking it processed.
    events = service.inbox.due()
    crashed = SyncDispatcher(project)("src", events)
    assert crashed.error is None and len(crashed.run_ids) == 1
    assert inbox_rows(project)[0].status == "received"

    # hub serve starts again: its worker resumes the event, one more run, which writes nothing.
    restarted = WebhookService(Project(config), policy=FAST)
    restarted.start()
    try:
        wait_for("the event to be resumed", lambda: inbox_rows(project)[0].status == "processed")
    finally:
        restarted.stop()
    _manual, effect, rerun = runs_of(project)
    assert effect.counts["updated"] == 1
    assert rerun.trigger == "webhook" and rerun.counts["unchanged"] == 20
    assert rerun.counts["inserted"] == rerun.counts["updated"] == 0
    assert inbox_rows(project)[0].run_ids == [rerun.id]
    assert department_of(config.parent / "target.db", people[2][0]) == "审计"


def test_events_of_a_connector_no_pipeline_reads_are_processed_with_a_note(stamped_project: Any) -> None:
    config, people = stamped_project
    text = config.read_text()
    config.write_text(text[: text.index("[pipelines.load]")] + text[text.index("[connectors.src.webhook]") :])
    project = Project(config)
    service = WebhookService(project, worker=False)
    service.inbox.store(
        "src", Accepted(event_id="ev-1", action="updated", body=orjson.dumps(message(people[0])))
    )
    assert service.processor.run_once() == 1
    (row,) = inbox_rows(project)
    assert (row.status, row.reason, row.run_ids) == ("processed", "no pipeline reads connector src", [])


# -- Greenhouse, end to end (acceptance) --------------------------------------------------------


GREENHOUSE_TOML = """
[hub]
database = "sqlite:///hub.db"

[connectors.greenhouse]
plugin = "greenhouse"
[connectors.greenhouse.config]
base_url = "{base_url}"
api_key = {{ env = "GREENHOUSE_API_KEY" }}
start_date = "2000-01-01T00:00:00Z"
[connectors.greenhouse.webhook]
secret = {{ secret = "GREENHOUSE_WEBHOOK" }}

[connectors.hr_master]
plugin = "sql"
[connectors.hr_master.config]
url = "sqlite:///target.db"

[pipelines.greenhouse_candidates]
source = "greenhouse"
streams = [{{ name = "candidates", sync_mode = "incremental", mapping = "{mapping}", destination_stream = "candidates" }}]
destinations = ["hr_master"]
"""
WEBHOOK_SECRET = "gh-webhook-secret-1"


@contextmanager
def hub_serve(config: Path, log: Path) -> Iterator[str]:
    """``hub serve`` as an integrator runs it, on a free port; yields its base URL."""
    port = free_port()
    env = {**os.environ, "HUB_CONFIG": str(config), "HUB_LOG_LEVEL": "INFO"}
    with open(log, "wb") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "serve", "--port", str(port)],
            stdout=handle,
            stderr=handle,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert process.poll() is None, log.read_text(errors="replace")
        try:
            return requests.get(f"{url}/healthz", timeout=1).json()["worker"] == "leading"
        except requests.RequestException:
            return False

    try:
        wait_for("hub serve to start", up, timeout=60)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_acceptance_greenhouse_webhooks_trigger_an_incremental_sync_and_bad_or_replayed_ones_are_refused(
    tmp_path: Path, write_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, hub_cli: HubCli
) -> None:
    from hub.engine import Sync
    from hub.sandbox.greenhouse import GreenhouseSimulator

    repo = Path(__file__).resolve().parent.parent
    with GreenhouseSimulator(candidates=20, seed=3, rate_limit=None) as simulator:
        monkeypatch.setenv("GREENHOUSE_API_KEY", simulator.api_token)
        config = write_project(
            GREENHOUSE_TOML.format(
                base_url=simulator.url, mapping=repo / "mappings" / "greenhouse_candidates.yaml"
            )
        )
        project = Project(config)
        project.set_secret("GREENHOUSE_WEBHOOK", WEBHOOK_SECRET)
        first = Sync(project, "greenhouse_candidates").run()
        assert (first.status, first.counts.inserted) == ("succeeded", 20), first.error

        candidate_id, other_id = (c["id"] for c in simulator.records("candidates")[5:7])
        with hub_serve(config, tmp_path / "serve.log") as url:
            hook = f"{url}/webhooks/greenhouse"
            ping_body, ping_headers = webhook_request(WEBHOOK_SECRET, "ping", {"web_hook": {"name": "hub"}})
            assert requests.post(hook, data=ping_body, headers=ping_headers, timeout=10).status_code == 200

            # A recruiter edits a candidate; Greenhouse posts the signed update_candidate webhook.
            simulator.touch_candidate(candidate_id)
            document = simulator.candidate_webhook_payload(candidate_id)
            assert (
                simulator.send_webhook(hook, WEBHOOK_SECRET, document["action"], document["payload"]) == 200
            )
            wait_for(
                "the event to be processed", lambda: [r.status for r in inbox_rows(project)] == ["processed"]
            )

            # Forged, and replayed: refused, logged, recorded, and nothing runs.
            forged_body, forged_headers = webhook_request(
                "not-the-secret", document["action"], document["payload"]
            )
            forged = requests.post(hook, data=forged_body, headers=forged_headers, timeout=10)
            assert (forged.status_code, forged.json()) == (401, {"error": "bad_signature"})
            # Another candidate changes: this delivery is captured, then replayed.
            simulator.touch_candidate(other_id)
            other = simulator.candidate_webhook_payload(other_id)
            body, headers = webhook_request(WEBHOOK_SECRET, other["action"], other["payload"])
            assert requests.post(hook, data=body, headers=headers, timeout=10).status_code == 200
            wait_for("the second event", lambda: inbox_rows(project)[-1].status == "processed")
            replayed = requests.post(hook, data=body, headers=headers, timeout=10)
            assert (replayed.status_code, replayed.json()) == (401, {"error": "replayed"})
            fresh_id = {**headers, "Greenhouse-Event-ID": str(uuid.uuid4())}
            assert requests.post(hook, data=body, headers=fresh_id, timeout=10).status_code == 401
            time.sleep(FAST.poll + 0.5)  # whatever the worker would wrongly do, it has had time to
            health = requests.get(f"{url}/healthz", timeout=10).json()

        changed = simulator.record("candidates", candidate_id)

    assert health["inbox"] == {"processed": 2, "rejected": 3}
    rows = inbox_rows(project)
    update_event, second_event = (r for r in rows if r.status == "processed")
    assert update_event.action == "update_candidate" and update_event.event_id
    runs = runs_of(project)
    assert [r.trigger for r in runs] == ["manual", "webhook", "webhook"]  # none for the refused
    webhook_run = runs[1]
    assert update_event.run_ids == [webhook_run.id] and second_event.run_ids == [runs[2].id]
    assert webhook_run.status == "succeeded"
    # Incremental: the run read from its cursor, i.e. the changed candidate (and at most the
    # boundary one again), and updated exactly it.
    assert 1 <= webhook_run.counts["read"] <= 2 and webhook_run.counts["updated"] == 1
    assert runs[2].status == "succeeded" and runs[2].counts["updated"] == 1
    target = sa.create_engine(f"sqlite:///{tmp_path / 'target.db'}")
    with target.connect() as conn:
        title = conn.execute(
            sa.text("SELECT current_title FROM candidates WHERE remote_id = :id"), {"id": str(candidate_id)}
        ).scalar()
    target.dispose()
    assert title == changed["title"]

    refused = sorted((r.reason or "").split(":")[0] for r in rows if r.status == "rejected")
    assert refused == ["bad_signature", "replayed", "replayed"]
    code, listing, _ = hub_cli(["webhooks", "list", "--status", "rejected", "--json"], config)
    assert code == 0
    assert {e["reason"].split(":")[0] for e in orjson.loads(listing)} == {"bad_signature", "replayed"}
    log = (tmp_path / "serve.log").read_text(errors="replace")
    assert "refused a callback" in log and "bad_signature" in log and "replayed" in log

    # Personal data of the candidate is nowhere in clear: not in the inbox rows, not in the files.
    email = changed["email_addresses"][0]["value"]
    phone = changed["phone_numbers"][0]["value"]
    sent = webhook_request(WEBHOOK_SECRET, document["action"], document["payload"])[0]
    assert email.encode() in sent and phone.encode() in sent  # the callback carried them
    for row in rows:
        cells = [str(getattr(row, c.name)).encode() for c in WebhookInboxEntry.__table__.columns]
        cells.append(row.payload or b"")
        assert not any(email.encode() in cell or phone.encode() in cell for cell in cells)
    for file in tmp_path.glob("hub.db*"):
        raw = file.read_bytes()
        assert email.encode() not in raw and phone.encode() not in raw, file.name
    assert email not in log and phone not in log


def test_purge_deletes_old_processed_and_rejected_entries_only(stamped_project: Any, hub_cli: HubCli) -> None:
    config, people = stamped_project
    project = Project(config)
    inbox = Inbox(project.db, project.keyring)
    done, waiting, failing = (
        inbox.store(
            "src", Accepted(event_id=f"ev-{i}", action="updated", body=orjson.dumps(message(people[i])))
        )
        for i in range(3)
    )
    inbox.mark_processed([done.id], [])
    inbox.record_failure([failing.id], "boom", [], max_attempts=1, delay=lambda _: 0.0)
    inbox.reject("src", "bad_signature", "the signature does not match", remote="10.0.0.1")
    assert inbox.purge(datetime.now(UTC) - timedelta(hours=1)) == 0  # nothing that old

    code, purged, _ = hub_cli(["webhooks", "purge", "--older-than", "0s"], config)
    assert code == 0 and "2 webhook inbox entries deleted" in purged
    assert [(r.id, r.status) for r in inbox_rows(project)] == [
        (waiting.id, "received"),
        (failing.id, "failed"),
    ]


def test_one_worker_per_database_and_a_standby_takes_over(stamped_project: Any) -> None:
    """Two hub serve processes on one database: both store, one works the inbox at a time."""
    config, people = stamped_project
    first, second = WebhookService(Project(config), policy=FAST), WebhookService(Project(config), policy=FAST)

    def post(service: WebhookService, person: list[str]) -> int:
        body, headers = stamped_request(message(person))
        request = WebhookRequest(
            method="POST",
            headers={k.lower(): v for k, v in headers.items()},
            query={},
            body=body,
            received_at=datetime.now(UTC),
        )
        return service.receiver.receive("src", request).status

    first.start()
    wait_for("the first to lead", lambda: first.processor.state == "leading")
    second.start()
    wait_for("the second to stand by", lambda: second.processor.state == "standby")
    try:
        assert post(second, people[0]) == 200  # stored by the standby, run by the leader
        wait_for("the leader to process it", lambda: inbox_rows(first.project)[0].status == "processed")
        first.stop()
        wait_for("the standby to take over", lambda: second.processor.state == "leading")
        assert post(second, people[1]) == 200
        wait_for("the new leader to process it", lambda: inbox_rows(first.project)[1].status == "processed")
    finally:
        first.stop()
        second.stop()
    assert [r.trigger for r in runs_of(first.project)] == ["webhook", "webhook"]
