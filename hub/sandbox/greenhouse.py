"""A simulator of the Greenhouse Harvest API (vendors.md §4.1, airbyte.md §4.1).

It reproduces what a connector depends on. **Harvest v1** (``/v1/...``): Basic auth with the
API token as the username and a blank password (401 otherwise); ``per_page`` (1-500, default
100) and ``page`` with an RFC-5988 ``Link`` header (``next``/``prev``/``last``; ``last`` left
out with ``skip_count=true``, no header at all for a single page); the documented
``created_*``/``updated_*`` filters (``last_activity_after`` on applications); 422
``{"message": "Validation error", "errors": [...]}`` for bad parameters; ``X-RateLimit-Limit``
and ``X-RateLimit-Remaining`` on every answer and 429 with ``Retry-After`` and
``X-RateLimit-Reset`` over the limit (50 requests per 10 s unless told otherwise). **Harvest
v3** (``/v3/...``), as the Airbyte catalogue manifest uses it: ``POST /token`` (client id and
secret as Basic auth, ``grant_type=refresh_token``; refresh tokens rotate and are single use),
bearer tokens that expire (``expire_tokens_after`` expires them mid-sync), a first page with
``per_page`` and ``updated_at=gte|...|lte|...`` and later pages with nothing but ``cursor=``
(422 otherwise), bare JSON arrays. v3 serves the v1 record shapes (the v3 shapes are not
documented in the reference), filtering on ``updated_at`` (``last_activity_at`` for
applications).

Candidates come from :mod:`hub.sandbox.people` (nobody real), each with one or two
applications, three scorecards and scheduled interviews per application, offers for those at
the offer stage or hired, and a resume served as a signed attachment URL (``/files/...``, no
auth, 403 once the signature is wrong or expired, like S3). Webhooks are signed as Greenhouse
signs them: :func:`webhook_request` and :meth:`GreenhouseSimulator.send_webhook`.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import json
import random
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
import requests

from hub.sandbox.base import Faults, RateLimit, Request, Response, Simulator, iso, route
from hub.sandbox.people import DEPARTMENTS, TITLES, Person, bank_card, people, person

DAY = 86_400.0
MAX_PER_PAGE = 500
DEFAULT_PER_PAGE = 100
#: what a scorecard attribute can be rated, worst first
RATINGS = ("definitely_not", "no", "mixed", "yes", "strong_yes")
STAGES = ("Application Review", "Phone Screen", "Technical Interview", "Onsite Interview", "Offer")
INTERVIEW_STEPS = ("Phone Screen", "Technical Interview", "Onsite Interview", "Hiring Manager Interview")
SOURCES = ("LinkedIn", "BOSS直聘", "智联招聘", "猎聘", "Referral", "Company website")
OFFICES = ("Beijing", "Shanghai", "Shenzhen", "Hangzhou")
REJECTION_REASONS = ("Lacking skill(s)/qualification(s)", "Hired another candidate", "Candidate withdrew")
ATTRIBUTE_TYPES = ("Skills", "Qualifications", "Personality Traits")
#: the attributes of the simulated interview kit: one per competency of a structured interview
SCORECARD_ATTRIBUTES = ("Technical Skills", "Communication", "Learning Agility", "Attention to Detail")
#: mainland mobile prefixes that are assigned ranges (every 11-digit number under them is valid)
MOBILE_PREFIXES = (
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "153", "155",
    "156", "157", "158", "159", "180", "181", "182", "183", "185", "186", "187", "188", "189",
)  # fmt: skip

#: per resource: which record field each v1 filter reads, and how (Greenhouse: "before" is
#: strictly before, "after" is at or after)
V1_FILTERS: dict[str, dict[str, tuple[str, str]]] = {
    "candidates": {
        "created_before": ("created_at", "lt"),
        "created_after": ("created_at", "gte"),
        "updated_before": ("updated_at", "lt"),
        "updated_after": ("updated_at", "gte"),
    },
    "applications": {
        "created_before": ("applied_at", "lt"),
        "created_after": ("applied_at", "gte"),
        "last_activity_after": ("last_activity_at", "gte"),
    },
    "jobs": {
        "created_before": ("created_at", "lt"),
        "created_after": ("created_at", "gte"),
        "updated_before": ("updated_at", "lt"),
        "updated_after": ("updated_at", "gte"),
    },
    "offers": {
        "created_before": ("created_at", "lt"),
        "created_after": ("created_at", "gte"),
        "updated_before": ("updated_at", "lt"),
        "updated_after": ("updated_at", "gte"),
    },
    "scorecards": {
        "created_before": ("created_at", "lt"),
        "created_after": ("created_at", "gte"),
        "updated_before": ("updated_at", "lt"),
        "updated_after": ("updated_at", "gte"),
    },
    "scheduled_interviews": {
        "created_before": ("created_at", "lt"),
        "created_after": ("created_at", "gte"),
        "updated_before": ("updated_at", "lt"),
        "updated_after": ("updated_at", "gte"),
    },
    "users": {
        "created_before": ("created_at", "lt"),
        "created_after": ("created_at", "gte"),
        "updated_before": ("updated_at", "lt"),
        "updated_after": ("updated_at", "gte"),
    },
}
#: per resource: the timestamp fields v3's ``field=op|value`` filters accept
V3_FIELDS: dict[str, tuple[str, ...]] = {
    name: ("created_at", "last_activity_at") if name == "applications" else ("created_at", "updated_at")
    for name in V1_FILTERS
}
V3_OPS = ("gt", "gte", "lt", "lte")
#: sub-resources of one application: (child path, resource, field pointing at the application)
APPLICATION_CHILDREN = {
    "scorecards": "scorecards",
    "offers": "offers",
    "scheduled_interviews": "scheduled_interviews",
}
RESOURCES = tuple(V1_FILTERS)
Op = Literal["lt", "lte", "gt", "gte"]


class ValidationFailed(Exception):
    """A request parameter Greenhouse would refuse with 422."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def canonical_time(value: str) -> str:
    """An ISO-8601 timestamp as the simulator writes them (UTC, milliseconds, ``Z``).

    Records hold that one format, so comparing the strings compares the instants.
    """
    text = value.strip()
    if not text:
        raise ValueError("empty timestamp")
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return iso(parsed.timestamp())


def _passes(value: str | None, op: str, bound: str) -> bool:
    if value is None:
        return False
    if op == "lt":
        return value < bound
    if op == "lte":
        return value <= bound
    if op == "gt":
        return value > bound
    return value >= bound


def validation_error(*problems: ValidationFailed) -> Response:
    """Greenhouse's 422 body."""
    return Response(
        422,
        {
            "message": "Validation error",
            "errors": [{"message": p.message, "field": p.field} for p in problems],
        },
    )


def not_found(what: str) -> Response:
    return Response(404, {"message": f"{what} not found"})


# -- webhooks ------------------------------------------------------------------------------------


def webhook_body(action: str, payload: dict[str, Any]) -> bytes:
    """The exact bytes Greenhouse posts: compact JSON, non-ASCII and ``< > &`` as ``\\uXXXX``.

    Greenhouse escapes before signing, so a receiver must verify over these raw bytes.
    """
    text = json.dumps({"action": action, "payload": payload}, ensure_ascii=True, separators=(",", ":"))
    # JSON syntax never uses these three outside strings: replacing them escapes only values.
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode("ascii")


def webhook_signature(secret: str, body: bytes) -> str:
    """The ``Signature`` header: ``sha256 <hex HMAC-SHA256(secret, body)>``."""
    return "sha256 " + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_request(secret: str, action: str, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """Body bytes and headers of one Greenhouse webhook delivery (a fresh event id each call)."""
    body = webhook_body(action, payload)
    headers = {
        "Content-Type": "application/json",
        "Signature": webhook_signature(secret, body),
        "Greenhouse-Event-ID": str(uuid.uuid4()),
    }
    return body, headers


# -- the simulator ---------------------------------------------------------------------------------


def _user_ref(user: dict[str, Any]) -> dict[str, Any]:
    """How Greenhouse embeds a user in other objects."""
    return {
        "id": user["id"],
        "first_name": user["first_name"],
        "last_name": user["last_name"],
        "name": user["name"],
        "employee_id": user["employee_id"],
    }


def _offer_terms(salary: int) -> dict[str, Any]:
    """An offer's custom fields (the tenant's: employment type, monthly salary, salary months),
    plain and keyed, as Harvest returns them."""
    pay = {"amount": salary, "unit": "CNY"}
    return {
        "custom_fields": {"employment_type": "Full-time", "salary": pay, "salary_months": 14},
        "keyed_custom_fields": {
            "employment_type": {"name": "Employment Type", "type": "single_select", "value": "Full-time"},
            "salary": {"name": "Monthly salary", "type": "currency", "value": dict(pay)},
            "salary_months": {"name": "Salary months", "type": "number", "value": 14},
        },
    }


class GreenhouseSimulator(Simulator):
    """Greenhouse Harvest API (v1 and v3) on loopback, seeded with generated candidates.

    ``candidates`` candidates are generated from ``seed``; ``api_token`` is the Harvest v1 API token. For v3, ``client_id``/``client_secret`` and
    ``refresh_token`` seed ``POST /token``. Records were created within the ``history_days``
    before ``now`` and are listed by id. ``page_delay`` slows every list page down (to kill a
    sync midway in tests). ``rate_limit`` defaults to Greenhouse's 50 requests per 10 s;
    ``None`` serves without a limit.
    """

    vendor = "greenhouse"
    public_paths = ("/token", "/files/")

    def __init__(
        self,
        *,
        candidates: int = 50,
        seed: int = 1,
        scorecards_per_application: int = 3,
        api_token: str = "sim-greenhouse-harvest-token",  # noqa: S107 - a simulator credential
        client_id: str = "sim-greenhouse-client",
        client_secret: str = "sim-greenhouse-client-secret",  # noqa: S107 - a simulator credential
        refresh_token: str = "sim-greenhouse-refresh-0",  # noqa: S107 - a simulator credential
        history_days: int = 365,
        now: float | None = None,
        page_delay: float = 0.0,
        port: int = 0,
        rate_limit: RateLimit | Literal["default"] | None = "default",
        faults: Faults | None = None,
        token_ttl: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            port=port,
            rate_limit=RateLimit(50, 10.0) if rate_limit == "default" else rate_limit,
            faults=faults,
            token_ttl=token_ttl,
            clock=clock,
        )
        self.api_token = api_token
        self.client_id = client_id
        self.client_secret = client_secret
        self.page_delay = page_delay
        self.scorecards_per_application = scorecards_per_application
        self._refresh_tokens = {refresh_token}
        self._refresh_serial = 0
        self._expire_countdown: int | None = None
        self._file_secret = hashlib.sha256(f"greenhouse-files:{seed}".encode()).digest()
        self._version = 0
        self._filtered: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        #: (clock time, method, path with query, status) of every request: Retry-After checks
        self.timeline: list[tuple[float, str, str, int]] = []
        self._timeline_lock = threading.Lock()
        self.now = now if now is not None else clock()
        self._rng = random.Random(f"greenhouse:{seed}")
        self._seed = seed
        self._serial: dict[str, int] = {}
        self._tables: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in RESOURCES}
        self._people: dict[int, Person] = {}  # candidate id -> the generated person
        self._build(candidates, history_days)

    @classmethod
    def for_sandbox(cls, *, port: int, seed: int, size: int) -> GreenhouseSimulator:
        return cls(port=port, seed=seed, candidates=size)

    # -- generated data ----------------------------------------------------------------------

    def _next_id(self, resource: str, base: int) -> int:
        self._serial[resource] = self._serial.get(resource, base) + 1
        return self._serial[resource]

    def _build(self, count: int, history_days: int) -> None:
        rng = self._rng
        start = self.now - history_days * DAY
        departments = [{"id": 30_001 + i, "name": name} for i, name in enumerate(DEPARTMENTS)]
        offices = [{"id": 20_001 + i, "name": name} for i, name in enumerate(OFFICES)]
        staff = people(12, self._seed + 7_919)
        for who in staff:
            uid = self._next_id("users", 9_000_000)
            self._tables["users"][uid] = {
                "id": uid,
                "name": who.name,
                "first_name": who.given_name,
                "last_name": who.family_name,
                "primary_email_address": f"recruiter{who.index}@hub-sim.example.com",
                "emails": [f"recruiter{who.index}@hub-sim.example.com"],
                "employee_id": f"E{who.index:05d}",
                "disabled": False,
                "site_admin": who.index == 1,
                "linked_candidate_ids": [],
                "offices": [rng.choice(offices)],
                "departments": [rng.choice(departments)],
                "created_at": iso(start - 200 * DAY),
                "updated_at": iso(start - 100 * DAY),
            }
        self.users = list(self._tables["users"].values())
        for i in range(max(6, min(300, count // 100))):
            title, _skills = TITLES[i % len(TITLES)]
            opened = start - rng.uniform(10, 90) * DAY
            jid = self._next_id("jobs", 4_000_000)
            status = "open" if i % 7 else "closed"
            self._tables["jobs"][jid] = {
                "id": jid,
                "name": title,
                "requisition_id": f"REQ-{2024 + i % 2}-{i + 1:03d}",
                "notes": None,
                "confidential": i % 11 == 0,
                "status": status,
                "created_at": iso(opened - 2 * DAY),
                "opened_at": iso(opened),
                "closed_at": iso(self.now - 5 * DAY) if status == "closed" else None,
                "updated_at": iso(opened + rng.uniform(0, 5) * DAY),
                "is_template": False,
                "copied_from_id": None,
                "departments": [{**rng.choice(departments), "parent_id": None, "child_ids": []}],
                "offices": [{**rng.choice(offices), "location": {"name": "China"}}],
                "hiring_team": {
                    "hiring_managers": [_user_ref(rng.choice(self.users))],
                    "recruiters": [{**_user_ref(rng.choice(self.users)), "responsible": True}],
                    "coordinators": [],
                    "sourcers": [],
                },
                "openings": [
                    {
                        "id": jid * 10 + k,
                        "opening_id": f"{i + 1}-{k + 1}",
                        "status": "open",
                        "opened_at": iso(opened),
                        "closed_at": None,
                        "application_id": None,
                        "close_reason": None,
                    }
                    for k in range(1 + i % 3)
                ],
                "custom_fields": {"employment_type": "Full-time"},
                "keyed_custom_fields": {
                    "employment_type": {
                        "name": "Employment Type",
                        "type": "single_select",
                        "value": "Full-time",
                    }
                },
            }
        self.jobs = list(self._tables["jobs"].values())
        # The latest a record may change: 20 days of interviews after it was created, all past.
        last_created = max(start + 1, self.now - 20 * DAY)
        created_times = sorted(rng.uniform(start, last_created) for _ in range(count))
        for index, created in enumerate(created_times, start=1):
            self._new_candidate(person(index, random.Random(f"{self._seed}:{index}")), created, rng)

    def _new_candidate(
        self, who: Person, created: float, rng: random.Random, *, fresh: bool = False
    ) -> dict[str, Any]:
        """A candidate with one application (two for a fifth of them); ``fresh``: applied just now."""
        cid = self._next_id("candidates", 40_000_000)
        self._people[cid] = who
        recruiter = rng.choice(self.users)
        if fresh:
            apps = [self._new_application(cid, created, rng, fresh=True)]
        else:
            apps = []
            for _ in range(2 if rng.random() < 0.2 else 1):
                hired = any(a["status"] == "hired" for a in apps)  # hired once, not twice
                apps.append(
                    self._new_application(cid, created + rng.uniform(0, 2) * DAY, rng, may_hire=not hired)
                )
        phone = mobile(who)
        touched = max([created, *(self._epoch(a["last_activity_at"]) for a in apps)])
        stamp = iso(touched)
        title = next((t for t, skills in TITLES if set(skills) & set(who.skills)), TITLES[0][0])
        candidate: dict[str, Any] = {
            "id": cid,
            "first_name": who.given_name,
            "last_name": who.family_name,
            "company": who.company,
            "title": title,
            "created_at": iso(created),
            "updated_at": stamp,
            "last_activity": stamp,
            "is_private": False,
            "photo_url": None,
            "attachments": [
                {
                    "filename": f"{who.name}_简历.txt",
                    "url": "",  # signed when the server starts (it needs the port)
                    "type": "resume",
                    "created_at": iso(created),
                }
            ],
            "application_ids": [a["id"] for a in apps],
            "phone_numbers": [{"value": f"+86 {phone[:3]} {phone[3:7]} {phone[7:]}", "type": "mobile"}],
            "addresses": [],
            "email_addresses": [{"value": who.email, "type": "personal"}],
            "website_addresses": [],
            "social_media_addresses": [],
            "recruiter": _user_ref(recruiter),
            "coordinator": None,
            "can_email": rng.random() > 0.05,
            "tags": sorted(who.skills[:3]),
            "applications": apps,
            "educations": [
                {
                    "id": cid * 10 + 1,
                    "school_name": who.school,
                    "degree": rng.choice(("Bachelor's Degree", "Master's Degree")),
                    "discipline": "Computer Science",
                    "start_date": f"{2008 - min(who.years_experience, 12)}-09-01T00:00:00.000Z",
                    "end_date": f"{2012 - min(who.years_experience, 12)}-07-01T00:00:00.000Z",
                }
            ],
            "employments": [
                {
                    "id": cid * 10 + 2,
                    "company_name": who.company,
                    "title": title,
                    "start_date": f"{2024 - who.years_experience}-03-01T00:00:00.000Z",
                    "end_date": None,
                }
            ],
            "linked_user_ids": [],
            "custom_fields": {"id_number": who.id_number, "years_of_experience": who.years_experience},
            "keyed_custom_fields": {
                "id_number": {"name": "身份证号", "type": "short_text", "value": who.id_number},
                "years_of_experience": {"name": "工作年限", "type": "number", "value": who.years_experience},
            },
        }
        self._tables["candidates"][cid] = candidate
        if self._server is not None:
            self._sign(candidate)
        return candidate

    def _new_application(
        self,
        candidate_id: int,
        applied: float,
        rng: random.Random,
        *,
        fresh: bool = False,
        may_hire: bool = True,
    ) -> dict[str, Any]:
        """An application with its interviews, scorecards and offer; ``fresh``: just applied, none yet."""
        aid = self._next_id("applications", 50_000_000)
        job = rng.choice(self.jobs)
        roll = 1.0 if fresh else rng.random()
        status = "hired" if roll < 0.08 and may_hire else "rejected" if 0.08 <= roll < 0.28 else "active"
        stage_index = len(STAGES) - 1 if status == "hired" else 0 if fresh else rng.randrange(len(STAGES))
        source = SOURCES.index(rng.choice(SOURCES))
        application: dict[str, Any] = {
            "id": aid,
            "candidate_id": candidate_id,
            "prospect": False,
            "applied_at": iso(applied),
            "rejected_at": None,
            "last_activity_at": iso(applied),
            "location": {"address": rng.choice(OFFICES)},
            "source": {"id": 7_000 + source, "public_name": SOURCES[source]},
            "credited_to": _user_ref(rng.choice(self.users)),
            "rejection_reason": None,
            "rejection_details": None,
            "jobs": [{"id": job["id"], "name": job["name"]}],
            "job_post_id": job["id"] + 500_000,
            "status": status,
            "current_stage": {"id": 5_000_000 + stage_index, "name": STAGES[stage_index]},
            "answers": [
                {"question": "期望工作城市 / Preferred city", "answer": rng.choice(OFFICES)},
                {
                    "question": "最快到岗时间 / Earliest start",
                    "answer": rng.choice(("立即", "1个月", "2个月")),
                },
            ],
            "prospective_office": None,
            "prospective_department": None,
            "prospect_detail": {"prospect_pool": None, "prospect_stage": None, "prospect_owner": None},
            "attachments": [],
            "custom_fields": {},
            "keyed_custom_fields": {},
        }
        latest = applied
        interviewers = rng.sample(self.users, min(self.scorecards_per_application, len(self.users)))
        for k in range(0 if fresh else self.scorecards_per_application):
            begins = applied + (k + 1) * 3 * DAY + rng.uniform(0, 8) * 3600
            ends = begins + 3600
            submitted = ends + rng.uniform(1, 20) * 3600
            latest = max(latest, submitted)
            step = INTERVIEW_STEPS[k % len(INTERVIEW_STEPS)]
            interviewer = interviewers[k % len(interviewers)]
            scorecard_id = self._next_id("scorecards", 60_000_000)
            attributes: list[dict[str, Any]] = []
            for name in SCORECARD_ATTRIBUTES:
                rating = rng.choice(RATINGS)
                attributes.append(
                    {
                        "name": name,
                        "type": rng.choice(ATTRIBUTE_TYPES),
                        "note": rng.choice((None, "表现不错 & solid", "<b>needs</b> more depth")),
                        "rating": rating,
                    }
                )
            ratings: dict[str, list[str]] = {r: [] for r in RATINGS}
            for attribute in attributes:
                ratings[str(attribute["rating"])].append(str(attribute["name"]))
            self._tables["scorecards"][scorecard_id] = {
                "id": scorecard_id,
                "created_at": iso(submitted),
                "updated_at": iso(submitted),
                "interview": step,
                "interview_step": {"id": 6_000_000 + k, "name": step},
                "candidate_id": candidate_id,
                "application_id": aid,
                "interviewed_at": iso(begins),
                "submitted_by": _user_ref(interviewer),
                "interviewer": _user_ref(interviewer),
                "submitted_at": iso(submitted),
                "overall_recommendation": rng.choice(RATINGS),
                "attributes": attributes,
                "ratings": ratings,
                "questions": [
                    {
                        "id": None,
                        "question": "Key Take-Aways",
                        "answer": "<p>Solid fundamentals; 沟通清晰.</p>",
                    },
                    {"id": 8_000_001, "question": "Would you work with them?", "answer": "Yes"},
                ],
            }
            interview_id = self._next_id("scheduled_interviews", 70_000_000)
            self._tables["scheduled_interviews"][interview_id] = {
                "id": interview_id,
                "application_id": aid,
                "external_event_id": f"evt-{interview_id}",
                "start": {"date_time": iso(begins)},
                "end": {"date_time": iso(ends)},
                "location": f"{rng.choice(OFFICES)} office, room {rng.randint(1, 20)}",
                "video_conferencing_url": f"https://meet.hub-sim.example.com/{interview_id}",
                "status": "complete",
                "created_at": iso(applied + k * DAY),
                "updated_at": iso(submitted),
                "interview": {"id": 6_000_000 + k, "name": step},
                "organizer": _user_ref(self.users[0]),
                "interviewers": [
                    {
                        "id": interviewer["id"],
                        "employee_id": interviewer["employee_id"],
                        "name": interviewer["name"],
                        "email": interviewer["primary_email_address"],
                        "response_status": "accepted",
                        "scorecard_id": scorecard_id,
                    }
                ],
            }
        if status == "rejected":
            latest += DAY
            reason = rng.randrange(len(REJECTION_REASONS))
            application["rejected_at"] = iso(latest)
            application["rejection_reason"] = {
                "id": 9_100 + reason,
                "name": REJECTION_REASONS[reason],
                "type": {"id": 1, "name": "We rejected them"},
            }
        if STAGES[stage_index] == "Offer":
            latest += DAY
            offer_id = self._next_id("offers", 80_000_000)
            salary = rng.randrange(12_000, 60_000, 500)
            offer_status = (
                "accepted" if status == "hired" else ("rejected" if status == "rejected" else "unresolved")
            )
            starts = datetime.fromtimestamp(latest + 30 * DAY, UTC).date().isoformat()
            self._tables["offers"][offer_id] = {
                "id": offer_id,
                "version": 1,
                "application_id": aid,
                "job_id": job["id"],
                "candidate_id": candidate_id,
                "opening": {
                    "id": job["id"] * 10,
                    "opening_id": job["openings"][0]["opening_id"],
                    "status": "closed" if status == "hired" else "open",
                    "opened_at": job["opened_at"],
                    "closed_at": iso(latest) if status == "hired" else None,
                    "application_id": aid if status == "hired" else None,
                    "close_reason": None,
                },
                "created_at": iso(latest - DAY / 2),
                "updated_at": iso(latest),
                "sent_at": iso(latest - DAY / 4),
                "resolved_at": iso(latest) if offer_status != "unresolved" else None,
                "starts_at": starts,
                "status": offer_status,
                **_offer_terms(salary),
            }
            if offer_status == "accepted":
                self._onboarding_fields(self._tables["offers"][offer_id])
        application["last_activity_at"] = iso(latest)
        self._tables["applications"][aid] = application
        return application

    @staticmethod
    def _epoch(stamp: str) -> float:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()

    def resume_text(self, candidate_id: int) -> str:
        """The resume file of a candidate: a header with name and contacts, then the resume."""
        who = self._people[candidate_id]
        return f"{who.name}\n{mobile(who)} · {who.email}\n\n{who.resume_text()}\n"

    # -- signed attachment URLs -----------------------------------------------------------------

    def _file_signature(self, path: str, expires: int) -> str:
        return hmac.new(self._file_secret, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def _sign(self, candidate: dict[str, Any]) -> None:
        """Give the candidate's attachments signed URLs valid for 7 days (like S3)."""
        expires = int(self.clock() + 7 * DAY)
        for attachment in candidate["attachments"]:
            path = f"/files/resumes/{candidate['id']}/{urllib.parse.quote(attachment['filename'])}"
            query = urllib.parse.urlencode(
                {"Expires": expires, "Signature": self._file_signature(path, expires)}
            )
            attachment["url"] = f"{self.url}{path}?{query}"

    def start(self) -> GreenhouseSimulator:
        super().start()
        with self._lock:
            for candidate in self._tables["candidates"].values():
                self._sign(candidate)
        return self

    # -- test helpers ------------------------------------------------------------------------

    def _changed(self) -> None:
        self._version += 1
        self._filtered.clear()

    def _later_than_all(self) -> float:
        """Now, or a millisecond after the latest candidate change if that is later."""
        latest = max((self._epoch(c["updated_at"]) for c in self._tables["candidates"].values()), default=0.0)
        millis = max(int(self.clock() * 1000), round(latest * 1000) + 1)
        return (millis + 0.5) / 1000  # mid-millisecond: iso() truncates to exactly ``millis``

    def touch_candidate(self, candidate_id: int) -> str:
        """Change a candidate now (a new title and tag): ``updated_at`` passes every other one.

        Returns the new ``updated_at``.
        """
        with self._lock:
            candidate = self._tables["candidates"][candidate_id]
            titles = [t for t, _ in TITLES]
            candidate["title"] = titles[(titles.index(candidate["title"]) + 1) % len(titles)]
            candidate["tags"] = sorted({*candidate["tags"], "Re-engaged"})
            stamp = iso(self._later_than_all())
            candidate["updated_at"] = candidate["last_activity"] = stamp
            self._changed()
            return stamp

    def add_candidate(self) -> dict[str, Any]:
        """A candidate who applied just now (one application, at Application Review)."""
        with self._lock:
            index = len(self._tables["candidates"]) + 1
            rng = random.Random(f"{self._seed}:added:{index}")
            candidate = self._new_candidate(person(index, rng), self._later_than_all(), rng, fresh=True)
            self._changed()
            return copy.deepcopy(candidate)

    def applications_at_offer(self) -> list[int]:
        """Ids of the active applications whose offer is still open (``unresolved``), oldest first."""
        with self._lock:
            return sorted(
                o["application_id"]
                for o in self._tables["offers"].values()
                if o["status"] == "unresolved"
                and self._tables["applications"][o["application_id"]]["status"] == "active"
            )

    def accept_offer(
        self, application_id: int, *, term_months: int = 36, probation_months: int = 6
    ) -> dict[str, Any]:
        """The candidate accepts the offer of an application, now (one is made if it has none).

        The offer turns ``accepted`` and carries what the tenant's offer custom fields collect
        for onboarding (contract term, probation, the payroll bank account); the application is
        ``hired``. Both get an ``updated_at`` past every other record, so an incremental sync
        reads them. Returns the offer.
        """
        with self._lock:
            application = self._tables["applications"][application_id]
            offer = next(
                (o for o in self._tables["offers"].values() if o["application_id"] == application_id), None
            )
            latest = max(
                self._epoch(r["updated_at"])
                for table in ("candidates", "offers")
                for r in self._tables[table].values()
            )
            moment = max(self.clock(), latest + 0.001)
            stamp = iso(moment)
            rng = random.Random(f"{self._seed}:offer:{application_id}")
            if offer is None:
                job_id = application["jobs"][0]["id"]
                offer = {
                    "id": self._next_id("offers", 80_000_000),
                    "version": 1,
                    "application_id": application_id,
                    "job_id": job_id,
                    "candidate_id": application["candidate_id"],
                    "opening": None,
                    "created_at": stamp,
                    "sent_at": stamp,
                    "starts_at": datetime.fromtimestamp(moment + 30 * DAY, UTC).date().isoformat(),
                    **_offer_terms(rng.randrange(12_000, 60_000, 500)),
                }
                self._tables["offers"][offer["id"]] = offer
            offer.update(status="accepted", resolved_at=stamp, updated_at=stamp)
            self._onboarding_fields(offer, term_months, probation_months)
            application.update(status="hired", last_activity_at=stamp)
            self._changed()
            return copy.deepcopy(offer)

    def _onboarding_fields(
        self, offer: dict[str, Any], term_months: int = 36, probation_months: int = 6
    ) -> None:
        """The offer custom fields a tenant fills when the offer is accepted: contract term,
        probation and the payroll bank account (from its own seeded generator, so adding them
        changes no other generated value)."""
        account = bank_card(random.Random(f"{self._seed}:bank:{offer['application_id']}"))
        offer["custom_fields"].update(
            contract_term_months=term_months, probation_months=probation_months, bank_account=account
        )
        offer["keyed_custom_fields"].update(
            contract_term_months={"name": "Contract term (months)", "type": "number", "value": term_months},
            probation_months={"name": "Probation (months)", "type": "number", "value": probation_months},
            bank_account={"name": "Payroll bank account", "type": "short_text", "value": account},
        )

    def records(self, resource: str) -> list[dict[str, Any]]:
        """Every record of a resource, by id (copies)."""
        with self._lock:
            return [copy.deepcopy(self._tables[resource][k]) for k in sorted(self._tables[resource])]

    def record(self, resource: str, record_id: int) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._tables[resource][record_id])

    def count(self, resource: str) -> int:
        return len(self._tables[resource])

    def candidate_webhook_payload(self, candidate_id: int) -> dict[str, Any]:
        """The documented ``update_candidate`` webhook: ``{"action", "payload": {"candidate"}}``."""
        with self._lock:
            candidate = copy.deepcopy(self._tables["candidates"][candidate_id])
        candidate["url"] = f"https://app.greenhouse.io/people/{candidate_id}"
        candidate["external_id"] = None
        candidate["applications"] = [
            {k: v for k, v in app.items() if k in ("id", "status", "applied_at", "jobs", "current_stage")}
            for app in candidate["applications"]
        ]
        return {"action": "update_candidate", "payload": {"candidate": candidate}}

    def send_webhook(self, url: str, secret: str, action: str, payload: dict[str, Any]) -> int:
        """POST one signed webhook delivery to ``url``; the receiver's HTTP status."""
        body, headers = webhook_request(secret, action, payload)
        answer = requests.post(url, data=body, headers=headers, timeout=10)
        return answer.status_code

    def send_ping(self, url: str, secret: str) -> int:
        """The signed ``ping`` Greenhouse sends when a webhook is saved; the receiver's status."""
        return self.send_webhook(url, secret, "ping", {"web_hook_id": 1})

    def current_refresh_token(self) -> str:
        """The one refresh token ``POST /token`` accepts now."""
        with self._lock:
            return next(iter(self._refresh_tokens))

    def expire_tokens_after(self, requests_count: int) -> None:
        """Expire every access token once ``requests_count`` more v3 requests were answered."""
        with self._lock:
            self._expire_countdown = requests_count

    # -- auth, rate limit --------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        if request.path.startswith("/v3/"):
            with self._lock:
                if self._expire_countdown is not None:
                    if self._expire_countdown <= 0:
                        self.expire_tokens()
                        self._expire_countdown = None
                    else:
                        self._expire_countdown -= 1
            if self.token_valid(self.bearer(request)):
                return None
            return Response(401, {"message": "Unauthorized: the access token is invalid or expired"})
        if header.lower().startswith("basic "):
            try:
                user, _, password = (
                    base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
                )
            except (binascii.Error, UnicodeDecodeError):
                user, password = "", "?"
            if user and hmac.compare_digest(user, self.api_token) and password == "":
                return None
        return Response(401, {"message": "Invalid Basic Auth credentials"})

    def throttled(self, retry_after: float) -> Response:
        seconds = max(1, int(retry_after + 0.999))
        limit = self.rate_limit.requests if self.rate_limit is not None else 50
        return Response(
            429,
            {"message": "API rate limit exceeded"},
            {
                "Retry-After": str(seconds),
                "X-RateLimit-Reset": str(int(self.clock()) + seconds),
                "X-RateLimit-Limit": str(limit),
                "X-RateLimit-Remaining": "0",
            },
        )

    def rate_headers(self, remaining: int) -> dict[str, str]:
        limit = self.rate_limit.requests if self.rate_limit is not None else 0
        return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(max(remaining, 0))}

    def dispatch(self, request: Request) -> Response:
        response = super().dispatch(request)
        query = urllib.parse.urlencode([(k, v) for k, vs in request.query.items() for v in vs])
        with self._timeline_lock:
            self.timeline.append(
                (self.clock(), request.method, request.path + ("?" + query if query else ""), response.status)
            )
        return response

    # -- OAuth (v3) ------------------------------------------------------------------------------

    @route("POST", "/token")
    def token(self, request: Request) -> Response:
        """Harvest v3's token endpoint: client credentials as Basic auth, rotating refresh tokens."""
        header = request.headers.get("authorization", "")
        try:
            client = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            client = ""
        if not header.lower().startswith("basic ") or client != f"{self.client_id}:{self.client_secret}":
            return Response(401, {"error": "invalid_client"})
        form = request.form()
        if form.get("grant_type") != "refresh_token":
            return Response(400, {"error": "unsupported_grant_type"})
        with self._lock:
            presented = form.get("refresh_token", "")
            if presented not in self._refresh_tokens:
                return Response(
                    400, {"error": "invalid_grant", "error_description": "unknown or used refresh token"}
                )
            self._refresh_tokens.discard(presented)
            self._refresh_serial += 1
            rotated = f"sim-greenhouse-refresh-{self._refresh_serial}-{uuid.uuid4().hex[:12]}"
            self._refresh_tokens.add(rotated)
        access, ttl = self.issue_token()
        expires = datetime.fromtimestamp(self.clock() + ttl, UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
        return Response(
            200,
            {"access_token": access, "refresh_token": rotated, "token_type": "bearer", "expires_at": expires},
        )

    # -- listing ---------------------------------------------------------------------------------

    def _select(
        self, resource: str, bounds: Iterable[tuple[str, str, str]], equals: Iterable[tuple[str, Any]] = ()
    ) -> list[dict[str, Any]]:
        """Records by id passing every (field, op, bound) and (field, value); cached until a change."""
        bounds, equals = tuple(sorted(bounds)), tuple(sorted(equals, key=repr))
        key = (resource, bounds, equals)
        cached = self._filtered.get(key)
        if cached is not None:
            return cached
        table = self._tables[resource]
        selected = []
        for record_id in sorted(table):
            record = table[record_id]
            if all(_passes(record.get(f), op, bound) for f, op, bound in bounds) and all(
                _matches(record, f, v) for f, v in equals
            ):
                selected.append(record)
        if len(self._filtered) > 64:
            self._filtered.clear()
        self._filtered[key] = selected
        return selected

    @staticmethod
    def _int_arg(request: Request, name: str, default: int, low: int, high: int | None) -> int:
        raw = request.arg(name)
        if raw is None or raw == "":
            return default
        if not raw.isdigit() or int(raw) < low or (high is not None and int(raw) > high):
            limit = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise ValidationFailed(name, f"{name} must be an integer {limit}")
        return int(raw)

    def _v1_list(self, request: Request, resource: str, extra: Iterable[tuple[str, Any]] = ()) -> Response:
        try:
            per_page = self._int_arg(request, "per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)
            page = self._int_arg(request, "page", 1, 1, None)
            bounds = []
            for name, (field, op) in V1_FILTERS[resource].items():
                value = request.arg(name)
                if value:
                    try:
                        bounds.append((field, op, canonical_time(value)))
                    except ValueError:
                        raise ValidationFailed(name, f"{name} must be an ISO-8601 timestamp") from None
            equals = list(extra) + self._equality_filters(request, resource)
        except ValidationFailed as problem:
            return validation_error(problem)
        if self.page_delay:
            time.sleep(self.page_delay)
        with self._lock:
            items = self._select(resource, bounds, equals)
            total = len(items)
            body = orjson.dumps(items[(page - 1) * per_page : page * per_page])
        last = max(1, -(-total // per_page))
        links = []
        skip_count = (request.arg("skip_count") or "").lower() == "true"
        if page < last:
            links.append((page + 1, "next"))
        if page > 1:
            links.append((min(page - 1, last), "prev"))
        if not skip_count and last > 1:
            links.append((last, "last"))
        headers = {}
        if links:
            headers["Link"] = ",".join(f'<{self._page_url(request, n)}>; rel="{rel}"' for n, rel in links)
        return Response(200, body, headers)

    def _page_url(self, request: Request, page: int) -> str:
        query = [(k, v) for k, vs in request.query.items() if k != "page" for v in vs]
        query.insert(0, ("page", str(page)))
        return f"{self.url}{request.path}?{urllib.parse.urlencode(query)}"

    @staticmethod
    def _equality_filters(request: Request, resource: str) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        if resource == "candidates":
            email = request.arg("email")
            if email:
                out.append(("email", email.strip().lower()))
            ids = request.arg("candidate_ids")
            if ids:
                parts = [p.strip() for p in ids.split(",") if p.strip()]
                if len(parts) > 50 or not all(p.isdigit() for p in parts):
                    raise ValidationFailed(
                        "candidate_ids", "candidate_ids takes at most 50 comma-separated ids"
                    )
                out.append(("id", frozenset(int(p) for p in parts)))
        if resource in ("candidates", "applications"):
            job = request.arg("job_id")
            if job:
                if not job.isdigit():
                    raise ValidationFailed("job_id", "job_id must be an integer")
                out.append(("job_id", int(job)))
        if resource == "applications":
            status = request.arg("status")
            if status:
                if status not in ("active", "converted", "hired", "rejected"):
                    raise ValidationFailed(
                        "status", "status must be one of active, converted, hired, rejected"
                    )
                out.append(("status", status))
        return out

    @route("GET", "/v1/{resource}")
    def v1_list(self, request: Request) -> Response:
        resource = request.params["resource"]
        if resource not in V1_FILTERS:
            return not_found("Resource")
        return self._v1_list(request, resource)

    @route("GET", "/v1/{resource}/{item_id}")
    def v1_get(self, request: Request) -> Response:
        resource, item_id = request.params["resource"], request.params["item_id"]
        with self._lock:
            table = self._tables.get(resource)
            record = table.get(int(item_id)) if table is not None and item_id.isdigit() else None
            if record is None:
                return not_found(resource.rstrip("s").replace("_", " ").capitalize() if table else "Resource")
            return Response(200, orjson.dumps(record))

    @route("GET", "/v1/applications/{item_id}/{child}")
    def v1_application_children(self, request: Request) -> Response:
        child, item_id = request.params["child"], request.params["item_id"]
        resource = APPLICATION_CHILDREN.get(child)
        if resource is None:
            return not_found("Resource")
        if not item_id.isdigit() or int(item_id) not in self._tables["applications"]:
            return not_found("Application")
        return self._v1_list(request, resource, [("application_id", int(item_id))])

    # -- v3 --------------------------------------------------------------------------------------

    @route("GET", "/v3/{resource}")
    def v3_list(self, request: Request) -> Response:
        resource = request.params["resource"]
        if resource not in V3_FIELDS:
            return not_found("Resource")
        try:
            cursor = request.arg("cursor")
            if cursor is not None:
                others = sorted(k for k in request.query if k != "cursor")
                if others:
                    raise ValidationFailed(
                        others[0], "a page after the first takes only the cursor parameter"
                    )
                state = self._decode_cursor(cursor, resource)
                per_page, offset = int(state["n"]), int(state["o"])
                bounds = [tuple(b) for b in state["b"]]
            else:
                per_page = self._int_arg(request, "per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)
                offset = 0
                bounds = []
                for name in V3_FIELDS[resource]:
                    value = request.arg(name)
                    if value:
                        bounds += _v3_bounds(name, value)
                unknown = sorted(set(request.query) - {"per_page", *V3_FIELDS[resource]})
                if unknown:
                    raise ValidationFailed(unknown[0], f"unknown parameter {unknown[0]}")
        except ValidationFailed as problem:
            return validation_error(problem)
        if self.page_delay:
            time.sleep(self.page_delay)
        with self._lock:
            items = self._select(resource, bounds)
            body = orjson.dumps(items[offset : offset + per_page])
            more = offset + per_page < len(items)
        headers = {}
        if more:
            token = self._encode_cursor({"r": resource, "o": offset + per_page, "n": per_page, "b": bounds})
            headers["Link"] = f'<{self.url}{request.path}?cursor={token}>; rel="next"'
        return Response(200, body, headers)

    def _encode_cursor(self, state: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(state)).decode().rstrip("=")

    @staticmethod
    def _decode_cursor(token: str, resource: str) -> dict[str, Any]:
        try:
            state = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            if state["r"] != resource:
                raise ValueError("cursor of another resource")
            return dict(state)
        except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
            raise ValidationFailed("cursor", "invalid cursor") from None

    # -- files -----------------------------------------------------------------------------------

    @route("GET", "/files/resumes/{candidate_id}/{filename}")
    def resume_file(self, request: Request) -> Response:
        """A resume behind a signed, expiring URL (no API auth, like an S3 presigned URL)."""
        path = request.path
        expires, signature = request.arg("Expires", ""), request.arg("Signature", "")
        denied = Response(
            403, b"<Error><Code>AccessDenied</Code></Error>", {"Content-Type": "application/xml"}
        )
        if not expires or not expires.isdigit() or not signature:
            return denied
        quoted = "/".join(urllib.parse.quote(urllib.parse.unquote(p)) for p in path.split("/"))
        if not hmac.compare_digest(signature, self._file_signature(quoted, int(expires))):
            return denied
        if int(expires) < self.clock():
            return denied
        candidate_id = request.params["candidate_id"]
        with self._lock:
            if not candidate_id.isdigit() or int(candidate_id) not in self._people:
                return Response(
                    404, b"<Error><Code>NoSuchKey</Code></Error>", {"Content-Type": "application/xml"}
                )
            text = self.resume_text(int(candidate_id))
        return Response(200, text.encode("utf-8"), {"Content-Type": "text/plain; charset=utf-8"})

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "base_url": self.url,
            "api_key": self.api_token,
            "auth": "Harvest v1: Basic with the API token as username and an empty password",
            "oauth": {
                "auth_url": self.url,  # the greenhouse connector's auth_url (POST /token)
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "refresh_token": self.current_refresh_token(),
            },
            "candidates": len(self._tables["candidates"]),
        }


def mobile(who: Person) -> str:
    """The person's mobile number under an assigned prefix (recruiters type real numbers)."""
    return MOBILE_PREFIXES[int(who.phone[1:3]) % len(MOBILE_PREFIXES)] + who.phone[3:]


def _matches(record: dict[str, Any], field: str, value: Any) -> bool:
    if field == "email":
        return any(e["value"].lower() == value for e in record.get("email_addresses", []))
    if field == "job_id":
        jobs = record.get("jobs") or [j for a in record.get("applications", []) for j in a["jobs"]]
        return any(j["id"] == value for j in jobs)
    if field == "id" and isinstance(value, frozenset):
        return record["id"] in value
    return bool(record.get(field) == value)


def _v3_bounds(field: str, value: str) -> list[tuple[str, str, str]]:
    """``gte|2024-01-01T00:00:00Z|lte|...`` -> (field, op, canonical time) pairs."""
    parts = value.split("|")
    if len(parts) % 2:
        raise ValidationFailed(
            field, f"{field} takes operator|timestamp pairs, e.g. gte|2024-01-01T00:00:00Z"
        )
    out = []
    for op, stamp in zip(parts[::2], parts[1::2], strict=True):
        if op not in V3_OPS:
            raise ValidationFailed(field, f"{field}: unknown operator {op!r} (known: {', '.join(V3_OPS)})")
        try:
            out.append((field, op, canonical_time(stamp)))
        except ValueError:
            raise ValidationFailed(field, f"{field} must hold ISO-8601 timestamps") from None
    return out


__all__ = [
    "GreenhouseSimulator",
    "canonical_time",
    "webhook_body",
    "webhook_request",
    "webhook_signature",
]
