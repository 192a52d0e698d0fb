"""SuccessFactors Employee Central as an Airbyte source: ``PerPerson``, ``EmpEmployment``, ``EmpJob``.

Each stream is read with OData server paging (``paging=snapshot``, ``customPageSize``, then
``__next`` until it is absent) and, incrementally, by ``lastModifiedDateTime``: the range from
the saved cursor (minus ``lookback_minutes`` for late writes) to the start of the sync is one
``$filter=lastModifiedDateTime ge datetime'..' and lastModifiedDateTime lt datetime'..'``, and
the state ``{"lastModifiedDateTime": <end, ISO UTC>}`` is saved once it is read, so an
interrupted sync reads the range again (records are upserted by key). ``/Date(ms)/`` values
become ISO dates (``date`` properties) or instants. Only job and key facts are read: a
person's birth date, names and addresses stay in SuccessFactors.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, MutableMapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from airbyte_cdk.models import ConnectorSpecification, FailureType, SyncMode
from airbyte_cdk.sources.streams import CheckpointMixin, Stream

from hub.http_source import JSON_SCHEMA, WatchedSource, masked_error
from hub.vendor_http import AuthFailed, VendorError
from hub.windowed_source import iso_utc, parse_utc
from hub_successfactors.client import MAX_PAGE_SIZE, SuccessFactorsClient, parse_odata_date
from hub_successfactors.saml import AssertionKeyError

CURSOR = "lastModifiedDateTime"

SPEC: dict[str, Any] = {
    "$schema": JSON_SCHEMA,
    "title": "SAP SuccessFactors Employee Central (OData v2)",
    "type": "object",
    "required": ["base_url", "company_id", "client_id", "user_id", "private_key"],
    "additionalProperties": False,
    "properties": {
        "base_url": {
            "type": "string",
            "description": "The API server, e.g. https://api55.sapsf.eu (a simulator's URL in tests).",
        },
        "company_id": {
            "type": "string",
            "description": "The company id (instance) the OAuth client belongs to.",
        },
        "client_id": {
            "type": "string",
            "description": "The OAuth client's API key (Manage OAuth2 Client Applications).",
        },
        "user_id": {"type": "string", "description": "The API user's userId, named in the SAML assertion."},
        "private_key": {
            "type": "string",
            "airbyte_secret": True,
            "description": "PEM private key of the certificate registered with the OAuth client (a reference).",
        },
        "token_url": {"type": "string", "description": "Token endpoint (default: <base_url>/oauth/token)."},
        "issuer": {"type": "string", "description": "The assertion's Issuer (default: the client id)."},
        "assertion_lifetime_seconds": {"type": "number", "minimum": 60, "default": 600},
        "page_size": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": MAX_PAGE_SIZE},
        "start_date": {
            "type": "string",
            "default": "2000-01-01T00:00:00Z",
            "description": "Incremental reads start at records modified from this instant on.",
        },
        "lookback_minutes": {"type": "integer", "minimum": 0, "default": 10},
        "hire": {
            "type": "object",
            "additionalProperties": False,
            "description": "What successfactors.hire writes besides the case's data.",
            "properties": {
                "company": {"type": "string", "description": "EmpJob.company (legal entity code)."},
                "event_reason": {"type": "string", "default": "HIRNEW"},
                "termination_event_reason": {"type": "string", "default": "TERNOSHOW"},
                "job_code": {"type": "string", "description": "Default EmpJob.jobCode."},
                "business_unit": {"type": "string"},
                "location": {"type": "string"},
                "email_type": {
                    "type": "string",
                    "default": "B",
                    "description": "PerEmail.emailType picklist code.",
                },
                "department_map": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "hub department code -> SuccessFactors department code.",
                },
                "user_id_template": {
                    "type": "string",
                    "default": "{employee_no}",
                    "description": "The hire's userId (= personIdExternal): {employee_no}, {key}.",
                },
            },
        },
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 10},
        "max_attempts": {"type": "integer", "minimum": 1, "default": 5},
        "backoff_base_seconds": {"type": "number", "minimum": 0, "default": 1},
        "token_margin_seconds": {"type": "number", "minimum": 0, "default": 300},
    },
}


def _nullable(kind: str, fmt: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": ["null", kind]}
    if fmt:
        schema["format"] = fmt
    return schema


def odata_literal(moment: datetime) -> str:
    """``datetime'2026-01-31T08:00:00.123'``: an instant (UTC, to the millisecond) in a ``$filter``."""
    moment = moment.astimezone(UTC)
    return "datetime'" + moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{moment.microsecond // 1000:03d}'"


class EntityStream(Stream, CheckpointMixin):
    """One Employee Central entity, full refresh or incremental by ``lastModifiedDateTime``."""

    entity: ClassVar[str]
    properties: ClassVar[Mapping[str, dict[str, Any]]]
    cursor_field = CURSOR

    def __init__(
        self, client: SuccessFactorsClient, start: datetime, lookback: timedelta, until: datetime
    ) -> None:
        self.client = client
        self._start, self._lookback, self._until = start, lookback, until
        self._state: MutableMapping[str, Any] = {}

    @property
    def name(self) -> str:
        return self.entity

    @property
    def state(self) -> MutableMapping[str, Any]:
        return self._state

    @state.setter
    def state(self, value: MutableMapping[str, Any]) -> None:
        self._state = dict(value or {})

    def get_json_schema(self) -> Mapping[str, Any]:  # type: ignore[override]  # fixed: nothing to cache
        return {"$schema": JSON_SCHEMA, "type": "object", "properties": dict(self.properties)}

    def stream_slices(
        self,
        *,
        sync_mode: SyncMode,
        cursor_field: list[str] | None = None,
        stream_state: Mapping[str, Any] | None = None,
    ) -> Iterable[Mapping[str, Any] | None]:
        if sync_mode == SyncMode.full_refresh:
            return [None]
        saved = (stream_state or self._state).get(CURSOR)
        lo = parse_utc(str(saved)) - self._lookback if saved else self._start
        return [{"start": iso_utc(lo), "end": iso_utc(self._until)}]

    def record(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """The declared fields of a raw OData record, ``/Date(ms)/`` as ISO text."""
        out: dict[str, Any] = {}
        for name, schema in self.properties.items():
            value = raw.get(name)
            moment = parse_odata_date(value)
            if moment is not None:
                value = moment.date().isoformat() if schema.get("format") == "date" else iso_utc(moment)
            out[name] = value
        return out

    def read_records(
        self,
        sync_mode: SyncMode,
        cursor_field: list[str] | None = None,
        stream_slice: Mapping[str, Any] | None = None,
        stream_state: Mapping[str, Any] | None = None,
    ) -> Iterable[Mapping[str, Any]]:
        filter_ = None
        if stream_slice:
            lo, hi = parse_utc(stream_slice["start"]), parse_utc(stream_slice["end"])
            filter_ = f"{CURSOR} ge {odata_literal(lo)} and {CURSOR} lt {odata_literal(hi)}"
        try:
            for page in self.client.pages(self.entity, filter=filter_, select=list(self.properties)):
                for raw in page:
                    yield self.record(raw)
        except VendorError as exc:
            failure = (
                FailureType.config_error
                if isinstance(exc, AuthFailed) or not exc.retryable
                else (FailureType.transient_error)
            )
            raise masked_error(str(exc), failure) from None
        if stream_slice:
            self._state = {CURSOR: stream_slice["end"]}


class PerPerson(EntityStream):
    entity = "PerPerson"
    primary_key = "personIdExternal"
    properties = {
        "personIdExternal": {"type": "string"},
        "personId": _nullable("string"),
        "perPersonUuid": _nullable("string"),
        "createdDateTime": _nullable("string", "date-time"),
        "lastModifiedDateTime": _nullable("string", "date-time"),
    }


class EmpEmployment(EntityStream):
    entity = "EmpEmployment"
    primary_key = ["personIdExternal", "userId"]
    properties = {
        "personIdExternal": {"type": "string"},
        "userId": {"type": "string"},
        "startDate": _nullable("string", "date"),
        "endDate": _nullable("string", "date"),
        "originalStartDate": _nullable("string", "date"),
        "isContingentWorker": _nullable("boolean"),
        "lastModifiedDateTime": _nullable("string", "date-time"),
    }


class EmpJob(EntityStream):
    entity = "EmpJob"
    primary_key = ["seqNumber", "startDate", "userId"]
    properties = {
        "userId": {"type": "string"},
        "startDate": {"type": "string", "format": "date"},
        "seqNumber": {"type": "integer"},
        "endDate": _nullable("string", "date"),
        "company": _nullable("string"),
        "businessUnit": _nullable("string"),
        "division": _nullable("string"),
        "department": _nullable("string"),
        "location": _nullable("string"),
        "costCenter": _nullable("string"),
        "jobCode": _nullable("string"),
        "jobTitle": _nullable("string"),
        "position": _nullable("string"),
        "managerId": _nullable("string"),
        "eventReason": _nullable("string"),
        "emplStatus": _nullable("string"),
        "employmentType": _nullable("string"),
        "standardHours": _nullable("number"),
        "lastModifiedDateTime": _nullable("string", "date-time"),
    }


class SuccessFactorsSource(WatchedSource):
    """SuccessFactors Employee Central as an Airbyte source."""

    vendor = "SuccessFactors"
    stream_classes: ClassVar[tuple[type[EntityStream], ...]] = (PerPerson, EmpEmployment, EmpJob)

    def spec(self, logger: logging.Logger) -> ConnectorSpecification:
        return ConnectorSpecification(connectionSpecification=SPEC, supportsIncremental=True)

    def check_connection(self, logger: logging.Logger, config: Mapping[str, Any]) -> tuple[bool, Any]:
        """Fetch a token (the signed assertion) and read one PerPerson, with few retries."""
        try:
            SuccessFactorsClient.from_config({**config, "max_attempts": 2}).check()
        except AssertionKeyError as exc:
            return False, f"invalid configuration: {exc}"
        except (KeyError, TypeError, ValueError) as exc:
            return False, f"invalid configuration: {type(exc).__name__}"
        except VendorError as exc:
            return False, str(exc)
        return True, None

    def streams(self, config: Mapping[str, Any]) -> list[Stream]:
        try:
            client = SuccessFactorsClient.from_config(config)
            start = parse_utc(str(config.get("start_date") or "2000-01-01T00:00:00Z"))
        except (KeyError, TypeError, ValueError) as exc:
            raise masked_error(
                f"invalid configuration: {type(exc).__name__}", FailureType.config_error
            ) from None
        lookback = timedelta(minutes=int(config.get("lookback_minutes") or 10))
        until = datetime.now(UTC)
        return [stream(client, start, lookback, until) for stream in self.stream_classes]
