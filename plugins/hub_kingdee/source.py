"""Kingdee's employees and departments as an Airbyte source (full refresh, ``ExecuteBillQuery``).

Both streams page with ``StartRow``/``Limit`` over ``FID`` order (a total order, so no row is
skipped or read twice between pages) and stop at the first short page. ``employees`` reads the
fields of ``employee.read_fields``: leave bank accounts and salaries out unless a mapping seals
them, like any personal data hub reads. A record's keys are Kingdee's field keys
(``FNumber``, ``FDeptId.FNumber``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from airbyte_cdk.models import ConnectorSpecification, SyncMode
from airbyte_cdk.sources import AbstractSource
from airbyte_cdk.sources.streams import Stream

from hub_kingdee.client import AUTH_MODES, DEFAULT_PAGE, FIELD_PATH, MAX_PAGE, UNDO_MODES, KingdeeClient
from hub_kingdee.errors import KingdeeError

JSON_SCHEMA = "http://json-schema.org/draft-07/schema#"
ANY_VALUE = {"type": ["null", "string", "number", "integer", "boolean"]}
DEPARTMENT_FIELDS = ("FID", "FNumber", "FName", "FDocumentStatus", "FForbidStatus")

SPEC: dict[str, Any] = {
    "$schema": JSON_SCHEMA,
    "title": "Kingdee 金蝶云星空 (K3Cloud WebAPI)",
    "type": "object",
    "required": ["server_url", "acct_id", "username"],
    "additionalProperties": False,
    # a password login needs the password; every other mode the app of 第三方系统登录授权
    "if": {"properties": {"auth": {"const": "password"}}, "required": ["auth"]},
    "then": {"required": ["password"]},
    "else": {"required": ["app_id", "app_secret"]},
    "properties": {
        "server_url": {
            "type": "string",
            "description": "The K3Cloud site, ending in /k3cloud (https://erp.example.com/k3cloud).",
        },
        "acct_id": {"type": "string", "description": "The data centre (账套) id."},
        "username": {"type": "string", "description": "The integration user."},
        "auth": {
            "type": "string",
            "enum": list(AUTH_MODES),
            "default": "app_secret",
            "description": "password (ValidateUser), app_secret (LoginByAppSecret), sign (LoginBySign), "
            "or api_signature (v8 signed headers, no session).",
        },
        "password": {"type": "string", "airbyte_secret": True, "description": "For auth = password."},
        "app_id": {"type": "string", "description": "The app id from 第三方系统登录授权."},
        "app_secret": {"type": "string", "airbyte_secret": True, "description": "The app's secret."},
        "api_client_secret": {
            "type": "string",
            "airbyte_secret": True,
            "description": "api_signature: the decoded client secret, when the app id does not carry it.",
        },
        "lcid": {"type": "integer", "default": 2052, "description": "Language: 2052 Chinese, 1033 English."},
        "org_number": {
            "type": "string",
            "description": "Organisation number; also written as the employee's FCreateOrgId/FUseOrgId.",
        },
        "session_ttl_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 1200},
        "employee": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "form_id": {"type": "string", "default": "BD_Empinfo"},
                "number_field": {"type": "string", "pattern": FIELD_PATH, "default": "FNumber"},
                "name_field": {"type": "string", "pattern": FIELD_PATH, "default": "FName"},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "string", "pattern": FIELD_PATH},
                    "description": 'hub case field -> Kingdee field path (department = "FDeptId.FNumber").',
                },
                "fixed": {
                    "type": "object",
                    "propertyNames": {"pattern": FIELD_PATH},
                    "description": "Kingdee field path -> a value written as it is.",
                },
                "required": {"type": "array", "items": {"type": "string"}},
                "read_fields": {
                    "type": "array",
                    "items": {"type": "string", "pattern": FIELD_PATH},
                    "minItems": 1,
                },
                "undo": {"type": "string", "enum": list(UNDO_MODES), "default": "delete"},
            },
        },
        "page_size": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE},
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 10},
        "max_attempts": {"type": "integer", "minimum": 1, "default": 5},
        "backoff_base_seconds": {"type": "number", "minimum": 0, "default": 0.5},
    },
}


class BillStream(Stream):
    """One form read through ``ExecuteBillQuery``, full refresh, keyed by ``FID``."""

    primary_key = "FID"

    def __init__(self, client: KingdeeClient, stream_name: str, form_id: str, fields: Sequence[str]) -> None:
        self.client = client
        self._name = stream_name
        self.form_id = form_id
        self.fields = ["FID", *[f for f in fields if f != "FID"]]

    @property
    def name(self) -> str:
        return self._name

    def get_json_schema(self) -> Mapping[str, Any]:  # type: ignore[override]  # fixed: nothing to cache
        properties: dict[str, Any] = {key: dict(ANY_VALUE) for key in self.fields}
        properties["FID"] = {"type": "integer"}
        return {"$schema": JSON_SCHEMA, "type": "object", "properties": properties}

    def read_records(
        self,
        sync_mode: SyncMode,
        cursor_field: list[str] | None = None,
        stream_slice: Mapping[str, Any] | None = None,
        stream_state: Mapping[str, Any] | None = None,
    ) -> Iterable[Mapping[str, Any]]:
        for page in self.client.iter_records(self.form_id, self.fields):
            yield from page


class KingdeeSource(AbstractSource):
    """Kingdee employees (``employees``) and departments (``departments``)."""

    def spec(self, logger: logging.Logger) -> ConnectorSpecification:
        return ConnectorSpecification(connectionSpecification=SPEC, supportsIncremental=False)

    def check_connection(self, logger: logging.Logger, config: Mapping[str, Any]) -> tuple[bool, Any]:
        """Log in and read one employee row, with few retries."""
        try:
            KingdeeClient.from_config({**config, "max_attempts": 2}).check()
        except (KeyError, TypeError, ValueError) as exc:
            return False, f"invalid configuration: {type(exc).__name__}: {exc}"
        except KingdeeError as exc:
            return False, str(exc)
        return True, None

    def streams(self, config: Mapping[str, Any]) -> list[Stream]:
        client = KingdeeClient.from_config(config)
        form = client.settings.employee
        return [
            BillStream(client, "employees", form.form_id, form.read_fields),
            BillStream(client, "departments", "BD_Department", DEPARTMENT_FIELDS),
        ]
