"""What a hand-written vendor API client needs around ``requests``: tokens, retries, typed errors.

Vendors that answer ``{code, message}`` envelopes (often with HTTP 200 on errors) and hand out
short-lived app tokens (WeCom, DingTalk, Feishu, ...) all need the same machinery, which lives
here so each plugin keeps only its vendor's facts (paths, envelopes, error codes):

- :class:`VendorError` and its kinds (:class:`AuthFailed`, :class:`RateLimited`,
  :class:`Unavailable`, :class:`OutcomeUnknown`, :class:`Conflict`, :class:`NotFound`): a
  plugin subclasses each under its own base (``class WeComConflict(WeComError, Conflict)``), so
  callers catch either the vendor's or the kind's class. Messages come from the vendor's
  :class:`ErrorCodes` table and never quote the vendor's text for codes the table knows.
- :class:`TokenCache`: tokens kept until ``margin`` seconds before they expire.
- :class:`VendorClient`: one HTTP exchange retried on timeouts, 5xx (and 429) with
  :func:`hub.retry.backoff_delay` when that is safe (a write whose answer is lost raises
  :class:`OutcomeUnknown` instead of being sent again), and the authenticated call: the token
  refetched once when the vendor calls it invalid, rate limits backed off (``Retry-After``-like
  hints honoured), the vendor's "busy" code retried for reads.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Self, TypeVar

import requests

from hub.errors import HubError
from hub.masking import mask_text
from hub.retry import backoff_delay

#: A vendor's error code: a number (WeCom, Feishu) or a string (DingTalk's ``sub_code``).
Code = int | str
#: No answer, or one that broke off: the request may or may not have reached the vendor
#: (a timeout, a refused or reset connection, a connection closed before or during the answer).
CONNECTION_LOST: tuple[type[Exception], ...] = (
    requests.Timeout,
    requests.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
)


class VendorError(HubError):
    """A vendor call failed; ``code`` is the vendor's (or the HTTP status), ``operation`` hub's.

    ``reason`` is a sentence from the vendor's code table (no value from the request);
    ``field`` names what a conflict is about (``mobile``); ``retry_after`` is the wait the
    vendor asked for, when it said.
    """

    #: the vendor's name in messages ("WeCom")
    vendor: ClassVar[str] = "the vendor"
    #: how the vendor calls its code ("errcode")
    code_label: ClassVar[str] = "code"
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        operation: str,
        code: Code | None,
        reason: str,
        *,
        field: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.operation = operation
        self.code = code
        self.reason = reason
        self.field = field
        self.retry_after = retry_after
        shown = f"{self.code_label} {code}" if code is not None else "no answer"
        super().__init__(f"{self.vendor} {operation} failed: {shown}: {reason}")


class AuthFailed(VendorError):
    """Credentials, IP allow-list or permissions are wrong: fix the configuration, do not retry."""


class RateLimited(VendorError):
    """Still over the vendor's rate limit after backing off; try again later (``retry_after``)."""

    retryable = True


class Unavailable(VendorError):
    """Timeouts or server errors outlasted the retries; try again later."""

    retryable = True


class OutcomeUnknown(VendorError):
    """A write was sent and its answer lost: look the record up before sending it again."""

    retryable = True


class Conflict(VendorError):
    """The value of ``field`` (a mobile, an e-mail, an id) already belongs to another record."""


class NotFound(VendorError):
    """The record the call names does not exist."""


E = TypeVar("E", bound=VendorError)


@dataclass(frozen=True)
class ErrorCodes:
    """A vendor's error codes: a sentence for each known one, and which kind of failure it is."""

    #: code -> (field it is about, or "", a sentence that quotes no value)
    known: Mapping[Any, tuple[str, str]]
    #: codes that mean "fetch a new token and try once more"
    token_invalid: frozenset[Any] = frozenset()
    #: codes that mean "back off and try again"
    throttled: frozenset[Any] = frozenset()
    auth: frozenset[Any] = frozenset()
    conflict: frozenset[Any] = frozenset()
    not_found: frozenset[Any] = frozenset()

    def describe(self, code: Code | None, message: str = "") -> tuple[str, str]:
        """(field, reason) for a code; an unknown code keeps a masked excerpt of the vendor's text.

        The vendor's text can quote the request (``mobile existed:<userid>``), and these
        messages reach logs, task rows and the CLI: it is only used when the table is silent.
        """
        if code in self.known:
            return self.known[code]
        return "", mask_text(message.strip())[:120] or "unexpected answer"


@dataclass(frozen=True)
class ErrorKinds(Generic[E]):
    """A vendor's error classes, one per kind, and the code table that picks among them."""

    codes: ErrorCodes
    error: type[E]
    auth: type[E]
    rate_limited: type[E]
    unavailable: type[E]
    outcome_unknown: type[E]
    conflict: type[E]
    not_found: type[E]
    #: the vendor's code for an HTTP status (DingTalk's codes are strings)
    code_of_status: Callable[[int], Code] = int

    @classmethod
    def of(
        cls, codes: ErrorCodes, base: type[E], code_of_status: Callable[[int], Code] = int
    ) -> ErrorKinds[E]:
        """The kinds a vendor declared under ``base``: its subclass of each kind class."""

        def kind(of: type[VendorError]) -> type[E]:
            found = [c for c in base.__subclasses__() if issubclass(c, of)]
            if len(found) != 1:
                raise TypeError(f"{base.__name__} needs exactly one subclass that is a {of.__name__}")
            return found[0]

        return cls(
            codes,
            base,
            kind(AuthFailed),
            kind(RateLimited),
            kind(Unavailable),
            kind(OutcomeUnknown),
            kind(Conflict),
            kind(NotFound),
            code_of_status,
        )

    def error_for(self, operation: str, code: Code, message: str) -> E:
        """The typed error for a code the vendor answered."""
        field, reason = self.codes.describe(code, message)
        if code in self.codes.conflict:
            return self.conflict(operation, code, reason, field=field)
        if code in self.codes.not_found:
            return self.not_found(operation, code, reason, field=field)
        if code in self.codes.auth:
            return self.auth(operation, code, reason, field=field)
        if code in self.codes.throttled:
            return self.rate_limited(operation, code, reason)
        return self.error(operation, code, reason, field=field)

    def token_refused(self, operation: str, code: Code, message: str) -> E:
        """A token endpoint's refusal: a rate limit stays one, anything else is an auth error."""
        error = self.error_for(operation, code, message)
        if isinstance(error, self.rate_limited):
            return error
        return self.auth(operation, code, error.reason)


class TokenCache:
    """Access tokens by key (one per secret), each kept until ``margin`` seconds before expiry.

    The margin is at most half a token's lifetime, so a short-lived token is still reused.
    Fetches are serialised: threads that need a token at once share one fetch.
    """

    def __init__(self, clock: Callable[[], float], margin: float) -> None:
        self._clock = clock
        self._margin = margin
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        #: tokens fetched so far (tests check that the cache holds)
        self.fetches = 0

    def get(self, key: str, fetch: Callable[[], tuple[str, float]]) -> str:
        """The cached token for ``key``, or a new one from ``fetch`` (``(token, lifetime s)``)."""
        with self._lock:
            value, expires_at = self._tokens.get(key, ("", 0.0))
            if value and self._clock() < expires_at:
                return value
            value, lifetime = fetch()
            self.fetches += 1
            margin = min(self._margin, lifetime / 2)
            self._tokens[key] = (value, self._clock() + lifetime - margin)
            return value

    def invalidate(self, key: str) -> None:
        with self._lock:
            self._tokens.pop(key, None)


@dataclass(frozen=True, kw_only=True)
class HttpSettings:
    """How a client talks to its vendor: timeouts, retries, token margin (``[connectors.X.config]``)."""

    timeout: float = 10.0
    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    token_margin: float = 300.0

    @staticmethod
    def options(
        config: Mapping[str, Any], *, backoff_base: float = 0.5, token_margin: float = 300.0
    ) -> dict[str, Any]:
        """These settings from a connector config, with the vendor's defaults."""
        return {
            "timeout": float(config.get("timeout_seconds") or 10.0),
            "max_attempts": int(config.get("max_attempts") or 5),
            "backoff_base": float(config.get("backoff_base_seconds") or backoff_base),
            "token_margin": float(config.get("token_margin_seconds") or token_margin),
        }


@dataclass(frozen=True)
class Answer:
    """One vendor answer, reduced to what the retry policy decides on."""

    #: what the call returns when ``ok``
    data: dict[str, Any]
    #: the vendor's code (meaningless when ``ok``)
    code: Code = 0
    message: str = ""
    ok: bool = False
    #: over a rate limit by other signs than a throttling code (HTTP 429)
    throttled: bool = False
    #: seconds the vendor asked to wait before the next call
    retry_after: float | None = None


S = TypeVar("S", bound=HttpSettings)


class VendorClient(ABC, Generic[S]):
    """The transport of a vendor API client: tokens, retried exchanges, the authenticated call.

    A subclass sets :attr:`errors` (its :class:`ErrorKinds`), implements :meth:`_fetch_token`
    and sends its calls through :meth:`_authorized` with a function that makes one attempt.
    """

    errors: ClassVar[ErrorKinds[Any]]
    #: HTTP 429 is retried by the exchange (False: the vendor's envelope is read first)
    retry_http_429: ClassVar[bool] = True
    #: the vendor's "system busy" code: retried for reads, an unknown outcome for writes
    busy_code: ClassVar[Code | None] = None
    #: the least backoff base for rate limits (a vendor whose QPS window is one second)
    throttle_floor: ClassVar[float] = 0.0
    #: ``retry_after`` of a :class:`RateLimited` when the vendor gave no hint
    throttle_hint: ClassVar[float | None] = None

    def __init__(
        self,
        settings: S,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.session = session or requests.Session()
        self._sleep = sleep
        self._clock = clock
        self.tokens = TokenCache(clock, settings.token_margin)
        self.log = logging.getLogger(f"hub.{self.vendor.lower()}")

    @classmethod
    @abstractmethod
    def from_config(cls, config: Mapping[str, Any], **kwargs: Any) -> Self:
        """A client for a connector config (secrets resolved)."""

    @property
    def vendor(self) -> str:
        return self.errors.error.vendor

    @property
    def token_fetches(self) -> int:
        """Token fetches so far (tests check that the cache holds)."""
        return self.tokens.fetches

    # -- tokens -------------------------------------------------------------------------------

    def access_token(self, credential: str = "") -> str:
        """A valid token for ``credential`` (vendors with one app token have one credential)."""
        return self.tokens.get(self._token_key(credential), lambda: self._fetch_token(credential))

    def invalidate_token(self, credential: str = "") -> None:
        self.tokens.invalidate(self._token_key(credential))

    def _token_key(self, credential: str) -> str:
        return credential

    @abstractmethod
    def _fetch_token(self, credential: str) -> tuple[str, float]:
        """A new token and its lifetime in seconds (raise the vendor's errors)."""

    # -- transport ----------------------------------------------------------------------------

    def _exchange(
        self,
        operation: str,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool,
    ) -> requests.Response:
        """One HTTP exchange, retried on timeouts and 5xx (and 429) when that is safe."""
        errors = self.errors
        for attempt in range(1, self.settings.max_attempts + 1):
            try:
                response = self.session.request(
                    method,
                    url,
                    params=dict(params or {}),
                    json=json,
                    headers=dict(headers or {}),
                    timeout=self.settings.timeout,
                )
            except CONNECTION_LOST:
                if not idempotent:
                    raise errors.outcome_unknown(
                        operation, None, "the request timed out or the connection dropped"
                    ) from None
                self._pause(attempt, operation, "timeout")
                continue
            status = response.status_code
            if status >= 500 or (status == 429 and self.retry_http_429):
                if status >= 500 and not idempotent:
                    raise errors.outcome_unknown(
                        operation, errors.code_of_status(status), "server error after the request was sent"
                    )
                self._pause(attempt, operation, f"HTTP {status}")
                continue
            return response
        raise errors.unavailable(operation, None, f"no answer after {self.settings.max_attempts} attempts")

    def _pause(self, attempt: int, operation: str, why: str) -> None:
        if attempt >= self.settings.max_attempts:
            raise self.errors.unavailable(operation, None, f"{why}; gave up after {attempt} attempts")
        delay = backoff_delay(attempt, self.settings.backoff_base, self.settings.backoff_cap)
        self.log.info("%s %s: %s, retrying in %.1f s", self.vendor, operation, why, delay)
        self._sleep(delay)

    def _json(self, operation: str, response: requests.Response) -> dict[str, Any]:
        """The answer's JSON object."""
        try:
            data = response.json()
        except ValueError:
            return self._not_json(operation, response)
        if not isinstance(data, dict):
            raise self.errors.error(
                operation, self.errors.code_of_status(response.status_code), "the answer is not a JSON object"
            )
        return data

    def _not_json(self, operation: str, response: requests.Response) -> dict[str, Any]:
        """An answer that is not JSON: an error, unless the vendor means something by it."""
        raise self.errors.error(
            operation, self.errors.code_of_status(response.status_code), "the answer is not JSON"
        ) from None

    def _authorized(
        self,
        operation: str,
        attempt: Callable[[str], Answer],
        *,
        idempotent: bool,
        credential: str = "",
    ) -> dict[str, Any]:
        """Call ``attempt`` with a token until the vendor answers ok, or raise a typed error.

        A token the vendor calls invalid is refetched once; rate limits (and, for reads, the
        busy code) are backed off ``max_attempts`` times in all; anything else is final.
        """
        errors, codes = self.errors, self.errors.codes
        refreshed = False
        tries = 0
        while True:
            tries += 1
            answer = attempt(self.access_token(credential))
            if answer.ok:
                return answer.data
            code = answer.code
            if code in codes.token_invalid and not refreshed:
                refreshed = True
                self.invalidate_token(credential)
                continue
            busy = self.busy_code is not None and code == self.busy_code
            if answer.throttled or code in codes.throttled or (busy and idempotent):
                if tries >= self.settings.max_attempts:
                    hint = answer.retry_after if answer.retry_after is not None else self.throttle_hint
                    raise errors.rate_limited(operation, code, codes.describe(code)[1], retry_after=hint)
                base = max(self.settings.backoff_base, self.throttle_floor)
                delay = backoff_delay(tries, base, self.settings.backoff_cap, retry_after=answer.retry_after)
                self.log.info("%s %s: code %s, retrying in %.1f s", self.vendor, operation, code, delay)
                self._sleep(delay)
                continue
            if busy:
                raise errors.outcome_unknown(
                    operation, code, f"{self.vendor} was busy; the write may or may not have happened"
                )
            raise errors.error_for(operation, code, answer.message)
