"""Feishu / Lark event callbacks for ``hub serve``: Encrypt Key, ``X-Lark-Signature``, token.

With an Encrypt Key, Feishu POSTs ``{"encrypt": ...}`` and signs every event (not the
``url_verification`` handshake) with ``X-Lark-Signature = sha256(timestamp + nonce + encrypt_key
+ raw body)`` (:mod:`hub.callbacks.lark`). The signature is checked over the raw bytes before
anything is decrypted; inside, the Verification Token must match. The handshake, unsigned, is
answered only when its token matches. An event's id is Feishu's own (``header.event_id`` in
schema 2.0, ``uuid`` in 1.0), the same on every retry. Approval changes are the v1
``approval_instance`` events.

::

    [connectors.feishu.webhook]
    encrypt_key = { secret = "FEISHU_ENCRYPT_KEY" }
    verification_token = { secret = "FEISHU_VERIFICATION_TOKEN" }
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from hub.callbacks import DecryptError, LarkCrypto, SignatureError
from hub.callbacks.lark import NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, check_verification_token
from hub.webhooks import Accepted, Handshake, Reply, Verdict, WebhookRejected, WebhookRequest, WebhookVerifier

SUCCESS = {"msg": "success"}


def event_type_of(event: Mapping[str, Any]) -> str:
    """``header.event_type`` (schema 2.0) or ``event.type`` (1.0, e.g. ``approval_instance``)."""
    header = event.get("header")
    if isinstance(header, Mapping) and header.get("event_type"):
        return str(header["event_type"])
    inner = event.get("event")
    if isinstance(inner, Mapping) and inner.get("type"):
        return str(inner["type"])
    return str(event.get("type") or "")


def event_id_of(event: Mapping[str, Any]) -> str:
    header = event.get("header")
    if isinstance(header, Mapping) and header.get("event_id"):
        return str(header["event_id"])
    return str(event.get("uuid") or "")


class FeishuVerifier(WebhookVerifier):
    """Signature over the raw body, then decryption, then the Verification Token."""

    settings_spec: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "required": ["encrypt_key", "verification_token"],
        "properties": {
            "encrypt_key": {"type": "string", "minLength": 1, "airbyte_secret": True},
            "verification_token": {"type": "string", "minLength": 1, "airbyte_secret": True},
        },
    }
    signs_timestamp = True

    def __init__(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        self.crypto = LarkCrypto(str(settings.get("encrypt_key") or ""))
        self.token = str(settings.get("verification_token") or "")
        if not self.token:
            raise ValueError("the Feishu verification token is empty")

    def _open(self, body: bytes) -> tuple[bytes, dict[str, Any]]:
        """The decrypted event (bytes as Feishu sent them, and parsed), its token checked."""
        try:
            plaintext = self.crypto.decrypt_body(body)
            event = json.loads(plaintext)
        except DecryptError as exc:
            raise WebhookRejected("malformed", str(exc), status=400) from None
        except ValueError:
            raise WebhookRejected("malformed", "the decrypted event is not JSON", status=400) from None
        if not isinstance(event, dict):
            raise WebhookRejected("malformed", "the decrypted event is not a JSON object", status=400)
        try:
            check_verification_token(event, self.token)
        except SignatureError:
            raise WebhookRejected("bad_signature", "the verification token does not match") from None
        return plaintext, event

    def verify(self, request: WebhookRequest) -> Verdict:
        signature = request.header(SIGNATURE_HEADER) or ""
        timestamp = request.header(TIMESTAMP_HEADER) or ""
        nonce = request.header(NONCE_HEADER) or ""
        if not signature:
            # only the URL-verification handshake comes unsigned
            _, event = self._open(request.body)
            if event.get("type") != "url_verification" or not isinstance(event.get("challenge"), str):
                raise WebhookRejected("missing_signature", "no X-Lark-Signature")
            return Handshake(Reply.json({"challenge": event["challenge"]}), what="url_verification")
        try:
            self.crypto.verify_signature(timestamp, nonce, request.body, signature)
        except SignatureError:
            raise WebhookRejected("bad_signature", "X-Lark-Signature does not match the body") from None
        if not timestamp.isdigit():
            raise WebhookRejected("malformed", "X-Lark-Request-Timestamp is not a number", status=400)
        plaintext, event = self._open(request.body)
        event_id = event_id_of(event)
        if not event_id:
            raise WebhookRejected("missing_event_id", "the event has no event_id or uuid")
        return Accepted(
            event_id=event_id,
            action=event_type_of(event) or "event",
            body=plaintext,
            signed_at=datetime.fromtimestamp(int(timestamp), UTC),
            reply=Reply.json(SUCCESS),
        )

    def duplicate_reply(self, event: Accepted) -> Reply | None:
        """Feishu retries an event it thinks was lost: acknowledge the copy."""
        return Reply.json(SUCCESS)
