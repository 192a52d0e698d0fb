"""The ``dingtalk`` connector: DingTalk (钉钉) address book, onboarding accounts, approvals, notices.

- :class:`hub_dingtalk.source.DingTalkSource`: departments and users, for ``hub sync``;
- :class:`hub_dingtalk.client.DingTalkClient`: the typed API client the onboarding flow uses;
- :class:`hub_dingtalk.webhook.DingTalkVerifier`: HTTP-push callbacks for ``hub serve``;
- :mod:`hub_dingtalk.actions`: ``dingtalk.create_user``, ``dingtalk.start_approval``,
  ``dingtalk.send_welcome``, ``dingtalk.update_user``.
"""

from __future__ import annotations

from hub.connectors import Connector
from hub.hookspecs import hookimpl
from hub.onboarding import OnboardingAction
from hub.webhooks import WebhookHandler
from hub_dingtalk.actions import ACTIONS
from hub_dingtalk.client import ApprovalRequest, DingTalkClient, DingTalkSettings, NewHire
from hub_dingtalk.source import DingTalkSource
from hub_dingtalk.webhook import DingTalkVerifier

__all__ = [
    "ApprovalRequest",
    "DingTalkClient",
    "DingTalkSettings",
    "DingTalkSource",
    "DingTalkVerifier",
    "NewHire",
]


@hookimpl
def hub_register_connectors() -> list[Connector]:
    return [
        Connector(
            name="dingtalk",
            category="oa",
            source=DingTalkSource,
            description="DingTalk (钉钉): departments and users; onboarding accounts, approvals, work notices",
        )
    ]


@hookimpl
def hub_register_webhooks() -> list[WebhookHandler]:
    return [
        WebhookHandler(
            connector="dingtalk",
            verifier=DingTalkVerifier,
            description="DingTalk HTTP push (WXBizMsgCrypt {encrypt}, ms timestamps; bpms_instance_change)",
        )
    ]


@hookimpl
def hub_register_onboarding_actions() -> list[OnboardingAction]:
    return list(ACTIONS)
