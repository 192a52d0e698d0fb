"""The ``dingtalk`` connector against its simulator, over loopback HTTP.

Both hosts: the app token fetched once, cached, refetched once when it expires (legacy
``errcode 88`` / new-host ``InvalidAuthentication``); QPS limits backed off (90018 and 403
``QpsLimitForAppkeyAndApi``), the per-IP block raised with its five minutes; idempotent member
creation when the answer is lost; a taken mobile reported without the number; the onboarding
approval (idempotent by reference) and its ``bpms_instance_change`` push verified, decrypted
and answered with the encrypted "success" (a tampered one refused, an unanswered one pushed
again); work notices delivered once a day; the address book read through the Airbyte source.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from airbyte_cdk.models import Status
from hub_dingtalk.actions import CreateUser, SendWelcome, StartApproval, UpdateUser
from hub_dingtalk.client import ApprovalRequest, DingTalkClient, NewHire, hired_date_ms
from hub_dingtalk.errors import DingTalkAuthError, DingTalkConflict, DingTalkRateLimited
from hub_dingtalk.source import DingTalkSource
from hub_dingtalk.webhook import DingTalkVerifier

from hub.callbacks import DingTalkCrypto, SignatureError
from hub.onboarding import ActionContext, ActionFailed, ExternalRef, TaskResult
from hub.onboarding.actions import OutcomeKind
from hub.onboarding.flow import CallbackStatus, OnboardingFlow
from hub.sandbox import Faults
from hub.sandbox.dingtalk import DingTalkSimulator
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

REFERENCE_FIELD = "hub参考号"


@pytest.fixture
def sim() -> Iterator[DingTalkSimulator]:
    with DingTalkSimulator(count=22, seed=4, approval_delay=0.0, rate_limit=None) as simulator:
        yield simulator


def config_of(sim: DingTalkSimulator, **extra: Any) -> dict[str, Any]:
    return {
        "base_url": sim.url,
        "api_base_url": sim.url,
        "app_key": sim.app_key,
        "app_secret": sim.app_secret,
        "agent_id": sim.agent_id,
        "department_map": {"RD": 2, "DATA": 3},
        "approval": {
            "process_code": sim.process_code,
            "originator_userid": "D00001",
            "originator_dept_id": 2,
            "reference_field": REFERENCE_FIELD,
            "form_fields": {"name": "姓名", "start_date": "入职日期"},
        },
        "backoff_base_seconds": 0.01,
        **extra,
    }


def client_of(sim: DingTalkSimulator, sleeps: list[float] | None = None, **extra: Any) -> DingTalkClient:
    record = sleeps if sleeps is not None else []
    return DingTalkClient.from_config(config_of(sim, **extra), sleep=record.append)


def hire(job_number: str = "H30001", mobile: str = "13712340001", **extra: Any) -> NewHire:
    fields: dict[str, Any] = {
        "name": "钉钉新人",
        "department_codes": ("RD",),
        "title": "后端工程师",
        "manager_userid": "D00002",
        **extra,
    }
    return NewHire(mobile=mobile, job_number=job_number, **fields)


def verifier_of(sim: DingTalkSimulator) -> DingTalkVerifier:
    return DingTalkVerifier({"token": sim.callback_token, "aes_key": sim.aes_key, "app_key": sim.app_key})


# -- tokens ------------------------------------------------------------------------------------


def test_one_token_serves_both_hosts_until_it_expires(sim: DingTalkSimulator) -> None:
    client = client_of(sim)
    assert client.get_user("D00003") is not None  # legacy host
    assert client.find_approval(ApprovalRequest("ref", {})) is None  # new host
    assert client.token_fetches == 1
    assert statuses(sim, "/v1.0/oauth2/accessToken") == [200]


def test_expired_token_is_refetched_once_on_either_host(sim: DingTalkSimulator) -> None:
    client = client_of(sim)
    client.get_user("D00003")
    sim.expire_tokens()
    assert client.get_user("D00004") is not None  # errcode 88 / sub_code 42001, then a new token
    assert client.token_fetches == 2
    sim.expire_tokens()
    assert client.find_approval(ApprovalRequest("ref", {})) is None  # 400 InvalidAuthentication
    assert client.token_fetches == 3
    assert 400 in statuses(sim, "/processes/instanceIds/query")


def test_legacy_token_endpoint(sim: DingTalkSimulator) -> None:
    client = client_of(sim, auth_host="legacy")
    assert client.get_user("D00005") is not None
    assert statuses(sim, "/gettoken") == [200] and statuses(sim, "/oauth2/accessToken") == []


def test_bad_credentials_are_an_auth_error_on_both_token_endpoints(sim: DingTalkSimulator) -> None:
    for auth_host, code in (("new", "invalidClientIdOrSecret"), ("legacy", "40096")):
        client = client_of(sim, app_secret="not-the-secret-zz", auth_host=auth_host)
        with pytest.raises(DingTalkAuthError) as caught:
            client.get_user("D00001")
        assert caught.value.code == code and "not-the-secret-zz" not in str(caught.value)


# -- rate limits -------------------------------------------------------------------------------


def test_qps_limits_back_off_then_succeed_on_both_hosts(sim: DingTalkSimulator) -> None:
    sleeps: list[float] = []
    client = client_of(sim, sleeps)
    client.get_user("D00001")
    sim.faults = Faults(throttle=2, only="/topapi/v2/user/get")
    assert client.get_user("D00006") is not None
    assert len(sleeps) == 2
    sim.faults = Faults(throttle=1, only="/instanceIds/query")
    assert client.find_approval(ApprovalRequest("ref", {})) is None
    assert len(sleeps) == 3 and 403 in statuses(sim, "/instanceIds/query")


def test_persistent_qps_limit_and_ip_block_are_typed_errors(sim: DingTalkSimulator) -> None:
    client = client_of(sim, max_attempts=2)
    client.get_user("D00001")
    sim.faults = Faults(throttle=5, only="/topapi/v2/user/get")
    with pytest.raises(DingTalkRateLimited) as limited:
        client.get_user("D00006")
    assert limited.value.code == "90018"
    sim.faults = Faults()
    sim.block_ip(1)
    with pytest.raises(DingTalkRateLimited) as blocked:
        client.get_user("D00006")
    assert blocked.value.code == "ip_throttled" and blocked.value.retry_after == 300


# -- members -----------------------------------------------------------------------------------


def test_create_user_is_idempotent_when_the_answer_is_lost(sim: DingTalkSimulator) -> None:
    client = client_of(sim)
    sim.lose_replies("/topapi/v2/user/create")
    result = client.upsert_user(hire(hired_date=datetime(2026, 12, 1).date()))
    assert result.userid == "H30001" and result.created
    assert sim.accounts == 1 and statuses(sim, "/user/create") == [502]
    user = sim.users["H30001"]
    assert user.dept_id_list == [2] and user.manager_userid == "D00002" and user.job_number == "H30001"
    china = timezone(timedelta(hours=8))
    assert user.hired_date == int(datetime(2026, 12, 1, tzinfo=china).timestamp() * 1000)  # ms
    again = client.upsert_user(hire(title="数据分析师"))
    assert not again.created and sim.accounts == 1 and sim.users["H30001"].title == "数据分析师"


def test_create_user_whose_connection_dropped_is_made_once(sim: DingTalkSimulator) -> None:
    client = client_of(sim)
    sim.drop_replies("/topapi/v2/user/create")  # DingTalk creates the member, the connection closes
    result = client.upsert_user(hire())
    assert result.userid == "H30001" and result.created
    assert sim.accounts == 1 and statuses(sim, "/user/create") == [0]  # looked up, not sent again


def test_taken_mobile_is_a_conflict_that_names_no_number(sim: DingTalkSimulator) -> None:
    client = client_of(sim)
    taken = sim.users["D00007"].mobile
    with pytest.raises(DingTalkConflict) as caught:
        client.upsert_user(hire(mobile=taken))
    assert caught.value.code == "60104" and caught.value.field == "mobile"
    assert taken not in str(caught.value) and sim.accounts == 0


def test_cancelled_hire_is_deleted(sim: DingTalkSimulator) -> None:
    client = client_of(sim)
    client.upsert_user(hire())
    assert client.disable_user("H30001")
    assert client.get_user("H30001") is None
    assert not client.disable_user("H30001")


# -- approvals and pushes ----------------------------------------------------------------------


@pytest.fixture
def receiver(sim: DingTalkSimulator) -> Iterator[Receiver]:
    r = Receiver(verifier_of(sim))
    yield r
    r.close()


def approval_request(reference: str = "5b0c3f51-0000-4000-8000-0000000000d1") -> ApprovalRequest:
    return ApprovalRequest(reference=reference, values={"name": "钉钉新人", "start_date": "2026-12-01"})


def test_approval_is_started_once_per_reference(sim: DingTalkSimulator) -> None:
    sim.approval_delay = 3600
    client = client_of(sim)
    first = client.start_approval(approval_request())
    second = client.start_approval(approval_request())
    assert first.created and not second.created and second.instance_id == first.instance_id
    assert sim.approvals == 1
    form = sim.instances[first.instance_id].form
    assert {"name": REFERENCE_FIELD, "value": approval_request().reference} in form
    assert {"name": "入职日期", "value": "2026-12-01"} in form
    assert client.approval_status(first.instance_id).status == "PENDING"


def test_approval_whose_answer_is_lost_is_found_not_restarted(sim: DingTalkSimulator) -> None:
    client = client_of(sim)
    sim.lose_replies("/v1.0/workflow/processInstances")
    result = client.start_approval(approval_request())
    assert sim.approvals == 1 and result.instance_id in sim.instances


def test_pushes_verify_decrypt_and_are_acknowledged(sim: DingTalkSimulator, receiver: Receiver) -> None:
    client = client_of(sim)
    instance_id = client.start_approval(approval_request()).instance_id
    deliveries = sim.deliver_callbacks(receiver.url)
    assert [(d.kind, d.result, d.accepted) for d in deliveries] == [
        ("start", "", True),
        ("finish", "agree", True),
    ]
    crypto = DingTalkCrypto(sim.callback_token, sim.aes_key, sim.app_key)
    events = []
    for query, body in receiver.received:
        assert int(query["timestamp"]) > 10**12  # DingTalk signs milliseconds
        event = json.loads(
            crypto.decrypt_callback(query["msg_signature"], query["timestamp"], query["nonce"], body)
        )
        assert event["EventType"] == "bpms_instance_change" and event["processInstanceId"] == instance_id
        events.append((event["type"], event.get("result")))
    assert events == [("start", None), ("finish", "agree")]
    assert client.approval_status(instance_id).status == "APPROVED"
    query, body = receiver.received[0]
    envelope = json.loads(body)
    first = envelope["encrypt"][0]
    envelope["encrypt"] = ("B" if first == "A" else "A") + envelope["encrypt"][1:]  # always a change
    with pytest.raises(SignatureError):
        crypto.decrypt_callback(
            query["msg_signature"], query["timestamp"], query["nonce"], json.dumps(envelope).encode()
        )


def test_unacknowledged_push_is_pushed_again(sim: DingTalkSimulator, receiver: Receiver) -> None:
    client = client_of(sim)
    client.start_approval(approval_request())
    receiver.plain = True  # a receiver that answers 200 "ok" is not what DingTalk wants
    assert [d.accepted for d in sim.deliver_callbacks(receiver.url)] == [False, False]
    receiver.plain = False
    assert [d.accepted for d in sim.deliver_callbacks(receiver.url)] == [True, True]
    assert sim.deliver_callbacks(receiver.url) == []


def test_repeated_and_out_of_order_pushes(sim: DingTalkSimulator, receiver: Receiver) -> None:
    sim.approval_outcome = "refuse"
    client = client_of(sim)
    instance_id = client.start_approval(approval_request()).instance_id
    deliveries = sim.deliver_callbacks(receiver.url, repeat={instance_id: 3}, reverse=True)
    assert [d.kind for d in deliveries] == ["finish"] * 3 + ["start"] * 3
    verifier = verifier_of(sim)
    ids = []
    for query, body in receiver.received:
        verdict = verifier.verify(WebhookRequest("POST", {}, query, body, datetime.now(UTC)))
        assert isinstance(verdict, Accepted) and verdict.action == "bpms_instance_change"
        assert verifier.crypto.open_reply(verdict.reply.body) == b"success"
        ids.append(verdict.event_id)
    assert len(set(ids)) == 2  # a copy is the same signed delivery
    query, body = receiver.received[0]
    with pytest.raises(WebhookRejected) as refused:
        verifier.verify(WebhookRequest("POST", {}, {**query, "timestamp": "1"}, body, datetime.now(UTC)))
    assert refused.value.reason == "bad_signature"


def test_url_check_is_answered_with_the_encrypted_success(sim: DingTalkSimulator, receiver: Receiver) -> None:
    assert sim.verify_callback_url(receiver.url)
    verifier = verifier_of(sim)
    sealed = sim.crypto.callback('{"EventType":"check_url"}', "1700000000000", "nonce1")
    verdict = verifier.verify(WebhookRequest("POST", {}, sealed.query, sealed.body, datetime.now(UTC)))
    assert isinstance(verdict, Handshake) and verdict.what == "check_url"


# -- work notices ------------------------------------------------------------------------------


def test_welcome_notice_reaches_the_hire_once_a_day(sim: DingTalkSimulator) -> None:
    client = client_of(sim)
    client.upsert_user(hire())
    assert client.send_text(["H30001"], "欢迎加入！")
    client.send_text(["H30001"], "欢迎加入！")  # answered ok by DingTalk, not delivered again
    assert sim.messages == 1


# -- the Airbyte source ------------------------------------------------------------------------


def test_source_check_discover_and_read_with_cursor_paging(sim: DingTalkSimulator) -> None:
    sim.users["D00008"].dept_id_list = [2, 3]
    config = config_of(sim, page_size=2)
    source = DingTalkSource()
    assert source.check(LOG, config).status == Status.SUCCEEDED
    streams = {s.name: s for s in source.discover(LOG, config).streams}
    assert set(streams) == {"users", "departments"}
    users = read(DingTalkSource(), config, "users")
    assert sorted(u["userid"] for u in users) == sorted(sim.users)
    assert len(statuses(sim, "/topapi/v2/user/list")) > len(sim.departments)  # several pages
    assert {d["dept_id"] for d in read(DingTalkSource(), config, "departments")} == set(sim.departments) - {1}


def test_source_check_fails_cleanly_on_bad_credentials(sim: DingTalkSimulator) -> None:
    status = DingTalkSource().check(LOG, config_of(sim, app_secret="wrong-secret-value"))
    assert status.status == Status.FAILED
    assert "invalidClientIdOrSecret" in (status.message or "") and "wrong-secret-value" not in (
        status.message or ""
    )


# -- onboarding actions ------------------------------------------------------------------------

CASE = {
    "name": "钉钉新人",
    "phone": "+8613712340001",
    "job_number": "H30001",
    "department": "RD",
    "job_title": "后端工程师",
    "start_date": "2026-12-01",
}


def context(sim: DingTalkSimulator, task: str, **extra: Any) -> ActionContext:
    fields = {"case": CASE, "options": {"manager_userid": "D00002"}, **extra}
    return action_context("dingtalk", task, lambda: config_of(sim), **fields)


def test_actions_are_registered_by_the_plugin() -> None:
    import hub_dingtalk

    assert action_names(hub_dingtalk) == {
        "dingtalk.create_user",
        "dingtalk.start_approval",
        "dingtalk.send_welcome",
        "dingtalk.update_user",
    }


def test_create_user_action_and_undo(sim: DingTalkSimulator) -> None:
    action = CreateUser()
    ctx = context(sim, "create_user")
    assert action.find(ctx) is None
    outcome = action.perform(ctx)
    assert outcome.kind == OutcomeKind.DONE and outcome.ref == ExternalRef("H30001", "dingtalk_user")
    assert sim.users["H30001"].mobile == "13712340001"
    assert action.find(ctx) == outcome.ref
    action.undo(context(sim, "create_user", ref=outcome.ref))
    action.undo(context(sim, "create_user", ref=outcome.ref))
    assert "H30001" not in sim.users


def test_create_user_action_needs_a_mobile(sim: DingTalkSimulator) -> None:
    ctx = context(sim, "create_user", case={k: v for k, v in CASE.items() if k != "phone"})
    with pytest.raises(ActionFailed) as caught:
        CreateUser().perform(ctx)
    assert caught.value.permanent


def test_start_approval_action_follows_the_pushes(sim: DingTalkSimulator, receiver: Receiver) -> None:
    sim.approval_delay = 3600
    action = StartApproval()
    ctx = context(sim, "start_approval")
    outcome = action.perform(ctx)
    assert outcome.kind == OutcomeKind.WAITING
    instance_id = str(outcome.correlation)
    found = action.find(ctx)
    assert found is not None and found.id == instance_id
    verifier = verifier_of(sim)

    def parsed() -> list[Any]:
        return [action.parse_callback(v.action, v.body) for v in receiver.verdicts(verifier, clear=True)]

    sim.deliver_callbacks(receiver.url)
    (started,) = parsed()
    assert started.external_id == instance_id and action.on_callback(ctx, started).kind == OutcomeKind.WAITING
    sim.decide(instance_id, agree=True)
    sim.deliver_callbacks(receiver.url)
    (finished,) = parsed()
    assert finished.payload["status"] == "APPROVED"
    assert action.on_callback(ctx, finished).kind == OutcomeKind.DONE
    assert action.on_callback(ctx, started).kind == OutcomeKind.DONE  # late "start" after the decision


def test_send_welcome_action(sim: DingTalkSimulator) -> None:
    created = CreateUser().perform(context(sim, "create_user"))
    ctx = context(sim, "send_welcome", results={"oa_account": TaskResult(ref=created.ref)})
    SendWelcome().perform(ctx)
    SendWelcome().perform(ctx)
    assert sim.messages == 1 and sim.notices[0].userid == "H30001"


def final_results(created: Any, employee_no: str = "H2030001") -> dict[str, TaskResult]:
    """The case's results when the contract is signed: the member and the HR master record."""
    return {
        "create_oa_account": TaskResult(ref=created.ref, data=created.data),
        "create_hr_record": TaskResult(
            data={"employee_no": employee_no, "contract_no": f"{employee_no}-C01"}
        ),
    }


def test_update_user_action_syncs_the_final_record_onto_the_created_member(sim: DingTalkSimulator) -> None:
    created = CreateUser().perform(context(sim, "create_user"))
    # the final record: another department, title and start date, and no mobile (an update needs none)
    final = {
        **{k: v for k, v in CASE.items() if k != "phone"},
        "department": "DATA",
        "job_title": "资深后端工程师",
        "start_date": "2026-12-15",
    }
    ctx = context(
        sim, "update_user", case=final, options={"manager_userid": "D00003"}, results=final_results(created)
    )
    action = UpdateUser()
    outcome = action.perform(ctx)
    assert outcome.kind == OutcomeKind.DONE and outcome.ref == ExternalRef("H30001", "dingtalk_user")
    assert dict(outcome.data) == {"dingtalk_userid": "H30001", "job_number": "H2030001"}
    user = sim.users["H30001"]
    assert (user.job_number, user.title, user.dept_id_list, user.manager_userid) == (
        "H2030001",
        "资深后端工程师",
        [3],
        "D00003",
    )
    assert user.hired_date == hired_date_ms(date(2026, 12, 15)) and user.mobile == "13712340001"
    assert sim.updates == 1 and "H2030001" not in sim.users
    snapshot = dataclasses.asdict(user)
    assert action.perform(ctx).data == outcome.data  # a retried attempt: the same update again
    assert dataclasses.asdict(sim.users["H30001"]) == snapshot and sim.updates == 2 and sim.accounts == 1
    action.undo(context(sim, "update_user", ref=outcome.ref))  # nothing to undo: the member stays
    assert "H30001" in sim.users


def test_update_user_action_without_an_hr_record_keeps_the_case_job_number(sim: DingTalkSimulator) -> None:
    created = CreateUser().perform(context(sim, "create_user"))
    results = {"create_oa_account": TaskResult(ref=created.ref)}
    UpdateUser().perform(context(sim, "update_user", results=results))
    assert sim.users["H30001"].job_number == "H30001"


def test_update_user_action_for_a_deleted_member_goes_to_an_operator(sim: DingTalkSimulator) -> None:
    created = CreateUser().perform(context(sim, "create_user"))
    CreateUser().undo(context(sim, "create_user", ref=created.ref))  # deleted at DingTalk meanwhile
    with pytest.raises(ActionFailed) as caught:
        UpdateUser().perform(context(sim, "update_user", results=final_results(created)))
    assert caught.value.permanent and "task 'create_oa_account' created is gone" in caught.value.reason
    with pytest.raises(ActionFailed) as caught:
        UpdateUser().perform(context(sim, "update_user"))
    assert caught.value.permanent and "task 'create_oa_account' has no DingTalk member" in caught.value.reason
    assert sim.updates == 0


def connector_toml(sim: DingTalkSimulator) -> str:
    """``[connectors.dingtalk]`` pointing at the simulator, the secret from ``DINGTALK_SECRET``."""
    return f"""
[connectors.dingtalk]
plugin = "dingtalk"
[connectors.dingtalk.config]
base_url = "{sim.url}"
api_base_url = "{sim.url}"
app_key = "{sim.app_key}"
app_secret = {{ env = "DINGTALK_SECRET" }}
agent_id = {sim.agent_id}
department_map = {{ RD = 2 }}
[connectors.dingtalk.config.approval]
process_code = "{sim.process_code}"
originator_userid = "D00001"
reference_field = "{REFERENCE_FIELD}"
"""


def secrets(sim: DingTalkSimulator) -> dict[str, str]:
    """The environment the project's secret references read."""
    return {
        "DINGTALK_SECRET": sim.app_secret,
        "DINGTALK_CALLBACK_TOKEN": sim.callback_token,
        "DINGTALK_CALLBACK_AES_KEY": sim.aes_key,
    }


def test_hub_connectors_check(sim: DingTalkSimulator, write_project: Any) -> None:
    webhook = f"""
[connectors.dingtalk.webhook]
token = {{ env = "DINGTALK_CALLBACK_TOKEN" }}
aes_key = {{ env = "DINGTALK_CALLBACK_AES_KEY" }}
app_key = "{sim.app_key}"
"""
    connectors_check(write_project(connector_toml(sim) + webhook), "dingtalk", secrets(sim))


# -- through hub's onboarding flow -------------------------------------------------------------


def flow_of(sim: DingTalkSimulator, write_project: Any, monkeypatch: pytest.MonkeyPatch) -> OnboardingFlow:
    return onboarding_flow(write_project, monkeypatch, "dingtalk", connector_toml(sim), secrets(sim))


def test_onboarding_case_end_to_end_with_repeated_and_late_callbacks(
    sim: DingTalkSimulator, receiver: Receiver, write_project: Any, monkeypatch: pytest.MonkeyPatch
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
        lambda instance_id: sim.decide(instance_id, agree=True),
    )
    assert outcomes[0] == CallbackStatus.MATCHED and CallbackStatus.MATCHED not in outcomes[1:]
    assert flow.show(case_id).status == "COMPLETED"
    assert sim.accounts == 1 and sim.approvals == 1 and sim.messages == 1


def test_onboarding_case_makes_each_object_once_when_every_write_loses_its_connection(
    sim: DingTalkSimulator, receiver: Receiver, write_project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim.approval_delay = 3600
    sim.drop_replies("/topapi/v2/user/create")
    sim.drop_replies("/v1.0/workflow/processInstances", method="POST")
    sim.drop_replies("/asyncsend_v2")
    flow = flow_of(sim, write_project, monkeypatch)
    case_id, _ = case_through_late_callbacks(
        flow,
        CASE,
        sim,
        receiver,
        verifier_of(sim),
        StartApproval(),
        lambda instance_id: sim.decide(instance_id, agree=True),
    )
    assert flow.show(case_id).status == "COMPLETED"
    assert sim.accounts == 1 and sim.approvals == 1 and sim.messages == 1
    created = [
        s for m, p, s in sim.requests if m == "POST" and p.startswith("/v1.0/workflow/processInstances")
    ]
    assert created == [0]  # found by its reference, not started again
    assert statuses(sim, "/user/create") == [0] and statuses(sim, "/asyncsend_v2")[0] == 0


def test_cancelled_case_undoes_the_account(
    sim: DingTalkSimulator, write_project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim.approval_delay = 3600
    flow = flow_of(sim, write_project, monkeypatch)
    cancelled_case(flow, CASE)
    assert "H30001" not in sim.users  # DingTalk cannot disable: the account is removed


def test_member_made_by_hand_with_the_same_mobile_and_name_is_adopted(sim: DingTalkSimulator) -> None:
    existing = sim.users["D00011"]
    result = client_of(sim).upsert_user(hire(job_number="H40004", mobile=existing.mobile, name=existing.name))
    assert result.userid == "D00011" and not result.created
    assert sim.accounts == 0 and existing.dept_id_list == [2]
