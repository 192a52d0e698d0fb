"""WeCom's address book as an Airbyte source: ``departments`` and ``users`` (full refresh).

``users`` pages through ``user/list_id`` by cursor (a member in several departments is listed
once per department; each userid is read once) and reads each member with ``user/get``.
Records carry the member's mobile and e-mail: map them through a mapping that seals them,
like any personal data read by hub. The client does the token lifecycle and the retries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hub.oa.source import ClientStream, OASource, connector_spec
from hub_wecom.client import DEFAULT_BASE_URL, WeComClient, WeComSettings

SPEC = connector_spec(
    "WeCom (企业微信)",
    ["corp_id", "corp_secret"],
    {
        "base_url": {
            "type": "string",
            "default": DEFAULT_BASE_URL,
            "description": "WeCom's API host (a simulator's URL in tests).",
        },
        "corp_id": {"type": "string", "description": "The corp id (我的企业 > 企业ID, ww...)."},
        "corp_secret": {
            "type": "string",
            "airbyte_secret": True,
            "description": "The self-built app's secret (approvals, messages; members too without contacts_secret).",
        },
        "contacts_secret": {
            "type": "string",
            "airbyte_secret": True,
            "description": "The address-book sync secret (通讯录同步), used for member reads and writes.",
        },
        "agent_id": {"type": "integer", "description": "The app's AgentId, which sends welcome messages."},
        "department_map": {
            "type": "object",
            "additionalProperties": {"type": "integer"},
            "description": "hub department code -> WeCom department id.",
        },
        "default_department": {
            "type": "integer",
            "default": 1,
            "description": "Department for a hire without a department code.",
        },
    },
    extra={
        "invite": {"type": "boolean", "default": False, "description": "Send WeCom's invitation on create."}
    },
    approval={
        "template_id": {"type": "string", "description": "The onboarding approval template id."},
        "creator_userid": {"type": "string", "description": "Who submits the approval (HR)."},
        "reference_control": {
            "type": "string",
            "description": "Id of a Text control that holds hub's reference (finds a submitted approval).",
        },
    },
    settings=WeComSettings,
    id_label="userid",
    form=("form_controls", "control id"),
    welcome="message",
    page_max=10000,
)

USER_FIELDS = (
    "userid",
    "name",
    "department",
    "main_department",
    "position",
    "mobile",
    "email",
    "status",
    "enable",
)


class Departments(ClientStream[WeComClient]):
    primary_key = "id"
    properties = {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "parentid": {"type": ["integer", "null"]},
        "order": {"type": ["integer", "null"]},
    }

    def records(self) -> Iterable[Mapping[str, Any]]:
        for department in self.client.departments():
            yield {key: department.get(key) for key in ("id", "name", "parentid", "order")}


class Users(ClientStream[WeComClient]):
    primary_key = "userid"
    properties = {
        "userid": {"type": "string"},
        "name": {"type": "string"},
        "department": {"type": "array", "items": {"type": "integer"}},
        "main_department": {"type": ["integer", "null"]},
        "position": {"type": ["string", "null"]},
        "mobile": {"type": ["string", "null"]},
        "email": {"type": ["string", "null"]},
        "status": {
            "type": ["integer", "null"],
            "description": "1 active, 2 disabled, 4 not activated",
        },
        "enable": {"type": ["integer", "null"]},
    }

    def records(self) -> Iterable[Mapping[str, Any]]:
        for page in self.client.iter_member_ids():
            for userid in page:
                member = self.client.get_user(userid)
                if member is not None:  # removed between the listing and the read
                    yield {key: member.get(key) for key in USER_FIELDS}


class WeComSource(OASource):
    """WeCom's address book as an Airbyte source."""

    spec_schema = SPEC
    client = WeComClient
    stream_classes = (Departments, Users)
