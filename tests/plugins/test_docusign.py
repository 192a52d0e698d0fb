"""The ``docusign`` connector against its simulator, over loopback HTTP.

The JWT grant (RS256 assertion checked by the simulator) fetched once, cached, renewed before
expiry and after a 401; a configured token used as it is; the account's API base from
``/oauth/userinfo``; rate-limit headers kept and a 429 waited out until ``X-RateLimit-Reset``;
reads retried on 5xx; envelopes sent exactly once when DocuSign's answer is lost or a 5xx
refused the first try (found by the ``hub_idempotency_key`` custom field); ``docusign.send_contract``
from hub's rendered contract and from a template with text tabs; Connect's HMAC verified (key
rotation, tampering, retries with a new ``retryCount`` recognised as one event); and a case run
through the real ``OnboardingFlow``/``OnboardingRunner`` on SQLite with ``hub serve``: the
completed envelope's document archived sealed with its hash, an envelope voided on cancel.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
from airbyte_cdk.models import Status
from hub_docusign.actions import COMPLETED_EVENT, ENVELOPE_KIND, SendContract
from hub_docusign.client import DocuSignClient, jwt_assertion
from hub_docusign.errors import DocuSignAuthError, DocuSignRateLimited
from hub_docusign.source import DocuSignSource
from hub_docusign.webhook import DocuSignVerifier
from hub_esign.econtract import archived_contract

from hub.callbacks.hmac_schemes import docusign_headers
from hub.contracts.documents import open_archived_document
from hub.errors import ConfigurationError
from hub.onboarding import ActionContext, ActionFailed, CallbackEvent, ExternalRef, TaskResult
from hub.onboarding.actions import OutcomeKind, UndoNotSupported
from hub.onboarding.flow import OnboardingFlow
from hub.onboarding.runner import OnboardingRunner
from hub.onboarding.webhooks import onboarding_dispatcher
from hub.project import Project
from hub.sandbox import Faults, RateLimit
from hub.sandbox.docusign import TEMPLATE_ID, DocuSignSimulator
from hub.webhooks import Accepted, WebhookRejected, WebhookRequest
from hub.webhooks.registry import webhook_endpoints
from hub.webhooks.service import WebhookService
from tests.plugins.test_esign import (
    CASE,
    CONTRACT_RULES,
    FAST,
    LOG,
    OPTIONS,
    Receiver,
    paths,
    read_stream,
    serving,
)

KEY = "5b0c3f51-0000-4000-8000-00000000d051"
EMAIL = "ce.shi@example.com"


@pytest.fixture(scope="module")
def identity_sim() -> Iterator[DocuSignSimulator]:
    """One RSA key pair for the module (generating one takes a moment); reset per test below."""
    with DocuSignSimulator(signing_delay=3600) as simulator:
        yield simulator


@pytest.fixture
def sim(identity_sim: DocuSignSimulator) -> DocuSignSimulator:
    identity_sim.envelopes.clear()
    identity_sim.events.clear()
    identity_sim.deliveries.clear()
    identity_sim.requests.clear()
    identity_sim.contracts = identity_sim.signed = 0
    identity_sim.faults = Faults()
    identity_sim.rate_limit = RateLimit(3000, 3600.0)
    identity_sim.signing_outcome = "sign"
    identity_sim.hmac_keys = ("sim-docusign-connect-hmac-key-1",)
    identity_sim._losses.clear()
    identity_sim._lost_replies.clear()
    identity_sim._refusals.clear()
    return identity_sim


def config_of(sim: DocuSignSimulator, **extra: Any) -> dict[str, Any]:
    return {
        "oauth_base_url": sim.url,
        "integration_key": sim.identity.integration_key,
        "user_id": sim.identity.user_id,
        "private_key": sim.private_key_pem,
        "employer": "Example Tech Co., Ltd.",
        "backoff_base_seconds": 0.01,
        **extra,
    }


def client_of(sim: DocuSignSimulator, sleeps: list[float] | None = None, **extra: Any) -> DocuSignClient:
    record = sleeps if sleeps is not None else []
    return DocuSignClient.from_config(config_of(sim, **extra), sleep=record.append)


def context(config: dict[str, Any], *, project: Project | None = None, **extra: Any) -> ActionContext:
    fields: dict[str, Any] = {
        "case_id": "case-1",
        "task": "send_contract",
        "action": "docusign.send_contract",
        "connector": "docusign",
        "idempotency_key": KEY,
        "case": CASE,
        "options": OPTIONS,
        "results": {},
        "attempt": 1,
        "config_loader": lambda: config,
        "project": project,
        **extra,
    }
    return ActionContext(**fields)


def html_envelope(client: DocuSignClient, key: str = KEY) -> dict[str, Any]:
    from hub_docusign.client import Recipient

    return client.document_envelope(
        b"<html><body>contract</body></html>", "html", Recipient("Ce Shi", EMAIL), key
    )


# -- tokens and the account -----------------------------------------------------------------------


def test_jwt_token_is_fetched_once_and_the_api_base_discovered(sim: DocuSignSimulator) -> None:
    client = client_of(sim)
    client.check()
    client.check()
    assert client.token_fetches == 1 and paths(sim, "/oauth/token") == [200]
    assert paths(sim, "/oauth/userinfo") == [200]  # once: the base is kept
    assert client.api_base() == f"{sim.url}/restapi/v2.1/accounts/{sim.identity.account_id}"


def test_expired_token_is_renewed_once_and_the_call_repeated(sim: DocuSignSimulator) -> None:
    client = client_of(sim)
    client.check()
    sim.expire_tokens()
    client.check()
    assert client.token_fetches == 2
    assert paths(sim, "/envelopes") == [200, 401, 200]


def test_token_is_renewed_before_expiry_by_the_margin(sim: DocuSignSimulator) -> None:
    now = [sim.clock()]
    real_clock, sim.clock = sim.clock, lambda: now[0]  # the JWT's iat must agree with DocuSign's clock
    try:
        client = DocuSignClient.from_config(config_of(sim, token_margin_seconds=300), clock=lambda: now[0])
        client.check()
        now[0] += 3600 - 299  # inside the margin: a new token before DocuSign refuses the old one
        client.check()
    finally:
        sim.clock = real_clock
    assert client.token_fetches == 2 and paths(sim, "/oauth/token") == [200, 200]


def test_a_wrong_key_or_user_is_an_auth_error_without_secrets(sim: DocuSignSimulator) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    with pytest.raises(DocuSignAuthError) as caught:
        client_of(sim, private_key=pem).check()
    assert caught.value.code == "invalid_grant" and "PRIVATE KEY" not in str(caught.value)
    with pytest.raises(DocuSignAuthError, match="invalid_grant"):
        client_of(sim, user_id="00000000-0000-0000-0000-000000000000").check()
    assert (
        jwt_assertion(integration_key="k", user_id="u", audience="a", private_key_pem=pem, now=0).count(".")
        == 2
    )


def test_a_configured_access_token_is_used_as_it_is(sim: DocuSignSimulator) -> None:
    token, _ = sim.issue_token()
    client = DocuSignClient.from_config(
        {"oauth_base_url": sim.url, "access_token": token, "backoff_base_seconds": 0.01}
    )
    client.check()
    assert paths(sim, "/oauth/token") == []
    sim.expire_tokens()
    with pytest.raises(DocuSignAuthError) as caught:
        client.check()
    assert caught.value.code == "USER_AUTHENTICATION_FAILED" and token not in str(caught.value)
    with pytest.raises(ValueError, match="JWT grant"):
        DocuSignClient.from_config({"oauth_base_url": sim.url})


# -- rate limits and server errors ----------------------------------------------------------------


def test_rate_limit_headers_are_kept_and_a_429_waits_for_the_reset(sim: DocuSignSimulator) -> None:
    sleeps: list[float] = []
    client = client_of(sim, sleeps)
    client.check()
    assert client.rate_limit is not None
    limit, remaining, reset = client.rate_limit
    assert limit == 3000 and 0 < remaining < 3000 and reset > sim.clock()
    sim.faults = Faults(throttle=1, retry_after=5, only="/envelopes")
    client.check()
    assert paths(sim, "/envelopes")[-2:] == [429, 200]
    assert len(sleeps) == 1 and 4 <= sleeps[0] <= 6.5  # until X-RateLimit-Reset, not a blind backoff


def test_a_rate_limit_that_persists_is_a_typed_error_with_the_wait(sim: DocuSignSimulator) -> None:
    client = client_of(sim, max_attempts=2)
    client.check()
    sim.rate_limit = RateLimit(1, 3600.0)
    client.check()  # the one call of this "hour"
    with pytest.raises(DocuSignRateLimited) as caught:
        client.check()
    assert caught.value.code == "HOURLY_APIINVOCATION_LIMIT_EXCEEDED" and caught.value.retryable
    assert caught.value.retry_after is not None and caught.value.retry_after > 60


def test_server_errors_on_reads_are_retried(sim: DocuSignSimulator) -> None:
    sleeps: list[float] = []
    client = client_of(sim, sleeps)
    envelope_id = client.create_envelope(html_envelope(client))
    sim.faults = Faults(errors=2, error_status=503, only=f"/envelopes/{envelope_id}")
    assert client.envelope_status(envelope_id) == "sent"
    assert paths(sim, f"/envelopes/{envelope_id}") == [503, 503, 200] and len(sleeps) == 2


# -- envelopes sent once --------------------------------------------------------------------------


def test_envelope_is_sent_once_when_the_answer_is_lost(sim: DocuSignSimulator) -> None:
    client = client_of(sim)
    definition = html_envelope(client)
    sim.lose_replies("/envelopes", method="POST")  # DocuSign makes it; the answer never arrives
    envelope_id = client.send_once(definition, KEY)
    assert list(sim.envelopes) == [envelope_id] and sim.contracts == 1
    assert [s for m, p, s in sim.requests if m == "POST"] == [200, 502]  # token, then the lost create
    assert sim.envelopes[envelope_id].custom_fields == {"hub_idempotency_key": KEY}
    assert client.send_once(definition, KEY) == envelope_id and sim.contracts == 1


def test_envelope_whose_connection_dropped_is_sent_once(sim: DocuSignSimulator) -> None:
    client = client_of(sim)
    definition = html_envelope(client)
    sim.drop_replies("/envelopes", method="POST")  # DocuSign makes it, the connection closes unanswered
    envelope_id = client.send_once(definition, KEY)
    assert list(sim.envelopes) == [envelope_id] and sim.contracts == 1
    assert [s for m, p, s in sim.requests if m == "POST"] == [200, 0]  # token, then the lost create


def test_a_void_whose_connection_dropped_is_not_an_error(sim: DocuSignSimulator) -> None:
    client = client_of(sim)
    envelope_id = client.create_envelope(html_envelope(client))
    sim.drop_replies(f"/envelopes/{envelope_id}", method="PUT")  # voided, the answer never arrives
    assert client.void(envelope_id, "Onboarding cancelled")  # sent again: refused, then read back
    assert sim.envelopes[envelope_id].status == "voided"
    assert [s for m, _, s in sim.requests if m == "PUT"] == [0, 400]


def test_an_envelope_refused_by_a_5xx_is_sent_again(sim: DocuSignSimulator) -> None:
    client = client_of(sim)
    sim.refuse_requests("/envelopes", status=503, method="POST")
    envelope_id = client.send_once(html_envelope(client), KEY)
    assert sim.contracts == 1 and envelope_id in sim.envelopes
    assert [s for m, p, s in sim.requests if m == "POST" and "/envelopes" in p] == [503, 201]


def test_find_envelope_by_custom_field_skips_ended_ones(sim: DocuSignSimulator) -> None:
    client = client_of(sim)
    mine = client.create_envelope(html_envelope(client))
    client.create_envelope(html_envelope(client, key="5b0c3f51-0000-4000-8000-0000000000ff"))
    found = client.find_envelope(KEY)
    assert found is not None and found.envelope_id == mine and found.status == "sent"
    assert client.void(mine, "test") and not client.void(mine, "test")  # twice is harmless
    assert client.find_envelope(KEY) is None  # a voided envelope is not recovered: a new one may go


# -- docusign.send_contract ------------------------------------------------------------------------


def test_send_contract_sends_hubs_rendering_and_waits(sim: DocuSignSimulator, write_project: Any) -> None:
    project = Project(write_project(CONTRACT_RULES))
    action = SendContract()
    ctx = context(config_of(sim), project=project)
    assert action.find(ctx) is None
    outcome = action.perform(ctx)
    assert outcome.kind == OutcomeKind.WAITING and outcome.waiting_for == COMPLETED_EVENT
    (envelope,) = sim.envelopes.values()
    assert outcome.correlation == envelope.envelope_id
    text = envelope.document.decode()
    assert "测试员工" in text and "保密条款" in text and envelope.extension == "html"
    assert outcome.data["unsigned_sha256"] == hashlib.sha256(envelope.document).hexdigest()
    assert (envelope.signer_email, envelope.signer_name) == (EMAIL, "测试员工")
    assert action.find(ctx) == ExternalRef(envelope.envelope_id, ENVELOPE_KIND)
    assert action.recovered(ctx, ExternalRef(envelope.envelope_id, ENVELOPE_KIND)).kind == OutcomeKind.WAITING


def test_send_contract_from_a_template_fills_the_text_tabs(sim: DocuSignSimulator) -> None:
    action = SendContract()
    outcome = action.perform(context(config_of(sim, template_id=TEMPLATE_ID)))
    (envelope,) = sim.envelopes.values()
    assert envelope.template_id == TEMPLATE_ID and outcome.data["template_id"] == TEMPLATE_ID
    assert envelope.tabs == {"salary": "20000.00", "start_date": "2026-12-01", "duties": "负责后端服务开发"}
    with pytest.raises(ActionFailed, match="unknown contract fields: bonus"):
        action.perform(context(config_of(sim, template_id=TEMPLATE_ID, template_tabs={"salary": "bonus"})))


def test_the_law_and_a_missing_email_fail_for_good(sim: DocuSignSimulator) -> None:
    for mode in ({}, {"template_id": TEMPLATE_ID}):
        with pytest.raises(ActionFailed) as caught:
            SendContract().perform(context(config_of(sim, **mode), case={**CASE, "contract_term_months": 12}))
        assert caught.value.permanent and caught.value.reason.startswith("劳动合同法第十九条")
    without_email = {k: v for k, v in CASE.items() if k != "email"}
    with pytest.raises(ActionFailed, match="e-mail") as caught:
        SendContract().perform(context(config_of(sim), case=without_email))
    assert caught.value.permanent and sim.contracts == 0


def test_completion_archives_the_signed_document_and_cannot_be_undone(
    sim: DocuSignSimulator, write_project: Any
) -> None:
    project = Project(write_project("[hub]\n"))
    action = SendContract()
    waiting = action.perform(context(config_of(sim), project=project))
    envelope_id = str(waiting.correlation)
    ctx = context(
        config_of(sim),
        project=project,
        results={"send_contract": TaskResult(waiting.ref, waiting.data)},
        ref=waiting.ref,
    )
    interim = CallbackEvent(envelope_id, "recipient-completed", {"event": "recipient-completed"})
    assert action.on_callback(ctx, interim).kind == OutcomeKind.WAITING  # DocuSign: still sent
    sim.sign(envelope_id)
    done = action.on_callback(ctx, CallbackEvent(envelope_id, COMPLETED_EVENT, {"status": "completed"}))
    assert done.kind == OutcomeKind.DONE and done.data["envelope_id"] == envelope_id
    archived = archived_contract(done.data)
    signed = open_archived_document(project, archived)
    assert signed == sim.signed_content(sim.envelopes[envelope_id]) and b"DocuSign simulator" in signed
    assert archived.sha256 == done.data["signed_sha256"] != done.data["unsigned_sha256"]
    with pytest.raises(UndoNotSupported):
        action.undo(ctx)


def test_declined_or_voided_goes_to_an_operator_and_undo_voids(sim: DocuSignSimulator) -> None:
    action = SendContract()
    first = action.perform(context(config_of(sim)))
    declined = CallbackEvent(str(first.correlation), "envelope-declined", {"status": "declined"})
    assert (
        action.on_callback(context(config_of(sim)), declined).reason == "the DocuSign envelope was declined"
    )
    ctx = context(config_of(sim), ref=first.ref)
    action.undo(ctx)
    action.undo(ctx)  # twice is harmless
    assert sim.envelopes[str(first.correlation)].status == "voided"
    assert [e.event for e in sim.events] == ["envelope-sent", "envelope-voided"]


# -- Connect ------------------------------------------------------------------------------------


def test_connect_messages_are_verified_with_any_key(sim: DocuSignSimulator, receiver: Receiver) -> None:
    sim.hmac_keys = ("old-connect-key", "new-connect-key")
    client = client_of(sim)
    envelope_id = client.create_envelope(html_envelope(client))
    sim.sign(envelope_id)
    deliveries = sim.deliver_callbacks(receiver.url, repeat={envelope_id: 2})
    assert [d.event for d in deliveries] == ["envelope-sent"] * 2 + ["recipient-completed"] * 2 + [
        "envelope-completed"
    ] * 2
    rotated = DocuSignVerifier({"hmac_key": "new-connect-key"})  # hub has the new key only
    ids = []
    for headers, body in receiver.received:
        assert {"x-docusign-signature-1", "x-docusign-signature-2"} <= set(headers)
        verdict = rotated.verify(WebhookRequest("POST", headers, {}, body, datetime.now(UTC)))
        assert isinstance(verdict, Accepted)
        ids.append(verdict.event_id)
        event = SendContract().parse_callback(verdict.action, verdict.body)
        assert event is not None and event.external_id == envelope_id
    assert len(set(ids)) == 3  # each retry (retryCount 0, 1) is the same event
    assert [orjson.loads(b)["retryCount"] for _, b in receiver.received[:2]] == [0, 1]
    headers, body = receiver.received[-1]
    for tampered_headers, tampered_body, reason in [
        (headers, body.replace(b"completed", b"declined", 1), "bad_signature"),
        ({"content-type": "application/json"}, body, "missing_signature"),
    ]:
        with pytest.raises(WebhookRejected) as refused:
            rotated.verify(WebhookRequest("POST", tampered_headers, {}, tampered_body, datetime.now(UTC)))
        assert refused.value.reason == reason
    with pytest.raises(WebhookRejected):
        DocuSignVerifier({"hmac_key": "another-key"}).verify(
            WebhookRequest("POST", headers, {}, body, datetime.now(UTC))
        )
    assert SendContract().parse_callback("template-modified", body) is None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver("/webhooks/docusign")
    yield r
    r.close()


# -- the Airbyte source ---------------------------------------------------------------------------


def test_source_check_and_envelopes(sim: DocuSignSimulator) -> None:
    client = client_of(sim)
    first = client.create_envelope(html_envelope(client))
    client.create_envelope(html_envelope(client, key="5b0c3f51-0000-4000-8000-0000000000aa"))
    sim.sign(first)
    config = config_of(sim)
    assert DocuSignSource().check(LOG, config).status == Status.SUCCEEDED
    records = read_stream(DocuSignSource(), config, "envelopes")
    assert {r["envelopeId"]: r["status"] for r in records} == {
        e: ("completed" if e == first else "sent") for e in sim.envelopes
    }
    assert all(EMAIL not in str(r) for r in records)
    failed = DocuSignSource().check(LOG, config_of(sim, user_id="nobody"))
    assert failed.status == Status.FAILED and "invalid_grant" in (failed.message or "")


# -- through hub's onboarding flow and hub serve ---------------------------------------------------


def docusign_project(
    sim: DocuSignSimulator, write_project: Any, monkeypatch: pytest.MonkeyPatch, *, webhook: str = ""
) -> Project:
    config = write_project(
        CONTRACT_RULES
        + f"""
        [connectors.docusign]
        plugin = "docusign"
        [connectors.docusign.config]
        oauth_base_url = "{sim.url}"
        integration_key = "{sim.identity.integration_key}"
        user_id = "{sim.identity.user_id}"
        private_key = {{ env = "DOCUSIGN_PRIVATE_KEY" }}
        employer = "示例科技有限公司"
        backoff_base_seconds = 0.01
        max_attempts = 2
        [connectors.docusign.webhook]
        hmac_key = {{ env = "DOCUSIGN_HMAC" }}
        {webhook}

        [onboarding]
        schedule = false
        retry = {{ attempts = 3, base = "1s", max = "5s" }}
        tasks = [
          {{ name = "send_contract", action = "docusign.send_contract", connector = "docusign", options = {{ duties = ["负责后端服务开发"], attributes = {{ core_data_access = true }} }} }},
        ]
        """
    )
    monkeypatch.setenv("DOCUSIGN_PRIVATE_KEY", sim.private_key_pem)
    monkeypatch.setenv("DOCUSIGN_HMAC", sim.hmac_keys[0])
    return Project(config)


def task_of(flow: OnboardingFlow, case_id: str) -> Any:
    (task,) = flow.show(case_id).tasks
    return task


def test_case_end_to_end_through_hub_serve(
    sim: DocuSignSimulator, write_project: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    project = docusign_project(sim, write_project, monkeypatch)
    flow = OnboardingFlow(project)
    case_id, _ = flow.open_case(CASE, source="test")
    runner = OnboardingRunner(flow)
    sim.lose_replies("/envelopes", method="POST")  # the first answer is lost: still one envelope
    runner.run_once()
    assert task_of(flow, case_id).status == "WAITING" and sim.contracts == 1
    (envelope_id,) = sim.envelopes
    sim.sign(envelope_id)
    service = WebhookService(project, policy=FAST, dispatcher=onboarding_dispatcher(project), worker=False)
    with serving(service) as served:
        hook = f"{served}/webhooks/docusign"
        deliveries = sim.deliver_callbacks(hook, repeat={envelope_id: 2}, reverse=True)
        assert [d.http_status for d in deliveries] == [200] * 6  # Connect's retries acknowledged too
        body = orjson.dumps({**sim.events[-1].message, "retryCount": 7})
        forged = requests.post(hook, data=body, headers=docusign_headers(["guessed"], body), timeout=10)
        assert (forged.status_code, forged.json()) == (401, {"error": "bad_signature"})
        assert service.processor.run_once() == 3
    task = task_of(flow, case_id)
    assert task.status == "DONE" and flow.show(case_id).status == "COMPLETED"
    _, results, _ = flow.load_case(case_id)
    archived = archived_contract(results["send_contract"])
    signed = open_archived_document(project, archived)
    assert signed == sim.signed_content(sim.envelopes[envelope_id])
    assert archived.sha256 == hashlib.sha256(signed).hexdigest() and sim.signed == 1
    database = (tmp_path / ".hub" / "hub.db").read_bytes()
    for secret in (EMAIL, "测试员工", "11010519491231002X"):
        assert secret.encode() not in database, secret


def test_an_attempt_that_failed_after_the_envelope_was_made_recovers_it_and_cancel_voids(
    sim: DocuSignSimulator, write_project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = docusign_project(sim, write_project, monkeypatch)
    flow = OnboardingFlow(project)
    case_id, _ = flow.open_case(CASE, source="test")
    runner = OnboardingRunner(flow)
    # made at DocuSign, the answer lost, and every look-up after it refused: the attempt fails
    sim.lose_replies("/envelopes", method="POST")
    sim.refuse_requests("/envelopes", times=2, status=503, method="GET", skip=2)
    runner.run_once()
    assert task_of(flow, case_id).status == "FAILED" and sim.contracts == 1
    runner.run_once(datetime.now(UTC) + timedelta(seconds=30))
    assert task_of(flow, case_id).status == "WAITING" and sim.contracts == 1  # found, not sent again
    report = flow.cancel(case_id, "offer withdrawn")
    assert report.undone == ["send_contract"]
    (envelope,) = sim.envelopes.values()
    assert envelope.status == "voided" and envelope.voided_reason == "Onboarding cancelled"


def test_an_envelope_made_on_a_dropped_connection_is_found_by_the_next_attempt(
    sim: DocuSignSimulator, write_project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow = OnboardingFlow(docusign_project(sim, write_project, monkeypatch))
    case_id, _ = flow.open_case(CASE, source="test")
    runner = OnboardingRunner(flow)
    sim.drop_replies("/envelopes", method="POST")  # made, the connection closed unanswered
    sim.refuse_requests("/envelopes", times=2, status=503, method="GET", skip=2)  # the look-up refused
    runner.run_once()
    assert task_of(flow, case_id).status == "FAILED" and sim.contracts == 1
    runner.run_once(datetime.now(UTC) + timedelta(seconds=30))
    assert task_of(flow, case_id).status == "WAITING" and sim.contracts == 1  # found, not sent again
    assert [s for m, p, s in sim.requests if m == "POST" and "/envelopes" in p] == [0]


def test_max_age_does_not_apply_to_connect(
    sim: DocuSignSimulator, write_project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = docusign_project(sim, write_project, monkeypatch, webhook='max_age = "5m"')
    with pytest.raises(ConfigurationError, match="carry no signed timestamp"):
        webhook_endpoints(project)


def test_plugin_registers_the_connector_action_and_verifier() -> None:
    import hub_docusign

    (connector,) = hub_docusign.hub_register_connectors()
    assert (connector.name, connector.category) == ("docusign", "econtract")
    assert [a.name for a in hub_docusign.hub_register_onboarding_actions()] == ["docusign.send_contract"]
    assert hub_docusign.hub_register_webhooks()[0].verifier is DocuSignVerifier
