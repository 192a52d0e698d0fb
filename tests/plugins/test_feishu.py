"""The ``feishu`` connector against its simulator, over loopback HTTP.

The tenant token fetched once, cached, refetched once on 99991663; HTTP 429 / 99991400 waited
out for ``x-ogw-ratelimit-reset`` seconds; user creation idempotent by ``client_token`` when the
answer is lost; a taken mobile reported without the number; the approval idempotent by ``uuid``
(60012 resolved by finding the instance); the ``approval_instance`` event signed, encrypted,
verified and decrypted with ``hub.callbacks`` (a tampered one refused; repeated and out of
order); messages de-duplicated by ``uuid``; contacts read through the Airbyte source.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from airbyte_cdk.models import Status
from hub_feishu.actions import CreateUser, SendWelcome, StartApproval, UpdateUser
from hub_feishu.client import ApprovalRequest, FeishuClient, NewHire, join_time
from hub_feishu.errors import FeishuAuthError, FeishuConflict, FeishuRateLimited
from hub_feishu.source import FeishuSource
from hub_feishu.webhook import FeishuVerifier

from hub.callbacks import LarkCrypto, SignatureError
from hub.onboarding import ActionContext, ActionFailed, ExternalRef, TaskResult
from hub.onboarding.actions import OutcomeKind
from hub.onboarding.flow import CallbackStatus, OnboardingFlow
from hub.sandbox import Faults
from hub.sandbox.feishu import FeishuSimulator
from hub.webhooks import Accepted, Handshake, WebhookRejected, WebhookRequest
from tests.plugins.oa_helpers import (
    LOG,
    Receiver,
    action_context,
    action_names,
    cancelled_case,
    case_through_late_callbacks,
    connectors_check,
    onboarding_flow,
    read,
    statuses,
)

KEY = "5b0c3f51-0000-4000-8000-0000000000f1"


@pytest.fixture
def sim() -> Iterator[FeishuSimulator]:
    with FeishuSimulator(count=21, seed=5, approval_delay=0.0, rate_limit=None) as simulator:
        yield simulator


def config_of(sim: FeishuSimulator, **extra: Any) -> dict[str, Any]:
    return {
        "base_url": sim.url,
        "app_id": sim.app_id,
        "app_secret": sim.app_secret,
        "department_map": {"RD": "d2", "DATA": "d3"},
        "approval": {
            "approval_code": sim.approval_code,
            "applicant_user_id": "F00001",
            "form_widgets": {"name": "widget_name", "start_date": "widget_start"},
        },
        "backoff_base_seconds": 0.01,
        **extra,
    }


def client_of(sim: FeishuSimulator, sleeps: list[float] | None = None, **extra: Any) -> FeishuClient:
    record = sleeps if sleeps is not None else []
    return FeishuClient.from_config(config_of(sim, **extra), sleep=record.append)


def hire(job_number: str = "H50001", mobile: str = "13612340001", **extra: Any) -> NewHire:
    fields: dict[str, Any] = {
        "name": "飞书新人",
        "department_codes": ("RD",),
        "title": "数据分析师",
        "manager_user_id": "F00002",
        **extra,
    }
    return NewHire(mobile=mobile, job_number=job_number, **fields)


def verifier_of(sim: FeishuSimulator) -> FeishuVerifier:
    return FeishuVerifier({"encrypt_key": sim.encrypt_key, "verification_token": sim.verification_token})


# -- tokens ------------------------------------------------------------------------------------


def test_token_is_cached_and_refetched_once_when_invalid(sim: FeishuSimulator) -> None:
    client = client_of(sim)
    assert client.get_user("F00003") is not None
    assert client.get_user("F00004") is not None
    assert client.token_fetches == 1
    sim.expire_tokens()
    assert client.get_user("F00005") is not None
    assert client.token_fetches == 2
    assert statuses(sim, "/contact/v3/users/F00005") == [400, 200]  # 99991663, then the new token


def test_token_is_refreshed_inside_the_margin(sim: FeishuSimulator) -> None:
    now = [2_000_000.0]
    client = FeishuClient.from_config(config_of(sim), clock=lambda: now[0])
    client.get_user("F00003")
    now[0] += 7200 - 179  # the SDK's 3-minute margin
    client.get_user("F00003")
    assert client.token_fetches == 2


def test_bad_secret_is_an_auth_error_without_the_secret(sim: FeishuSimulator) -> None:
    with pytest.raises(FeishuAuthError) as caught:
        client_of(sim, app_secret="not-the-secret-zz").get_user("F00001")
    assert caught.value.code == 10014 and "not-the-secret-zz" not in str(caught.value)


# -- rate limits -------------------------------------------------------------------------------


def test_frequency_limit_waits_for_the_reset_header(sim: FeishuSimulator) -> None:
    sleeps: list[float] = []
    client = client_of(sim, sleeps)
    client.get_user("F00001")
    sim.faults = Faults(throttle=2, retry_after=3, only="/contact/v3/users/")
    assert client.get_user("F00006") is not None
    assert sleeps == [3.0, 3.0]  # x-ogw-ratelimit-reset, not a guess
    assert statuses(sim, "/contact/v3/users/F00006") == [429, 429, 200]


def test_persistent_frequency_limit_is_a_typed_error(sim: FeishuSimulator) -> None:
    client = client_of(sim, max_attempts=2)
    client.get_user("F00001")
    sim.faults = Faults(throttle=5, retry_after=2, only="/contact/v3/users/")
    with pytest.raises(FeishuRateLimited) as caught:
        client.get_user("F00006")
    assert caught.value.code == 99991400 and caught.value.retry_after == 2


# -- users -------------------------------------------------------------------------------------


def test_create_user_is_idempotent_by_client_token_when_the_answer_is_lost(sim: FeishuSimulator) -> None:
    client = client_of(sim)
    sim.lose_replies("/open-apis/contact/v3/users", exact=True)
    result = client.upsert_user(hire(hired_date=datetime(2026, 12, 1).date()), KEY)
    assert result.user_id == "H50001" and result.created
    assert sim.accounts == 1
    assert statuses(sim, "/contact/v3/users?") == [502, 200]  # the same client_token, the same user
    user = sim.users["H50001"]
    assert user.department_ids == ["d2"] and user.leader_user_id == "F00002" and user.employee_no == "H50001"
    china = timezone(timedelta(hours=8))
    assert user.join_time == int(datetime(2026, 12, 1, tzinfo=china).timestamp())
    again = client.upsert_user(hire(title="机器学习工程师"), KEY)
    assert not again.created and sim.accounts == 1 and sim.users["H50001"].job_title == "机器学习工程师"


def test_create_user_whose_connection_dropped_is_sent_again_with_its_client_token(
    sim: FeishuSimulator,
) -> None:
    client = client_of(sim)
    sim.drop_replies("/open-apis/contact/v3/users", exact=True)  # made, then the connection closes
    result = client.upsert_user(hire(), KEY)
    assert result.user_id == "H50001" and result.created
    assert sim.accounts == 1
    assert statuses(sim, "/contact/v3/users?") == [0, 200]  # the same client_token, the same user


def test_client_token_reused_with_another_body_is_refused(sim: FeishuSimulator) -> None:
    client = client_of(sim)
    client.create_user(hire(), "H50001", KEY)
    with pytest.raises(Exception) as caught:
        client.create_user(hire(job_number="H50002", mobile="13612340002"), "H50002", KEY)
    assert getattr(caught.value, "code", None) == 40021
    assert sim.accounts == 1


def test_taken_mobile_is_a_conflict_that_names_no_number(sim: FeishuSimulator) -> None:
    client = client_of(sim)
    taken = sim.users["F00007"].mobile
    with pytest.raises(FeishuConflict) as caught:
        client.upsert_user(hire(mobile="+86" + taken), KEY)  # the same number in E.164
    assert caught.value.code == 41001 and caught.value.field == "mobile"
    assert taken not in str(caught.value) and sim.accounts == 0
    assert client.user_id_by_mobile(taken) == "F00007"


def test_cancelled_hire_is_frozen(sim: FeishuSimulator) -> None:
    client = client_of(sim)
    client.upsert_user(hire(), KEY)
    assert client.disable_user("H50001")
    user = client.get_user("H50001")
    assert user is not None and user["is_frozen"] and user["status"]["is_frozen"]
    assert not client.disable_user("nobody")
    client.upsert_user(hire(), KEY)  # hired after all
    assert not sim.users["H50001"].is_frozen and sim.accounts == 1


# -- approvals and events ----------------------------------------------------------------------


@pytest.fixture
def receiver(sim: FeishuSimulator) -> Iterator[Receiver]:
    r = Receiver(verifier_of(sim), signed_in="headers")
    yield r
    r.close()


def approval(uuid: str = KEY) -> ApprovalRequest:
    return ApprovalRequest(uuid=uuid, values={"name": "飞书新人", "start_date": "2026-12-01"})


def test_approval_is_created_once_per_uuid(sim: FeishuSimulator) -> None:
    sim.approval_delay = 3600
    client = client_of(sim)
    first = client.start_approval(approval())
    second = client.start_approval(approval())  # 60012, then found by listing
    assert first.created and not second.created and second.instance_code == first.instance_code
    assert sim.approvals == 1 and sim.subscriptions == {sim.approval_code}
    instance = sim.instances[first.instance_code]
    assert json.loads(instance.form) == [
        {"id": "widget_name", "type": "input", "value": "飞书新人"},
        {"id": "widget_start", "type": "input", "value": "2026-12-01"},
    ]
    assert client.approval_status(first.instance_code).status == "PENDING"


def test_approval_whose_answer_is_lost_is_not_duplicated(sim: FeishuSimulator) -> None:
    client = client_of(sim)
    client.subscribe()
    sim.lose_replies("/approval/v4/instances")
    result = client.start_approval(approval())
    assert sim.approvals == 1 and result.instance_code in sim.instances


def test_events_are_signed_encrypted_and_verified(sim: FeishuSimulator, receiver: Receiver) -> None:
    client = client_of(sim)
    code = client.start_approval(approval()).instance_code
    deliveries = sim.deliver_callbacks(receiver.url)
    assert [(d.status, d.accepted) for d in deliveries] == [("PENDING", True), ("APPROVED", True)]
    crypto = LarkCrypto(sim.encrypt_key)
    seen = []
    for headers, body in receiver.received:
        assert int(headers["x-lark-request-timestamp"]) < 10**11  # seconds
        crypto.verify_headers(headers, body)
        event = json.loads(crypto.decrypt_body(body))
        assert event["token"] == sim.verification_token and event["type"] == "event_callback"
        assert event["event"]["type"] == "approval_instance" and event["event"]["instance_code"] == code
        assert event["event"]["uuid"] == KEY
        seen.append(event["event"]["status"])
    assert seen == ["PENDING", "APPROVED"]
    headers, body = receiver.received[0]
    tampered = body.replace(b'"encrypt": "', b'"encrypt": "A', 1)
    with pytest.raises(SignatureError):
        crypto.verify_headers(headers, tampered)
    with pytest.raises(WebhookRejected) as refused:
        verifier_of(sim).verify(WebhookRequest("POST", headers, {}, tampered, datetime.now(UTC)))
    assert refused.value.reason == "bad_signature"


def test_repeated_and_out_of_order_events(sim: FeishuSimulator, receiver: Receiver) -> None:
    sim.approval_outcome = "REJECTED"
    client = client_of(sim)
    code = client.start_approval(approval()).instance_code
    deliveries = sim.deliver_callbacks(receiver.url, repeat={code: 3}, reverse=True)
    assert [d.status for d in deliveries] == ["REJECTED"] * 3 + ["PENDING"] * 3
    verifier = verifier_of(sim)
    ids = []
    for headers, body in receiver.received:
        verdict = verifier.verify(WebhookRequest("POST", headers, {}, body, datetime.now(UTC)))
        assert isinstance(verdict, Accepted) and verdict.action == "approval_instance"
        ids.append(verdict.event_id)
    assert len(set(ids)) == 2  # Feishu's event uuid is the same on every retry


def test_url_verification_needs_the_right_token(sim: FeishuSimulator, receiver: Receiver) -> None:
    assert sim.verify_callback_url(receiver.url)
    stranger = FeishuVerifier({"encrypt_key": sim.encrypt_key, "verification_token": "someone-else"})
    body = LarkCrypto(sim.encrypt_key).encrypted_body(
        json.dumps({"challenge": "c1", "token": sim.verification_token, "type": "url_verification"})
    )
    assert isinstance(
        verifier_of(sim).verify(WebhookRequest("POST", {}, {}, body, datetime.now(UTC))), Handshake
    )
    with pytest.raises(WebhookRejected):
        stranger.verify(WebhookRequest("POST", {}, {}, body, datetime.now(UTC)))


# -- messages ----------------------------------------------------------------------------------


def test_welcome_message_is_sent_once_per_uuid(sim: FeishuSimulator) -> None:
    client = client_of(sim)
    client.upsert_user(hire(), KEY)
    first = client.send_text("H50001", "欢迎加入！", KEY)
    second = client.send_text("H50001", "欢迎加入！", KEY)
    assert first == second and sim.messages == 1


# -- the Airbyte source ------------------------------------------------------------------------


def test_source_check_discover_and_read_with_page_tokens(sim: FeishuSimulator) -> None:
    sim.users["F00008"].department_ids = ["d2", "d3"]
    config = config_of(sim, page_size=2)
    source = FeishuSource()
    assert source.check(LOG, config).status == Status.SUCCEEDED
    assert {s.name for s in source.discover(LOG, config).streams} == {"users", "departments"}
    users = read(FeishuSource(), config, "users")
    assert sorted(u["user_id"] for u in users) == sorted(sim.users)
    assert any("page_token=" in path for _, path, _ in sim.requests if "find_by_department" in path)
    assert {d["department_id"] for d in read(FeishuSource(), config, "departments")} == set(
        sim.departments
    ) - {"0"}


def test_source_check_fails_cleanly_on_bad_credentials(sim: FeishuSimulator) -> None:
    status = FeishuSource().check(LOG, config_of(sim, app_secret="wrong-secret-value"))
    assert status.status == Status.FAILED
    assert "10014" in (status.message or "") and "wrong-secret-value" not in (status.message or "")


# -- onboarding actions ------------------------------------------------------------------------

CASE = {
    "name": "飞书新人",
    "phone": "+8613612340001",
    "job_number": "H50001",
    "department": "RD",
    "job_title": "数据分析师",
    "start_date": "2026-12-01",
}


def context(sim: FeishuSimulator, task: str, **extra: Any) -> ActionContext:
    fields = {"case": CASE, "options": {"manager_user_id": "F00002"}, **extra}
    return action_context("feishu", task, lambda: config_of(sim), **fields)


def test_actions_are_registered_by_the_plugin() -> None:
    import hub_feishu

    assert action_names(hub_feishu) == {
        "feishu.create_user",
        "feishu.start_approval",
        "feishu.send_welcome",
        "feishu.update_user",
    }


def test_create_user_action_and_undo(sim: FeishuSimulator) -> None:
    action = CreateUser()
    ctx = context(sim, "create_user")
    assert action.find(ctx) is None
    outcome = action.perform(ctx)
    assert outcome.kind == OutcomeKind.DONE and outcome.ref == ExternalRef("H50001", "feishu_user")
    assert sim.users["H50001"].mobile == "13612340001"
    assert action.find(ctx) == outcome.ref
    action.undo(context(sim, "create_user", ref=outcome.ref))
    action.undo(context(sim, "create_user", ref=outcome.ref))
    assert sim.users["H50001"].is_frozen and sim.accounts == 1


def test_create_user_action_refuses_a_taken_mobile_for_an_operator(sim: FeishuSimulator) -> None:
    taken = sim.users["F00009"].mobile
    with pytest.raises(ActionFailed) as caught:
        CreateUser().perform(context(sim, "create_user", case={**CASE, "phone": taken}))
    assert caught.value.permanent and "41001" in caught.value.reason and taken not in caught.value.reason


def test_start_approval_action_follows_the_events(sim: FeishuSimulator, receiver: Receiver) -> None:
    sim.approval_delay = 3600
    action = StartApproval()
    ctx = context(sim, "start_approval")
    assert action.find(ctx) is None
    outcome = action.perform(ctx)
    assert outcome.kind == OutcomeKind.WAITING
    code = str(outcome.correlation)
    assert action.find(ctx) == ExternalRef(code, "feishu_approval")
    verifier = verifier_of(sim)

    def parsed() -> list[Any]:
        return [action.parse_callback(v.action, v.body) for v in receiver.verdicts(verifier, clear=True)]

    sim.deliver_callbacks(receiver.url)
    (pending,) = parsed()
    assert pending.external_id == code and action.on_callback(ctx, pending).kind == OutcomeKind.WAITING
    sim.decide(code, approve=True)
    sim.deliver_callbacks(receiver.url)
    (approved,) = parsed()
    assert action.on_callback(ctx, approved).kind == OutcomeKind.DONE
    assert action.on_callback(ctx, pending).kind == OutcomeKind.DONE  # a late PENDING after the decision


def test_send_welcome_action(sim: FeishuSimulator) -> None:
    created = CreateUser().perform(context(sim, "create_user"))
    ctx = context(sim, "send_welcome", results={"oa_account": TaskResult(ref=created.ref)})
    SendWelcome().perform(ctx)
    SendWelcome().perform(ctx)
    assert sim.messages == 1 and sim.sent_messages[0]["receive_id"] == "H50001"


def final_results(created: Any, employee_no: str = "H2030001") -> dict[str, TaskResult]:
    """The case's results when the contract is signed: the user and the HR master record."""
    return {
        "create_oa_account": TaskResult(ref=created.ref, data=created.data),
        "create_hr_record": TaskResult(
            data={"employee_no": employee_no, "contract_no": f"{employee_no}-C01"}
        ),
    }


def test_update_user_action_syncs_the_final_record_onto_the_created_user(sim: FeishuSimulator) -> None:
    created = CreateUser().perform(context(sim, "create_user"))
    CreateUser().undo(context(sim, "create_user", ref=created.ref))  # frozen: the update thaws it
    final = {
        **{k: v for k, v in CASE.items() if k != "phone"},
        "department": "DATA",
        "job_title": "高级数据分析师",
        "start_date": "2026-12-15",
    }
    ctx = context(
        sim, "update_user", case=final, options={"manager_user_id": "F00003"}, results=final_results(created)
    )
    action = UpdateUser()
    outcome = action.perform(ctx)
    assert outcome.kind == OutcomeKind.DONE and outcome.ref == ExternalRef("H50001", "feishu_user")
    assert dict(outcome.data) == {"feishu_user_id": "H50001", "job_number": "H2030001"}
    user = sim.users["H50001"]
    assert (user.employee_no, user.job_title, user.department_ids, user.leader_user_id) == (
        "H2030001",
        "高级数据分析师",
        ["d3"],
        "F00003",
    )
    assert user.join_time == join_time(date(2026, 12, 15)) and not user.is_frozen
    assert user.mobile == "13612340001" and "H2030001" not in sim.users
    updates = sim.updates  # the freeze above was one
    snapshot = dataclasses.asdict(user)
    assert action.perform(ctx).data == outcome.data  # a retried attempt: the same update again
    assert dataclasses.asdict(sim.users["H50001"]) == snapshot
    assert sim.updates == updates + 1 and sim.accounts == 1
    action.undo(context(sim, "update_user", ref=outcome.ref))  # nothing to undo
    assert not sim.users["H50001"].is_frozen


def test_update_user_action_refusals_go_to_an_operator(sim: FeishuSimulator) -> None:
    created = CreateUser().perform(context(sim, "create_user"))
    taken = sim.users["F00009"].employee_no
    with pytest.raises(ActionFailed) as caught:  # the HR master's number is another user's at Feishu
        UpdateUser().perform(context(sim, "update_user", results=final_results(created, employee_no=taken)))
    assert caught.value.permanent and "44051" in caught.value.reason
    missing = {"create_oa_account": TaskResult(ref=ExternalRef("nobody01", "feishu_user"))}
    with pytest.raises(ActionFailed) as caught:
        UpdateUser().perform(context(sim, "update_user", results=missing))
    assert caught.value.permanent and "task 'create_oa_account' created is gone" in caught.value.reason
    other_vendor = {"create_oa_account": TaskResult(ref=ExternalRef("H50001", "wecom_user"))}
    with pytest.raises(ActionFailed) as caught:  # another plugin's account is not this user
        UpdateUser().perform(context(sim, "update_user", results=other_vendor))
    assert caught.value.permanent and "has no Feishu user" in caught.value.reason
    assert sim.users["H50001"].employee_no == "H50001" and sim.updates == 0


def connector_toml(sim: FeishuSimulator) -> str:
    """``[connectors.feishu]`` pointing at the simulator, the secret from ``FEISHU_SECRET``."""
    return f"""
[connectors.feishu]
plugin = "feishu"
[connectors.feishu.config]
base_url = "{sim.url}"
app_id = "{sim.app_id}"
app_secret = {{ env = "FEISHU_SECRET" }}
department_map = {{ RD = "d2" }}
[connectors.feishu.config.approval]
approval_code = "{sim.approval_code}"
applicant_user_id = "F00001"
"""


def secrets(sim: FeishuSimulator) -> dict[str, str]:
    """The environment the project's secret references read."""
    return {
        "FEISHU_SECRET": sim.app_secret,
        "FEISHU_ENCRYPT_KEY": sim.encrypt_key,
        "FEISHU_VERIFICATION_TOKEN": sim.verification_token,
    }


def test_hub_connectors_check(sim: FeishuSimulator, write_project: Any) -> None:
    webhook = """
[connectors.feishu.webhook]
encrypt_key = { env = "FEISHU_ENCRYPT_KEY" }
verification_token = { env = "FEISHU_VERIFICATION_TOKEN" }
"""
    connectors_check(write_project(connector_toml(sim) + webhook), "feishu", secrets(sim))


# -- through hub's onboarding flow -------------------------------------------------------------


def flow_of(sim: FeishuSimulator, write_project: Any, monkeypatch: pytest.MonkeyPatch) -> OnboardingFlow:
    return onboarding_flow(write_project, monkeypatch, "feishu", connector_toml(sim), secrets(sim))


def test_onboarding_case_end_to_end_with_repeated_and_late_callbacks(
    sim: FeishuSimulator, receiver: Receiver, write_project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim.approval_delay = 3600
    flow = flow_of(sim, write_project, monkeypatch)
    case_id, outcomes = case_through_late_callbacks(
        flow,
        CASE,
        sim,
        receiver,
        verifier_of(sim),
        StartApproval(),
        lambda code: sim.decide(code, approve=True),
    )
    assert outcomes[0] == CallbackStatus.MATCHED and CallbackStatus.MATCHED not in outcomes[1:]
    assert flow.show(case_id).status == "COMPLETED"
    assert sim.accounts == 1 and sim.approvals == 1 and sim.messages == 1


def test_onboarding_case_makes_each_object_once_when_every_write_loses_its_connection(
    sim: FeishuSimulator, receiver: Receiver, write_project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim.approval_delay = 3600
    writes = ("/open-apis/contact/v3/users", "/open-apis/approval/v4/instances", "/open-apis/im/v1/messages")
    for path in writes:
        sim.drop_replies(path, exact=True, method="POST")  # Feishu acts, the connection closes
    flow = flow_of(sim, write_project, monkeypatch)
    case_id, _ = case_through_late_callbacks(
        flow,
        CASE,
        sim,
        receiver,
        verifier_of(sim),
        StartApproval(),
        lambda code: sim.decide(code, approve=True),
    )
    assert flow.show(case_id).status == "COMPLETED"
    assert sim.accounts == 1 and sim.approvals == 1 and sim.messages == 1
    posted = [[s for m, p, s in sim.requests if m == "POST" and p.split("?")[0] == w] for w in writes]
    assert [sent[0] for sent in posted] == [0, 0, 0]  # each sent again with its token or uuid


def test_cancelled_case_undoes_the_account(
    sim: FeishuSimulator, write_project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim.approval_delay = 3600
    flow = flow_of(sim, write_project, monkeypatch)
    cancelled_case(flow, CASE)
    assert sim.users["H50001"].is_frozen


def test_user_made_by_hand_with_the_same_mobile_and_name_is_adopted(sim: FeishuSimulator) -> None:
    existing = sim.users["F00011"]
    result = client_of(sim).upsert_user(
        hire(job_number="H40004", mobile=existing.mobile, name=existing.name), KEY
    )
    assert result.user_id == "F00011" and not result.created
    assert sim.accounts == 0 and existing.department_ids == ["d2"]
