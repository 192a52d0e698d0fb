"""WeCom callbacks for ``hub serve``: URL check (GET ``echostr``) and encrypted XML events.

WeCom signs ``sha1(sorted(token, timestamp, nonce, Encrypt))`` and encrypts with the
EncodingAESKey (WXBizMsgCrypt, :mod:`hub.callbacks.wxbiz`), with the corp id as receive id.
An event's id is a digest of its signed timestamp, nonce and signature: WeCom redelivers an
unacknowledged event with the same values, which hub's inbox then recognises as a replay and
answers as a success. Approval changes arrive as ``sys_approval_change``.

::

    [connectors.wecom.webhook]
    token = { secret = "WECOM_CALLBACK_TOKEN" }
    encoding_aes_key = { secret = "WECOM_CALLBACK_AES_KEY" }
    corp_id = "ww..."
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # the plaintext comes from WeCom's signed, decrypted envelope

from hub.callbacks import WeComCrypto
from hub.oa.webhook import WXBizVerifier, event_id_of, wxbiz_settings_spec
from hub.webhooks import Accepted, Reply, Verdict, WebhookRejected, WebhookRequest

__all__ = ["WeComVerifier", "event_fields", "event_id_of"]


def event_fields(plaintext: bytes) -> dict[str, str]:
    """``Event`` plus the approval's ``SpNo`` / ``SpStatus`` from a decrypted event."""
    if b"<!" in plaintext.replace(b"<![CDATA[", b""):
        raise WebhookRejected("malformed", "the event carries an XML declaration", status=400)
    try:
        root = ET.fromstring(plaintext)  # noqa: S314  (declarations refused above)
    except ET.ParseError:
        raise WebhookRejected("malformed", "the decrypted event is not XML", status=400) from None
    fields = {child.tag: (child.text or "").strip() for child in root}
    info = root.find("ApprovalInfo")
    if info is not None:
        for tag in ("SpNo", "SpStatus", "StatuChangeEvent", "TemplateId"):
            fields[tag] = (info.findtext(tag) or "").strip()
    return fields


class WeComVerifier(WXBizVerifier):
    """WXBizMsgCrypt over the XML envelope; the GET URL check echoes the decrypted ``echostr``."""

    settings_spec = wxbiz_settings_spec("encoding_aes_key", "corp_id", "the receive id (corp id or suite id)")
    crypto_class = WeComCrypto
    aes_key_setting = "encoding_aes_key"
    receive_id_setting = "corp_id"
    crypto: WeComCrypto

    def verify(self, request: WebhookRequest) -> Verdict:
        signed = self.signed(request)
        plaintext = self.opened(lambda: self.crypto.decrypt_xml(*signed, request.body))
        fields = event_fields(plaintext)
        action = fields.get("Event") or fields.get("MsgType") or "message"
        return self.accepted(signed, action, plaintext, Reply.text(""))

    def handshake(self, request: WebhookRequest) -> Reply:
        signed = self.signed(request)
        echostr = request.query.get("echostr", "")
        echoed = self.opened(
            lambda: self.crypto.verify_url(*signed, echostr).encode(),
            "msg_signature does not match the echostr",
        )
        return Reply.text(echoed.decode())

    def duplicate_reply(self, event: Accepted) -> Reply | None:
        """WeCom retries an event it thinks was lost: acknowledge the copy, process nothing."""
        return Reply.text("")
