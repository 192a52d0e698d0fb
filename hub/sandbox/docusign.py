"""A simulator of DocuSign eSignature REST v2.1: JWT grant, envelopes, rate limits, Connect HMAC.

It is not DocuSign: every answer carries ``X-Hub-Simulator: docusign``, it holds its own RSA
key pair for the JWT grant (``private_key_pem`` is what the integrator would download from
DocuSign's admin), and the "signed" document is the envelope's document with a trailer saying
the simulator signed it (no PDF conversion).

What it reproduces (shapes as in ``hub_docusign.client``): ``POST /oauth/token`` with
``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`` and an RS256 assertion checked
against its public key (``iss`` the integration key, ``sub`` the user, ``aud`` its host, ``exp``
at most an hour after ``iat``, scope ``signature``): ``{access_token, token_type, expires_in:
3600}``, else 400 ``{"error": "invalid_grant"}``. ``GET /oauth/userinfo`` lists the account and
its ``base_uri`` (this simulator). Under ``/restapi/v2.1/accounts/{accountId}``: ``POST /envelopes``
(201; documents or ``templateId`` + ``templateRoles``, a signer needs name and e-mail,
``customFields.textCustomFields``), ``GET /envelopes`` (``from_date`` required, ``custom_field=name=value``,
``status``, ``start_position``/``count``), ``GET /envelopes/{id}``, ``PUT /envelopes/{id}`` to void
(only sent/delivered), ``GET /envelopes/{id}/documents/combined``. Errors are
``{"errorCode", "message"}`` with the HTTP status; an expired or unknown token is 401
``USER_AUTHENTICATION_FAILED``. Every answer carries ``X-RateLimit-Limit/-Remaining/-Reset``; over
the limit it is 429 ``HOURLY_APIINVOCATION_LIMIT_EXCEEDED``.

Signing: ``signing_delay`` seconds after an envelope is sent, the employee signs (or declines,
``signing_outcome = "decline"``). Connect JSON SIM events are queued (``envelope-sent`` when
sent, ``recipient-completed`` and ``envelope-completed`` when signed, ``envelope-declined``,
``envelope-voided``) and :meth:`DocuSignSimulator.deliver_callbacks` POSTs them with one
``X-DocuSign-Signature-N`` per HMAC key, to ``url``, else ``callback_url``
(``HUB_SANDBOX_CALLBACK_URL``), else the envelope's ``eventNotification.url``; ``repeat`` sends
copies with ``retryCount`` increased (as Connect retries), ``reverse`` newest first. Faults: the
base :class:`Faults`, and :meth:`lose_replies` (the envelope is made, the answer lost).
"""

from __future__ import annotations

import base64
import os
import time
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import orjson
import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from hub.callbacks.hmac_schemes import docusign_headers
from hub.sandbox.base import Faults, RateLimit, Request, Response, Simulator, iso
from hub.sandbox.base import route as _base_route

API = "/restapi/v2.1/accounts/{account_id}"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEFAULT_HMAC_KEY = "sim-docusign-connect-hmac-key-1"
TEMPLATE_ID = "5c5b2b0a-0000-4000-8000-00000000c0de"
TEMPLATE_ROLE = "Employee"
TEMPLATE_TABS = ("salary", "start_date", "duties")
HOURLY_LIMIT = 3000

_Handler = Callable[["DocuSignSimulator", Request], Response]


def route(method: str, pattern: str) -> Callable[[_Handler], _Handler]:
    """The base :func:`~hub.sandbox.base.route`, typed for this simulator's handlers."""
    return cast(Callable[[_Handler], _Handler], _base_route(method, pattern))


def _error(status: int, code: str, message: str) -> Response:
    return Response(status, {"errorCode": code, "message": message})


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@dataclass
class SimEnvelope:
    envelope_id: str
    subject: str
    status: str
    signer_name: str
    signer_email: str
    custom_fields: dict[str, str]
    document: bytes
    extension: str
    template_id: str
    tabs: dict[str, str]
    connect_url: str
    created: float
    sign_at: float
    completed: float | None = None
    voided_reason: str = ""
    status_changed: float = 0.0

    def summary(self) -> dict[str, Any]:
        def when(moment: float | None) -> str | None:
            return iso(moment) if moment is not None else None

        return {
            "envelopeId": self.envelope_id,
            "status": self.status,
            "emailSubject": self.subject,
            "createdDateTime": when(self.created),
            "sentDateTime": when(self.created),
            "completedDateTime": when(self.completed) if self.status == "completed" else None,
            "voidedDateTime": when(self.status_changed) if self.status == "voided" else None,
            "declinedDateTime": when(self.status_changed) if self.status == "declined" else None,
            "voidedReason": self.voided_reason or None,
            "statusChangedDateTime": when(self.status_changed),
            "templatesUri": f"/envelopes/{self.envelope_id}/templates",
        }


@dataclass
class ConnectEvent:
    """One Connect message queued for delivery (its copies differ only in ``retryCount``)."""

    seq: int
    envelope_id: str
    event: str
    due: float
    message: dict[str, Any]
    delivered: bool = False
    attempts: int = 0


@dataclass
class Delivery:
    envelope_id: str
    event: str
    http_status: int | None
    accepted: bool


@dataclass
class _Loss:
    fragment: str
    remaining: int
    status: int
    method: str | None = None
    #: matching requests to let through first
    skip: int = 0

    def matches(self, request: Request) -> bool:
        if not (self.remaining > 0 and self.fragment in request.path):
            return False
        if self.method is not None and self.method != request.method:
            return False
        if self.skip > 0:
            self.skip -= 1
            return False
        return True


@dataclass
class Identity:
    """Who may get tokens: the app's integration key, the impersonated user, the account."""

    integration_key: str = field(default_factory=lambda: str(uuid.uuid4()))
    user_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    account_id: str = field(default_factory=lambda: str(uuid.uuid4()))


class DocuSignSimulator(Simulator):
    """DocuSign eSignature REST v2.1 on loopback: JWT grant, envelopes, Connect with HMAC."""

    vendor = "docusign"
    public_paths = ("/oauth/token",)

    def __init__(
        self,
        *,
        identity: Identity | None = None,
        hmac_keys: tuple[str, ...] = (DEFAULT_HMAC_KEY,),
        signing_delay: float = 2.0,
        signing_outcome: str = "sign",
        callback_url: str | None = None,
        auto_deliver: bool = False,
        port: int = 0,
        rate_limit: RateLimit | None = None,
        faults: Faults | None = None,
        token_ttl: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            port=port,
            rate_limit=rate_limit or RateLimit(HOURLY_LIMIT, 3600.0),
            faults=faults,
            token_ttl=token_ttl,
            clock=clock,
        )
        if signing_outcome not in ("sign", "decline"):
            raise ValueError("signing_outcome is 'sign' or 'decline'")
        self.identity = identity or Identity()
        self.hmac_keys = tuple(hmac_keys)
        self.signing_delay = signing_delay
        self.signing_outcome = signing_outcome
        self.callback_url = callback_url
        self.auto_deliver = auto_deliver or bool(callback_url)
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.envelopes: dict[str, SimEnvelope] = {}
        self.events: list[ConnectEvent] = []
        self.deliveries: list[Delivery] = []
        self.callback_repeat: dict[str, int] = {}
        self.callback_reverse = False
        #: envelopes sent through the API, and those completed
        self.contracts = 0
        self.signed = 0
        self._serial = 0
        self._losses: list[_Loss] = []
        self._refusals: list[_Loss] = []

    @property
    def private_key_pem(self) -> str:
        """The integration key's RSA private key, as DocuSign's admin page hands it out."""
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    @classmethod
    def for_sandbox(cls, *, port: int, seed: int, size: int) -> DocuSignSimulator:
        return cls(port=port, callback_url=os.environ.get("HUB_SANDBOX_CALLBACK_URL"), auto_deliver=True)

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "oauth_base_url": self.url,
            "integration_key": self.identity.integration_key,
            "user_id": self.identity.user_id,
            "account_id": self.identity.account_id,
            "private_key": self.private_key_pem,
            "template_id": TEMPLATE_ID,
            "template_role": TEMPLATE_ROLE,
            "connect_hmac_key": self.hmac_keys[0] if self.hmac_keys else "",
            "callback_url": self.callback_url
            or "the envelope's eventNotification url (or HUB_SANDBOX_CALLBACK_URL)",
        }

    # -- lifecycle ----------------------------------------------------------------------------

    # -- faults, auth, envelopes of answers ----------------------------------------------------

    def lose_replies(
        self, path: str, times: int = 1, status: int = 502, *, method: str | None = None
    ) -> None:
        """Process the next ``times`` requests (of ``method``) whose path contains ``path``, then
        answer ``status``: DocuSign did the work, the client never learns it."""
        with self._lock:
            self._losses.append(_Loss(path, times, status, method))

    def refuse_requests(
        self, path: str, times: int = 1, status: int = 503, *, method: str | None = None, skip: int = 0
    ) -> None:
        """Answer ``times`` requests (of ``method``) to ``path`` with ``status``, unprocessed, after
        letting ``skip`` of them through."""
        with self._lock:
            self._refusals.append(_Loss(path, times, status, method, skip))

    def dispatch(self, request: Request) -> Response:
        with self._lock:
            for refusal in self._refusals:
                if refusal.matches(request):
                    refusal.remaining -= 1
                    return self.server_error(refusal.status)
        response = super().dispatch(request)
        with self._lock:
            for loss in self._losses:
                if loss.matches(request) and 200 <= response.status < 300:
                    loss.remaining -= 1
                    return Response(loss.status, b"<html>Bad Gateway</html>", {"Content-Type": "text/html"})
        return response

    def _reset_at(self) -> int:
        window = self.rate_limit.window if self.rate_limit else 3600.0
        now = self.clock()
        return int(now - now % window + window)

    def rate_headers(self, remaining: int) -> dict[str, str]:
        limit = self.rate_limit.requests if self.rate_limit else HOURLY_LIMIT
        return {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(self._reset_at()),
        }

    def throttled(self, retry_after: float) -> Response:
        limit = self.rate_limit.requests if self.rate_limit else HOURLY_LIMIT
        reset = int(self.clock() + max(retry_after, 0.0)) + 1
        return Response(
            429,
            {
                "errorCode": "HOURLY_APIINVOCATION_LIMIT_EXCEEDED",
                "message": "The maximum number of hourly API invocations has been exceeded.",
            },
            {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)},
        )

    def server_error(self, status: int) -> Response:
        return _error(status, "SERVICE_UNAVAILABLE", "The service is temporarily unavailable.")

    def authenticate(self, request: Request) -> Response | None:
        token = self.bearer(request)
        if not token or not self.token_valid(token):
            return _error(
                401, "USER_AUTHENTICATION_FAILED", "One or both of Username and Password are invalid."
            )
        if request.path.startswith("/restapi/"):
            parts = request.path.split("/")
            if len(parts) < 5 or parts[4] != self.identity.account_id:
                return _error(400, "ACCOUNT_LACKS_PERMISSIONS", "This account lacks sufficient permissions.")
        return None

    # -- OAuth --------------------------------------------------------------------------------

    def _grant_refused(self, message: str) -> Response:
        return Response(400, {"error": "invalid_grant", "error_description": message})

    @route("POST", "/oauth/token")
    def token(self, request: Request) -> Response:
        form = request.form()
        if form.get("grant_type") != JWT_GRANT:
            return Response(400, {"error": "unsupported_grant_type"})
        parts = str(form.get("assertion") or "").split(".")
        if len(parts) != 3:
            return self._grant_refused("no_valid_assertion")
        try:
            header = orjson.loads(_b64url_decode(parts[0]))
            claims = orjson.loads(_b64url_decode(parts[1]))
            signature = _b64url_decode(parts[2])
        except (ValueError, orjson.JSONDecodeError):
            return self._grant_refused("no_valid_assertion")
        if header.get("alg") != "RS256":
            return self._grant_refused("invalid_alg")
        try:
            self._key.public_key().verify(
                signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            return self._grant_refused("invalid_signature")
        now = self.clock()
        audience = urllib.parse.urlsplit(self.url).netloc
        if claims.get("iss") != self.identity.integration_key:
            return Response(400, {"error": "invalid_client"})
        if claims.get("sub") != self.identity.user_id:
            return self._grant_refused("user_not_found")
        if claims.get("aud") != audience:
            return self._grant_refused("invalid_audience")
        iat, exp = int(claims.get("iat") or 0), int(claims.get("exp") or 0)
        if exp <= now or exp - iat > 3600 or iat > now + 300:
            return self._grant_refused("expired_or_too_long")
        if "signature" not in str(claims.get("scope") or "").split():
            return Response(400, {"error": "consent_required"})
        token, ttl = self.issue_token()
        return Response(200, {"access_token": token, "token_type": "Bearer", "expires_in": int(ttl)})

    @route("GET", "/oauth/userinfo")
    def userinfo(self, request: Request) -> Response:
        return Response(
            200,
            {
                "sub": self.identity.user_id,
                "name": "Simulated HR Sender",
                "email": "hr-sender@simulator.invalid",
                "accounts": [
                    {
                        "account_id": self.identity.account_id,
                        "is_default": True,
                        "account_name": "Simulated Company",
                        "base_uri": self.url,
                    }
                ],
            },
        )

    # -- envelopes ------------------------------------------------------------------------------

    def _next_id(self) -> str:
        self._serial += 1
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"docusign-sim/{self.identity.account_id}/{self._serial}"))

    @route("POST", API + "/envelopes")
    def create_envelope(self, request: Request) -> Response:
        body = request.json() or {}
        status = str(body.get("status") or "created")
        custom = {
            str(f.get("name")): str(f.get("value") or "")
            for f in (body.get("customFields") or {}).get("textCustomFields") or []
            if f.get("name")
        }
        template_id = str(body.get("templateId") or "")
        tabs: dict[str, str] = {}
        document, extension = b"", ""
        if template_id:
            if template_id != TEMPLATE_ID:
                return _error(400, "TEMPLATE_ID_INVALID", "Invalid template ID.")
            roles = body.get("templateRoles") or []
            signer = next((r for r in roles if r.get("roleName") == TEMPLATE_ROLE), None)
            if signer is None:
                return _error(400, "INVALID_ROLE_NAME", "The role name is not in the template.")
            for tab in (signer.get("tabs") or {}).get("textTabs") or []:
                if tab.get("tabLabel") not in TEMPLATE_TABS:
                    return _error(400, "INVALID_REQUEST_BODY", "A text tab label is not in the template.")
                tabs[str(tab["tabLabel"])] = str(tab.get("value") or "")
            document = orjson.dumps({"template": template_id, "tabs": tabs})
            extension = "json"
        else:
            documents = body.get("documents") or []
            signers = (body.get("recipients") or {}).get("signers") or []
            if not documents:
                return _error(400, "INVALID_REQUEST_BODY", "The envelope has no documents.")
            signer = signers[0] if signers else None
            if signer is None:
                return _error(400, "INVALID_REQUEST_BODY", "The envelope has no signer.")
            try:
                document = base64.b64decode(str(documents[0].get("documentBase64") or ""), validate=True)
            except ValueError:
                return _error(400, "INVALID_REQUEST_BODY", "documentBase64 is not base64.")
            extension = str(documents[0].get("fileExtension") or "pdf")
        email, name = str(signer.get("email") or ""), str(signer.get("name") or "")
        if "@" not in email:
            return _error(
                400, "INVALID_EMAIL_ADDRESS_FOR_RECIPIENT", "The email address for the recipient is invalid."
            )
        if not name:
            return _error(400, "INVALID_REQUEST_BODY", "The recipient has no name.")
        now = self.clock()
        with self._lock:
            envelope_id = self._next_id()
            envelope = SimEnvelope(
                envelope_id=envelope_id,
                subject=str(body.get("emailSubject") or ""),
                status=status,
                signer_name=name,
                signer_email=email,
                custom_fields=custom,
                document=document,
                extension=extension,
                template_id=template_id,
                tabs=tabs,
                connect_url=str((body.get("eventNotification") or {}).get("url") or ""),
                created=now,
                sign_at=now + self.signing_delay,
                status_changed=now,
            )
            self.envelopes[envelope_id] = envelope
            self.contracts += 1
            if status == "sent":
                self._queue(envelope, "envelope-sent")
        return Response(
            201,
            {
                "envelopeId": envelope_id,
                "uri": f"/envelopes/{envelope_id}",
                "statusDateTime": iso(now),
                "status": status,
            },
        )

    @route("GET", API + "/envelopes")
    def list_envelopes(self, request: Request) -> Response:
        self._settle()
        since = request.arg("from_date")
        if not since and not request.arg("envelope_ids"):
            return _error(400, "INVALID_REQUEST_PARAMETER", "from_date or envelope_ids is required.")
        try:
            start = datetime.fromisoformat(str(since).replace("Z", "+00:00")).timestamp() if since else 0.0
        except ValueError:
            return _error(400, "INVALID_REQUEST_PARAMETER", "from_date is not a date.")
        wanted_status = {s for s in (request.arg("status") or "").lower().split(",") if s and s != "any"}
        name, _, value = (request.arg("custom_field") or "").partition("=")
        position, count = int(request.arg("start_position") or 0), int(request.arg("count") or 100)
        with self._lock:
            found = [
                e.summary()
                for e in self.envelopes.values()
                if e.status_changed >= start
                and (not wanted_status or e.status in wanted_status)
                and (not name or e.custom_fields.get(name) == value)
            ]
        page = found[position : position + count]
        return Response(
            200,
            {
                "resultSetSize": str(len(page)),
                "totalSetSize": str(len(found)),
                "startPosition": str(position),
                "endPosition": str(position + len(page) - 1),
                "envelopes": page,
            },
        )

    def _envelope(self, request: Request) -> SimEnvelope | None:
        self._settle()
        return self.envelopes.get(request.params["envelope_id"])

    @route("GET", API + "/envelopes/{envelope_id}")
    def get_envelope(self, request: Request) -> Response:
        with self._lock:
            envelope = self._envelope(request)
            if envelope is None:
                return _error(404, "ENVELOPE_DOES_NOT_EXIST", "The envelope specified either does not exist.")
            return Response(200, envelope.summary())

    @route("PUT", API + "/envelopes/{envelope_id}")
    def update_envelope(self, request: Request) -> Response:
        body = request.json() or {}
        with self._lock:
            envelope = self._envelope(request)
            if envelope is None:
                return _error(404, "ENVELOPE_DOES_NOT_EXIST", "The envelope specified either does not exist.")
            if body.get("status") != "voided":
                return _error(400, "INVALID_REQUEST_BODY", "Only voiding is simulated.")
            if not body.get("voidedReason"):
                return _error(400, "INVALID_REQUEST_BODY", "voidedReason is required.")
            if envelope.status not in ("sent", "delivered"):
                return _error(
                    400, "ENVELOPE_CANNOT_VOID_INVALID_STATE", "Only envelopes in process can be voided."
                )
            envelope.status, envelope.voided_reason = "voided", str(body["voidedReason"])
            envelope.status_changed = self.clock()
            self._queue(envelope, "envelope-voided")
        return Response(200, {"envelopeId": envelope.envelope_id})

    @route("GET", API + "/envelopes/{envelope_id}/documents/combined")
    def combined(self, request: Request) -> Response:
        with self._lock:
            envelope = self._envelope(request)
            if envelope is None:
                return _error(404, "ENVELOPE_DOES_NOT_EXIST", "The envelope specified either does not exist.")
            content = self.signed_content(envelope)
        media = "application/pdf" if content.startswith(b"%PDF") else "application/octet-stream"
        return Response(200, content, {"Content-Type": media})

    def signed_content(self, envelope: SimEnvelope) -> bytes:
        """The envelope's document, with a trailer naming the simulator once it is completed."""
        if envelope.status != "completed":
            return envelope.document
        note = f"completed in the hub DocuSign simulator: envelope {envelope.envelope_id}"
        trailer = f"\n%{note}\n" if envelope.document.startswith(b"%PDF") else f"\n<!-- {note} -->\n"
        return envelope.document + trailer.encode()

    # -- signing and Connect ------------------------------------------------------------------

    def _settle(self) -> None:
        now = self.clock()
        with self._lock:
            for envelope in self.envelopes.values():
                if envelope.status in ("sent", "delivered") and now >= envelope.sign_at:
                    self._finish(envelope, signed=self.signing_outcome == "sign")

    def sign(self, envelope_id: str, *, decline: bool = False) -> None:
        """The employee acts now (signs, or declines)."""
        with self._lock:
            envelope = self.envelopes[envelope_id]
            if envelope.status in ("sent", "delivered"):
                self._finish(envelope, signed=not decline)

    def _finish(self, envelope: SimEnvelope, *, signed: bool) -> None:
        now = self.clock()
        envelope.status_changed = now
        if signed:
            envelope.status, envelope.completed = "completed", now
            self.signed += 1
            self._queue(envelope, "recipient-completed")
            self._queue(envelope, "envelope-completed")
        else:
            envelope.status = "declined"
            self._queue(envelope, "envelope-declined")

    def _queue(self, envelope: SimEnvelope, event: str) -> None:
        self._serial += 1
        data: dict[str, Any] = {
            "accountId": self.identity.account_id,
            "userId": self.identity.user_id,
            "envelopeId": envelope.envelope_id,
            "envelopeSummary": {
                "status": envelope.status,
                "emailSubject": envelope.subject,
                "customFields": {
                    "textCustomFields": [{"name": k, "value": v} for k, v in envelope.custom_fields.items()]
                },
            },
        }
        if event.startswith("recipient-"):
            data["recipientId"] = "1"
        message = {
            "event": event,
            "apiVersion": "v2.1",
            "uri": f"/restapi/v2.1/accounts/{self.identity.account_id}/envelopes/{envelope.envelope_id}",
            "retryCount": 0,
            "configurationId": 10000001,
            "generatedDateTime": datetime.fromtimestamp(self.clock(), UTC).isoformat(timespec="milliseconds"),
            "data": data,
        }
        self.events.append(ConnectEvent(self._serial, envelope.envelope_id, event, self.clock(), message))

    def due_events(self) -> list[ConnectEvent]:
        self._settle()
        now = self.clock()
        with self._lock:
            return [e for e in self.events if not e.delivered and e.due <= now]

    def deliver_callbacks(
        self,
        url: str | None = None,
        *,
        repeat: Mapping[str, int] | None = None,
        reverse: bool | None = None,
        timeout: float = 5.0,
    ) -> list[Delivery]:
        """POST every due Connect message, signed with every HMAC key; what happened to each copy.

        ``repeat`` sends an envelope's messages that many times (each retry with ``retryCount``
        one higher, as Connect does), ``reverse`` newest first. Any 200 acknowledges a message.
        """
        events = self.due_events()
        copies = dict(self.callback_repeat if repeat is None else repeat)
        if self.callback_reverse if reverse is None else reverse:
            events.reverse()
        results = []
        for event in events:
            target = url or self.callback_url or self.envelopes[event.envelope_id].connect_url
            if not target:
                raise ValueError("no callback URL: pass one, set callback_url, or send eventNotification.url")
            for _ in range(max(1, copies.get(event.envelope_id, copies.get("*", 1)))):
                body = orjson.dumps({**event.message, "retryCount": event.attempts})
                event.attempts += 1
                headers = {**docusign_headers(self.hmac_keys, body), "Content-Type": "application/json"}
                try:
                    reply = requests.post(target, data=body, headers=headers, timeout=timeout)
                    status: int | None = reply.status_code
                except requests.RequestException:
                    status = None
                with self._lock:
                    event.delivered = event.delivered or status == 200
                    results.append(Delivery(event.envelope_id, event.event, status, status == 200))
                    self.deliveries.append(results[-1])
        return results
