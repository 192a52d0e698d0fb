"""A typed Feishu / Lark (飞书) open-API client for onboarding: users, approvals, messages.

Token lifecycle: ``POST /open-apis/auth/v3/tenant_access_token/internal`` with ``{app_id,
app_secret}`` gives a ``tenant_access_token`` for ``expire`` (7200) seconds, sent as
``Authorization: Bearer``; it is cached until ``token_margin`` seconds before expiry (the
official SDK keeps 3 minutes), and refetched once, the call then retried, on 99991663 /
99991664 / 99991671. HTTP 429 / ``99991400`` is retried after ``x-ogw-ratelimit-reset``
seconds (else exponential backoff); HTTP 5xx and timeouts are retried when that is safe.

Idempotency: user creation carries ``client_token`` = the task's idempotency key, so a
repeated create returns the first one's user; the user_id is also derived from the hire, so
a lookup finds it first, and a user who already has the hire's mobile and name is adopted
(``batch_get_id``) rather than duplicated. Approval instances carry ``uuid`` = the idempotency key; a reused
uuid is refused with 60012, and the instance is then found by listing the approval's recent
instances and reading their ``uuid``. Messages carry ``uuid`` too (Feishu drops a repeat
within an hour).

What was checked, and where (searched 2026-11; nothing was run against Feishu itself):

- Token endpoint, body and answer, Bearer header: vendors.md §1.3 [V] (SDK ``core/token``);
  the refetch codes 99991663 (tenant token), 99991664 (app token), 99991671 and the SDK's
  3-minute expiry margin: lark-oapi Go/Java ``Body.ErrCode*`` constants and ``expiryDelta`` [V].
- Frequency limit: HTTP 429 (some older APIs 400), ``code 99991400`` ("request trigger
  frequency limit"), ``x-ogw-ratelimit-limit`` / ``x-ogw-ratelimit-reset`` (seconds to wait):
  open.feishu.cn 「频控策略」 as quoted by several clients and apitable's ``FeishuErrorCode`` [S].
- ``POST /open-apis/contact/v3/users?user_id_type&department_id_type&client_token``: body
  (``name``, ``mobile`` required, ``department_ids`` required, ``employee_type`` required,
  ``user_id``, ``employee_no``, ``leader_user_id``, ``job_title``, ``join_time`` in seconds),
  answer ``data.user``, and errors 40021 (client_token reused with other parameters), 41001
  mobile / 41002 e-mail / 41011 user_id / 44051 employee_no taken, 41012 unknown user_id (get),
  all with HTTP 400: the official docs, mirrored verbatim in ``wxkingstar/doc-hub-mcp``
  (``contact-v3/user/create.md``, ``get.md``) [V]. That a repeat with the same client_token
  answers the first user is our reading of "用于幂等判断是否为同一请求，避免重复创建" [S].
- ``PATCH .../users/:user_id`` with ``is_frozen`` (1 QPS for freezes): same mirror (``patch.md``)
  [V]; ``POST .../users/batch_get_id {mobiles, emails}`` -> ``data.user_list[{user_id?, mobile,
  status}]`` (``batch_get_id.md``) [V]; ``find_by_department`` and ``departments/:id/children``
  with ``page_size`` / ``page_token`` -> ``has_more`` / ``page_token``: vendors.md [V].
- ``POST /open-apis/approval/v4/instances`` (``approval_code``, ``user_id``, ``department_id``,
  ``form`` as a JSON **string**, ``uuid`` 1-64 characters, "同一个 uuid 只能用于创建一个审批实例，
  如果冲突则创建失败并返回错误码 60012") -> ``data.instance_code``: the mirror's
  ``approval-v4/instance/create.md`` [V]; ``GET .../instances/:code`` -> ``data{status, uuid,
  ...}``: vendors.md [V]; ``GET .../instances?approval_code&start_time&end_time`` ->
  ``instance_code_list, page_token, has_more``: several clients [S]; ``subscribe``: vendors.md [M]
  (1390007 for "already subscribed" assumed).
- ``approval_instance`` event (v1 schema: ``ts, uuid, token, type: event_callback, event{app_id,
  tenant_key, type, approval_code, instance_code, status (PENDING|APPROVED|REJECTED|CANCELED|
  DELETED|REVERTED|OVERTIME_CLOSE|OVERTIME_RECOVER), operate_time, uuid}``): the mirror's
  ``approval-v4/event/common-event/approval-instance-event.md`` [V].
- ``POST /open-apis/im/v1/messages?receive_id_type`` with ``content`` as a JSON string: many
  clients [S]; the ``uuid`` de-duplication window of one hour [M].
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import requests

from hub.oa.client import Hire, OAClient, OASettings, china_midnight
from hub.vendor_http import Answer
from hub_feishu.errors import KINDS, FeishuError, FeishuNotFound

DEFAULT_BASE_URL = "https://open.feishu.cn"
TOKEN_PATH = "/open-apis/auth/v3/tenant_access_token/internal"  # noqa: S105 - a URL path
IDS = {"user_id_type": "user_id", "department_id_type": "department_id"}
#: Feishu's approval status -> hub's
STATUS = {
    "PENDING": "PENDING",
    "OVERTIME_RECOVER": "PENDING",
    "APPROVED": "APPROVED",
    "REJECTED": "REJECTED",
    "CANCELED": "CANCELED",
    "REVERTED": "CANCELED",
    "OVERTIME_CLOSE": "CANCELED",
    "DELETED": "DELETED",
}
#: ``code`` of a frequency limit (HTTP 429 answers without a body say nothing else)
FREQUENCY_LIMIT = 99991400


@dataclass(frozen=True, kw_only=True)
class FeishuSettings(OASettings[str]):
    """The connector configuration, with defaults filled in (secrets already resolved)."""

    app_id: str
    app_secret: str
    base_url: str = DEFAULT_BASE_URL
    employee_type: int = 1
    approval_code: str = ""
    applicant_user_id: str = ""
    applicant_department_id: str = ""
    form_widgets: Mapping[str, str] = field(default_factory=dict)
    page_size: int = 50
    token_margin: float = 180.0

    @classmethod
    def parse(cls, config: Mapping[str, Any]) -> FeishuSettings:
        approval = config.get("approval") or {}
        return cls(
            app_id=str(config["app_id"]),
            app_secret=str(config["app_secret"]),
            base_url=str(config.get("base_url") or DEFAULT_BASE_URL).rstrip("/"),
            employee_type=int(config.get("employee_type") or 1),
            approval_code=str(approval.get("approval_code") or ""),
            applicant_user_id=str(approval.get("applicant_user_id") or ""),
            applicant_department_id=str(approval.get("applicant_department_id") or ""),
            form_widgets={str(k): str(v) for k, v in (approval.get("form_widgets") or {}).items()},
            **OASettings.oa_options(
                config,
                id_label="user_id",
                department_id=str,
                default_department="0",
                page_size=50,
                token_margin=180.0,
            ),
        )


@dataclass(frozen=True, kw_only=True)
class NewHire(Hire):
    """What hub knows about a hire, in hub's terms (department codes, not Feishu ids)."""

    manager_user_id: str = ""
    user_id: str = ""


@dataclass(frozen=True)
class UserResult:
    user_id: str
    created: bool


@dataclass(frozen=True)
class ApprovalRequest:
    """An onboarding approval: its ``uuid`` (the idempotency key) and the form's values."""

    uuid: str
    #: values by hub field name (mapped to widget ids by ``form_widgets``)
    values: Mapping[str, str]
    applicant_user_id: str = ""


@dataclass(frozen=True)
class ApprovalResult:
    instance_code: str
    created: bool


@dataclass(frozen=True)
class ApprovalStatus:
    instance_code: str
    status: str
    raw_status: str


def join_time(value: date) -> int:
    """A hire date as Feishu's ``join_time``: midnight China time, in seconds."""
    return china_midnight(value)


class FeishuClient(OAClient[FeishuSettings, NewHire]):
    """Feishu's open API with the token lifecycle, retries and idempotent onboarding writes."""

    errors = KINDS
    retry_http_429 = False  # 429 carries x-ogw-ratelimit-reset: the call waits what it says
    id_label = "user_id"
    account_noun = "user"
    #: 41011: the user_id is taken; 40021: the client_token was used with another body
    id_taken = frozenset({41011, 40021})
    confirm_taken = True
    recover_lost_create = False  # client_token: the transport retries the create as it is

    def __init__(self, settings: FeishuSettings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self._subscribed: set[str] = set()

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **kwargs: Any) -> FeishuClient:
        return cls(FeishuSettings.parse(config), **kwargs)

    # -- tokens -------------------------------------------------------------------------------

    def _fetch_token(self, credential: str) -> tuple[str, float]:
        body = {"app_id": self.settings.app_id, "app_secret": self.settings.app_secret}
        url = self.settings.base_url + TOKEN_PATH
        data = self._json("gettoken", self._exchange("gettoken", "POST", url, json=body, idempotent=True))
        code = int(data.get("code") or 0)
        if code != 0:
            raise KINDS.token_refused("gettoken", code, str(data.get("msg") or ""))
        value, lifetime = str(data.get("tenant_access_token") or ""), float(data.get("expire") or 7200)
        if not value:
            raise KINDS.auth("gettoken", None, "the answer carries no token")
        return value, lifetime

    # -- transport ----------------------------------------------------------------------------

    def _not_json(self, operation: str, response: requests.Response) -> dict[str, Any]:
        if response.status_code == 429:
            return {"code": FREQUENCY_LIMIT, "msg": ""}
        return super()._not_json(operation, response)

    @staticmethod
    def _reset_after(response: requests.Response) -> float | None:
        for header in ("x-ogw-ratelimit-reset", "Retry-After"):
            value = response.headers.get(header)
            if value:
                try:
                    return max(float(value), 0.0)
                except ValueError:
                    continue
        return None

    def call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        """An authenticated call: ``data`` when ``code`` is 0, else a :class:`FeishuError`.

        HTTP 429 / 99991400 waits ``x-ogw-ratelimit-reset`` seconds (else exponential backoff).
        """
        url = self.settings.base_url + path

        def attempt(token: str) -> Answer:
            headers = {"Authorization": f"Bearer {token}"}
            response = self._exchange(
                operation, method, url, params=params, json=body, headers=headers, idempotent=idempotent
            )
            data = self._json(operation, response)
            code = int(data.get("code") or 0)
            status = response.status_code
            if code == 0 and status < 400:
                found = data.get("data")
                return Answer(found if isinstance(found, dict) else {}, ok=True)
            return Answer(
                data,
                code or (FREQUENCY_LIMIT if status == 429 else status),
                str(data.get("msg") or ""),
                throttled=status == 429,
                retry_after=self._reset_after(response),
            )

        return self._authorized(operation, attempt, idempotent=idempotent)

    # -- users --------------------------------------------------------------------------------

    def user_id_for(self, hire: NewHire, idempotency_key: str = "") -> str:
        """The Feishu user_id for a hire: given, else derived from ``user_id_template`` (stable across retries)."""
        return self.derive_id(hire.user_id, hire.job_number, idempotency_key)

    account_id_for = user_id_for

    def get_user(self, account_id: str) -> dict[str, Any] | None:
        try:
            data = self.call("get_user", "GET", f"/open-apis/contact/v3/users/{account_id}", params=IDS)
        except FeishuNotFound:
            return None
        user = data.get("user")
        return user if isinstance(user, dict) else None

    def user_id_by_mobile(self, mobile: str) -> str | None:
        data = self.call(
            "find_user",
            "POST",
            "/open-apis/contact/v3/users/batch_get_id",
            params={"user_id_type": "user_id"},
            body={"mobiles": [mobile], "include_resigned": False},
        )
        for entry in data.get("user_list") or []:
            if entry.get("user_id"):
                return str(entry["user_id"])
        return None

    account_by_mobile = user_id_by_mobile

    def _user_body(self, hire: NewHire) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": hire.name,
            "department_ids": self.department_ids(hire.department_codes),
            "employee_type": self.settings.employee_type,
        }
        if hire.job_number:
            body["employee_no"] = hire.job_number
        if hire.title:
            body["job_title"] = hire.title
        if hire.manager_user_id:
            body["leader_user_id"] = hire.manager_user_id
        if hire.hired_date:
            body["join_time"] = join_time(hire.hired_date)
        return body

    def create_user(self, hire: NewHire, user_id: str, client_token: str) -> dict[str, Any]:
        """Create with ``client_token``: a retry of the same request returns the same user."""
        body = {**self._user_body(hire), "user_id": user_id, "mobile": hire.mobile}
        if hire.email:
            body["email"] = hire.email
        data = self.call(
            "create_user",
            "POST",
            "/open-apis/contact/v3/users",
            params={**IDS, "client_token": client_token},
            body=body,
        )
        return dict(data.get("user") or {})

    def create_account(self, hire: NewHire, account_id: str, idempotency_key: str) -> None:
        self.create_user(hire, account_id, idempotency_key)

    def upsert_user(self, hire: NewHire, idempotency_key: str) -> UserResult:
        """Create the user, or update the one a previous attempt created; never two accounts."""
        return UserResult(*self.upsert_account(hire, idempotency_key))

    def update_user(self, hire: NewHire, user_id: str) -> None:
        body = {**self._user_body(hire), "is_frozen": False}
        body.pop("employee_type", None)
        self.call("update_user", "PATCH", f"/open-apis/contact/v3/users/{user_id}", params=IDS, body=body)

    def disable_user(self, user_id: str) -> bool:
        """Freeze the user (a cancelled hire); ``False`` if there is no such user."""
        try:
            self.call(
                "disable_user",
                "PATCH",
                f"/open-apis/contact/v3/users/{user_id}",
                params=IDS,
                body={"is_frozen": True},
            )
        except FeishuNotFound:
            return False
        return True

    def _pages(self, operation: str, path: str, params: Mapping[str, Any]) -> Iterator[list[dict[str, Any]]]:
        token = ""
        while True:
            query = {**params, "page_size": min(self.settings.page_size, 50)}
            if token:
                query["page_token"] = token
            data = self.call(operation, "GET", path, params=query)
            yield list(data.get("items") or [])
            token = str(data.get("page_token") or "")
            if not data.get("has_more") or not token:
                return

    def departments(self, root: str = "0") -> list[dict[str, Any]]:
        """Every department under ``root`` (``departments/:id/children`` with ``fetch_child``)."""
        path = f"/open-apis/contact/v3/departments/{root}/children"
        params = {"department_id_type": "department_id", "fetch_child": "true"}
        return [d for page in self._pages("list_departments", path, params) for d in page]

    def iter_users(self, department_id: str) -> Iterator[list[dict[str, Any]]]:
        """A department's direct members page by page (``find_by_department``, ``page_token``)."""
        params = {**IDS, "department_id": department_id}
        yield from self._pages("list_users", "/open-apis/contact/v3/users/find_by_department", params)

    # -- approvals ----------------------------------------------------------------------------

    def _require_approval_settings(self) -> None:
        if not self.settings.approval_code:
            raise FeishuError("start_approval", None, "approval.approval_code must be configured")

    def subscribe(self) -> None:
        """Subscribe to the approval's events once per client (Feishu sends none otherwise)."""
        code = self.settings.approval_code
        if code in self._subscribed:
            return
        try:
            self.call("subscribe", "POST", f"/open-apis/approval/v4/approvals/{code}/subscribe")
        except FeishuError as exc:
            if exc.code != 1390007:  # already subscribed
                raise
        self._subscribed.add(code)

    def find_approval(self, uuid: str) -> str | None:
        """The instance created with ``uuid`` in the last ``approval_lookback_days``, if any."""
        self._require_approval_settings()
        start, end = self.lookback_ms()
        params = {
            "approval_code": self.settings.approval_code,
            "start_time": start,
            "end_time": end,
            "page_size": 100,
        }
        token = ""
        while True:
            query = {**params, **({"page_token": token} if token else {})}
            data = self.call("find_approval", "GET", "/open-apis/approval/v4/instances", params=query)
            for code in data.get("instance_code_list") or []:
                if str(self._instance(str(code)).get("uuid") or "").lower() == uuid.lower():
                    return str(code)
            token = str(data.get("page_token") or "")
            if not data.get("has_more") or not token:
                return None

    def _instance(self, instance_code: str) -> dict[str, Any]:
        return self.call("get_approval", "GET", f"/open-apis/approval/v4/instances/{instance_code}")

    def start_approval(self, request: ApprovalRequest) -> ApprovalResult:
        """Create the onboarding approval with ``uuid``; a repeat finds the first instance."""
        self._require_approval_settings()
        self.subscribe()
        form = [
            {"id": self.settings.form_widgets[key], "type": "input", "value": value}
            for key, value in request.values.items()
            if key in self.settings.form_widgets
        ]
        body: dict[str, Any] = {
            "approval_code": self.settings.approval_code,
            "user_id": request.applicant_user_id or self.settings.applicant_user_id,
            "form": json.dumps(form, ensure_ascii=False),
            "uuid": request.uuid,
        }
        if self.settings.applicant_department_id:
            body["department_id"] = self.settings.applicant_department_id
        try:
            data = self.call("start_approval", "POST", "/open-apis/approval/v4/instances", body=body)
        except FeishuError as exc:
            if exc.code != 60012:
                raise
            found = self.find_approval(request.uuid)
            if found is None:
                raise FeishuNotFound(
                    "start_approval", 60012, "the uuid is taken but its instance was not found"
                ) from None
            return ApprovalResult(found, created=False)
        return ApprovalResult(str(data["instance_code"]), created=True)

    def approval_status(self, instance_code: str) -> ApprovalStatus:
        raw = str(self._instance(instance_code).get("status") or "")
        return ApprovalStatus(instance_code, STATUS.get(raw, "OTHER"), raw)

    # -- messages -----------------------------------------------------------------------------

    def send_text(self, user_id: str, content: str, uuid: str) -> str:
        """A text message from the app's bot; Feishu drops a repeat of ``uuid`` within an hour."""
        body = {
            "receive_id": user_id,
            "msg_type": "text",
            "content": json.dumps({"text": content}, ensure_ascii=False),
            "uuid": uuid,
        }
        data = self.call(
            "send_message",
            "POST",
            "/open-apis/im/v1/messages",
            params={"receive_id_type": "user_id"},
            body=body,
        )
        return str(data.get("message_id") or "")

    def check(self) -> None:
        """Token and contact access, for ``hub connectors check``."""
        self.call(
            "list_departments",
            "GET",
            f"/open-apis/contact/v3/departments/{self.settings.default_department}/children",
            params={"department_id_type": "department_id", "page_size": 1},
        )
