"""A simulator of SAP SuccessFactors Employee Central's OData v2 API: token, queries, upserts.

What it reproduces (vendors.md §6.1, §7; shapes checked as noted in ``hub_successfactors.client``
and ``hub_successfactors.saml``):

- ``POST /oauth/token`` (form ``client_id, company_id, grant_type=urn:ietf:params:oauth:
  grant-type:saml2-bearer, assertion``): the assertion (base64 SAML 2.0 XML) must carry a valid
  enveloped XML-DSig signature (RSA-SHA256, SHA-256 digest, exclusive C14N) made with the
  private key of the certificate registered for ``client_id`` (checked with its public key,
  independently of hub's signer), audience ``www.successfactors.com``, a validity window that
  includes now, a recipient that is the token URL (or ``/odata/v2``), an ``api_key`` attribute
  equal to ``client_id``, a known API user in ``NameID``; each assertion ``ID`` is accepted once.
  Answer ``{access_token, token_type: "Bearer", expires_in}``; refusals HTTP 400/401
  ``{"errorMessage": ...}``.
- ``GET /odata/v2/<Entity>``: ``$filter`` (``eq ne gt ge lt le`` on strings, numbers and
  ``datetime'...'``, ``in``, joined by ``and``), ``$select``, ``$top``, ``$skip``, server paging
  (``customPageSize`` up to 1000, ``paging=snapshot``: later pages come from the first page's
  snapshot) with ``__next`` carrying a ``$skiptoken``; ``{"d": {"results": [...], "__next"}}``,
  each record with ``__metadata {uri, type}``; dates as ``/Date(ms)/``.
- ``POST /odata/v2/upsert``: one object or an array; each names its entity by
  ``__metadata.type`` (``SFOData.EmpJob``) or ``uri`` (``EmpJob``, ``EmpJob(seqNumber=1L,
  startDate=datetime'2026-01-01T00:00:00',userId='u1')`` or a full URL), keys in the body or the
  predicate. Always HTTP 200 with one row per record ``{key, status, editStatus, message, index,
  httpCode, inlineResults}``; rows are processed in order, each on its own: a missing required
  field, an unknown parent, an invalid e-mail or event reason is ``status: ERROR, httpCode: 400``
  with a message ending ``with the index N`` (the e-mail message quotes the address, as vendor
  messages do). Records are kept per entity, keyed by the entity's key fields, so an upsert
  sent twice updates (``editStatus: UPDATED``) the record the first made (``INSERTED``).
- ``EmpEmploymentTermination`` upserts end the employment (``endDate`` on ``EmpEmployment``;
  not before its start); ``eventReason`` must be a known event reason.
- Errors: 401 with the OData envelope ``{"error": {"code", "message": {"lang", "value"}}}`` for
  a missing, invalid or expired token; 429 + ``Retry-After`` (injected with ``Faults`` or a
  ``RateLimit``); 503; :meth:`SuccessFactorsSimulator.lose_replies` processes a request and
  answers 502 instead (the write happened, its answer is lost).

Assumed, not documented where we looked [M]: the required fields per entity (a customer's data
model decides them), ``INSERTED``/``UPDATED`` (the docs we found show ``UPSERTED``), the
messages' wording, and queries ignoring effective dating (``asOfDate``: every record is returned).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
import secrets
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET  # parsed only after refusing DTDs and entities (see _verify)
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from hub.sandbox.base import Faults, RateLimit, Request, Response, Simulator, route
from hub.sandbox.people import DEPARTMENTS, TITLES, people

TOKEN_PATH = "/oauth/token"  # noqa: S105 - a path, not a secret
ODATA = "/odata/v2"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:saml2-bearer"
SAML_NS = "urn:oasis:names:tc:SAML:2.0:assertion"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
AUDIENCE = "www.successfactors.com"
DEFAULT_COMPANY = "SIMCOMPANY"
DEFAULT_CLIENT_ID = "c2ltLXN1Y2Nlc3NmYWN0b3JzLWFwaS1rZXk"  # an "API key" (simulator credential)
DEFAULT_USER = "sfadmin"
DEFAULT_COMPANY_CODE = "CN01"
EVENT_REASONS = ("HIRNEW", "HIRREHIRE", "TERNOSHOW", "TERRESIGN", "TERRTMNT", "DATACHG")
MAX_PAGE = 1000
#: server-paging snapshots kept (a __next into an older one is refused)
MAX_SNAPSHOTS = 100
SKEW_S = 120
MAX_ASSERTION_BYTES = 64 * 1024

#: entity -> its key fields, in the order SuccessFactors names them
KEYS: dict[str, tuple[str, ...]] = {
    "User": ("userId",),
    "PerPerson": ("personIdExternal",),
    "PerPersonal": ("personIdExternal", "startDate"),
    "PerEmail": ("emailType", "personIdExternal"),
    "EmpEmployment": ("personIdExternal", "userId"),
    "EmpJob": ("seqNumber", "startDate", "userId"),
    "EmpEmploymentTermination": ("endDate", "personIdExternal", "userId"),
}
#: fields a new record of the entity must carry (this instance's data model) [M]
REQUIRED: dict[str, tuple[str, ...]] = {
    "EmpEmployment": ("startDate",),
    "EmpJob": ("company", "eventReason", "jobCode"),
    "PerPersonal": ("firstName", "lastName"),
    "PerEmail": ("emailAddress",),
    "EmpEmploymentTermination": ("eventReason",),
}
DATE_FIELDS = frozenset(
    {"startDate", "endDate", "dateOfBirth", "originalStartDate", "lastModifiedDateTime", "createdDateTime"}
)
INTEGER_FIELDS = frozenset({"seqNumber"})
_DATE_RE = re.compile(r"^/Date\((-?\d+)(?:[+-]\d{4})?\)/$")
_PREDICATE_RE = re.compile(r"^(?:.*/)?([A-Za-z]+)(?:\((.*)\))?$")
_CLAUSE_RE = re.compile(r"^\s*([A-Za-z_]\w*)\s+(eq|ne|gt|ge|lt|le|in)\s+(.+?)\s*$", re.S)
_LITERAL_RE = re.compile(r"'(?:[^']|'')*'|datetime'[^']*'|[^,]+")
_SIGNATURE_RE = re.compile(r"<(?P<p>(?:[A-Za-z_][\w.-]*:)?)Signature[\s>].*?</(?P=p)Signature>", re.S)
_SIGNED_INFO_RE = re.compile(
    r"<(?P<p>(?:[A-Za-z_][\w.-]*:)?)SignedInfo(?P<rest>[\s>].*?</(?P=p)SignedInfo>)", re.S
)


@functools.lru_cache(maxsize=1)
def _default_key() -> rsa.RSAPrivateKey:
    """One generated key per process (2048-bit generation takes a while): a simulator's, nobody's."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_key_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def ms_of(value: Any) -> int | None:
    """Milliseconds since the epoch of ``/Date(ms)/``, ``datetime'2026-01-01T00:00:00'``, ISO text."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip()
    found = _DATE_RE.match(text)
    if found:
        return int(found.group(1))
    if text.startswith("datetime'") and text.endswith("'"):
        text = text[9:-1]
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def odata_date(ms: int) -> str:
    return f"/Date({ms})/"


def day_ms(value: date) -> int:
    return int(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp() * 1000)


class _Refused(Exception):
    """A token request refused, with the status and the errorMessage to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class _RowError(Exception):
    def __init__(self, message: str, http_code: int = 400) -> None:
        super().__init__(message)
        self.message, self.http_code = message, http_code


@dataclass
class _Loss:
    fragment: str
    remaining: int
    status: int


def _odata_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status, {"error": {"code": code, "message": {"lang": "en-US", "value": message}}}, headers or {}
    )


class SuccessFactorsSimulator(Simulator):
    """SuccessFactors Employee Central (OData v2) on loopback, seeded with ``count`` employees."""

    vendor = "successfactors"
    public_paths = (TOKEN_PATH,)

    def __init__(
        self,
        *,
        count: int = 20,
        seed: int = 1,
        company_id: str = DEFAULT_COMPANY,
        client_id: str = DEFAULT_CLIENT_ID,
        api_users: tuple[str, ...] = (DEFAULT_USER,),
        private_key: rsa.RSAPrivateKey | None = None,
        page_size: int = MAX_PAGE,
        port: int = 0,
        rate_limit: RateLimit | None = None,
        faults: Faults | None = None,
        token_ttl: float = 86400.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(port=port, rate_limit=rate_limit, faults=faults, token_ttl=token_ttl, clock=clock)
        self.company_id = company_id
        self.client_id = client_id
        self.api_users = set(api_users)
        #: the key pair of the certificate registered for ``client_id``; the simulator keeps only
        #: the public half for verification, the private half is handed to the connector's config
        self.private_key = private_key or _default_key()
        self.public_key = self.private_key.public_key()
        #: the largest page the server answers (1000 at SuccessFactors; smaller to force paging)
        self.page_size = min(page_size, MAX_PAGE)
        self.event_reasons = set(EVENT_REASONS)
        self.required = {k: tuple(v) for k, v in REQUIRED.items()}
        #: entity -> key tuple -> record (JSON-ready values; dates as /Date(ms)/)
        self.store: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {name: {} for name in KEYS}
        #: records created through upserts, by entity (seeded ones are not counted)
        self.created: Counter[str] = Counter()
        self.upsert_calls = 0
        self.tokens_issued = 0
        self._used_assertions: set[str] = set()
        self._snapshots: dict[str, tuple[str, list[dict[str, Any]], list[str] | None]] = {}
        self._losses: list[_Loss] = []
        self._store_lock = threading.RLock()
        self._seed(count, seed)

    @property
    def private_key_pem(self) -> str:
        """The connector's ``private_key`` (PEM): a simulator key, generated for this process."""
        return private_key_pem(self.private_key)

    # -- generated data ----------------------------------------------------------------------

    def _seed(self, count: int, seed: int) -> None:
        base = datetime(2024, 1, 1, tzinfo=UTC)
        for person in people(count, seed):
            user = f"E{person.index:05d}"
            start = day_ms((base + timedelta(days=7 * person.index)).date())
            modified = odata_date(int((base + timedelta(hours=person.index)).timestamp() * 1000))
            title, _skills = TITLES[person.index % len(TITLES)]
            department = f"D{person.index % len(DEPARTMENTS) + 1:03d}"
            common = {"createdDateTime": modified, "lastModifiedDateTime": modified}
            self._put("PerPerson", {"personIdExternal": user, "personId": str(1000 + person.index), **common})
            self._put(
                "EmpEmployment",
                {"personIdExternal": user, "userId": user, "startDate": odata_date(start), **common},
            )
            self._put(
                "EmpJob",
                {
                    "userId": user,
                    "startDate": odata_date(start),
                    "seqNumber": 1,
                    "company": DEFAULT_COMPANY_CODE,
                    "department": department,
                    "jobCode": f"JC{person.index % len(TITLES) + 1:02d}",
                    "jobTitle": title,
                    "eventReason": "HIRNEW",
                    "emplStatus": "A",
                    "managerId": "E00001" if person.index > 1 else "NO_MANAGER",
                    **common,
                },
            )
            self._put(
                "PerPersonal",
                {
                    "personIdExternal": user,
                    "startDate": odata_date(start),
                    "firstName": person.given_name,
                    "lastName": person.family_name,
                    **common,
                },
            )
            self._put(
                "PerEmail",
                {
                    "personIdExternal": user,
                    "emailType": "B",
                    "emailAddress": person.email,
                    "isPrimary": True,
                    **common,
                },
            )

    def _key(self, entity: str, record: Mapping[str, Any]) -> tuple[Any, ...]:
        parts: list[Any] = []
        for name in KEYS[entity]:
            value = record.get(name)
            if name in DATE_FIELDS:
                parts.append(ms_of(value))
            elif name in INTEGER_FIELDS:
                parts.append(int(str(value).rstrip("Ll")))
            else:
                parts.append(str(value))
        return tuple(parts)

    def _put(self, entity: str, record: dict[str, Any]) -> None:
        self.store[entity][self._key(entity, record)] = record

    def records(self, entity: str) -> list[dict[str, Any]]:
        """The entity's records (copies), for assertions."""
        with self._store_lock:
            return [dict(r) for r in self.store[entity].values()]

    def find(self, entity: str, **fields: Any) -> list[dict[str, Any]]:
        """The entity's records whose fields equal ``fields`` (dates compared as instants)."""
        wanted = {k: ms_of(v) if k in DATE_FIELDS else v for k, v in fields.items()}
        out = []
        for record in self.records(entity):
            values = {k: ms_of(record.get(k)) if k in DATE_FIELDS else record.get(k) for k in wanted}
            if values == wanted:
                out.append(record)
        return out

    # -- sandbox -----------------------------------------------------------------------------

    @classmethod
    def for_sandbox(cls, *, port: int, seed: int, size: int) -> SuccessFactorsSimulator:
        return cls(port=port, seed=seed, count=size)

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "base_url": self.url,
            "company_id": self.company_id,
            "client_id": self.client_id,
            "user_id": sorted(self.api_users)[0],
            "private_key": self.private_key_pem,
            "employees": len(self.store["EmpEmployment"]),
        }

    # -- faults ------------------------------------------------------------------------------

    def lose_replies(self, path: str, times: int = 1, status: int = 502) -> None:
        """Process the next ``times`` requests whose path contains ``path``, then answer ``status``.

        The write happened at the vendor but the client never learns it: the retry must not
        create a second record.
        """
        with self._lock:
            self._losses.append(_Loss(path, times, status))

    def dispatch(self, request: Request) -> Response:
        response = super().dispatch(request)
        with self._lock:
            for loss in self._losses:
                if loss.remaining > 0 and loss.fragment in request.path and response.status == 200:
                    loss.remaining -= 1
                    return Response(loss.status, b"<html><body>502 Bad Gateway</body></html>")
        return response

    def throttled(self, retry_after: float) -> Response:
        seconds = max(1, int(retry_after + 0.999))
        return _odata_error(429, "TooManyRequests", "Too Many Requests", {"Retry-After": str(seconds)})

    def server_error(self, status: int) -> Response:
        return _odata_error(status, "ServiceUnavailable", "The service is temporarily unavailable")

    # -- auth ---------------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        if not self.token_valid(self.bearer(request)):
            return _odata_error(
                401, "COE_AUTHENTICATION_FAILED", "Unauthorized: the access token is invalid or expired"
            )
        return None

    @route("POST", TOKEN_PATH)
    def token(self, request: Request) -> Response:
        form = request.form()
        try:
            if form.get("grant_type") != GRANT_TYPE:
                raise _Refused(400, "Unsupported grant_type")
            if form.get("client_id") != self.client_id:
                raise _Refused(401, "Unable to authenticate the client (invalid client id)")
            if form.get("company_id") != self.company_id:
                raise _Refused(401, "Unable to authenticate the client (invalid company id)")
            self._verify(form.get("assertion") or "", str(form["client_id"]))
        except _Refused as refused:
            return Response(refused.status, {"errorMessage": refused.message})
        token, lifetime = self.issue_token()
        with self._lock:
            self.tokens_issued += 1
        return Response(200, {"access_token": token, "token_type": "Bearer", "expires_in": int(lifetime)})

    def _verify(self, assertion: str, client_id: str) -> str:
        """Check the assertion's signature and claims; the API user it names."""
        try:
            raw = base64.b64decode(assertion, validate=True)
        except (binascii.Error, ValueError):
            raise _Refused(400, "the assertion is not base64") from None
        if not raw or len(raw) > MAX_ASSERTION_BYTES:
            raise _Refused(400, "the assertion is empty or too large")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _Refused(400, "the assertion is not UTF-8") from None
        if "<!" in text:  # no DTD, no entities: the parser below must not expand anything
            raise _Refused(400, "the assertion carries a DTD")
        try:
            root = ET.fromstring(text)  # noqa: S314 - DTDs refused above; a simulator's own input
        except ET.ParseError:
            raise _Refused(400, "the assertion is not well-formed XML") from None
        if root.tag != f"{{{SAML_NS}}}Assertion":
            raise _Refused(400, "not a SAML 2.0 assertion")
        ident = root.get("ID") or ""
        self._check_signature(text, root, ident)
        self._check_claims(root, client_id)
        with self._lock:
            if ident in self._used_assertions:
                raise _Refused(401, "Unable to authenticate the client (the assertion was used before)")
            self._used_assertions.add(ident)
        name_id = root.findtext(f"{{{SAML_NS}}}Subject/{{{SAML_NS}}}NameID") or ""
        return name_id

    def _check_signature(self, text: str, root: ET.Element, ident: str) -> None:
        signatures = root.findall(f"{{{DSIG_NS}}}Signature")
        if len(signatures) != 1 or not ident:
            raise _Refused(401, "the assertion must carry exactly one enveloped signature")
        info = signatures[0].find(f"{{{DSIG_NS}}}SignedInfo")
        if info is None:
            raise _Refused(401, "the signature has no SignedInfo")

        def algorithm(path: str) -> list[str]:
            return [str(e.get("Algorithm")) for e in info.iterfind(path)]

        reference = info.find(f"{{{DSIG_NS}}}Reference")
        expected = (
            algorithm(f"{{{DSIG_NS}}}CanonicalizationMethod") == [EXC_C14N]
            and algorithm(f"{{{DSIG_NS}}}SignatureMethod") == [RSA_SHA256]
            and reference is not None
            and reference.get("URI") == f"#{ident}"
            and algorithm(f"{{{DSIG_NS}}}Reference/{{{DSIG_NS}}}Transforms/{{{DSIG_NS}}}Transform")
            == [ENVELOPED, EXC_C14N]
            and algorithm(f"{{{DSIG_NS}}}Reference/{{{DSIG_NS}}}DigestMethod") == [SHA256]
        )
        if not expected:
            raise _Refused(
                401, "unsupported signature (expected RSA-SHA256, SHA-256, exclusive C14N, enveloped)"
            )
        # the reference: the assertion without its Signature element, canonicalised
        found = _SIGNATURE_RE.search(text)
        if found is None:
            raise _Refused(401, "the signature element could not be located")
        without = text[: found.start()] + text[found.end() :]
        digest = hashlib.sha256(ET.canonicalize(without).encode()).digest()
        try:
            claimed = base64.b64decode(
                info.findtext(f"{{{DSIG_NS}}}Reference/{{{DSIG_NS}}}DigestValue") or ""
            )
            value = base64.b64decode(signatures[0].findtext(f"{{{DSIG_NS}}}SignatureValue") or "")
        except (binascii.Error, ValueError):
            raise _Refused(401, "the digest or signature value is not base64") from None
        if not secrets.compare_digest(digest, claimed):
            raise _Refused(401, "the assertion's digest does not match (it was changed after signing)")
        # SignedInfo on its own, with the namespace it inherits declared on it (exclusive C14N)
        signed = _SIGNED_INFO_RE.search(found.group(0))
        if signed is None:
            raise _Refused(401, "the signature has no SignedInfo")
        prefix = signed.group("p")
        declaration = f' xmlns:{prefix[:-1]}="{DSIG_NS}"' if prefix else f' xmlns="{DSIG_NS}"'
        element = f"<{prefix}SignedInfo{declaration}{signed.group('rest')}"
        try:
            canonical = ET.canonicalize(element)
        except ET.ParseError:
            raise _Refused(401, "the SignedInfo is not well-formed") from None
        try:
            self.public_key.verify(value, canonical.encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise _Refused(401, "Unable to authenticate the client (the signature does not verify)") from None

    def _check_claims(self, root: ET.Element, client_id: str) -> None:
        now = self.clock() * 1000
        s = f"{{{SAML_NS}}}"
        conditions = root.find(f"{s}Conditions")
        if conditions is None:
            raise _Refused(401, "the assertion has no Conditions")
        not_before = ms_of(conditions.get("NotBefore") or "")
        not_after = ms_of(conditions.get("NotOnOrAfter") or "")
        if not_before is None or not_after is None:
            raise _Refused(401, "the assertion has no validity window")
        if now + SKEW_S * 1000 < not_before or now >= not_after + SKEW_S * 1000:
            raise _Refused(
                401, "Unable to authenticate the client (the assertion has expired or is not valid yet)"
            )
        audiences = [a.text for a in conditions.iterfind(f"{s}AudienceRestriction/{s}Audience")]
        if AUDIENCE not in audiences:
            raise _Refused(401, "the assertion's audience is not www.successfactors.com")
        confirmation = root.find(f"{s}Subject/{s}SubjectConfirmation/{s}SubjectConfirmationData")
        recipient = (confirmation.get("Recipient") if confirmation is not None else "") or ""
        if not recipient.rstrip("/").endswith((TOKEN_PATH, ODATA)):
            raise _Refused(401, "the assertion's recipient is not this API server")
        api_keys = [
            v.text
            for a in root.iterfind(f"{s}AttributeStatement/{s}Attribute")
            if a.get("Name") == "api_key"
            for v in a.iterfind(f"{s}AttributeValue")
        ]
        if api_keys != [client_id]:
            raise _Refused(401, "the assertion's api_key is not the client's")
        user = root.findtext(f"{s}Subject/{s}NameID") or ""
        if user not in self.api_users:
            raise _Refused(401, "Unable to authenticate the client (Login failed - invalid user)")

    # -- queries ------------------------------------------------------------------------------

    @route("GET", ODATA + "/{entity}")
    def query(self, request: Request) -> Response:
        entity = request.params["entity"]
        if entity not in KEYS:
            return _odata_error(404, "COE_ENTITY_NOT_FOUND", f"Entity {entity} is not found")
        token = request.arg("$skiptoken")
        if token:
            with self._lock:
                snapshot = self._snapshots.get(token.rsplit(":", 1)[0])
            if snapshot is None or snapshot[0] != entity:
                return _odata_error(400, "COE_INVALID_SKIPTOKEN", "the skiptoken is unknown or expired")
            _, rows, select = snapshot
            snap_id, offset_text = token.rsplit(":", 1)
            offset = int(offset_text) if offset_text.isdigit() else 0
            size = int(request.arg("customPageSize") or self.page_size)
        else:
            try:
                matches = self._filter(entity, request.arg("$filter"))
            except ValueError as exc:
                return _odata_error(400, "COE_BAD_REQUEST", f"invalid $filter: {exc}")
            skip = int(request.arg("$skip") or 0)
            top = request.arg("$top")
            rows = matches[skip : skip + int(top)] if top else matches[skip:]
            select_text = request.arg("$select")
            select = [s.strip() for s in select_text.split(",") if s.strip()] if select_text else None
            snap_id, offset = secrets.token_hex(8), 0
            size = int(request.arg("customPageSize") or self.page_size)
            with self._lock:
                self._snapshots[snap_id] = (entity, rows, select)
                while len(self._snapshots) > MAX_SNAPSHOTS:  # the oldest snapshot expires
                    self._snapshots.pop(next(iter(self._snapshots)))
        size = max(1, min(size, self.page_size))  # customPageSize, capped by the server's page
        page = rows[offset : offset + size]
        body: dict[str, Any] = {"results": [self._shown(entity, r, select) for r in page]}
        if offset + size < len(rows):
            query = urllib.parse.urlencode(
                {"$format": "json", "customPageSize": size, "$skiptoken": f"{snap_id}:{offset + size}"}
            )
            body["__next"] = f"{self.url}{ODATA}/{entity}?{query}"
        return Response(200, {"d": body})

    def _shown(self, entity: str, record: Mapping[str, Any], select: list[str] | None) -> dict[str, Any]:
        predicate = ",".join(self._literal(name, record.get(name)) for name in KEYS[entity])
        shown: dict[str, Any] = {
            "__metadata": {"uri": f"{self.url}{ODATA}/{entity}({predicate})", "type": f"SFOData.{entity}"},
        }
        fields = select or list(record)
        shown.update({name: record.get(name) for name in fields})
        return shown

    @staticmethod
    def _literal(name: str, value: Any) -> str:
        if name in DATE_FIELDS:
            ms = ms_of(value) or 0
            moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
            return f"{name}=datetime'{moment.strftime('%Y-%m-%dT%H:%M:%S')}'"
        if name in INTEGER_FIELDS:
            return f"{name}={value}L"
        return f"{name}='{str(value).replace(chr(39), chr(39) * 2)}'"

    def _filter(self, entity: str, expression: str | None) -> list[dict[str, Any]]:
        with self._store_lock:
            rows = [dict(r) for r in self.store[entity].values()]
        if not expression:
            return rows
        clauses = [self._clause(c) for c in _split_and(expression)]
        return [r for r in rows if all(test(r) for test in clauses)]

    def _clause(self, text: str) -> Callable[[Mapping[str, Any]], bool]:
        found = _CLAUSE_RE.match(text)
        if found is None:
            raise ValueError("expected '<property> <op> <literal>' clauses joined by 'and'")
        name, op, literal = found.groups()
        if op == "in":
            values = [_parse_literal(v.strip()) for v in _LITERAL_RE.findall(literal) if v.strip()]
            return lambda r: _comparable(name, r.get(name)) in [_comparable(name, v) for v in values]
        wanted = _parse_literal(literal)
        ops: dict[str, Callable[[Any, Any], bool]] = {
            "eq": lambda a, b: a == b,
            "ne": lambda a, b: a != b,
            "gt": lambda a, b: a is not None and a > b,
            "ge": lambda a, b: a is not None and a >= b,
            "lt": lambda a, b: a is not None and a < b,
            "le": lambda a, b: a is not None and a <= b,
        }
        compare = ops[op]
        return lambda r: compare(_comparable(name, r.get(name)), _comparable(name, wanted))

    # -- upserts ------------------------------------------------------------------------------

    @route("POST", ODATA + "/upsert")
    def upsert(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            return _odata_error(400, "COE_BAD_REQUEST", "the body is not JSON")
        entries = body if isinstance(body, list) else [body]
        with self._lock:
            self.upsert_calls += 1
        rows = [self._upsert_one(entry, index) for index, entry in enumerate(entries)]
        return Response(200, {"d": rows})

    def _upsert_one(self, entry: Any, index: int) -> dict[str, Any]:
        entity, key_text = "", ""
        try:
            if not isinstance(entry, dict):
                raise _RowError("a record must be an object")
            entity, fields = self._entity_of(entry)
            key = self._key(entity, fields)
            key_text = f"{entity}/" + ",".join(f"{n}={fields.get(n)}" for n in KEYS[entity])
            with self._store_lock:
                edit = self._write(entity, key, fields)
        except _RowError as error:
            return {
                "key": key_text or None,
                "status": "ERROR",
                "editStatus": None,
                "message": f"{error.message} with the index {index}",
                "index": index,
                "httpCode": error.http_code,
                "inlineResults": None,
            }
        return {
            "key": key_text,
            "status": "OK",
            "editStatus": edit,
            "message": None,
            "index": index,
            "httpCode": 200,
            "inlineResults": None,
        }

    def _entity_of(self, entry: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        meta = entry.get("__metadata") or {}
        fields = {k: v for k, v in entry.items() if k != "__metadata"}
        kind = str(meta.get("type") or "")
        uri = str(meta.get("uri") or "")
        found = _PREDICATE_RE.match(uri.split("?", 1)[0]) if uri else None
        entity = kind.removeprefix("SFOData.") if kind else (found.group(1) if found else "")
        if not entity or entity not in KEYS:
            raise _RowError(f"Entity '{entity or '?'}' is not supported by upsert")
        if found and found.group(1) == entity and found.group(2):
            for part in _split_predicate(found.group(2)):
                name, _, literal = part.partition("=")
                fields.setdefault(name.strip(), _parse_literal(literal.strip()))
        for name in KEYS[entity]:
            if fields.get(name) in (None, ""):
                raise _RowError(f"{entity}: key property '{name}' is missing")
        for name in fields:
            if name in DATE_FIELDS and fields[name] is not None:
                ms = ms_of(fields[name])
                if ms is None:
                    raise _RowError(f"{entity}: '{name}' is not a valid date")
                fields[name] = odata_date(ms)
            if name in INTEGER_FIELDS and fields[name] is not None:
                try:
                    fields[name] = int(str(fields[name]).rstrip("Ll"))
                except ValueError:
                    raise _RowError(f"{entity}: '{name}' is not an integer") from None
        return entity, fields

    def _one(self, entity: str, **fields: Any) -> dict[str, Any] | None:
        for record in self.store[entity].values():
            if all(record.get(k) == v for k, v in fields.items()):
                return record
        return None

    def _write(self, entity: str, key: tuple[Any, ...], fields: dict[str, Any]) -> str:
        existing = self.store[entity].get(key)
        if existing is None:
            for name in self.required.get(entity, ()):
                if fields.get(name) in (None, ""):
                    raise _RowError(f"{entity}: '{name}' is a required field and cannot be empty")
        self._validate(entity, fields, existing)
        now = odata_date(int(self.clock() * 1000))
        if existing is None:
            record = {**fields, "createdDateTime": now, "lastModifiedDateTime": now}
            self.store[entity][key] = record
            self.created[entity] += 1
            edit = "INSERTED"
        else:
            existing.update(fields)
            existing["lastModifiedDateTime"] = now
            edit = "UPDATED"
        if entity == "EmpEmploymentTermination":
            employment = self._one(
                "EmpEmployment", personIdExternal=fields["personIdExternal"], userId=fields["userId"]
            )
            if employment is not None:
                employment["endDate"] = fields["endDate"]
                employment["lastModifiedDateTime"] = now
        return edit

    def _validate(self, entity: str, fields: Mapping[str, Any], existing: Mapping[str, Any] | None) -> None:
        person = fields.get("personIdExternal")
        if (
            entity in ("EmpEmployment", "PerPersonal", "PerEmail")
            and self._one("PerPerson", personIdExternal=person) is None
        ):
            raise _RowError(f"{entity}: PerPerson '{person}' does not exist")
        if entity == "EmpJob":
            if self._one("EmpEmployment", userId=fields["userId"]) is None:
                raise _RowError(f"EmpJob: no employment for userId '{fields['userId']}'")
            manager = fields.get("managerId")
            if manager not in (None, "", "NO_MANAGER") and self._one("EmpEmployment", userId=manager) is None:
                raise _RowError(f"EmpJob: managerId '{manager}' is not a valid user")
        if "eventReason" in fields and fields["eventReason"] not in self.event_reasons:
            raise _RowError(f"{entity}: '{fields['eventReason']}' is not a valid event reason")
        if entity == "PerEmail" and "emailAddress" in fields:
            address = str(fields["emailAddress"] or "")
            if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", address):
                raise _RowError(f"Invalid email address: {address}")
        if entity == "EmpEmploymentTermination":
            employment = self._one("EmpEmployment", personIdExternal=person, userId=fields["userId"])
            if employment is None:
                raise _RowError("EmpEmploymentTermination: the employment does not exist")
            start, end = ms_of(employment.get("startDate")), ms_of(fields.get("endDate"))
            if start is not None and end is not None and end < start:
                raise _RowError("EmpEmploymentTermination: the termination date is before the hire date")


def _split_and(expression: str) -> list[str]:
    """``a eq 'x and y' and b eq 1`` -> the two clauses (``and`` inside quotes is text)."""
    parts: list[str] = []
    current: list[str] = []
    quoted, i = False, 0
    while i < len(expression):
        char = expression[i]
        if char == "'":
            quoted = not quoted
        if not quoted and expression[i : i + 5].lower() == " and ":
            parts.append("".join(current))
            current, i = [], i + 5
            continue
        current.append(char)
        i += 1
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def _split_predicate(text: str) -> list[str]:
    """``seqNumber=1L,startDate=datetime'..',userId='u,1'`` -> its parts (commas in quotes kept)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == "'":
            quoted = not quoted
        if char == "," and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def _parse_literal(text: str) -> Any:
    """An OData literal: ``'text'``, ``datetime'...'`` (as ms), ``1``/``1L``, ``true``, ``null``."""
    value = text.strip()
    if value.startswith("datetime'") and value.endswith("'"):
        ms = ms_of(value)
        if ms is None:
            raise ValueError("bad datetime literal")
        return odata_date(ms)
    if len(value) >= 2 and value[0] == "'" and value[-1] == "'":
        return value[1:-1].replace("''", "'")
    if value in ("true", "false"):
        return value == "true"
    if value == "null":
        return None
    number = value.rstrip("LlMmDd")
    try:
        return int(number)
    except ValueError:
        pass
    try:
        return float(number)
    except ValueError:
        raise ValueError("unknown literal") from None


def _comparable(name: str, value: Any) -> Any:
    if name in DATE_FIELDS:
        return ms_of(value)
    return value
