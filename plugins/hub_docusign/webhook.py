"""DocuSign Connect for ``hub serve``: ``X-DocuSign-Signature-N``, base64 HMAC-SHA256 of the body.

Connect signs the raw POST body with each active HMAC key of the account and sends one
``X-DocuSign-Signature-1..N`` header per key; any header matching any of hub's keys passes
(so a key can be rotated: configure the new one as ``hmac_key_2`` before DocuSign switches),
checked by :func:`hub.callbacks.hmac_schemes.verify_docusign` in constant time before the body
is parsed (developers.docusign.com "How to validate an HMAC signature" [V]). Messages are JSON
SIM (``{"event": "envelope-completed", "generatedDateTime", "data": {"envelopeId", ...}}``).
Connect signs no timestamp (``max_age`` does not apply) and retries a message it thinks was
lost, with ``retryCount`` increased: a delivery's id is a digest of the event, the envelope,
the recipient and ``generatedDateTime`` (not ``retryCount``), so hub recognises a retry,
answers it 200 and processes nothing twice.

::

    [connectors.docusign.webhook]
    hmac_key = { secret = "DOCUSIGN_CONNECT_HMAC" }
    # hmac_key_2 = { secret = "DOCUSIGN_CONNECT_HMAC_NEW" }   # while rotating
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, ClassVar

import orjson

from hub.callbacks import SignatureError
from hub.callbacks.hmac_schemes import verify_docusign
from hub.webhooks import Accepted, Reply, Verdict, WebhookRejected, WebhookRequest, WebhookVerifier

KEY_NAMES = ("hmac_key", "hmac_key_2")


def event_id_of(message: Mapping[str, Any]) -> str:
    """A delivery id that Connect's retries of one message share (``retryCount`` left out)."""
    found = message.get("data")
    data: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    parts = [
        str(message.get("event") or ""),
        str(data.get("envelopeId") or ""),
        str(data.get("recipientId") or ""),
        str(message.get("generatedDateTime") or ""),
    ]
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


class DocuSignVerifier(WebhookVerifier):
    """Any ``X-DocuSign-Signature-N`` = base64 HMAC-SHA256(key, body) for any configured key."""

    settings_spec: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "required": ["hmac_key"],
        "properties": {
            "hmac_key": {
                "type": "string",
                "minLength": 1,
                "airbyte_secret": True,
                "description": "a Connect HMAC key (Settings > Connect > Connect Keys)",
            },
            "hmac_key_2": {
                "type": "string",
                "airbyte_secret": True,
                "description": "a second key, while rotating",
            },
        },
    }
    signs_timestamp = False

    def __init__(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        self._keys = [str(settings[name]) for name in KEY_NAMES if settings.get(name)]
        if not self._keys:
            raise ValueError("the DocuSign Connect HMAC key is empty")

    def verify(self, request: WebhookRequest) -> Verdict:
        try:
            verify_docusign(self._keys, request.body, request.headers)
        except SignatureError as exc:
            reason = "missing_signature" if "no X-DocuSign" in str(exc) else "bad_signature"
            raise WebhookRejected(reason, str(exc)) from None
        try:
            message = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            raise WebhookRejected(
                "malformed", "the signed body is not JSON (use the JSON SIM format)", status=400
            ) from None
        event = message.get("event") if isinstance(message, dict) else None
        if not isinstance(event, str) or not event:
            raise WebhookRejected(
                "malformed", "the signed body has no event (use the JSON SIM format)", status=400
            )
        return Accepted(
            event_id=event_id_of(message), action=event, body=request.body, reply=Reply.json({"status": "ok"})
        )

    def duplicate_reply(self, event: Accepted) -> Reply | None:
        """Connect retries until it gets a 200: acknowledge the retry, process nothing."""
        return Reply.json({"status": "ok"})
