"""Beisen iTalent (北森) recruiting source: an airbyte-cdk ``AbstractSource`` of ``HttpStream`` streams.

Streams: ``candidates`` (应聘者 profiles), ``applications`` (申请: phase and status), ``jobs``
and ``offers``. Each is read by Beisen's time-window batch queries: the range from the saved
cursor to the start of the sync is split into windows, each read batch by batch (``batchId``
-> ``nextBatchId`` until ``isLastBatch``), and the end of every finished window is
checkpointed (``{cursor_field: <ISO UTC>}``), so a sync killed midway resumes at the last
finished window and re-sends at most that window, as upserts.

What was checked before writing this, and where (searched 2026-11; nothing was run against
Beisen itself):

- Host ``https://openapi.italent.cn``; business calls carry ``Authorization: Bearer <token>``;
  the recruiting envelope is ``{"data", "code": 200, "message"}`` with an **integer** code (400
  for bad parameters, 417 for business errors, 500 internal). Source: the transcription of
  open.italent.cn in ``fxp/skillify`` ``skills/beisen/references/auth-and-conventions.md`` and
  ``recruiting.md``.
- Tokens, two flows seen in real client code: ``POST /token`` with JSON ``{grant_type:
  "client_credentials", app_key, app_secret}`` answering ``{access_token, token_type,
  expires_in: 7200, refresh_token}`` (vendors.md §4.4 [S]; the same call in a public Python
  iTalent client and an overtime CLI), and ``POST /OAuth/Token`` with the **form** ``app_id,
  tenant_id, secret, grant_type=client_credentials`` (the documented table; probes answered a
  bad tenant with HTTP 400 ``{"error": "invalid_tenantid"}``; a GET on ``/token`` was 404, so
  which flow a tenant has is configuration: ``auth_type``). ``expires_in`` is documented
  inconsistently (seconds vs. a timestamp-like string), so a token is kept at most 2 h and
  fetched again on a 401 either way.
- Gateway errors (probed): no ``Authorization`` -> 400 ``{"message": "Authorization header is
  empty"}``; an invalid or expired token -> 401 ``{"message": "un-authorized"}``; a caller IP
  outside the tenant's allow list -> 403 (documented). Limits are per tenant and endpoint,
  recruiting 20/s and 1000/min, plus a daily total; over them 429 (body undocumented;
  ``Retry-After`` assumed, honoured when present).
- ``Apply/GetApplyListByModifiedTime`` ``{startTime, endTime, batchId}`` -> ``data{total,
  nextBatchId, isLastBatch, items[{applyId, applicantId, jobId}]}``, 1000 per batch, then
  ``Apply/GetApplyListByApplyId`` ``{applyIds <= 100, fieldNames}`` (the documented example is
  flat ``{applyId, applicantId, jobId, processId, processPhaseId, processStatusId,
  fieldValues}``; the documented table is nested ``*Lite`` objects: both are read).
  ``ProcessPhaseChangeDate``/``ProcessStatusChangeDate`` are documented field names;
  ``ApplyDate``, ``ModifiedTime``, ``ProcessPhaseName``, ``ProcessStatusName``,
  ``ApplyChannel`` are assumed.
- ``Applicant/GetPersonProfileList`` ``{applicantIds <= 100}`` -> ``data[{applicantId,
  fieldValues[{name, value, text, downloadUrl}]}]``, and the documented ``-32767`` value of an
  unreadable enum field whose raw text is in ``Og<name>``. The profile field names (``Name``,
  ``Mobile``, ``IDNumber`` ...) depend on the tenant's resume template: assumed here.
  ``Applicant/GetApplicantIdsByDate`` ``{startTime, endTime, timeType, batchId}`` is used by a
  public client (``timeType`` 2: modified, assumed); its answer shape is assumed like the
  apply feed's.
- ``Job/GetJobList`` ``{startTime, endTime, batchId}`` -> items with ``jobId, jobIntId,
  jobCode, jobTitle, headCount, orgId, isDeleted, modifiedDate, createDate, salaryType,
  minSalary, maxSalary, duty, require`` (documented; deleted jobs are returned).
- ``RecruitOnBoarding/GetOfferInfos``: documented by name only; a time-window batch query with
  ``offerId, applyId, applicantId, jobId, status, salary, salaryType, entryDate,
  modifiedTime`` is assumed. Interviews (``Interview/GetInterviewsByDate``) are not read: no
  field list was found.
- Times are written without an offset (``2021-08-31T21:00:00``); China time is assumed.

Personal data: only ``candidates`` carries contact details and ID numbers; the other streams
carry ids (``candidate_remote_id``, ``job_remote_id``, ``application_remote_id``). Error
messages name the endpoint and Beisen's code, with personal-data shapes masked.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.streams.http.error_handlers import ErrorHandler, ErrorResolution, ResponseAction
from requests.auth import AuthBase

from hub import windowed_source as windowed
from hub.http_source import (
    connector_spec,
    http_refusal,
    json_or_none,
    masked_error,
    nullable,
    record_schema,
    ref,
    request_path,
    required_when,
    secret_property,
)

API = "RecruitV6/api/v1/"
CHINA = ZoneInfo("Asia/Shanghai")
DETAIL_BATCH = 100  # applyIds / applicantIds per detail call (documented maximum)
UNRECOGNISED = "-32767"
#: at most this long per token, whatever ``expires_in`` says (its unit is documented inconsistently)
MAX_TOKEN_LIFETIME = timedelta(hours=2)
APPLY_FIELDS = (
    "ApplyDate",
    "ModifiedTime",
    "ProcessPhaseName",
    "ProcessStatusName",
    "ProcessPhaseChangeDate",
    "ProcessStatusChangeDate",
    "ApplyChannel",
)
#: auth_type -> the credentials it needs (the first is the default)
AUTH_TYPES = {"app_key": ("app_key", "app_secret"), "tenant": ("tenant_id", "app_id", "secret")}

SPEC = connector_spec(
    "Beisen iTalent recruiting",
    {
        "base_url": {
            "type": "string",
            "default": "https://openapi.italent.cn",
            "description": "iTalent's OpenAPI host (a simulator's URL in tests).",
        },
        "auth_type": {
            "type": "string",
            "enum": list(AUTH_TYPES),
            "default": "app_key",
            "description": "app_key: POST /token with app_key/app_secret; tenant: POST /OAuth/Token with "
            "tenant_id/app_id/secret.",
        },
        "app_key": {"type": "string", "description": "The application's key (auth_type app_key)."},
        "app_secret": secret_property("The application's secret (auth_type app_key)."),
        "tenant_id": {"type": "integer", "description": "The tenant id (auth_type tenant)."},
        "app_id": {"type": "integer", "description": "The iTalent app id (auth_type tenant)."},
        "secret": secret_property("The AppSecret from the implementation consultant (auth_type tenant)."),
        **windowed.window_properties(
            lookback_note="late writes at Beisen",
            requests_per_minute=900,
            budget_note="Client-side budget (Beisen: 1000/min per tenant and endpoint, shared with "
            "every other integration of the tenant).",
        ),
    },
    rules=required_when("auth_type", "tenant", then=AUTH_TYPES["tenant"], otherwise=AUTH_TYPES["app_key"]),
)


def wall(moment: datetime) -> str:
    """An instant as Beisen's filters take it: China time, seconds, no offset."""
    return moment.astimezone(CHINA).strftime("%Y-%m-%dT%H:%M:%S")


# -- configuration -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BeisenSettings(windowed.WindowSettings, url="https://openapi.italent.cn", rate=900, auth=AUTH_TYPES):
    """Beisen's config: an app key and secret, or a tenant's app id and secret (either token endpoint)."""

    app_key: str
    app_secret: str
    tenant_id: str
    app_id: str
    secret: str

    @property
    def credential(self) -> str:
        """Beisen counts per tenant."""
        return f"{self.tenant_id}/{self.app_id}" if self.auth_type == "tenant" else self.app_key


# -- errors --------------------------------------------------------------------------------------


def _message(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    return str(body.get("message") or body.get("Message") or body.get("error") or "")


def _code(body: Any) -> str:
    """The envelope's integer ``code`` (``Code`` in some answers) as text; "" without one."""
    code = body.get("code", body.get("Code")) if isinstance(body, dict) else None
    return "" if code is None else str(code)


def checked_body(response: requests.Response) -> dict[str, Any]:
    """The JSON envelope, or a clear error for an HTTP failure or a ``code`` other than 200."""
    body = json_or_none(response)
    path = request_path(response)
    if not isinstance(body, dict):
        raise masked_error(f"Beisen answered {path} with HTTP {response.status_code} and no JSON object")
    if response.status_code >= 400:
        raise http_refusal("Beisen", response, f": {_message(body)}")
    code = _code(body)
    if code not in ("", "200"):
        failure = FailureType.config_error if code in ("400", "401", "403") else FailureType.system_error
        raise masked_error(f"Beisen answered {path} with error code {code}: {_message(body)}", failure)
    return body


class BeisenErrorHandler(windowed.VendorErrorHandler):
    """401 fetches a new token and retries once; an envelope ``code`` 500 is retried; a missing
    header (400) and an IP outside the allow list (403) are configuration errors."""

    def __init__(self, *, max_retries: int = 6, max_time: int = 900) -> None:
        super().__init__(
            "Beisen",
            rate_limit="Beisen's rate limit (HTTP 429; per tenant and endpoint, or the daily total)",
            max_retries=max_retries,
            max_time=max_time,
        )

    def interpret_answer(self, response: requests.Response) -> ErrorResolution:
        status = response.status_code
        if status == 401:
            return ErrorResolution(
                ResponseAction.REFRESH_TOKEN_THEN_RETRY,
                FailureType.transient_error,
                "Beisen no longer accepts the access token",
            )
        if status == 403:
            return ErrorResolution(
                ResponseAction.FAIL,
                FailureType.config_error,
                "Beisen refused the call (HTTP 403): is this host's IP in the tenant's trusted-IP list, "
                "and does the connector (连接器) include this API?",
            )
        if status < 400 and _code(json_or_none(response)) == "500":
            return ErrorResolution(
                ResponseAction.RETRY, FailureType.transient_error, "Beisen internal error (500)"
            )
        return super().interpret_answer(response)


# -- auth ----------------------------------------------------------------------------------------


class BeisenTokenAuthenticator(windowed.FetchedTokenAuthenticator):
    """iTalent access tokens, fetched with the client-credentials grant of either token endpoint.

    ``app_key`` mode posts JSON to ``/token``; ``tenant`` mode posts the form to ``/OAuth/Token``.
    """

    def __init__(self, settings: BeisenSettings, sleep: Callable[[float], None] = time.sleep) -> None:
        tenant = settings.auth_type == "tenant"
        super().__init__(
            "Beisen",
            timeout=settings.timeout,
            sleep=sleep,
            token_refresh_endpoint=settings.base_url + ("/OAuth/Token" if tenant else "/token"),
            client_id=settings.app_id if tenant else settings.app_key,
            client_secret=settings.secret if tenant else settings.app_secret,
        )
        self._settings = settings

    def request_token(self) -> requests.Response:
        s = self._settings
        endpoint = self.get_token_refresh_endpoint()
        if s.auth_type == "tenant":
            form = {
                "app_id": s.app_id,
                "tenant_id": s.tenant_id,
                "secret": s.secret,
                "grant_type": "client_credentials",
            }
            return requests.post(endpoint, data=form, timeout=s.timeout)
        body = {"grant_type": "client_credentials", "app_key": s.app_key, "app_secret": s.app_secret}
        return requests.post(endpoint, json=body, timeout=s.timeout)

    def token_of(self, response: requests.Response) -> tuple[str, timedelta]:
        body = json_or_none(response)
        token = body.get("access_token") if isinstance(body, dict) else None
        if response.status_code != 200 or not isinstance(token, str) or not token:
            fields = "/".join(AUTH_TYPES[self._settings.auth_type])
            raise masked_error(
                f"Beisen refused the token request (HTTP {response.status_code} {_message(body)}): check {fields}",
                FailureType.config_error,
            )
        try:
            seconds = float(body.get("expires_in") or 0)
        except (TypeError, ValueError):
            seconds = 0.0
        # seconds are documented, a timestamp-like value is in the demo: neither beyond 2 h here
        lifetime = MAX_TOKEN_LIFETIME if not 0 < seconds <= 86_400 else timedelta(seconds=seconds)
        return token, min(lifetime, MAX_TOKEN_LIFETIME)


# -- streams -------------------------------------------------------------------------------------


def _id_of(item: Any, key: str) -> str | None:
    """An id from a batch item, which may be the id itself or ``{key: id}``."""
    if isinstance(item, dict):
        return ref(item.get(key))
    return ref(item)


class BeisenStream(windowed.WindowedStream[BeisenSettings]):
    """A Beisen stream read in time windows by batch; the state is the end of the last window."""

    endpoint: ClassVar[str] = ""

    @property
    def url_base(self) -> str:
        return self._settings.base_url + "/"

    def path(self, **kwargs: Any) -> str:
        return API + self.endpoint

    def get_error_handler(self) -> ErrorHandler:
        return BeisenErrorHandler()

    def window_start(self, state: Mapping[str, Any] | None) -> datetime:
        return super().window_start(state).replace(microsecond=0)  # Beisen's filters are to the second

    def request_body_json(
        self,
        stream_state: Mapping[str, Any] | None,
        stream_slice: Mapping[str, Any] | None = None,
        next_page_token: Mapping[str, Any] | None = None,
    ) -> Mapping[str, Any] | None:
        assert stream_slice is not None
        lo, hi = self.bounds(stream_slice)
        return {
            **self.window_filters(),
            "startTime": wall(lo),
            "endTime": wall(hi),
            "batchId": (next_page_token or {}).get("batchId", ""),
        }

    def window_filters(self) -> Mapping[str, Any]:
        """Extra body fields of this stream's window query."""
        return {}

    def next_page_token(self, response: requests.Response) -> Mapping[str, Any] | None:
        body = json_or_none(response)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or data.get("isLastBatch") or not data.get("nextBatchId"):
            return None
        return {"batchId": data["nextBatchId"]}

    def parse_response(self, response: requests.Response, **kwargs: Any) -> Iterable[Mapping[str, Any]]:
        data = checked_body(response).get("data") or {}
        yield from self.records_of(list(data.get("items") or []))

    @abstractmethod
    def records_of(self, items: list[Any]) -> Iterable[Mapping[str, Any]]:
        """This stream's records for one batch of the window query."""

    def details(self, endpoint: str, ids_key: str, items: list[Any], **body: Any) -> Iterable[Any]:
        """The detail call for a batch's items, ``DETAIL_BATCH`` ids at a time, with the stream's
        retries, token refresh and budget."""
        ids = [i for i in (_id_of(item, str(self.primary_key)) for item in items) if i]
        for n in range(0, len(ids), DETAIL_BATCH):
            response = self.send_json(
                self.url_base + API + endpoint, {ids_key: ids[n : n + DETAIL_BATCH], **body}
            )
            yield from checked_body(response).get("data") or []


class Applications(BeisenStream):
    """Applications changed in each window, with their phase, status and dates."""

    primary_key = "applyId"
    cursor_field = "ModifiedTime"
    endpoint = "Apply/GetApplyListByModifiedTime"
    schema = record_schema(
        {
            "applyId": "string",
            "stage": {**nullable("object"), "description": "phaseId, phase, statusId, status"},
        },
        string=" ".join(
            (
                "applicantId jobId processId processPhaseId processStatusId candidate_remote_id job_remote_id",
                *APPLY_FIELDS,
            )
        ),
    )

    def records_of(self, items: list[Any]) -> Iterable[Mapping[str, Any]]:
        found = self.details("Apply/GetApplyListByApplyId", "applyIds", items, fieldNames=list(APPLY_FIELDS))
        for apply in found:
            yield self._flat(apply)

    @staticmethod
    def _flat(apply: Mapping[str, Any]) -> dict[str, Any]:
        """The documented example is flat, the documented table nests ``*Lite`` objects: read both."""
        applicant = apply.get("applicantLite") or {}
        job = apply.get("jobLite") or {}
        process = apply.get("processLite") or {}
        record = {
            k: v
            for k, v in apply.items()
            if k not in ("fieldValues", "applicantLite", "jobLite", "processLite")
        }
        record["applicantId"] = apply.get("applicantId") or applicant.get("applicantId")
        record["jobId"] = apply.get("jobId") or job.get("jobGuid") or job.get("jobId")
        record["processId"] = apply.get("processId") or process.get("id")
        values = apply.get("fieldValues") or {}
        if isinstance(values, list):  # the profile endpoints' [{name, value}] form
            values = {v.get("name"): v.get("text") or v.get("value") for v in values if isinstance(v, dict)}
        record.update({str(k): v for k, v in values.items()})
        # phase and status side by side, as the recruiter sees them (built by this connector)
        record["stage"] = {
            "phaseId": record.get("processPhaseId") or process.get("phaseId"),
            "phase": record.get("ProcessPhaseName"),
            "statusId": record.get("processStatusId") or process.get("statusId"),
            "status": record.get("ProcessStatusName"),
        }
        record["candidate_remote_id"] = ref(record["applicantId"])
        record["job_remote_id"] = ref(record["jobId"])
        return record


class Candidates(BeisenStream):
    """Applicants (应聘者) changed in each window: their profile fields, flattened."""

    primary_key = "applicantId"
    cursor_field = "ModifiedTime"
    endpoint = "Applicant/GetApplicantIdsByDate"
    schema = record_schema(
        {"applicantId": "string"},
        string="CandidateId Name Gender Email Mobile IDType IDNumber BirthDate LastCompany LastJobTitle "
        "GenderText WorkYears HighestEducation HighestEducationText School Skills ResumeUrl",
    )

    def window_filters(self) -> Mapping[str, Any]:
        return {"timeType": 2}  # by modification time (assumed code)

    def records_of(self, items: list[Any]) -> Iterable[Mapping[str, Any]]:
        for profile in self.details("Applicant/GetPersonProfileList", "applicantIds", items):
            yield self.flatten(profile)

    @staticmethod
    def flatten(profile: Mapping[str, Any]) -> dict[str, Any]:
        """``{name, value, text, downloadUrl}`` pairs as columns: ``Name`` (the raw value), ``NameText``
        (the label, when it differs) and ``NameUrl`` (a download link, valid 30 days).

        A value of ``-32767`` means Beisen's parser could not read that field; the raw text is in
        ``Og<name>`` (documented), which is used instead.
        """
        fields: dict[str, Mapping[str, Any]] = {
            str(f["name"]): f
            for f in profile.get("fieldValues") or []
            if isinstance(f, dict) and f.get("name")
        }
        record: dict[str, Any] = {"applicantId": profile.get("applicantId")}
        for name, item in fields.items():
            value, text = item.get("value"), item.get("text")
            original = fields.get(f"Og{name}")
            if str(value) == UNRECOGNISED and original is not None:
                value = text = original.get("text") or original.get("value")
            record[name] = value
            if text not in (None, "") and text != value:
                record[f"{name}Text"] = text
            if item.get("downloadUrl"):
                record[f"{name}Url"] = item["downloadUrl"]
        return record


class Jobs(BeisenStream):
    """Jobs modified in each window (deleted ones too: ``isDeleted`` 1)."""

    primary_key = "jobId"
    cursor_field = "modifiedDate"
    endpoint = "Job/GetJobList"
    schema = record_schema(
        {"jobId": "string"},
        integer="jobIntId headCount orgId isDeleted status category",
        string="jobCode jobTitle duty require createDate modifiedDate",
        number="minSalary maxSalary",
    )

    def records_of(self, items: list[Any]) -> Iterable[Mapping[str, Any]]:
        yield from (item for item in items if isinstance(item, dict))


class Offers(BeisenStream):
    """Offers modified in each window (入职管理 offers; field names assumed, see the module notes)."""

    primary_key = "offerId"
    cursor_field = "modifiedTime"
    endpoint = "RecruitOnBoarding/GetOfferInfos"
    schema = record_schema(
        {"offerId": "string"},
        string="applyId applicantId jobId status entryDate createTime sendTime modifiedTime "
        "application_remote_id candidate_remote_id job_remote_id",
        number="salary",
        integer="salaryType probationPeriod",
    )

    def records_of(self, items: list[Any]) -> Iterable[Mapping[str, Any]]:
        for item in items:
            if isinstance(item, dict):
                yield {
                    **item,
                    "application_remote_id": ref(item.get("applyId")),
                    "candidate_remote_id": ref(item.get("applicantId")),
                    "job_remote_id": ref(item.get("jobId")),
                }


class BeisenSource(windowed.WindowedSource[BeisenSettings]):
    """Beisen iTalent's recruiting OpenAPI as an Airbyte source; ``check`` reads the last day's jobs."""

    vendor = "Beisen"
    connection_spec = SPEC
    settings_type = BeisenSettings
    stream_types = (Candidates, Applications, Jobs, Offers)
    probe = Jobs

    def authenticator(self, settings: BeisenSettings) -> AuthBase:
        return BeisenTokenAuthenticator(settings)

    def until(self) -> datetime:
        return datetime.now(UTC).replace(microsecond=0)


STREAMS = BeisenSource.stream_types
