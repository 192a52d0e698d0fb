"""DingTalk HTTP-push callbacks for ``hub serve``: ``{"encrypt"}`` events, encrypted replies.

DingTalk signs ``sha1(sorted(token, timestamp, nonce, encrypt))`` with a millisecond timestamp
(the query's ``msg_signature``, or ``signature`` on older pushes) and encrypts with the aes_key
(WXBizMsgCrypt, :mod:`hub.callbacks.wxbiz`); the receive id is the app key for an internal
app's event subscription. Every answer, the URL check (``check_url``) included, must be the
encrypted ``"success"`` map, or DingTalk keeps pushing. Approval changes arrive as
``bpms_instance_change``.

::

    [connectors.dingtalk.webhook]
    token = { secret = "DINGTALK_CALLBACK_TOKEN" }
    aes_key = { secret = "DINGTALK_CALLBACK_AES_KEY" }
    app_key = "ding..."
"""

from __future__ import annotations

import json

from hub.callbacks import DingTalkCrypto
from hub.oa.webhook import WXBizVerifier, event_id_of, wxbiz_settings_spec
from hub.webhooks import Accepted, Handshake, Reply, Verdict, WebhookRejected, WebhookRequest

__all__ = ["CHECK_URL", "DingTalkVerifier", "event_id_of"]

CHECK_URL = "check_url"


class DingTalkVerifier(WXBizVerifier):
    """WXBizMsgCrypt over ``{"encrypt"}``; answers with the encrypted ``"success"``."""

    settings_spec = wxbiz_settings_spec(
        "aes_key",
        "app_key",
        "the receive id: the app key (corp id for register_call_back, suite key for ISV)",
    )
    crypto_class = DingTalkCrypto
    aes_key_setting = "aes_key"
    receive_id_setting = "app_key"
    signature_params = ("msg_signature", "signature")
    timestamp_scale = 1000  # DingTalk signs milliseconds
    crypto: DingTalkCrypto

    def success(self) -> Reply:
        return Reply.json(self.crypto.encrypted_reply())

    def verify(self, request: WebhookRequest) -> Verdict:
        signed = self.signed(request)
        plaintext = self.opened(lambda: self.crypto.decrypt_callback(*signed, request.body))
        try:
            event = json.loads(plaintext)
        except ValueError:
            raise WebhookRejected("malformed", "the decrypted event is not JSON", status=400) from None
        kind = event.get("EventType") if isinstance(event, dict) else None
        if not isinstance(kind, str) or not kind:
            raise WebhookRejected("malformed", "the event has no EventType", status=400)
        if kind == CHECK_URL:
            return Handshake(self.success(), what=CHECK_URL)
        return self.accepted(signed, kind, plaintext, self.success())

    def duplicate_reply(self, event: Accepted) -> Reply | None:
        """DingTalk pushes again until it is told "success": acknowledge the copy."""
        return self.success()
