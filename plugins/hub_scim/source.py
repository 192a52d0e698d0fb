"""A SCIM 2.0 service provider's directory as an Airbyte source: ``users`` and ``groups``.

Both streams are full refresh, read page by page with ``startIndex``/``count`` until
``totalResults`` (RFC 7644 §3.4.2.4). User records are flattened (the enterprise extension's
attributes become columns); they carry names, e-mails and phone numbers, so map them through a
mapping that seals them, like any personal data read by hub. Group records list their members'
ids, not their names.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar

from airbyte_cdk.models import ConnectorSpecification, SyncMode
from airbyte_cdk.sources import AbstractSource
from airbyte_cdk.sources.streams import Stream

from hub_scim.client import DEFAULT_PAGE_SIZE, ScimClient
from hub_scim.errors import ScimError
from hub_scim.users import ENTERPRISE_USER, value_at

JSON_SCHEMA = "http://json-schema.org/draft-07/schema#"

SPEC: dict[str, Any] = {
    "$schema": JSON_SCHEMA,
    "title": "SCIM 2.0 service provider",
    "type": "object",
    "required": ["base_url"],
    "additionalProperties": False,
    "oneOf": [{"required": ["token"]}, {"required": ["username", "password"]}],
    "properties": {
        "base_url": {
            "type": "string",
            "description": "The SCIM service root, e.g. https://idp.example.com/scim/v2 (no trailing /Users).",
        },
        "token": {"type": "string", "airbyte_secret": True, "description": "A static bearer token."},
        "username": {"type": "string", "description": "HTTP Basic user name (with password)."},
        "password": {"type": "string", "airbyte_secret": True, "description": "HTTP Basic password."},
        "user_name_template": {
            "type": "string",
            "default": "{email}",
            "description": "How a hire's userName is made: {email}, {employee_number}, {key}, {case_id}.",
        },
        "external_id_template": {
            "type": "string",
            "default": "{employee_number}",
            "description": "How a hire's externalId is made; the task's idempotency key when the case has no employee number.",
        },
        "adopt_by_user_name": {
            "type": "boolean",
            "default": True,
            "description": "Adopt an account found by userName that has no externalId (made by hand).",
        },
        "send_phone_numbers": {
            "type": "boolean",
            "default": False,
            "description": "Send the hire's mobile number as phoneNumbers[type=mobile] (off: only what is needed).",
        },
        "organization": {
            "type": "string",
            "description": "The enterprise extension's organization, by default.",
        },
        "department_names": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "hub department code -> the department name written to the enterprise extension.",
        },
        "undo": {
            "type": "string",
            "enum": ["deactivate", "delete"],
            "default": "deactivate",
            "description": "What cancelling an onboarding case does to the user it provisioned.",
        },
        "page_size": {"type": "integer", "minimum": 1, "maximum": 1000, "default": DEFAULT_PAGE_SIZE},
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 10},
        "max_attempts": {"type": "integer", "minimum": 1, "default": 5},
        "backoff_base_seconds": {"type": "number", "minimum": 0, "default": 0.5},
    },
}

#: user record column -> PATCH-style path in the SCIM resource
USER_COLUMNS: dict[str, str] = {
    "id": "id",
    "external_id": "externalId",
    "user_name": "userName",
    "display_name": "displayName",
    "title": "title",
    "active": "active",
    "employee_number": f"{ENTERPRISE_USER}:employeeNumber",
    "department": f"{ENTERPRISE_USER}:department",
    "organization": f"{ENTERPRISE_USER}:organization",
    "cost_center": f"{ENTERPRISE_USER}:costCenter",
    "division": f"{ENTERPRISE_USER}:division",
}

USER_PROPERTIES: dict[str, Any] = {
    **{column: {"type": ["null", "string"]} for column in USER_COLUMNS},
    "active": {"type": ["null", "boolean"]},
    "given_name": {"type": ["null", "string"]},
    "family_name": {"type": ["null", "string"]},
    "formatted_name": {"type": ["null", "string"]},
    "work_email": {"type": ["null", "string"]},
    "emails": {"type": ["null", "array"], "items": {"type": "object"}},
    "phone_numbers": {"type": ["null", "array"], "items": {"type": "object"}},
    "manager_id": {"type": ["null", "string"]},
    "created": {"type": ["null", "string"], "format": "date-time"},
    "last_modified": {"type": ["null", "string"], "format": "date-time"},
}

GROUP_PROPERTIES: dict[str, Any] = {
    "id": {"type": ["null", "string"]},
    "external_id": {"type": ["null", "string"]},
    "display_name": {"type": ["null", "string"]},
    "member_ids": {"type": ["null", "array"], "items": {"type": "string"}},
    "created": {"type": ["null", "string"], "format": "date-time"},
    "last_modified": {"type": ["null", "string"], "format": "date-time"},
}


def _meta(resource: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = resource.get("meta")
    return meta if isinstance(meta, Mapping) else {}


def _multi(values: Any) -> list[dict[str, Any]]:
    """``emails``/``phoneNumbers`` as ``{value, type, primary}`` objects (other keys dropped)."""
    if not isinstance(values, list):
        return []
    return [
        {"value": v.get("value"), "type": v.get("type"), "primary": bool(v.get("primary", False))}
        for v in values
        if isinstance(v, Mapping)
    ]


def user_record(resource: Mapping[str, Any]) -> dict[str, Any]:
    """One SCIM User as a flat record."""
    record: dict[str, Any] = {column: value_at(resource, path) for column, path in USER_COLUMNS.items()}
    name = value_at(resource, "name")
    name = name if isinstance(name, Mapping) else {}
    emails = _multi(value_at(resource, "emails"))
    work = [e for e in emails if e.get("type") == "work"] or emails
    primary = [e for e in work if e.get("primary")] or work
    manager = value_at(resource, f"{ENTERPRISE_USER}:manager")
    record.update(
        given_name=name.get("givenName"),
        family_name=name.get("familyName"),
        formatted_name=name.get("formatted"),
        work_email=primary[0]["value"] if primary else None,
        emails=emails,
        phone_numbers=_multi(value_at(resource, "phoneNumbers")),
        manager_id=manager.get("value") if isinstance(manager, Mapping) else None,
        created=_meta(resource).get("created"),
        last_modified=_meta(resource).get("lastModified"),
    )
    return record


def group_record(resource: Mapping[str, Any]) -> dict[str, Any]:
    """One SCIM Group, its members as ids."""
    members = resource.get("members")
    return {
        "id": resource.get("id"),
        "external_id": resource.get("externalId"),
        "display_name": resource.get("displayName"),
        "member_ids": [
            str(m.get("value")) for m in members or [] if isinstance(m, Mapping) and m.get("value")
        ]
        if isinstance(members, list)
        else [],
        "created": _meta(resource).get("created"),
        "last_modified": _meta(resource).get("lastModified"),
    }


class ScimStream(Stream):
    """A full-refresh stream over one resource type, paged by the client."""

    resource_type: ClassVar[str]
    properties: ClassVar[Mapping[str, Any]]
    primary_key = "id"

    def __init__(self, client: ScimClient) -> None:
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

    def records(self) -> Iterator[dict[str, Any]]:
        for page in self.client.pages(self.resource_type):
            yield from (self.record(resource) for resource in page)

    def record(self, resource: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError


class UsersStream(ScimStream):
    resource_type = "User"
    properties = USER_PROPERTIES

    @property
    def name(self) -> str:
        return "users"

    def record(self, resource: Mapping[str, Any]) -> dict[str, Any]:
        return user_record(resource)


class GroupsStream(ScimStream):
    resource_type = "Group"
    properties = GROUP_PROPERTIES

    @property
    def name(self) -> str:
        return "groups"

    def record(self, resource: Mapping[str, Any]) -> dict[str, Any]:
        return group_record(resource)


class ScimSource(AbstractSource):
    """Users and Groups of a SCIM 2.0 service provider."""

    def spec(self, logger: logging.Logger) -> ConnectorSpecification:
        return ConnectorSpecification(connectionSpecification=SPEC, supportsIncremental=False)

    def check_connection(self, logger: logging.Logger, config: Mapping[str, Any]) -> tuple[bool, Any]:
        """Discovery, then one authenticated read of ``/Users``, with few retries."""
        try:
            ScimClient.from_config({**config, "max_attempts": 2}).check()
        except (KeyError, TypeError, ValueError) as exc:
            return False, f"invalid configuration: {type(exc).__name__}"
        except ScimError as exc:
            return False, str(exc)
        return True, None

    def streams(self, config: Mapping[str, Any]) -> list[Stream]:
        client = ScimClient.from_config(config)
        return [UsersStream(client), GroupsStream(client)]
