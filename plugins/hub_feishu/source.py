"""Feishu's contacts as an Airbyte source: ``departments`` and ``users`` (full refresh).

``departments`` reads ``departments/0/children`` with ``fetch_child`` (page_token paging);
``users`` reads each department's direct members with ``users/find_by_department`` (at most
50 a page) and emits each user once. Ids are ``user_id`` and ``department_id`` (the tenant's
own ids). Records carry mobiles and e-mails: map them through a mapping that seals them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hub.oa.source import ClientStream, OASource, connector_spec, each_once
from hub_feishu.client import DEFAULT_BASE_URL, FeishuClient, FeishuSettings

SPEC = connector_spec(
    "Feishu / Lark (飞书)",
    ["app_id", "app_secret"],
    {
        "base_url": {
            "type": "string",
            "default": DEFAULT_BASE_URL,
            "description": "Feishu's API host (https://open.larksuite.com for Lark; a simulator's URL in tests).",
        },
        "app_id": {"type": "string", "description": "The custom app's App ID (cli_...)."},
        "app_secret": {"type": "string", "airbyte_secret": True, "description": "The app's App Secret."},
        "department_map": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "hub department code -> Feishu department_id.",
        },
        "default_department": {"type": "string", "default": "0", "description": "0 is the root department."},
    },
    extra={
        "employee_type": {
            "type": "integer",
            "default": 1,
            "description": "1 regular, 2 intern, 3 outsourced, 4 labour, 5 consultant (or a custom value).",
        },
    },
    approval={
        "approval_code": {"type": "string", "description": "The onboarding approval definition code."},
        "applicant_user_id": {"type": "string", "description": "Who submits the approval (HR), a user_id."},
        "applicant_department_id": {"type": "string"},
    },
    settings=FeishuSettings,
    id_label="user_id",
    form=("form_widgets", "input widget id"),
    welcome="message",
    page_max=50,
)

USER_FIELDS = (
    "user_id",
    "open_id",
    "union_id",
    "name",
    "mobile",
    "email",
    "employee_no",
    "employee_type",
    "job_title",
    "department_ids",
    "leader_user_id",
    "join_time",
    "is_frozen",
)


class Departments(ClientStream[FeishuClient]):
    primary_key = "department_id"
    properties = {
        "department_id": {"type": "string"},
        "open_department_id": {"type": ["string", "null"]},
        "name": {"type": "string"},
        "parent_department_id": {"type": ["string", "null"]},
    }

    def records(self) -> Iterable[Mapping[str, Any]]:
        for department in self.client.departments():
            yield {
                key: department.get(key)
                for key in ("department_id", "open_department_id", "name", "parent_department_id")
            }


class Users(ClientStream[FeishuClient]):
    primary_key = "user_id"
    properties = {
        "user_id": {"type": "string"},
        "open_id": {"type": ["string", "null"]},
        "union_id": {"type": ["string", "null"]},
        "name": {"type": "string"},
        "mobile": {"type": ["string", "null"]},
        "email": {"type": ["string", "null"]},
        "employee_no": {"type": ["string", "null"]},
        "employee_type": {"type": ["integer", "null"]},
        "job_title": {"type": ["string", "null"]},
        "department_ids": {"type": "array", "items": {"type": "string"}},
        "leader_user_id": {"type": ["string", "null"]},
        "join_time": {"type": ["integer", "null"], "description": "seconds since the epoch"},
        "is_frozen": {"type": ["boolean", "null"]},
    }

    def records(self) -> Iterable[Mapping[str, Any]]:
        departments = ["0", *(str(d["department_id"]) for d in self.client.departments())]
        pages = (page for department_id in departments for page in self.client.iter_users(department_id))
        return each_once(pages, "user_id", USER_FIELDS)


class FeishuSource(OASource):
    """Feishu's contacts as an Airbyte source."""

    spec_schema = SPEC
    client = FeishuClient
    stream_classes = (Departments, Users)
