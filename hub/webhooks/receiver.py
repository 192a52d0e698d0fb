"""The receiver: verify a callback, refuse replays and stale ones, store it, answer.

Framework-free (the FastAPI app in :mod:`hub.webhooks.app` only adapts requests), so the
same checks serve any transport. Order: the connector's verifier authenticates the raw
request (or answers a handshake); a signed timestamp older than ``max_age`` (or as far in the
future) is refused; the inbox commits the event, refusing an event id or body seen before;
then the worker is woken and the vendor gets its reply. Every refusal is answered with the
status and a reason code only, logged as a warning and recorded in the inbox for
``hub webhooks list``: never the body, a signature or a header value beyond the delivery id.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from hub.errors import HubError
from hub.masking import mask_text
from hub.webhooks.inbox import Inbox
from hub.webhooks.registry import WebhookEndpoint
from hub.webhooks.verifier import Accepted, Handshake, Reply, WebhookRejected, WebhookRequest

log = logging.getLogger("hub.webhooks")

NOT_FOUND = Reply.json({"error": "not found"}, 404)


def _reason_code(exc: BaseException) -> str:
    """``SignatureError`` -> ``signature_error``: a code for verifier errors that are not WebhookRejected."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


class Receiver:
    """Answers ``POST`` (events) and ``GET`` (handshakes) for the configured endpoints."""

    def __init__(
        self,
        endpoints: Mapping[str, WebhookEndpoint],
        inbox: Inbox,
        *,
        on_stored: Callable[[], None] = lambda: None,
    ) -> None:
        self.endpoints = endpoints
        self.inbox = inbox
        self.on_stored = on_stored

    def receive(self, connector: str, request: WebhookRequest) -> Reply:
        """A POST: an event to store, a handshake to answer, or a refusal."""
        endpoint = self.endpoints.get(connector)
        if endpoint is None:
            return NOT_FOUND
        try:
            verdict = self._verify(endpoint, request)
            if isinstance(verdict, Handshake):
                log.info("%s: answered a %s", connector, verdict.what)
                return verdict.reply
            self._check_age(endpoint, verdict, request.received_at)
            try:
                event = self.inbox.store(connector, verdict, remote=request.remote, now=request.received_at)
            except WebhookRejected as exc:
                duplicate = endpoint.verifier.duplicate_reply(verdict) if exc.reason == "replayed" else None
                if duplicate is None:
                    raise
                self._refused(connector, request, exc, level=logging.INFO)
                return duplicate
        except WebhookRejected as exc:
            self._refused(connector, request, exc)
            return Reply.json({"error": exc.reason}, exc.status)
        log.info(
            "%s: accepted %s event %s as inbox entry %s", connector, event.action, event.event_id, event.id
        )
        self.on_stored()
        return verdict.reply

    def handshake(self, connector: str, request: WebhookRequest) -> Reply:
        """A GET: the vendor checking the URL (WeCom's echostr); nothing is stored."""
        endpoint = self.endpoints.get(connector)
        if endpoint is None:
            return NOT_FOUND
        try:
            reply = endpoint.verifier.handshake(request)
        except WebhookRejected as exc:
            if exc.status != 405:  # a vendor without a GET handshake is not an attack
                self._refused(connector, request, exc)
            return Reply.json({"error": exc.reason}, exc.status)
        except HubError as exc:
            rejected = WebhookRejected(_reason_code(exc), str(exc))
            self._refused(connector, request, rejected)
            return Reply.json({"error": rejected.reason}, rejected.status)
        log.info("%s: answered a URL verification", connector)
        return reply

    # -- checks --------------------------------------------------------------------------------

    def _verify(self, endpoint: WebhookEndpoint, request: WebhookRequest) -> Accepted | Handshake:
        """The verifier's verdict; its own errors become refusals with a reason code."""
        try:
            return endpoint.verifier.verify(request)
        except WebhookRejected:
            raise
        except HubError as exc:  # e.g. hub.callbacks' SignatureError, DecryptError: fixed sentences
            raise WebhookRejected(_reason_code(exc), str(exc)) from exc
        except Exception as exc:  # malformed input the verifier did not expect (logged as a bug)
            log.error("%s verifier raised %s", endpoint.name, type(exc).__name__)
            raise WebhookRejected(
                "malformed", f"the request could not be read ({type(exc).__name__})", status=400
            ) from exc

    @staticmethod
    def _check_age(endpoint: WebhookEndpoint, event: Accepted, received_at: datetime) -> None:
        if event.signed_at is None:
            return
        signed = event.signed_at if event.signed_at.tzinfo else event.signed_at.replace(tzinfo=UTC)
        skew = (received_at - signed).total_seconds()
        if abs(skew) > endpoint.max_age:
            when = "old" if skew > 0 else "in the future"
            raise WebhookRejected(
                "stale",
                f"signed timestamp {abs(skew):.0f}s {when} (max_age {endpoint.max_age:.0f}s)",
                event_id=event.event_id,
            )

    def _refused(
        self, connector: str, request: WebhookRequest, exc: WebhookRejected, level: int = logging.WARNING
    ) -> None:
        detail = mask_text(exc.detail)
        log.log(
            level,
            "%s: refused a callback from %s: %s%s%s",
            connector,
            request.remote or "?",
            exc.reason,
            f" ({detail})" if detail else "",
            f" [event {mask_text(exc.event_id[:200])}]" if exc.event_id else "",
        )
        try:
            self.inbox.reject(
                connector,
                exc.reason,
                exc.detail,
                event_id=exc.event_id,
                remote=request.remote,
                now=request.received_at,
            )
        except Exception as error:  # noqa: BLE001 - the refusal stands even if the record fails
            log.error("%s: could not record the refusal: %s", connector, type(error).__name__)
