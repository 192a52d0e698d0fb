"""The ``wecom`` connector against its simulator, over loopback HTTP.

Token fetch, cache and expiry (one refetch), 45009 back-off, idempotent member creation when
WeCom's answer is lost, a taken mobile reported without the number, the onboarding approval
(idempotent by reference) and its ``sys_approval_change`` callback verified and decrypted with
``hub.callbacks`` (a tampered one refused; repeated and out-of-order deliveries), the welcome
message de-duplicated, and the address book read through the Airbyte source with paging.
"""

from __future__ import annotations

import dataclasses
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from airbyte_cdk.models import Status
from hub_wecom.actions import CreateUser, SendWelcome, StartApproval, UpdateUser
from hub_wecom.client import ApprovalRequest, NewHire, WeComClient
from hub_wecom.errors import WeComAuthError, WeComConflict, WeComError, WeComRateLimited
from hub_wecom.source import WeComSource
from hub_wecom.webhook import WeComVerifier, event_fields

from hub.callbacks import SignatureError, WeComCrypto
from hub.onboarding import ActionContext, ActionFailed, CallbackEvent, ExternalRef, TaskResult
from hub.onboarding.actions import OutcomeKind
from hub.onboarding.flow import CallbackStatus, OnboardingFlow
from hub.sandbox import Faults
from hub.sandbox.wecom import SP_APPROVED, SP_PENDING, SP_REJECTED, WeComSimulator
from hub.webhooks import Accepted, WebhookRejected, WebhookRequest
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
)
from tests.plugins.oa_helpers import statuses as paths

REFERENCE_CONTROL = "Text-1700000000001"


@pytest.fixture
def sim() -> Iterator[WeComSimulator]:
    with WeComSimulator(count=23, seed=2, approval_delay=0.0) as simulator:
        yield simulator


def config_of(sim: WeComSimulator, **extra: Any) -> dict[str, Any]:
    return {
        "base_url": sim.url,
        "corp_id": sim.corp_id,
        "corp_secret": sim.corp_secret,
        "agent_id": sim.agent_id,
        "department_map": {"RD": 2, "DATA": 3},
        "approval": {
            "template_id": sim.template_id,
            "creator_userid": "E00001",
            "reference_control": REFERENCE_CONTROL,
            "form_controls": {"name": "Text-1700000000002", "start_date": "Text-1700000000003"},
        },
        "backoff_base_seconds": 0.01,
        **extra,
    }


def client_of(sim: WeComSimulator, sleeps: list[float] | None = None, **extra: Any) -> WeComClient:
    record = sleeps if sleeps is not None else []
    return WeComClient.from_config(config_of(sim, **extra), sleep=record.append)


def hire(job_number: str = "H10001", mobile: str = "13912340001", **extra: Any) -> NewHire:
    fields: dict[str, Any] = {
        "name": "测试员工",
        "department_codes": ("RD",),
        "title": "数据标注工程师",
        "manager_userid": "E00002",
        **extra,
    }
    return NewHire(mobile=mobile, job_number=job_number, **fields)


def verifier_of(sim: WeComSimulator) -> WeComVerifier:
    return WeComVerifier(
        {"token": sim.callback_token, "encoding_aes_key": sim.encoding_aes_key, "corp_id": sim.corp_id}
    )


# -- tokens ------------------------------------------------------------------------------------


def test_token_is_fetched_once_and_cached(sim: WeComSimulator) -> None:
    client = client_of(sim)
    assert client.get_user("E00003") is not None
    assert client.get_user("E00004") is not None
    assert client.token_fetches == 1
    assert len(paths(sim, "/gettoken")) == 1


def test_expired_token_is_refetched_once_and_the_call_retried(sim: WeComSimulator) -> None:
    client = client_of(sim)
    client.get_user("E00003")
    sim.expire_tokens()
    member = client.get_user("E00005")
    assert member is not None and member["userid"] == "E00005"
    assert client.token_fetches == 2
    # the call answered 42001 once (HTTP 200, as WeCom does), then succeeded with the new token
    assert len([s for s in paths(sim, "/user/get") if s == 200]) == 3


def test_token_is_refreshed_before_expiry_by_the_margin(sim: WeComSimulator) -> None:
    now = [1_000_000.0]
    client = WeComClient.from_config(config_of(sim, token_margin_seconds=300), clock=lambda: now[0])
    client.departments()
    now[0] += 7200 - 299  # inside the margin: a new token before WeCom would refuse the old one
    client.departments()
    assert client.token_fetches == 2
    assert len(paths(sim, "/gettoken")) == 2


def test_wrong_secret_is_an_auth_error_without_the_secret(sim: WeComSimulator) -> None:
    client = client_of(sim, corp_secret="not-the-secret-zz")
    with pytest.raises(WeComAuthError) as caught:
        client.departments()
    assert caught.value.code == 40001
    assert "not-the-secret-zz" not in str(caught.value)


# -- rate limits and server errors --------------------------------------------------------------


def test_frequency_limit_backs_off_then_succeeds(sim: WeComSimulator) -> None:
    sleeps: list[float] = []
    client = client_of(sim, sleeps)
    client.departments()  # token first
    sim.faults = Faults(throttle=2, only="/department/list")
    departments = client.departments()
    assert {d["id"] for d in departments} >= {1, 2, 3}
    assert len(sleeps) == 2 and all(s >= 0 for s in sleeps)
    assert paths(sim, "/department/list").count(200) == 4  # 45009 is an HTTP 200 answer


def test_frequency_limit_that_persists_is_a_typed_error(sim: WeComSimulator) -> None:
    client = client_of(sim, max_attempts=3)
    client.departments()
    sim.faults = Faults(throttle=10, only="/department/list")
    with pytest.raises(WeComRateLimited) as caught:
        client.departments()
    assert caught.value.code == 45009 and caught.value.retryable


def test_server_errors_on_reads_are_retried(sim: WeComSimulator) -> None:
    sleeps: list[float] = []
    client = client_of(sim, sleeps)
    client.departments()
    sim.faults = Faults(errors=2, error_status=503, only="/user/get")
    assert client.get_user("E00006") is not None
    assert paths(sim, "/user/get")[:2] == [503, 503]
    assert len(sleeps) == 2


# -- members -----------------------------------------------------------------------------------


def test_create_user_is_idempotent_when_the_answer_is_lost(sim: WeComSimulator) -> None:
    client = client_of(sim)
    sim.lose_replies("/user/create")  # WeCom creates the member, the answer never arrives
    result = client.upsert_user(hire())
    assert result.userid == "H10001" and result.created
    assert sim.accounts == 1
    assert paths(sim, "/user/create") == [502]  # looked up, not sent twice
    member = sim.members["H10001"]
    assert member.department == [2] and member.direct_leader == ["E00002"]
    again = client.upsert_user(hire(title="机器学习工程师"))
    assert again.userid == "H10001" and not again.created
    assert sim.accounts == 1 and sim.members["H10001"].position == "机器学习工程师"
    assert [m.mobile for m in sim.members.values()].count("13912340001") == 1


def test_create_user_sent_again_when_it_never_arrived(sim: WeComSimulator) -> None:
    client = client_of(sim)
    client.departments()
    sim.faults = Faults(errors=1, error_status=502, only="/user/create")  # refused before processing
    result = client.upsert_user(hire())
    assert result.created and sim.accounts == 1
    assert paths(sim, "/user/create") == [502, 200]


def test_create_user_whose_connection_dropped_is_made_once(sim: WeComSimulator) -> None:
    client = client_of(sim)
    sim.drop_replies("/user/create")  # WeCom creates the member, then the connection closes unanswered
    result = client.upsert_user(hire())
    assert result.userid == "H10001" and result.created
    assert sim.accounts == 1 and paths(sim, "/user/create") == [0]  # looked up, not sent again


def test_taken_mobile_is_a_conflict_that_names_no_number(sim: WeComSimulator) -> None:
    client = client_of(sim)
    taken = sim.members["E00007"].mobile
    with pytest.raises(WeComConflict) as caught:
        client.upsert_user(hire(job_number="H20002", mobile=taken))
    error = caught.value
    assert error.code == 60104 and error.field == "mobile"
    assert taken not in str(error) and "E00007" not in str(error)  # WeCom's errmsg names the holder
    assert sim.accounts == 0


def test_disable_user_for_a_cancelled_hire(sim: WeComSimulator) -> None:
    client = client_of(sim)
    client.upsert_user(hire())
    assert client.disable_user("H10001")
    member = client.get_user("H10001")
    assert member is not None and member["enable"] == 0 and member["status"] == 2
    assert not client.disable_user("nobody")
    client.upsert_user(hire())  # hired after all: enabled again, still one account
    assert sim.members["H10001"].enable == 1 and sim.accounts == 1


def test_unmapped_department_code_is_refused_before_any_call(sim: WeComSimulator) -> None:
    client = client_of(sim)
    with pytest.raises(Exception, match="not mapped: FIN"):
        client.upsert_user(hire(department_codes=("FIN",)))
    assert sim.accounts == 0


# -- approvals and callbacks ------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def approval_request(reference: str = "5b0c3f51-0000-4000-8000-000000000001") -> ApprovalRequest:
    return ApprovalRequest(reference=reference, values={"name": "测试员工", "start_date": "2026-12-01"})


def test_approval_is_started_once_per_reference(sim: WeComSimulator) -> None:
    sim.approval_delay = 3600
    client = client_of(sim)
    first = client.start_approval(approval_request())
    assert first.created
    second = client.start_approval(approval_request())
    assert second.sp_no == first.sp_no and not second.created
    assert len(sim.approvals) == 1
    status = client.approval_status(first.sp_no)
    assert status.status == "PENDING" and status.raw_status == SP_PENDING
    contents = sim.approvals[first.sp_no].apply_data["contents"]
    assert {
        "control": "Text",
        "id": REFERENCE_CONTROL,
        "value": {"text": approval_request().reference},
    } in contents


def test_look_ups_read_each_approvals_detail_once_per_process(sim: WeComSimulator) -> None:
    sim.approval_delay = 3600
    client = client_of(sim)
    for n in range(3):
        client.start_approval(approval_request(f"5b0c3f51-0000-4000-8000-00000000010{n}"))
    details = len(paths(sim, "getapprovaldetail"))
    missing = approval_request("5b0c3f51-0000-4000-8000-000000000199")
    assert client_of(sim).find_approval(missing) is None
    assert client_of(sim).find_approval(missing) is None  # a new client, the same process
    assert len(paths(sim, "getapprovaldetail")) - details <= 1  # only the one never read before


def test_approval_whose_answer_is_lost_is_found_not_resubmitted(sim: WeComSimulator) -> None:
    client = client_of(sim)
    sim.lose_replies("/oa/applyevent")
    result = client.start_approval(approval_request())
    assert len(sim.approvals) == 1 and result.sp_no in sim.approvals
    assert paths(sim, "/oa/applyevent") == [502]


def test_approval_callbacks_verify_and_decrypt(sim: WeComSimulator, receiver: Receiver) -> None:
    client = client_of(sim)
    sp_no = client.start_approval(approval_request()).sp_no
    deliveries = sim.deliver_callbacks(receiver.url)
    assert [(d.status, d.accepted) for d in deliveries] == [(SP_PENDING, True), (SP_APPROVED, True)]
    crypto = WeComCrypto(sim.callback_token, sim.encoding_aes_key, sim.corp_id)
    statuses = []
    for query, body in receiver.received:
        assert int(query["timestamp"]) < 10**11  # WeCom signs seconds
        plaintext = crypto.decrypt_xml(query["msg_signature"], query["timestamp"], query["nonce"], body)
        root = ET.fromstring(plaintext)
        assert root.findtext("Event") == "sys_approval_change"
        assert root.findtext("ApprovalInfo/SpNo") == sp_no
        statuses.append(int(root.findtext("ApprovalInfo/SpStatus") or 0))
    assert statuses == [SP_PENDING, SP_APPROVED]
    assert client.approval_status(sp_no).status == "APPROVED"
    assert sim.deliver_callbacks(receiver.url) == []  # acknowledged: nothing left to send

    query, body = receiver.received[-1]
    tampered = body.replace(b"<Encrypt><![CDATA[", b"<Encrypt><![CDATA[A", 1)
    with pytest.raises(SignatureError):
        crypto.decrypt_xml(query["msg_signature"], query["timestamp"], query["nonce"], tampered)


def test_repeated_and_out_of_order_callbacks(sim: WeComSimulator, receiver: Receiver) -> None:
    sim.approval_outcome = "reject"
    client = client_of(sim)
    sp_no = client.start_approval(approval_request()).sp_no
    deliveries = sim.deliver_callbacks(receiver.url, repeat={sp_no: 3}, reverse=True)
    assert [d.status for d in deliveries] == [SP_REJECTED] * 3 + [SP_PENDING] * 3
    verifier = verifier_of(sim)
    verdicts = []
    for query, body in receiver.received:
        request = WebhookRequest("POST", {}, query, body, datetime.now(UTC))
        verdict = verifier.verify(request)
        assert isinstance(verdict, Accepted) and verdict.action == "sys_approval_change"
        verdicts.append((verdict.event_id, event_fields(verdict.body)["SpStatus"]))
    # each copy of a redelivery carries the same signed values, so hub sees one event id
    assert len({event_id for event_id, _ in verdicts}) == 2
    assert [status for _, status in verdicts] == ["3"] * 3 + ["1"] * 3
    query, body = receiver.received[0]
    with pytest.raises(WebhookRejected) as refused:
        verifier.verify(WebhookRequest("POST", {}, {**query, "nonce": "other"}, body, datetime.now(UTC)))
    assert refused.value.reason == "bad_signature"


def test_url_verification_handshake(sim: WeComSimulator) -> None:
    verifier = verifier_of(sim)
    query = sim.crypto.url_verification("echo-123", "1700000000", "nonce1")
    reply = verifier.handshake(WebhookRequest("GET", {}, query, b"", datetime.now(UTC)))
    assert reply.body == b"echo-123"


# -- messages ----------------------------------------------------------------------------------


def test_welcome_message_is_sent_once(sim: WeComSimulator) -> None:
    client = client_of(sim)
    client.upsert_user(hire())
    client.send_text(["H10001"], "欢迎加入！")
    client.send_text(["H10001"], "欢迎加入！")  # a retry: WeCom's duplicate check drops it
    assert sim.messages == 1 and sim.sent_messages[0]["touser"] == ["H10001"]


# -- the Airbyte source ------------------------------------------------------------------------


def test_source_check_discover_and_read_with_cursor_paging(sim: WeComSimulator) -> None:
    # one member in two departments: list_id lists them twice, the stream once
    sim.members["E00008"].department = [2, 3]
    config = config_of(sim, page_size=5)
    source = WeComSource()
    assert source.check(LOG, config).status == Status.SUCCEEDED
    streams = {s.name: s for s in source.discover(LOG, config).streams}
    assert set(streams) == {"users", "departments"}
    assert streams["users"].source_defined_primary_key == [["userid"]]
    users = read(WeComSource(), config, "users")
    assert sorted(u["userid"] for u in users) == sorted(sim.members)
    assert len(paths(sim, "/user/list_id")) == 5  # 24 memberships, 5 per page
    departments = read(WeComSource(), config, "departments")
    assert {d["id"] for d in departments} == set(sim.departments)


def test_source_check_fails_cleanly_on_bad_credentials(sim: WeComSimulator) -> None:
    status = WeComSource().check(LOG, config_of(sim, corp_secret="wrong-secret-value"))
    assert status.status == Status.FAILED
    assert "40001" in (status.message or "") and "wrong-secret-value" not in (status.message or "")


# -- onboarding actions ------------------------------------------------------------------------

CASE = {
    "name": "测试员工",
    "phone": "+8613912340001",  # hub keeps E.164; WeCom gets the national number
    "job_number": "H10001",
    "department": "RD",
    "job_title": "数据标注工程师",
    "start_date": "2026-12-01",
}


def context(sim: WeComSimulator, task: str, **extra: Any) -> ActionContext:
    fields = {"case": CASE, "options": {"manager_userid": "E00002"}, **extra}
    return action_context("wecom", task, lambda: config_of(sim), **fields)


def test_actions_are_registered_by_the_plugin() -> None:
    import hub_wecom

    assert action_names(hub_wecom) == {
        "wecom.create_user",
        "wecom.start_approval",
        "wecom.send_welcome",
        "wecom.update_user",
    }


def test_create_user_action_finds_performs_and_undoes(sim: WeComSimulator) -> None:
    action = CreateUser()
    ctx = context(sim, "create_user")
    assert action.find(ctx) is None
    outcome = action.perform(ctx)
    assert outcome.kind == OutcomeKind.DONE and outcome.ref == ExternalRef("H10001", "wecom_user")
    member = sim.members["H10001"]
    assert member.mobile == "13912340001" and member.department == [2] and member.direct_leader == ["E00002"]
    assert action.find(ctx) == ExternalRef("H10001", "wecom_user")  # a lost reply is recovered
    action.undo(context(sim, "create_user", ref=outcome.ref))
    action.undo(context(sim, "create_user", ref=outcome.ref))  # twice is harmless
    assert sim.members["H10001"].enable == 0 and sim.accounts == 1


def test_create_user_action_reports_a_taken_mobile_to_an_operator(sim: WeComSimulator) -> None:
    taken = sim.members["E00009"].mobile
    ctx = context(sim, "create_user", case={**CASE, "phone": taken})
    with pytest.raises(ActionFailed) as caught:
        CreateUser().perform(ctx)
    assert caught.value.permanent and "60104" in caught.value.reason and taken not in caught.value.reason


def test_start_approval_action_waits_for_the_callback(sim: WeComSimulator, receiver: Receiver) -> None:
    sim.approval_delay = 3600
    action = StartApproval()
    ctx = context(sim, "start_approval")
    assert action.find(ctx) is None
    outcome = action.perform(ctx)
    assert outcome.kind == OutcomeKind.WAITING and outcome.correlation in sim.approvals
    sp_no = str(outcome.correlation)
    found = action.find(ctx)
    assert found is not None and found.id == sp_no
    assert action.recovered(ctx, found).kind == OutcomeKind.WAITING
    verifier = verifier_of(sim)

    def events() -> list[CallbackEvent]:
        parsed = [action.parse_callback(v.action, v.body) for v in receiver.verdicts(verifier, clear=True)]
        assert all(event is not None and event.external_id == sp_no for event in parsed)
        return [event for event in parsed if event is not None]

    sim.deliver_callbacks(receiver.url)
    (submitted,) = events()
    assert action.on_callback(ctx, submitted).kind == OutcomeKind.WAITING  # still pending at WeCom
    sim.decide(sp_no, approve=True)
    sim.deliver_callbacks(receiver.url)
    (decided,) = events()
    assert action.on_callback(ctx, decided).kind == OutcomeKind.DONE
    # the submission event delivered late (out of order) finds the approval decided at WeCom
    assert action.on_callback(ctx, submitted).kind == OutcomeKind.DONE
    assert len(sim.approvals) == 1


def test_rejected_approval_goes_to_an_operator(sim: WeComSimulator) -> None:
    sim.approval_outcome = "reject"
    action = StartApproval()
    ctx = context(sim, "start_approval")
    sp_no = str(action.perform(ctx).correlation)
    event = CallbackEvent(external_id=sp_no, event_type="sys_approval_change", payload={"status": "REJECTED"})
    outcome = action.on_callback(ctx, event)
    assert outcome.kind == OutcomeKind.FAILED and "rejected" in (outcome.reason or "")


def test_send_welcome_action_uses_the_created_member(sim: WeComSimulator) -> None:
    created = CreateUser().perform(context(sim, "create_user"))
    results = {"oa_account": TaskResult(ref=created.ref, data=created.data)}
    ctx = context(sim, "send_welcome", results=results, options={"text": "欢迎{name}，{start_date}见！"})
    SendWelcome().perform(ctx)
    SendWelcome().perform(ctx)  # a retried attempt
    assert sim.messages == 1
    assert sim.sent_messages[0]["content"] == "欢迎测试员工，2026-12-01见！"


def final_results(
    created: Any, employee_no: str = "H2030001", user_task: str = "create_oa_account"
) -> dict[str, TaskResult]:
    """The case's results when the contract is signed: the member and the HR master record."""
    return {
        user_task: TaskResult(ref=created.ref, data=created.data),
        "create_hr_record": TaskResult(
            data={"employee_no": employee_no, "contract_no": f"{employee_no}-C01"}
        ),
    }


def test_update_user_action_syncs_the_final_record_onto_the_created_member(sim: WeComSimulator) -> None:
    created = CreateUser().perform(context(sim, "create_user"))
    # since the account was made: another department, a new title and manager; no mobile needed
    final = {
        **{k: v for k, v in CASE.items() if k != "phone"},
        "department": "DATA",
        "job_title": "高级数据标注工程师",
    }
    ctx = context(
        sim,
        "update_user",
        case=final,
        options={"manager_userid": "E00003", "job_number_attr": "工号"},
        results=final_results(created),
    )
    action = UpdateUser()
    outcome = action.perform(ctx)
    assert outcome.kind == OutcomeKind.DONE and outcome.ref == ExternalRef("H10001", "wecom_user")
    assert dict(outcome.data) == {"wecom_userid": "H10001", "job_number": "H2030001"}
    member = sim.members["H10001"]  # the member create_user made, not one derived from the new number
    assert (member.department, member.main_department, member.position) == ([3], 3, "高级数据标注工程师")
    assert member.direct_leader == ["E00003"] and member.extattr == {"工号": "H2030001"}
    assert member.enable == 1 and member.mobile == "13912340001"  # the mobile is left as it is
    assert "H2030001" not in sim.members and sim.updates == 1
    got = client_of(sim).get_user("H10001")
    assert got is not None and got["extattr"]["attrs"] == [
        {"type": 0, "name": "工号", "text": {"value": "H2030001"}}
    ]

    snapshot = dataclasses.asdict(member)
    assert action.perform(ctx).data == outcome.data  # a retried attempt: the same update again
    assert dataclasses.asdict(sim.members["H10001"]) == snapshot and sim.updates == 2 and sim.accounts == 1
    action.undo(context(sim, "update_user", ref=outcome.ref))  # nothing to undo
    assert sim.members["H10001"].enable == 1 and sim.updates == 2


def test_update_user_action_without_job_number_attribute_or_an_undefined_one(sim: WeComSimulator) -> None:
    created = CreateUser().perform(context(sim, "create_user"))
    UpdateUser().perform(context(sim, "update_user", results=final_results(created)))
    assert sim.members["H10001"].extattr == {}
    options = {"manager_userid": "E00002", "job_number_attr": "未定义的字段"}
    UpdateUser().perform(context(sim, "update_user", options=options, results=final_results(created)))
    assert sim.members["H10001"].extattr == {} and sim.updates == 2  # WeCom ignores unknown names


def test_update_user_action_refusals_go_to_an_operator(sim: WeComSimulator) -> None:
    created = CreateUser().perform(context(sim, "create_user"))
    with pytest.raises(ActionFailed) as caught:  # no create_user result under the default task name
        UpdateUser().perform(
            context(sim, "update_user", results=final_results(created, user_task="oa_account"))
        )
    assert caught.value.permanent and "task 'create_oa_account'" in caught.value.reason
    # options.user_task names the task
    renamed = context(
        sim,
        "update_user",
        options={"user_task": "oa_account"},
        results=final_results(created, user_task="oa_account"),
    )
    assert UpdateUser().perform(renamed).kind == OutcomeKind.DONE
    gone = {"create_oa_account": TaskResult(ref=ExternalRef("GONE01", "wecom_user"))}
    with pytest.raises(ActionFailed) as caught:
        UpdateUser().perform(context(sim, "update_user", results=gone))
    assert caught.value.permanent and "task 'create_oa_account' created is gone" in caught.value.reason
    with pytest.raises(ActionFailed) as caught:  # an unmapped department: refused before any update
        UpdateUser().perform(
            context(sim, "update_user", case={**CASE, "department": "NOPE"}, results=final_results(created))
        )
    assert caught.value.permanent and "NOPE" in caught.value.reason
    assert sim.updates == 1 and "GONE01" not in sim.members


# -- hub config check / hub connectors check ---------------------------------------------------


def connector_toml(sim: WeComSimulator, departments: str = "RD = 2") -> str:
    """``[connectors.wecom]`` pointing at the simulator, the secret from ``WECOM_SECRET``."""
    return f"""
[connectors.wecom]
plugin = "wecom"
[connectors.wecom.config]
base_url = "{sim.url}"
corp_id = "{sim.corp_id}"
corp_secret = {{ env = "WECOM_SECRET" }}
agent_id = {sim.agent_id}
department_map = {{ {departments} }}
welcome_text = "欢迎{{name}}！"
[connectors.wecom.config.approval]
template_id = "{sim.template_id}"
creator_userid = "E00001"
reference_control = "{REFERENCE_CONTROL}"
"""


def secrets(sim: WeComSimulator) -> dict[str, str]:
    """The environment the project's secret references read."""
    return {
        "WECOM_SECRET": sim.corp_secret,
        "WECOM_CALLBACK_TOKEN": sim.callback_token,
        "WECOM_CALLBACK_AES_KEY": sim.encoding_aes_key,
    }


def test_hub_connectors_check(sim: WeComSimulator, write_project: Any) -> None:
    webhook = f"""
[connectors.wecom.webhook]
token = {{ env = "WECOM_CALLBACK_TOKEN" }}
encoding_aes_key = {{ env = "WECOM_CALLBACK_AES_KEY" }}
corp_id = "{sim.corp_id}"
"""
    config = write_project(connector_toml(sim, "RD = 2, DATA = 3") + webhook)
    connectors_check(config, "wecom", secrets(sim))


# -- through hub's onboarding flow -------------------------------------------------------------


def flow_of(sim: WeComSimulator, write_project: Any, monkeypatch: pytest.MonkeyPatch) -> OnboardingFlow:
    return onboarding_flow(write_project, monkeypatch, "wecom", connector_toml(sim), secrets(sim))


def task_statuses(flow: OnboardingFlow, case_id: str) -> dict[str, str]:
    return {t.name: t.status for t in flow.show(case_id).tasks}


def test_onboarding_case_end_to_end_with_repeated_and_late_callbacks(
    sim: WeComSimulator, receiver: Receiver, write_project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim.approval_delay = 3600
    flow = flow_of(sim, write_project, monkeypatch)
    case_id, results = case_through_late_callbacks(
        flow,
        CASE,
        sim,
        receiver,
        verifier_of(sim),
        StartApproval(),
        lambda sp_no: sim.decide(sp_no, approve=True),
    )
    assert results[0] == CallbackStatus.MATCHED
    assert set(results[1:]) <= {CallbackStatus.ALREADY_HANDLED, CallbackStatus.NO_MATCH}
    assert flow.show(case_id).status == "COMPLETED"
    assert sim.accounts == 1 and len(sim.approvals) == 1 and sim.messages == 1
    assert sim.sent_messages[0]["content"] == "欢迎测试员工！"
    assert "13912340001" not in str(flow.show(case_id).as_dict())  # shown masked


def test_onboarding_case_makes_each_object_once_when_every_write_loses_its_connection(
    sim: WeComSimulator, receiver: Receiver, write_project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim.approval_delay = 3600
    writes = ("/user/create", "/oa/applyevent", "/message/send")
    for path in writes:
        sim.drop_replies(path)  # WeCom acts, then the connection closes unanswered
    flow = flow_of(sim, write_project, monkeypatch)
    case_id, _ = case_through_late_callbacks(
        flow,
        CASE,
        sim,
        receiver,
        verifier_of(sim),
        StartApproval(),
        lambda sp_no: sim.decide(sp_no, approve=True),
    )
    assert flow.show(case_id).status == "COMPLETED"
    assert sim.accounts == 1 and len(sim.approvals) == 1 and sim.messages == 1
    assert [paths(sim, path)[0] for path in writes] == [0, 0, 0]


def test_cancelled_case_disables_the_member(
    sim: WeComSimulator, write_project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim.approval_delay = 3600
    flow = flow_of(sim, write_project, monkeypatch)
    cancelled_case(flow, CASE)
    assert sim.members["H10001"].enable == 0


def test_background_delivery_with_default_repeats(receiver: Receiver) -> None:
    with WeComSimulator(count=5, approval_delay=0.0, callback_url=receiver.url) as simulator:
        simulator.callback_repeat = {"*": 2}
        client_of(simulator).start_approval(approval_request())
        deadline = time.monotonic() + 10
        while len(receiver.received) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert len(receiver.received) == 4  # two events (submitted, decided), each delivered twice
    assert all(d.accepted for d in simulator.deliveries) and not simulator.due_events()


def test_member_made_by_hand_with_the_same_mobile_and_name_is_adopted(sim: WeComSimulator) -> None:
    existing = sim.members["E00011"]
    result = client_of(sim).upsert_user(hire(job_number="H40004", mobile=existing.mobile, name=existing.name))
    assert result.userid == "E00011" and not result.created
    assert sim.accounts == 0 and existing.department == [2] and existing.position == "数据标注工程师"


def test_hire_without_job_number_gets_a_userid_from_the_idempotency_key(sim: WeComSimulator) -> None:
    client = client_of(sim)
    key = "5b0c3f51-0000-4000-8000-0000000000aa"
    first = client.upsert_user(hire(job_number=""), key)
    again = client.upsert_user(hire(job_number=""), key)
    assert first.userid == "hub" + key.replace("-", "")[:20] and first.created
    assert again.userid == first.userid and not again.created and sim.accounts == 1
    with pytest.raises(WeComError, match="no job number"):
        client.upsert_user(hire(job_number=""))  # nothing stable to derive it from
