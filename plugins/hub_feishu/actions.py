"""Feishu onboarding actions: ``feishu.create_user``, ``feishu.start_approval``, ``feishu.send_welcome``,
``feishu.update_user``.

Configured and fed as :mod:`hub.oa.actions` says (the manager's id in ``manager_user_id``).
Feishu honours idempotency keys, which the actions pass on: the task's key is the user's
``client_token``, the approval's ``uuid`` and the message's ``uuid``. Undoing ``create_user``
freezes the user. The approval task waits for ``approval_instance`` events (``hub serve`` with
``[connectors.feishu.webhook]``). ``update_user`` PATCHes the user ``create_user`` made with the
final job facts (``employee_no`` from the HR master task's result).
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
from hub_feishu.client import STATUS, ApprovalRequest, FeishuClient, NewHire

FEISHU = OAVendor("feishu", FeishuClient, NewHire, approval_event="approval_instance")
USER_KIND = FEISHU.user_kind
APPROVAL_KIND = FEISHU.approval_kind
APPROVAL_EVENT = FEISHU.approval_event


def approval_request(ctx: ActionContext) -> ApprovalRequest:
    return ApprovalRequest(
        uuid=ctx.idempotency_key,
        values=approval_values(FEISHU.hire_of(ctx)),
        applicant_user_id=str(ctx.options.get("applicant_user_id") or ""),
    )


class CreateUser(OACreateUser[FeishuClient]):
    """Create the hire's Feishu user with ``client_token`` (or update the one made earlier).

    Undoing it freezes the user.
    """

    oa = FEISHU
    name: ClassVar[str] = "feishu.create_user"
    description: ClassVar[str] = "create or update the hire's Feishu user (client_token = the task's key)"


class StartApproval(OAStartApproval[FeishuClient]):
    """Create the onboarding approval instance (``uuid`` = the task's key); wait for the decision."""

    oa = FEISHU
    name: ClassVar[str] = "feishu.start_approval"
    description: ClassVar[str] = "create the onboarding approval (approval v4, uuid); done when approved"

    def find_started(self, client: FeishuClient, ctx: ActionContext) -> str | None:
        return client.find_approval(ctx.idempotency_key)

    def start(self, client: FeishuClient, ctx: ActionContext) -> str:
        return client.start_approval(approval_request(ctx)).instance_code

    def parse_callback(self, event_type: str, body: bytes) -> CallbackEvent | None:
        if event_type != APPROVAL_EVENT:
            return None
        try:
            document = json.loads(body)
        except ValueError:
            return None
        event = document.get("event") if isinstance(document, dict) else None
        if not isinstance(event, dict) or not event.get("instance_code"):
            return None
        raw = str(event.get("status") or "")
        return CallbackEvent(
            external_id=str(event["instance_code"]),
            event_type=event_type,
            payload={"raw_status": raw, "status": STATUS.get(raw, "OTHER")},
        )


class SendWelcome(OASendWelcome[FeishuClient]):
    """Send the new user a welcome message from the app's bot (``uuid`` = the task's key)."""

    oa = FEISHU
    name: ClassVar[str] = "feishu.send_welcome"
    description: ClassVar[str] = "send the hire a welcome message (im/v1/messages with uuid)"
    message_kind = "feishu_message"

    def send(self, client: FeishuClient, account: str, text: str, ctx: ActionContext) -> str:
        return client.send_text(account, text, ctx.idempotency_key)


class UpdateUser(OAUpdateUser[FeishuClient]):
    """Sync the final record (title, department, manager, job number, start date) onto the user."""

    oa = FEISHU
    name: ClassVar[str] = "feishu.update_user"
    description: ClassVar[str] = (
        "update the user create_user made with the final job facts (PATCH contact/v3/users/:user_id: "
        "employee_no, job_title, department_ids, leader_user_id, join_time)"
    )


ACTIONS: tuple[OnboardingAction, ...] = (CreateUser(), StartApproval(), SendWelcome(), UpdateUser())
