"""What hub's airbyte-cdk HTTP connectors share, whatever the vendor.

Each vendor plugin keeps its own auth flow, envelope, error codes and pagination; this module
holds only what is the same for all of them:

* :func:`masked_error`: the ``AirbyteTracedException`` a connector raises, its text masked (an
  error message may quote a vendor's answer, and that may quote personal data);
* :class:`RetryAfterBackoff`: the CDK backoff that waits what ``Retry-After`` asks (read by
  :mod:`hub.retry`), and :func:`send_with_retry` for calls outside the CDK's ``HttpClient``
  (token endpoints), with :mod:`hub.retry`'s policy;
* :func:`error_handler`: a CDK status-code error handler for APIs with static semantics;
* :class:`FailureWatch` / :class:`WatchedSource`: airbyte-cdk's ``AbstractSource.read`` turns
  every stream failure into one generic exception at the end of the read; the watch keeps the
  first failure a stream reported and raises it as the hub error the engine acts on
  (transient: retried from the last checkpoint; configuration: the run fails with the
  connector's message);
* small JSON-schema builders for specs and stream schemas.

Error messages never carry record values: they name the vendor, the HTTP status and what to do.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

import requests
from airbyte_cdk.models import (
    AirbyteConnectionStatus,
    AirbyteMessage,
    ConfiguredAirbyteCatalog,
    FailureType,
    Status,
    Type,
)
from airbyte_cdk.sources import AbstractSource
from airbyte_cdk.sources.streams.http.error_handlers import (
    BackoffStrategy,
    ErrorResolution,
    HttpStatusErrorHandler,
    ResponseAction,
)
from airbyte_cdk.sources.streams.http.error_handlers.default_error_mapping import DEFAULT_ERROR_MAPPING
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from hub.errors import FatalSyncError, RetriableSyncError, SyncError
from hub.masking import mask_text
from hub.retry import call_with_retry, retry_after_of

#: Longest wait a ``Retry-After`` is honoured for; longer asks fail the request (retried later).
MAX_RETRY_AFTER = 600.0
#: Statuses retried with backoff (``Retry-After`` when given).
TRANSIENT_STATUSES = (408, 429, 500, 502, 503, 504)
JSON_SCHEMA = "http://json-schema.org/draft-07/schema#"


# -- errors and answers ----------------------------------------------------------------------------


def masked_error(message: str, failure: FailureType = FailureType.system_error) -> AirbyteTracedException:
    """An error whose text is safe to log and show: personal-data shapes masked."""
    safe = mask_text(message)
    return AirbyteTracedException(internal_message=safe, message=safe, failure_type=failure)


def json_or_none(response: requests.Response) -> Any:
    """The answer's JSON, or None when the body is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def request_path(response: requests.Response) -> str:
    """The path an answer was for (errors name the endpoint, never the query)."""
    return urlsplit(response.request.url or "").path if response.request is not None else "?"


def http_refusal(vendor: str, response: requests.Response, detail: str) -> AirbyteTracedException:
    """The error for an HTTP 4xx / 5xx answer: 4xx is a configuration problem, 5xx the vendor's."""
    status = response.status_code
    failure = FailureType.config_error if status < 500 else FailureType.system_error
    return masked_error(f"{vendor} refused {request_path(response)}: HTTP {status}{detail}", failure)


def ref(value: Any) -> str | None:
    """A cross reference as text (remote ids are strings in the canonical store)."""
    return None if value is None or value == "" else str(value)


# -- waiting ---------------------------------------------------------------------------------------


def retry_after_seconds(response: requests.Response | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta seconds or an HTTP date), if any."""
    if response is None:
        return None
    return retry_after_of(requests.HTTPError(response=response))  # hub.retry reads the header


class RetryAfterBackoff(BackoffStrategy):
    """Wait what the server's ``Retry-After`` says; without one, the CDK's exponential backoff."""

    def backoff_time(
        self,
        response_or_exception: requests.Response | requests.RequestException | None,
        attempt_count: int,
    ) -> float | None:
        response = (
            response_or_exception
            if isinstance(response_or_exception, requests.Response)
            else getattr(response_or_exception, "response", None)
        )
        seconds = retry_after_seconds(response)
        if seconds is None:
            return None
        # 0 would mean "no opinion" to the CDK; the CDK adds one second of its own on top.
        return min(max(seconds, 0.01), MAX_RETRY_AFTER)


def send_with_retry(
    send: Callable[[], requests.Response],
    *,
    what: str,
    attempts: int = 4,
    sleep: Callable[[float], None] = time.sleep,
) -> requests.Response:
    """``send()`` again while it fails transiently (network, 429, 5xx), as :mod:`hub.retry` does.

    For calls the CDK's ``HttpClient`` does not make (token endpoints). Any other answer is
    returned for the caller to judge; a failure that outlasts the retries is a transient
    error naming ``what``.
    """

    def attempt() -> requests.Response:
        response = send()
        if response.status_code == 429 or response.status_code >= 500:
            raise requests.HTTPError(f"HTTP {response.status_code}", response=response)
        return response

    try:
        return call_with_retry(attempt, attempts=attempts, base=1.0, sleep=sleep)
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise masked_error(f"{what} kept failing (HTTP {status})", FailureType.transient_error) from None
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise masked_error(
            f"{what} is unreachable ({type(exc).__name__})", FailureType.transient_error
        ) from None


# -- the CDK's error handling ----------------------------------------------------------------------


def error_handler(
    logger: logging.Logger,
    *,
    unauthorized: str,
    forbidden: str,
    refresh_on_401: bool = False,
    max_retries: int = 5,
) -> HttpStatusErrorHandler:
    """The CDK error handler for a vendor API whose statuses mean what HTTP says.

    429 is RETRY rather than the CDK's RATE_LIMITED: RATE_LIMITED retries forever and prints a
    status line to stdout (which is the CLI's ``--json`` output); RETRY is bounded by
    ``max_retries`` and still waits ``Retry-After`` through :class:`RetryAfterBackoff`. When
    retries run out the failure is transient, and the engine retries from the checkpoint.
    With ``refresh_on_401`` a 401 gets a new access token and one more try (OAuth APIs whose
    tokens expire); otherwise it fails with ``unauthorized`` (static API keys). 404 is handed
    to the stream: a record deleted between a list and its detail is skipped, not fatal.
    """
    mapping: dict[int | str | type[Exception], ErrorResolution] = dict(DEFAULT_ERROR_MAPPING)
    for status in TRANSIENT_STATUSES:
        mapping[status] = ErrorResolution(
            response_action=ResponseAction.RETRY,
            failure_type=FailureType.transient_error,
            error_message=f"HTTP {status} from the API; retried {max_retries} times without success",
        )
    mapping[401] = ErrorResolution(
        response_action=ResponseAction.REFRESH_TOKEN_THEN_RETRY if refresh_on_401 else ResponseAction.FAIL,
        failure_type=FailureType.config_error,
        error_message=unauthorized,
    )
    mapping[403] = ErrorResolution(
        response_action=ResponseAction.FAIL, failure_type=FailureType.config_error, error_message=forbidden
    )
    mapping[404] = ErrorResolution(
        response_action=ResponseAction.IGNORE,
        failure_type=FailureType.system_error,
        error_message="HTTP 404: the resource is gone (deleted since it was listed); skipped",
    )
    return HttpStatusErrorHandler(logger, mapping, max_retries=max_retries, max_time=timedelta(hours=1))


class FailureWatch:
    """Turns the failure an airbyte-cdk source reports into the hub error that says what to do."""

    def __init__(self, vendor: str) -> None:
        self.vendor = vendor
        self.failure_type: FailureType | None = None
        self.message: str | None = None

    def watch(self, messages: Iterator[AirbyteMessage]) -> Iterator[AirbyteMessage]:
        try:
            for message in messages:
                error = message.trace.error if message.type == Type.TRACE and message.trace else None
                if error is not None and self.failure_type is None:
                    self.failure_type, self.message = error.failure_type, error.message
                yield message
        except AirbyteTracedException as exc:
            raise self.translate(exc) from exc

    def translate(self, exc: AirbyteTracedException) -> SyncError:
        failure_type = self.failure_type or exc.failure_type
        text = f"{self.vendor}: {self.message or exc.message or exc.internal_message or type(exc).__name__}"
        if failure_type == FailureType.transient_error:
            return RetriableSyncError(text)
        if failure_type == FailureType.config_error:
            return FatalSyncError(text)
        return SyncError(text)


class WatchedSource(AbstractSource):
    """An ``AbstractSource`` whose failures reach the engine as hub errors (:class:`FailureWatch`).

    ``check`` answers ``check_connection``'s verdict as it is (the CDK's would re-word it).
    """

    #: how errors name the vendor ("HackerRank")
    vendor: ClassVar[str] = ""

    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        ok, error = self.check_connection(logger, config)
        return AirbyteConnectionStatus(status=Status.SUCCEEDED if ok else Status.FAILED, message=error)

    def read(
        self,
        logger: logging.Logger,
        config: Mapping[str, Any],
        catalog: ConfiguredAirbyteCatalog,
        state: Any = None,
    ) -> Iterator[AirbyteMessage]:
        yield from FailureWatch(self.vendor).watch(super().read(logger, config, catalog, state))


# -- JSON schemas ----------------------------------------------------------------------------------


def connector_spec(
    title: str,
    properties: Mapping[str, Any],
    *,
    required: Sequence[str] = (),
    rules: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A connector's config schema: no properties beyond ``properties``, plus any ``rules``."""
    spec: dict[str, Any] = {"$schema": JSON_SCHEMA, "title": title, "type": "object"}
    if required:
        spec["required"] = list(required)
    return {**spec, "additionalProperties": False, "properties": dict(properties), **(rules or {})}


def secret_property(description: str) -> dict[str, Any]:
    """A config property holding a secret (a reference to one in hub.toml; masked by airbyte-cdk)."""
    return {"type": "string", "airbyte_secret": True, "description": description}


def required_when(field: str, value: str, then: Sequence[str], otherwise: Sequence[str]) -> dict[str, Any]:
    """Spec rules: ``then`` are required when ``field`` is ``value``, else ``otherwise``."""
    return {
        "if": {"properties": {field: {"const": value}}, "required": [field]},
        "then": {"required": list(then)},
        "else": {"required": list(otherwise)},
    }


def nullable(*kinds: str) -> dict[str, Any]:
    """A property that may be null."""
    return {"type": ["null", *kinds]}


def record_schema(
    declared: Mapping[str, str | Mapping[str, Any]] | None = None,
    *,
    open_ended: bool = False,
    **nullable_names: str,
) -> dict[str, Any]:
    """A stream's record schema: ``declared`` properties first, then nullable ones by type.

    ``declared`` maps a name to its JSON type (never null) or to its whole definition;
    ``nullable_names`` maps a JSON type to the space-separated names of its nullable
    properties, e.g. ``string="jobId status"``. ``open_ended`` allows undeclared properties.
    """
    properties: dict[str, Any] = {
        name: {"type": kind} if isinstance(kind, str) else dict(kind)
        for name, kind in (declared or {}).items()
    }
    for kind, names in nullable_names.items():
        properties.update((name, nullable(kind)) for name in names.split())
    schema: dict[str, Any] = {"$schema": JSON_SCHEMA, "type": "object", "properties": properties}
    return {**schema, "additionalProperties": True} if open_ended else schema
