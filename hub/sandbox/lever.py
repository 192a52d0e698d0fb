"""A simulator of the Lever ATS API (vendors.md §4.2): opportunities, users and stages.

It reproduces what a connector depends on: Basic auth with the API key as the username (or
OAuth bearer tokens from ``POST /oauth/token`` with single-use, rotating refresh tokens),
``limit`` (1-100) + opaque ``offset`` token pagination answering
``{"data": [...], "hasNext": bool, "next": "<token>"}``, the ``updated_at_start`` /
``updated_at_end`` (and ``created_at_*``) filters in epoch milliseconds, 429 with
``Retry-After`` over 10 requests/s (bursts to 20), and 401 on a bad key. Opportunities are
generated from :mod:`hub.sandbox.people` (nobody real) and sorted by creation time; ``touch``
changes some of them so tests can check incremental reads. hub ships no Lever connector: this
simulator exists to show a YAML-only manifest syncing an ATS hub does not know.
"""

from __future__ import annotations

import base64
import binascii
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from hub.sandbox.base import RateLimit, Request, Response, Simulator, route
from hub.sandbox.people import Person, people
from hub.sandbox.recruiting import basic_user, uuid_from

DAY_MS = 86_400_000
ORIGINS = ("applied", "sourced", "referred", "agency", "university", "internal")
SOURCES = ("LinkedIn", "BOSS直聘", "智联招聘", "Referral", "Company website", "猎聘")
TAGS = ("Full-time", "Intern", "Beijing", "Shanghai", "Shenzhen", "Remote", "Senior", "Campus")
STAGES = (
    ("lead-new", "New lead"),
    ("applicant-new", "New applicant"),
    ("recruiter-screen", "Recruiter screen"),
    ("phone-interview", "Phone interview"),
    ("onsite-interview", "On-site interview"),
    ("offer", "Offer"),
)


def _phone_display(mobile: str) -> str:
    """A mainland mobile as recruiters type it into Lever: ``+86 138 0013 8000``."""
    return f"+86 {mobile[:3]} {mobile[3:7]} {mobile[7:]}"


@dataclass
class Opportunity:
    """One candidate's journey in Lever (``/opportunities``), as the API returns it."""

    id: str
    person: Person
    contact: str
    stage: str
    origin: str
    owner: str
    created_at: int
    updated_at: int
    tags: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    applications: list[str] = field(default_factory=list)
    archived: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.person.name,
            "headline": f"{self.person.company}, {self.person.school}",
            "contact": self.contact,
            "emails": [self.person.email],
            "phones": [{"type": "mobile", "value": _phone_display(self.person.phone)}],
            "confidentiality": "non-confidential",
            "location": "",
            "links": [],
            "archived": self.archived,
            "stage": self.stage,
            "stageChanges": [{"toStageId": self.stage, "toStageIndex": 0, "updatedAt": self.updated_at}],
            "tags": list(self.tags),
            "sources": list(self.sources),
            "origin": self.origin,
            "sourcedBy": self.owner if self.origin == "sourced" else None,
            "owner": self.owner,
            "followers": [self.owner],
            "applications": list(self.applications),
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "lastInteractionAt": self.updated_at,
            "lastAdvancedAt": self.updated_at,
            "snoozedUntil": None,
            "urls": {
                "list": "https://hire.lever.co/candidates",
                "show": f"https://hire.lever.co/candidates/{self.id}",
            },
            "isAnonymized": False,
            "dataProtection": None,
        }


def _error(status: int, code: str, message: str) -> Response:
    """Lever's error body: ``{"code": ..., "message": ...}``."""
    return Response(status, {"code": code, "message": message})


class LeverSimulator(Simulator):
    """Lever's REST API v1 on loopback, seeded with ``count`` opportunities.

    ``api_key`` is accepted as the Basic-auth username. For OAuth, ``client_id`` /
    ``client_secret`` and ``refresh_token`` seed ``POST /oauth/token``: each refresh answers a
    new access token and a new refresh token, and the old refresh token stops working.
    Opportunities were created and last updated within the ``history_days`` before ``now``.
    The rate limit is Lever's unless ``rate_limit`` is given; set ``.rate_limit = None`` to lift it.
    """

    vendor = "lever"
    public_paths = ("/oauth/token",)
    PAGE_LIMIT = 100

    def __init__(
        self,
        *,
        count: int = 120,
        seed: int = 1,
        api_key: str = "sim-lever-api-key",
        client_id: str = "sim-lever-client",
        client_secret: str = "sim-lever-client-secret",  # noqa: S107 - a simulator credential
        refresh_token: str = "sim-lever-refresh-0",  # noqa: S107 - a simulator credential
        history_days: int = 20,
        now: float | None = None,
        rate_limit: RateLimit | None = None,
        token_ttl: float = 3600.0,
        **kwargs: Any,
    ) -> None:
        # 10 requests/s steady, bursts to 20: twenty in any two seconds
        limit = rate_limit if rate_limit is not None else RateLimit(20, 2.0)
        super().__init__(rate_limit=limit, token_ttl=token_ttl, **kwargs)
        self.seed = seed
        self.api_key = api_key
        self.client_id = client_id
        self.client_secret = client_secret
        self._refresh_tokens = {refresh_token}
        self._refresh_serial = 0
        self.now_ms = int((now if now is not None else self.clock()) * 1000)
        rng = random.Random(seed)
        self.users: list[dict[str, Any]] = [
            {
                "id": uuid_from(rng),
                "name": f"Recruiter {i}",
                "username": f"recruiter{i}",
                "email": f"recruiter{i}@example.com",
                "accessRole": "interviewer" if i > 1 else "super admin",
                "createdAt": self.now_ms - 400 * DAY_MS,
                "deactivatedAt": None,
            }
            for i in range(1, 4)
        ]
        first = self.now_ms - history_days * DAY_MS
        span = max(history_days * DAY_MS - 60_000, 1)
        created = sorted(first + rng.randrange(span) for _ in range(count))
        self.opportunities: list[Opportunity] = []
        for stamp, who in zip(created, people(count, seed), strict=True):
            room = min(2 * DAY_MS, self.now_ms - 60_000 - stamp)
            updated = stamp + rng.randrange(room) if room > 0 else stamp
            self.opportunities.append(
                Opportunity(
                    id=uuid_from(rng),
                    person=who,
                    contact=uuid_from(rng),
                    stage=rng.choice(STAGES)[0],
                    origin=rng.choice(ORIGINS),
                    owner=str(rng.choice(self.users)["id"]),
                    created_at=stamp,
                    updated_at=updated,
                    tags=sorted(rng.sample(TAGS, rng.randint(1, 3))),
                    sources=[rng.choice(SOURCES)],
                    applications=[uuid_from(rng)],
                )
            )
        self._by_id = {o.id: o for o in self.opportunities}
        self._pages_left: int | None = None  # outage: opportunity pages still served
        self._outage_status = 503

    @classmethod
    def for_sandbox(cls, *, port: int, seed: int, size: int) -> LeverSimulator:
        return cls(port=port, seed=seed, count=size)

    # -- test helpers ------------------------------------------------------------------------

    def touch(self, *ids: str, stage: str | None = None) -> list[int]:
        """Update opportunities now (a stage move): their ``updatedAt`` passes every other one.

        Returns the new ``updatedAt`` values, strictly increasing and later than any before.
        """
        with self._lock:
            stamps = []
            latest = max((o.updated_at for o in self.opportunities), default=0)
            for opportunity_id in ids:
                opportunity = self._by_id[opportunity_id]
                latest = max(int(self.clock() * 1000), latest + 1)
                opportunity.updated_at = latest
                opportunity.stage = (
                    stage or STAGES[(self._stage_index(opportunity.stage) + 1) % len(STAGES)][0]
                )
                stamps.append(latest)
            return stamps

    def add_opportunity(self) -> Opportunity:
        """A new opportunity created now (someone applied); repeatable for a given seed."""
        with self._lock:
            serial = len(self.opportunities) + 1
            rng = random.Random(self.seed * 100_003 + serial)
            who = people(serial, self.seed + 1)[-1]
            stamp = max(
                int(self.clock() * 1000), max((o.updated_at for o in self.opportunities), default=0) + 1
            )
            opportunity = Opportunity(
                id=uuid_from(rng),
                person=who,
                contact=uuid_from(rng),
                stage=STAGES[1][0],
                origin="applied",
                owner=str(self.users[0]["id"]),
                created_at=stamp,
                updated_at=stamp,
                tags=["Full-time"],
                sources=["Company website"],
                applications=[uuid_from(rng)],
            )
            self.opportunities.append(opportunity)
            self._by_id[opportunity.id] = opportunity
            return opportunity

    def outage_after(self, pages: int, status: int = 503) -> None:
        """Serve ``pages`` more opportunity pages, then answer ``status`` until :meth:`end_outage`."""
        with self._lock:
            self._pages_left, self._outage_status = pages, status

    def end_outage(self) -> None:
        with self._lock:
            self._pages_left = None

    def current_refresh_token(self) -> str:
        """The one refresh token that works now (OAuth mode)."""
        with self._lock:
            return next(iter(self._refresh_tokens))

    @staticmethod
    def _stage_index(stage: str) -> int:
        return next((i for i, (sid, _) in enumerate(STAGES) if sid == stage), 0)

    # -- auth --------------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        username = basic_user(request)
        if username is not None:
            if username and username == self.api_key:
                return None
        elif self.token_valid(self.bearer(request)):
            return None
        return _error(401, "UnauthorizedError", "Invalid API key or access token")

    @route("POST", "/oauth/token")
    def oauth_token(self, request: Request) -> Response:
        """Lever's token endpoint (auth.lever.co): refresh tokens are single use and rotate."""
        form = request.form() if request.body[:1] != b"{" else dict(request.json() or {})
        if form.get("grant_type") != "refresh_token":
            return Response(400, {"error": "unsupported_grant_type"})
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return Response(401, {"error": "invalid_client"})
        with self._lock:
            presented = form.get("refresh_token", "")
            if presented not in self._refresh_tokens:
                return Response(403, {"error": "invalid_grant", "error_description": "Unknown or used token"})
            self._refresh_tokens.discard(presented)
            self._refresh_serial += 1
            rotated = f"sim-lever-refresh-{self._refresh_serial}-{uuid.uuid4().hex[:12]}"
            self._refresh_tokens.add(rotated)
        token, ttl = self.issue_token()
        return Response(
            200,
            {
                "access_token": token,
                "refresh_token": rotated,
                "token_type": "Bearer",
                "expires_in": int(ttl),
                "scope": "opportunities:read:admin users:read:admin offline_access",
            },
        )

    # -- resources ---------------------------------------------------------------------------

    def _page(self, request: Request, items: list[dict[str, Any]]) -> Response:
        """``limit`` + opaque ``offset`` token pagination, Lever style."""
        raw_limit = request.arg("limit", str(self.PAGE_LIMIT)) or ""
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= self.PAGE_LIMIT:
            return _error(400, "BadRequestError", f"limit must be between 1 and {self.PAGE_LIMIT}")
        limit = int(raw_limit)
        start = 0
        token = request.arg("offset")
        if token:
            try:
                decoded = base64.urlsafe_b64decode(token.encode()).decode()
                kind, _, position = decoded.partition(":")
                if kind != "lever-offset" or not position.isdigit():
                    raise ValueError(token)
                start = int(position)
            except (ValueError, binascii.Error, UnicodeDecodeError):
                return _error(400, "BadRequestError", "Invalid offset token")
        page = items[start : start + limit]
        body: dict[str, Any] = {"data": page, "hasNext": start + limit < len(items)}
        if body["hasNext"]:
            body["next"] = base64.urlsafe_b64encode(f"lever-offset:{start + limit}".encode()).decode()
        return Response(200, body)

    @staticmethod
    def _millis(request: Request, name: str) -> tuple[int | None, Response | None]:
        value = request.arg(name)
        if value is None or value == "":
            return None, None
        if not value.lstrip("-").isdigit():
            return None, _error(400, "BadRequestError", f"{name} must be a timestamp in milliseconds")
        return int(value), None

    @route("GET", "/v1/opportunities")
    def list_opportunities(self, request: Request) -> Response:
        with self._lock:
            if self._pages_left is not None:
                if self._pages_left <= 0:
                    return self.server_error(self._outage_status)
                self._pages_left -= 1
        bounds: dict[str, int | None] = {}
        for name in ("updated_at_start", "updated_at_end", "created_at_start", "created_at_end"):
            bounds[name], problem = self._millis(request, name)
            if problem is not None:
                return problem
        stage_id, tag = request.arg("stage_id"), request.arg("tag")
        with self._lock:
            selected = [
                o.as_json()
                for o in self.opportunities
                if _within(o.updated_at, bounds["updated_at_start"], bounds["updated_at_end"])
                and _within(o.created_at, bounds["created_at_start"], bounds["created_at_end"])
                and (stage_id is None or o.stage == stage_id)
                and (tag is None or tag in o.tags)
            ]
        return self._page(request, selected)

    @route("GET", "/v1/opportunities/{opportunity_id}")
    def get_opportunity(self, request: Request) -> Response:
        with self._lock:
            opportunity = self._by_id.get(request.params["opportunity_id"])
            if opportunity is None:
                return _error(404, "ResourceNotFound", "Opportunity not found")
            return Response(200, {"data": opportunity.as_json()})

    @route("GET", "/v1/users")
    def list_users(self, request: Request) -> Response:
        return self._page(request, list(self.users))

    @route("GET", "/v1/stages")
    def list_stages(self, request: Request) -> Response:
        return self._page(request, [{"id": sid, "text": text} for sid, text in STAGES])

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "base_url": f"{self.url}/v1",
            "auth": "Basic: the API key as username, empty password; or OAuth at /oauth/token",
            "api_key": self.api_key,
            "opportunities": len(self.opportunities),
        }


def _within(value: int, start: int | None, end: int | None) -> bool:
    """Lever's time filters include both ends."""
    return (start is None or value >= start) and (end is None or value <= end)
