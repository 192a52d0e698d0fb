"""A simulator of Beisen iTalent's recruiting OpenAPI (北森, vendors.md §4.4), on generated data.

What it reproduces (sources and what is assumed: see ``hub_beisen.source``): both token
endpoints seen in client code, ``POST /token`` with JSON ``{grant_type: "client_credentials",
app_key, app_secret}`` answering ``{access_token, token_type: "bearer", expires_in: 7200,
refresh_token}`` and ``POST /OAuth/Token`` with the form ``app_id, tenant_id, secret,
grant_type`` (a bad tenant: HTTP 400 ``{"error": "invalid_tenantid"}``); the gateway's answers
to a business call without ``Authorization`` (400 ``{"message": "Authorization header is
empty"}``) and with an unknown or expired token (401 ``{"message": "un-authorized"}``); the
recruiting envelope ``{"data": ..., "code": 200, "message": ...}`` with an integer ``code``
(400 for bad parameters); batch paging by ``batchId`` -> ``nextBatchId`` until
``isLastBatch``; 1000 requests a minute per tenant (recruiting endpoints), 429 with
``Retry-After`` beyond it.

Endpoints under ``/RecruitV6/api/v1/``: ``Apply/GetApplyListByModifiedTime`` (ids of the
applications changed in ``[startTime, endTime)``), ``Apply/GetApplyListByApplyId`` (at most 100;
phase, status and requested ``fieldValues``), ``Applicant/GetApplicantIdsByDate`` (applicants
changed in a window), ``Applicant/GetPersonProfileList`` (at most 100; ``fieldValues`` as
``[{name, value, text, downloadUrl}]``, one applicant with the documented ``-32767`` + ``Og*``
quirk), ``Job/GetJobList`` and ``RecruitOnBoarding/GetOfferInfos``. Times are China wall-clock
text without an offset (``2021-08-31T21:00:00``). People come from :mod:`hub.sandbox.people`.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from hub.sandbox.base import Request, Response, route
from hub.sandbox.people import DEPARTMENTS, TITLES, Person, people
from hub.sandbox.recruiting import RecruitingSimulator, assigned_mobile, json_body, uuid_from

API = "/RecruitV6/api/v1"
CHINA = ZoneInfo("Asia/Shanghai")
UNRECOGNISED = "-32767"  # documented: the resume parser could not read a standard field
PHASES = (
    ("初筛", ("待筛选", "筛选通过", "淘汰")),
    ("面试", ("待面试", "面试通过", "淘汰")),
    ("Offer", ("待发送", "已发送")),
    ("待入职", ("待入职", "已入职")),
)
OFFER_STATUS = ("待审批", "已发送", "已接受", "已拒绝")
CHANNELS = ("BOSS直聘", "猎聘", "内部推荐", "官网")
DEGREES = (("4", "大专"), ("5", "本科"), ("6", "硕士"))


def wall(ts: float) -> str:
    """An instant as Beisen writes it: China wall-clock time, seconds, no offset."""
    return datetime.fromtimestamp(ts, CHINA).strftime("%Y-%m-%dT%H:%M:%S")


def _parse_wall(text: Any) -> float:
    value = datetime.fromisoformat(str(text))
    if value.tzinfo is None:
        value = value.replace(tzinfo=CHINA)
    return value.timestamp()


def _envelope(data: Any, code: int = 200, message: str = "") -> Response:
    return Response(200, {"data": data, "code": code, "message": message})


class Modified(Protocol):
    """A record the window queries select: by modification time, then id."""

    id: str
    modified: float


M = TypeVar("M", bound=Modified)


@dataclass
class BeisenJob:
    id: str
    int_id: int
    code: str
    title: str
    head_count: int
    org_id: int
    category: int  # 1 social, 2 campus
    min_salary: int
    max_salary: int
    skills: list[str]
    created: float
    modified: float
    status: int = 1  # 1 recruiting, 2 paused, 3 closed
    deleted: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "jobId": self.id,
            "jobIntId": self.int_id,
            "jobCode": self.code,
            "jobTitle": self.title,
            "headCount": self.head_count,
            "orgId": self.org_id,
            "isDeleted": self.deleted,
            "status": self.status,
            "kind": 1,
            "category": self.category,
            "jobType": [self.int_id % 7 + 1],
            "locId": 110100,
            "salaryType": 1,
            "minSalary": self.min_salary,
            "maxSalary": self.max_salary,
            "duty": f"负责{self.title}相关工作。",
            "require": "、".join(self.skills),
            "createDate": wall(self.created),
            "modifiedDate": wall(self.modified),
        }


@dataclass
class BeisenApplicant:
    id: str
    candidate_id: str
    person: Person
    modified: float
    unreadable_gender: bool = False

    def profile(self, resume_url: str) -> list[dict[str, Any]]:
        """``fieldValues`` as ``GetPersonProfileList`` answers them: name, raw value, text, link."""
        p = self.person
        gender_value, gender_text = ("1", "男") if int(p.id_number[16]) % 2 else ("2", "女")
        degree = DEGREES[p.index % len(DEGREES)]
        fields = [
            {"name": "CandidateId", "value": self.candidate_id, "text": self.candidate_id},
            {"name": "Name", "value": p.name, "text": p.name},
            {"name": "Gender", "value": gender_value, "text": gender_text},
            {"name": "Email", "value": p.email, "text": p.email},
            {"name": "Mobile", "value": p.phone, "text": p.phone},
            {"name": "IDType", "value": "1", "text": "身份证"},
            {"name": "IDNumber", "value": p.id_number, "text": p.id_number},
            {"name": "BirthDate", "value": f"{p.id_number[6:10]}-{p.id_number[10:12]}-{p.id_number[12:14]}"},
            {"name": "LastCompany", "value": p.company, "text": p.company},
            {"name": "LastJobTitle", "value": TITLES[p.index % len(TITLES)][0]},
            {"name": "WorkYears", "value": str(p.years_experience), "text": f"{p.years_experience}年"},
            {"name": "HighestEducation", "value": degree[0], "text": degree[1]},
            {"name": "School", "value": p.school, "text": p.school},
            {"name": "Skills", "value": ",".join(p.skills), "text": "、".join(p.skills)},
            {"name": "SelfEvaluation", "value": p.resume_text()},
            {"name": "Resume", "value": f"resume_{self.candidate_id}.pdf", "downloadUrl": resume_url},
        ]
        if self.unreadable_gender:  # documented quirk: an unreadable enum is -32767, the raw text in Og*
            fields[2] = {"name": "Gender", "value": UNRECOGNISED, "text": ""}
            fields.append({"name": "OgGender", "value": gender_text, "text": gender_text})
        return fields


@dataclass
class BeisenApply:
    id: str
    applicant: BeisenApplicant
    job: BeisenJob
    process_id: str
    phase: int
    status: int
    channel: str
    applied: float
    modified: float

    def as_json(self, field_names: list[str]) -> dict[str, Any]:
        phase_name, statuses = PHASES[self.phase]
        known = {
            "ApplyDate": wall(self.applied),
            "ModifiedTime": wall(self.modified),
            "ProcessPhaseName": phase_name,
            "ProcessStatusName": statuses[self.status],
            "ProcessPhaseChangeDate": wall(self.modified),
            "ProcessStatusChangeDate": wall(self.modified),
            "ApplyChannel": self.channel,
        }
        return {
            "applyId": self.id,
            "applicantId": self.applicant.id,
            "jobId": self.job.id,
            "processId": self.process_id,
            "processPhaseId": str(uuid.uuid5(uuid.NAMESPACE_OID, f"phase:{self.phase}")),
            "processStatusId": str(uuid.uuid5(uuid.NAMESPACE_OID, f"status:{self.phase}:{self.status}")),
            "fieldValues": {name: known[name] for name in field_names if name in known},
        }


@dataclass
class BeisenOffer:
    id: str
    apply: BeisenApply
    status: str
    salary: int
    salary_type: int  # 1 monthly, 2 yearly (assumed codes)
    entry_date: str
    created: float
    sent: float | None
    modified: float

    def as_json(self) -> dict[str, Any]:
        return {
            "offerId": self.id,
            "applyId": self.apply.id,
            "applicantId": self.apply.applicant.id,
            "jobId": self.apply.job.id,
            "status": self.status,
            "salary": self.salary,
            "salaryType": self.salary_type,
            "probationPeriod": 3,
            "entryDate": self.entry_date,
            "orgId": self.apply.job.org_id,
            "createTime": wall(self.created),
            "sendTime": wall(self.sent) if self.sent else None,
            "modifiedTime": wall(self.modified),
        }


class BeisenSimulator(RecruitingSimulator):
    """Beisen iTalent's recruiting OpenAPI on loopback, seeded with ``count`` applicants.

    Tokens come from ``app_key``/``app_secret`` (``POST /token``) or ``tenant_id``/``app_id``/
    ``secret`` (``POST /OAuth/Token``). ``batch_size`` is Beisen's 1000 per batch unless a test
    wants more pages. Other keywords (``latency``, ``rate_limit``, ``faults``, ...) are
    :class:`~hub.sandbox.recruiting.RecruitingSimulator`'s.
    """

    vendor = "beisen"
    public_paths = ("/token", "/OAuth/Token", "/sim-dfs/")
    #: recruiting endpoints: 20/s and 1000/min per tenant
    vendor_rate_limit = (1000, 60.0)

    def __init__(
        self,
        *,
        count: int = 60,
        seed: int = 1,
        app_key: str = "sim-beisen-app-key",
        app_secret: str = "sim-beisen-app-secret",  # noqa: S107 - a simulator credential
        tenant_id: int = 100_000,
        app_id: int = 909,
        batch_size: int = 1000,
        history_days: int = 30,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.app_key, self.app_secret = app_key, app_secret
        self.tenant_id, self.app_id = tenant_id, app_id
        self.batch_size = batch_size
        self._refresh_tokens: dict[str, str] = {}
        self._seed(count, seed, history_days)

    # -- generated data ----------------------------------------------------------------------

    def _seed(self, count: int, seed: int, history_days: int) -> None:
        rng = random.Random(seed)
        now = self.clock()
        first, last = now - history_days * 86_400, now - 7_200
        root_org = 900_000_000 + self.tenant_id
        self.jobs = [
            BeisenJob(
                id=uuid_from(rng),
                int_id=7000 + i,
                code=f"J{2024000 + i}",
                title=title,
                head_count=rng.randint(0, 4),
                org_id=root_org + 1 + i % len(DEPARTMENTS),
                category=1 if i < len(TITLES) else 2,
                min_salary=rng.choice((8000, 12000, 18000)),
                max_salary=rng.choice((25000, 30000, 40000)),
                skills=list(skills),
                created=first - rng.randrange(30 * 86_400),
                modified=first + rng.uniform(0, last - first),
            )
            for i, (title, skills) in enumerate(TITLES * 2)
        ]
        self.applicants: list[BeisenApplicant] = []
        self.applies: list[BeisenApply] = []
        self.offers: list[BeisenOffer] = []
        process_id = uuid_from(rng)
        for person in people(count, seed):
            person.phone = assigned_mobile(person.phone)
            applicant = BeisenApplicant(
                id=uuid_from(rng),
                candidate_id=f"C{206_000 + person.index:08d}",
                person=person,
                modified=first + rng.uniform(0, last - first),
                unreadable_gender=person.index == 3,
            )
            self.applicants.append(applicant)
            for job in [rng.choice(self.jobs)] + ([rng.choice(self.jobs)] if rng.random() < 0.2 else []):
                applied = first + rng.uniform(0, last - first - 3600)
                phase = rng.randrange(len(PHASES))
                apply = BeisenApply(
                    id=uuid_from(rng),
                    applicant=applicant,
                    job=job,
                    process_id=process_id,
                    phase=phase,
                    status=rng.randrange(len(PHASES[phase][1])),
                    channel=rng.choice(CHANNELS),
                    applied=applied,
                    modified=applied + rng.uniform(0, min(3 * 86_400, last - applied)),
                )
                self.applies.append(apply)
                if phase >= 2:
                    self._add_offer(apply, rng)
        self._applicants = {a.id: a for a in self.applicants}
        self._applies = {a.id: a for a in self.applies}
        self._jobs = {j.id: j for j in self.jobs}
        self._offers = {o.id: o for o in self.offers}

    def _add_offer(self, apply: BeisenApply, rng: random.Random) -> None:
        person = apply.applicant.person
        yearly = rng.random() < 0.25
        monthly = apply.job.min_salary + 1000 * min(person.years_experience, 10)
        created = apply.modified - rng.uniform(0, 86_400)
        status = "已接受" if apply.phase == 3 else rng.choice(OFFER_STATUS[:2])
        entry = datetime.fromtimestamp(apply.modified, CHINA).date() + timedelta(days=21)
        self.offers.append(
            BeisenOffer(
                id=uuid_from(rng),
                apply=apply,
                status=status,
                salary=monthly * 13 if yearly else monthly,
                salary_type=2 if yearly else 1,
                entry_date=entry.isoformat(),
                created=created,
                sent=created + 600 if status != "待审批" else None,
                modified=apply.modified,
            )
        )

    @classmethod
    def for_sandbox(cls, *, port: int, seed: int, size: int) -> BeisenSimulator:
        return cls(port=port, seed=seed, count=size)

    # -- test helpers ------------------------------------------------------------------------

    def _stamp(self) -> float:
        """Now, to the second (Beisen's precision); seeded changes are at least two hours older."""
        return float(int(self.clock()))

    def touch_applicants(self, *applicant_ids: str, company: str = "新公司科技") -> list[str]:
        """Applicants updated their resume (a new employer), now."""
        with self._lock:
            stamp = self._stamp()
            for applicant_id in applicant_ids:
                applicant = self._applicants[applicant_id]
                applicant.person.company, applicant.modified = company, stamp
            return [wall(stamp)] * len(applicant_ids)

    def touch_applies(self, *apply_ids: str) -> None:
        """Applications moved one phase on, now."""
        with self._lock:
            stamp = self._stamp()
            for apply_id in apply_ids:
                apply = self._applies[apply_id]
                apply.phase, apply.status, apply.modified = min(apply.phase + 1, len(PHASES) - 1), 0, stamp

    def touch_jobs(self, *job_ids: str) -> None:
        """Jobs closed, now."""
        with self._lock:
            stamp = self._stamp()
            for job_id in job_ids:
                job = self._jobs[job_id]
                job.status, job.modified = 3, stamp

    def touch_offers(self, *offer_ids: str, status: str = "已接受") -> None:
        """Candidates answered their offers, now."""
        with self._lock:
            stamp = self._stamp()
            for offer_id in offer_ids:
                offer = self._offers[offer_id]
                offer.status, offer.modified = status, stamp

    # -- auth --------------------------------------------------------------------------------

    @route("POST", "/token")
    def token(self, request: Request) -> Response:
        """The app-key token endpoint: JSON in, OAuth-style JSON out."""
        body = json_body(request)
        body = body if isinstance(body, dict) else {}
        if body.get("grant_type") == "refresh_token":
            with self._lock:
                known = self._refresh_tokens.pop(str(body.get("refresh_token")), None)
            if known is None:
                return Response(400, {"error": "invalid_grant"})
        elif body.get("grant_type") != "client_credentials":
            return Response(400, {"error": "unsupported_grant_type"})
        elif body.get("app_key") != self.app_key or body.get("app_secret") != self.app_secret:
            return Response(400, {"error": "invalid_client"})
        token, ttl = self.issue_token()
        refresh = f"sim-beisen-refresh-{uuid.uuid4().hex[:16]}"
        with self._lock:
            self._refresh_tokens[refresh] = token
        return Response(
            200,
            {"access_token": token, "token_type": "bearer", "expires_in": int(ttl), "refresh_token": refresh},
        )

    @route("POST", "/OAuth/Token")
    def oauth_token(self, request: Request) -> Response:
        """The tenant token endpoint: a form with ``app_id, tenant_id, secret, grant_type``."""
        form = request.form()
        if form.get("grant_type") != "client_credentials":
            return Response(400, {"error": "unsupported_grant_type"})
        if form.get("tenant_id") != str(self.tenant_id):
            return Response(400, {"error": "invalid_tenantid"})
        if form.get("app_id") != str(self.app_id) or form.get("secret") != self.app_secret:
            return Response(400, {"error": "invalid_client"})
        token, ttl = self.issue_token()
        return Response(
            200,
            {"access_token": token, "expires_in": int(ttl), "tenant_id": str(self.tenant_id), "user_id": "0"},
        )

    def authenticate(self, request: Request) -> Response | None:
        if not request.headers.get("authorization"):
            return Response(400, {"message": "Authorization header is empty"})
        token = self.bearer(request)
        self.count_authenticated()
        if token is not None and self.token_valid(token):
            return None
        return Response(401, {"message": "un-authorized"})

    def throttled(self, retry_after: float) -> Response:
        seconds = max(1, int(retry_after + 0.999))
        return Response(429, {"message": "超过接口限频次数"}, {"Retry-After": str(seconds)})

    def server_error(self, status: int) -> Response:
        return Response(status, {"data": None, "code": 500, "message": "内部服务器异常"})

    # -- helpers -------------------------------------------------------------------------------

    def _window(self, body: Any) -> tuple[float, float] | Response:
        if not isinstance(body, dict) or not body.get("startTime") or not body.get("endTime"):
            return _envelope(None, 400, "startTime、endTime 不能为空")
        try:
            lo, hi = _parse_wall(body["startTime"]), _parse_wall(body["endTime"])
        except ValueError:
            return _envelope(None, 400, "时间格式不正确")
        if lo >= hi:
            return _envelope(None, 400, "开始时间不能大于等于结束时间")
        return lo, hi

    def _batch(self, body: dict[str, Any], items: list[Any]) -> Response:
        """One batch of ``items``: ``batchId`` is where the last one stopped (opaque to clients)."""
        batch = str(body.get("batchId") or "")
        try:
            offset = int(batch.removeprefix("B")) if batch else 0
        except ValueError:
            return _envelope(None, 400, "batchId 无效")
        page = items[offset : offset + self.batch_size]
        last = offset + self.batch_size >= len(items)
        return _envelope(
            {
                "total": len(items),
                "nextBatchId": None if last else f"B{offset + self.batch_size}",
                "isLastBatch": last,
                "items": page,
            },
            message="查询成功",
        )

    def _changed_in_window(
        self, request: Request, records: Callable[[dict[str, Any]], Iterable[M]], render: Callable[[M], Any]
    ) -> Response:
        """A window query: one batch of the ``records`` modified in ``[startTime, endTime)``."""
        body = json_body(request)
        window = self._window(body)
        if isinstance(window, Response):
            return window
        lo, hi = window
        with self._lock:
            selected = sorted(
                (r for r in records(body) if lo <= r.modified < hi), key=lambda r: (r.modified, r.id)
            )
            items = [render(r) for r in selected]
        return self._batch(body, items)

    def _ids(self, body: Any, key: str) -> list[Any] | Response:
        """The ids a detail query asks for (at most 100), or Beisen's answer to a bad list."""
        ids = body.get(key) if isinstance(body, dict) else None
        if not isinstance(ids, list) or not ids:
            return _envelope(None, 400, f"{key} 不能为空")
        if len(ids) > 100:
            return _envelope(None, 400, "一次最多允许查100个")
        return ids

    # -- applications --------------------------------------------------------------------------

    @route("POST", f"{API}/Apply/GetApplyListByModifiedTime")
    def applies_by_modified_time(self, request: Request) -> Response:
        return self._changed_in_window(
            request,
            lambda body: self.applies,
            lambda a: {"applyId": a.id, "applicantId": a.applicant.id, "jobId": a.job.id},
        )

    @route("POST", f"{API}/Apply/GetApplyListByApplyId")
    def applies_by_id(self, request: Request) -> Response:
        body = json_body(request)
        ids = self._ids(body, "applyIds")
        if isinstance(ids, Response):
            return ids
        names = [str(n) for n in body.get("fieldNames") or []]
        with self._lock:
            return _envelope(
                [self._applies[i].as_json(names) for i in ids if i in self._applies], message="查询成功"
            )

    # -- applicants ----------------------------------------------------------------------------

    @route("POST", f"{API}/Applicant/GetApplicantIdsByDate")
    def applicant_ids_by_date(self, request: Request) -> Response:
        return self._changed_in_window(request, lambda body: self.applicants, lambda a: {"applicantId": a.id})

    @route("POST", f"{API}/Applicant/GetPersonProfileList")
    def person_profiles(self, request: Request) -> Response:
        body = json_body(request)
        ids = self._ids(body, "applicantIds")
        if isinstance(ids, Response):
            return ids
        wanted = set(body.get("fieldNames") or [])
        with self._lock:
            found = []
            for applicant_id in ids:
                applicant = self._applicants.get(applicant_id)
                if applicant is None:
                    continue
                url = f"{self.url}/sim-dfs/resumes/{applicant.id}?expires={int(self.clock()) + 30 * 86_400}"
                fields = [f for f in applicant.profile(url) if not wanted or f["name"] in wanted]
                found.append({"applicantId": applicant.id, "fieldValues": fields})
        return _envelope(found, message="查询成功")

    @route("GET", "/sim-dfs/resumes/{applicant_id}")
    def resume_file(self, request: Request) -> Response:
        with self._lock:
            applicant = self._applicants.get(request.params["applicant_id"])
            if applicant is None:
                return Response(404, b"not found")
            return Response(
                200, applicant.person.resume_text().encode(), {"Content-Type": "text/plain; charset=utf-8"}
            )

    # -- jobs and offers -------------------------------------------------------------------------

    @route("POST", f"{API}/Job/GetJobList")
    def job_list(self, request: Request) -> Response:
        return self._changed_in_window(
            request,
            lambda body: (j for j in self.jobs if body.get("status") in (None, j.status)),
            BeisenJob.as_json,
        )

    @route("POST", f"{API}/RecruitOnBoarding/GetOfferInfos")
    def offer_infos(self, request: Request) -> Response:
        return self._changed_in_window(request, lambda body: self.offers, BeisenOffer.as_json)

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "base_url": self.url,
            "auth": "POST /token {grant_type: client_credentials, app_key, app_secret}, or POST /OAuth/Token "
            "(form: app_id, tenant_id, secret, grant_type); then Authorization: Bearer <access_token>",
            "app_key": self.app_key,
            "app_secret": self.app_secret,
            "tenant_id": self.tenant_id,
            "app_id": self.app_id,
            "applicants": len(self.applicants),
            "applications": len(self.applies),
            "jobs": len(self.jobs),
            "offers": len(self.offers),
        }
