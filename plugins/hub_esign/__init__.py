"""The ``esign`` connector: e签宝 (eSign) Open API v3 labour contracts for onboarding.

- :class:`hub_esign.client.EsignClient`: signed requests, contract upload, sign flows that are
  never started twice, signing links, status, revoke, the signed file;
- :class:`hub_esign.webhook.EsignVerifier`: e签宝's signed callbacks for ``hub serve``;
- :mod:`hub_esign.actions`: ``esign.send_contract``;
- :class:`hub_esign.source.EsignSource`: the app's sign flows (``hub sync``, ``hub connectors check``);
- :mod:`hub_esign.econtract`: what e-contract plugins share (the contract of a case, its archive).
"""

from __future__ import annotations

from hub.connectors import Connector
from hub.hookspecs import hookimpl
from hub.onboarding import OnboardingAction
from hub.webhooks import WebhookHandler
from hub_esign.actions import ACTIONS, SendContract
from hub_esign.client import EsignClient, EsignSettings
from hub_esign.econtract import archived_contract
from hub_esign.source import EsignSource
from hub_esign.webhook import EsignVerifier

__all__ = [
    "EsignClient",
    "EsignSettings",
    "EsignSource",
    "EsignVerifier",
    "SendContract",
    "archived_contract",
]


@hookimpl
def hub_register_connectors() -> list[Connector]:
    return [
        Connector(
            name="esign",
            category="econtract",
            source=EsignSource,
            description="e签宝 (eSign) v3: labour contracts signed online; sign flows",
        )
    ]


@hookimpl
def hub_register_webhooks() -> list[WebhookHandler]:
    return [
        WebhookHandler(
            connector="esign",
            verifier=EsignVerifier,
            description="e签宝 callbacks (X-Tsign-Open-SIGNATURE: hex HMAC-SHA256 of timestamp + query + body)",
        )
    ]


@hookimpl
def hub_register_onboarding_actions() -> list[OnboardingAction]:
    return list(ACTIONS)
