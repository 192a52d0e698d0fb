"""Retries with exponential backoff and full jitter for transient failures."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

import requests
from sqlalchemy.exc import DBAPIError, OperationalError

from hub.errors import RetriableSyncError

T = TypeVar("T")

#: Tries of one call (the first included) before a transient failure is final.
ATTEMPTS = 5
TRANSIENT_HTTP = {408, 425, 429, 500, 502, 503, 504}
#: Driver messages of operational errors worth retrying (others, like a missing table, are not).
TRANSIENT_DB_SIGNS = (
    "database is locked",
    "busy",
    "connection",
    "server closed",
    "timeout",
    "timed out",
    "lost connection",
    "gone away",
    "deadlock",
    "could not connect",
    "terminating",
    "too many clients",
    "try restarting",
)
#: ... unless they say retrying cannot help (PostgreSQL puts these in "connection ... failed: FATAL: ...").
PERMANENT_DB_SIGNS = (
    "does not exist",
    "authentication failed",
    "access denied",
    "permission denied",
    "unknown database",
    "no such table",
)


def is_transient(exc: BaseException) -> bool:
    """Timeouts, 429 / 5xx, dropped connections and lost database connections."""
    if isinstance(exc, RetriableSyncError | TimeoutError | ConnectionError | socket.timeout):
        return True
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return exc.response.status_code in TRANSIENT_HTTP
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, OperationalError):
        text = str(exc.orig if exc.orig is not None else exc).lower()
        if any(sign in text for sign in PERMANENT_DB_SIGNS):
            return False
        return any(sign in text for sign in TRANSIENT_DB_SIGNS)
    return False


def retry_after_of(exc: BaseException) -> float | None:
    """Seconds the server asked us to wait: ``exc.retry_after``, or an HTTP ``Retry-After`` header."""
    value = getattr(exc, "retry_after", None)
    if value is not None:
        return float(value)
    response = getattr(exc, "response", None)
    header = response.headers.get("Retry-After") if isinstance(response, requests.Response) else None
    if not header:
        return None
    try:
        return max(float(header), 0.0)
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max((moment - datetime.now(UTC)).total_seconds(), 0.0)


def backoff_delay(
    attempt: int, base: float = 0.5, cap: float = 60.0, retry_after: float | None = None
) -> float:
    """Seconds to wait before ``attempt`` (1-based): full jitter, or the server's Retry-After."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), cap)
    return random.uniform(0, min(cap, base * 2.0 ** min(attempt - 1, 64)))


def call_with_retry(
    func: Callable[[], T],
    *,
    attempts: int = ATTEMPTS,
    base: float = 0.5,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``func``; on a transient error wait and try again, up to ``attempts`` times."""
    for attempt in range(1, attempts + 1):
        try:
            return func()
        except Exception as exc:
            if attempt == attempts or not is_transient(exc):
                raise
            delay = backoff_delay(attempt, base, retry_after=retry_after_of(exc))
            if on_retry is not None:
                on_retry(attempt, exc, delay)
            sleep(delay)
    raise AssertionError("unreachable")
