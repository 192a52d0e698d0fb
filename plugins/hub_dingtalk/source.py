"""DingTalk's address book as an Airbyte source: ``departments`` and ``users`` (full refresh).

``departments`` walks the tree with ``topapi/v2/department/listsub``; ``users`` pages through
each department with ``topapi/v2/user/list`` (cursor, at most 100 a page) and emits each
member once, even when they belong to several departments. Records carry mobiles and e-mails:
map them through a mapping that seals them. The client does the token lifecycle and retries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hub.oa.source import ClientStream, OASource, connector_spec, each_once
from hub_dingtalk.client import DEFAULT_API_BASE_URL, DEFAULT_BASE_URL, DingTalkClient, DingTalkSettings

SPEC = connector_spec(
    "DingTalk (钉钉)",
    ["app_key", "app_secret"],
    {
        "base_url": {
            "type": "string",
            "default": DEFAULT_BASE_URL,
            "description": "DingTalk's legacy API host (contacts, work notices).",
        },
        "api_base_url": {
            "type": "string",
            "default": DEFAULT_API_BASE_URL,
            "description": "DingTalk's new API host (token, workflow).",
        },
        "app_key": {"type": "string", "description": "The internal app's AppKey (Client ID)."},
        "app_secret": {"type": "string", "airbyte_secret": True, "description": "The app's AppSecret."},
        "auth_host": {
            "type": "string",
            "enum": ["new", "legacy"],
            "default": "new",
            "description": "Where the app token comes from: /v1.0/oauth2/accessToken (new) or /gettoken.",
        },
        "agent_id": {"type": "integer", "description": "The app's AgentId (work notices, approvals)."},
        "department_map": {
            "type": "object",
            "additionalProperties": {"type": "integer"},
            "description": "hub department code -> DingTalk dept_id.",
        },
        "default_department": {"type": "integer", "default": 1},
    },
    approval={
        "process_code": {
            "type": "string",
            "description": "The onboarding approval's processCode (PROC-...).",
        },
        "originator_userid": {"type": "string", "description": "Who starts the approval (HR)."},
        "originator_dept_id": {"type": "integer", "default": 1},
        "reference_field": {
            "type": "string",
            "description": "Name of a form component that holds hub's reference (finds a started approval).",
        },
    },
    settings=DingTalkSettings,
    id_label="userid",
    form=("form_fields", "component name"),
    welcome="notice",
    page_max=100,
)

USER_FIELDS = (
    "userid",
    "unionid",
    "name",
    "mobile",
    "email",
    "job_number",
    "title",
    "dept_id_list",
    "manager_userid",
    "hired_date",
    "active",
)


class Departments(ClientStream[DingTalkClient]):
    primary_key = "dept_id"
    properties = {
        "dept_id": {"type": "integer"},
        "name": {"type": "string"},
        "parent_id": {"type": ["integer", "null"]},
    }

    def records(self) -> Iterable[Mapping[str, Any]]:
        for department in self.client.departments():
            yield {key: department.get(key) for key in ("dept_id", "name", "parent_id")}


class Users(ClientStream[DingTalkClient]):
    primary_key = "userid"
    properties = {
        "userid": {"type": "string"},
        "unionid": {"type": ["string", "null"]},
        "name": {"type": "string"},
        "mobile": {"type": ["string", "null"]},
        "email": {"type": ["string", "null"]},
        "job_number": {"type": ["string", "null"]},
        "title": {"type": ["string", "null"]},
        "dept_id_list": {"type": "array", "items": {"type": "integer"}},
        "manager_userid": {"type": ["string", "null"]},
        "hired_date": {"type": ["integer", "null"], "description": "milliseconds since the epoch"},
        "active": {"type": ["boolean", "null"]},
    }

    def records(self) -> Iterable[Mapping[str, Any]]:
        departments = [1, *(int(d["dept_id"]) for d in self.client.departments())]
        pages = (page for dept_id in departments for page in self.client.iter_users(dept_id))
        return each_once(pages, "userid", USER_FIELDS)


class DingTalkSource(OASource):
    """DingTalk's address book as an Airbyte source."""

    spec_schema = SPEC
    client = DingTalkClient
    stream_classes = (Departments, Users)
