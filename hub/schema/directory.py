"""Directory and OA accounts: DingTalk, WeCom, Feishu, SCIM identity providers (§8.5).

A DirectoryAccount records an employee's account in one directory, with the ids that system uses
(tenant user id, cross-app union/open ids) and what hub last pushed there.
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from pydantic import Field

from hub.schema.base import CanonicalModel, Coded, Timestamp


class DirectorySystem(StrEnum):
    """The kind of directory."""

    DINGTALK = "DINGTALK"
    WECOM = "WECOM"
    FEISHU = "FEISHU"
    SCIM_IDP = "SCIM_IDP"
    AD = "AD"
    LDAP = "LDAP"
    OTHER = "OTHER"


class DirectoryAccountStatus(StrEnum):
    """Where an account stands (WeCom 1 已激活 / 2 已禁用 / 4 未激活 / 5 退出; Feishu is_frozen…)."""

    INVITED = "INVITED"
    ACTIVE = "ACTIVE"
    DISABLED = "DISABLED"
    DELETED = "DELETED"
    OTHER = "OTHER"


class DirectoryAccount(CanonicalModel):
    """An employee's account in one directory or OA system."""

    employee_id: uuid.UUID | None = Field(
        default=None, description="Hub id of the Employee (set once linked)."
    )
    connector: str | None = Field(default=None, description="hub.toml connector of the directory.")
    system: DirectorySystem = Field(description="Kind of directory.")
    account_id: str = Field(min_length=1, description="Tenant-scoped user id (userid / user_id).")
    union_id: str | None = Field(
        default=None, description="Cross-app id (DingTalk unionid, Feishu union_id)."
    )
    open_id: str | None = Field(
        default=None, description="App-scoped id (Feishu open_id, WeCom open_userid)."
    )
    user_name: str | None = Field(default=None, description="Login name (SCIM userName).")
    status: Coded[DirectoryAccountStatus] | None = Field(default=None, description="Account status.")
    remote_department_ids: list[str] = Field(
        default_factory=list, description="Department ids in the directory."
    )
    remote_leader_id: str | None = Field(default=None, description="The leader's user id in the directory.")
    last_pushed_hash: str | None = Field(default=None, description="Content hash of what hub last pushed.")
    last_provisioned_at: Timestamp | None = Field(
        default=None, description="When hub last pushed the account."
    )
    scim_external_id: str | None = Field(default=None, description="SCIM externalId (the Employee's hub id).")
