"""REST mode of the ``assessment`` connector: a customer's results API, described by configuration.

For platforms whose results API is specific to the customer (an in-house test system, a Beisen
assessment tenant): where the results are (``base_url`` + ``results_path``, the records at
``records_path``, a JMESPath), how to page (``page``/``page_size`` numbers, ``offset``/``limit``,
or a ``cursor`` read from the answer), how to ask for changes only (``updated_since``), and where
each convention field is in a record (``fields``, JMESPath, e.g. ``candidate_email =
"candidate.email"``, ``sub_scores = "dimensions[].{label: name, score: score, max_score:
full_score}"``).

Authentication: OAuth 2.0 client credentials (``oauth_url``; the form of RFC 6749 or a JSON
body with the vendor's own field names, e.g. Beisen's ``app_key``/``app_secret``), a static
bearer key, or none. The access token is requested when first needed, renewed shortly before
it expires (its ``expires_in``, else ``oauth_lifetime_seconds``), and renewed at once when the
API answers 401 (a token revoked or expired early), with one retry of the request; a token
refused again is a configuration error.

Incremental: the results are asked for with ``updated_since`` = the saved cursor minus one
second (safe whether the API compares with ``>`` or ``>=``), and records at or before the
cursor that were already emitted are skipped (:class:`~hub_assessment.http.HighWater`). The
API need not sort by update time: the cursor advances only once a pass has read every page.
Each page that emitted records is a checkpoint; a pass killed midway resumes on its page
(page and offset paging) or from its first page (cursor paging, whose tokens expire). Results
without an update time (no ``updated_at`` in ``fields``) are read on every run; unchanged ones
are then skipped by the engine's content hashes.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from datetime import timedelta
from typing import Any

import jmespath
import jmespath.exceptions
import requests
from airbyte_cdk.models import AirbyteMessage, ConnectorSpecification, FailureType, SyncMode
from airbyte_cdk.sources.streams import Stream
from airbyte_cdk.sources.streams.http import HttpStream
from airbyte_cdk.sources.streams.http.error_handlers import BackoffStrategy, ErrorHandler
from airbyte_cdk.sources.streams.http.requests_native_auth import TokenAuthenticator
from airbyte_cdk.utils.airbyte_secrets_utils import add_to_secrets
from airbyte_cdk.utils.traced_exception import AirbyteTracedException
from requests.auth import AuthBase

from hub.connectors import stream_state_message
from hub.http_source import RetryAfterBackoff, WatchedSource, error_handler, send_with_retry
from hub_assessment.convention import FIELDS, SCHEMA, normalise_record
from hub_assessment.http import HighWater, PageCheckpoints, iso, parse_instant

STREAM = "results"
PAGINATIONS = ("page", "offset", "cursor", "none")

#: Properties of the connector's config used in REST mode (merged into the connector's spec).
REST_PROPERTIES: dict[str, Any] = {
    "base_url": {"type": "string", "pattern": "^https?://", "description": "the results API's root"},
    "results_path": {"type": "string", "description": "path of the results list, e.g. /api/v1/results"},
    "records_path": {
        "type": "string",
        "default": "data.items",
        "description": "JMESPath to the list of results in an answer ('@' for a bare list)",
    },
    "fields": {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "description": "convention field -> JMESPath into a result (default: the field's own name)",
    },
    "extra_params": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
    "auth": {"enum": ["oauth2_client_credentials", "bearer", "none"], "default": "oauth2_client_credentials"},
    "oauth_url": {"type": "string", "pattern": "^https?://", "description": "the token endpoint"},
    "client_id": {"type": "string"},
    "client_secret": {"type": "string", "airbyte_secret": True},
    "oauth_scope": {"type": "string"},
    "oauth_body": {"enum": ["form", "json"], "default": "form"},
    "oauth_field_names": {
        "type": "object",
        "properties": {"client_id": {"type": "string"}, "client_secret": {"type": "string"}},
        "additionalProperties": False,
        "description": "the token endpoint's names for the two credentials (Beisen: app_key, app_secret)",
    },
    "oauth_lifetime_seconds": {
        "type": "number",
        "minimum": 1,
        "default": 3600,
        "description": "token lifetime when the token answer has no expires_in",
    },
    "api_key": {"type": "string", "airbyte_secret": True, "description": "static bearer key (auth = bearer)"},
    "pagination": {"enum": list(PAGINATIONS), "default": "page"},
    "page_param": {"type": "string", "default": "page"},
    "page_size_param": {"type": "string", "default": "page_size"},
    "page_size": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100},
    "first_page": {"type": "integer", "minimum": 0, "default": 1},
    "offset_param": {"type": "string", "default": "offset"},
    "limit_param": {"type": "string", "default": "limit"},
    "cursor_param": {"type": "string", "default": "cursor"},
    "next_cursor_path": {"type": "string", "default": "data.next_cursor"},
    "updated_since_param": {
        "type": "string",
        "default": "updated_since",
        "description": "query parameter asking for results changed since a time ('' if the API has none)",
    },
    "updated_since_format": {"enum": ["iso", "epoch_ms", "epoch_s"], "default": "iso"},
    "timezone": {
        "type": "string",
        "default": "Asia/Shanghai",
        "description": "zone of times written without an offset",
    },
    "max_retries": {"type": "integer", "minimum": 0, "maximum": 20, "default": 5},
}

UNAUTHORIZED_KEY = (
    "the results API rejected the API key (HTTP 401): it was revoked or rotated; put the new key "
    "in the connector's api_key secret and run the sync again (it resumes from its checkpoint)"
)
UNAUTHORIZED_OAUTH = (
    "the results API rejected the access token (HTTP 401); a new token is requested and the request "
    "tried once more"
)
FORBIDDEN = "the results API refused access (HTTP 403): the client may not read results"


def _compile(expression: str, what: str) -> Any:
    try:
        return jmespath.compile(expression)
    except jmespath.exceptions.JMESPathError as exc:
        raise AirbyteTracedException(
            message=f"{what}: not a JMESPath expression ({exc})", failure_type=FailureType.config_error
        ) from exc


class RestConfig:
    """REST-mode config with its defaults applied and its JMESPaths compiled."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        def get(name: str) -> Any:
            value = config.get(name)
            return REST_PROPERTIES[name].get("default") if value is None else value

        self.raw = config
        self.base_url = str(config.get("base_url") or "").rstrip("/")
        self.results_url = self.base_url + "/" + str(config.get("results_path") or "").lstrip("/")
        self.records = _compile(str(get("records_path")), "records_path")
        fields = dict(config.get("fields") or {})
        unknown = sorted(set(fields) - set(FIELDS))
        if unknown:
            raise AirbyteTracedException(
                message=f"fields: unknown convention field(s) {', '.join(unknown)} (known: {', '.join(FIELDS)})",
                failure_type=FailureType.config_error,
            )
        self.fields = {name: _compile(str(fields.get(name, name)), f"fields.{name}") for name in FIELDS}
        self.extra_params = {str(k): v for k, v in (config.get("extra_params") or {}).items()}
        self.auth = str(get("auth"))
        self.pagination = str(get("pagination"))
        self.page_param, self.page_size_param = str(get("page_param")), str(get("page_size_param"))
        self.page_size, self.first_page = int(get("page_size")), int(get("first_page"))
        self.offset_param, self.limit_param = str(get("offset_param")), str(get("limit_param"))
        self.cursor_param = str(get("cursor_param"))
        self.next_cursor = _compile(str(get("next_cursor_path")), "next_cursor_path")
        self.since_param = str(get("updated_since_param"))
        self.since_format = str(get("updated_since_format"))
        self.timezone = str(get("timezone"))
        self.max_retries = int(get("max_retries"))

    def authenticator(self) -> AuthBase | None:
        if self.auth == "bearer":
            return TokenAuthenticator(token=str(self.raw.get("api_key") or ""))
        if self.auth == "none":
            return None
        names = dict(self.raw.get("oauth_field_names") or {})
        return ClientCredentials(
            str(self.raw.get("oauth_url") or ""),
            str(self.raw.get("client_id") or ""),
            str(self.raw.get("client_secret") or ""),
            scope=self.raw.get("oauth_scope"),
            body=str(self.raw.get("oauth_body") or "form"),
            id_name=str(names.get("client_id") or "client_id"),
            secret_name=str(names.get("client_secret") or "client_secret"),
            lifetime=float(self.raw.get("oauth_lifetime_seconds") or 3600),
        )

    def since_value(self, water: HighWater) -> str | None:
        """The ``updated_since`` to send: one second before the cursor, in the API's format."""
        if water.at is None:
            return None
        moment = water.at - timedelta(seconds=1)
        if self.since_format == "epoch_ms":
            return str(int(moment.timestamp() * 1000))
        if self.since_format == "epoch_s":
            return str(int(moment.timestamp()))
        return iso(moment)

    def record(self, raw: Any) -> dict[str, Any]:
        """A result of the API in the convention (every field present)."""
        values = {name: expression.search(raw) for name, expression in self.fields.items()}
        record = normalise_record(values)
        moment = parse_instant(values.get("updated_at"), self.timezone)
        record["updated_at"] = iso(moment) if moment is not None else record["updated_at"]
        return record


class ClientCredentials(AuthBase):
    """OAuth 2.0 client credentials: a bearer token fetched, cached, renewed before it expires.

    airbyte-cdk's ``HttpClient`` calls :meth:`refresh_and_set_access_token` when the API answers
    401 (``REFRESH_TOKEN_THEN_RETRY``) and applies the new header to the retried request.
    """

    ATTEMPTS = 5

    def __init__(
        self,
        url: str,
        client_id: str,
        client_secret: str,
        *,
        scope: str | None = None,
        body: str = "form",
        id_name: str = "client_id",
        secret_name: str = "client_secret",  # noqa: S107 - a field name, not a secret
        lifetime: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url, self.scope, self.body = url, scope, body
        self._credentials = {
            "grant_type": "client_credentials",
            id_name: client_id,
            secret_name: client_secret,
        }
        if scope:
            self._credentials["scope"] = scope
        self.default_lifetime = lifetime
        self.clock, self.sleep = clock, sleep
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.RLock()
        self._session = requests.Session()
        #: tokens fetched so far (for the sync log and tests)
        self.fetches = 0

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        return request

    def get_auth_header(self) -> Mapping[str, Any]:
        return {"Authorization": f"Bearer {self.token()}"}

    def token(self) -> str:
        with self._lock:
            if self._token is None or self.clock() >= self._expires_at:
                self._fetch()
            assert self._token is not None
            return self._token

    def refresh_and_set_access_token(self) -> None:
        with self._lock:
            self._fetch()

    def _fetch(self) -> None:
        response = send_with_retry(
            self._post, what="the token endpoint", attempts=self.ATTEMPTS, sleep=self.sleep
        )
        if response.status_code != 200:
            raise AirbyteTracedException(
                message=(
                    f"the token endpoint refused the client credentials (HTTP {response.status_code}); "
                    "check client_id and the client_secret secret"
                ),
                failure_type=FailureType.config_error,
            )
        self._accept(response)

    def _post(self) -> requests.Response:
        if self.body == "json":
            return self._session.post(self.url, json=self._credentials, timeout=30)
        return self._session.post(self.url, data=self._credentials, timeout=30)

    def _accept(self, response: requests.Response) -> None:
        try:
            body = response.json()
        except ValueError:
            body = None
        token = _find(body, "access_token")
        if not isinstance(token, str) or not token:
            raise AirbyteTracedException(
                message="the token endpoint's answer has no access_token",
                failure_type=FailureType.system_error,
            )
        add_to_secrets(token)  # airbyte-cdk masks it in any message it formats
        try:
            lifetime = float(_find(body, "expires_in") or self.default_lifetime)
        except (TypeError, ValueError):
            lifetime = self.default_lifetime
        # Renew a little early: a token must not expire between this check and the request.
        self._token = token
        self._expires_at = self.clock() + lifetime - min(60.0, lifetime * 0.1)
        self.fetches += 1


def _find(body: Any, key: str, depth: int = 0) -> Any:
    """``key`` at the top of a JSON answer or inside a wrapper (``{"data": {...}}``)."""
    if not isinstance(body, Mapping) or depth > 2:
        return None
    if key in body:
        return body[key]
    for value in body.values():
        found = _find(value, key, depth + 1)
        if found is not None:
            return found
    return None


class RestProgress:
    """State: the committed cursor, and the unfinished pass (``since``, paging position, high water)."""

    def __init__(self, value: Mapping[str, Any] | None = None) -> None:
        value = dict(value or {})
        self.cursor = HighWater.load(value.get("cursor"))
        raw = value.get("pass")
        self.active = isinstance(raw, Mapping)
        raw = raw if isinstance(raw, Mapping) else {}
        self.since = HighWater.load(raw.get("since"))
        self.position: dict[str, Any] = dict(raw.get("position") or {})
        self.high = HighWater.load(raw.get("high"))

    def dump(self) -> dict[str, Any]:
        value: dict[str, Any] = {}
        if (cursor := self.cursor.dump()) is not None:
            value["cursor"] = cursor
        if self.active:
            value["pass"] = {
                "since": self.since.dump(),
                "position": dict(self.position),
                "high": self.high.dump(),
            }
        return value

    def begin(self, incremental: bool) -> bool:
        """Start a pass, or resume the unfinished one (True)."""
        if self.active:
            return True
        self.active = True
        self.since = HighWater(self.cursor.at, set(self.cursor.ids)) if incremental else HighWater()
        self.position, self.high = {}, HighWater()
        return False

    def finish(self) -> None:
        self.cursor = self.cursor.merged(self.high)
        self.active, self.since, self.position, self.high = False, HighWater(), {}, HighWater()


class Results(HttpStream):
    """The results list, page by page, each result in the convention."""

    name = STREAM
    primary_key = "result_id"
    cursor_field = "updated_at"
    #: checkpoint at least every this many pages even when they emitted nothing
    quiet_pages_per_checkpoint = 10

    def __init__(self, cfg: RestConfig) -> None:
        self.cfg = cfg
        self._progress = RestProgress()
        super().__init__(authenticator=cfg.authenticator())

    @property
    def url_base(self) -> str:
        return self.cfg.base_url + "/"

    @property
    def state(self) -> MutableMapping[str, Any]:
        return self._progress.dump()

    @state.setter
    def state(self, value: MutableMapping[str, Any]) -> None:
        self._progress = RestProgress(value)

    def get_error_handler(self) -> ErrorHandler | None:
        oauth = self.cfg.auth == "oauth2_client_credentials"
        return error_handler(
            self.logger,
            unauthorized=UNAUTHORIZED_OAUTH if oauth else UNAUTHORIZED_KEY,
            forbidden=FORBIDDEN,
            refresh_on_401=oauth,
            max_retries=self.cfg.max_retries,
        )

    def get_backoff_strategy(self) -> BackoffStrategy | list[BackoffStrategy] | None:
        return RetryAfterBackoff()

    def path(self, **_: Any) -> str:
        return self.cfg.results_url  # unused: read_records pages itself (resumable positions)

    def next_page_token(self, response: requests.Response) -> Mapping[str, Any] | None:
        return None

    def parse_response(self, response: requests.Response, **_: Any) -> Iterable[Mapping[str, Any]]:
        return []

    def get_json_schema(self) -> Mapping[str, Any]:  # type: ignore[override]  # a fixed schema: no cache needed
        return SCHEMA

    def fetch(self, params: Mapping[str, Any]) -> requests.Response:
        _request, response = self._http_client.send_request(
            "GET", self.cfg.results_url, request_kwargs={"timeout": 60}, params=dict(params)
        )
        return response

    def _position_params(self, position: Mapping[str, Any]) -> dict[str, Any]:
        cfg = self.cfg
        if cfg.pagination == "page":
            return {cfg.page_param: position.get("page", cfg.first_page), cfg.page_size_param: cfg.page_size}
        if cfg.pagination == "offset":
            return {cfg.offset_param: position.get("offset", 0), cfg.limit_param: cfg.page_size}
        if cfg.pagination == "cursor" and position.get("cursor"):
            return {cfg.cursor_param: position["cursor"]}
        return {}

    def _resume_position(self, position: Mapping[str, Any]) -> dict[str, Any]:
        """Where a resumed pass starts: a page early (page/offset), or from the start (cursor)."""
        cfg = self.cfg
        if cfg.pagination == "page" and "page" in position:
            return {"page": max(cfg.first_page, int(position["page"]) - 1)}
        if cfg.pagination == "offset" and "offset" in position:
            return {"offset": max(0, int(position["offset"]) - cfg.page_size)}
        return {}

    def _next_position(self, position: Mapping[str, Any], body: Any, count: int) -> dict[str, Any] | None:
        cfg = self.cfg
        if cfg.pagination == "page":
            if count < cfg.page_size or count == 0:
                return None
            return {"page": int(position.get("page", cfg.first_page)) + 1}
        if cfg.pagination == "offset":
            if count < cfg.page_size or count == 0:
                return None
            return {"offset": int(position.get("offset", 0)) + count}
        if cfg.pagination == "cursor":
            token = cfg.next_cursor.search(body)
            if token in (None, "", False) or token == position.get("cursor"):
                return None
            return {"cursor": token}
        return None

    def read_records(
        self,
        sync_mode: SyncMode,
        cursor_field: list[str] | None = None,
        stream_slice: Mapping[str, Any] | None = None,
        stream_state: Mapping[str, Any] | None = None,
    ) -> Iterable[Mapping[str, Any] | AirbyteMessage]:
        progress, cfg = self._progress, self.cfg
        resumed = progress.begin(sync_mode == SyncMode.incremental)
        position: dict[str, Any] = self._resume_position(progress.position) if resumed else {}
        gate = progress.since if progress.since.at is not None else None
        since = cfg.since_value(progress.since) if cfg.since_param else None
        checkpoints = PageCheckpoints(self.quiet_pages_per_checkpoint)
        while True:
            params = {**cfg.extra_params, **self._position_params(position)}
            if since is not None:
                params[cfg.since_param] = since
            response = self.fetch(params)
            if response.status_code == 404:
                raise AirbyteTracedException(
                    message=f"the results API answered 404 for {urllib.parse.urlsplit(cfg.results_url).path}",
                    failure_type=FailureType.config_error,
                )
            body = response.json()
            items = cfg.records.search(body)
            if items is None:
                items = []
            if not isinstance(items, list):
                raise AirbyteTracedException(
                    message="records_path does not lead to a list in the API's answer",
                    failure_type=FailureType.config_error,
                )
            for raw in items:
                record = cfg.record(raw)
                moment = parse_instant(record["updated_at"])
                record_id = str(record["result_id"])
                progress.high.observe(moment, record_id)
                if gate is None or gate.admits(moment, record_id):
                    checkpoints.emitted()
                    yield record
            following = self._next_position(position, body, len(items))
            if following is None:
                break
            position = following
            progress.position = dict(position)
            if checkpoints.page_done():
                yield stream_state_message(self.name, self.state)
        progress.finish()


class AssessmentRestSource(WatchedSource):
    """REST mode as an airbyte-cdk source (one stream, ``results``)."""

    vendor = "assessment results API"

    def check_connection(self, logger: logging.Logger, config: Mapping[str, Any]) -> tuple[bool, Any]:
        try:
            stream = Results(RestConfig({**config, "max_retries": 1}))  # answer fast on a wrong URL
            params = {**stream.cfg.extra_params, **stream._position_params({})}
            response = stream.fetch(params)
        except AirbyteTracedException as exc:
            return False, exc.message or exc.internal_message
        if response.status_code != 200:
            return False, f"the results API answered HTTP {response.status_code}"
        if not isinstance(stream.cfg.records.search(response.json()), list | None):
            return False, "records_path does not lead to a list in the API's answer"
        return True, None

    def spec(self, logger: logging.Logger) -> ConnectorSpecification:
        from hub_assessment.source import SPEC

        return ConnectorSpecification(connectionSpecification=SPEC, supportsIncremental=True)

    def streams(self, config: Mapping[str, Any]) -> list[Stream]:
        return [Results(RestConfig(config))]
