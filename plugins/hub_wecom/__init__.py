"""The ``wecom`` connector: WeCom (企业微信) address book, onboarding accounts, approvals, messages.

- :class:`hub_wecom.source.WeComSource`: departments and users, for ``hub sync``;
- :class:`hub_wecom.client.WeComClient`: the typed API client the onboarding flow uses
  (create or update a member, disable it, submit and read the onboarding approval, welcome);
- :class:`hub_wecom.webhook.WeComVerifier`: approval callbacks for ``hub serve``;
- :mod:`hub_wecom.actions`: ``wecom.create_user``, ``wecom.start_approval``, ``wecom.send_welcome``,
  ``wecom.update_user``.
"""

from __future__ import annotations

from hub.connectors import Connector
from hub.hookspecs import hookimpl
from hub.onboarding import OnboardingAction
from hub.webhooks import WebhookHandler
from hub_wecom.actions import ACTIONS
from hub_wecom.client import ApprovalRequest, NewHire, WeComClient, WeComSettings
from hub_wecom.source import WeComSource
from hub_wecom.webhook import WeComVerifier

__all__ = ["ApprovalRequest", "NewHire", "WeComClient", "WeComSettings", "WeComSource", "WeComVerifier"]


@hookimpl
def hub_register_connectors() -> list[Connector]:
    return [
        Connector(
            name="wecom",
            category="oa",
            source=WeComSource,
            description="WeCom (企业微信): departments and users; onboarding accounts, approvals, messages",
        )
    ]


@hookimpl
def hub_register_webhooks() -> list[WebhookHandler]:
    return [
        WebhookHandler(
            connector="wecom",
            verifier=WeComVerifier,
            description="WeCom callbacks (WXBizMsgCrypt XML; sys_approval_change), URL check by echostr",
        )
    ]


@hookimpl
def hub_register_onboarding_actions() -> list[OnboardingAction]:
    return list(ACTIONS)
