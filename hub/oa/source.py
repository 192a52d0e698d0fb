"""An OA vendor's address book as an Airbyte source: ``departments`` and ``users`` (full refresh).

The plugin names its client, its spec (:func:`connector_spec` adds what every OA connector
has: the id template, the approval's look-back, the welcome text, paging and the transport's
knobs) and its two streams, which say what they read in :meth:`ClientStream.records`. Records
carry mobiles and e-mails: map them through a mapping that seals them, like any personal data
read by hub. The client does the token lifecycle and the retries.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import fields
from typing import Any, ClassVar, Generic, TypeVar

from airbyte_cdk.models import ConnectorSpecification, SyncMode
from airbyte_cdk.sources import AbstractSource
from airbyte_cdk.sources.streams import Stream

from hub.oa.client import OAClient, OASettings
from hub.vendor_http import VendorError

JSON_SCHEMA = "http://json-schema.org/draft-07/schema#"

C = TypeVar("C", bound=OAClient[Any, Any])


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def connector_spec(
    title: str,
    required: Sequence[str],
    properties: Mapping[str, Any],
    *,
    settings: type[OASettings[Any]],
    id_label: str,
    approval: Mapping[str, Any],
    form: tuple[str, str],
    welcome: str,
    page_max: int,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An OA connector's spec: the vendor's ``properties`` (host, credentials, departments),
    then the id template, ``extra``, the ``approval`` table (with ``form``: the key mapping hub's
    fields to the form, and what they map to) and the settings every OA connector has, whose
    defaults are the ``settings`` class's (so the spec and the parser agree)."""
    defaults: dict[str, Any] = {f.name: f.default for f in fields(settings)}
    form_key, form_target = form
    return {
        "$schema": JSON_SCHEMA,
        "title": title,
        "type": "object",
        "required": list(required),
        "additionalProperties": False,
        "properties": {
            **properties,
            f"{id_label}_template": {
                "type": "string",
                "default": "{job_number}",
                "description": f"How a hire's {id_label} is derived: {{job_number}}, {{key}} (the task's idempotency key).",
            },
            **(extra or {}),
            "approval": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    **approval,
                    form_key: {
                        "type": "object",
                        "additionalProperties": {"type": "string"},
                        "description": f"hub field (name, job_number, department, title, start_date) -> {form_target}.",
                    },
                    "lookback_days": {"type": "integer", "minimum": 1, "default": 7},
                },
            },
            "welcome_text": {
                "type": "string",
                "description": f"Welcome {welcome}; {{name}} and {{start_date}} are filled in.",
            },
            "page_size": {
                "type": "integer",
                "minimum": 1,
                "maximum": page_max,
                "default": defaults["page_size"],
            },
            "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 10},
            "max_attempts": {"type": "integer", "minimum": 1, "default": 5},
            "backoff_base_seconds": {
                "type": "number",
                "minimum": 0,
                "default": _number(defaults["backoff_base"]),
            },
            "token_margin_seconds": {
                "type": "number",
                "minimum": 0,
                "default": _number(defaults["token_margin"]),
            },
        },
    }


def each_once(
    pages: Iterable[Sequence[Mapping[str, Any]]], key: str, fields: Sequence[str]
) -> Iterator[dict[str, Any]]:
    """The records of ``pages`` projected on ``fields``, each ``key`` once (a member listed in
    several departments is emitted once)."""
    seen: set[str] = set()
    for page in pages:
        for record in page:
            value = str(record.get(key) or "")
            if value and value not in seen:
                seen.add(value)
                yield {name: record.get(name) for name in fields}


class ClientStream(Stream, Generic[C]):
    """A full-refresh stream over the client, with a fixed schema."""

    #: the record's JSON schema properties
    properties: ClassVar[Mapping[str, Any]]

    def __init__(self, client: C) -> None:
        self.client = client

    def get_json_schema(self) -> Mapping[str, Any]:  # type: ignore[override]  # fixed: nothing to cache
        return {"$schema": JSON_SCHEMA, "type": "object", "properties": dict(self.properties)}

    def read_records(
        self,
        sync_mode: SyncMode,
        cursor_field: list[str] | None = None,
        stream_slice: Mapping[str, Any] | None = None,
        stream_state: Mapping[str, Any] | None = None,
    ) -> Iterable[Mapping[str, Any]]:
        return self.records()

    @abstractmethod
    def records(self) -> Iterable[Mapping[str, Any]]:
        """Every record of the stream."""


class OASource(AbstractSource):
    """An OA vendor's address book as an Airbyte source."""

    spec_schema: ClassVar[Mapping[str, Any]]
    client: ClassVar[type[OAClient[Any, Any]]]
    stream_classes: ClassVar[Sequence[type[ClientStream[Any]]]]

    def spec(self, logger: logging.Logger) -> ConnectorSpecification:
        return ConnectorSpecification(
            connectionSpecification=dict(self.spec_schema), supportsIncremental=False
        )

    def check_connection(self, logger: logging.Logger, config: Mapping[str, Any]) -> tuple[bool, Any]:
        """Fetch a token and list departments (the client's ``check``), with few retries."""
        try:
            self.client.from_config({**config, "max_attempts": 2}).check()
        except (KeyError, TypeError, ValueError) as exc:
            return False, f"invalid configuration: {type(exc).__name__}"
        except VendorError as exc:
            return False, str(exc)
        return True, None

    def streams(self, config: Mapping[str, Any]) -> list[Stream]:
        client = self.client.from_config(config)
        return [stream(client) for stream in self.stream_classes]
