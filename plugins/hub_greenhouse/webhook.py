"""Greenhouse webhooks: ``Signature: sha256 <hex HMAC-SHA256(secret, body)>`` (vendors.md §4.1).

Greenhouse signs the raw body (with ``<``, ``>``, ``&`` and non-ASCII already escaped as
``\\uXXXX``), so the signature is checked over the exact bytes received, in constant time, before
anything parses them. Each delivery carries a unique ``Greenhouse-Event-ID``; hub's inbox
refuses an id, or a signed body, seen before (the signature does not cover the header, so a
captured body under a fresh id is a replay too). Greenhouse signs no timestamp, so there is no
staleness window. Saving a webhook in Greenhouse sends a signed ``{"action": "ping"}``: answered
200 and not stored, so a wrong secret shows up right there, in Greenhouse's settings page.

A built-in plugin of its own (``hub_greenhouse.webhook``), next to the Greenhouse connector::

    [connectors.greenhouse.webhook]
    secret = { secret = "GREENHOUSE_WEBHOOK" }   # hub secrets set GREENHOUSE_WEBHOOK
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any, ClassVar

import orjson

import hub
from hub.webhooks import (
    Accepted,
    Handshake,
    Reply,
    Verdict,
    WebhookHandler,
    WebhookRejected,
    WebhookRequest,
    WebhookVerifier,
)

SIGNATURE_HEADER = "signature"
EVENT_ID_HEADER = "greenhouse-event-id"
#: the configuration check Greenhouse sends when a webhook is saved
PING_ACTION = "ping"


class GreenhouseVerifier(WebhookVerifier):
    """HMAC-SHA256 over the raw body with the secret key set in Greenhouse's webhook settings."""

    settings_spec: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "required": ["secret"],
        "properties": {
            "secret": {
                "type": "string",
                "minLength": 1,
                "airbyte_secret": True,
                "description": "the Secret key entered when the webhook was created in Greenhouse",
            }
        },
    }
    signs_timestamp = False

    def __init__(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        secret = settings.get("secret")
        if not isinstance(secret, str) or not secret:
            raise ValueError("the Greenhouse webhook secret is empty")
        self._key = secret.encode()

    def verify(self, request: WebhookRequest) -> Verdict:
        event_id = (request.header(EVENT_ID_HEADER) or "").strip()
        header = (request.header(SIGNATURE_HEADER) or "").strip()
        if not header:
            raise WebhookRejected("missing_signature", "no Signature header", event_id=event_id)
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "sha256" or not given.strip():
            raise WebhookRejected("bad_signature", "Signature is not 'sha256 <hex>'", event_id=event_id)
        expected = hmac.new(self._key, request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), given.strip().lower().encode("utf-8", "replace")):
            raise WebhookRejected("bad_signature", "the signature does not match the body", event_id=event_id)
        try:
            document = orjson.loads(request.body)
        except orjson.JSONDecodeError as exc:
            raise WebhookRejected("malformed", "the signed body is not JSON", status=400) from exc
        action = document.get("action") if isinstance(document, dict) else None
        if not isinstance(action, str) or not action:
            raise WebhookRejected("malformed", "the signed body has no action", status=400)
        if action == PING_ACTION:
            return Handshake(Reply.json({"status": "ok"}), what="ping")
        if not event_id:
            raise WebhookRejected("missing_event_id", "no Greenhouse-Event-ID header")
        return Accepted(event_id=event_id, action=action, body=request.body)


@hub.hookimpl
def hub_register_webhooks() -> list[WebhookHandler]:
    return [
        WebhookHandler(
            connector="greenhouse",
            verifier=GreenhouseVerifier,
            description="Greenhouse webhooks (Signature: sha256 HMAC of the body; Greenhouse-Event-ID)",
        )
    ]
