"""The verifier interface: how one vendor's callbacks are authenticated, one class per vendor.

A connector plugin registers a :class:`WebhookHandler` (hook ``hub_register_webhooks``) naming
its connector and a :class:`WebhookVerifier` subclass. hub hands the verifier each request as
received (the raw body bytes: vendors sign exact bytes, and re-serialised JSON would not match)
and the verifier answers with one of:

- :class:`Accepted`: an authentic event; hub stores it sealed in the inbox, then replies
  ``Accepted.reply`` (DingTalk wants an encrypted "success", most vendors any 200);
- :class:`Handshake`: a vendor check that is not an event (Greenhouse's ping when a webhook is
  saved, Feishu's ``url_verification`` challenge); hub replies and stores nothing;
- raising :class:`WebhookRejected`: hub replies 401 (or the status given), logs the reason and
  records it in the inbox for admins, and processes nothing.

Replays and staleness are hub's job, not the verifier's: the verifier reports the vendor's
delivery id (``Accepted.event_id``) and, when the vendor signs one, its timestamp
(``Accepted.signed_at``), and hub refuses an id or a body seen before, and a timestamp outside
the window ``max_age`` (default 5 minutes) of ``[connectors.NAME.webhook]``.

Verifiers never put the body, a signature or a secret in an exception message: messages end up
in logs and in the inbox.
"""

from __future__ import annotations

import hashlib
import hmac
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import orjson

from hub.errors import HubError


@dataclass(frozen=True)
class WebhookRequest:
    """One callback as the vendor sent it: exact body bytes, lower-cased header names."""

    method: str
    headers: Mapping[str, str]
    #: the first value of each query parameter (WeCom and DingTalk sign theirs)
    query: Mapping[str, str]
    body: bytes
    received_at: datetime
    remote: str = ""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class Reply:
    """What hub answers the vendor."""

    status: int = 200
    body: bytes = b'{"status":"ok"}'
    media_type: str = "application/json"

    @classmethod
    def json(cls, data: Any, status: int = 200) -> Reply:
        return cls(status=status, body=orjson.dumps(data), media_type="application/json")

    @classmethod
    def text(cls, data: str, status: int = 200) -> Reply:
        return cls(status=status, body=data.encode(), media_type="text/plain")


@dataclass(frozen=True)
class Accepted:
    """An authentic event: what the inbox keeps and what hub answers."""

    #: the vendor's id of this delivery (Greenhouse-Event-ID); derive one from signed values
    #: (e.g. a digest of timestamp + nonce) for vendors that send none
    event_id: str
    #: the vendor's event type (``update_candidate``, ``bpms_instance_change``)
    action: str
    #: the event as the inbox keeps it (sealed): the body, or its decrypted plaintext
    body: bytes
    #: the vendor's signed timestamp, if it signs one (hub checks it against max_age)
    signed_at: datetime | None = None
    reply: Reply = field(default_factory=Reply)


@dataclass(frozen=True)
class Handshake:
    """A vendor's check of the endpoint (ping, URL verification): answered, never stored."""

    reply: Reply
    #: what it was, for the log (``ping``, ``url_verification``, ``echostr``)
    what: str = "handshake"


Verdict = Accepted | Handshake


class WebhookRejected(HubError):
    """A callback that hub refuses: answered ``status`` (401 by default), logged and recorded.

    ``reason`` is a short code admins filter on (``bad_signature``, ``missing_signature``,
    ``stale``, ``replayed``, ``malformed``); ``detail`` a sentence without any value from the
    request beyond what identifies it; ``event_id`` the vendor's delivery id when known.
    """

    def __init__(self, reason: str, detail: str = "", *, status: int = 401, event_id: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail, self.status, self.event_id = reason, detail, status, event_id


class WebhookVerifier(ABC):
    """Authenticates one vendor's callbacks; one instance per configured connector.

    ``settings`` is the connector's ``[connectors.NAME.webhook]`` table with secret references
    resolved (never log it). Subclasses declare the keys they read in ``settings_spec`` (a JSON
    schema; mark secrets ``airbyte_secret`` so a plaintext value in hub.toml is refused).
    """

    #: JSON schema of the vendor's keys in ``[connectors.NAME.webhook]`` (``max_age`` is hub's)
    settings_spec: ClassVar[Mapping[str, Any]] = {"type": "object", "properties": {}}
    #: True when the vendor signs a timestamp: hub then refuses callbacks older than max_age
    signs_timestamp: ClassVar[bool] = False

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.settings = settings

    @abstractmethod
    def verify(self, request: WebhookRequest) -> Verdict:
        """Authenticate a POST: an event, a handshake, or raise :class:`WebhookRejected`."""

    def handshake(self, request: WebhookRequest) -> Reply:
        """Answer a GET (WeCom's ``echostr`` URL check); vendors without one get 405."""
        raise WebhookRejected("unsupported", "this vendor sends no GET handshake", status=405)

    def duplicate_reply(self, event: Accepted) -> Reply | None:
        """The answer to a delivery hub has already stored (a replay); None answers 401.

        Vendors that redeliver an unacknowledged callback with the same signed values may
        return their normal success reply here: hub still stores and processes nothing twice.
        """
        return None


@dataclass(frozen=True)
class WebhookHandler:
    """What a plugin registers: the connector whose callbacks ``verifier`` authenticates."""

    #: a connector name as registered by ``hub_register_connectors`` (``greenhouse``)
    connector: str
    verifier: type[WebhookVerifier]
    description: str = ""

    def __post_init__(self) -> None:
        if not (isinstance(self.verifier, type) and issubclass(self.verifier, WebhookVerifier)):
            raise TypeError(
                f"webhook handler {self.connector!r}: verifier must be a WebhookVerifier subclass"
            )

    @property
    def name(self) -> str:
        return self.connector


def hmac_sha256(key: bytes, *parts: bytes) -> bytes:
    """HMAC-SHA256 of the concatenated parts (the family most vendors sign with)."""
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for part in parts:
        mac.update(part)
    return mac.digest()


def same_text(expected: str, given: str) -> bool:
    """Constant-time comparison of a signature text (hex or base64) with the one received."""
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))
