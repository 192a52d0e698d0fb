"""A typed DocuSign eSignature REST v2.1 client: JWT grant, envelopes, void, the signed document.

Auth: the JWT grant (an RS256 assertion ``{iss: integration key, sub: user id, aud: the OAuth
host, iat, exp <= 1 h, scope: "signature impersonation"}`` posted to ``/oauth/token``) gives a
token for ``expires_in`` (3600) seconds, kept until ``token_margin`` seconds before expiry and
fetched again, then the call repeated, when DocuSign answers 401 ``USER_AUTHENTICATION_FAILED``.
A configured ``access_token`` is used as it is (it cannot be renewed). The account's API base is
``{base_uri}/restapi/v2.1/accounts/{account_id}``, from the configuration or ``/oauth/userinfo``.

Rate limits: every answer carries ``X-RateLimit-Limit/-Remaining/-Reset`` (kept in
:attr:`DocuSignClient.rate_limit`); a 429 is backed off until ``X-RateLimit-Reset`` (capped by the
backoff cap, then a :class:`~hub_docusign.errors.DocuSignRateLimited` carrying the wait).
Timeouts and 5xx are retried for reads; an envelope whose answer is lost is looked up before it
is sent again: DocuSign has no idempotency token, so hub's key travels in the envelope's
``customFields.textCustomFields`` and ``GET /envelopes?custom_field=<name>=<key>`` finds it.

What was checked, and where (searched 2026-11; nothing was run against DocuSign itself):

- Rate-limit headers and the 3,000/hour and 30-second burst limits: developers.docusign.com
  "API resource limits" [V] (also vendors.md §2.3); ``Hourly_Envelope_Polling_Limit_Exceeded``:
  "eSignature API rules and resource limits" [V]. The 429 status and the
  ``HOURLY_APIINVOCATION_LIMIT_EXCEEDED`` code are [M].
- ``custom_field`` on Envelopes:listStatusChanges, format ``custom_envelope_field_name=desired_value``:
  the docusign-esign SDKs' ``ListStatusChangesOptions`` docstrings (Ruby, Java, C#, PHP) [V].
- Envelopes:update with ``{"status": "voided", "voidedReason"}``, only for envelopes in process:
  SOAP VoidEnvelope docs and connectors built on the REST reference [S].
- JWT grant, ``/oauth/userinfo`` (``accounts[{account_id, is_default, base_uri}]``), envelope and
  template-role shapes, ``documents/combined``, the ``errorCode`` names used here: vendors.md §2.3
  [M], consistent with the official SDK's models (``EventNotification``, ``TextCustomField``) [S].
"""

from __future__ import annotations

import base64
import logging
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import orjson
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hub_esign.econtract import create_once, exchange_bytes, media_type_of

from hub.vendor_http import Answer, HttpSettings, VendorClient
from hub_docusign.errors import KINDS, TOKEN_INVALID, DocuSignError, DocuSignOutcomeUnknown

log = logging.getLogger("hub.docusign")

DEFAULT_OAUTH_URL = "https://account-d.docusign.com"  # demo; production: https://account.docusign.com
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
JWT_LIFETIME_S = 3600
DEFAULT_CUSTOM_FIELD = "hub_idempotency_key"
DEFAULT_TABS = {"salary": "monthly_salary", "start_date": "start_date", "duties": "duties"}
#: envelope statuses that end an envelope without a signature (a new one may be sent)
ENDED = frozenset({"declined", "voided", "deleted"})
IN_PROCESS = frozenset({"created", "sent", "delivered", "correct"})
#: DocuSign's refusal to void an envelope that is no longer in process
CANNOT_VOID = "ENVELOPE_CANNOT_VOID_INVALID_STATE"
CONNECT_EVENTS = (
    "envelope-sent",
    "envelope-completed",
    "envelope-declined",
    "envelope-voided",
    "recipient-completed",
)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_assertion(
    *, integration_key: str, user_id: str, audience: str, private_key_pem: str, now: float
) -> str:
    """An RS256-signed JWT for DocuSign's JWT grant (``scope: signature impersonation``)."""
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the DocuSign private key is not an RSA key")
    header = b64url(orjson.dumps({"alg": "RS256", "typ": "JWT"}))
    claims = b64url(
        orjson.dumps(
            {
                "iss": integration_key,
                "sub": user_id,
                "aud": audience,
                "iat": int(now),
                "exp": int(now) + JWT_LIFETIME_S,
                "scope": "signature impersonation",
            }
        )
    )
    signing_input = f"{header}.{claims}".encode()
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{claims}.{b64url(signature)}"


def docusign_time(moment: datetime) -> str:
    """DocuSign's date-time parameter format (UTC, ISO 8601)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, kw_only=True)
class DocuSignSettings(HttpSettings):
    """The connector configuration, with defaults filled in (secrets already resolved)."""

    oauth_base_url: str = DEFAULT_OAUTH_URL
    integration_key: str = ""
    user_id: str = ""
    private_key: str = ""
    access_token: str = ""
    account_id: str = ""
    #: ``https://demo.docusign.net`` and the like; from /oauth/userinfo when empty
    base_uri: str = ""
    template_id: str = ""
    template_role: str = "Employee"
    #: the template's text tab label -> the contract field (hub.contracts' vendor field names)
    template_tabs: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_TABS))
    email_subject: str = "请签署劳动合同"
    sign_anchor: str = "乙方（签字）"
    custom_field: str = DEFAULT_CUSTOM_FIELD
    #: envelope-level Connect (``eventNotification``); empty: an account-level Connect configuration
    connect_url: str = ""
    lookback_days: int = 30
    employer: str = ""

    @classmethod
    def parse(cls, config: Mapping[str, Any]) -> DocuSignSettings:
        has_jwt = all(config.get(k) for k in ("integration_key", "user_id", "private_key"))
        if not has_jwt and not config.get("access_token"):
            raise ValueError(
                "configure the JWT grant (integration_key, user_id, private_key) or an access_token"
            )
        tabs = config.get("template_tabs")
        return cls(
            oauth_base_url=str(config.get("oauth_base_url") or DEFAULT_OAUTH_URL).rstrip("/"),
            integration_key=str(config.get("integration_key") or ""),
            user_id=str(config.get("user_id") or ""),
            private_key=str(config.get("private_key") or ""),
            access_token=str(config.get("access_token") or ""),
            account_id=str(config.get("account_id") or ""),
            base_uri=str(config.get("base_uri") or "").rstrip("/"),
            template_id=str(config.get("template_id") or ""),
            template_role=str(config.get("template_role") or "Employee"),
            template_tabs={str(k): str(v) for k, v in tabs.items()}
            if isinstance(tabs, Mapping)
            else dict(DEFAULT_TABS),
            email_subject=str(config.get("email_subject") or "请签署劳动合同"),
            sign_anchor=str(config.get("sign_anchor") or "乙方（签字）"),
            custom_field=str(config.get("custom_field") or DEFAULT_CUSTOM_FIELD),
            connect_url=str(config.get("connect_url") or ""),
            lookback_days=int(config.get("lookback_days") or 30),
            employer=str(config.get("employer") or ""),
            **HttpSettings.options(config),
        )


@dataclass(frozen=True)
class Recipient:
    """The employee who signs: name and e-mail (DocuSign needs both for a remote signer)."""

    name: str
    email: str

    def __repr__(self) -> str:  # personal data
        return "Recipient(<masked>)"


@dataclass(frozen=True)
class Envelope:
    envelope_id: str
    status: str


@dataclass(frozen=True)
class SignedDocument:
    content: bytes
    media_type: str


class DocuSignClient(VendorClient[DocuSignSettings]):
    """DocuSign's eSignature API with the JWT token lifecycle, rate limits and envelopes sent once."""

    errors = KINDS
    retry_http_429 = False  # read the answer: 429 waits for X-RateLimit-Reset

    def __init__(self, settings: DocuSignSettings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self._api_base = ""
        #: (limit, remaining, reset epoch s) from the last answer that had the headers
        self.rate_limit: tuple[int, int, int] | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **kwargs: Any) -> Self:
        return cls(DocuSignSettings.parse(config), **kwargs)

    # -- tokens ---------------------------------------------------------------------------------

    @property
    def audience(self) -> str:
        return urllib.parse.urlsplit(self.settings.oauth_base_url).netloc

    def _fetch_token(self, credential: str) -> tuple[str, float]:
        settings = self.settings
        if not settings.private_key:
            return settings.access_token, 365 * 86400.0  # as configured: DocuSign's own expiry applies
        try:
            assertion = jwt_assertion(
                integration_key=settings.integration_key,
                user_id=settings.user_id,
                audience=self.audience,
                private_key_pem=settings.private_key,
                now=self._clock(),
            )
        except (ValueError, TypeError):
            raise KINDS.auth("token", None, "the private key is not a PEM RSA key") from None
        form = urllib.parse.urlencode({"grant_type": JWT_GRANT, "assertion": assertion}).encode()
        response = exchange_bytes(
            self,
            "token",
            "POST",
            settings.oauth_base_url + "/oauth/token",
            body=form,
            headers=lambda: {"Content-Type": "application/x-www-form-urlencoded"},
            idempotent=True,
            retry_http_429=True,
        )
        data = self._json("token", response)
        if response.status_code != 200 or not data.get("access_token"):
            code = str(data.get("error") or response.status_code)
            raise KINDS.token_refused("token", code, "")
        return str(data["access_token"]), float(data.get("expires_in") or JWT_LIFETIME_S)

    # -- transport ------------------------------------------------------------------------------

    def _note_rate(self, response: requests.Response) -> float | None:
        """Keep the rate-limit headers; the seconds until the reset, when DocuSign gave it."""
        headers = response.headers
        try:
            limit = int(headers["X-RateLimit-Limit"])
            remaining = int(headers["X-RateLimit-Remaining"])
            reset = int(headers["X-RateLimit-Reset"])
        except (KeyError, ValueError):
            return None
        self.rate_limit = (limit, remaining, reset)
        if limit and remaining < limit // 10:
            log.warning("DocuSign: %d of %d API calls left this hour", remaining, limit)
        return max(reset - self._clock(), 0.0)

    def api_base(self) -> str:
        """``{base_uri}/restapi/v2.1/accounts/{account_id}`` (from /oauth/userinfo when not configured)."""
        if self._api_base:
            return self._api_base
        base_uri, account = self.settings.base_uri, self.settings.account_id
        if not base_uri or not account:
            info = self._send("userinfo", "GET", self.settings.oauth_base_url + "/oauth/userinfo")
            accounts = [a for a in info.get("accounts") or [] if isinstance(a, dict)]
            chosen = next(
                (a for a in accounts if account and a.get("account_id") == account),
                next((a for a in accounts if a.get("is_default")), accounts[0] if accounts else None),
            )
            if chosen is None:
                raise KINDS.auth("userinfo", None, "the user has no DocuSign account")
            base_uri = base_uri or str(chosen.get("base_uri") or "").rstrip("/")
            account = account or str(chosen.get("account_id") or "")
        self._api_base = f"{base_uri}/restapi/v2.1/accounts/{account}"
        return self._api_base

    def _send(
        self,
        operation: str,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        idempotent: bool = True,
        raw: bool = False,
    ) -> dict[str, Any]:
        def attempt(token: str) -> Answer:
            response = self._exchange(
                operation,
                method,
                url,
                params=params,
                json=body,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                idempotent=idempotent,
            )
            wait = self._note_rate(response)
            status = response.status_code
            if 200 <= status < 300:
                if raw:
                    content = response.content
                    return Answer(
                        {"content": content, "media_type": media_type_of(response, content)}, ok=True
                    )
                return Answer(self._json(operation, response) if response.content else {}, ok=True)
            try:
                data = response.json()
            except ValueError:
                data = {}
            data = data if isinstance(data, dict) else {}
            code = str(data.get("errorCode") or status)
            if status == 401 and code not in TOKEN_INVALID:
                code = "USER_AUTHENTICATION_FAILED"
            if status == 429:
                return Answer(data, code, str(data.get("message") or ""), throttled=True, retry_after=wait)
            return Answer(data, code, str(data.get("message") or ""))

        return self._authorized(operation, attempt, idempotent=idempotent)

    def call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        idempotent: bool = True,
        raw: bool = False,
    ) -> dict[str, Any]:
        """An authenticated call on the account's API base (``path`` after ``/accounts/{id}``)."""
        return self._send(
            operation,
            method,
            self.api_base() + path,
            params=params,
            body=body,
            idempotent=idempotent,
            raw=raw,
        )

    # -- envelopes ------------------------------------------------------------------------------

    def _custom_fields(self, reference: str) -> dict[str, Any]:
        return {
            "textCustomFields": [
                {"name": self.settings.custom_field, "value": reference, "show": "false", "required": "false"}
            ]
        }

    def _notification(self) -> dict[str, Any]:
        if not self.settings.connect_url:
            return {}
        return {
            "eventNotification": {
                "url": self.settings.connect_url,
                "requireAcknowledgment": "true",
                "loggingEnabled": "true",
                "deliveryMode": "SIM",
                "includeHMAC": "true",
                "events": list(CONNECT_EVENTS),
                "eventData": {"version": "restv2.1", "format": "json", "includeData": ["custom_fields"]},
            }
        }

    def document_envelope(
        self, content: bytes, extension: str, recipient: Recipient, reference: str
    ) -> dict[str, Any]:
        """An envelope from hub's rendered contract: the employee signs at the signature anchor."""
        sign_here: dict[str, Any] = {
            "anchorString": self.settings.sign_anchor,
            "anchorUnits": "pixels",
            "anchorXOffset": "80",
            "anchorYOffset": "0",
            "anchorIgnoreIfNotPresent": "false",
        }
        return {
            "emailSubject": self.settings.email_subject,
            "status": "sent",
            "documents": [
                {
                    "documentBase64": base64.b64encode(content).decode(),
                    "name": f"劳动合同.{extension}",
                    "fileExtension": extension,
                    "documentId": "1",
                }
            ],
            "recipients": {
                "signers": [
                    {
                        "email": recipient.email,
                        "name": recipient.name,
                        "recipientId": "1",
                        "routingOrder": "1",
                        "tabs": {"signHereTabs": [sign_here]},
                    }
                ]
            },
            "customFields": self._custom_fields(reference),
            **self._notification(),
        }

    def template_envelope(
        self, template_id: str, recipient: Recipient, tabs: Mapping[str, str], reference: str
    ) -> dict[str, Any]:
        """An envelope from a DocuSign template: the employee as its role, text tabs filled."""
        return {
            "emailSubject": self.settings.email_subject,
            "status": "sent",
            "templateId": template_id,
            "templateRoles": [
                {
                    "email": recipient.email,
                    "name": recipient.name,
                    "roleName": self.settings.template_role,
                    "tabs": {
                        "textTabs": [{"tabLabel": label, "value": value} for label, value in tabs.items()]
                    },
                }
            ],
            "customFields": self._custom_fields(reference),
            **self._notification(),
        }

    def create_envelope(self, definition: Mapping[str, Any]) -> str:
        data = self.call("create_envelope", "POST", "/envelopes", body=dict(definition), idempotent=False)
        envelope_id = str(data.get("envelopeId") or "")
        if not envelope_id:
            raise KINDS.error("create_envelope", None, "DocuSign returned no envelopeId")
        return envelope_id

    def send_once(self, definition: Mapping[str, Any], reference: str) -> str:
        """The envelope carrying ``reference``: found, or sent once (a lost answer looked up first)."""

        def find() -> str | None:
            found = self.find_envelope(reference)
            return found.envelope_id if found else None

        return create_once(find, lambda: self.create_envelope(definition), DocuSignOutcomeUnknown)

    def list_envelopes(self, since: datetime, **filters: str) -> Iterator[dict[str, Any]]:
        """Envelopes changed since ``since`` (Envelopes:listStatusChanges), page by page."""
        start = 0
        while True:
            params = {
                "from_date": docusign_time(since),
                "start_position": str(start),
                "count": "100",
                **filters,
            }
            data = self.call("list_envelopes", "GET", "/envelopes", params=params)
            envelopes = [e for e in data.get("envelopes") or [] if isinstance(e, dict)]
            yield from envelopes
            total = int(data.get("totalSetSize") or 0)
            start += len(envelopes)
            if not envelopes or start >= total:
                return

    def find_envelope(self, reference: str) -> Envelope | None:
        """The envelope (not declined or voided) an earlier attempt sent with hub's reference."""
        since = datetime.fromtimestamp(self._clock(), UTC) - timedelta(days=self.settings.lookback_days)
        criterion = f"{self.settings.custom_field}={reference}"
        for envelope in self.list_envelopes(since, custom_field=criterion):
            status = str(envelope.get("status") or "").lower()
            if envelope.get("envelopeId") and status not in ENDED:
                return Envelope(str(envelope["envelopeId"]), status)
        return None

    def envelope_status(self, envelope_id: str) -> str:
        data = self.call("get_envelope", "GET", f"/envelopes/{envelope_id}")
        return str(data.get("status") or "").lower()

    def void(self, envelope_id: str, reason: str) -> bool:
        """Void an envelope in process; False when it had ended already (declined, voided). Safe twice."""
        if self.envelope_status(envelope_id) in ENDED:
            return False
        try:
            self.call(
                "void_envelope",
                "PUT",
                f"/envelopes/{envelope_id}",
                body={"status": "voided", "voidedReason": reason},
            )
        except DocuSignError as exc:
            # a void repeated after its answer was lost finds the envelope voided by the first one
            if exc.code != CANNOT_VOID or self.envelope_status(envelope_id) != "voided":
                raise
        return True

    def signed_document(self, envelope_id: str) -> SignedDocument:
        """The completed envelope's documents as one file (``documents/combined``)."""
        data = self.call("download_document", "GET", f"/envelopes/{envelope_id}/documents/combined", raw=True)
        return SignedDocument(bytes(data["content"]), str(data["media_type"]))

    def check(self) -> None:
        """A token, the account's API base and one envelope listing: the configuration works."""
        since = datetime.fromtimestamp(self._clock(), UTC) - timedelta(days=1)
        next(iter(self.list_envelopes(since, count="1")), None)


__all__ = [
    "ENDED",
    "IN_PROCESS",
    "DocuSignClient",
    "DocuSignError",
    "DocuSignSettings",
    "Envelope",
    "Recipient",
    "SignedDocument",
    "jwt_assertion",
]
