"""A typed WeCom (企业微信) server-API client for onboarding: members, approvals, messages.

Token lifecycle: ``GET /cgi-bin/gettoken?corpid&corpsecret`` gives a token for 7200 s; it is
cached per secret (the address-book secret and the app secret get different tokens) until
``token_margin`` seconds before expiry, and refetched once, then the call retried, when WeCom
answers 40001 / 40014 / 42001. 45009 / 45033 (frequency / concurrency limits), -1 (busy),
HTTP 5xx and timeouts are retried with exponential backoff and jitter, ``max_attempts``
times in all. A write that has no idempotency key at WeCom (``oa/applyevent``) is never blindly
re-sent after a lost answer: :class:`WeComOutcomeUnknown` makes the caller look first.

Idempotency: a member's userid is derived from the hire (``userid_template``, by default the
job number), so a retried create finds the member the lost attempt made (``user/get``), and a
second create is refused by WeCom with 60102 anyway. A member who already has the hire's mobile
and name (made by hand) is adopted (``user/getuserid``) rather than duplicated. An approval carries hub's reference in a
form control; :meth:`WeComClient.start_approval` looks for it (``oa/getapprovalinfo`` filtered by
template and creator, then ``oa/getapprovaldetail``) before submitting, and again after a lost
answer. Welcome messages use WeCom's own duplicate check.

What was checked, and where (searched 2026-11; nothing was run against WeCom itself):

- ``gettoken`` and the errcodes that trigger a refetch (40001, 40014, 42001) and the frequency
  limit 45009: vendors.md §1.2 [V] (wechatpy ``client/base.py``); the meanings of 40013, 41001,
  45033, 48002, 60003, 60011, 60020, 60102 (UserID exists), 60103, 60104 (mobile exists),
  60106 (e-mail exists), 60111 (UserID not found), 60112, 60127, 60129, 82001 and -1: WeCom's
  global errcode table as transcribed in WxJava ``WxCpErrorMsgEnum`` (binarywang) [S].
  ``60104`` answers ``errmsg "mobile existed:<userid>"`` (a public test suite) [S], so errmsg is
  never shown as it is.
- ``user/create`` (``errmsg "created"``), ``user/get?userid``, ``user/update`` with ``enable``,
  ``user/delete``, ``user/getuserid {mobile}`` -> ``userid``: wechatpy ``work/client/api/user.py``
  [V]. The errcode for an unknown mobile (46004) is assumed. ``extattr {attrs: [{type: 0, name,
  text: {value}}]}`` on create/update/get, unknown names ignored ("扩展属性需要在WEB管理端创建后
  才生效"): the documented member sample as several clients quote it [S].
- ``user/list_id {cursor, limit<=10000}`` -> ``{next_cursor, dept_user[{userid, department}]}``:
  wechatpy docstring and several clients [S]; ``department/list?id``: clients [S].
- ``oa/applyevent`` (``creator_userid, template_id, use_template_approver, approver,
  apply_data{contents}, summary_list``) -> ``sp_no``, ``oa/getapprovaldetail {sp_no}``,
  ``oa/getapprovalinfo {starttime, endtime (<=31 days), cursor, size<=100, filters}``: wechatpy
  ``work/client/api/oa.py`` [V]; ``sp_status`` 1/2/3/4/6/7/10 [M]; the ``Text`` control value
  ``{"text": ...}`` [M].
- ``message/send`` path [V]; ``enable_duplicate_check`` / ``duplicate_check_interval`` [M].
- ``sys_approval_change`` XML (``ApprovalInfo/SpNo, SpStatus, StatuChangeEvent``): wechatpy
  ``SysApprovalChangeEvent`` and sample payloads in public code [S].
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hub.oa.client import FormReferences, Hire, OAClient, OASettings
from hub.vendor_http import Answer
from hub_wecom.errors import KINDS, WeComError, WeComNotFound

_REFERENCES = FormReferences()

DEFAULT_BASE_URL = "https://qyapi.weixin.qq.com"
#: WeCom's documented span limit for ``oa/getapprovalinfo``
MAX_APPROVAL_SPAN_S = 31 * 86400
#: sp_status -> hub's normalised approval status
SP_STATUS = {
    1: "PENDING",
    2: "APPROVED",
    3: "REJECTED",
    4: "CANCELED",
    6: "CANCELED",
    7: "DELETED",
    10: "APPROVED",
}
MESSAGE_DEDUPE_S = 14400  # the longest duplicate-check window WeCom accepts (4 h)


@dataclass(frozen=True, kw_only=True)
class WeComSettings(OASettings[int]):
    """The connector configuration, with defaults filled in (secrets already resolved)."""

    corp_id: str
    corp_secret: str
    base_url: str = DEFAULT_BASE_URL
    #: the address-book (通讯录同步) secret for member writes; the app secret when empty
    contacts_secret: str = ""
    agent_id: int = 0
    invite: bool = False
    template_id: str = ""
    approval_creator: str = ""
    reference_control: str = ""
    form_controls: Mapping[str, str] = field(default_factory=dict)
    page_size: int = 1000

    @classmethod
    def parse(cls, config: Mapping[str, Any]) -> WeComSettings:
        approval = config.get("approval") or {}
        return cls(
            corp_id=str(config["corp_id"]),
            corp_secret=str(config["corp_secret"]),
            base_url=str(config.get("base_url") or DEFAULT_BASE_URL).rstrip("/"),
            contacts_secret=str(config.get("contacts_secret") or ""),
            agent_id=int(config.get("agent_id") or 0),
            invite=bool(config.get("invite", False)),
            template_id=str(approval.get("template_id") or ""),
            approval_creator=str(approval.get("creator_userid") or ""),
            reference_control=str(approval.get("reference_control") or ""),
            form_controls={str(k): str(v) for k, v in (approval.get("form_controls") or {}).items()},
            **OASettings.oa_options(
                config, id_label="userid", department_id=int, default_department=1, page_size=1000
            ),
        )


@dataclass(frozen=True, kw_only=True)
class NewHire(Hire):
    """What hub knows about a hire, in hub's terms (department codes, not WeCom ids)."""

    manager_userid: str = ""
    #: WeCom's userid when hub already knows it; otherwise ``userid_template`` derives it
    userid: str = ""


@dataclass(frozen=True)
class UserResult:
    userid: str
    created: bool


@dataclass(frozen=True)
class ApprovalRequest:
    """An onboarding approval: hub's reference (the idempotency key) and the form's texts."""

    reference: str
    #: form values by hub field name (mapped to control ids by ``form_controls``)
    values: Mapping[str, str]
    summary: str = ""
    creator_userid: str = ""


@dataclass(frozen=True)
class ApprovalResult:
    sp_no: str
    created: bool


@dataclass(frozen=True)
class ApprovalStatus:
    sp_no: str
    status: str  # PENDING, APPROVED, REJECTED, CANCELED, DELETED, OTHER
    raw_status: int


class WeComClient(OAClient[WeComSettings, NewHire]):
    """WeCom's server API with the token lifecycle, retries and idempotent onboarding writes."""

    errors = KINDS
    busy_code = -1
    throttle_floor = 1.0
    id_taken = frozenset({60102})  # a concurrent or lost attempt created it meanwhile

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **kwargs: Any) -> WeComClient:
        return cls(WeComSettings.parse(config), **kwargs)

    # -- tokens -------------------------------------------------------------------------------

    def _secret(self, kind: str) -> str:
        if kind == "contacts" and self.settings.contacts_secret:
            return self.settings.contacts_secret
        return self.settings.corp_secret

    def _token_key(self, credential: str) -> str:
        """Tokens are per secret: the address-book secret and the app secret get different ones."""
        return self._secret(credential)

    def _fetch_token(self, credential: str) -> tuple[str, float]:
        params = {"corpid": self.settings.corp_id, "corpsecret": self._secret(credential)}
        url = self.settings.base_url + "/cgi-bin/gettoken"
        data = self._json("gettoken", self._exchange("gettoken", "GET", url, params=params, idempotent=True))
        code = int(data.get("errcode") or 0)
        if code != 0:
            raise KINDS.token_refused("gettoken", code, str(data.get("errmsg") or ""))
        return str(data["access_token"]), float(data.get("expires_in") or 7200)

    # -- transport ----------------------------------------------------------------------------

    def call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        credential: str = "app",
        idempotent: bool = True,
    ) -> dict[str, Any]:
        """An authenticated call: the answer when errcode is 0, else a :class:`WeComError`.

        The token travels as ``?access_token=``; every answer is HTTP 200 with ``errcode``.
        """
        url = self.settings.base_url + path

        def attempt(token: str) -> Answer:
            query = {**(params or {}), "access_token": token}
            response = self._exchange(operation, method, url, params=query, json=body, idempotent=idempotent)
            data = self._json(operation, response)
            code = int(data.get("errcode") or 0)
            return Answer(data, code, str(data.get("errmsg") or ""), ok=code == 0)

        return self._authorized(operation, attempt, idempotent=idempotent, credential=credential)

    # -- members ------------------------------------------------------------------------------

    def userid_for(self, hire: NewHire, idempotency_key: str = "") -> str:
        """The WeCom userid for a hire: given, else derived from ``userid_template`` (stable across retries)."""
        return self.derive_id(hire.userid, hire.job_number, idempotency_key)

    account_id_for = userid_for

    def get_user(self, account_id: str) -> dict[str, Any] | None:
        """The member, or ``None`` when WeCom has no such userid."""
        try:
            return self.call(
                "get_user", "GET", "/cgi-bin/user/get", params={"userid": account_id}, credential="contacts"
            )
        except WeComNotFound:
            return None

    def userid_by_mobile(self, mobile: str) -> str | None:
        try:
            data = self.call(
                "find_user", "POST", "/cgi-bin/user/getuserid", body={"mobile": mobile}, credential="contacts"
            )
        except WeComNotFound:
            return None
        return str(data.get("userid") or "") or None

    account_by_mobile = userid_by_mobile

    def _member_body(self, hire: NewHire, userid: str) -> dict[str, Any]:
        departments = self.department_ids(hire.department_codes)
        body: dict[str, Any] = {
            "userid": userid,
            "name": hire.name,
            "department": departments,
            "main_department": departments[0],
            "enable": 1,
        }
        if hire.title:
            body["position"] = hire.title
        if hire.manager_userid:
            body["direct_leader"] = [hire.manager_userid]
        return body

    def create_user(self, hire: NewHire, userid: str) -> None:
        """``user/create`` as it is (no lookup): :class:`WeComConflict` on a taken userid/mobile/e-mail."""
        body = self._member_body(hire, userid)
        if hire.mobile:
            body["mobile"] = hire.mobile
        if hire.email:
            body["email"] = hire.email
        if self.settings.invite:
            body["to_invite"] = True
        # not retried blindly: a lost answer is resolved by looking the userid up (upsert_user)
        self.call(
            "create_user", "POST", "/cgi-bin/user/create", body=body, credential="contacts", idempotent=False
        )

    def create_account(self, hire: NewHire, account_id: str, idempotency_key: str) -> None:
        self.create_user(hire, account_id)  # WeCom has no idempotency token: upsert looks first

    def upsert_user(self, hire: NewHire, idempotency_key: str = "") -> UserResult:
        """Create the member, or update the one a previous attempt created; never two accounts."""
        return UserResult(*self.upsert_account(hire, idempotency_key))

    def update_user(self, hire: NewHire, userid: str, *, attributes: Mapping[str, str] | None = None) -> None:
        """Bring an existing member in line with the hire (department, title, leader; enabled).

        ``attributes``: text custom attributes (扩展属性) by name, the job number for one: WeCom
        has no job-number field. They must be defined in the admin console first; WeCom ignores
        a name it does not know.
        """
        body = self._member_body(hire, userid)
        if attributes:
            body["extattr"] = {
                "attrs": [
                    {"type": 0, "name": name, "text": {"value": value}} for name, value in attributes.items()
                ]
            }
        self.call("update_user", "POST", "/cgi-bin/user/update", body=body, credential="contacts")

    def disable_user(self, userid: str) -> bool:
        """Disable a member (a cancelled hire); ``False`` if there is no such member."""
        try:
            self.call(
                "disable_user",
                "POST",
                "/cgi-bin/user/update",
                body={"userid": userid, "enable": 0},
                credential="contacts",
            )
        except WeComNotFound:
            return False
        return True

    def iter_member_ids(self, page_size: int | None = None) -> Iterator[list[str]]:
        """Userids page by page (``user/list_id`` cursor); a member in two departments comes once."""
        cursor = ""
        seen: set[str] = set()
        while True:
            body: dict[str, Any] = {"limit": page_size or self.settings.page_size}
            if cursor:
                body["cursor"] = cursor
            data = self.call("list_users", "POST", "/cgi-bin/user/list_id", body=body, credential="contacts")
            page = []
            for row in data.get("dept_user") or []:
                userid = str(row.get("userid") or "")
                if userid and userid not in seen:
                    seen.add(userid)
                    page.append(userid)
            yield page
            cursor = str(data.get("next_cursor") or "")
            if not cursor:
                return

    def departments(self, root: int | None = None) -> list[dict[str, Any]]:
        params = {"id": root} if root is not None else {}
        data = self.call(
            "list_departments", "GET", "/cgi-bin/department/list", params=params, credential="contacts"
        )
        return list(data.get("department") or [])

    # -- approvals ----------------------------------------------------------------------------

    def _require_approval_settings(self) -> None:
        if not (self.settings.template_id and self.settings.reference_control):
            raise WeComError(
                "start_approval",
                None,
                "approval.template_id and approval.reference_control must be configured",
            )

    def _contents(self, request: ApprovalRequest) -> list[dict[str, Any]]:
        contents = [
            {"control": "Text", "id": self.settings.reference_control, "value": {"text": request.reference}}
        ]
        for name, value in request.values.items():
            control = self.settings.form_controls.get(name)
            if control:
                contents.append({"control": "Text", "id": control, "value": {"text": value}})
        return contents

    def find_approval(self, request: ApprovalRequest) -> str | None:
        """The sp_no of an approval already submitted for ``request.reference``, if any."""
        self._require_approval_settings()
        creator = request.creator_userid or self.settings.approval_creator
        end = int(self._clock()) + 60
        earliest = end - self.settings.approval_lookback_days * 86400
        while end > earliest:
            start = max(earliest, end - MAX_APPROVAL_SPAN_S + 1)
            cursor = 0
            while True:
                body = {
                    "starttime": str(start),
                    "endtime": str(end),
                    "cursor": cursor,
                    "size": 100,
                    "filters": [
                        {"key": "template_id", "value": self.settings.template_id},
                        {"key": "creator", "value": creator},
                    ],
                }
                data = self.call("find_approval", "POST", "/cgi-bin/oa/getapprovalinfo", body=body)
                for sp_no in data.get("sp_no_list") or []:
                    if self._reference_of(str(sp_no)) == request.reference:
                        return str(sp_no)
                cursor = int(data.get("next_cursor") or 0)
                if not cursor:
                    break
            end = start - 1
        return None

    def _detail(self, sp_no: str) -> dict[str, Any]:
        data = self.call("get_approval", "POST", "/cgi-bin/oa/getapprovaldetail", body={"sp_no": sp_no})
        info = data.get("info")
        if not isinstance(info, dict):
            raise WeComError("get_approval", None, "the answer has no info")
        return info

    def _reference_of(self, sp_no: str) -> str | None:
        """hub's reference in an approval's form (remembered: see FormReferences)."""
        key = (self.settings.base_url, self.settings.corp_id, self.settings.reference_control, sp_no)
        return _REFERENCES.reference(key, lambda: self._read_reference(sp_no))

    def _read_reference(self, sp_no: str) -> str | None:
        contents = (self._detail(sp_no).get("apply_data") or {}).get("contents") or []
        for control in contents:
            if control.get("id") == self.settings.reference_control:
                return str((control.get("value") or {}).get("text") or "")
        return None

    def start_approval(self, request: ApprovalRequest) -> ApprovalResult:
        """Submit the onboarding approval unless one with the same reference exists."""
        self._require_approval_settings()
        body = {
            "creator_userid": request.creator_userid or self.settings.approval_creator,
            "template_id": self.settings.template_id,
            "use_template_approver": 1,
            "apply_data": {"contents": self._contents(request)},
            "summary_list": [{"summary_info": [{"text": request.summary or "入职审批", "lang": "zh_CN"}]}],
        }

        def submit() -> str:
            data = self.call("start_approval", "POST", "/cgi-bin/oa/applyevent", body=body, idempotent=False)
            return str(data["sp_no"])

        return ApprovalResult(*self.submit_once(lambda: self.find_approval(request), submit))

    def approval_status(self, sp_no: str) -> ApprovalStatus:
        raw = int(self._detail(sp_no).get("sp_status") or 0)
        return ApprovalStatus(sp_no, SP_STATUS.get(raw, "OTHER"), raw)

    # -- messages -----------------------------------------------------------------------------

    def send_text(self, userids: Sequence[str], content: str) -> str:
        """A text message from the app; WeCom drops an identical one sent within 4 hours."""
        if not self.settings.agent_id:
            raise WeComError("send_message", None, "agent_id must be configured to send messages")
        body = {
            "touser": "|".join(userids),
            "msgtype": "text",
            "agentid": self.settings.agent_id,
            "text": {"content": content},
            "enable_duplicate_check": 1,
            "duplicate_check_interval": MESSAGE_DEDUPE_S,
        }
        data = self.call("send_message", "POST", "/cgi-bin/message/send", body=body)
        return str(data.get("msgid") or "")

    def check(self) -> None:
        """Token and address-book access, for ``hub connectors check``."""
        self.departments()
