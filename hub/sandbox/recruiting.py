"""What the recruiting simulators share (Moka, Beisen, Lever, HackerRank, an assessment API).

Not a vendor: :class:`RecruitingSimulator` adds to :class:`~hub.sandbox.base.Simulator` what
their tests and the demo use alike: the vendor's documented rate limit unless told otherwise,
a ``latency`` before every business answer (to stop a sync midway), a ``timeline`` of answers
(to check waits such as ``Retry-After``), and every token expired at the n-th authenticated
request (a token expiry mid-sync). The helpers below generate ids and phone numbers the way
the vendors' data needs them.
"""

from __future__ import annotations

import base64
import binascii
import random
import time
import uuid
from typing import Any, ClassVar

import orjson

from hub.sandbox.base import RateLimit, Request, Response, Simulator

#: mainland mobile prefixes that are assigned (the shared generator also draws unassigned ones)
MOBILE_PREFIXES = tuple(
    str(p) for p in (*range(130, 134), *range(135, 140), 150, 151, 152, 158, 159, *range(186, 190))
)


def assigned_mobile(phone: str) -> str:
    """The generated number with an assigned prefix, so phone validation accepts it (still nobody's)."""
    return MOBILE_PREFIXES[int(phone[3:]) % len(MOBILE_PREFIXES)] + phone[3:]


def uuid_from(rng: random.Random) -> str:
    """A version-4 UUID drawn from ``rng`` (the same seed, the same ids)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def json_body(request: Request) -> Any:
    """The request's JSON body; None when it is empty or not JSON (the vendor answers "bad request")."""
    try:
        return request.json()
    except orjson.JSONDecodeError:
        return None


def basic_user(request: Request) -> str | None:
    """The user name of an HTTP Basic ``Authorization`` (where vendors take the API key): None
    when the request is not Basic-authenticated, "" when its credentials cannot be read."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(value.strip(), validate=True).decode().split(":", 1)[0]
    except (binascii.Error, UnicodeDecodeError):
        return ""


class RecruitingSimulator(Simulator):
    """A simulator with a vendor rate limit, ``latency``, a ``timeline`` and token expiry on cue.

    ``rate_limit="vendor"`` (the default) applies :attr:`vendor_rate_limit`; ``None`` lifts
    every limit. Keyword arguments beyond these go to :class:`~hub.sandbox.base.Simulator`.
    """

    #: the vendor's documented limit: (requests, window in seconds); None when none is documented
    vendor_rate_limit: ClassVar[tuple[int, float] | None] = None

    def __init__(
        self, *, latency: float = 0.0, rate_limit: RateLimit | str | None = "vendor", **kwargs: Any
    ) -> None:
        if rate_limit == "vendor":
            rate_limit = RateLimit(*self.vendor_rate_limit) if self.vendor_rate_limit else None
        assert rate_limit is None or isinstance(rate_limit, RateLimit)
        super().__init__(rate_limit=rate_limit, **kwargs)
        #: seconds slept before every answer on a path that is not public
        self.latency = latency
        #: (monotonic time, method, path, status) of every request, to check waits
        self.timeline: list[tuple[float, str, str, int]] = []
        self._authenticated = 0
        self._expire_at: int | None = None

    def dispatch(self, request: Request) -> Response:
        if self.latency and not request.path.startswith(self.public_paths):
            time.sleep(self.latency)
        response = super().dispatch(request)
        with self._lock:
            self.timeline.append((time.monotonic(), request.method, request.path, response.status))
        return response

    def expire_tokens_after(self, requests: int) -> None:
        """Expire every access token when the n-th authenticated request from now arrives."""
        with self._lock:
            self._expire_at = self._authenticated + requests

    def count_authenticated(self) -> None:
        """Count a request that presents a credential; at the one asked for, expire every token."""
        with self._lock:
            self._authenticated += 1
            if self._expire_at is not None and self._authenticated >= self._expire_at:
                self._expire_at = None
                self.expire_tokens()
