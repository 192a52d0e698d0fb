"""A simulator of the Moka (MokaHR) ATS OpenAPI (vendors.md §4.3), on generated data.

What it reproduces, and where each shape comes from (see ``hub_moka.source`` for the full
verification notes): the ``/api-platform`` prefix; HTTP Basic with the API key as username
and an empty password, or OAuth2 client credentials at ``POST /v1/auth/oauth2/getToken``
(``{clientID, clientSecret, grantType}`` -> ``{code, msg, data: {accessToken, expiresIn,
tokenType}}``, a 2 h token, a new one only within 30 minutes of expiry, ``110020
unauthorized_client`` with HTTP 200 on bad credentials); an unknown or expired credential
answered **HTTP 500** ``{"code": -1, "success": false, "msg": "无法识别的认证信息"}`` (an unknown
API key: ``系统中不存在该apiKey``), as Moka's gateway does; 60 requests a minute answered 429 with
``Retry-After`` beyond it (Moka documents the limit, not the over-limit answer: assumed).

Endpoints: ``POST /v3/applications/list_by_condition`` (update-time window in ms of at most
3 months, ``limit`` at most 20, then ``{"next": ...}`` alone, ``code`` 200),
``POST /v1/jobs/getJobs`` (``hireMode`` social/campus, ``limit``/``offset``, day-precision
``updatedFromAt``/``updatedEndAt``, ``code`` 0), ``GET /v1/interviews`` (a window of at most 31
days by interview or creation date, ``{"data": [...]}`` with Chinese status words),
``POST /v3/getOfferInfos`` (``orgId`` + ``applicationIds``, ``salaryNumber`` as a string,
times in ms, ``code`` 0) and ``POST /v3/attachments/get`` (one application, signed resume
URLs served by the simulator). Candidates come from :mod:`hub.sandbox.people` (nobody real).
``touch_*`` update records now, so tests can check incremental reads;
``expire_tokens_after(n)`` expires every token at the n-th authenticated request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from hub.sandbox.base import Request, Response, iso, route
from hub.sandbox.people import DEPARTMENTS, TITLES, Person, people
from hub.sandbox.recruiting import RecruitingSimulator, assigned_mobile, basic_user, json_body, uuid_from

PREFIX = "/api-platform"
TOKEN_PATH = f"{PREFIX}/v1/auth/oauth2/getToken"
CHINA = ZoneInfo("Asia/Shanghai")
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
#: list_by_condition: at most 3 months per update-time window (documented), 20 per page
MAX_WINDOW_MS = 92 * DAY_MS
MAX_V3_LIMIT = 20
#: GET /v1/interviews: a window of at most 31 days (documented)
MAX_INTERVIEW_DAYS = 31
#: (stageId, name, stageType): Moka's stage types 100 初筛, 200 筛选, 201 面试, 101 offer, 102 待入职
STAGES = (
    (1, "初筛", 100),
    (2, "用人部门筛选", 200),
    (3, "面试", 201),
    (4, "沟通Offer", 101),
    (5, "待入职", 102),
)
#: archive reasons: (id, name, type) with type 1 rejected by the candidate, 2 by us, 3 hired
ARCHIVE_REASONS = ((11, "能力不匹配", 2), (12, "候选人放弃", 1), (13, "已入职", 3))
SOURCES = ((1, "BOSS直聘", 2), (2, "内部推荐", 3), (3, "猎聘", 1), (4, "官网投递", 2), (5, "猎头推荐", 4))
INTERVIEW_TYPES = ("现场面试", "电话面试", "视频面试")
#: Moka's interview list speaks Chinese: 未结束 (scheduled), 已结束 (done), 已取消 (cancelled)
INTERVIEW_STATUS = ("未结束", "已结束", "已取消")
OFFER_STATUS = ("pending", "approved", "sent", "accepted", "rejected")
CITIES = ("北京", "上海", "深圳", "杭州", "成都")


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _day(ms: int) -> date:
    """The calendar day of an instant in China (Moka's day-precision filters)."""
    return datetime.fromtimestamp(ms / 1000, CHINA).date()


def _gender(id_number: str) -> int:
    """Moka's gender code from the ID number: 1 male, 2 female."""
    return 1 if int(id_number[16]) % 2 else 2


def _birthday(id_number: str) -> str:
    return f"{id_number[6:10]}-{id_number[10:12]}-{id_number[12:14]}"


def _fail(status: int, code: int, msg: str) -> Response:
    return Response(status, {"code": code, "success": False, "msg": msg})


@dataclass
class MokaJob:
    """A job (职位) as ``getJobs`` answers it."""

    id: str
    mj_code: str
    title: str
    hire_mode: int  # 1 social, 2 campus
    status: str  # open / closed / pause
    department: dict[str, Any]
    city: str
    number: int
    min_salary: int  # k per month (salaryUnit 0)
    max_salary: int
    created_at: int
    updated_at: int
    skills: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "mjCode": self.mj_code,
            "title": self.title,
            "status": self.status,
            "hireMode": self.hire_mode,
            "commitment": "全职" if self.hire_mode == 1 else "实习",
            "department": dict(self.department),
            "locations": [{"id": CITIES.index(self.city) + 1, "city": self.city, "country": "中国"}],
            "number": self.number,
            "minSalary": self.min_salary,
            "maxSalary": self.max_salary,
            "salaryUnit": 0,
            "pipelineId": self.hire_mode,
            "jobDescription": f"负责{self.title}相关工作。要求：{'、'.join(self.skills)}。",
            "customFields": [],
            "createdAt": iso(self.created_at / 1000),
            "updatedAt": iso(self.updated_at / 1000),
        }


@dataclass
class MokaCandidate:
    """A person in Moka (候选人): one candidateId across their applications."""

    id: int
    person: Person

    def base_info(self) -> dict[str, Any]:
        p = self.person
        return {
            "candidateId": self.id,
            "name": p.name,
            "gender": _gender(p.id_number),
            "birthday": _birthday(p.id_number),
            "certificateType": 1,  # 身份证
            "citizenId": p.id_number,
            "contactInfo": {"email": p.email, "phone": p.phone},
            "lastCompany": p.company,
            "lastSpeciality": p.skills[0],
            "academicDegree": 6,  # 本科
            "experienceYears": p.years_experience,
            "tags": list(p.skills),
        }


@dataclass
class MokaApplication:
    """One candidate's application to one job (申请), keyed by ``applicationId``."""

    id: int
    candidate: MokaCandidate
    job: MokaJob
    stage: int  # index into STAGES
    archive: int | None  # index into ARCHIVE_REASONS, or None when active
    source: int  # index into SOURCES
    applied_at: int
    updated_at: int

    def as_json(self) -> dict[str, Any]:
        stage_id, stage_name, stage_type = STAGES[self.stage]
        reason = ARCHIVE_REASONS[self.archive] if self.archive is not None else None
        source_id, source_name, source_type = SOURCES[self.source]
        person = self.candidate.person
        return {
            "applicationId": self.id,
            "hireMode": self.job.hire_mode,
            "appliedAt": self.applied_at,
            "createdAt": self.applied_at,
            "updatedAt": self.updated_at,
            "candidateBaseInfo": self.candidate.base_info(),
            "educationInfo": [
                {
                    "school": person.school,
                    "speciality": person.skills[-1],
                    "academicDegree": 6,
                    "startDate": f"{int(person.id_number[6:10]) + 18}-09",
                    "endDate": f"{int(person.id_number[6:10]) + 22}-06",
                }
            ],
            "experienceInfo": [
                {
                    "company": person.company,
                    "title": self.job.title,
                    "startDate": f"{2025 - person.years_experience}-07",
                    "endDate": None,
                    "summary": person.resume_text(),
                }
            ],
            "job": {"jobId": self.job.id, "jobTitle": self.job.title, "mjCode": self.job.mj_code},
            "pipeline": {
                "pipelineId": self.job.hire_mode,
                "name": "社招流程" if self.job.hire_mode == 1 else "校招流程",
            },
            "stage": {"stageId": stage_id, "name": stage_name, "stageType": stage_type},
            "archived": reason is not None,
            "archiveReason": {"id": reason[0], "name": reason[1], "type": reason[2]} if reason else None,
            "sourceInfo": {"sourceId": source_id, "sourceName": source_name, "sourceType": source_type},
            "checkinInfo": {"probation": 3, "headcountId": None} if stage_type == 102 else None,
        }


@dataclass
class MokaInterview:
    """One interview of one application (the list groups candidates; ours have one each)."""

    id: str
    application: MokaApplication
    start_at: int
    duration: int
    kind: str
    status: str
    created_at: int
    interviewers: list[dict[str, str]]
    hr: dict[str, str]

    def as_json(self) -> dict[str, Any]:
        person = self.application.candidate.person
        return {
            "id": self.id,
            "startTime": iso(self.start_at / 1000),
            "type": self.kind,
            "duration": self.duration,
            "jobTitle": self.application.job.title,
            "stageName": STAGES[2][1],
            "address": f"{self.application.job.city}办公室 3F" if self.kind == "现场面试" else "",
            "theme": f"{person.name} - {self.application.job.title}",
            "status": self.status,
            "createdAt": iso(self.created_at / 1000),
            "hr": dict(self.hr),
            "candidates": [
                {
                    "name": person.name,
                    "email": person.email,
                    "phone": person.phone,
                    "status": "已接受",
                    "jobTitle": self.application.job.title,
                    "applicationId": self.application.id,
                    "groupId": self.id[:8],
                }
            ],
            "interviewers": [dict(i) for i in self.interviewers],
            "roomId": 7 if self.kind == "现场面试" else "",
            "roomName": "会议室A" if self.kind == "现场面试" else "",
            "jobs": [{"mjCode": self.application.job.mj_code}],
        }


@dataclass
class MokaOffer:
    """An offer on an application (``getOfferInfos``); ``salaryNumber`` is a string there."""

    id: int
    application: MokaApplication
    salary: int
    salary_type: int  # 1 hourly, 2 daily, 3 monthly, 4 yearly
    status: str
    checkin_date: str
    created_at: int
    sent_at: int | None
    finished_at: int | None
    updated_at: int

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "applicationId": self.application.id,
            "jobId": self.application.job.id,
            "salaryNumber": str(self.salary),
            "salaryType": self.salary_type,
            "checkinDate": self.checkin_date,
            "status": self.status,
            "createdAt": self.created_at,
            "sentAt": self.sent_at,
            "finishedAt": self.finished_at,
            "updatedAt": self.updated_at,
            "hcId": None,
            "templateId": 1,
            "creatorId": 1001,
            "contactName": "招聘专员",
        }


class MokaSimulator(RecruitingSimulator):
    """Moka's ATS OpenAPI on loopback, seeded with ``count`` candidates (about 1.2 applications each).

    Basic auth takes ``api_key``; OAuth takes ``client_id`` / ``client_secret``. ``org_id`` is
    the tenant id the offer endpoint requires. Other keywords (``latency``, ``rate_limit``,
    ``faults``, ...) are :class:`~hub.sandbox.recruiting.RecruitingSimulator`'s.
    """

    vendor = "moka"
    public_paths = (TOKEN_PATH, "/sim-oss/")
    #: Moka: 60 requests a minute unless an endpoint says otherwise
    vendor_rate_limit = (60, 60.0)

    def __init__(
        self,
        *,
        count: int = 60,
        seed: int = 1,
        api_key: str = "sim-moka-api-key",
        client_id: str = "sim-moka-client",
        client_secret: str = "sim-moka-client-secret",  # noqa: S107 - a simulator credential
        org_id: str = "sim-moka-org",
        history_days: int = 30,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.api_key = api_key
        self.client_id = client_id
        self.client_secret = client_secret
        self.org_id = org_id
        self._current_token: str | None = None
        #: answer the next N token requests 503 with Retry-After: 1 (the token endpoint is not rate limited)
        self.token_faults = 0
        self._seed(count, seed, history_days)

    # -- generated data ----------------------------------------------------------------------

    def _seed(self, count: int, seed: int, history_days: int) -> None:
        rng = random.Random(seed)
        now = int(self.clock() * 1000)
        first = now - history_days * DAY_MS
        last = now - 2 * HOUR_MS  # nothing seeded is newer than two hours
        self.jobs: list[MokaJob] = []
        for i, (title, skills) in enumerate(TITLES * 2):
            created = first - rng.randrange(30 * DAY_MS)
            dept = DEPARTMENTS[i % len(DEPARTMENTS)]
            low = rng.choice((10, 15, 20, 25))
            self.jobs.append(
                MokaJob(
                    id=uuid_from(rng),
                    mj_code=f"MJ{1000 + i:06d}",
                    title=title,
                    hire_mode=1 if i < len(TITLES) else 2,
                    status="open" if i % 5 else "closed",
                    department={
                        "id": 100 + DEPARTMENTS.index(dept),
                        "code": f"D{DEPARTMENTS.index(dept):03d}",
                        "name": dept,
                    },
                    city=CITIES[i % len(CITIES)],
                    number=rng.randint(1, 5),
                    min_salary=low,
                    max_salary=low + rng.choice((5, 10, 15)),
                    created_at=created,
                    updated_at=first + rng.randrange(last - first),
                    skills=list(skills),
                )
            )
        generated = people(count, seed)
        for person in generated:
            person.phone = assigned_mobile(person.phone)
        self.candidates = [MokaCandidate(id=5000 + i, person=p) for i, p in enumerate(generated, 1)]
        self.applications: list[MokaApplication] = []
        self.interviews: list[MokaInterview] = []
        self.offers: list[MokaOffer] = []
        app_id = 410_000_000
        for candidate in self.candidates:
            picks = [rng.choice(self.jobs)]
            if rng.random() < 0.2:
                picks.append(rng.choice([j for j in self.jobs if j is not picks[0]]))
            for job in picks:
                app_id += rng.randint(1, 50)
                applied = first + rng.randrange(last - first - HOUR_MS)
                updated = applied + rng.randrange(min(3 * DAY_MS, last - applied))
                stage = rng.randrange(len(STAGES))
                archive = rng.choice((None, None, None, 0, 1)) if stage < 3 else None
                if stage == 4 and rng.random() < 0.5:
                    archive = 2  # hired and archived
                application = MokaApplication(
                    id=app_id,
                    candidate=candidate,
                    job=job,
                    stage=stage,
                    archive=archive,
                    source=rng.randrange(len(SOURCES)),
                    applied_at=applied,
                    updated_at=updated,
                )
                self.applications.append(application)
                if stage >= 2:
                    self._add_interview(application, rng)
                if stage >= 3:
                    self._add_offer(application, rng)
        self._applications = {a.id: a for a in self.applications}
        self._jobs = {j.id: j for j in self.jobs}
        self._offers = {o.application.id: o for o in self.offers}

    def _add_interview(self, application: MokaApplication, rng: random.Random) -> None:
        created = application.applied_at + rng.randrange(
            max(1, application.updated_at - application.applied_at)
        )
        start = created + rng.randint(1, 5) * DAY_MS
        digest = hashlib.md5(f"{application.id}:{created}".encode(), usedforsecurity=False).hexdigest()
        self.interviews.append(
            MokaInterview(
                id=digest,
                application=application,
                start_at=start - start % (30 * 60_000),
                duration=rng.choice((30, 45, 60, 90)),
                kind=rng.choice(INTERVIEW_TYPES),
                status=INTERVIEW_STATUS[1] if start < int(self.clock() * 1000) else INTERVIEW_STATUS[0],
                created_at=created,
                interviewers=[{"name": "面试官甲", "email": "interviewer.a@example.com"}],
                hr={"name": "招聘专员", "email": "hr@example.com", "phone": "010-88886666"},
            )
        )

    def _add_offer(self, application: MokaApplication, rng: random.Random) -> None:
        person = application.candidate.person
        yearly = rng.random() < 0.2
        monthly = 1000 * (application.job.min_salary + min(person.years_experience, 10))
        created = application.updated_at - rng.randrange(DAY_MS)
        hired = application.stage == 4 or application.archive == 2
        status = "accepted" if hired else rng.choice(OFFER_STATUS[:3])
        checkin = (datetime.fromtimestamp(application.updated_at / 1000, CHINA) + timedelta(days=30)).date()
        self.offers.append(
            MokaOffer(
                id=900_000 + len(self.offers) + 1,
                application=application,
                salary=monthly * 14 if yearly else monthly,
                salary_type=4 if yearly else 3,
                status=status,
                checkin_date=checkin.isoformat(),
                created_at=created,
                sent_at=created + HOUR_MS if status in ("sent", "accepted") else None,
                finished_at=application.updated_at if status == "accepted" else None,
                updated_at=application.updated_at,
            )
        )

    @classmethod
    def for_sandbox(cls, *, port: int, seed: int, size: int) -> MokaSimulator:
        return cls(port=port, seed=seed, count=size)

    # -- test helpers ------------------------------------------------------------------------

    def _next_stamp(self) -> int:
        latest = max(a.updated_at for a in self.applications)
        return max(int(self.clock() * 1000), latest + 1)

    def touch_applications(self, *application_ids: int) -> list[int]:
        """Move applications one stage on, now; returns their new ``updatedAt`` (ms)."""
        with self._lock:
            stamps = []
            for application_id in application_ids:
                application = self._applications[application_id]
                application.stage = min(application.stage + 1, len(STAGES) - 1)
                application.updated_at = self._next_stamp()
                stamps.append(application.updated_at)
            return stamps

    def touch_candidates(self, *candidate_ids: int, company: str = "新公司科技") -> list[int]:
        """A candidate changed employer: every application of theirs shows the change now."""
        with self._lock:
            touched = []
            for candidate in self.candidates:
                if candidate.id in candidate_ids:
                    candidate.person.company = company
                    for application in self.applications:
                        if application.candidate is candidate:
                            application.updated_at = self._next_stamp()
                            touched.append(application.id)
            return touched

    def touch_jobs(self, *job_ids: str, status: str = "closed") -> list[str]:
        """Close (or re-status) jobs now; returns their new ``updatedAt``."""
        with self._lock:
            stamps = []
            for job_id in job_ids:
                job = self._jobs[job_id]
                job.status = status
                job.updated_at = max(int(self.clock() * 1000), max(j.updated_at for j in self.jobs) + 1)
                stamps.append(iso(job.updated_at / 1000))
            return stamps

    def touch_offers(self, *application_ids: int, status: str = "accepted") -> None:
        """The candidate answered the offer: offer and application change now."""
        with self._lock:
            for application_id in application_ids:
                offer = self._offers[application_id]
                stamp = self._next_stamp()
                offer.status, offer.updated_at, offer.finished_at = status, stamp, stamp
                offer.application.updated_at = stamp

    def expire_tokens(self) -> None:
        super().expire_tokens()
        with self._lock:
            self._current_token = None

    # -- auth --------------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        username = basic_user(request)
        if username is not None:
            return None if username == self.api_key else _fail(500, -1, "系统中不存在该apiKey")
        token = self.bearer(request)
        if token is not None:
            self.count_authenticated()
            if self.token_valid(token):
                return None
        return _fail(500, -1, "无法识别的认证信息")

    @route("POST", TOKEN_PATH)
    def get_token(self, request: Request) -> Response:
        """OAuth2 client credentials; a new token only within 30 minutes of the old one's expiry."""
        with self._lock:
            if self.token_faults > 0:
                self.token_faults -= 1
                return Response(503, {"code": -1, "success": False, "msg": "系统繁忙"}, {"Retry-After": "1"})
        body = json_body(request)
        body = body if isinstance(body, dict) else {}
        if (
            body.get("clientID") != self.client_id
            or body.get("clientSecret") != self.client_secret
            or body.get("grantType") != "client_credentials"
        ):
            return Response(200, {"code": 110020, "msg": "unauthorized_client", "data": {}})
        with self._lock:
            current = self._current_token
            remaining = self._tokens.get(current or "", 0.0) - self.clock()
            if current is None or remaining < 1800:
                current, _ttl = self.issue_token()
                self._current_token = current
                remaining = self._tokens[current] - self.clock()
        return Response(
            200,
            {
                "code": 0,
                "msg": "成功",
                "data": {"accessToken": current, "expiresIn": int(remaining), "tokenType": "Bearer"},
            },
        )

    def throttled(self, retry_after: float) -> Response:
        seconds = max(1, int(retry_after + 0.999))
        return Response(
            429,
            {"code": 429, "success": False, "msg": "请求过于频繁，请稍后再试"},
            {"Retry-After": str(seconds)},
        )

    def server_error(self, status: int) -> Response:
        return _fail(status, -1, "系统繁忙，请稍后再试")

    # -- applications ------------------------------------------------------------------------

    @staticmethod
    def _body(request: Request) -> dict[str, Any] | None:
        body = json_body(request)
        return body if isinstance(body, dict) else None

    @route("POST", f"{PREFIX}/v3/applications/list_by_condition")
    def list_by_condition(self, request: Request) -> Response:
        """Applications in an update-time (or creation-time) window, 20 a page, ``next`` cursor."""
        body = self._body(request)
        if body is None:
            return Response(200, {"code": 300400, "msg": "参数错误", "data": None})
        if body.get("next"):
            try:
                state = orjson.loads(base64.urlsafe_b64decode(str(body["next"]).encode()))
                filters, offset = dict(state["f"]), int(state["o"])
            except (ValueError, KeyError, TypeError, binascii.Error):
                return Response(200, {"code": 300400, "msg": "参数错误: next 无效", "data": None})
        else:
            filters, offset = body, 0
        limit = filters.get("limit", 20)
        if not isinstance(limit, int) or not 1 <= limit <= MAX_V3_LIMIT:
            return Response(
                200, {"code": 300400, "msg": f"参数错误: limit 最大为{MAX_V3_LIMIT}", "data": None}
            )
        windows = [
            ("updateAtStartTime", "updateAtEndTime", "updated_at"),
            ("applicationCreateStartTime", "applicationCreateEndTime", "applied_at"),
        ]
        bounds: list[tuple[int, int, str]] = []
        for lo_key, hi_key, attr in windows:
            lo, hi = filters.get(lo_key), filters.get(hi_key)
            if lo is None and hi is None:
                continue
            if not isinstance(lo, int) or not isinstance(hi, int) or lo > hi:
                return Response(200, {"code": 300400, "msg": f"参数错误: {lo_key}/{hi_key}", "data": None})
            if hi - lo > MAX_WINDOW_MS:
                return Response(200, {"code": 300400, "msg": "参数错误: 时间范围不能超过3个月", "data": None})
            bounds.append((lo, hi, attr))
        ids = filters.get("applicationIds") or []
        candidate_ids = filters.get("candidateIds") or []
        if len(ids) > MAX_V3_LIMIT or len(candidate_ids) > MAX_V3_LIMIT:
            return Response(200, {"code": 300400, "msg": "参数错误: 最多20个", "data": None})
        if not bounds and not ids and not candidate_ids:
            return Response(200, {"code": 300400, "msg": "参数错误: 需要时间范围或申请ID", "data": None})
        with self._lock:
            selected = sorted(
                (
                    a
                    for a in self.applications
                    if all(lo <= getattr(a, attr) <= hi for lo, hi, attr in bounds)
                    and (not ids or a.id in ids)
                    and (not candidate_ids or a.candidate.id in candidate_ids)
                    and (filters.get("jobId") is None or a.job.id == filters["jobId"])
                    and (filters.get("archived") is None or (a.archive is not None) == filters["archived"])
                ),
                key=lambda a: (a.updated_at, a.id),
            )
            page = [a.as_json() for a in selected[offset : offset + limit]]
        data: dict[str, Any] = {"applicationList": page}
        if offset + limit < len(selected):
            token = {"f": {k: v for k, v in filters.items() if k != "next"}, "o": offset + limit}
            data["next"] = base64.urlsafe_b64encode(orjson.dumps(token)).decode()
        return Response(200, {"code": 200, "msg": "success", "data": data})

    # -- jobs ----------------------------------------------------------------------------------

    @route("POST", f"{PREFIX}/v1/jobs/getJobs")
    def get_jobs(self, request: Request) -> Response:
        body = self._body(request) or {}
        mode = body.get("hireMode")
        if mode not in ("social", "campus"):
            return Response(403, {"message": "招聘模式 必填", "msg": "招聘模式 必填", "code": 3})
        try:
            limit, offset = int(body.get("limit", 30)), int(body.get("offset", 0))
            since = date.fromisoformat(body["updatedFromAt"]) if body.get("updatedFromAt") else None
            until = date.fromisoformat(body["updatedEndAt"]) if body.get("updatedEndAt") else None
        except (TypeError, ValueError):
            return Response(200, {"code": 300400, "msg": "参数错误", "data": None})
        if not 1 <= limit <= 100 or offset < 0:
            return Response(200, {"code": 300400, "msg": "参数错误: limit", "data": None})
        wanted = 1 if mode == "social" else 2
        with self._lock:
            selected = sorted(
                (
                    j
                    for j in self.jobs
                    if j.hire_mode == wanted
                    and (body.get("status") is None or j.status == body["status"])
                    and (since is None or _day(j.updated_at) >= since)
                    and (until is None or _day(j.updated_at) <= until)
                ),
                key=lambda j: (j.updated_at, j.id),
            )
            page = [j.as_json() for j in selected[offset : offset + limit]]
        return Response(200, {"code": 0, "msg": "success", "data": {"total": len(selected), "jobs": page}})

    # -- interviews ----------------------------------------------------------------------------

    @route("GET", f"{PREFIX}/v1/interviews")
    def list_interviews(self, request: Request) -> Response:
        """Interviews by interview date or creation date, whole days (China), 31 days at most."""
        pairs = (("startDate", "endDate", "start_at"), ("createStartDate", "createEndDate", "created_at"))
        chosen = [(lo, hi, attr) for lo, hi, attr in pairs if request.arg(lo) and request.arg(hi)]
        if not chosen:
            return Response(
                400,
                {"code": 100005, "msg": "参数异常: startDate/endDate 或 createStartDate/createEndDate 必填"},
            )
        lo_key, hi_key, attr = chosen[0]
        try:
            lo = _day(_ms(datetime.fromisoformat(str(request.arg(lo_key)).replace("Z", "+00:00"))))
            hi = _day(_ms(datetime.fromisoformat(str(request.arg(hi_key)).replace("Z", "+00:00"))))
        except ValueError:
            return Response(400, {"code": 100005, "msg": "参数异常: 日期格式应为 ISO8601"})
        if hi < lo or (hi - lo).days + 1 > MAX_INTERVIEW_DAYS:
            return Response(400, {"code": 100005, "msg": "参数异常: 时间范围不得超过31天"})
        mode = request.arg("hireMode")
        with self._lock:
            selected = sorted(
                (
                    i
                    for i in self.interviews
                    if lo <= _day(getattr(i, attr)) <= hi
                    and (not mode or str(i.application.job.hire_mode) == mode)
                ),
                key=lambda i: (i.start_at, i.id),
            )
            return Response(200, {"data": [i.as_json() for i in selected]})

    # -- offers and attachments ------------------------------------------------------------------

    @route("POST", f"{PREFIX}/v3/getOfferInfos")
    def get_offer_infos(self, request: Request) -> Response:
        body = self._body(request) or {}
        if body.get("orgId") != self.org_id:
            return Response(200, {"code": 300400, "msg": "参数错误: orgId", "success": False, "data": None})
        ids = body.get("applicationIds")
        if not isinstance(ids, list) or not ids or len(ids) > 100:
            return Response(
                200, {"code": 300400, "msg": "参数错误: applicationIds", "success": False, "data": None}
            )
        with self._lock:
            found = [self._offers[i].as_json() for i in ids if i in self._offers]
        return Response(200, {"code": 0, "msg": "成功", "success": True, "data": found})

    @route("POST", f"{PREFIX}/v3/attachments/get")
    def get_attachments(self, request: Request) -> Response:
        body = self._body(request) or {}
        with self._lock:
            application = self._applications.get(body.get("applicationId"))  # type: ignore[arg-type]
            if application is None:
                return Response(200, {"code": 300501, "msg": "申请不存在", "data": None})
            stamp = application.applied_at
            file_id = application.id * 10 + 1
        expires = int(self.clock()) + 3600
        signature = hashlib.sha256(f"{file_id}:{expires}".encode()).hexdigest()[:16]
        url = f"{self.url}/sim-oss/resumes/{file_id}?Expires={expires}&Signature={signature}"
        resume = {
            "id": file_id,
            "name": f"resume_{application.candidate.id}.pdf",
            "size": 48_213 + application.id % 1000,
            "createdAt": stamp,
            "url": url,
            "type": "ORIGINAL_RESUME",
        }
        return Response(
            200,
            {
                "code": 200,
                "msg": "success",
                "data": {
                    "resumeUrl": url,
                    "standardResumeUrl": url.replace("/resumes/", "/standard/"),
                    "attachments4App": [resume],
                    "attachments4Ca": [],
                },
            },
        )

    @route("GET", "/sim-oss/resumes/{file_id}")
    def resume_file(self, request: Request) -> Response:
        """The resume behind a signed URL (text, standing in for the PDF)."""
        expires = request.arg("Expires") or "0"
        if not expires.isdigit() or int(expires) < self.clock():
            return Response(
                403, b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
            )
        with self._lock:
            application = self._applications.get(int(request.params["file_id"]) // 10)
            if application is None:
                return Response(404, b"<Error><Code>NoSuchKey</Code></Error>")
            text = application.candidate.person.resume_text()
        return Response(200, text.encode(), {"Content-Type": "text/plain; charset=utf-8"})

    # -- describe ------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "base_url": self.url,
            "auth": "Basic: the API key as username, empty password; or OAuth2 at "
            "/api-platform/v1/auth/oauth2/getToken",
            "api_key": self.api_key,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "org_id": self.org_id,
            "candidates": len(self.candidates),
            "applications": len(self.applications),
            "jobs": len(self.jobs),
            "interviews": len(self.interviews),
            "offers": len(self.offers),
        }
