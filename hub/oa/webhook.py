"""What WeCom's and DingTalk's callback verifiers share: WXBizMsgCrypt-signed query values.

Both vendors sign ``sha1(sorted(token, timestamp, nonce, encrypt))``, put ``msg_signature``,
``timestamp`` and ``nonce`` in the query, encrypt with a 43-character AES key and a receive id,
and send no delivery id of their own: the id is a digest of the signed values, which a
redelivery repeats, so hub's inbox recognises the copy. Each plugin keeps its envelope (XML or
``{"encrypt"}``), its replies and its timestamp unit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from hub.callbacks import DecryptError, SignatureError
from hub.callbacks.wxbiz import WXBizMsgCrypt
from hub.webhooks import Accepted, Reply, WebhookRejected, WebhookRequest, WebhookVerifier

T = TypeVar("T")


def event_id_of(timestamp: str, nonce: str, signature: str) -> str:
    """A delivery id from the signed values (the vendor sends none of its own)."""
    return hashlib.sha256(f"{timestamp}\x00{nonce}\x00{signature}".encode()).hexdigest()[:32]


def wxbiz_settings_spec(aes_key: str, receive_id: str, receive_id_description: str) -> Mapping[str, Any]:
    """The ``[connectors.X.webhook]`` schema: ``token``, the AES key and the receive id, by the vendor's names."""
    return {
        "type": "object",
        "required": ["token", aes_key, receive_id],
        "properties": {
            "token": {"type": "string", "minLength": 1, "airbyte_secret": True},
            aes_key: {"type": "string", "airbyte_secret": True, "description": "43 characters"},
            receive_id: {"type": "string", "minLength": 1, "description": receive_id_description},
        },
    }


class WXBizVerifier(WebhookVerifier):
    """The signed query values, decryption with the vendor's errors mapped, the accepted event."""

    #: the vendor's crypto (``WeComCrypto``, ``DingTalkCrypto``) and its settings' names
    crypto_class: ClassVar[type[WXBizMsgCrypt]]
    aes_key_setting: ClassVar[str]
    receive_id_setting: ClassVar[str]
    #: query parameters the signature may come in, first found wins
    signature_params: ClassVar[tuple[str, ...]] = ("msg_signature",)
    #: timestamp units per second (DingTalk signs milliseconds)
    timestamp_scale: ClassVar[int] = 1
    signs_timestamp = True

    def __init__(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        self.crypto = self.crypto_class(
            str(settings.get("token") or ""),
            str(settings.get(self.aes_key_setting) or ""),
            str(settings.get(self.receive_id_setting) or ""),
        )

    def signed(self, request: WebhookRequest) -> tuple[str, str, str]:
        """(signature, timestamp, nonce) from the query; all three are required."""
        signature = next((v for v in (request.query.get(p) for p in self.signature_params) if v), "")
        timestamp = request.query.get("timestamp", "")
        nonce = request.query.get("nonce", "")
        if not (signature and timestamp and nonce):
            raise WebhookRejected("missing_signature", "msg_signature, timestamp and nonce are required")
        return signature, timestamp, nonce

    @staticmethod
    def opened(open_: Callable[[], T], what: str = "msg_signature does not match") -> T:
        """What ``open_`` decrypts; a bad signature or a broken envelope is rejected."""
        try:
            return open_()
        except SignatureError:
            raise WebhookRejected("bad_signature", what) from None
        except DecryptError as exc:
            raise WebhookRejected("malformed", str(exc), status=400) from None

    def accepted(self, signed: tuple[str, str, str], action: str, plaintext: bytes, reply: Reply) -> Accepted:
        """The verified event, its id the digest of the signed values."""
        signature, timestamp, nonce = signed
        if not timestamp.isdigit():
            raise WebhookRejected("malformed", "timestamp is not a number", status=400)
        return Accepted(
            event_id=event_id_of(timestamp, nonce, signature),
            action=action,
            body=plaintext,
            signed_at=datetime.fromtimestamp(int(timestamp) / self.timestamp_scale, UTC),
            reply=reply,
        )
