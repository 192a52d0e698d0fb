"""The ``docusign`` connector: DocuSign eSignature REST v2.1 labour contracts for onboarding.

- :class:`hub_docusign.client.DocuSignClient`: JWT grant (or a configured token), envelopes from
  a template or from hub's rendered contract, sent once; status, void, the signed document;
- :class:`hub_docusign.webhook.DocuSignVerifier`: Connect (JSON SIM) with HMAC for ``hub serve``;
- :mod:`hub_docusign.actions`: ``docusign.send_contract``;
- :class:`hub_docusign.source.DocuSignSource`: envelopes (``hub sync``, ``hub connectors check``).

The contract of a case and its sealed archive come from :mod:`hub_esign.econtract`.
"""

from __future__ import annotations

from hub.connectors import Connector
from hub.hookspecs import hookimpl
from hub.onboarding import OnboardingAction
from hub.webhooks import WebhookHandler
from hub_docusign.actions import ACTIONS, SendContract
from hub_docusign.client import DocuSignClient, DocuSignSettings
from hub_docusign.source import DocuSignSource
from hub_docusign.webhook import DocuSignVerifier

__all__ = ["DocuSignClient", "DocuSignSettings", "DocuSignSource", "DocuSignVerifier", "SendContract"]


@hookimpl
def hub_register_connectors() -> list[Connector]:
    return [
        Connector(
            name="docusign",
            category="econtract",
            source=DocuSignSource,
            description="DocuSign eSignature v2.1: labour contracts by envelope; envelope statuses",
        )
    ]


@hookimpl
def hub_register_webhooks() -> list[WebhookHandler]:
    return [
        WebhookHandler(
            connector="docusign",
            verifier=DocuSignVerifier,
            description="DocuSign Connect JSON SIM (X-DocuSign-Signature-N: base64 HMAC-SHA256 of the body)",
        )
    ]


@hookimpl
def hub_register_onboarding_actions() -> list[OnboardingAction]:
    return list(ACTIONS)
