"""A simulator of DingTalk (钉钉) server APIs for onboarding: contacts, approvals, work notices.

One server answers both of DingTalk's hosts, as the paths do not overlap (vendors.md §1.1, §7;
each shape checked as noted in ``hub_dingtalk.client``):

- the legacy host (``oapi.dingtalk.com``): ``GET /gettoken?appkey&appsecret`` (40096 on bad
  credentials), ``?access_token=`` on every call, HTTP 200 with ``{errcode, errmsg}`` even on
  errors; token problems wrapped as ``errcode 88`` with ``sub_code`` ``"40014"`` (invalid),
  ``"42001"`` (expired, assumed) or ``"40000"`` (blank); over the per-app QPS limit ``90018``.
  ``topapi/v2/user/create|get|update|delete|getbymobile|list`` (60102 userid, 60104 mobile
  taken, 60003 unknown department, 60121 unknown user; updates counted in ``updates``), ``topapi/v2/department/listsub``,
  ``topapi/message/corpconversation/asyncsend_v2`` (a second identical notice to one person on
  one day is answered ok and not delivered, as documented);
- the new host (``api.dingtalk.com``): ``POST /v1.0/oauth2/accessToken`` -> ``{accessToken,
  expireIn}`` (400 ``invalidClientIdOrSecret``), the token in ``x-acs-dingtalk-access-token``,
  errors as HTTP 4xx ``{code, message, requestid}`` (400 ``InvalidAuthentication``, 403
  ``Forbidden.AccessDenied.QpsLimitForAppkeyAndApi``); ``/v1.0/workflow/processInstances``
  (start, get) and ``/v1.0/workflow/processes/instanceIds/query``.

The same token works on both hosts. Each approval pushes ``bpms_instance_change`` (``type``
``start``, then ``finish`` with ``result`` ``agree``/``refuse`` after ``approval_delay``
seconds) the way DingTalk's HTTP push mode does: ``{"encrypt"}`` with ``msg_signature``,
``timestamp`` (milliseconds) and ``nonce`` in the query, WXBizMsgCrypt with the app key as
receive id; the receiver must answer the encrypted ``"success"`` map or the event stays queued.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Unpack

import requests

from hub.callbacks.errors import CallbackError
from hub.callbacks.wxbiz import DingTalkCrypto, random_nonce
from hub.sandbox.base import Request, Response, route
from hub.sandbox.oa import OASimulator, OASimulatorOptions, Outgoing, QueuedCallback
from hub.sandbox.people import DEPARTMENTS, TITLES, people

TOKEN_PATH = "/gettoken"  # noqa: S105 - a URL path
NEW_TOKEN_PATH = "/v1.0/oauth2/accessToken"  # noqa: S105 - a URL path
DEFAULT_APP_KEY = "dingsimappkey0000001"
DEFAULT_APP_SECRET = "sim-dingtalk-app-secret"  # noqa: S105 - a simulator credential
DEFAULT_CORP_ID = "dingsimcorp000000000000000000001"
DEFAULT_AGENT_ID = 3000001
DEFAULT_PROCESS_CODE = "PROC-SIM-ONBOARDING-0001"
DEFAULT_CALLBACK_TOKEN = "simdingtalktoken"  # noqa: S105 - a simulator credential
DEFAULT_AES_KEY = "CCHOaOwXcfPYTfQYZfP0ViXjGC/S2ynmtkWrP1e1bGQ"  # 43 characters
ROOT_DEPARTMENT = 1
MAX_LIST_SIZE = 100
MAX_INSTANCE_IDS = 20
DAY_MS = 86_400_000


def _request_id() -> str:
    return random_nonce(13).lower()


def _ok(**body: Any) -> Response:
    return Response(200, {"errcode": 0, "errmsg": "ok", **body, "request_id": _request_id()})


def _err(code: int, message: str, sub_code: str | None = None) -> Response:
    body: dict[str, Any] = {"errcode": code, "errmsg": message, "request_id": _request_id()}
    if sub_code is not None:
        body = {
            "errcode": code,
            "sub_code": sub_code,
            "sub_msg": message,
            "errmsg": f"ding talk error[subcode={sub_code},submsg={message}]",
            "request_id": body["request_id"],
        }
    return Response(200, body)


def _new_err(status: int, code: str, message: str) -> Response:
    return Response(status, {"requestid": _request_id().upper(), "code": code, "message": message})


@dataclass
class DingTalkUser:
    """A member of the organisation."""

    userid: str
    unionid: str
    name: str
    mobile: str
    dept_id_list: list[int]
    job_number: str = ""
    title: str = ""
    email: str = ""
    manager_userid: str = ""
    hired_date: int | None = None  # ms

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "userid": self.userid,
            "unionid": self.unionid,
            "name": self.name,
            "mobile": self.mobile,
            "state_code": "86",
            "job_number": self.job_number,
            "title": self.title,
            "email": self.email,
            "dept_id_list": list(self.dept_id_list),
            "manager_userid": self.manager_userid,
            "active": True,
            "admin": False,
            "boss": False,
            "leader_in_dept": [{"dept_id": d, "leader": False} for d in self.dept_id_list],
        }
        if self.hired_date is not None:
            body["hired_date"] = self.hired_date
        return body


@dataclass
class DingTalkInstance:
    """One approval instance (审批实例)."""

    instance_id: str
    process_code: str
    originator: str
    dept_id: int
    form: list[dict[str, Any]]
    create_time: int  # ms
    decide_at: float  # clock seconds
    outcome: str  # agree / refuse
    business_id: str
    status: str = "RUNNING"  # RUNNING, COMPLETED, TERMINATED
    result: str = ""
    finish_time: int | None = None

    def as_json(self, title: str) -> dict[str, Any]:
        return {
            "title": title,
            "createTime": datetime.fromtimestamp(self.create_time / 1000, UTC).strftime("%Y-%m-%dT%H:%MZ"),
            "finishTime": (
                datetime.fromtimestamp(self.finish_time / 1000, UTC).strftime("%Y-%m-%dT%H:%MZ")
                if self.finish_time
                else None
            ),
            "originatorUserId": self.originator,
            "originatorDeptId": str(self.dept_id),
            "status": self.status,
            "result": self.result,
            "businessId": self.business_id,
            "formComponentValues": [dict(v) for v in self.form],
            "operationRecords": [],
            "tasks": [],
            "bizAction": "NONE",
        }


@dataclass(kw_only=True)
class CallbackEvent(QueuedCallback):
    """One push queued for delivery: ``subject`` is the approval instance id."""

    kind: str  # start / finish
    result: str


@dataclass
class Delivery:
    """What happened to one push."""

    instance: str
    kind: str
    result: str
    http_status: int | None
    accepted: bool


@dataclass
class _Notice:
    userid: str
    content: str
    day: str
    task_id: int


class DingTalkSimulator(OASimulator[CallbackEvent, "Delivery"]):
    """DingTalk's legacy and new hosts on loopback, seeded with ``count`` members."""

    vendor = "dingtalk"
    public_paths = (TOKEN_PATH, NEW_TOKEN_PATH)
    outcomes = ("agree", "refuse")
    vendor_rate = (40, 1.0)  # 40 calls a second per app and API (errcode 90018)
    callback_noun = "pushes"

    def __init__(
        self,
        *,
        app_key: str = DEFAULT_APP_KEY,
        app_secret: str = DEFAULT_APP_SECRET,
        corp_id: str = DEFAULT_CORP_ID,
        agent_id: int = DEFAULT_AGENT_ID,
        process_code: str = DEFAULT_PROCESS_CODE,
        callback_token: str = DEFAULT_CALLBACK_TOKEN,
        aes_key: str = DEFAULT_AES_KEY,
        **options: Unpack[OASimulatorOptions],
    ) -> None:
        self.app_key = app_key
        self.app_secret = app_secret
        self.corp_id = corp_id
        self.agent_id = agent_id
        self.process_code = process_code
        self.process_title = "入职审批"
        self.callback_token = callback_token
        self.aes_key = aes_key
        self.crypto = DingTalkCrypto(callback_token, aes_key, app_key)
        self.users: dict[str, DingTalkUser] = {}
        self.departments: dict[int, dict[str, Any]] = {}
        self.instances: dict[str, DingTalkInstance] = {}
        self.notices: list[_Notice] = []
        #: member updates accepted through ``topapi/v2/user/update``
        self.updates = 0
        self._ip_blocked = 0
        self._serial = 0
        self._local = threading.local()
        super().__init__(**options)  # seeds the users last

    # -- generated data ----------------------------------------------------------------------

    def _seed(self, count: int, seed: int) -> None:
        self.departments[ROOT_DEPARTMENT] = {"dept_id": ROOT_DEPARTMENT, "name": "模拟公司", "parent_id": 0}
        for offset, name in enumerate(DEPARTMENTS, start=2):
            self.departments[offset] = {"dept_id": offset, "name": name, "parent_id": ROOT_DEPARTMENT}
        for person in people(count, seed):
            dept = 2 + person.index % len(DEPARTMENTS)
            user = DingTalkUser(
                userid=f"D{person.index:05d}",
                unionid=f"sim{person.index:08d}uNiOnId",
                name=person.name,
                mobile=person.phone,
                dept_id_list=[dept],
                job_number=f"D{person.index:05d}",
                title=TITLES[person.index % len(TITLES)][0],
                email=person.email,
            )
            self.users[user.userid] = user
        self.approver = next(iter(self.users), "approver")

    @property
    def approvals(self) -> int:
        return len(self.instances)

    @property
    def messages(self) -> int:
        """Work notices that reached someone (a same-day duplicate is answered ok, not delivered)."""
        return len(self.notices)

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "api_base_url": self.url,
            "app_key": self.app_key,
            "app_secret": self.app_secret,
            "corp_id": self.corp_id,
            "agent_id": self.agent_id,
            "process_code": self.process_code,
            "callback_token": self.callback_token,
            "aes_key": self.aes_key,
            "users": len(self.users),
            "departments": len(self.departments),
        }

    # -- dispatch: the two hosts answer errors differently --------------------------------------

    @staticmethod
    def _is_new_host(path: str) -> bool:
        return path.startswith("/v1.0/")

    def block_ip(self, requests_count: int = 1) -> None:
        """Answer the next requests as DingTalk's per-IP block does (HTTP 200, ``punish: deny``)."""
        with self._lock:
            self._ip_blocked += requests_count

    def dispatch(self, request: Request) -> Response:
        self._local.path = request.path
        with self._lock:
            if self._ip_blocked > 0:
                self._ip_blocked -= 1
                return Response(
                    200,
                    {"status": 1111, "wait": 5, "source": "x5", "punish": "deny", "uuid": random_nonce(16)},
                )
        return super().dispatch(request)

    def throttled(self, retry_after: float) -> Response:
        if self._is_new_host(getattr(self._local, "path", "")):
            return _new_err(
                403, "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", "应用调用该接口的并发量超过限制"
            )
        return _err(90018, "当前企业调用该接口的QPS超过了限制")

    def authenticate(self, request: Request) -> Response | None:
        if self._is_new_host(request.path):
            token = request.headers.get("x-acs-dingtalk-access-token")
            if not token:
                return _new_err(
                    400, "AuthenticationFailed.MissingParameter", "缺少参数：x-acs-dingtalk-access-token"
                )
            if not self.token_valid(token):
                return _new_err(400, "InvalidAuthentication", "不合法的access_token")
            return None
        token = request.arg("access_token")
        if not token:
            return _err(88, "access_token is blank", sub_code="40000")
        with self._lock:
            known = token in self._tokens
        if not known:
            return _err(88, "不合法的access_token", sub_code="40014")
        if not self.token_valid(token):
            return _err(88, "access_token超时", sub_code="42001")
        return None

    # -- tokens ------------------------------------------------------------------------------

    @route("GET", TOKEN_PATH)
    def get_token(self, request: Request) -> Response:
        if not request.arg("appkey"):
            return _err(40035, "缺少参数 corpid or appkey")
        if request.arg("appkey") != self.app_key or request.arg("appsecret") != self.app_secret:
            return _err(40096, "不合法的appKey或appSecret")
        token, ttl = self.issue_token()
        return Response(200, {"errcode": 0, "access_token": token, "errmsg": "ok", "expires_in": int(ttl)})

    @route("POST", NEW_TOKEN_PATH)
    def get_new_token(self, request: Request) -> Response:
        body = request.json() or {}
        if body.get("appKey") != self.app_key or body.get("appSecret") != self.app_secret:
            return _new_err(400, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")
        token, ttl = self.issue_token()
        return Response(200, {"accessToken": token, "expireIn": int(ttl)})

    # -- users -------------------------------------------------------------------------------

    def _owner(self, mobile: str, exclude: str | None = None) -> str | None:
        return next(
            (u.userid for u in self.users.values() if mobile and u.mobile == mobile and u.userid != exclude),
            None,
        )

    def _dept_ids(self, value: Any) -> list[int] | None:
        try:
            ids = [int(part) for part in str(value or "").split(",") if part.strip()]
        except ValueError:
            return None
        if not ids or any(d not in self.departments for d in ids):
            return None
        return ids

    @route("POST", "/topapi/v2/user/create")
    def user_create(self, request: Request) -> Response:
        body = request.json() or {}
        name, mobile = str(body.get("name") or ""), str(body.get("mobile") or "")
        if not name:
            return _err(60112, "用户名称不合法")
        if not mobile:
            return _err(40035, "缺少参数 mobile")
        with self._lock:
            depts = self._dept_ids(body.get("dept_id_list"))
            if depts is None:
                return _err(60003, "部门不存在")
            self._serial += 1
            userid = str(body.get("userid") or f"sim{self._serial:06d}")
            if userid in self.users:
                return _err(60102, "UserID在公司中已存在")
            if self._owner(mobile):
                return _err(60104, "手机号码在公司中已存在")
            user = DingTalkUser(
                userid=userid,
                unionid=f"simuNiOn{self._serial:08d}",
                name=name,
                mobile=mobile,
                dept_id_list=depts,
                job_number=str(body.get("job_number") or ""),
                title=str(body.get("title") or ""),
                email=str(body.get("email") or ""),
                manager_userid=str(body.get("manager_userid") or ""),
                hired_date=int(body["hired_date"]) if body.get("hired_date") else None,
            )
            self.users[userid] = user
            self.accounts += 1
        return _ok(result={"userid": userid, "unionId": user.unionid})

    @route("POST", "/topapi/v2/user/get")
    def user_get(self, request: Request) -> Response:
        with self._lock:
            user = self.users.get(str((request.json() or {}).get("userid") or ""))
            if user is None:
                return _err(60121, "找不到该用户")
            return _ok(result=user.as_json())

    @route("POST", "/topapi/v2/user/update")
    def user_update(self, request: Request) -> Response:
        body = request.json() or {}
        with self._lock:
            user = self.users.get(str(body.get("userid") or ""))
            if user is None:
                return _err(60121, "找不到该用户")
            depts = self._dept_ids(body["dept_id_list"]) if "dept_id_list" in body else user.dept_id_list
            if depts is None:
                return _err(60003, "部门不存在")
            if body.get("mobile") and self._owner(str(body["mobile"]), exclude=user.userid):
                return _err(60104, "手机号码在公司中已存在")
            user.dept_id_list = depts  # refused updates change nothing
            for key in ("name", "mobile", "job_number", "title", "email", "manager_userid"):
                if key in body:
                    setattr(user, key, str(body[key]))
            if "hired_date" in body:
                user.hired_date = int(body["hired_date"]) if body["hired_date"] else None
            self.updates += 1
        return _ok(result={})

    @route("POST", "/topapi/v2/user/delete")
    def user_delete(self, request: Request) -> Response:
        with self._lock:
            if self.users.pop(str((request.json() or {}).get("userid") or ""), None) is None:
                return _err(60121, "找不到该用户")
        return _ok(result={})

    @route("POST", "/topapi/v2/user/getbymobile")
    def user_by_mobile(self, request: Request) -> Response:
        with self._lock:
            holder = self._owner(str((request.json() or {}).get("mobile") or ""))
        if holder is None:
            return _err(60121, "找不到该用户")
        return _ok(result={"userid": holder, "exclusive_account_userid_list": []})

    @route("POST", "/topapi/v2/user/list")
    def user_list(self, request: Request) -> Response:
        body = request.json() or {}
        size = int(body.get("size") or 0)
        if not 1 <= size <= MAX_LIST_SIZE:
            return _err(40035, "size 不合法")
        dept = int(body.get("dept_id") or 0)
        with self._lock:
            if dept not in self.departments:
                return _err(60003, "部门不存在")
            members = sorted(
                (u for u in self.users.values() if dept in u.dept_id_list), key=lambda u: u.userid
            )
            cursor = int(body.get("cursor") or 0)
            page = [u.as_json() for u in members[cursor : cursor + size]]
        following = cursor + size
        result: dict[str, Any] = {"has_more": following < len(members), "list": page}
        if result["has_more"]:
            result["next_cursor"] = following
        return _ok(result=result)

    @route("POST", "/topapi/v2/department/listsub")
    def department_listsub(self, request: Request) -> Response:
        parent = int((request.json() or {}).get("dept_id") or ROOT_DEPARTMENT)
        with self._lock:
            if parent not in self.departments:
                return _err(60003, "部门不存在")
            children = [dict(d) for d in self.departments.values() if d["parent_id"] == parent]
        return _ok(result=children)

    # -- approvals ---------------------------------------------------------------------------

    def _push(self, instance: DingTalkInstance, kind: str, due: float) -> None:
        self._serial += 1
        event: dict[str, Any] = {
            "EventType": "bpms_instance_change",
            "processInstanceId": instance.instance_id,
            "corpId": self.corp_id,
            "createTime": instance.create_time,
            "title": f"{self.process_title}",
            "type": kind,
            "staffId": instance.originator,
            "url": f"https://aflow.dingtalk.com/dingtalk/mobile/homepage.htm?corpid={self.corp_id}",
            "processCode": instance.process_code,
            "bizCategoryId": "",
            "businessId": instance.business_id,
        }
        if kind == "finish":
            event["result"] = instance.result
            event["finishTime"] = instance.finish_time
        self.events.append(
            CallbackEvent(
                seq=self._serial,
                subject=instance.instance_id,
                kind=kind,
                result=instance.result,
                due=due,
                plaintext=json.dumps(event, ensure_ascii=False),
            )
        )

    def _settle(self) -> None:
        now = self.clock()
        with self._lock:
            for instance in self.instances.values():
                if instance.status == "RUNNING" and now >= instance.decide_at:
                    instance.status, instance.result = "COMPLETED", instance.outcome
                    instance.finish_time = int(now * 1000)
                    self._push(instance, "finish", now)

    @route("POST", "/v1.0/workflow/processInstances")
    def start_instance(self, request: Request) -> Response:
        body = request.json() or {}
        with self._lock:
            if body.get("processCode") != self.process_code:
                return _new_err(400, "InvalidParameter", "processCode 不存在")
            originator = str(body.get("originatorUserId") or "")
            if originator not in self.users:
                return _new_err(400, "InvalidParameter", "originatorUserId 不存在")
            if body.get("deptId") in (None, ""):
                return _new_err(400, "InvalidParameter", "deptId 不能为空")
            form = body.get("formComponentValues")
            if not isinstance(form, list) or not all(isinstance(v, dict) and "name" in v for v in form):
                return _new_err(400, "InvalidParameter", "formComponentValues 不合法")
            now = self.clock()
            self._serial += 1
            instance = DingTalkInstance(
                instance_id=f"sim-{self._serial:06d}-{random_nonce(10)}",
                process_code=self.process_code,
                originator=originator,
                dept_id=int(body["deptId"]),
                form=[{"name": str(v["name"]), "value": str(v.get("value") or "")} for v in form],
                create_time=int(now * 1000),
                decide_at=now + self.approval_delay,
                outcome=self.approval_outcome,
                business_id=datetime.fromtimestamp(now, UTC).strftime("%Y%m%d%H%M") + f"{self._serial:06d}",
            )
            self.instances[instance.instance_id] = instance
            self._push(instance, "start", now)
        return Response(200, {"instanceId": instance.instance_id})

    @route("GET", "/v1.0/workflow/processInstances")
    def get_instance(self, request: Request) -> Response:
        self._settle()
        with self._lock:
            instance = self.instances.get(request.arg("processInstanceId") or "")
            if instance is None:
                return _new_err(400, "InvalidParameter", "processInstanceId 不存在")
            return Response(200, {"result": instance.as_json(self.process_title), "success": True})

    @route("POST", "/v1.0/workflow/processes/instanceIds/query")
    def query_instance_ids(self, request: Request) -> Response:
        body = request.json() or {}
        try:
            start, end = int(str(body.get("startTime"))), int(str(body.get("endTime") or self.clock() * 1000))
        except ValueError:
            return _new_err(400, "InvalidParameter", "startTime 不合法")
        size = int(body.get("maxResults") or MAX_INSTANCE_IDS)
        if not 1 <= size <= MAX_INSTANCE_IDS:
            return _new_err(400, "InvalidParameter", "maxResults 不合法")
        users = set(body.get("userIds") or [])
        statuses = set(body.get("statuses") or [])
        self._settle()
        with self._lock:
            ids = [
                i.instance_id
                for i in self.instances.values()
                if i.process_code == body.get("processCode")
                and start <= i.create_time <= end
                and (not users or i.originator in users)
                and (not statuses or i.status in statuses)
            ]
        cursor = int(body.get("nextToken") or 0)
        following = cursor + size
        result: dict[str, Any] = {"list": ids[cursor:following]}
        if following < len(ids):
            result["nextToken"] = str(following)
        return Response(200, {"result": result, "success": True})

    def approval_ids(self) -> list[str]:
        return list(self.instances)

    def decide(self, instance_id: str, *, agree: bool = True) -> None:
        """An approver acts now."""
        with self._lock:
            instance = self.instances[instance_id]
            instance.outcome = "agree" if agree else "refuse"
            instance.decide_at = self.clock()
        self._settle()

    # -- work notices -----------------------------------------------------------------------

    @route("POST", "/topapi/message/corpconversation/asyncsend_v2")
    def send_notice(self, request: Request) -> Response:
        body = request.json() or {}
        if int(body.get("agent_id") or 0) != self.agent_id:
            return _err(40035, "agent_id 不合法")
        msg = body.get("msg") or {}
        content = str((msg.get("text") or {}).get("content") or "")
        if msg.get("msgtype") != "text" or not content:
            return _err(40035, "msg 不合法")
        day = datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m-%d")
        with self._lock:
            self._serial += 1
            task_id = self._serial
            for userid in str(body.get("userid_list") or "").split(","):
                if userid not in self.users:
                    continue
                # "给同一员工一天只能发一条内容相同的消息": answered ok, not delivered
                if any(n.userid == userid and n.content == content and n.day == day for n in self.notices):
                    continue
                self.notices.append(_Notice(userid, content, day, task_id))
        return _ok(task_id=task_id)

    # -- callback delivery -------------------------------------------------------------------

    def seal(self, event: CallbackEvent) -> Outgoing:
        sealed = self.crypto.callback(event.plaintext, str(int(self.clock() * 1000)), random_nonce(8))
        return Outgoing(sealed.body, sealed.query, {"Content-Type": "application/json"})

    def acknowledged(self, reply: requests.Response) -> bool:
        """DingTalk wants the encrypted ``"success"`` map back; anything else is a failure."""
        if reply.status_code != 200:
            return False
        try:
            return self.crypto.open_reply(reply.content) == b"success"
        except CallbackError:
            return False

    def delivery(self, event: CallbackEvent, http_status: int | None, accepted: bool) -> Delivery:
        return Delivery(event.subject, event.kind, event.result, http_status, accepted)

    def verify_callback_url(self, url: str, *, timeout: float = 5.0) -> bool:
        """DingTalk's URL check: a ``check_url`` event the receiver must answer with "success"."""
        sealed = self.crypto.callback(
            '{"EventType":"check_url"}', str(int(self.clock() * 1000)), random_nonce(8)
        )
        reply = requests.post(url, params=sealed.query, data=sealed.body, timeout=timeout)
        return self.acknowledged(reply)
