"""A typed DingTalk (钉钉) server-API client for onboarding: members, approvals, work notices.

DingTalk runs two hosts: the legacy ``oapi.dingtalk.com`` (contacts and work notices; the token
in ``?access_token=``, HTTP 200 with ``errcode`` even on errors) and ``api.dingtalk.com``
(workflow; the token in the ``x-acs-dingtalk-access-token`` header, errors as HTTP 4xx with
``{code, message, requestid}``). One app token serves both: it is fetched from
``POST /v1.0/oauth2/accessToken`` (``{appKey, appSecret}`` -> ``{accessToken, expireIn}``) or,
with ``auth_host = "legacy"``, ``GET /gettoken?appkey&appsecret``; cached until
``token_margin`` seconds before expiry; refetched once, and the call retried, when DingTalk
answers a token error (``errcode 88`` with ``sub_code`` 40014 / 42001, or ``InvalidAuthentication``).
Rate limits (90002 / 90005 / 90006 / 90018; 403 ``Forbidden.AccessDenied.Qps*``), ``-1`` (busy),
HTTP 5xx and timeouts are retried with exponential backoff (at least 1 s, DingTalk's QPS window);
the per-IP block (a non-JSON answer or ``{"punish": "deny"}``, five minutes) is not waited out
here but raised with ``retry_after = 300``.

Idempotency: the userid is derived from the hire (``userid_template``), so a retried create
finds what a lost attempt made (``topapi/v2/user/get``), and DingTalk refuses a second one
(60102). A member who already has the hire's mobile and name is adopted
(``topapi/v2/user/getbymobile``) rather than duplicated. DingTalk approvals have no idempotency key: hub's reference goes into a form
component, and :meth:`DingTalkClient.start_approval` looks for it
(``processes/instanceIds/query`` by process code and originator, then the instance) before
starting one, and again after a lost answer. Work notices rely on DingTalk's rule that the same
content reaches a person once a day.

What was checked, and where (searched 2026-11; nothing was run against DingTalk itself):

- Both hosts, token placement, ``/v1.0/oauth2/accessToken`` -> ``{accessToken, expireIn: 7200}``
  and that the app token is used on both hosts ("调新版接口放 header，调旧版接口放 query"),
  ``gettoken`` -> ``{errcode, access_token, expires_in}``, 40096 for bad credentials, 400
  ``invalidClientIdOrSecret``, ``errcode 88`` + string ``sub_code "40014"`` for a bad token, 400
  ``InvalidAuthentication`` on the new host: a transcription of open.dingtalk.com's token and
  error pages with credential-less probes (2026-09) in a public skills repository [S, probed].
- Rate limits: legacy ``90002`` (global) and ``90018`` (per app, 40 QPS), ``90006`` (per minute),
  new host 403 ``Forbidden.AccessDenied.QpsLimitForApi`` / ``QpsLimitForAppkeyAndApi``, the IP
  block answering HTML or ``{"punish": "deny"}`` for 5 minutes, and "sleep 1 s" as DingTalk's
  own advice: the same transcription of 「调用频率限制」, plus Landray EKP's error constants and
  several clients matching on ``QpsLimitForApi`` [S].
- ``topapi/v2/user/create`` fields and ``{result: {userid, unionId}}``: vendors.md [V] (apifox
  mirror); ``user/get``, ``user/update``, ``user/delete``, ``user/getbymobile {mobile}`` ->
  ``result.userid``, ``user/list {dept_id, cursor, size<=100}`` -> ``result{has_more,
  next_cursor, list}``, ``department/listsub``: many clients agree [S]; 60102 (userid taken),
  60104 (mobile taken), 60106, 60121 (no such user), 60003: DingTalk's errcode list in
  ``ddtalk/dingTalkDoc`` and several clients [S]. DingTalk has no "disable" for ordinary
  accounts: a cancelled hire is deleted (``user/delete``).
- ``POST /v1.0/workflow/processInstances`` body keys (``originatorUserId, processCode, deptId,
  microappAgentId, formComponentValues[{name, value}]``) -> ``{instanceId}``: aliyun
  dingtalk-sdk ``workflow_1_0`` [V]; ``deptId`` required in practice [S];
  ``GET ...?processInstanceId`` -> ``result{status: RUNNING|TERMINATED|COMPLETED, result:
  agree|refuse, formComponentValues}`` and ``/v1.0/workflow/processes/instanceIds/query
  {processCode, startTime, endTime (ms), nextToken, maxResults<=20, userIds, statuses}`` ->
  ``result{list, nextToken}``: several clients [S].
- ``topapi/message/corpconversation/asyncsend_v2 {agent_id, userid_list, msg}`` -> ``task_id``
  and "one identical notice per person per day, answered ok": the transcription's 业务级限额 [S].
- ``bpms_instance_change`` (``type`` start / finish / terminate, ``result`` on finish) in the
  ``{"encrypt"}`` HTTP push with millisecond timestamps: vendors.md §1.1 [V]/[S].
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import requests

from hub.oa.client import FormReferences, Hire, OAClient, OASettings, china_midnight
from hub.vendor_http import Answer
from hub_dingtalk.errors import KINDS, DingTalkError, DingTalkNotFound, DingTalkRateLimited, describe

_REFERENCES = FormReferences()

DEFAULT_BASE_URL = "https://oapi.dingtalk.com"
DEFAULT_API_BASE_URL = "https://api.dingtalk.com"
IP_BLOCK_S = 300.0
MAX_INSTANCE_IDS = 20


@dataclass(frozen=True, kw_only=True)
class DingTalkSettings(OASettings[int]):
    """The connector configuration, with defaults filled in (secrets already resolved)."""

    app_key: str
    app_secret: str
    base_url: str = DEFAULT_BASE_URL
    api_base_url: str = DEFAULT_API_BASE_URL
    auth_host: str = "new"
    agent_id: int = 0
    process_code: str = ""
    originator_userid: str = ""
    originator_dept_id: int = 1
    reference_field: str = ""
    form_fields: Mapping[str, str] = field(default_factory=dict)
    backoff_base: float = 1.0

    @classmethod
    def parse(cls, config: Mapping[str, Any]) -> DingTalkSettings:
        approval = config.get("approval") or {}
        return cls(
            app_key=str(config["app_key"]),
            app_secret=str(config["app_secret"]),
            base_url=str(config.get("base_url") or DEFAULT_BASE_URL).rstrip("/"),
            api_base_url=str(config.get("api_base_url") or DEFAULT_API_BASE_URL).rstrip("/"),
            auth_host=str(config.get("auth_host") or "new"),
            agent_id=int(config.get("agent_id") or 0),
            process_code=str(approval.get("process_code") or ""),
            originator_userid=str(approval.get("originator_userid") or ""),
            originator_dept_id=int(approval.get("originator_dept_id") or 1),
            reference_field=str(approval.get("reference_field") or ""),
            form_fields={str(k): str(v) for k, v in (approval.get("form_fields") or {}).items()},
            **OASettings.oa_options(
                config,
                id_label="userid",
                department_id=int,
                default_department=1,
                page_size=100,
                backoff_base=1.0,
            ),
        )


@dataclass(frozen=True, kw_only=True)
class NewHire(Hire):
    """What hub knows about a hire, in hub's terms (department codes, not DingTalk ids)."""

    manager_userid: str = ""
    userid: str = ""


@dataclass(frozen=True)
class UserResult:
    userid: str
    created: bool


@dataclass(frozen=True)
class ApprovalRequest:
    """An onboarding approval: hub's reference (the idempotency key) and the form's values."""

    reference: str
    #: values by hub field name (mapped to form component names by ``form_fields``)
    values: Mapping[str, str]
    originator_userid: str = ""


@dataclass(frozen=True)
class ApprovalResult:
    instance_id: str
    created: bool


@dataclass(frozen=True)
class ApprovalStatus:
    instance_id: str
    status: str  # PENDING, APPROVED, REJECTED, CANCELED, OTHER
    raw_status: str
    raw_result: str


def normalised_status(status: str, result: str) -> str:
    """DingTalk's ``status`` + ``result`` as hub's approval status."""
    if status in ("NEW", "RUNNING"):
        return "PENDING"
    if status == "COMPLETED":
        return {"agree": "APPROVED", "refuse": "REJECTED"}.get(result, "OTHER")
    if status in ("TERMINATED", "CANCELED"):
        return "CANCELED"
    return "OTHER"


def hired_date_ms(value: date) -> int:
    """A hire date as DingTalk's ``hired_date``: midnight China time, in milliseconds."""
    return china_midnight(value) * 1000


class DingTalkClient(OAClient[DingTalkSettings, NewHire]):
    """DingTalk's two hosts with the token lifecycle, retries and idempotent onboarding writes."""

    errors = KINDS
    busy_code = "-1"
    throttle_floor = 1.0  # DingTalk's QPS window is one second ("sleep 1 s")
    throttle_hint = 1.0
    id_taken = frozenset({"60102"})

    def __init__(self, settings: DingTalkSettings, **kwargs: Any) -> None:
        if settings.auth_host not in ("new", "legacy"):
            raise ValueError("auth_host is 'new' or 'legacy'")
        super().__init__(settings, **kwargs)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **kwargs: Any) -> DingTalkClient:
        return cls(DingTalkSettings.parse(config), **kwargs)

    # -- tokens -------------------------------------------------------------------------------

    def _fetch_token(self, credential: str) -> tuple[str, float]:
        s = self.settings
        if s.auth_host == "legacy":
            params = {"appkey": s.app_key, "appsecret": s.app_secret}
            response = self._exchange(
                "gettoken", "GET", s.base_url + "/gettoken", params=params, idempotent=True
            )
            data = self._json("gettoken", response)
            code = str(data.get("errcode") or 0)
            if code != "0":
                raise KINDS.token_refused("gettoken", code, str(data.get("errmsg") or ""))
            value, lifetime = str(data.get("access_token") or ""), float(data.get("expires_in") or 7200)
        else:
            body = {"appKey": s.app_key, "appSecret": s.app_secret}
            response = self._exchange(
                "gettoken", "POST", s.api_base_url + "/v1.0/oauth2/accessToken", json=body, idempotent=True
            )
            data = self._json("gettoken", response)
            if response.status_code >= 400:
                code = str(data.get("code") or response.status_code)
                raise KINDS.token_refused("gettoken", code, str(data.get("message") or ""))
            value, lifetime = str(data.get("accessToken") or ""), float(data.get("expireIn") or 7200)
        if not value:
            raise KINDS.auth("gettoken", None, "the answer carries no token")
        return value, lifetime

    # -- transport ----------------------------------------------------------------------------

    def _ip_blocked(self, operation: str) -> DingTalkRateLimited:
        """DingTalk's per-IP block (five minutes): not waited out here, raised with its wait."""
        return DingTalkRateLimited(
            operation, "ip_throttled", describe("ip_throttled")[1], retry_after=IP_BLOCK_S
        )

    def _not_json(self, operation: str, response: requests.Response) -> dict[str, Any]:
        raise self._ip_blocked(operation) from None  # the per-IP block answers an HTML page

    def _json(self, operation: str, response: requests.Response) -> dict[str, Any]:
        data = super()._json(operation, response)
        if data.get("punish") == "deny":
            raise self._ip_blocked(operation)
        return data

    def _call(
        self,
        operation: str,
        send: Callable[[str], requests.Response],
        parse: Callable[[requests.Response, dict[str, Any]], tuple[str, str]],
        *,
        idempotent: bool,
    ) -> dict[str, Any]:
        """The retry policy over one kind of host: ``parse`` gives (code, message); "0" is success."""

        def attempt(token: str) -> Answer:
            response = send(token)
            data = self._json(operation, response)
            code, message = parse(response, data)
            return Answer(data, code, message, ok=code == "0")

        return self._authorized(operation, attempt, idempotent=idempotent)

    def legacy(
        self,
        operation: str,
        path: str,
        body: Any = None,
        *,
        method: str = "POST",
        params: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        """A call to ``oapi.dingtalk.com``: the answer when errcode is 0, else a typed error."""
        url = self.settings.base_url + path

        def send(token: str) -> requests.Response:
            query = {**(params or {}), "access_token": token}
            return self._exchange(operation, method, url, params=query, json=body, idempotent=idempotent)

        def parse(response: requests.Response, data: dict[str, Any]) -> tuple[str, str]:
            errcode = data.get("errcode", 0)
            if str(errcode) == "88" and data.get("sub_code"):
                return str(data["sub_code"]), str(data.get("sub_msg") or "")
            return str(errcode), str(data.get("errmsg") or "")

        return self._call(operation, send, parse, idempotent=idempotent)

    def v1(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        """A call to ``api.dingtalk.com``: the answer on 2xx, else a typed error from ``code``."""
        url = self.settings.api_base_url + path

        def send(token: str) -> requests.Response:
            headers = {"x-acs-dingtalk-access-token": token}
            return self._exchange(
                operation, method, url, params=params, json=body, headers=headers, idempotent=idempotent
            )

        def parse(response: requests.Response, data: dict[str, Any]) -> tuple[str, str]:
            if response.status_code < 400:
                return "0", ""
            return str(data.get("code") or response.status_code), str(data.get("message") or "")

        return self._call(operation, send, parse, idempotent=idempotent)

    # -- members ------------------------------------------------------------------------------

    def userid_for(self, hire: NewHire, idempotency_key: str = "") -> str:
        """The DingTalk userid for a hire: given, else derived from ``userid_template`` (stable across retries)."""
        return self.derive_id(hire.userid, hire.job_number, idempotency_key)

    account_id_for = userid_for

    def get_user(self, account_id: str) -> dict[str, Any] | None:
        try:
            data = self.legacy("get_user", "/topapi/v2/user/get", {"userid": account_id, "language": "zh_CN"})
        except DingTalkNotFound:
            return None
        result = data.get("result")
        return result if isinstance(result, dict) else None

    def userid_by_mobile(self, mobile: str) -> str | None:
        try:
            data = self.legacy("find_user", "/topapi/v2/user/getbymobile", {"mobile": mobile})
        except DingTalkNotFound:
            return None
        return str((data.get("result") or {}).get("userid") or "") or None

    account_by_mobile = userid_by_mobile

    def _member_body(self, hire: NewHire, userid: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "userid": userid,
            "name": hire.name,
            "dept_id_list": ",".join(str(d) for d in self.department_ids(hire.department_codes)),
        }
        if hire.job_number:
            body["job_number"] = hire.job_number
        if hire.title:
            body["title"] = hire.title
        if hire.manager_userid:
            body["manager_userid"] = hire.manager_userid
        if hire.hired_date:
            body["hired_date"] = hired_date_ms(hire.hired_date)
        return body

    def create_user(self, hire: NewHire, userid: str) -> str:
        """``topapi/v2/user/create`` as it is: :class:`DingTalkConflict` on a taken userid or mobile."""
        body = {**self._member_body(hire, userid), "mobile": hire.mobile}
        if hire.email:
            body["email"] = hire.email
        data = self.legacy("create_user", "/topapi/v2/user/create", body, idempotent=False)
        return str((data.get("result") or {}).get("userid") or userid)

    def create_account(self, hire: NewHire, account_id: str, idempotency_key: str) -> None:
        self.create_user(hire, account_id)  # no idempotency token at DingTalk: upsert looks first

    def upsert_user(self, hire: NewHire, idempotency_key: str = "") -> UserResult:
        """Create the member, or update the one a previous attempt created; never two accounts."""
        return UserResult(*self.upsert_account(hire, idempotency_key))

    def update_user(self, hire: NewHire, userid: str) -> None:
        self.legacy("update_user", "/topapi/v2/user/update", self._member_body(hire, userid))

    def delete_user(self, userid: str) -> bool:
        """Remove a member (DingTalk cannot disable an ordinary account); ``False`` if absent."""
        try:
            self.legacy("delete_user", "/topapi/v2/user/delete", {"userid": userid})
        except DingTalkNotFound:
            return False
        return True

    def disable_user(self, account_id: str) -> bool:
        """DingTalk cannot disable an ordinary account: a cancelled hire's member is deleted."""
        return self.delete_user(account_id)

    def departments(self, root: int = 1) -> list[dict[str, Any]]:
        """Every department under ``root`` (breadth first, ``department/listsub``)."""
        found: list[dict[str, Any]] = []
        queue = [root]
        while queue:
            parent = queue.pop(0)
            data = self.legacy("list_departments", "/topapi/v2/department/listsub", {"dept_id": parent})
            for department in data.get("result") or []:
                found.append(department)
                queue.append(int(department["dept_id"]))
        return found

    def iter_users(self, dept_id: int) -> Iterator[list[dict[str, Any]]]:
        """One department's members page by page (``topapi/v2/user/list`` cursor)."""
        cursor = 0
        while True:
            body = {"dept_id": dept_id, "cursor": cursor, "size": min(self.settings.page_size, 100)}
            result = self.legacy("list_users", "/topapi/v2/user/list", body).get("result") or {}
            yield list(result.get("list") or [])
            if not result.get("has_more"):
                return
            cursor = int(result.get("next_cursor") or 0)

    # -- approvals ----------------------------------------------------------------------------

    def _require_approval_settings(self) -> None:
        if not (self.settings.process_code and self.settings.reference_field):
            raise DingTalkError(
                "start_approval",
                None,
                "approval.process_code and approval.reference_field must be configured",
            )

    def find_approval(self, request: ApprovalRequest) -> str | None:
        """The instance id of an approval already started for ``request.reference``, if any."""
        self._require_approval_settings()
        originator = request.originator_userid or self.settings.originator_userid
        start, end = self.lookback_ms()
        body: dict[str, Any] = {
            "processCode": self.settings.process_code,
            "startTime": start,
            "endTime": end,
            "nextToken": 0,
            "maxResults": MAX_INSTANCE_IDS,
            "userIds": [originator],
        }
        while True:
            data = self.v1("find_approval", "POST", "/v1.0/workflow/processes/instanceIds/query", body=body)
            result = data.get("result") or {}
            for instance_id in result.get("list") or []:
                if self._reference_of(str(instance_id)) == request.reference:
                    return str(instance_id)
            token = result.get("nextToken")
            if token in (None, "", 0, "0"):
                return None
            body["nextToken"] = int(token)

    def _instance(self, instance_id: str) -> dict[str, Any]:
        data = self.v1(
            "get_approval",
            "GET",
            "/v1.0/workflow/processInstances",
            params={"processInstanceId": instance_id},
        )
        result = data.get("result")
        if not isinstance(result, dict):
            raise DingTalkError("get_approval", None, "the answer has no result")
        return result

    def _reference_of(self, instance_id: str) -> str | None:
        """hub's reference in an approval's form (remembered: see FormReferences)."""
        key = (
            self.settings.api_base_url,
            self.settings.process_code,
            self.settings.reference_field,
            instance_id,
        )
        return _REFERENCES.reference(key, lambda: self._read_reference(instance_id))

    def _read_reference(self, instance_id: str) -> str | None:
        for component in self._instance(instance_id).get("formComponentValues") or []:
            if component.get("name") == self.settings.reference_field:
                return str(component.get("value") or "")
        return None

    def start_approval(self, request: ApprovalRequest) -> ApprovalResult:
        """Start the onboarding approval unless one with the same reference exists."""
        self._require_approval_settings()
        form = [{"name": self.settings.reference_field, "value": request.reference}]
        form += [
            {"name": self.settings.form_fields[key], "value": value}
            for key, value in request.values.items()
            if key in self.settings.form_fields
        ]
        body: dict[str, Any] = {
            "originatorUserId": request.originator_userid or self.settings.originator_userid,
            "processCode": self.settings.process_code,
            "deptId": self.settings.originator_dept_id,
            "formComponentValues": form,
        }
        if self.settings.agent_id:
            body["microappAgentId"] = self.settings.agent_id

        def submit() -> str:
            data = self.v1(
                "start_approval", "POST", "/v1.0/workflow/processInstances", body=body, idempotent=False
            )
            return str(data["instanceId"])

        return ApprovalResult(*self.submit_once(lambda: self.find_approval(request), submit))

    def approval_status(self, instance_id: str) -> ApprovalStatus:
        instance = self._instance(instance_id)
        status, result = str(instance.get("status") or ""), str(instance.get("result") or "")
        return ApprovalStatus(instance_id, normalised_status(status, result), status, result)

    # -- work notices -------------------------------------------------------------------------

    def send_text(self, userids: Sequence[str], content: str) -> str:
        """A work notice from the app; DingTalk delivers identical content once a day per person."""
        if not self.settings.agent_id:
            raise DingTalkError("send_message", None, "agent_id must be configured to send work notices")
        body = {
            "agent_id": self.settings.agent_id,
            "userid_list": ",".join(userids),
            "msg": {"msgtype": "text", "text": {"content": content}},
        }
        data = self.legacy("send_message", "/topapi/message/corpconversation/asyncsend_v2", body)
        return str(data.get("task_id") or "")

    def check(self) -> None:
        """Token and address-book access, for ``hub connectors check``."""
        self.legacy("list_departments", "/topapi/v2/department/listsub", {"dept_id": 1})
