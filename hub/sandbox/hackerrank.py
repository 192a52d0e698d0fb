"""A simulator of the HackerRank for Work API v3 (tests, candidates, results), for tests and the demo.

It is a simulator, not HackerRank: every answer carries ``X-Hub-Simulator: hackerrank`` and the
data is generated (:mod:`hub.sandbox.people`), seeded. Shapes follow what public clients of the
API agree on (vendors.md §5.1; checked again for this module, see ``hub_hackerrank.source``):

* base path ``/x/api/v3``; ``Authorization: Bearer <API key>``, or the legacy Basic auth with the
  key as user name and an empty password; an unknown or revoked key answers 401;
* lists take ``limit`` (at most 100 here) and ``offset`` and answer
  ``{data, page_total, offset, previous, next, first, last, total}``; ``next`` is an absolute URL,
  ``null`` on the last page;
* ``GET /tests``, ``GET /tests/{id}``, ``GET /tests/{id}/candidates``,
  ``GET /tests/{id}/candidates/search?search=``, ``GET /tests/{id}/candidates/{cid}`` (with
  ``additional_fields=questions`` the per-question results, code included), ``POST
  /tests/{id}/candidates`` (an invitation);
* candidates carry ``status`` as an integer: ``-1`` invited and not started, ``7`` finished
  with its report ready (both seen in public clients), ``1`` in progress (assumed);
  times are written ``2024-03-01T08:00:00+0000``.

Not documented by HackerRank, and therefore choices of this simulator: the rate limit (none
unless ``rate_limit`` is given; 429 + ``Retry-After`` when over it or when :class:`Faults` says
so), the 401/400 bodies (``{"message": ...}``), and the absence of an updated-since filter on the
candidate list (no public client uses one).
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from hub.sandbox.base import Request, Response, Simulator, route
from hub.sandbox.people import people
from hub.sandbox.recruiting import RecruitingSimulator, basic_user

BASE = "/x/api/v3"
MAX_LIMIT = 100
#: The API key the simulator accepts unless told otherwise (it is not a secret: nothing real).
DEFAULT_KEY = "sim-hackerrank-key"
STATUS_INVITED, STATUS_IN_PROGRESS, STATUS_COMPLETED = -1, 1, 7
TEST_NAMES = ("Python 后端笔试", "SQL 数据分析", "Java 工程师测评", "算法基础", "机器学习工程")


def hr_time(ts: float) -> str:
    """A time as HackerRank writes it (seconds, ``+0000``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(ts))


class HackerRankSimulator(RecruitingSimulator):
    """HackerRank for Work on loopback, with seeded tests and candidates.

    ``tests`` tests with ``candidates_per_test`` invitations each; a share of them finished
    (status 7, scored per question), some in progress, the rest only invited. Use
    :meth:`invite`, :meth:`begin_attempt` and :meth:`finish_attempt` to move candidates along,
    :meth:`revoke_after` to rotate the API key mid-sync, ``latency`` to slow every answer.
    """

    vendor = "hackerrank"

    def __init__(
        self,
        *,
        seed: int = 1,
        tests: int = 2,
        candidates_per_test: int = 30,
        api_keys: tuple[str, ...] = (DEFAULT_KEY,),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.api_keys: set[str] = set(api_keys)
        self.tests: list[dict[str, Any]] = []
        #: test id -> its candidates, in invitation order
        self.candidates: dict[str, list[dict[str, Any]]] = {}
        self._max_scores: dict[str, dict[str, int]] = {}  # test id -> question id -> max score
        self._answers: dict[str, dict[str, dict[str, Any]]] = {}  # candidate id -> question details
        self._started: dict[str, float] = {}  # candidate id -> attempt start (clock seconds)
        self._revoke_after: dict[str, int] = {}
        self._data_lock = threading.RLock()
        self._serial = 100_000
        self._rng = random.Random(seed)
        self._seed(seed, tests, candidates_per_test)

    # -- data ---------------------------------------------------------------------------------

    def _next_id(self) -> str:
        self._serial += 1
        return str(self._serial)

    def _seed(self, seed: int, tests: int, per_test: int) -> None:
        rng = self._rng
        now = self.clock()
        crowd = people(max(1, tests * per_test), seed=seed)
        spacing = min(1800.0, 50 * 86400 / max(1, tests * per_test))  # every invite in the past
        for t in range(tests):
            test_id = str(380_000 + seed * 100 + t)
            questions = {f"q{test_id}-{n}": rng.choice((50, 100)) for n in range(1, rng.randint(3, 5) + 1)}
            self._max_scores[test_id] = questions
            created = now - 90 * 86400 + t * 3600
            self.tests.append(
                {
                    "id": test_id,
                    "unique_id": f"u{int(created)}{t}",
                    "name": TEST_NAMES[t % len(TEST_NAMES)]
                    + (f" #{t // len(TEST_NAMES) + 1}" if t >= 5 else ""),
                    "duration": 90,
                    "owner": "recruiting@example.com",
                    "instructions": "",
                    "created_at": hr_time(created),
                    "state": "active",
                    "locked": False,
                    "test_type": "coding",
                    "starred": False,
                    "start_time": None,
                    "end_time": None,
                    "draft": False,
                    "questions": list(questions),
                    "sections": {},
                    "tags": [],
                    "permission": 1,
                }
            )
            self.candidates[test_id] = []
            for j in range(per_test):
                person = crowd[t * per_test + j]
                invited = now - 60 * 86400 + (t * per_test + j) * spacing
                candidate = self._new_candidate(
                    test_id, person.email, person.name, [f"ats:C{person.index:05d}"], invited
                )
                roll = rng.random()
                if roll < 0.8:
                    self._start(candidate, invited + rng.randint(600, 86400))
                if roll < 0.6:
                    self._complete(
                        test_id, candidate, self._started[candidate["id"]] + rng.randint(1800, 5400)
                    )

    def _new_candidate(
        self, test_id: str, email: str, full_name: str, tags: list[str], invited: float
    ) -> dict[str, Any]:
        candidate_id = self._next_id()
        candidate: dict[str, Any] = {
            "id": candidate_id,
            "email": email,
            "full_name": full_name,
            "score": 0,
            "percentage_score": 0,
            "status": STATUS_INVITED,
            "attempt_id": None,
            "attempt_starttime": None,
            "attempt_endtime": None,
            "invited_on": hr_time(invited),
            "invite_valid": True,
            "invite_valid_from": hr_time(invited),
            "invite_valid_to": hr_time(invited + 14 * 86400),
            "invite_link": f"https://www.hackerrank.com/tests/sim{test_id}/login?b=sim{candidate_id}",
            "test": test_id,
            "tags": list(tags),
            "test_result_url": None,
            "invite_metadata": {},
            "questions": {},
            "pdf_url": None,
            "report_url": None,
            "plagiarism_status": False,
            "feedback": "",
            "ats_state": 0,
        }
        self.candidates[test_id].append(candidate)
        return candidate

    def _start(self, candidate: dict[str, Any], at: float) -> None:
        self._started[candidate["id"]] = at
        candidate["status"] = STATUS_IN_PROGRESS
        candidate["attempt_id"] = f"a{candidate['id']}"
        candidate["attempt_starttime"] = hr_time(at)

    def _complete(
        self, test_id: str, candidate: dict[str, Any], at: float, scores: dict[str, int] | None = None
    ) -> None:
        maxima = self._max_scores[test_id]
        if scores is None:
            scores = {q: self._rng.choice((0, m // 2, m)) for q, m in maxima.items()}
        if candidate["attempt_starttime"] is None:
            self._start(candidate, at - 3600)
        total, possible = sum(scores.values()), sum(maxima.values())
        candidate.update(
            status=STATUS_COMPLETED,
            attempt_endtime=hr_time(at),
            questions=dict(scores),
            score=total,
            percentage_score=round(total * 100 / possible, 2) if possible else 0,
            report_url=f"https://www.hackerrank.com/x/tests/{test_id}/candidates/{candidate['id']}/report",
            pdf_url=f"https://www.hackerrank.com/x/tests/{test_id}/candidates/{candidate['id']}/pdf",
            plagiarism_status=self._rng.random() < 0.05,
        )
        self._answers[candidate["id"]] = {
            q: {
                "answered": True,
                "score": s,
                "answer": {"code": f"# solution to {q}\nprint(42)\n", "language": "python3"},
                "submissions": [],
            }
            for q, s in scores.items()
        }

    def find(self, test_id: str, candidate_id: str) -> dict[str, Any]:
        for candidate in self.candidates.get(test_id, []):
            if candidate["id"] == candidate_id:
                return candidate
        raise KeyError(candidate_id)

    def invite(
        self, test_id: str, email: str, full_name: str, tags: list[str] | None = None
    ) -> dict[str, Any]:
        """A new invitation (status -1), invited now."""
        with self._data_lock:
            return self._new_candidate(test_id, email, full_name, list(tags or []), self.clock())

    def begin_attempt(self, test_id: str, candidate_id: str) -> None:
        """The candidate starts the test now."""
        with self._data_lock:
            self._start(self.find(test_id, candidate_id), self.clock())

    def finish_attempt(
        self, test_id: str, candidate_id: str, scores: dict[str, int] | None = None
    ) -> dict[str, Any]:
        """The candidate finishes now (scored per question; random scores unless given)."""
        with self._data_lock:
            candidate = self.find(test_id, candidate_id)
            self._complete(test_id, candidate, self.clock(), scores)
            return candidate

    def completed(self) -> list[tuple[str, dict[str, Any]]]:
        """(test id, candidate) of every finished attempt."""
        with self._data_lock:
            return [
                (test_id, c)
                for test_id, items in self.candidates.items()
                for c in items
                if c["status"] == STATUS_COMPLETED
            ]

    # -- keys -----------------------------------------------------------------------------------

    def add_key(self, key: str) -> None:
        with self._lock:
            self.api_keys.add(key)

    def revoke(self, key: str) -> None:
        with self._lock:
            self.api_keys.discard(key)

    def revoke_after(self, key: str, requests: int) -> None:
        """Revoke ``key`` once it has authorised ``requests`` more requests (a rotation mid-sync)."""
        with self._lock:
            self._revoke_after[key] = requests

    @staticmethod
    def _key_of(request: Request) -> str | None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            return value.strip() or None
        return basic_user(request) or None

    def authenticate(self, request: Request) -> Response | None:
        key = self._key_of(request)
        with self._lock:
            if key is None or key not in self.api_keys:
                return Response(401, {"message": "Invalid API key"})
            left = self._revoke_after.get(key)
            if left is not None:
                if left <= 0:
                    self.api_keys.discard(key)
                    del self._revoke_after[key]
                    return Response(401, {"message": "Invalid API key"})
                self._revoke_after[key] = left - 1
        return None

    # -- routes ---------------------------------------------------------------------------------

    def _page(self, request: Request, items: list[dict[str, Any]]) -> Response:
        try:
            limit = int(request.arg("limit", str(MAX_LIMIT)) or MAX_LIMIT)
            offset = int(request.arg("offset", "0") or 0)
        except ValueError:
            return Response(400, {"message": "limit and offset must be integers"})
        if not 1 <= limit <= MAX_LIMIT or offset < 0:
            return Response(400, {"message": f"limit must be 1..{MAX_LIMIT} and offset >= 0"})
        page = items[offset : offset + limit]
        total = len(items)
        extra = "".join(
            f"&{k}={v[0]}" for k, v in sorted(request.query.items()) if k not in ("limit", "offset")
        )

        def link(at: int) -> str:
            return f"{self.url}{request.path}?limit={limit}&offset={at}{extra}"

        last = max(0, (total - 1) // limit * limit)
        return Response(
            200,
            {
                "data": page,
                "page_total": len(page),
                "offset": offset,
                "previous": link(max(0, offset - limit)) if offset > 0 else None,
                "next": link(offset + limit) if offset + limit < total else None,
                "first": link(0),
                "last": link(last),
                "total": total,
            },
        )

    def _test(self, test_id: str) -> dict[str, Any] | None:
        return next((t for t in self.tests if t["id"] == test_id), None)

    @route("GET", BASE + "/tests")
    def list_tests(self, request: Request) -> Response:
        with self._data_lock:
            return self._page(request, [dict(t) for t in self.tests])

    @route("GET", BASE + "/tests/{test_id}")
    def get_test(self, request: Request) -> Response:
        test = self._test(request.params["test_id"])
        if test is None:
            return Response(404, {"message": "Test not found"})
        return Response(200, dict(test))

    @route("GET", BASE + "/tests/{test_id}/candidates/search")
    def search_candidates(self, request: Request) -> Response:
        test_id = request.params["test_id"]
        if self._test(test_id) is None:
            return Response(404, {"message": "Test not found"})
        needle = (request.arg("search") or "").strip().lower()
        with self._data_lock:
            found = [
                dict(c)
                for c in self.candidates[test_id]
                if needle and (needle in c["email"].lower() or needle in c["full_name"].lower())
            ]
        return self._page(request, found)

    @route("GET", BASE + "/tests/{test_id}/candidates")
    def list_candidates(self, request: Request) -> Response:
        test_id = request.params["test_id"]
        if self._test(test_id) is None:
            return Response(404, {"message": "Test not found"})
        with self._data_lock:
            return self._page(request, [dict(c) for c in self.candidates[test_id]])

    @route("GET", BASE + "/tests/{test_id}/candidates/{candidate_id}")
    def get_candidate(self, request: Request) -> Response:
        test_id, candidate_id = request.params["test_id"], request.params["candidate_id"]
        with self._data_lock:
            try:
                candidate = dict(self.find(test_id, candidate_id))
            except KeyError:
                return Response(404, {"message": "Candidate not found"})
            fields = {f.strip() for f in (request.arg("additional_fields") or "").split(",")}
            if "questions" in fields and candidate_id in self._answers:
                candidate["questions"] = {q: dict(a) for q, a in self._answers[candidate_id].items()}
        return Response(200, candidate)

    @route("POST", BASE + "/tests/{test_id}/candidates")
    def create_candidate(self, request: Request) -> Response:
        test_id = request.params["test_id"]
        if self._test(test_id) is None:
            return Response(404, {"message": "Test not found"})
        body = request.json() or {}
        if not isinstance(body, dict) or not body.get("email"):
            return Response(400, {"message": "email is required"})
        candidate = self.invite(
            test_id, str(body["email"]), str(body.get("full_name") or ""), body.get("tags")
        )
        if body.get("test_result_url"):
            candidate["test_result_url"] = str(body["test_result_url"])
        return Response(
            201, {"id": candidate["id"], "email": candidate["email"], "test_link": candidate["invite_link"]}
        )

    # -- sandbox --------------------------------------------------------------------------------

    @classmethod
    def for_sandbox(cls, *, port: int, seed: int, size: int) -> Simulator:
        tests = max(1, min(5, size // 200 or 1))
        return cls(port=port, seed=seed, tests=tests, candidates_per_test=max(1, size // tests))

    def describe(self) -> dict[str, Any]:
        return {
            "vendor": self.vendor,
            "url": self.url,
            "base_url": self.url + BASE,
            "api_key": sorted(self.api_keys)[0] if self.api_keys else None,
            "tests": len(self.tests),
            "candidates": sum(len(c) for c in self.candidates.values()),
        }
