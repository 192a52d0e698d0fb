"""A typed SAP SuccessFactors Employee Central client (OData v2): token, queries, upserts.

Token lifecycle: a SAML 2.0 bearer assertion (:mod:`hub_successfactors.saml`, signed with the
OAuth client's private key) is exchanged at ``POST /oauth/token`` for a bearer token valid
``expires_in`` seconds; the token is cached until ``token_margin`` seconds before it expires
and fetched again (with a fresh assertion: an assertion is used once) when the API answers 401.

Calls: 429 is backed off (``Retry-After`` honoured, SAP's KBA 3159263 recommends waiting for it),
5xx and timeouts are retried with exponential backoff and jitter, ``max_attempts`` times in
all. ``POST /odata/v2/upsert`` is retried like a read: an upsert names each record by its
key (``PerPerson(personIdExternal)``, ``EmpJob(seqNumber, startDate, userId)``, ...), so
sending it again after a lost answer updates the record the first call wrote instead of
making a second one. Its answer is always HTTP 200 with one row per record
(``{"d": [{"key", "status": "OK"|"ERROR", "editStatus", "message", "index", "httpCode"}]}``):
every row is checked, and a row in error raises :class:`~hub_successfactors.errors.SuccessFactorsRowRefused`
with the row's message masked (it may quote the value it refused). Queries follow ``__next``
(server-side paging, ``$skiptoken``), only to the configured host.

What was checked, and where (searched 2026-11; nothing was run against SuccessFactors):

- upsert answer rows ``key`` (``EmployeeTime/externalCode=TRY1234``), ``status`` OK/ERROR,
  ``editStatus`` (``UPSERTED``; null on errors), ``message`` (``"... with the index 0"``),
  ``index``, ``httpCode`` (200, 500), ``inlineResults``; ``POST /odata/v2/upsert?$format=json``
  with ``__metadata.uri``/``type``; dates as ``/Date(ms)/``: ``yellowmessenger/documentation``
  ``docs/appConfiguration/successfactors.md`` [S];
- keys ``PerPerson(personIdExternal)``, ``EmpEmployment(personIdExternal, userId)``,
  ``EmpJob(seqNumber, startDate, userId)``, ``EmpEmploymentTermination(endDate,
  personIdExternal, userId)`` with ``eventReason``: a transcription of SAP's
  ``ECEmploymentInformation.json`` API spec [S]; ``PerPersonal(personIdExternal, startDate)``
  and ``PerEmail(emailType, personIdExternal)`` stay [M] (vendors.md §6.1);
- a hire as separate upserts User -> PerPerson -> EmpEmployment -> EmpJob (``seqNumber`` 1,
  ``eventReason``, ``company``, ``jobCode``), each with ``__metadata.uri`` = the entity name and
  the keys in the body, each row's ``status`` checked: a public UI5 hiring app [S];
- termination as an upsert of ``EmpEmploymentTermination`` (``personIdExternal, userId,
  endDate, eventReason``): IBM ``agent_ready_tools`` ``terminate_employee`` [S];
- ``{"d": {"results": [...], "__next": ".../EmpEmployment?$skiptoken=..."}}``, ``/Date(ms)/`` and
  ``/Date(ms+offset)/``: an EC API documentation digest [S]; server paging (``paging=snapshot``,
  ``customPageSize``), ``$filter`` on ``lastModifiedDateTime``: SAP KBA 2735876 [S];
- 429 with ``Retry-After``: SAP KBA 3159263 [S]. The OData error envelope
  ``{"error": {"code", "message": {"lang", "value"}}}`` is OData v2's [M for SuccessFactors].
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests

from hub.masking import mask_text
from hub.vendor_http import Answer, HttpSettings, VendorClient
from hub_successfactors.errors import (
    KINDS,
    SuccessFactorsError,
    SuccessFactorsRowFailed,
    SuccessFactorsRowRefused,
)
from hub_successfactors.saml import GRANT_TYPE, AssertionRequest, load_private_key, token_assertion

#: SuccessFactors' server-side page size limit (and default here).
MAX_PAGE_SIZE = 1000
_DATE_RE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
#: Longest excerpt of a vendor message kept in an error.
MESSAGE_CHARS = 160


def odata_date(value: date | datetime) -> str:
    """``/Date(ms)/``: a date at midnight UTC (how SuccessFactors sends dates), a datetime as it is."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return f"/Date({int(value.timestamp() * 1000)})/"


def parse_odata_date(value: Any) -> datetime | None:
    """``/Date(1704067200000)/`` (or ``/Date(ms+0800)/``) as a UTC datetime; None for anything else.

    The offset only says which zone the instant was shown in; the milliseconds are UTC.
    """
    if not isinstance(value, str):
        return None
    found = _DATE_RE.match(value.strip())
    if found is None:
        return None
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(found.group(1)))


def quote(value: str) -> str:
    """A string literal for ``$filter`` or a key predicate (``'O''Brien'``)."""
    return "'" + value.replace("'", "''") + "'"


def scrub(message: str, sent: Sequence[str]) -> str:
    """A vendor message without the values hub sent (a name, an address) and without PII shapes."""
    text = message
    for value in sorted({v for v in sent if len(v) >= 2}, key=len, reverse=True):
        text = text.replace(value, "***")
    return mask_text(text)[:MESSAGE_CHARS]


@dataclass(frozen=True, kw_only=True)
class SuccessFactorsSettings(HttpSettings):
    """The connector configuration, defaults filled in (the private key already resolved)."""

    base_url: str
    company_id: str
    client_id: str
    user_id: str
    private_key: str
    token_url: str = ""
    issuer: str = ""
    assertion_lifetime: float = 600.0
    page_size: int = MAX_PAGE_SIZE
    #: ``[hire]``: what a hire's EmpJob gets besides the case's data
    company: str = ""
    hire_event_reason: str = "HIRNEW"
    termination_event_reason: str = "TERNOSHOW"
    job_code: str = ""
    business_unit: str = ""
    location: str = ""
    email_type: str = "B"
    department_map: Mapping[str, str] = field(default_factory=dict)
    user_id_template: str = "{employee_no}"

    @property
    def token_endpoint(self) -> str:
        return self.token_url or self.base_url + "/oauth/token"

    @classmethod
    def parse(cls, config: Mapping[str, Any]) -> SuccessFactorsSettings:
        hire = config.get("hire") or {}
        page_size = int(config.get("page_size") or MAX_PAGE_SIZE)
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError("page_size must be 1 to 1000")
        return cls(
            base_url=str(config["base_url"]).rstrip("/"),
            company_id=str(config["company_id"]),
            client_id=str(config["client_id"]),
            user_id=str(config["user_id"]),
            private_key=str(config["private_key"]),
            token_url=str(config.get("token_url") or ""),
            issuer=str(config.get("issuer") or ""),
            assertion_lifetime=float(config.get("assertion_lifetime_seconds") or 600.0),
            page_size=page_size,
            company=str(hire.get("company") or ""),
            hire_event_reason=str(hire.get("event_reason") or "HIRNEW"),
            termination_event_reason=str(hire.get("termination_event_reason") or "TERNOSHOW"),
            job_code=str(hire.get("job_code") or ""),
            business_unit=str(hire.get("business_unit") or ""),
            location=str(hire.get("location") or ""),
            email_type=str(hire.get("email_type") or "B"),
            department_map={str(k): str(v) for k, v in (hire.get("department_map") or {}).items()},
            user_id_template=str(hire.get("user_id_template") or "{employee_no}"),
            **HttpSettings.options(config, backoff_base=1.0, token_margin=300.0),
        )


@dataclass(frozen=True)
class UpsertRow:
    """One row of an upsert's answer."""

    entity: str
    key: str
    status: str
    edit_status: str | None
    http_code: int | None
    index: int


@dataclass(frozen=True)
class UpsertEntry:
    """One record to upsert: its entity, its fields (keys included), dates already ``/Date(ms)/``."""

    entity: str
    fields: Mapping[str, Any]

    def payload(self) -> dict[str, Any]:
        return {"__metadata": {"uri": self.entity, "type": f"SFOData.{self.entity}"}, **self.fields}

    def texts(self) -> list[str]:
        """The string values sent (what a vendor message might quote back)."""
        return [str(v) for v in self.fields.values() if isinstance(v, str) and not v.startswith("/Date(")]


class SuccessFactorsClient(VendorClient[SuccessFactorsSettings]):
    """SuccessFactors' OData v2 API with the token lifecycle, retries and checked upserts."""

    errors = KINDS
    retry_http_429 = False  # 429 reaches the authorized call, which honours Retry-After
    throttle_hint = 300.0  # SAP's recommended wait when a 429 carries no Retry-After

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **kwargs: Any) -> SuccessFactorsClient:
        return cls(SuccessFactorsSettings.parse(config), **kwargs)

    # -- tokens -------------------------------------------------------------------------------

    def assertion_request(self) -> AssertionRequest:
        settings = self.settings
        return AssertionRequest(
            client_id=settings.client_id,
            user_id=settings.user_id,
            recipient=settings.token_endpoint,
            issuer=settings.issuer,
            lifetime=settings.assertion_lifetime,
        )

    def _fetch_token(self, credential: str) -> tuple[str, float]:
        """Sign a fresh assertion per attempt (a resent one would be a replay) and exchange it."""
        key = load_private_key(self.settings.private_key)
        for attempt in range(1, self.settings.max_attempts + 1):
            form = {
                "client_id": self.settings.client_id,
                "company_id": self.settings.company_id,
                "grant_type": GRANT_TYPE,
                "assertion": token_assertion(
                    key, self.assertion_request(), now=datetime.fromtimestamp(self._clock(), UTC)
                ),
            }
            try:
                response = self.session.post(
                    self.settings.token_endpoint, data=form, timeout=self.settings.timeout
                )
            except (requests.Timeout, requests.ConnectionError):
                self._pause(attempt, "oauth/token", "timeout")
                continue
            if response.status_code >= 500:
                self._pause(attempt, "oauth/token", f"HTTP {response.status_code}")
                continue
            try:
                data = response.json()
            except ValueError:
                data = {}
            if not isinstance(data, dict):
                data = {}
            if response.status_code != 200 or not data.get("access_token"):
                if response.status_code == 429:
                    raise KINDS.rate_limited(
                        "oauth/token", 429, "over the rate limit", retry_after=_retry_after(response)
                    )
                # SuccessFactors' errorMessage names the cause (invalid user, signature, company);
                # it quotes no personal data, but is masked and cut short like any vendor text
                message = str(data.get("errorMessage") or data.get("error_description") or "")
                reason = "the OAuth client was refused (client id, company id, API user or certificate)"
                raise KINDS.auth(
                    "oauth/token",
                    response.status_code,
                    f"{reason}: {mask_text(message)[:MESSAGE_CHARS]}" if message else reason,
                )
            return str(data["access_token"]), float(data.get("expires_in") or 3600)
        raise KINDS.unavailable("oauth/token", None, f"no token after {self.settings.max_attempts} attempts")

    # -- transport ----------------------------------------------------------------------------

    def _url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        return f"{self.settings.base_url}/odata/v2/{path_or_url.lstrip('/')}"

    def call(
        self,
        operation: str,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        """An authenticated call: the answer's JSON when 2xx, else a typed error."""
        url = self._url(path_or_url)

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
            if response.status_code < 300:
                return Answer(self._json(operation, response), ok=True)
            return Answer(
                {},
                code=response.status_code,
                message=_odata_message(response),
                throttled=response.status_code == 429,
                retry_after=_retry_after(response),
            )

        return self._authorized(operation, attempt, idempotent=idempotent)

    # -- queries ------------------------------------------------------------------------------

    def pages(
        self,
        entity: str,
        *,
        filter: str | None = None,
        select: Sequence[str] | None = None,
        params: Mapping[str, Any] | None = None,
        page_size: int | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Every page of ``entity`` matching ``filter``, following ``__next`` (server paging)."""
        query: dict[str, Any] = {
            "$format": "json",
            "paging": "snapshot",
            "customPageSize": page_size or self.settings.page_size,
            **(params or {}),
        }
        if filter:
            query["$filter"] = filter
        if select:
            query["$select"] = ",".join(select)
        next_url: str | None = entity
        next_params: Mapping[str, Any] | None = query
        while next_url:
            data = self.call(f"query {entity}", "GET", next_url, params=next_params)
            d = data.get("d")
            if isinstance(d, list):  # OData v2 without server paging: a bare list
                yield [r for r in d if isinstance(r, dict)]
                return
            if not isinstance(d, dict):
                raise KINDS.error(f"query {entity}", 200, "the answer has no d.results")
            results = d.get("results") or []
            yield [r for r in results if isinstance(r, dict)]
            following = d.get("__next")
            next_url, next_params = (
                (self._same_host(entity, str(following)), None) if following else (None, None)
            )

    def _same_host(self, entity: str, url: str) -> str:
        """``__next`` only to the configured API server: the bearer token goes with it."""
        if not url.startswith(("http://", "https://")):
            return self._url(url)
        mine, theirs = urlsplit(self.settings.base_url), urlsplit(url)
        if (mine.scheme, mine.netloc) != (theirs.scheme, theirs.netloc):
            raise KINDS.error(f"query {entity}", None, "__next points to another host; not followed")
        return url

    def query(self, entity: str, **kwargs: Any) -> list[dict[str, Any]]:
        """Every record of :meth:`pages`, as one list."""
        return [record for page in self.pages(entity, **kwargs) for record in page]

    def employment(self, person_id_external: str, user_id: str) -> dict[str, Any] | None:
        """The ``EmpEmployment`` of a person and user, or None."""
        found = self.query(
            "EmpEmployment",
            filter=f"personIdExternal eq {quote(person_id_external)} and userId eq {quote(user_id)}",
        )
        return found[0] if found else None

    # -- upserts ------------------------------------------------------------------------------

    def upsert(self, entries: Sequence[UpsertEntry], *, operation: str = "upsert") -> list[UpsertRow]:
        """Upsert ``entries`` in one call and check every row; raise on the first row in error.

        Rows are written in order and each on its own (a row whose parent failed fails too), so
        after an error some rows may be written: sending the same entries again converges,
        since each names its record by key.
        """
        if not entries:
            return []
        body = [entry.payload() for entry in entries]
        data = self.call(operation, "POST", "upsert", params={"$format": "json"}, body=body)
        rows = data.get("d")
        if not isinstance(rows, list) or len(rows) != len(entries):
            raise KINDS.error(operation, 200, "the upsert answer does not have one row per record")
        sent = [text for entry in entries for text in entry.texts()]
        out: list[UpsertRow] = []
        for position, (entry, row) in enumerate(zip(entries, rows, strict=True)):
            if not isinstance(row, dict):
                raise KINDS.error(operation, 200, "an upsert row is not an object")
            index = int(row["index"]) if isinstance(row.get("index"), int) else position
            code = row.get("httpCode")
            http_code = int(code) if isinstance(code, int | str) and str(code).isdigit() else None
            status = str(row.get("status") or "")
            if status != "OK":
                reason = scrub(str(row.get("message") or "no message"), sent) or "refused"
                refused = SuccessFactorsRowFailed if (http_code or 500) >= 500 else SuccessFactorsRowRefused
                raise refused(entry.entity, index, http_code, reason)
            edit = row.get("editStatus")
            out.append(
                UpsertRow(
                    entity=entry.entity,
                    key=str(row.get("key") or ""),
                    status=status,
                    edit_status=str(edit) if edit else None,
                    http_code=http_code,
                    index=index,
                )
            )
        return out

    def check(self) -> None:
        """Fetch a token and read one record (``hub connectors check``)."""
        next(self.pages("PerPerson", select=["personIdExternal"], page_size=1), None)


def _odata_message(response: requests.Response) -> str:
    """The OData error text (``error.message.value``), or the token endpoint's ``errorMessage``."""
    try:
        data = response.json()
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    error = data.get("error")
    if isinstance(error, dict):
        message = error.get("message")
        if isinstance(message, dict):
            return str(message.get("value") or "")
        return str(message or error.get("code") or "")
    return str(data.get("errorMessage") or "")


def _retry_after(response: requests.Response) -> float | None:
    header = response.headers.get("Retry-After")
    try:
        return max(float(header), 0.0) if header else None
    except ValueError:
        return None


__all__ = [
    "SuccessFactorsClient",
    "SuccessFactorsError",
    "SuccessFactorsSettings",
    "UpsertEntry",
    "UpsertRow",
    "odata_date",
    "parse_odata_date",
    "quote",
]
