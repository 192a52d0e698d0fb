"""Freshness and replay checks for callbacks, after their signature has been verified.

A signed callback stays valid forever unless the receiver refuses old timestamps and remembers
what it has accepted. Vendors disagree on units: WeCom and Feishu sign seconds, DingTalk, e签宝
and FASC sign milliseconds (vendors.md §0); :data:`VENDOR_TIMESTAMP_UNITS` records which.

Order matters: verify the signature first, then call :meth:`ReplayGuard.check`. Checking the
nonce of an unsigned request would let anyone burn the nonces of messages yet to come.

:class:`NonceStore` is the persistence seam. :class:`InMemoryNonceStore` serves one process
(tests, simulators, a single receiver); a receiver running several workers implements the same
one-method protocol on its database (``INSERT ... ON CONFLICT DO NOTHING``, expiring old rows).
"""

from __future__ import annotations

import enum
import hashlib
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from hub.callbacks.errors import ReplayedNonce, SignatureError, StaleTimestamp

DEFAULT_TOLERANCE_S = 300  # FASC documents ±5 min; the others document nothing stricter
DEFAULT_DEDUPE_TTL_S = 24 * 3600  # for delivery ids without a timestamp (Greenhouse-Event-ID)


class TimeUnit(enum.Enum):
    """The unit a vendor's signed timestamp counts in; the value is units per second."""

    SECONDS = 1
    MILLISECONDS = 1000


VENDOR_TIMESTAMP_UNITS: dict[str, TimeUnit] = {
    "wecom": TimeUnit.SECONDS,
    "dingtalk": TimeUnit.MILLISECONDS,
    "lark": TimeUnit.SECONDS,
    "esign": TimeUnit.MILLISECONDS,
    "fasc": TimeUnit.MILLISECONDS,
}

# Epoch seconds pass 10**11 in the year 5138 and epoch milliseconds passed it in 1973: a value
# above it is milliseconds, one below it (for any date since then) is seconds.
_MS_THRESHOLD = 10**11
_EXACT_DRIFT_LIMIT_S = 3600


def timestamp_seconds(value: str | int, unit: TimeUnit) -> float:
    """Epoch seconds of a signed timestamp; :class:`StaleTimestamp` if it is not an integer."""
    if isinstance(value, str):
        text = value.strip()
        if not text.isdigit():
            raise StaleTimestamp("timestamp is missing or not a decimal integer")
        number = int(text)
    else:
        number = value
    return number / unit.value


def signed_at(value: str | int, unit: TimeUnit) -> datetime:
    """The signed timestamp as an aware UTC datetime (what a receiver stores or compares)."""
    try:
        return datetime.fromtimestamp(timestamp_seconds(value, unit), tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise StaleTimestamp("timestamp is outside the range of dates") from None


def check_freshness(
    value: str | int,
    unit: TimeUnit,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> float:
    """Epoch seconds of ``value`` if it lies within ``tolerance_s`` of ``now`` (either side).

    A timestamp in the wrong unit fails with a message that says so, since that is a
    configuration mistake rather than an attack.
    """
    moment = timestamp_seconds(value, unit)
    current = time.time() if now is None else now
    drift = current - moment
    if abs(drift) <= tolerance_s:
        return moment
    raw = int(value) if isinstance(value, int) else int(str(value).strip())
    if unit is TimeUnit.SECONDS and raw >= _MS_THRESHOLD:
        raise StaleTimestamp("timestamp looks like milliseconds where seconds are expected")
    if unit is TimeUnit.MILLISECONDS and raw < _MS_THRESHOLD:
        raise StaleTimestamp("timestamp looks like seconds where milliseconds are expected")
    direction = "old" if drift > 0 else "in the future"
    # The drift tells clock skew from a replay; beyond an hour its exact value would only let a
    # reader recompute whatever number the header carried.
    amount = f"{abs(drift):.0f} s" if abs(drift) <= _EXACT_DRIFT_LIMIT_S else "more than an hour"
    raise StaleTimestamp(f"timestamp is {amount} {direction}; the window is {tolerance_s:g} s")


class NonceStore(Protocol):
    """Remembers accepted nonces until they expire."""

    def add_if_absent(self, key: str, expires_at: float) -> bool:
        """Record ``key`` until ``expires_at`` (epoch seconds); ``False`` if it is already held."""
        ...


class InMemoryNonceStore:
    """A thread-safe :class:`NonceStore` for one process, bounded to ``max_entries``.

    Expired keys are dropped as new ones arrive. If the bound is reached with every key still
    live, the oldest is forgotten: under a flood, memory stays bounded and the oldest nonces
    lose their replay protection first (their timestamps are the nearest to going stale anyway).
    """

    def __init__(self, max_entries: int = 100_000, *, clock: Callable[[], float] = time.time) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self._max_entries = max_entries
        self._clock = clock
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._expiry)

    def add_if_absent(self, key: str, expires_at: float) -> bool:
        with self._lock:
            now = self._clock()
            held = self._expiry.get(key)
            if held is not None and held > now:
                return False
            self._expiry.pop(key, None)
            if len(self._expiry) >= self._max_entries:
                self._purge(now)
            while len(self._expiry) >= self._max_entries:
                del self._expiry[next(iter(self._expiry))]
            self._expiry[key] = expires_at
            return True

    def _purge(self, now: float) -> None:
        for stale in [key for key, expiry in self._expiry.items() if expiry <= now]:
            del self._expiry[stale]


def nonce_key(scope: str, timestamp: str | int | None, nonce: str) -> str:
    """A fixed-length key for ``(scope, timestamp, nonce)``; the raw values are not stored.

    Including the timestamp means two deliveries that happen to draw the same nonce at
    different times are not confused; a replay repeats both, because both are signed.
    """
    material = "\x00".join([scope, "" if timestamp is None else str(timestamp).strip(), nonce])
    return hashlib.sha256(material.encode("utf-8", "replace")).hexdigest()


class ReplayGuard:
    """Freshness plus single use, per scope (one scope per connector or vendor endpoint)."""

    def __init__(
        self,
        store: NonceStore,
        *,
        tolerance_s: float = DEFAULT_TOLERANCE_S,
        dedupe_ttl_s: float = DEFAULT_DEDUPE_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._tolerance_s = tolerance_s
        self._dedupe_ttl_s = dedupe_ttl_s
        self._clock = clock

    def check(
        self,
        scope: str,
        *,
        nonce: str,
        timestamp: str | int | None = None,
        unit: TimeUnit = TimeUnit.SECONDS,
    ) -> None:
        """Raise :class:`StaleTimestamp` or :class:`ReplayedNonce`, else remember the nonce.

        With a ``timestamp`` the nonce is kept for twice the tolerance (a timestamp may be up to
        ``tolerance_s`` ahead); without one (a delivery id such as ``Greenhouse-Event-ID``), for
        ``dedupe_ttl_s``.
        """
        if not nonce:
            raise SignatureError(f"callback for scope {scope!r} carries no nonce or delivery id")
        now = self._clock()
        if timestamp is None:
            expires_at = now + self._dedupe_ttl_s
        else:
            check_freshness(timestamp, unit, tolerance_s=self._tolerance_s, now=now)
            expires_at = now + 2 * self._tolerance_s
        if not self._store.add_if_absent(nonce_key(scope, timestamp, nonce), expires_at):
            raise ReplayedNonce(f"callback for scope {scope!r} was already accepted")
