"""DingTalk onboarding actions: ``dingtalk.create_user``, ``dingtalk.start_approval``, ``dingtalk.send_welcome``,
``dingtalk.update_user``.

Configured and fed as :mod:`hub.oa.actions` says (the manager's id in ``manager_userid``; the
approval's originator in the task option ``originator_userid``). DingTalk cannot disable an
ordinary account, so undoing ``create_user`` (a cancelled hire) deletes the member. The
approval task waits for ``bpms_instance_change`` (``hub serve`` with
``[connectors.dingtalk.webhook]``). ``update_user`` sends ``topapi/v2/user/update`` to the member
``create_user`` made, with the final job facts (``job_number`` from the HR master task's result).
"""

from __future__ import annotations

import json
from typing import ClassVar

from hub.oa.actions import (
    OACreateUser,
    OASendWelcome,
    OAStartApproval,
    OAUpdateUser,
    OAVendor,
    approval_values,
)
from hub.onboarding import ActionContext, CallbackEvent, OnboardingAction
from hub_dingtalk.client import ApprovalRequest, DingTalkClient, NewHire, normalised_status

DINGTALK = OAVendor("dingtalk", DingTalkClient, NewHire, approval_event="bpms_instance_change")
USER_KIND = DINGTALK.user_kind
APPROVAL_KIND = DINGTALK.approval_kind
APPROVAL_EVENT = DINGTALK.approval_event


def approval_request(ctx: ActionContext) -> ApprovalRequest:
    return ApprovalRequest(
        reference=ctx.idempotency_key,
        values=approval_values(DINGTALK.hire_of(ctx)),
        originator_userid=str(ctx.options.get("originator_userid") or ""),
    )


class CreateUser(OACreateUser[DingTalkClient]):
    """Create the hire's DingTalk member (or bring the one made earlier up to date).

    Undoing it deletes the member: DingTalk has no disable for ordinary accounts.
    """

    oa = DINGTALK
    name: ClassVar[str] = "dingtalk.create_user"
    description: ClassVar[str] = "create or update the hire's DingTalk member (userid from the job number)"


class StartApproval(OAStartApproval[DingTalkClient]):
    """Start the onboarding approval and wait for DingTalk's decision."""

    oa = DINGTALK
    name: ClassVar[str] = "dingtalk.start_approval"
    description: ClassVar[str] = "start the onboarding approval (workflow processInstances); done when agreed"

    def find_started(self, client: DingTalkClient, ctx: ActionContext) -> str | None:
        return client.find_approval(approval_request(ctx))

    def start(self, client: DingTalkClient, ctx: ActionContext) -> str:
        return client.start_approval(approval_request(ctx)).instance_id

    def parse_callback(self, event_type: str, body: bytes) -> CallbackEvent | None:
        if event_type != APPROVAL_EVENT:
            return None
        try:
            event = json.loads(body)
        except ValueError:
            return None
        if not isinstance(event, dict) or not event.get("processInstanceId"):
            return None
        kind, result = str(event.get("type") or ""), str(event.get("result") or "")
        status = {"start": "PENDING", "terminate": "CANCELED"}.get(kind) or normalised_status(
            "COMPLETED", result
        )
        return CallbackEvent(
            external_id=str(event["processInstanceId"]),
            event_type=event_type,
            payload={"type": kind, "result": result, "status": status},
        )


class SendWelcome(OASendWelcome[DingTalkClient]):
    """Send the new member a work notice (DingTalk delivers identical content once a day)."""

    oa = DINGTALK
    name: ClassVar[str] = "dingtalk.send_welcome"
    description: ClassVar[str] = "send the hire a welcome work notice (asyncsend_v2)"
    message_kind = "dingtalk_notice"

    def send(self, client: DingTalkClient, account: str, text: str, ctx: ActionContext) -> str:
        return client.send_text([account], text)


class UpdateUser(OAUpdateUser[DingTalkClient]):
    """Sync the final record (title, department, manager, job number, start date) onto the member."""

    oa = DINGTALK
    name: ClassVar[str] = "dingtalk.update_user"
    description: ClassVar[str] = (
        "update the member create_user made with the final job facts (topapi/v2/user/update: "
        "job_number, title, dept_id_list, manager_userid, hired_date)"
    )


ACTIONS: tuple[OnboardingAction, ...] = (CreateUser(), StartApproval(), SendWelcome(), UpdateUser())
