"""The ``feishu`` connector: Feishu / Lark (飞书) contacts, onboarding users, approvals, messages.

- :class:`hub_feishu.source.FeishuSource`: departments and users, for ``hub sync``;
- :class:`hub_feishu.client.FeishuClient`: the typed API client the onboarding flow uses;
- :class:`hub_feishu.webhook.FeishuVerifier`: event callbacks for ``hub serve``;
- :mod:`hub_feishu.actions`: ``feishu.create_user``, ``feishu.start_approval``, ``feishu.send_welcome``,
  ``feishu.update_user``.
"""

from __future__ import annotations

from hub.connectors import Connector
from hub.hookspecs import hookimpl
from hub.onboarding import OnboardingAction
from hub.webhooks import WebhookHandler
from hub_feishu.actions import ACTIONS
from hub_feishu.client import ApprovalRequest, FeishuClient, FeishuSettings, NewHire
from hub_feishu.source import FeishuSource
from hub_feishu.webhook import FeishuVerifier

__all__ = ["ApprovalRequest", "FeishuClient", "FeishuSettings", "FeishuSource", "FeishuVerifier", "NewHire"]


@hookimpl
def hub_register_connectors() -> list[Connector]:
    return [
        Connector(
            name="feishu",
            category="oa",
            source=FeishuSource,
            description="Feishu / Lark (飞书): departments and users; onboarding users, approvals, messages",
        )
    ]


@hookimpl
def hub_register_webhooks() -> list[WebhookHandler]:
    return [
        WebhookHandler(
            connector="feishu",
            verifier=FeishuVerifier,
            description="Feishu events (Encrypt Key, X-Lark-Signature, verification token; approval_instance)",
        )
    ]


@hookimpl
def hub_register_onboarding_actions() -> list[OnboardingAction]:
    return list(ACTIONS)
