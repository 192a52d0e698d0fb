"""A simulator of an assessment platform's results API: the kind a Beisen assessment tenant or an
in-house test system exposes to one customer, for the ``assessment`` connector's REST mode.

Such APIs are not public, so there is no vendor shape to copy; this one has the features those
APIs have in common (vendors.md §4.4 for Beisen's token call, §5.3, §7), and every answer carries
``X-Hub-Simulator: assessment-rest``:

* ``POST /oauth/token``: client credentials as an RFC 6749 form (``client_id``,
  ``client_secret``) or as JSON with Beisen's names (``app_key``, ``app_secret``); answers
  ``{access_token, token_type: "bearer", expires_in}``. Tokens expire after ``token_ttl``
  seconds, or when told (:meth:`expire_tokens`, :meth:`expire_tokens_after`); an expired or
  unknown token answers 401 ``{"code": 40100, "message": ...}``.
* ``GET /api/v1/results``: ``{"code": 0, "message": "ok", "data": {"items", "total", "page",
  "page_size", "next_cursor"}}``, sorted by result id (not by update time), paged by ``page`` /
  ``page_size`` (at most 200) or by ``cursor``; ``updated_since`` (ISO 8601 or epoch
  milliseconds) keeps results updated at or after it.
* results in a vendor shape: candidate ``{name, email, mobile, ats_id}``, assessment
  ``{id, name, type}``, ``total_score``/``full_score``, ``passed``, ``level``, ``dimensions``
  ``[{name, score, full_score}]``, local times without offset (``2024-03-01 10:00:00``, Beijing)
  for ``invited_at``/``completed_at``, and ``updated_at`` in ISO 8601 with ``+08:00``.
* 429 with ``Retry-After`` through :class:`~hub.sandbox.base.Faults` or a ``rate_limit``.
"""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hub.sandbox.base import Request, Response, Simulator, route
from hub.sandbox.people import people
from hub.sandbox.recruiting import RecruitingSimulator

TOKEN_PATH = "/oauth/token"  # noqa: S105 - a path, not a secret
RESULTS_PATH = "/api/v1/results"
MAX_PAGE_SIZE = 200
CLIENT_ID = "sim-assessment-client"
#: The client secret the simulator accepts (nothing real: a simulator's fixed value).
CLIENT_SECRET = "sim-assessment-secret"  # noqa: S105
BEIJING = timezone(timedelta(hours=8))
PACKAGES = (
    ("EV-COG-01", "通用认知能力测评", "COGNITIVE", ("逻辑推理", "数字推理", "言语理解")),
    ("EV-PER-02", "职业性格测评", "PERSONALITY", ("外向性", "尽责性", "开放性", "宜人性")),
    ("EV-SKL-03", "数据分析技能测评", "SKILLS", ("SQL", "统计基础", "Excel")),
)


def _local(ts: float) -> str:
    """Beijing wall time without an offset, as many Chinese systems write it."""
    return datetime.fromtimestamp(ts, BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _iso8(ts: float) -> str:
    return datetime.fromtimestamp(ts, BEIJING).isoformat(timespec="milliseconds")


class AssessmentRestSimulator(RecruitingSimulator):
    """An assessment platform's results API (Beisen / in-house style), OAuth client credentials, ``size`` results."""

    vendor = "assessment-rest"
    public_paths = (TOKEN_PATH,)

    def __init__(
        self,
        *,
        seed: int = 1,
        size: int = 40,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.client_id, self.client_secret = client_id, client_secret
        self.token_requests = 0
        self._new_secret: str | None = None
        self._data_lock = threading.RLock()
        self._rng = random.Random(seed)
        #: result id -> result, in the API's (vendor) shape; ``_updated`` holds update times
        self.results: dict[str, dict[str, Any]] = {}
        self._updated: dict[str, float] = {}
        now = self.clock()
        crowd = people(max(1, size), seed=seed)
        spacing = min(3600.0, 30 * 86400 / max(1, size))
        for i, person in enumerate(crowd):
            invited = now - 40 * 86400 + i * spacing
            # A mobile number valid in CN (the generator's are not all), so identity can use it.
            mobile = f"1{(3, 5, 8)[i % 3]}{'01235689'[person.index % 8]}{int(person.phone[-8:]):08d}"
            self._add(person.name, person.email, mobile, f"C{person.index:05d}", invited, i)

    # -- data -----------------------------------------------------------------------------------

    def _add(
        self, name: str, email: str, mobile: str, ats_id: str | None, invited: float, i: int
    ) -> dict[str, Any]:
        rng = self._rng
        package_id, package, kind, dimensions = PACKAGES[i % len(PACKAGES)]
        result_id = f"R{len(self.results) + 1:06d}"
        result: dict[str, Any] = {
            "id": result_id,
            "candidate": {"name": name, "email": email, "mobile": mobile, "ats_id": ats_id},
            "assessment": {"id": package_id, "name": package, "type": kind},
            "status": "invited",
            "total_score": None,
            "full_score": 100,
            "passed": None,
            "level": None,
            "dimensions": [],
            "report_url": None,
            "invited_at": _local(invited),
            "completed_at": None,
        }
        self.results[result_id] = result
        self._updated[result_id] = invited
        if rng.random() < 0.8:
            self._finish(result, invited + rng.randint(3600, 3 * 86400), dimensions)
        return result

    def _finish(self, result: dict[str, Any], at: float, dimensions: tuple[str, ...] | None = None) -> None:
        rng = self._rng
        labels = dimensions or next(p[3] for p in PACKAGES if p[0] == result["assessment"]["id"])
        scores = [rng.randint(40, 100) for _ in labels]
        dims = [
            {"name": label, "score": score, "full_score": 100}
            for label, score in zip(labels, scores, strict=True)
        ]
        total = round(sum(scores) / len(scores), 1)
        result.update(
            status="completed",
            total_score=total,
            passed=total >= 60,
            level="A" if total >= 85 else "B" if total >= 70 else "C" if total >= 60 else "D",
            dimensions=dims,
            report_url=f"https://assess.example.com/report/{result['id']}",
            completed_at=_local(at),
        )
        self._updated[result["id"]] = at + rng.random()  # sub-second: ids updated in one second differ

    def add_result(self, name: str, email: str, mobile: str, ats_id: str | None = None) -> dict[str, Any]:
        """A new invitation, now."""
        with self._data_lock:
            return self._add(name, email, mobile, ats_id, self.clock(), len(self.results))

    def finish(self, result_id: str) -> dict[str, Any]:
        """The candidate finishes now: scored, updated now."""
        with self._data_lock:
            result = self.results[result_id]
            self._finish(result, self.clock())
            self._updated[result_id] = self.clock()
            return result

    def rescore(self, result_id: str, total: float) -> None:
        """A manual re-score, updated now."""
        with self._data_lock:
            self.results[result_id]["total_score"] = total
            self._updated[result_id] = self.clock()

    def render(self, result_id: str) -> dict[str, Any]:
        result = dict(self.results[result_id])
        result["candidate"] = dict(result["candidate"])
        result["dimensions"] = [dict(d) for d in result["dimensions"]]
        result["updated_at"] = _iso8(self._updated[result_id])
        return result

    # -- tokens ---------------------------------------------------------------------------------

    def expire_tokens_after(self, requests: int, new_secret: str | None = None) -> None:
        """Expire every token once ``requests`` more authorised requests have been answered;
        with ``new_secret`` the client secret is rotated at that moment too."""
        with self._lock:
            self._new_secret = new_secret
            super().expire_tokens_after(requests + 1)

    def expire_tokens(self) -> None:
        with self._lock:
            super().expire_tokens()
            if self._new_secret is not None:
                self.client_secret, self._new_secret = self._new_secret, None

    def authenticate(self, request: Request) -> Response | None:
        self.count_authenticated()
        if not self.token_valid(self.bearer(request)):
            return Response(401, {"code": 40100, "message": "access token invalid or expired"})
        return None

    @route("POST", TOKEN_PATH)
    def token(self, request: Request) -> Response:
        with self._lock:
            self.token_requests += 1
        content_type = request.headers.get("content-type", "")
        try:
            body = request.json() if "json" in content_type else request.form()
        except ValueError:
            return Response(400, {"error": "invalid_request"})
        if not isinstance(body, dict) or body.get("grant_type") != "client_credentials":
            return Response(400, {"error": "unsupported_grant_type"})
        client = body.get("client_id", body.get("app_key"))
        secret = body.get("client_secret", body.get("app_secret"))
        if client != self.client_id or secret != self.client_secret:
            return Response(401, {"error": "invalid_client"})
        token, ttl = self.issue_token()
        return Response(200, {"access_token": token, "token_type": "bearer", "expires_in": int(ttl)})

    @route("GET", RESULTS_PATH)
    def list_results(self, request: Request) -> Response:
        since_text = request.arg("updated_since")
        since: float | None = None
        if since_text:
            try:
                since = float(since_text) / 1000 if since_text.isdigit() else _parse_iso(since_text)
            except ValueError:
                return Response(400, {"code": 40001, "message": "updated_since is not a time"})
        try:
            size = int(request.arg("page_size", "50") or 50)
            page = int(request.arg("page", "1") or 1)
            cursor = request.arg("cursor")
            start = int(cursor.split(":", 1)[1]) if cursor else (page - 1) * size
        except (ValueError, IndexError):
            return Response(400, {"code": 40002, "message": "bad paging parameters"})
        if not 1 <= size <= MAX_PAGE_SIZE or page < 1 or start < 0:
            return Response(400, {"code": 40002, "message": f"page >= 1, 1 <= page_size <= {MAX_PAGE_SIZE}"})
        with self._data_lock:
            ids = sorted(self.results)
            if since is not None:
                ids = [i for i in ids if self._updated[i] >= since]
            items = [self.render(i) for i in ids[start : start + size]]
        following = start + size
        return Response(
            200,
            {
                "code": 0,
                "message": "ok",
                "data": {
                    "items": items,
                    "total": len(ids),
                    "page": page,
                    "page_size": size,
                    "next_cursor": f"c:{following}" if following < len(ids) else None,
                },
            },
        )

    # -- sandbox --------------------------------------------------------------------------------

    @classmethod
    def for_sandbox(cls, *, port: int, seed: int, size: int) -> Simulator:
        return cls(port=port, seed=seed, size=size)

    def describe(self) -> dict[str, Any]:
        return {
            "vendor": self.vendor,
            "url": self.url,
            "oauth_url": self.url + TOKEN_PATH,
            "results_path": RESULTS_PATH,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "results": len(self.results),
        }


def _parse_iso(text: str) -> float:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
