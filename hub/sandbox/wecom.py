"""A simulator of WeCom (企业微信) server APIs for onboarding: contacts, approvals, messages.

What it reproduces (vendors.md §1.2, §7; each shape checked as noted in ``hub_wecom.client``):
``GET /cgi-bin/gettoken?corpid&corpsecret`` -> ``{errcode, errmsg, access_token, expires_in:
7200}``; the token travels as ``?access_token=`` and every answer is HTTP 200 with
``{errcode, errmsg}`` (41001 missing, 40014 invalid, 42001 expired token; 45009 over the
frequency limit; -1 system busy). Members: ``user/create`` (``"created"``; 60102 userid,
60104 mobile (``"mobile existed:<userid>"``), 60106 email taken; 60003 unknown department;
60129 neither mobile nor email), ``user/get`` (60111 unknown userid), ``user/update``
(``enable`` 0 disables; counted in ``updates``), text custom attributes (``extattr``: the
names in ``custom_attributes``, others ignored as WeCom does), ``user/getuserid`` by mobile
(46004 unknown), ``user/list_id`` with ``cursor``/``limit`` -> ``next_cursor``,
``dept_user[{userid, department}]`` (one row per membership), ``department/list``. Approvals: ``oa/applyevent`` -> ``sp_no``,
``oa/getapprovaldetail`` (``sp_status`` 1 in progress, 2 approved, 3 rejected),
``oa/getapprovalinfo`` (``starttime``/``endtime`` at most 31 days apart, ``cursor``/``size``,
``filters`` by ``template_id`` / ``creator``). ``message/send`` with
``enable_duplicate_check``. Assumed, not documented where we looked: 46004 for an unknown
mobile, 40058 for an unknown template or ``sp_no``.

Callbacks: each approval emits ``sys_approval_change`` XML (``ApprovalInfo`` with ``SpNo``,
``SpStatus``, ``StatuChangeEvent``, ...) at submission and again when decided, after
``approval_delay`` seconds. :meth:`WeComSimulator.deliver_callbacks` POSTs them the way WeCom
does (``<xml><ToUserName/><Encrypt/><AgentID/></xml>``, ``msg_signature``/``timestamp``
(seconds)/``nonce`` in the query, WXBizMsgCrypt with the corp id as receive id), optionally
repeating one or reversing the order; a failed delivery stays queued and is retried.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Unpack
from xml.sax.saxutils import escape

import requests

from hub.callbacks.wxbiz import WeComCrypto, random_nonce
from hub.sandbox.base import Request, Response, route
from hub.sandbox.oa import OASimulator, OASimulatorOptions, Outgoing, QueuedCallback
from hub.sandbox.people import DEPARTMENTS, TITLES, people

PREFIX = "/cgi-bin"
TOKEN_PATH = f"{PREFIX}/gettoken"
DEFAULT_CORP_ID = "wwsim0000000000001"
DEFAULT_SECRET = "sim-wecom-corp-secret"  # noqa: S105 - a simulator credential
DEFAULT_TEMPLATE = "C4NySimOnboardingTemplate000000000000001"
DEFAULT_CALLBACK_TOKEN = "simwecomtoken"  # noqa: S105 - a simulator credential
DEFAULT_AES_KEY = "c2ltLXdlY29tLWVuY29kaW5nLWFlcy1rZXktMDAwMDA"  # 43 characters
DEFAULT_AGENT_ID = 1000002
ROOT_DEPARTMENT = 1
MAX_APPROVAL_SPAN_S = 31 * 86400
#: sp_status: 1 审批中, 2 已通过, 3 已驳回 (4 已撤销, 6 通过后撤销, 7 已删除, 10 已支付)
SP_PENDING, SP_APPROVED, SP_REJECTED = 1, 2, 3
MESSAGE_DEDUPE_DEFAULT_S = 1800


def _ok(**body: Any) -> Response:
    return Response(200, {"errcode": 0, "errmsg": "ok", **body})


def _err(code: int, message: str) -> Response:
    return Response(200, {"errcode": code, "errmsg": message})


@dataclass
class WeComMember:
    """A member of the address book."""

    userid: str
    name: str
    department: list[int]
    mobile: str = ""
    email: str = ""
    position: str = ""
    direct_leader: list[str] = field(default_factory=list)
    enable: int = 1
    main_department: int = ROOT_DEPARTMENT
    activated: bool = False
    #: text custom attributes (扩展属性) by name
    extattr: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "userid": self.userid,
            "name": self.name,
            "department": list(self.department),
            "main_department": self.main_department,
            "position": self.position,
            "mobile": self.mobile,
            "email": self.email,
            "direct_leader": list(self.direct_leader),
            "enable": self.enable,
            # 1 active, 2 disabled, 4 not yet activated (a new member has not logged in)
            "status": 2 if not self.enable else (1 if self.activated else 4),
            "extattr": {
                "attrs": [{"type": 0, "name": k, "text": {"value": v}} for k, v in self.extattr.items()]
            },
        }


@dataclass
class WeComApproval:
    """One approval request (审批申请)."""

    sp_no: str
    template_id: str
    creator: str
    apply_time: int
    apply_data: dict[str, Any]
    summary: list[Any]
    outcome: int  # the status it will reach once decided
    decide_at: float
    status: int = SP_PENDING

    def detail(self, template_name: str, approver: str, party: str) -> dict[str, Any]:
        return {
            "sp_no": self.sp_no,
            "sp_name": template_name,
            "sp_status": self.status,
            "template_id": self.template_id,
            "apply_time": self.apply_time,
            "applyer": {"userid": self.creator, "partyid": party},
            "sp_record": [
                {
                    "sp_status": self.status,
                    "approverattr": 1,
                    "details": [{"approver": {"userid": approver}, "speech": "", "sp_status": self.status}],
                }
            ],
            "notifyer": [],
            "apply_data": self.apply_data,
            "comments": [],
        }


@dataclass(kw_only=True)
class CallbackEvent(QueuedCallback):
    """One event queued for delivery: ``subject`` is the approval's ``sp_no``."""

    status: int


@dataclass
class Delivery:
    """What happened to one POST of a callback."""

    approval: str
    status: int
    http_status: int | None
    accepted: bool


class WeComSimulator(OASimulator[CallbackEvent, "Delivery"]):
    """WeCom contacts, approvals and messages on loopback, seeded with ``count`` members."""

    vendor = "wecom"
    public_paths = (TOKEN_PATH,)
    outcomes = ("approve", "reject")

    def __init__(
        self,
        *,
        corp_id: str = DEFAULT_CORP_ID,
        corp_secret: str = DEFAULT_SECRET,
        agent_id: int = DEFAULT_AGENT_ID,
        template_id: str = DEFAULT_TEMPLATE,
        callback_token: str = DEFAULT_CALLBACK_TOKEN,
        encoding_aes_key: str = DEFAULT_AES_KEY,
        **options: Unpack[OASimulatorOptions],
    ) -> None:
        self.corp_id = corp_id
        self.corp_secret = corp_secret
        self.agent_id = agent_id
        self.template_id = template_id
        self.template_name = "入职审批"
        self.callback_token = callback_token
        self.encoding_aes_key = encoding_aes_key
        self.crypto = WeComCrypto(callback_token, encoding_aes_key, corp_id)
        self.members: dict[str, WeComMember] = {}
        self.departments: dict[int, dict[str, Any]] = {}
        self.approvals: dict[str, WeComApproval] = {}
        self.sent_messages: list[dict[str, Any]] = []
        #: the custom attributes defined in the admin console (WeCom ignores other names)
        self.custom_attributes: set[str] = {"工号"}
        #: member updates accepted through ``user/update`` (disabling one too)
        self.updates = 0
        self._sp_serial = 0
        self._event_serial = 0
        super().__init__(**options)  # seeds the members last

    # -- generated data ----------------------------------------------------------------------

    def _seed(self, count: int, seed: int) -> None:
        self.departments[ROOT_DEPARTMENT] = {
            "id": ROOT_DEPARTMENT,
            "name": "模拟公司",
            "parentid": 0,
            "order": 1,
        }
        for offset, name in enumerate(DEPARTMENTS, start=2):
            self.departments[offset] = {
                "id": offset,
                "name": name,
                "parentid": ROOT_DEPARTMENT,
                "order": offset,
            }
        for person in people(count, seed):
            dept = 2 + person.index % len(DEPARTMENTS)
            member = WeComMember(
                userid=f"E{person.index:05d}",
                name=person.name,
                department=[dept],
                main_department=dept,
                mobile=person.phone,
                email=person.email,
                position=TITLES[person.index % len(TITLES)][0],
                activated=True,
            )
            self.members[member.userid] = member
        #: who approves onboarding requests (the template's flow)
        self.approver = next(iter(self.members), "approver")

    @property
    def messages(self) -> int:
        """Messages delivered to members (a duplicate suppressed by the check is not counted)."""
        return len(self.sent_messages)

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "corp_id": self.corp_id,
            "corp_secret": self.corp_secret,
            "agent_id": self.agent_id,
            "template_id": self.template_id,
            "callback_token": self.callback_token,
            "encoding_aes_key": self.encoding_aes_key,
            "members": len(self.members),
            "departments": len(self.departments),
        }

    # -- faults ------------------------------------------------------------------------------

    def throttled(self, retry_after: float) -> Response:
        return _err(45009, "api freq out of limit")

    # -- auth ---------------------------------------------------------------------------------

    @route("GET", TOKEN_PATH)
    def get_token(self, request: Request) -> Response:
        if not request.arg("corpid"):
            return _err(41002, "corpid missing")
        if request.arg("corpid") != self.corp_id:
            return _err(40013, "invalid corpid")
        if request.arg("corpsecret") != self.corp_secret:
            return _err(40001, "invalid credential")
        token, ttl = self.issue_token()
        return _ok(access_token=token, expires_in=int(ttl))

    def authenticate(self, request: Request) -> Response | None:
        token = request.arg("access_token")
        if not token:
            return _err(41001, "access_token missing")
        with self._lock:
            known = token in self._tokens
        if not known:
            return _err(40014, "invalid access_token")
        if not self.token_valid(token):
            return _err(42001, "access_token expired")
        return None

    # -- members ------------------------------------------------------------------------------

    def _owner_of(self, attribute: str, value: str, exclude: str | None = None) -> str | None:
        if not value:
            return None
        for member in self.members.values():
            if getattr(member, attribute) == value and member.userid != exclude:
                return member.userid
        return None

    def _bad_departments(self, departments: Any) -> bool:
        return not isinstance(departments, list) or any(d not in self.departments for d in departments)

    def _set_attributes(self, member: WeComMember, body: dict[str, Any]) -> None:
        """``extattr``'s text attributes whose names are defined; the others are ignored."""
        for attr in (body.get("extattr") or {}).get("attrs") or []:
            name = str(attr.get("name") or "")
            if name in self.custom_attributes and int(attr.get("type") or 0) == 0:
                member.extattr[name] = str((attr.get("text") or {}).get("value") or "")

    @route("POST", f"{PREFIX}/user/create")
    def user_create(self, request: Request) -> Response:
        body = request.json() or {}
        userid, name = str(body.get("userid") or ""), str(body.get("name") or "")
        if not userid:
            return _err(41009, "missing userid")
        if not name:
            return _err(60112, "invalid name")
        departments = body.get("department")
        if not departments:
            return _err(60127, "missing department")
        mobile, email = str(body.get("mobile") or ""), str(body.get("email") or "")
        if not mobile and not email:
            return _err(60129, "mobile and email can not be both blank")
        with self._lock:
            if self._bad_departments(departments):
                return _err(60003, "department not found")
            if userid in self.members:
                return _err(60102, "userid existed")
            holder = self._owner_of("mobile", mobile)
            if holder:
                return _err(60104, f"mobile existed:{holder}")
            if self._owner_of("email", email):
                return _err(60106, "email existed")
            self.members[userid] = WeComMember(
                userid=userid,
                name=name,
                department=[int(d) for d in departments],
                main_department=int(body.get("main_department") or departments[0]),
                mobile=mobile,
                email=email,
                position=str(body.get("position") or ""),
                direct_leader=[str(u) for u in body.get("direct_leader") or []],
                enable=int(body.get("enable", 1)),
            )
            self._set_attributes(self.members[userid], body)
            self.accounts += 1
        return Response(200, {"errcode": 0, "errmsg": "created"})

    @route("GET", f"{PREFIX}/user/get")
    def user_get(self, request: Request) -> Response:
        with self._lock:
            member = self.members.get(request.arg("userid") or "")
            if member is None:
                return _err(60111, "userid not found")
            return _ok(**member.as_json())

    @route("POST", f"{PREFIX}/user/update")
    def user_update(self, request: Request) -> Response:
        body = request.json() or {}
        with self._lock:
            member = self.members.get(str(body.get("userid") or ""))
            if member is None:
                return _err(60111, "userid not found")
            if "department" in body and self._bad_departments(body["department"]):
                return _err(60003, "department not found")
            holder = self._owner_of("mobile", str(body.get("mobile") or ""), exclude=member.userid)
            if holder:
                return _err(60104, f"mobile existed:{holder}")
            if self._owner_of("email", str(body.get("email") or ""), exclude=member.userid):
                return _err(60106, "email existed")
            for key in ("name", "mobile", "email", "position"):
                if key in body:
                    setattr(member, key, str(body[key]))
            if "department" in body:
                member.department = [int(d) for d in body["department"]]
            if "main_department" in body:
                member.main_department = int(body["main_department"])
            if "direct_leader" in body:
                member.direct_leader = [str(u) for u in body["direct_leader"]]
            if "enable" in body:
                member.enable = int(body["enable"])
            self._set_attributes(member, body)
            self.updates += 1
        return Response(200, {"errcode": 0, "errmsg": "updated"})

    @route("POST", f"{PREFIX}/user/getuserid")
    def user_by_mobile(self, request: Request) -> Response:
        mobile = str((request.json() or {}).get("mobile") or "")
        with self._lock:
            holder = self._owner_of("mobile", mobile)
        if holder is None:
            return _err(46004, "user no exist")
        return _ok(userid=holder)

    @route("POST", f"{PREFIX}/user/list_id")
    def user_list_id(self, request: Request) -> Response:
        body = request.json() or {}
        limit = int(body.get("limit") or 10000)
        if not 1 <= limit <= 10000:
            return _err(40058, "limit out of range")
        cursor = str(body.get("cursor") or "")
        with self._lock:
            rows = [
                (m.userid, d)
                for m in sorted(self.members.values(), key=lambda m: m.userid)
                for d in m.department
            ]
        start = int(cursor) if cursor.isdigit() else 0
        page = rows[start : start + limit]
        following = start + limit
        next_cursor = str(following) if following < len(rows) else ""
        return _ok(next_cursor=next_cursor, dept_user=[{"userid": u, "department": d} for u, d in page])

    @route("GET", f"{PREFIX}/department/list")
    def department_list(self, request: Request) -> Response:
        root = int(request.arg("id") or ROOT_DEPARTMENT)
        with self._lock:
            if root not in self.departments:
                return _err(60003, "department not found")
            wanted = {root}
            changed = True
            while changed:  # the department and all its descendants
                before = len(wanted)
                wanted |= {d for d, dept in self.departments.items() if dept["parentid"] in wanted}
                changed = len(wanted) != before
            return _ok(department=[dict(self.departments[d]) for d in sorted(wanted)])

    # -- approvals ----------------------------------------------------------------------------

    def _settle(self) -> None:
        """Decide the approvals whose delay is over, queueing their result callbacks."""
        now = self.clock()
        with self._lock:
            for approval in self.approvals.values():
                if approval.status == SP_PENDING and now >= approval.decide_at:
                    approval.status = approval.outcome
                    self._queue_event(approval, now)

    def _queue_event(self, approval: WeComApproval, due: float) -> None:
        self._event_serial += 1
        creator = self.members.get(approval.creator)
        party = str(creator.main_department) if creator else ""
        change = {SP_PENDING: 1, SP_APPROVED: 2, SP_REJECTED: 3}[approval.status]
        created = int(self.clock())
        plaintext = (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            "<FromUserName><![CDATA[sys]]></FromUserName>"
            f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[sys_approval_change]]></Event><AgentID>{self.agent_id}</AgentID>"
            f"<ApprovalInfo><SpNo>{approval.sp_no}</SpNo><SpName><![CDATA[{self.template_name}]]></SpName>"
            f"<SpStatus>{approval.status}</SpStatus><TemplateId><![CDATA[{approval.template_id}]]></TemplateId>"
            f"<ApplyTime>{approval.apply_time}</ApplyTime>"
            f"<Applyer><UserId><![CDATA[{escape(approval.creator)}]]></UserId><Party><![CDATA[{party}]]></Party></Applyer>"
            f"<SpRecord><SpStatus>{approval.status}</SpStatus><ApproverAttr>1</ApproverAttr><Details>"
            f"<Approver><UserId><![CDATA[{escape(self.approver)}]]></UserId></Approver><Speech><![CDATA[]]></Speech>"
            f"<SpStatus>{approval.status}</SpStatus><SpTime>{created if approval.status != SP_PENDING else 0}</SpTime>"
            f"</Details></SpRecord><StatuChangeEvent>{change}</StatuChangeEvent></ApprovalInfo></xml>"
        )
        self.events.append(
            CallbackEvent(
                seq=self._event_serial,
                subject=approval.sp_no,
                status=approval.status,
                due=due,
                plaintext=plaintext,
            )
        )

    @route("POST", f"{PREFIX}/oa/applyevent")
    def apply_event(self, request: Request) -> Response:
        body = request.json() or {}
        creator = str(body.get("creator_userid") or "")
        template = str(body.get("template_id") or "")
        contents = (body.get("apply_data") or {}).get("contents")
        with self._lock:
            if creator not in self.members:
                return _err(60111, "userid not found")
            if template != self.template_id:
                return _err(40058, "invalid template_id")
            if not isinstance(contents, list) or not contents:
                return _err(40058, "apply_data.contents is required")
            now = self.clock()
            self._sp_serial += 1
            sp_no = datetime.fromtimestamp(now, UTC).strftime("%Y%m%d") + f"{self._sp_serial:04d}"
            approval = WeComApproval(
                sp_no=sp_no,
                template_id=template,
                creator=creator,
                apply_time=int(now),
                apply_data={"contents": contents},
                summary=list(body.get("summary_list") or []),
                outcome=SP_APPROVED if self.approval_outcome == "approve" else SP_REJECTED,
                decide_at=now + self.approval_delay,
            )
            self.approvals[sp_no] = approval
            self._queue_event(approval, now)
        return _ok(sp_no=sp_no)

    @route("POST", f"{PREFIX}/oa/getapprovaldetail")
    def approval_detail(self, request: Request) -> Response:
        self._settle()
        sp_no = str((request.json() or {}).get("sp_no") or "")
        with self._lock:
            approval = self.approvals.get(sp_no)
            if approval is None:
                return _err(40058, "invalid sp_no")
            creator = self.members.get(approval.creator)
            party = str(creator.main_department) if creator else ""
            return _ok(info=approval.detail(self.template_name, self.approver, party))

    @route("POST", f"{PREFIX}/oa/getapprovalinfo")
    def approval_numbers(self, request: Request) -> Response:
        body = request.json() or {}
        try:
            start, end = int(str(body.get("starttime"))), int(str(body.get("endtime")))
        except (TypeError, ValueError):
            return _err(40058, "starttime and endtime are required")
        if end <= start or end - start > MAX_APPROVAL_SPAN_S:
            return _err(40058, "the time span must be positive and at most 31 days")
        size = int(body.get("size") or 100)
        if not 1 <= size <= 100:
            return _err(40058, "size out of range")
        filters = {f.get("key"): f.get("value") for f in body.get("filters") or body.get("filter") or []}
        with self._lock:
            numbers = [
                a.sp_no
                for a in self.approvals.values()
                if start <= a.apply_time <= end
                and filters.get("template_id", a.template_id) == a.template_id
                and filters.get("creator", a.creator) == a.creator
            ]
        cursor = int(body.get("cursor") or 0)
        page = numbers[cursor : cursor + size]
        following = cursor + size
        return _ok(sp_no_list=page, next_cursor=following if following < len(numbers) else 0)

    def approval_ids(self) -> list[str]:
        return list(self.approvals)

    def decide(self, sp_no: str, *, approve: bool = True) -> None:
        """Decide an approval now (an approver acting in WeCom)."""
        with self._lock:
            approval = self.approvals[sp_no]
            approval.outcome = SP_APPROVED if approve else SP_REJECTED
            approval.decide_at = self.clock()
        self._settle()

    # -- messages -----------------------------------------------------------------------------

    @route("POST", f"{PREFIX}/message/send")
    def message_send(self, request: Request) -> Response:
        body = request.json() or {}
        if int(body.get("agentid") or 0) != self.agent_id:
            return _err(40056, "invalid agentid")
        if body.get("msgtype") != "text" or not (body.get("text") or {}).get("content"):
            return _err(44004, "empty content")
        recipients = [u for u in str(body.get("touser") or "").split("|") if u]
        content = str(body["text"]["content"])
        now = self.clock()
        with self._lock:
            invalid = [u for u in recipients if u not in self.members]
            valid = [u for u in recipients if u in self.members]
            if not valid:
                return _err(82001, "all recipients are invalid")
            window = int(body.get("duplicate_check_interval") or MESSAGE_DEDUPE_DEFAULT_S)
            duplicate = bool(body.get("enable_duplicate_check")) and any(
                m["content"] == content and m["touser"] == valid and now - m["at"] <= window
                for m in self.sent_messages
            )
            msgid = f"sim-msg-{len(self.sent_messages) + 1}"
            if not duplicate:
                self.sent_messages.append({"touser": valid, "content": content, "at": now, "msgid": msgid})
        return _ok(invaliduser="|".join(invalid), invalidparty="", invalidtag="", msgid=msgid)

    # -- callback delivery --------------------------------------------------------------------

    def seal(self, event: CallbackEvent) -> Outgoing:
        sealed = self.crypto.xml_callback(
            event.plaintext, str(int(self.clock())), random_nonce(10), agent_id=str(self.agent_id)
        )
        return Outgoing(sealed.body, sealed.query, {"Content-Type": "text/xml; charset=utf-8"})

    def delivery(self, event: CallbackEvent, http_status: int | None, accepted: bool) -> Delivery:
        return Delivery(event.subject, event.status, http_status, accepted)

    def verify_callback_url(self, url: str, *, timeout: float = 5.0) -> bool:
        """WeCom's URL check: GET with a sealed ``echostr``; the receiver must echo its plaintext."""
        echo = random_nonce(12)
        query = self.crypto.url_verification(echo, str(int(self.clock())), random_nonce(10))
        reply = requests.get(url, params=query, timeout=timeout)
        return reply.status_code == 200 and reply.text.strip() == echo
