"""Vendor callbacks: verified at the door, kept sealed in an inbox, processed exactly once.

Plugins implement :class:`WebhookVerifier` for their vendor and register it with the
``hub_register_webhooks`` hook as a :class:`WebhookHandler`; ``hub serve`` (see
:mod:`hub.webhooks.app`) answers ``/webhooks/<connector>``. The inbox
(:mod:`hub.webhooks.inbox`) and the worker (:mod:`hub.webhooks.processor`) know nothing of HTTP.
"""

from hub.webhooks.verifier import (
    Accepted,
    Handshake,
    Reply,
    Verdict,
    WebhookHandler,
    WebhookRejected,
    WebhookRequest,
    WebhookVerifier,
    hmac_sha256,
    same_text,
)

__all__ = [
    "Accepted",
    "Handshake",
    "Reply",
    "Verdict",
    "WebhookHandler",
    "WebhookRejected",
    "WebhookRequest",
    "WebhookVerifier",
    "hmac_sha256",
    "same_text",
]
