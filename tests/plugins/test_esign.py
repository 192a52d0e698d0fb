"""The ``esign`` connector against its simulator, over loopback HTTP.

Signed requests (a wrong secret refused with 401), the contract upload (upload URL, PUT, polling
until the file is ready), sign flows started exactly once when e签宝's answer is lost or a 5xx
refused the first try, the flow found again by its title mark and ``customBizNum``, reads retried
on 5xx and 429; ``esign.send_contract`` rendering the labour contract with the clause rules
(a probation art. 19 refuses fails for good, naming the article) and waiting; e签宝's callbacks
verified (query values signed too; a tampered, unsigned, stale or replayed one refused); and a
case run through the real ``OnboardingFlow``/``OnboardingRunner`` on SQLite with ``hub serve``'s
receiver: the signed contract archived sealed with its hash, the flow revoked on cancel, no
personal data in hub's database file.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
import requests
import uvicorn
from airbyte_cdk.models import (
    ConfiguredAirbyteCatalog,
    ConfiguredAirbyteStream,
    DestinationSyncMode,
    Status,
    SyncMode,
    Type,
)
from airbyte_cdk.sources import AbstractSource
from hub_esign.actions import FLOW_COMPLETE, SIGNER_COMPLETE, SendContract
from hub_esign.client import DONE, REVOKED, SIGNING, EsignClient, Signer, SignFlowRequest, flow_reference
from hub_esign.econtract import archived_contract
from hub_esign.errors import EsignAuthError, EsignError
from hub_esign.source import EsignSource
from hub_esign.webhook import EsignVerifier

from hub.callbacks.hmac_schemes import esign_callback_headers
from hub.contracts.documents import open_archived_document
from hub.onboarding import ActionContext, ActionFailed, CallbackEvent, ExternalRef, TaskResult
from hub.onboarding.actions import OutcomeKind, UndoNotSupported
from hub.onboarding.flow import OnboardingFlow
from hub.onboarding.runner import OnboardingRunner
from hub.onboarding.webhooks import onboarding_dispatcher
from hub.project import Project
from hub.sandbox import Faults
from hub.sandbox.esign import EsignSimulator
from hub.webhooks import Accepted, WebhookRejected, WebhookRequest
from hub.webhooks.app import create_app
from hub.webhooks.processor import ProcessingPolicy
from hub.webhooks.service import WebhookService

LOG = logging.getLogger("test.esign")
KEY = "5b0c3f51-0000-4000-8000-00000000e510"
ID_NUMBER = "11010519491231002X"
MOBILE = "13912340001"
CASE: dict[str, Any] = {
    "name": "测试员工",
    "id_number": ID_NUMBER,
    "phone": "+86" + MOBILE,
    "email": "ce.shi@example.com",
    "job_title": "后端工程师",
    "department": "研发部",
    "start_date": "2026-12-01",
    "contract_type": "FIXED_TERM",
    "contract_term_months": 36,
    "probation_months": 3,
    "salary": {"amount": {"amount": "20000", "currency": "CNY"}, "pay_period": {"value": "MONTH"}},
}
OPTIONS = {"duties": ["负责后端服务开发"], "attributes": {"core_data_access": True}}
CONTRACT_RULES = """
[contracts]
[[contracts.clauses]]
name = "confidentiality"
when = { core_data_access = true }
post_employment_months = 24
"""
FAST = ProcessingPolicy(busy_retry=0.2, retry_base=0.2, poll=0.2, settle=0.0, max_attempts=2)


@pytest.fixture
def sim() -> Iterator[EsignSimulator]:
    with EsignSimulator(signing_delay=3600) as simulator:
        yield simulator


def config_of(sim: EsignSimulator, **extra: Any) -> dict[str, Any]:
    return {
        "base_url": sim.url,
        "app_id": sim.app_id,
        "app_secret": sim.app_secret,
        "employer": "示例科技有限公司",
        "backoff_base_seconds": 0.01,
        "file_poll_interval_seconds": 0,
        **extra,
    }


def client_of(sim: EsignSimulator, sleeps: list[float] | None = None, **extra: Any) -> EsignClient:
    record = sleeps if sleeps is not None else []
    return EsignClient.from_config(config_of(sim, **extra), sleep=record.append)


def paths(sim: Any, fragment: str) -> list[int]:
    """Statuses of the requests whose path contains ``fragment``."""
    return [status for _, path, status in sim.requests if fragment in path]


def context(
    config: dict[str, Any], *, key: str = KEY, project: Project | None = None, **extra: Any
) -> ActionContext:
    fields: dict[str, Any] = {
        "case_id": "case-1",
        "task": "send_contract",
        "action": "esign.send_contract",
        "connector": "esign",
        "idempotency_key": key,
        "case": CASE,
        "options": OPTIONS,
        "results": {},
        "attempt": 1,
        "config_loader": lambda: config,
        "project": project,
        **extra,
    }
    return ActionContext(**fields)


def flow_request(client: EsignClient, key: str = KEY, account: str = MOBILE) -> SignFlowRequest:
    file_id = client.upload_file(b"%PDF-1.4 contract", "contract.pdf", convert_to_pdf=False)
    return SignFlowRequest(
        file_id=file_id,
        file_name="劳动合同.pdf",
        signer=Signer("测试员工", account, ID_NUMBER),
        reference=key,
    )


class Receiver:
    """A loopback endpoint that records what it is sent (headers, body) and answers 200."""

    def __init__(self, path: str = "/webhooks/esign") -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@contextmanager
def serving(service: WebhookService) -> Iterator[str]:
    """``hub serve``'s app on real uvicorn, loopback, an ephemeral port; yields its base URL."""
    config = uvicorn.Config(create_app(service), host="127.0.0.1", port=0, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def read_stream(source: AbstractSource, config: dict[str, Any], stream: str) -> list[dict[str, Any]]:
    airbyte_stream = next(s for s in source.discover(LOG, config).streams if s.name == stream)
    catalog = ConfiguredAirbyteCatalog(
        streams=[
            ConfiguredAirbyteStream(
                stream=airbyte_stream,
                sync_mode=SyncMode.full_refresh,
                destination_sync_mode=DestinationSyncMode.overwrite,
            )
        ]
    )
    return [
        dict(m.record.data)
        for m in source.read(LOG, config, catalog)
        if m.type == Type.RECORD and m.record is not None
    ]


# -- signed requests -----------------------------------------------------------------------------


def test_requests_are_signed_and_a_wrong_secret_is_refused(sim: EsignSimulator) -> None:
    client_of(sim).check()
    assert paths(sim, "/sign-flow-list") == [200]
    with pytest.raises(EsignAuthError) as caught:
        client_of(sim, app_secret="not-the-secret-zz").check()
    assert caught.value.code == 401 and not caught.value.retryable
    assert "not-the-secret-zz" not in str(caught.value)
    unsigned = requests.post(f"{sim.url}/v3/sign-flow/sign-flow-list", json={"pageNum": 1}, timeout=5)
    assert unsigned.status_code == 401 and unsigned.headers["X-Hub-Simulator"] == "esign"


def test_upload_waits_until_the_file_is_ready(sim: EsignSimulator) -> None:
    sleeps: list[float] = []
    client = client_of(sim, sleeps)
    html = "<html><body>劳动合同</body></html>".encode()
    file_id = client.upload_file(html, "劳动合同.html", convert_to_pdf=True)
    uploaded = sim.files[file_id]
    assert uploaded.content == html and uploaded.convert and uploaded.status == 5
    assert paths(sim, f"/v3/files/{file_id}") == [200, 200]  # processing, then converted
    assert len(sleeps) == 1


def test_sign_flow_is_created_once_when_the_answer_is_lost(sim: EsignSimulator) -> None:
    client = client_of(sim)
    request = flow_request(client)
    sim.lose_replies("/create-by-file")  # e签宝 creates the flow, the answer never arrives
    flow_id = client.start_flow_once(request)
    assert list(sim.flows) == [flow_id] and sim.contracts == 1
    assert paths(sim, "/create-by-file") == [502]  # looked up, not sent again
    flow = sim.flows[flow_id]
    assert flow_reference(KEY) in flow.title
    employee = flow.signers[0]
    assert employee["psnSignerInfo"] == {
        "psnAccount": MOBILE,
        "psnInfo": {"psnName": "测试员工"},
    }  # no ID number
    assert employee["signFields"][0]["customBizNum"] == KEY
    assert flow.signers[1]["signFields"][0]["normalSignFieldConfig"]["autoSign"] is True
    assert client.start_flow_once(request) == flow_id and sim.contracts == 1


def test_sign_flow_whose_connection_dropped_is_created_once(sim: EsignSimulator) -> None:
    client = client_of(sim)
    request = flow_request(client)
    sim.drop_replies("/create-by-file")  # e签宝 creates the flow, then the connection closes
    flow_id = client.start_flow_once(request)
    assert list(sim.flows) == [flow_id] and sim.contracts == 1
    assert paths(sim, "/create-by-file") == [0]  # looked up, not sent again


def test_create_that_never_arrived_is_sent_again_after_a_5xx(sim: EsignSimulator) -> None:
    client = client_of(sim)
    request = flow_request(client)
    sim.faults = Faults(errors=1, error_status=503, only="/create-by-file")
    flow_id = client.start_flow_once(request)
    assert sim.contracts == 1 and flow_id in sim.flows
    assert paths(sim, "/create-by-file") == [503, 200]


def test_reads_are_retried_on_5xx_and_throttling(sim: EsignSimulator) -> None:
    sleeps: list[float] = []
    client = client_of(sim, sleeps)
    flow_id = client.create_flow(flow_request(client))
    sleeps.clear()  # the upload's poll
    sim.faults = Faults(errors=2, error_status=502, only="/detail")
    assert client.flow_status(flow_id) == SIGNING
    sim.faults = Faults(throttle=2, only="/detail")
    assert client.flow_status(flow_id) == SIGNING
    assert paths(sim, "/detail") == [502, 502, 200, 429, 429, 200]
    assert len(sleeps) == 4


def test_find_flow_needs_the_mark_and_the_custom_biz_num(sim: EsignSimulator) -> None:
    client = client_of(sim)
    other = "5b0c3f51-0000-4000-8000-0000000000ff"
    mine = client.create_flow(flow_request(client))
    client.create_flow(flow_request(client, key=other))
    assert client.find_flow(KEY, MOBILE) == mine
    assert client.find_flow(KEY, "13700000000") is None  # another signer's account
    assert client.revoke(mine, "测试") and not client.revoke(mine, "测试")  # twice is harmless
    assert client.find_flow(KEY, MOBILE) is None  # a revoked flow is not recovered: a new one may start


# -- esign.send_contract ------------------------------------------------------------------------


def test_send_contract_renders_uploads_starts_and_waits(sim: EsignSimulator, write_project: Any) -> None:
    project = Project(write_project(CONTRACT_RULES))
    action = SendContract()
    ctx = context(config_of(sim, send_id_number=True), project=project)
    assert action.find(ctx) is None
    outcome = action.perform(ctx)
    assert outcome.kind == OutcomeKind.WAITING and outcome.waiting_for == FLOW_COMPLETE
    (flow_id,) = sim.flows
    assert outcome.correlation == flow_id and outcome.ref == ExternalRef(flow_id, "esign_sign_flow")
    uploaded = sim.files[sim.flows[flow_id].file_id]
    text = (uploaded.content or b"").decode()
    assert "测试员工" in text and "保密条款" in text and "负责后端服务开发" in text  # clause rule applied
    assert outcome.data["unsigned_sha256"] == hashlib.sha256(uploaded.content or b"").hexdigest()
    assert outcome.data["clause_set_version"].startswith("cs-")
    assert outcome.data["sign_url"].startswith(sim.url)
    person = sim.flows[flow_id].signers[0]["psnSignerInfo"]["psnInfo"]
    assert person == {"psnName": "测试员工", "psnIDCardNum": ID_NUMBER, "psnIDCardType": "CRED_PSN_CH_IDCARD"}
    found = action.find(ctx)
    assert found == ExternalRef(flow_id, "esign_sign_flow")  # a lost reply is recovered
    assert action.recovered(ctx, found).kind == OutcomeKind.WAITING


@pytest.mark.parametrize(
    ("case", "article"),
    [
        ({"contract_term_months": 12, "probation_months": 3}, "劳动合同法第十九条"),
        ({"probation_salary": "10000"}, "劳动合同法第二十条"),
    ],
)
def test_a_contract_the_law_refuses_fails_for_good_naming_the_article(
    sim: EsignSimulator, case: dict[str, Any], article: str
) -> None:
    with pytest.raises(ActionFailed) as caught:
        SendContract().perform(context(config_of(sim), case={**CASE, **case}))
    assert caught.value.permanent and caught.value.reason.startswith(article)
    assert "20000" not in caught.value.reason and "10000" not in caught.value.reason
    assert sim.files == {} and sim.contracts == 0  # nothing reached e签宝


def test_incomplete_case_is_refused_without_values(sim: EsignSimulator) -> None:
    with pytest.raises(ActionFailed) as caught:
        SendContract().perform(context(config_of(sim), case={**CASE, "start_date": "soon"}))
    assert (
        caught.value.permanent and "start_date" in caught.value.reason and "soon" not in caught.value.reason
    )
    without_salary = {k: v for k, v in CASE.items() if k != "salary"}
    with pytest.raises(ActionFailed, match="monthly salary"):
        SendContract().perform(context(config_of(sim), case=without_salary))


def test_callbacks_decide_the_outcome_and_a_signed_contract_cannot_be_revoked(
    sim: EsignSimulator, write_project: Any
) -> None:
    project = Project(write_project("[hub]\n"))
    action = SendContract()
    ctx = context(config_of(sim), project=project)
    waiting = action.perform(ctx)
    flow_id = str(waiting.correlation)
    own = {"send_contract": TaskResult(waiting.ref, waiting.data)}
    ctx = context(config_of(sim), project=project, results=own, ref=waiting.ref)
    signer_event = CallbackEvent(flow_id, SIGNER_COMPLETE, {"sign_result": 2})
    assert action.on_callback(ctx, signer_event).kind == OutcomeKind.WAITING  # not signed yet at e签宝
    sim.sign(flow_id)
    done = action.on_callback(ctx, signer_event)  # the final event lost: hub looks at the flow
    assert done.kind == OutcomeKind.DONE and done.data["contract_status"] == "SIGNED"
    archived = archived_contract(done.data)
    signed = open_archived_document(project, archived)
    assert signed == sim.signed_content(sim.flows[flow_id]) and "e签宝 simulator".encode() in signed
    assert archived.sha256 == done.data["signed_sha256"] == hashlib.sha256(signed).hexdigest()
    assert done.data["unsigned_sha256"] == waiting.data["unsigned_sha256"] != archived.sha256
    assert archived.clause_set_version == waiting.data["clause_set_version"]
    with pytest.raises(UndoNotSupported):
        action.undo(ctx)


def test_a_refusal_or_a_revoked_flow_goes_to_an_operator(sim: EsignSimulator) -> None:
    action = SendContract()
    ctx = context(config_of(sim))
    flow_id = str(action.perform(ctx).correlation)
    revoked = CallbackEvent(flow_id, FLOW_COMPLETE, {"sign_flow_status": 3})
    assert action.on_callback(ctx, revoked).reason == "the e签宝 sign flow was revoked"
    refused = CallbackEvent(flow_id, SIGNER_COMPLETE, {"sign_result": 4})
    outcome = action.on_callback(ctx, refused)
    assert outcome.kind == OutcomeKind.FAILED and "refused" in (outcome.reason or "")


def test_undo_revokes_a_flow_in_progress_and_twice_is_harmless(sim: EsignSimulator) -> None:
    action = SendContract()
    outcome = action.perform(context(config_of(sim)))
    ctx = context(config_of(sim), ref=outcome.ref)
    action.undo(ctx)
    action.undo(ctx)
    (flow,) = sim.flows.values()
    assert flow.status == REVOKED and flow.revoke_reason == "入职已取消"
    assert [e.action for e in sim.events] == ["SIGN_FLOW_COMPLETE"]


# -- callbacks ----------------------------------------------------------------------------------


def verifier_of(sim: EsignSimulator) -> EsignVerifier:
    return EsignVerifier({"app_secret": sim.app_secret, "app_id": sim.app_id})


def as_request(headers: dict[str, str], body: bytes, query: dict[str, str] | None = None) -> WebhookRequest:
    return WebhookRequest("POST", headers, query or {}, body, datetime.now(UTC))


def test_callbacks_are_signed_over_timestamp_query_and_body(sim: EsignSimulator, receiver: Receiver) -> None:
    client = client_of(sim)
    flow_id = client.create_flow(flow_request(client))
    sim.sign(flow_id)
    target = receiver.url + "?tenant=t1&case=c9"
    deliveries = sim.deliver_callbacks(target)
    assert [(d.action, d.accepted) for d in deliveries] == [(SIGNER_COMPLETE, True), (FLOW_COMPLETE, True)]
    assert sim.deliver_callbacks(target) == []  # acknowledged: nothing left
    verifier = verifier_of(sim)
    query = {"tenant": "t1", "case": "c9"}
    verdicts = []
    for headers, body in receiver.received:
        assert headers["x-tsign-open-signature-algorithm"] == "hmac-sha256"
        assert int(headers["x-tsign-open-timestamp"]) > 10**12  # milliseconds
        verdict = verifier.verify(as_request(headers, body, query))
        assert isinstance(verdict, Accepted) and verdict.signed_at is not None
        assert verdict.reply.body == b'{"code":"200","msg":"success"}'
        verdicts.append(verdict)
        event = SendContract().parse_callback(verdict.action, verdict.body)
        assert event is not None and event.external_id == flow_id
    assert orjson.loads(verdicts[1].body)["signFlowStatus"] == "2"
    headers, body = receiver.received[1]
    for query_seen, tampered_body, tampered_headers, reason in [
        ({"tenant": "t2", "case": "c9"}, body, headers, "bad_signature"),  # the query is signed too
        (query, body.replace(b'"2"', b'"3"'), headers, "bad_signature"),
        (query, body, {**headers, "x-tsign-open-timestamp": "1700000000000"}, "bad_signature"),
        (
            query,
            body,
            {k: v for k, v in headers.items() if k != "x-tsign-open-signature"},
            "missing_signature",
        ),
    ]:
        with pytest.raises(WebhookRejected) as refused:
            verifier.verify(as_request(tampered_headers, tampered_body, query_seen))
        assert refused.value.reason == reason
    other_app = EsignVerifier({"app_secret": sim.app_secret, "app_id": "another-app"})
    with pytest.raises(WebhookRejected):
        other_app.verify(as_request(headers, body, query))
    assert SendContract().parse_callback("AUTH_PASS", body) is None  # unknown actions are ignored


def test_repeated_and_reversed_deliveries(sim: EsignSimulator, receiver: Receiver) -> None:
    client = client_of(sim)
    flow_id = client.create_flow(flow_request(client))
    sim.sign(flow_id)
    deliveries = sim.deliver_callbacks(receiver.url, repeat={flow_id: 3}, reverse=True)
    assert [d.action for d in deliveries] == [FLOW_COMPLETE] * 3 + [SIGNER_COMPLETE] * 3
    bodies = [body for _, body in receiver.received]
    assert len(set(bodies)) == 2  # e签宝's retries repeat the body byte for byte: one event id each


def test_background_delivery_goes_to_the_flows_notify_url(receiver: Receiver) -> None:
    with EsignSimulator(signing_delay=0.0, auto_deliver=True) as simulator:
        client = client_of(simulator, notify_url=receiver.url)
        client.create_flow(flow_request(client))
        deadline = time.monotonic() + 10
        while len(receiver.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert len(receiver.received) == 2 and all(d.accepted for d in simulator.deliveries)
    assert simulator.signed == 1


# -- the Airbyte source -------------------------------------------------------------------------


def test_source_check_and_sign_flows(sim: EsignSimulator) -> None:
    client = client_of(sim)
    for key in (KEY, "5b0c3f51-0000-4000-8000-0000000000aa"):
        client.create_flow(flow_request(client, key=key))
    signed = next(iter(sim.flows))
    sim.sign(signed)
    config = config_of(sim)
    assert EsignSource().check(LOG, config).status == Status.SUCCEEDED
    records = read_stream(EsignSource(), config, "sign_flows")
    assert {r["signFlowId"]: r["status"] for r in records} == {
        flow_id: "DONE" if flow_id == signed else "SIGNING" for flow_id in sim.flows
    }
    assert all(MOBILE not in str(r) for r in records)
    failed = EsignSource().check(LOG, config_of(sim, app_secret="wrong-secret-value"))
    assert failed.status == Status.FAILED and "wrong-secret-value" not in (failed.message or "")


# -- through hub's onboarding flow and hub serve ---------------------------------------------------


def esign_project(
    sim: EsignSimulator, write_project: Any, monkeypatch: pytest.MonkeyPatch, **extra: str
) -> Project:
    config = write_project(
        CONTRACT_RULES
        + f"""
        [connectors.esign]
        plugin = "esign"
        [connectors.esign.config]
        base_url = "{sim.url}"
        app_id = "{sim.app_id}"
        app_secret = {{ env = "ESIGN_APP_SECRET" }}
        employer = "示例科技有限公司"
        backoff_base_seconds = 0.01
        max_attempts = {extra.get("max_attempts", "3")}
        file_poll_interval_seconds = 0
        [connectors.esign.webhook]
        app_secret = {{ env = "ESIGN_APP_SECRET" }}
        app_id = "{sim.app_id}"
        max_age = "2m"

        [onboarding]
        schedule = false
        retry = {{ attempts = 3, base = "1s", max = "5s" }}
        tasks = [
          {{ name = "send_contract", action = "esign.send_contract", connector = "esign", options = {{ duties = ["负责后端服务开发"], attributes = {{ core_data_access = true }} }} }},
        ]
        """
    )
    monkeypatch.setenv("ESIGN_APP_SECRET", sim.app_secret)
    return Project(config)


def task_of(flow: OnboardingFlow, case_id: str) -> Any:
    (task,) = flow.show(case_id).tasks
    return task


def test_case_end_to_end_through_hub_serve(
    sim: EsignSimulator,
    write_project: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    project = esign_project(sim, write_project, monkeypatch)
    flow = OnboardingFlow(project)
    case_id, _ = flow.open_case(CASE, source="test")
    runner = OnboardingRunner(flow)
    runner.run_once()
    assert task_of(flow, case_id).status == "WAITING"
    (flow_id,) = sim.flows
    sim.sign(flow_id)
    service = WebhookService(project, policy=FAST, dispatcher=onboarding_dispatcher(project), worker=False)
    with serving(service) as served:
        hook = f"{served}/webhooks/esign"
        # the final event three times and the signer's event late: every copy answered 200
        deliveries = sim.deliver_callbacks(hook, repeat={flow_id: 3}, reverse=True)
        assert [d.http_status for d in deliveries] == [200] * 6
        event = sim.events[-1]
        stale_stamp = str(int((time.time() - 600) * 1000))
        stale = esign_callback_headers(sim.app_id, sim.app_secret, stale_stamp, event.body)
        answer = requests.post(hook, data=event.body, headers=stale, timeout=10)
        assert (answer.status_code, answer.json()) == (401, {"error": "stale"})
        forged = esign_callback_headers(sim.app_id, "guessed-secret", event.timestamp_ms, event.body)
        assert requests.post(hook, data=event.body, headers=forged, timeout=10).status_code == 401
        fresh = esign_callback_headers(sim.app_id, sim.app_secret, str(int(time.time() * 1000)), event.body)
        replayed = requests.post(hook, data=event.body, headers=fresh, timeout=10)
        assert replayed.status_code == 200  # the same body again: acknowledged, not stored twice
        assert service.processor.run_once() == 2
    task = task_of(flow, case_id)
    assert task.status == "DONE" and flow.show(case_id).status == "COMPLETED"
    _, results, _ = flow.load_case(case_id)
    archived = archived_contract(results["send_contract"])
    signed = open_archived_document(project, archived)
    assert signed == sim.signed_content(sim.flows[flow_id])
    assert archived.sha256 == hashlib.sha256(signed).hexdigest()
    assert sim.contracts == 1 and sim.signed == 1
    database = (tmp_path / ".hub" / "hub.db").read_bytes()
    for secret in (MOBILE, ID_NUMBER, "测试员工", "20000"):
        assert secret.encode() not in database, secret
        assert not any(secret in record.getMessage() for record in caplog.records), secret
    assert MOBILE not in str(flow.show(case_id).as_dict())


def test_an_attempt_that_failed_after_the_flow_was_made_recovers_it(
    sim: EsignSimulator, write_project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = esign_project(sim, write_project, monkeypatch, max_attempts="2")
    flow = OnboardingFlow(project)
    case_id, _ = flow.open_case(CASE, source="test")
    runner = OnboardingRunner(flow)
    sim.faults = Faults(errors=2, error_status=503, only="/sign-url")  # the flow exists, then 503s
    runner.run_once()
    task = task_of(flow, case_id)
    assert task.status == "FAILED" and "sign_url" in (task.last_error or "")
    assert sim.contracts == 1
    runner.run_once(datetime.now(UTC) + timedelta(seconds=30))
    assert task_of(flow, case_id).status == "WAITING"
    assert sim.contracts == 1 and len(sim.files) == 1  # found by its mark, not made again


def test_a_flow_made_on_a_dropped_connection_is_found_by_the_next_attempt(
    sim: EsignSimulator, write_project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = esign_project(sim, write_project, monkeypatch, max_attempts="2")
    flow = OnboardingFlow(project)
    case_id, _ = flow.open_case(CASE, source="test")
    runner = OnboardingRunner(flow)
    sim.drop_replies("/create-by-file")  # made at e签宝, the connection closed unanswered
    sim.faults = Faults(errors=2, error_status=503, only="/sign-url")  # found, then the link refused
    runner.run_once()
    assert task_of(flow, case_id).status == "FAILED" and sim.contracts == 1
    runner.run_once(datetime.now(UTC) + timedelta(seconds=30))
    assert task_of(flow, case_id).status == "WAITING"
    assert sim.contracts == 1 and paths(sim, "/create-by-file") == [0]  # found, not sent again


def test_cancel_revokes_the_flow_and_a_refusal_needs_an_operator(
    sim: EsignSimulator, write_project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = esign_project(sim, write_project, monkeypatch)
    flow = OnboardingFlow(project)
    cancelled, _ = flow.open_case(CASE, source="test")
    refused, _ = flow.open_case({**CASE, "phone": "+8613912340002"}, source="test")
    OnboardingRunner(flow).run_once()
    report = flow.cancel(cancelled, "offer withdrawn")
    assert report.undone == ["send_contract"] and flow.show(cancelled).status == "CANCELLED"
    by_account = {f.account: f for f in sim.flows.values()}
    assert by_account[MOBILE].status == REVOKED
    other = by_account["13912340002"]
    sim.sign(other.flow_id, refuse=True)
    for event in sim.due_events():
        parsed = SendContract().parse_callback(event.action, event.body)
        if parsed is not None and parsed.external_id == other.flow_id:
            flow.on_callback("esign", parsed.event_type, parsed.external_id, parsed.payload)
    task = task_of(flow, refused)
    assert task.status == "NEEDS_OPERATOR" and "refused" in (task.last_error or "")
    assert other.status != DONE


def test_plugin_registers_the_connector_action_and_verifier() -> None:
    import hub_esign

    assert [c.name for c in hub_esign.hub_register_connectors()] == ["esign"]
    assert hub_esign.hub_register_connectors()[0].category == "econtract"
    assert [a.name for a in hub_esign.hub_register_onboarding_actions()] == ["esign.send_contract"]
    assert hub_esign.hub_register_webhooks()[0].verifier is EsignVerifier
    unreachable = {"app_id": "x", "app_secret": "y", "base_url": "http://127.0.0.1:9", "max_attempts": 1}
    with pytest.raises(EsignError, match=r"no answer|gave up"):
        EsignClient.from_config(unreachable).check()
    assert urlsplit(EsignClient.from_config({"app_id": "x", "app_secret": "y"}).settings.base_url).netloc == (
        "openapi.esign.cn"
    )
