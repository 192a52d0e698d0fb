"""Moka (MokaHR, 希望) ATS source: an airbyte-cdk ``AbstractSource`` of ``HttpStream`` streams.

Streams: ``candidates`` and ``applications`` (both read from Moka's application feed: an
application carries its candidate), ``jobs``, ``interviews``, ``offers`` and ``attachments``
(resumes and other files, as signed URLs). Every stream is incremental by a vendor time
filter: the range from the saved cursor to the start of the sync is read in windows, and the
state after a window (``{cursor_field: <end of window, ISO UTC>}``) is checkpointed, so a sync
killed midway resumes at the last finished window and re-sends nothing but that window (as
upserts, by primary key).

What was checked before writing this, and where (searched 2026-11; nothing was run against
Moka itself):

- Host ``https://api.mokahr.com/api-platform`` and the two auth modes: HTTP Basic with the API
  key as username and an empty password; OAuth2 client credentials ``POST
  /v1/auth/oauth2/getToken`` with the JSON body ``{clientID, clientSecret, grantType:
  "client_credentials"}`` (camel case, capital ``ID``) answering ``{"code": 0, "msg": "成功",
  "data": {"accessToken", "expiresIn", "tokenType": "Bearer"}}``; a 2 h token, the same token
  until 30 minutes before expiry, then a new one while the old one still works; ``110020
  unauthorized_client`` **with HTTP 200** on bad credentials. Sources: vendors.md §4.3 [V] and the
  transcription of mokahr.com/docs/api in ``fxp/skillify`` ``skills/moka/references/auth.md``
  (documented, plus credential-less probes that confirmed the 110020 answer).
- A missing, unknown or expired credential is answered **HTTP 500** ``{"code": -1, "success":
  false, "msg": "无法识别的认证信息"}`` (an unknown API key on v3 routes: ``系统中不存在该apiKey``), not
  401 (same source, probes #A1-#A3, #B1-#B6). So a 500 is inspected before it is retried: the
  first means "fetch a token and retry", the second is a configuration error.
- Rate limit 60 requests a minute unless an endpoint says otherwise (vendors.md [V]); the
  answer beyond it is not documented (a 429 with ``Retry-After`` is assumed and honoured).
- ``POST /v3/applications/list_by_condition``: windows ``updateAtStartTime`` /
  ``updateAtEndTime`` in ms, at most 3 months; ``limit`` at most 20; later pages send
  ``{"next": ...}`` alone; ``code`` 200; ``data.applicationList`` with ``applicationId``,
  ``candidateBaseInfo{candidateId, name, gender, contactInfo{email, phone}}``, ``job``,
  ``pipeline``, ``stage{stageId, name, stageType}``, ``archived``, ``sourceInfo``,
  ``checkinInfo``, times in ms (``skills/moka/references/candidates.md`` §3-4, documented).
  Assumed: the ID-number field name (``citizenId``, the vocabulary of
  ``list_by_contact_or_id``) and ``archiveReason{id, name, type}``.
- ``POST /v1/jobs/getJobs``: ``hireMode`` ``social``/``campus`` (a string here), ``limit``
  (default 30) / ``offset``, day-precision ``updatedFromAt`` / ``updatedEndAt``, answer ``{"code":
  0, "data": {"total", "jobs": [...]}}`` (``references/jobs.md`` §2). Assumed: ISO-8601
  ``updatedAt`` on each job and China-time days in the filter.
- ``GET /v1/interviews``: ``startDate``/``endDate`` or ``createStartDate``/``createEndDate``,
  whole days, at most 31; ``{"data": [...]}`` with Chinese ``status``/``type`` words and
  ``candidates[{..., applicationId}]`` (``references/interviews-offers.md`` §3). Interviews are
  read by creation date: a later change to an interview (cancelled) shows in a full refresh.
- ``POST /v3/getOfferInfos`` ``{orgId, applicationIds}``: ``code`` 0, ``salaryNumber`` **as a
  string**, ``salaryType`` 1 hourly / 2 daily / 3 monthly / 4 yearly, ms times (same file §9).
  Assumed: at most 100 ids per call, and that an offer's change shows in its application's
  ``updatedAt`` (offers are read for the applications that changed).
- ``POST /v3/attachments/get`` ``{applicationId}``: ``code`` 200, ``resumeUrl``,
  ``attachments4App[]`` / ``attachments4Ca[]`` of ``{id, name, size, createdAt, url, type}``;
  the URLs are signed and expire (``references/candidates.md`` §9).
- Not read: onboarding has no read endpoint beyond an application's ``checkinInfo`` (carried
  on ``applications``); webhook signing was not verified.

Personal data: ``candidates`` carries the contact details and ID number; ``applications``,
``interviews`` and ``offers`` carry ids only (cross references ``candidate_remote_id``,
``job_remote_id``, ``application_remote_id``), so each person's data arrives once. Error
messages name the endpoint and Moka's code, with any personal-data shape masked.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import orjson
import requests
from airbyte_cdk.models import FailureType, SyncMode
from airbyte_cdk.sources.streams.http.error_handlers import ErrorHandler, ErrorResolution, ResponseAction
from airbyte_cdk.sources.streams.http.requests_native_auth import BasicHttpAuthenticator
from requests.auth import AuthBase

from hub import windowed_source as windowed
from hub.http_source import (
    connector_spec,
    http_refusal,
    json_or_none,
    masked_error,
    record_schema,
    ref,
    request_path,
    required_when,
    secret_property,
)

PREFIX = "/api-platform/"
TOKEN_PATH = "v1/auth/oauth2/getToken"  # noqa: S105 - a URL path
CHINA = ZoneInfo("Asia/Shanghai")
#: Moka's gateway answers an unknown or expired credential with HTTP 500 and one of these
AUTH_REJECTED = "无法识别的认证信息"
UNKNOWN_KEY = "不存在该apiKey"
#: v3 update-time windows are at most 3 months; interview lists at most 31 whole days
MAX_APPLICATION_WINDOW = timedelta(days=90)
MAX_INTERVIEW_WINDOW = timedelta(days=30)
V3_PAGE = 20
OFFER_BATCH = 20
JOBS_PAGE = 30
#: auth_type -> the credentials it needs (the first is the default)
AUTH_TYPES = {"api_key": ("api_key",), "oauth2": ("client_id", "client_secret")}

SPEC = connector_spec(
    "Moka ATS",
    {
        "base_url": {
            "type": "string",
            "default": "https://api.mokahr.com",
            "description": "Moka's API host (https://hire-r1-api.mokahr.com abroad; a simulator's URL in tests).",
        },
        "auth_type": {
            "type": "string",
            "enum": list(AUTH_TYPES),
            "default": "api_key",
            "description": "api_key: HTTP Basic with the API key; oauth2: client-credentials access tokens.",
        },
        "api_key": secret_property("The API key (auth_type api_key)."),
        "client_id": {"type": "string", "description": "OAuth2 clientID (auth_type oauth2)."},
        "client_secret": secret_property("OAuth2 clientSecret (auth_type oauth2)."),
        "org_id": {"type": "string", "description": "The tenant's orgId; the offers stream needs it."},
        "hire_modes": {
            "type": "array",
            "items": {"type": "string", "enum": ["social", "campus"]},
            "default": ["social", "campus"],
            "description": "Hiring modes whose jobs are read (社招 social, 校招 campus).",
        },
        **windowed.window_properties(
            lookback_note="late writes at Moka",
            requests_per_minute=60,
            budget_note="Client-side request budget, shared by every sync of this key in the process.",
        ),
    },
    rules=required_when("auth_type", "oauth2", then=AUTH_TYPES["oauth2"], otherwise=AUTH_TYPES["api_key"]),
)


def millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def china_day(moment: datetime) -> date:
    return moment.astimezone(CHINA).date()


# -- configuration -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MokaSettings(windowed.WindowSettings, url="https://api.mokahr.com", rate=60, auth=AUTH_TYPES):
    """Moka's config: an API key or OAuth client, the tenant's ``orgId`` (offers), the hiring modes."""

    api_key: str
    client_id: str
    client_secret: str
    org_id: str
    hire_modes: tuple[str, ...]

    @classmethod
    def vendor_fields(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        modes = tuple(config.get("hire_modes") or ("social", "campus"))
        if not modes or any(m not in ("social", "campus") for m in modes):
            raise ValueError("hire_modes must list social and/or campus")
        return {"org_id": str(config.get("org_id") or ""), "hire_modes": modes}

    @property
    def credential(self) -> str:
        return self.api_key if self.auth_type == "api_key" else self.client_id

    @property
    def api_root(self) -> str:
        return self.base_url + PREFIX


#: one request budget per Moka credential in this process: the limit is Moka's, per tenant
shared_budget = windowed.shared_budget


# -- errors --------------------------------------------------------------------------------------


def _auth_problem(response: requests.Response) -> str | None:
    """``expired`` (fetch a token and retry), ``unknown_key`` (a config error) or None."""
    body = json_or_none(response)
    message = str(body.get("msg") or body.get("message") or "") if isinstance(body, dict) else ""
    if UNKNOWN_KEY in message:
        return "unknown_key"
    if AUTH_REJECTED in message or response.status_code in (401, 403):
        return "expired"
    return None


def checked_body(response: requests.Response, ok_codes: tuple[int, ...]) -> Any:
    """The JSON answer, or a clear error for an HTTP or envelope failure (``{code, msg}``)."""
    body = json_or_none(response)
    if body is None:
        raise masked_error(
            f"Moka answered {request_path(response)} with HTTP {response.status_code} and a body that is not JSON"
        )
    code = body.get("code") if isinstance(body, dict) else None
    message = str(body.get("msg") or body.get("message") or "") if isinstance(body, dict) else ""
    if response.status_code >= 400:
        raise http_refusal("Moka", response, f", code {code}: {message}")
    if isinstance(body, dict) and (
        (code is not None and code not in ok_codes) or body.get("success") is False
    ):
        raise masked_error(f"Moka answered {request_path(response)} with error code {code}: {message}")
    return body


class MokaErrorHandler(windowed.VendorErrorHandler):
    """A credential Moka does not recognise (HTTP 500 or 401 with ``无法识别的认证信息``) fetches a
    new token and retries once in OAuth mode, and is a configuration error with an API key."""

    def __init__(self, *, can_refresh: bool, max_retries: int = 6, max_time: int = 900) -> None:
        super().__init__(
            "Moka", rate_limit="Moka's rate limit (HTTP 429)", max_retries=max_retries, max_time=max_time
        )
        self.can_refresh = can_refresh

    def interpret_answer(self, response: requests.Response) -> ErrorResolution:
        problem = _auth_problem(response) if response.status_code >= 400 else None
        if problem == "unknown_key":
            return ErrorResolution(
                ResponseAction.FAIL, FailureType.config_error, "Moka does not know this API key"
            )
        if problem == "expired" and self.can_refresh:
            return ErrorResolution(
                ResponseAction.REFRESH_TOKEN_THEN_RETRY,
                FailureType.transient_error,
                "Moka no longer accepts the access token",
            )
        if problem == "expired":
            return ErrorResolution(
                ResponseAction.FAIL, FailureType.config_error, "Moka did not recognise the credentials"
            )
        return super().interpret_answer(response)


# -- auth ----------------------------------------------------------------------------------------


class MokaOAuth2Authenticator(windowed.FetchedTokenAuthenticator):
    """Moka's client-credentials tokens: a JSON body with ``clientID``, the answer in ``{code, data}``.

    Moka issues a new token only within the last 30 minutes of the old one's life.
    """

    def __init__(self, settings: MokaSettings, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(
            "Moka",
            timeout=settings.timeout,
            sleep=sleep,
            token_refresh_endpoint=settings.api_root + TOKEN_PATH,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            access_token_name="accessToken",  # noqa: S106 - a field name
            expires_in_name="expiresIn",
        )

    def request_token(self) -> requests.Response:
        payload = {
            "clientID": self.get_client_id(),
            "clientSecret": self.get_client_secret(),
            "grantType": "client_credentials",
        }
        return requests.post(self.get_token_refresh_endpoint(), json=payload, timeout=self._timeout)

    def token_of(self, response: requests.Response) -> tuple[str, timedelta]:
        body = json_or_none(response)
        if not isinstance(body, dict):
            raise masked_error(f"Moka's token endpoint answered HTTP {response.status_code} without JSON")
        code = body.get("code")
        if code != 0:  # 110020 unauthorized_client comes with HTTP 200
            raise masked_error(
                f"Moka refused the OAuth2 client credentials (code {code} {body.get('msg') or ''}): check "
                "client_id and client_secret",
                FailureType.config_error,
            )
        data = body.get("data") or {}
        token = data.get("accessToken")
        if not isinstance(token, str) or not token:
            raise masked_error("Moka's token answer has no accessToken")
        return token, timedelta(seconds=int(data.get("expiresIn") or 7200))


def authenticator_for(settings: MokaSettings) -> AuthBase:
    if settings.auth_type == "oauth2":
        return MokaOAuth2Authenticator(settings)
    return BasicHttpAuthenticator(username=settings.api_key, password="")


# -- streams -------------------------------------------------------------------------------------


class MokaStream(windowed.WindowedStream[MokaSettings]):
    """A Moka stream read in time windows; the state is the end of the last finished window."""

    max_window = MAX_APPLICATION_WINDOW
    #: answer codes meaning success for this endpoint
    ok_codes: ClassVar[tuple[int, ...]] = (0, 200)

    @property
    def url_base(self) -> str:
        return self._settings.api_root

    def get_error_handler(self) -> ErrorHandler:
        return MokaErrorHandler(can_refresh=self._settings.auth_type == "oauth2")

    def next_page_token(self, response: requests.Response) -> Mapping[str, Any] | None:
        return None

    def post(self, path: str, body: Mapping[str, Any], ok_codes: tuple[int, ...]) -> Any:
        """One more call inside a window (offers, attachments), with the stream's retries and budget."""
        return checked_body(self.send_json(self.url_base + path, body), ok_codes)


class ApplicationFeed(MokaStream):
    """Streams read from ``list_by_condition``: applications changed within each window."""

    cursor_field = "updatedAt"
    ok_codes = (200,)

    def path(self, **kwargs: Any) -> str:
        return "v3/applications/list_by_condition"

    def request_body_json(
        self,
        stream_state: Mapping[str, Any] | None,
        stream_slice: Mapping[str, Any] | None = None,
        next_page_token: Mapping[str, Any] | None = None,
    ) -> Mapping[str, Any] | None:
        if next_page_token:
            return {"next": next_page_token["next"]}  # documented: later pages send only this
        assert stream_slice is not None
        lo, hi = self.bounds(stream_slice)
        return {
            "updateAtStartTime": millis(lo),
            "updateAtEndTime": millis(hi) - 1,  # the filter includes its end
            "limit": V3_PAGE,
        }

    def next_page_token(self, response: requests.Response) -> Mapping[str, Any] | None:
        body = json_or_none(response)
        data = body.get("data") if isinstance(body, dict) else None
        token = data.get("next") if isinstance(data, dict) else None
        return {"next": token} if token else None

    def parse_response(self, response: requests.Response, **kwargs: Any) -> Iterable[Mapping[str, Any]]:
        body = checked_body(response, self.ok_codes)
        applications = (body.get("data") or {}).get("applicationList") or []
        yield from self.records_of(applications)

    @abstractmethod
    def records_of(self, applications: list[dict[str, Any]]) -> Iterable[Mapping[str, Any]]:
        """This stream's records for one page of applications."""


class Applications(ApplicationFeed):
    """Applications (申请): stage, archive reason, source; the candidate by id only."""

    primary_key = "applicationId"
    schema = record_schema(
        {"applicationId": "integer", "updatedAt": "integer"},
        integer="candidateId hireMode appliedAt createdAt",
        string="jobId candidate_remote_id job_remote_id",
        object="job pipeline stage archiveReason sourceInfo checkinInfo",
        boolean="archived",
    )

    def records_of(self, applications: list[dict[str, Any]]) -> Iterable[Mapping[str, Any]]:
        for application in applications:
            record = {
                k: v
                for k, v in application.items()
                if k not in ("candidateBaseInfo", "educationInfo", "experienceInfo")
            }
            candidate_id = (application.get("candidateBaseInfo") or {}).get("candidateId")
            job_id = (application.get("job") or {}).get("jobId")
            record.update(
                candidateId=candidate_id,
                jobId=job_id,
                candidate_remote_id=ref(candidate_id),
                job_remote_id=ref(job_id),
            )
            yield record


class Candidates(ApplicationFeed):
    """Candidates (候选人) as their latest application shows them: contacts, ID, resume data."""

    primary_key = "candidateId"
    schema = record_schema(
        {
            "candidateId": "integer",
            "updatedAt": "integer",
            "tags": {"type": ["null", "array"], "items": {"type": "string"}},
        },
        integer="applicationId gender certificateType academicDegree experienceYears",
        string="name birthday citizenId email phone lastCompany lastSpeciality sourceName",
        array="educationInfo experienceInfo",
    )

    def records_of(self, applications: list[dict[str, Any]]) -> Iterable[Mapping[str, Any]]:
        for application in applications:
            base = dict(application.get("candidateBaseInfo") or {})
            if base.get("candidateId") is None:
                continue
            contact = base.pop("contactInfo", None) or {}
            yield {
                **base,
                "email": contact.get("email"),
                "phone": contact.get("phone"),
                "applicationId": application.get("applicationId"),
                "updatedAt": application.get("updatedAt"),
                "educationInfo": application.get("educationInfo") or [],
                "experienceInfo": application.get("experienceInfo") or [],
                "sourceName": (application.get("sourceInfo") or {}).get("sourceName"),
            }


class Offers(ApplicationFeed):
    """Offers (``getOfferInfos``) of the applications that changed in each window."""

    primary_key = "id"
    schema = record_schema(
        {"id": "integer"},
        integer="applicationId salaryType createdAt sentAt finishedAt updatedAt",
        string="jobId salaryNumber checkinDate status application_remote_id job_remote_id candidate_remote_id",
    )

    def stream_slices(self, **kwargs: Any) -> Iterable[Mapping[str, Any] | None]:
        if not self._settings.org_id:
            raise masked_error(
                "the offers stream needs org_id (the tenant's orgId)", FailureType.config_error
            )
        return super().stream_slices(**kwargs)

    def records_of(self, applications: list[dict[str, Any]]) -> Iterable[Mapping[str, Any]]:
        candidates = {
            a["applicationId"]: (a.get("candidateBaseInfo") or {}).get("candidateId")
            for a in applications
            if a.get("applicationId") is not None
        }
        ids = list(candidates)
        for i in range(0, len(ids), OFFER_BATCH):
            body = self.post(
                "v3/getOfferInfos",
                {"orgId": self._settings.org_id, "applicationIds": ids[i : i + OFFER_BATCH]},
                (0,),
            )
            for offer in body.get("data") or []:
                yield {
                    **offer,
                    "application_remote_id": ref(offer.get("applicationId")),
                    "job_remote_id": ref(offer.get("jobId")),
                    "candidate_remote_id": ref(candidates.get(offer.get("applicationId"))),
                }


class Attachments(ApplicationFeed):
    """Files of the applications that changed (resumes first): names, sizes, signed URLs."""

    primary_key = "id"
    schema = record_schema(
        {"id": "integer"},
        integer="size createdAt applicationId",
        string="name url type owner candidate_remote_id application_remote_id",
    )

    def records_of(self, applications: list[dict[str, Any]]) -> Iterable[Mapping[str, Any]]:
        for application in applications:
            application_id = application.get("applicationId")
            candidate_id = (application.get("candidateBaseInfo") or {}).get("candidateId")
            body = self.post("v3/attachments/get", {"applicationId": application_id}, (200,))
            data = body.get("data") or {}
            seen: set[Any] = set()
            for owner, key in (("application", "attachments4App"), ("candidate", "attachments4Ca")):
                for item in data.get(key) or []:
                    if item.get("id") in seen:
                        continue
                    seen.add(item.get("id"))
                    yield {
                        **item,
                        "owner": owner,
                        "applicationId": application_id,
                        "candidate_remote_id": ref(candidate_id),
                        "application_remote_id": ref(application_id),
                    }


class Jobs(MokaStream):
    """Jobs (职位) of each hiring mode, by update day; records outside the window are dropped."""

    primary_key = "id"
    cursor_field = "updatedAt"
    ok_codes = (0,)
    schema = record_schema(
        {"id": "string", "updatedAt": "string"},
        string="mjCode title status commitment jobDescription createdAt",
        integer="hireMode number",
        object="department",
        array="locations",
        number="minSalary maxSalary",
    )

    def path(self, **kwargs: Any) -> str:
        return "v1/jobs/getJobs"

    def read_window(
        self, sync_mode: SyncMode, window: Mapping[str, Any], stream_state: Mapping[str, Any] | None
    ) -> Iterable[Mapping[str, Any]]:
        for mode in self._settings.hire_modes:
            yield from super().read_window(sync_mode, {**window, "hireMode": mode}, stream_state)

    def request_body_json(
        self,
        stream_state: Mapping[str, Any] | None,
        stream_slice: Mapping[str, Any] | None = None,
        next_page_token: Mapping[str, Any] | None = None,
    ) -> Mapping[str, Any] | None:
        assert stream_slice is not None
        lo, hi = self.bounds(stream_slice)
        return {
            "hireMode": stream_slice["hireMode"],
            "limit": JOBS_PAGE,
            "offset": (next_page_token or {}).get("offset", 0),
            "updatedFromAt": china_day(lo).isoformat(),
            "updatedEndAt": china_day(hi - timedelta(milliseconds=1)).isoformat(),
        }

    def next_page_token(self, response: requests.Response) -> Mapping[str, Any] | None:
        body = json_or_none(response)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or not data.get("jobs"):
            return None
        body_sent = response.request.body
        sent = orjson.loads(body_sent if isinstance(body_sent, bytes | str) else b"{}")
        offset = int(sent.get("offset", 0)) + len(data["jobs"])
        return {"offset": offset} if offset < int(data.get("total") or 0) else None

    def parse_response(
        self, response: requests.Response, stream_slice: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> Iterable[Mapping[str, Any]]:
        assert stream_slice is not None
        body = checked_body(response, self.ok_codes)
        lo, hi = self.bounds(stream_slice)
        for job in (body.get("data") or {}).get("jobs") or []:
            updated = job.get("updatedAt")
            if updated and lo <= windowed.parse_utc(str(updated)) < hi:  # the filter is by whole day
                yield job


class Interviews(MokaStream):
    """Interviews by creation day, one record per interview and application (group interviews split)."""

    primary_key = ["id", "applicationId"]
    cursor_field = "createdAt"
    http_method = "GET"
    max_window = MAX_INTERVIEW_WINDOW
    schema = record_schema(
        {
            "id": "string",
            "applicationId": "integer",
            "createdAt": "string",
            "interviewerEmails": {"type": ["null", "array"], "items": {"type": "string"}},
        },
        string="groupId startTime type status candidateStatus jobTitle stageName address roomName hrEmail "
        "application_remote_id",
        integer="duration",
        array="jobs",
    )

    def path(self, **kwargs: Any) -> str:
        return "v1/interviews"

    def request_params(
        self,
        stream_state: Mapping[str, Any] | None,
        stream_slice: Mapping[str, Any] | None = None,
        next_page_token: Mapping[str, Any] | None = None,
    ) -> MutableMapping[str, Any]:
        assert stream_slice is not None
        lo, hi = self.bounds(stream_slice)
        return {
            "createStartDate": f"{china_day(lo).isoformat()}T00:00:00+08:00",
            "createEndDate": f"{china_day(hi - timedelta(milliseconds=1)).isoformat()}T00:00:00+08:00",
        }

    def parse_response(
        self, response: requests.Response, stream_slice: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> Iterable[Mapping[str, Any]]:
        assert stream_slice is not None
        body = checked_body(response, self.ok_codes)
        lo, hi = self.bounds(stream_slice)
        for interview in body.get("data") or []:
            created = interview.get("createdAt")
            if not created or not lo <= windowed.parse_utc(str(created)) < hi:
                continue
            common = {
                k: v
                for k, v in interview.items()
                if k not in ("candidates", "hr", "interviewers", "theme")  # names, phones: not here
            }
            common["hrEmail"] = (interview.get("hr") or {}).get("email")
            common["interviewerEmails"] = [
                i.get("email") for i in interview.get("interviewers") or [] if i.get("email")
            ]
            for candidate in interview.get("candidates") or []:
                application_id = candidate.get("applicationId")
                if application_id is None:
                    continue
                yield {
                    **common,
                    "applicationId": application_id,
                    "groupId": candidate.get("groupId"),
                    "candidateStatus": candidate.get("status"),
                    "application_remote_id": ref(application_id),
                }


class MokaSource(windowed.WindowedSource[MokaSettings]):
    """Moka's ATS OpenAPI as an Airbyte source; ``check`` reads the last day's applications."""

    vendor = "Moka"
    connection_spec = SPEC
    settings_type = MokaSettings
    stream_types = (Candidates, Applications, Jobs, Interviews, Offers, Attachments)
    probe = Applications

    def authenticator(self, settings: MokaSettings) -> AuthBase:
        return authenticator_for(settings)


STREAMS = MokaSource.stream_types
