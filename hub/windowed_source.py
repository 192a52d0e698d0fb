"""Vendor APIs read in time windows, each finished window a checkpoint (``moka``, ``beisen``).

Such an API filters by update time: the range from the saved cursor (minus a look-back for
late writes) to the start of the sync is cut into windows of at most the vendor's size, and
after each window the state ``{cursor_field: <end of window, ISO UTC>}`` is checkpointed, so a
sync killed midway resumes at the last finished window and re-sends only that window (as
upserts, by primary key).

What is the same for every such vendor lives here: the common settings (start, window,
look-back, request budget, timeout), the credential choice by ``auth_type``, one request
budget per credential and process, the error handler's skeleton, a client-credentials token
fetcher for the CDK, the windowed stream and the source around it. What a vendor's API says
(endpoints, envelopes, error codes, token answers) stays in its plugin.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Generic, Self, TypeVar
from urllib.parse import urlsplit

import requests
from airbyte_cdk.models import ConnectorSpecification, FailureType, SyncMode
from airbyte_cdk.sources import AbstractSource
from airbyte_cdk.sources.streams import CheckpointMixin, Stream
from airbyte_cdk.sources.streams.call_rate import APIBudget, MovingWindowCallRatePolicy, Rate
from airbyte_cdk.sources.streams.http import HttpStream
from airbyte_cdk.sources.streams.http.error_handlers import (
    BackoffStrategy,
    ErrorHandler,
    ErrorResolution,
    ResponseAction,
)
from airbyte_cdk.sources.streams.http.requests_native_auth import Oauth2Authenticator
from airbyte_cdk.utils import AirbyteTracedException
from airbyte_cdk.utils.airbyte_secrets_utils import add_to_secrets
from airbyte_cdk.utils.datetime_helpers import AirbyteDateTime, ab_datetime_now
from requests.auth import AuthBase

from hub.http_source import RetryAfterBackoff, masked_error, send_with_retry

# -- time ------------------------------------------------------------------------------------------


def parse_utc(text: str) -> datetime:
    """An ISO-8601 instant (``Z`` or offset; a bare date or naive time is UTC)."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def iso_utc(moment: datetime) -> str:
    """``2026-01-31T08:00:00.000Z``: how cursors and window bounds are written."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def windows(start: datetime, end: datetime, size: timedelta) -> Iterator[tuple[datetime, datetime]]:
    """Consecutive half-open ``[lo, hi)`` windows of at most ``size`` covering ``[start, end)``."""
    lo = start
    while lo < end:
        hi = min(lo + size, end)
        yield lo, hi
        lo = hi


# -- configuration ---------------------------------------------------------------------------------


def window_properties(*, lookback_note: str, requests_per_minute: int, budget_note: str) -> dict[str, Any]:
    """The spec properties every windowed connector takes (their meaning is the same)."""
    return {
        "start_date": {
            "type": "string",
            "default": "2020-01-01T00:00:00Z",
            "description": "Read records updated from this instant on (ISO-8601; a date is midnight UTC).",
        },
        "window_days": {
            "type": "integer",
            "minimum": 1,
            "maximum": 90,
            "default": 30,
            "description": "Days per time window; each finished window is a checkpoint.",
        },
        "lookback_seconds": {
            "type": "integer",
            "minimum": 0,
            "maximum": 86400,
            "default": 300,
            "description": f"Re-read this much before the saved cursor ({lookback_note}).",
        },
        "requests_per_minute": {
            "type": "integer",
            "minimum": 1,
            "default": requests_per_minute,
            "description": budget_note,
        },
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 30},
    }


@dataclass(frozen=True)
class WindowSettings:
    """What every windowed connector's config holds, checked and with defaults filled in.

    A vendor's subclass declares its host, default request budget and auth types as class
    arguments (``class MokaSettings(WindowSettings, url=..., rate=60, auth={...})``), adds the
    credential fields its auth types name, and reads any fields of its own in :meth:`vendor_fields`.
    """

    #: the vendor's API host
    DEFAULT_URL: ClassVar[str] = ""
    #: the client-side budget unless configured (requests a minute)
    DEFAULT_RATE: ClassVar[int] = 60
    #: ``auth_type`` -> the credential fields it needs (the first is the default)
    AUTH_TYPES: ClassVar[Mapping[str, tuple[str, ...]]] = {}

    def __init_subclass__(
        cls,
        *,
        url: str = "",
        rate: int = 60,
        auth: Mapping[str, tuple[str, ...]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        cls.DEFAULT_URL, cls.DEFAULT_RATE, cls.AUTH_TYPES = url, rate, dict(auth or {})

    base_url: str
    auth_type: str
    start: datetime
    window: timedelta
    lookback: timedelta
    requests_per_minute: int
    timeout: float

    @classmethod
    def parse(cls, config: Mapping[str, Any]) -> Self:
        """Raise ``ValueError`` naming the field (never its value) when the config is unusable."""
        auth = cls.AUTH_TYPES
        auth_type = str(config.get("auth_type") or next(iter(auth)))
        if auth_type not in auth:
            raise ValueError(f"auth_type must be {' or '.join(auth)}")
        credentials = {name: str(config.get(name) or "") for names in auth.values() for name in names}
        missing = [name for name in auth[auth_type] if not credentials[name]]
        if missing:
            raise ValueError(f"auth_type {auth_type} needs {' and '.join(missing)}")
        try:
            start = parse_utc(str(config.get("start_date") or "2020-01-01T00:00:00Z"))
        except ValueError:
            raise ValueError("start_date is not an ISO-8601 date or time") from None
        url = str(config.get("base_url") or cls.DEFAULT_URL).rstrip("/")
        if urlsplit(url).scheme not in ("http", "https"):
            raise ValueError("base_url must be an http(s) URL")
        return cls(
            base_url=url,
            auth_type=auth_type,
            start=start,
            window=timedelta(days=int(config.get("window_days") or 30)),
            lookback=timedelta(seconds=int(config.get("lookback_seconds", 300))),
            requests_per_minute=int(config.get("requests_per_minute") or cls.DEFAULT_RATE),
            timeout=float(config.get("timeout_seconds") or 30),
            **credentials,
            **cls.vendor_fields(config),
        )

    @classmethod
    def vendor_fields(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        """The vendor's own fields, checked (``ValueError`` naming the field)."""
        return {}

    @property
    def credential(self) -> str:
        """Who the vendor counts requests for (the request budget is per credential)."""
        raise NotImplementedError


SettingsT = TypeVar("SettingsT", bound=WindowSettings)

_BUDGETS: dict[str, APIBudget] = {}
_BUDGETS_LOCK = threading.Lock()


def shared_budget(settings: WindowSettings) -> APIBudget:
    """One request budget per vendor credential in this process: the limit is the vendor's.

    Keyed by a digest of host and credential (never the credential itself); shared, because
    each budget runs a bookkeeping thread for as long as the process lives.
    """
    who = settings.credential
    key = hashlib.sha256(f"{settings.base_url}|{who}|{settings.requests_per_minute}".encode()).hexdigest()
    with _BUDGETS_LOCK:
        budget = _BUDGETS.get(key)
        if budget is None:
            policy = MovingWindowCallRatePolicy(
                rates=[Rate(limit=settings.requests_per_minute, interval=timedelta(minutes=1))], matchers=[]
            )
            budget = _BUDGETS[key] = APIBudget(policies=[policy])
        return budget


# -- errors and tokens -----------------------------------------------------------------------------


class VendorErrorHandler(ErrorHandler):
    """Retry / refresh / give up, from a vendor's answer; the envelope is checked by the streams.

    Network errors are retried, 429 waits (``Retry-After``), other 5xx are retried; anything
    else goes to the stream, which raises a masked error for it (the CDK would log the body).
    A vendor subclass reads its own auth answers in :meth:`interpret_answer` first.
    """

    def __init__(self, vendor: str, *, rate_limit: str, max_retries: int = 6, max_time: int = 900) -> None:
        self.vendor = vendor
        self.rate_limit = rate_limit
        self._max_retries = max_retries
        self._max_time = max_time

    @property
    def max_retries(self) -> int | None:
        return self._max_retries

    @property
    def max_time(self) -> int | None:
        return self._max_time

    def interpret_response(self, response: requests.Response | Exception | None = None) -> ErrorResolution:
        if isinstance(response, requests.ConnectionError | requests.Timeout):
            return ErrorResolution(
                ResponseAction.RETRY, FailureType.transient_error, f"{self.vendor} could not be reached"
            )
        if not isinstance(response, requests.Response):
            return ErrorResolution(
                ResponseAction.FAIL, FailureType.system_error, f"request failed: {response!r}"
            )
        if response.status_code == 429:
            return ErrorResolution(ResponseAction.RATE_LIMITED, FailureType.transient_error, self.rate_limit)
        return self.interpret_answer(response)

    def interpret_answer(self, response: requests.Response) -> ErrorResolution:
        """Any answer but a 429: 5xx retried, other 4xx to the stream, the rest a success."""
        status = response.status_code
        if status >= 500:
            return ErrorResolution(
                ResponseAction.RETRY, FailureType.transient_error, f"{self.vendor} HTTP {status}"
            )
        if status >= 400:
            return ErrorResolution(ResponseAction.IGNORE, None, f"{self.vendor} HTTP {status}")
        return ErrorResolution(ResponseAction.SUCCESS)


class FetchedTokenAuthenticator(Oauth2Authenticator):
    """Access tokens a vendor hands out for client credentials, kept until shortly before expiry.

    The CDK calls :meth:`refresh_access_token` when the token is due and, through the error
    handler's ``REFRESH_TOKEN_THEN_RETRY``, when the vendor rejects it midway. A subclass
    sends the vendor's token request (:meth:`request_token`) and reads its answer
    (:meth:`token_of`); failing token calls are retried (:func:`hub.http_source.send_with_retry`).
    """

    #: fetch a new token this long before expiry
    EARLY = timedelta(minutes=5)
    ATTEMPTS = 4

    def __init__(
        self, vendor: str, *, timeout: float, sleep: Callable[[float], None] = time.sleep, **oauth: Any
    ) -> None:
        super().__init__(refresh_token="", grant_type="client_credentials", **oauth)
        self.vendor = vendor
        self._timeout = timeout
        self._sleep = sleep
        #: tokens fetched so far (for tests and the sync log)
        self.fetches = 0

    def refresh_access_token(self) -> tuple[str, AirbyteDateTime]:
        response = send_with_retry(
            self.request_token,
            what=f"{self.vendor}'s token endpoint",
            attempts=self.ATTEMPTS,
            sleep=self._sleep,
        )
        token, lifetime = self.token_of(response)
        add_to_secrets(token)  # airbyte-cdk masks it in any message it formats
        self.fetches += 1
        expires = ab_datetime_now() + max(lifetime - self.EARLY, timedelta(seconds=30))
        return token, AirbyteDateTime.from_datetime(expires)

    def request_token(self) -> requests.Response:
        """Send the vendor's token request."""
        raise NotImplementedError

    def token_of(self, response: requests.Response) -> tuple[str, timedelta]:
        """The token and its lifetime, or a masked configuration error naming what to check."""
        raise NotImplementedError


# -- streams ---------------------------------------------------------------------------------------


class WindowedStream(HttpStream, CheckpointMixin, Generic[SettingsT]):
    """A stream read window by window; the state is the end of the last finished window."""

    http_method = "POST"
    #: the stream's record schema (:func:`hub.http_source.record_schema`)
    schema: ClassVar[dict[str, Any]] = {}
    #: the vendor's largest window for this endpoint
    max_window: ClassVar[timedelta] = timedelta.max

    def __init__(
        self, settings: SettingsT, authenticator: AuthBase, budget: APIBudget, until: datetime
    ) -> None:
        self._settings = settings
        self._until = until
        self._state: MutableMapping[str, Any] = {}
        super().__init__(authenticator=authenticator, api_budget=budget)

    @property
    def state(self) -> MutableMapping[str, Any]:
        return self._state

    @state.setter
    def state(self, value: MutableMapping[str, Any]) -> None:
        self._state = dict(value or {})

    def get_json_schema(self) -> Mapping[str, Any]:  # type: ignore[override]  # the CDK caches it
        return {**self.schema, "additionalProperties": True}  # vendors add fields: they pass through

    def complete(self, record: Mapping[str, Any]) -> Mapping[str, Any]:
        """The record with every declared property present (null when the vendor left it out).

        Mappings read columns by name; a field a vendor omits must not make a chunk lack the column.
        """
        declared = self.schema.get("properties", {})
        if all(name in record for name in declared):
            return record
        return {**dict.fromkeys(declared), **record}

    def get_backoff_strategy(self) -> BackoffStrategy:
        return RetryAfterBackoff()

    def request_kwargs(
        self,
        stream_state: Mapping[str, Any] | None,
        stream_slice: Mapping[str, Any] | None = None,
        next_page_token: Mapping[str, Any] | None = None,
    ) -> Mapping[str, Any]:
        return {"timeout": self._settings.timeout}

    @staticmethod
    def bounds(window: Mapping[str, Any]) -> tuple[datetime, datetime]:
        """A window's ``[start, end)`` as instants."""
        return parse_utc(window["start"]), parse_utc(window["end"])

    def window_start(self, state: Mapping[str, Any] | None) -> datetime:
        """Where reading starts: the saved cursor minus the look-back, or the configured start."""
        saved = (state or {}).get(str(self.cursor_field))
        if not saved:
            return self._settings.start
        return parse_utc(str(saved)) - self._settings.lookback

    def stream_slices(
        self,
        *,
        sync_mode: SyncMode,
        cursor_field: list[str] | None = None,
        stream_state: Mapping[str, Any] | None = None,
    ) -> Iterable[Mapping[str, Any] | None]:
        size = min(self._settings.window, self.max_window)
        for lo, hi in windows(self.window_start(stream_state or self._state), self._until, size):
            yield {"start": iso_utc(lo), "end": iso_utc(hi)}

    def read_records(
        self,
        sync_mode: SyncMode,
        cursor_field: list[str] | None = None,
        stream_slice: Mapping[str, Any] | None = None,
        stream_state: Mapping[str, Any] | None = None,
    ) -> Iterable[Mapping[str, Any]]:
        if not stream_slice:
            return
        for record in self.read_window(sync_mode, stream_slice, stream_state):
            yield self.complete(record)
        # the whole window was read: everything updated before its end is delivered
        saved = self._state.get(str(self.cursor_field))
        end = stream_slice["end"]
        if not saved or parse_utc(str(saved)) < parse_utc(end):
            self._state = {str(self.cursor_field): end}

    def read_window(
        self, sync_mode: SyncMode, window: Mapping[str, Any], stream_state: Mapping[str, Any] | None
    ) -> Iterable[Mapping[str, Any]]:
        """The records of one window (``{"start", "end"}``, ISO UTC), every page of it."""
        yield from HttpStream.read_records(self, sync_mode, None, window, stream_state)  # type: ignore[misc]

    def send_json(self, url: str, body: Any) -> requests.Response:
        """One more call inside a window (details, batches), with the stream's retries, auth and budget."""
        _request, response = self._http_client.send_request(
            http_method="POST", url=url, request_kwargs={"timeout": self._settings.timeout}, json=body
        )
        return response


class WindowedSource(AbstractSource, Generic[SettingsT]):
    """A vendor's windowed streams as an Airbyte source; the vendor says how to build them."""

    #: how messages name the vendor ("Moka")
    vendor: ClassVar[str] = ""
    connection_spec: ClassVar[dict[str, Any]] = {}
    settings_type: ClassVar[type[WindowSettings]]
    stream_types: ClassVar[tuple[type[WindowedStream[Any]], ...]] = ()
    #: the stream ``check`` reads one day of
    probe: ClassVar[type[WindowedStream[Any]]]

    def settings(self, config: Mapping[str, Any]) -> SettingsT:
        """The checked config; ``ValueError`` naming the field (never its value) when unusable."""
        return self.settings_type.parse(config)  # type: ignore[return-value]  # settings_type makes SettingsT

    def authenticator(self, settings: SettingsT) -> AuthBase:
        """How the vendor's streams authenticate (an API key, fetched tokens ...)."""
        raise NotImplementedError

    def until(self) -> datetime:
        """The end of this sync's last window: now."""
        return datetime.now(UTC)

    def spec(self, logger: logging.Logger) -> ConnectorSpecification:
        return ConnectorSpecification(connectionSpecification=self.connection_spec, supportsIncremental=True)

    def check_connection(self, logger: logging.Logger, config: Mapping[str, Any]) -> tuple[bool, Any]:
        """Authenticate and read one page of the last day of the probe stream."""
        try:
            settings = self.settings(config)
        except ValueError as exc:
            return False, f"invalid configuration: {exc}"
        until = self.until()
        stream = self.probe(settings, self.authenticator(settings), shared_budget(settings), until)
        window = {"start": iso_utc(until - timedelta(days=1)), "end": iso_utc(until)}
        try:
            for _record in stream.read_window(SyncMode.full_refresh, window, None):
                break
        except AirbyteTracedException as exc:
            return False, exc.message or f"{self.vendor} refused the connection"
        except requests.RequestException as exc:
            return False, f"{self.vendor} could not be reached: {type(exc).__name__}"
        return True, None

    def streams(self, config: Mapping[str, Any]) -> list[Stream]:
        try:
            settings = self.settings(config)
        except ValueError as exc:
            raise masked_error(f"invalid configuration: {exc}", FailureType.config_error) from None
        authenticator, budget, until = self.authenticator(settings), shared_budget(settings), self.until()
        return [stream(settings, authenticator, budget, until) for stream in self.stream_types]
