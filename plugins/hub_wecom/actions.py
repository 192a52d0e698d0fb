"""WeCom onboarding actions: ``wecom.create_user``, ``wecom.start_approval``, ``wecom.send_welcome``,
``wecom.update_user``.

Configured and fed as :mod:`hub.oa.actions` says (the manager's id in ``manager_userid``; the
approval's creator in the task option ``creator_userid``). Undoing ``create_user`` disables the
member. The approval task waits for WeCom's ``sys_approval_change`` callback (``hub serve``
with ``[connectors.wecom.webhook]``). ``update_user`` sends ``user/update`` to the member
``create_user`` made; WeCom has no job-number field, so the job number goes into the text
custom attribute the task option ``job_number_attr`` names (``"工号"``), when set.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # parsed after WXBizMsgCrypt verification (hub_wecom.webhook)
from typing import ClassVar

from hub.oa.actions import (
    OACreateUser,
    OASendWelcome,
    OAStartApproval,
    OAUpdateUser,
    OAVendor,
    approval_values,
)
from hub.oa.client import Hire
from hub.onboarding import ActionContext, CallbackEvent, OnboardingAction
from hub_wecom.client import SP_STATUS, ApprovalRequest, NewHire, WeComClient

WECOM = OAVendor("wecom", WeComClient, NewHire, approval_event="sys_approval_change", mobile_required=False)
USER_KIND = WECOM.user_kind
APPROVAL_KIND = WECOM.approval_kind
APPROVAL_EVENT = WECOM.approval_event


def approval_request(ctx: ActionContext) -> ApprovalRequest:
    hire = WECOM.hire_of(ctx)
    return ApprovalRequest(
        reference=ctx.idempotency_key,
        values=approval_values(hire),
        summary=f"入职审批：{hire.name}",
        creator_userid=str(ctx.options.get("creator_userid") or ""),
    )


class CreateUser(OACreateUser[WeComClient]):
    """Create the hire's WeCom member (or bring the one made earlier up to date).

    Undoing it disables the member: a cancelled hire keeps no active account.
    """

    oa = WECOM
    name: ClassVar[str] = "wecom.create_user"
    description: ClassVar[str] = "create or update the hire's WeCom member (userid from the job number)"


class StartApproval(OAStartApproval[WeComClient]):
    """Submit the onboarding approval and wait for WeCom's decision."""

    oa = WECOM
    name: ClassVar[str] = "wecom.start_approval"
    description: ClassVar[str] = "submit the onboarding approval (oa/applyevent); done when approved"

    def find_started(self, client: WeComClient, ctx: ActionContext) -> str | None:
        return client.find_approval(approval_request(ctx))

    def start(self, client: WeComClient, ctx: ActionContext) -> str:
        return client.start_approval(approval_request(ctx)).sp_no

    def parse_callback(self, event_type: str, body: bytes) -> CallbackEvent | None:
        if event_type != APPROVAL_EVENT or b"<!" in body.replace(b"<![CDATA[", b""):
            return None
        try:
            root = ET.fromstring(body)  # noqa: S314  (verified plaintext; declarations refused above)
        except ET.ParseError:
            return None
        sp_no = (root.findtext("ApprovalInfo/SpNo") or "").strip()
        raw = (root.findtext("ApprovalInfo/SpStatus") or "").strip()
        if not sp_no or not raw.isdigit():
            return None
        return CallbackEvent(
            external_id=sp_no,
            event_type=event_type,
            payload={"sp_status": int(raw), "status": SP_STATUS.get(int(raw), "OTHER")},
        )


class SendWelcome(OASendWelcome[WeComClient]):
    """Send the new member a welcome message from the app (WeCom drops a repeat within 4 h)."""

    oa = WECOM
    name: ClassVar[str] = "wecom.send_welcome"
    description: ClassVar[str] = "send the hire a welcome message (message/send, duplicate check on)"
    message_kind = "wecom_message"

    def send(self, client: WeComClient, account: str, text: str, ctx: ActionContext) -> str:
        return client.send_text([account], text)


class UpdateUser(OAUpdateUser[WeComClient]):
    """Sync the final record (title, department, manager, job number) onto the hire's member."""

    oa = WECOM
    name: ClassVar[str] = "wecom.update_user"
    description: ClassVar[str] = (
        "update the member create_user made with the final job facts (user/update; job number in "
        "the custom attribute options.job_number_attr)"
    )

    def update(self, client: WeComClient, hire: Hire, account: str, ctx: ActionContext) -> None:
        assert isinstance(hire, NewHire)
        attribute = str(ctx.options.get("job_number_attr") or "").strip()
        attributes = {attribute: hire.job_number} if attribute and hire.job_number else None
        client.update_user(hire, account, attributes=attributes)


ACTIONS: tuple[OnboardingAction, ...] = (CreateUser(), StartApproval(), SendWelcome(), UpdateUser())
