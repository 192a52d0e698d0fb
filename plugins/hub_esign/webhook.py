"""e签宝 callbacks for ``hub serve``: ``X-Tsign-Open-SIGNATURE`` over timestamp + query + body.

e签宝 POSTs JSON to the flow's ``notifyUrl`` (and to a console webhook, when one is set: then
every event arrives twice) with ``X-Tsign-Open-TIMESTAMP`` (ms) and ``X-Tsign-Open-SIGNATURE`` =
lower-case hex HMAC-SHA256(appSecret, timestamp + the values of hub's own notify-URL query
parameters in key order + the raw body), checked by :func:`hub.callbacks.hmac_schemes.verify_esign_callback`
before anything is parsed (vendors.md §2.1 [V], the doc "回调通知接收说明"). The signed
timestamp is checked against ``max_age``. e签宝 sends no delivery id: an event's id is a digest
of its body, whose own ``timestamp`` stays the first attempt's on every retry, so a redelivery
(or the second copy of a doubly subscribed event) is recognised and acknowledged without being
processed twice. hub answers ``{"code": "200", "msg": "success"}`` as the doc recommends.

::

    [connectors.esign.webhook]
    app_secret = { secret = "ESIGN_APP_SECRET" }
    app_id = "7438..."            # optional: refuse callbacks for another app
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import orjson

from hub.callbacks import SignatureError
from hub.callbacks.hmac_schemes import ESIGN_TIMESTAMP_HEADER, header, verify_esign_callback
from hub.webhooks import Accepted, Reply, Verdict, WebhookRejected, WebhookRequest, WebhookVerifier

SUCCESS = Reply.json({"code": "200", "msg": "success"})


def event_id_of(body: bytes) -> str:
    """A delivery id from the signed body (e签宝 sends none; retries repeat the body)."""
    return hashlib.sha256(body).hexdigest()[:32]


class EsignVerifier(WebhookVerifier):
    """HMAC-SHA256 (hex) of timestamp + notify-URL query values + body, with the app secret."""

    settings_spec: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "required": ["app_secret"],
        "properties": {
            "app_secret": {
                "type": "string",
                "minLength": 1,
                "airbyte_secret": True,
                "description": "the app's secret (the same one that signs API calls)",
            },
            "app_id": {"type": "string", "description": "refuse callbacks naming another app id"},
        },
    }
    signs_timestamp = True

    def __init__(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        secret = settings.get("app_secret")
        if not isinstance(secret, str) or not secret:
            raise ValueError("the e签宝 app secret is empty")
        self._secret = secret
        self._app_id = str(settings.get("app_id") or "")

    def verify(self, request: WebhookRequest) -> Verdict:
        try:
            verify_esign_callback(self._secret, request.headers, request.body, dict(request.query))
        except SignatureError as exc:
            reason = "missing_signature" if "lacks" in str(exc) else "bad_signature"
            raise WebhookRejected(reason, str(exc)) from None
        if self._app_id and header(request.headers, "X-Tsign-Open-App-Id") != self._app_id:
            raise WebhookRejected("bad_signature", "the callback names another app id")
        timestamp = header(request.headers, ESIGN_TIMESTAMP_HEADER)
        if not timestamp.isdigit():
            raise WebhookRejected("malformed", "X-Tsign-Open-TIMESTAMP is not a number", status=400)
        try:
            document = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            raise WebhookRejected("malformed", "the signed body is not JSON", status=400) from None
        action = document.get("action") if isinstance(document, dict) else None
        if not isinstance(action, str) or not action:
            raise WebhookRejected("malformed", "the signed body has no action", status=400)
        return Accepted(
            event_id=event_id_of(request.body),
            action=action,
            body=request.body,
            signed_at=datetime.fromtimestamp(int(timestamp) / 1000, UTC),
            reply=SUCCESS,
        )

    def duplicate_reply(self, event: Accepted) -> Reply | None:
        """e签宝 retries until it gets a 200: acknowledge the copy, process nothing."""
        return SUCCESS
