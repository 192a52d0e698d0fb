"""A simulator of Feishu / Lark (飞书) open APIs for onboarding: contacts, approval v4, messages.

What it reproduces (vendors.md §1.3, §7; each shape checked as noted in ``hub_feishu.client``):
``POST /open-apis/auth/v3/tenant_access_token/internal`` -> ``{code, msg,
tenant_access_token, expire: 7200}``; ``Authorization: Bearer``; every answer is
``{code, msg, data}``, errors with an HTTP 4xx status (``99991663`` invalid or expired token,
HTTP 429 ``99991400`` over the frequency limit with ``x-ogw-ratelimit-limit`` /
``x-ogw-ratelimit-reset``). Contacts v3: ``users`` create with ``client_token`` (the same
token and body gives the same user back; another body 40021), ``user_id_type`` /
``department_id_type``, uniqueness of mobile (41001), e-mail (41002), user_id (41011) and
employee_no (44051); get (41012 unknown), PATCH (``is_frozen``; counted in ``updates``),
``batch_get_id`` by mobile, ``find_by_department`` and ``departments/:id/children`` with
``page_size`` / ``page_token``.
Approval v4: create with ``uuid`` (a reused uuid: 60012), get, list by approval code and time
window, ``subscribe``. ``im/v1/messages`` with ``uuid`` de-duplication (one hour).

Events: an approval pushes the v1 ``approval_instance`` event (``PENDING``, then ``APPROVED``
or ``REJECTED`` after ``approval_delay`` seconds) for subscribed approval codes, encrypted with
the Encrypt Key (``{"encrypt"}``) and signed with ``X-Lark-Signature`` over timestamp (seconds),
nonce, key and body; any HTTP 200 acknowledges, anything else keeps the event queued.
"""

from __future__ import annotations

import json
import uuid as uuidlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Unpack

import requests

from hub.callbacks.lark import LarkCrypto
from hub.callbacks.wxbiz import random_nonce
from hub.sandbox.base import Request, Response, route
from hub.sandbox.oa import OASimulator, OASimulatorOptions, Outgoing, QueuedCallback
from hub.sandbox.people import DEPARTMENTS, TITLES, people

PREFIX = "/open-apis"
TOKEN_PATH = f"{PREFIX}/auth/v3/tenant_access_token/internal"
DEFAULT_APP_ID = "cli_sim0000000000001"
DEFAULT_APP_SECRET = "sim-feishu-app-secret"  # noqa: S105 - a simulator credential
DEFAULT_APPROVAL_CODE = "7C468A54-8745-2245-9675-08B7C63E7A85"
DEFAULT_VERIFICATION_TOKEN = "sim-feishu-verification-token"  # noqa: S105 - a simulator credential
DEFAULT_ENCRYPT_KEY = "sim-feishu-encrypt-key"
TENANT_KEY = "sim-tenant"
ROOT_DEPARTMENT = "0"
MAX_CONTACT_PAGE = 50
MAX_APPROVAL_PAGE = 100
MESSAGE_DEDUPE_S = 3600


def _ok(data: Any = None) -> Response:
    return Response(200, {"code": 0, "msg": "success", "data": data if data is not None else {}})


def _err(code: int, msg: str, status: int = 400) -> Response:
    return Response(status, {"code": code, "msg": msg, "error": {"log_id": random_nonce(20)}})


def _same_mobile(a: str, b: str) -> bool:
    """Feishu takes ``13011111111`` and ``+8613011111111`` as the same number."""

    def national(value: str) -> str:
        return value[3:] if value.startswith("+86") else value

    return bool(a) and national(a) == national(b)


@dataclass
class FeishuUser:
    user_id: str
    open_id: str
    union_id: str
    name: str
    mobile: str
    department_ids: list[str]
    email: str = ""
    employee_no: str = ""
    employee_type: int = 1
    job_title: str = ""
    leader_user_id: str = ""
    join_time: int | None = None
    is_frozen: bool = False
    activated: bool = False

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "user_id": self.user_id,
            "open_id": self.open_id,
            "union_id": self.union_id,
            "name": self.name,
            "mobile": self.mobile,
            "email": self.email,
            "department_ids": list(self.department_ids),
            "leader_user_id": self.leader_user_id,
            "employee_no": self.employee_no,
            "employee_type": self.employee_type,
            "job_title": self.job_title,
            "is_frozen": self.is_frozen,
            "status": {
                "is_frozen": self.is_frozen,
                "is_resigned": False,
                "is_activated": self.activated,
                "is_exited": False,
                "is_unjoin": not self.activated,
            },
        }
        if self.join_time is not None:
            body["join_time"] = self.join_time
        return body


@dataclass
class FeishuInstance:
    instance_code: str
    approval_code: str
    user_id: str
    department_id: str
    form: str
    uuid: str
    start_time: int  # ms
    decide_at: float
    outcome: str  # APPROVED / REJECTED
    serial: int
    status: str = "PENDING"
    end_time: int = 0

    def as_json(self, name: str) -> dict[str, Any]:
        return {
            "approval_code": self.approval_code,
            "approval_name": name,
            "instance_code": self.instance_code,
            "serial_number": str(self.serial),
            "user_id": self.user_id,
            "department_id": self.department_id,
            "status": self.status,
            "uuid": self.uuid,
            "form": self.form,
            "start_time": str(self.start_time),
            "end_time": str(self.end_time),
            "task_list": [],
            "comment_list": [],
            "timeline": [],
            "reverted": False,
        }


@dataclass(kw_only=True)
class CallbackEvent(QueuedCallback):
    """One event queued for delivery: ``subject`` is the approval's instance code."""

    status: str


@dataclass
class Delivery:
    instance: str
    status: str
    http_status: int | None
    accepted: bool


class FeishuSimulator(OASimulator[CallbackEvent, "Delivery"]):
    """Feishu contacts, approvals and messages on loopback, seeded with ``count`` users."""

    vendor = "feishu"
    public_paths = (TOKEN_PATH,)
    outcomes = ("APPROVED", "REJECTED")
    vendor_rate = (50, 1.0)  # contacts: 50 calls a second (1000 a minute) per app
    callback_noun = "events"

    def __init__(
        self,
        *,
        app_id: str = DEFAULT_APP_ID,
        app_secret: str = DEFAULT_APP_SECRET,
        approval_code: str = DEFAULT_APPROVAL_CODE,
        verification_token: str = DEFAULT_VERIFICATION_TOKEN,
        encrypt_key: str = DEFAULT_ENCRYPT_KEY,
        **options: Unpack[OASimulatorOptions],
    ) -> None:
        self.app_id = app_id
        self.app_secret = app_secret
        self.approval_code = approval_code
        self.approval_name = "入职审批"
        self.verification_token = verification_token
        self.encrypt_key = encrypt_key
        self.crypto = LarkCrypto(encrypt_key)
        self.users: dict[str, FeishuUser] = {}
        self.departments: dict[str, dict[str, Any]] = {}
        self.instances: dict[str, FeishuInstance] = {}
        self.subscriptions: set[str] = set()
        self.sent_messages: list[dict[str, Any]] = []
        self._client_tokens: dict[str, tuple[str, str]] = {}  # client_token -> (body digest, user_id)
        #: user updates accepted through ``PATCH contact/v3/users/:user_id`` (freezing one too)
        self.updates = 0
        self._serial = 0
        super().__init__(**options)  # seeds the users last

    # -- generated data ----------------------------------------------------------------------

    def _seed(self, count: int, seed: int) -> None:
        self.departments[ROOT_DEPARTMENT] = {
            "department_id": ROOT_DEPARTMENT,
            "open_department_id": "od-root",
            "name": "模拟公司",
            "parent_department_id": "",
        }
        for offset, name in enumerate(DEPARTMENTS, start=2):
            department_id = f"d{offset}"
            self.departments[department_id] = {
                "department_id": department_id,
                "open_department_id": f"od-sim{offset:030d}",
                "name": name,
                "parent_department_id": ROOT_DEPARTMENT,
            }
        for person in people(count, seed):
            department_id = f"d{2 + person.index % len(DEPARTMENTS)}"
            user = FeishuUser(
                user_id=f"F{person.index:05d}",
                open_id=f"ou_sim{person.index:026d}",
                union_id=f"on_sim{person.index:026d}",
                name=person.name,
                mobile=person.phone,
                department_ids=[department_id],
                email=person.email,
                employee_no=f"F{person.index:05d}",
                job_title=TITLES[person.index % len(TITLES)][0],
                activated=True,
            )
            self.users[user.user_id] = user

    @property
    def approvals(self) -> int:
        return len(self.instances)

    @property
    def messages(self) -> int:
        """Messages delivered (a repeat with the same ``uuid`` within an hour is not)."""
        return len(self.sent_messages)

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "app_id": self.app_id,
            "app_secret": self.app_secret,
            "approval_code": self.approval_code,
            "verification_token": self.verification_token,
            "encrypt_key": self.encrypt_key,
            "users": len(self.users),
            "departments": len(self.departments),
        }

    # -- faults and errors -------------------------------------------------------------------

    def throttled(self, retry_after: float) -> Response:
        seconds = max(1, int(retry_after + 0.999))
        response = _err(99991400, "request trigger frequency limit", status=429)
        response.headers = {"x-ogw-ratelimit-limit": "50", "x-ogw-ratelimit-reset": str(seconds)}
        return response

    def authenticate(self, request: Request) -> Response | None:
        token = self.bearer(request)
        if not token:
            return _err(
                99991661, "Missing access token for authorization. Please make a request with token attached."
            )
        if not self.token_valid(token):
            return _err(
                99991663, "Invalid access token for authorization. Please make a request with token attached."
            )
        return None

    @route("POST", TOKEN_PATH)
    def get_token(self, request: Request) -> Response:
        body = request.json() or {}
        if body.get("app_id") != self.app_id:
            return _err(10003, "invalid param")
        if body.get("app_secret") != self.app_secret:
            return _err(10014, "app secret invalid")
        token, ttl = self.issue_token()
        return Response(200, {"code": 0, "msg": "ok", "tenant_access_token": token, "expire": int(ttl)})

    # -- users -------------------------------------------------------------------------------

    def _id_types(self, request: Request) -> Response | None:
        if (request.arg("user_id_type") or "open_id") != "user_id":
            return _err(40001, "param error: this simulator speaks user_id_type=user_id")
        if (request.arg("department_id_type") or "department_id") != "department_id":
            return _err(40001, "param error: this simulator speaks department_id_type=department_id")
        return None

    def _conflict(self, body: Mapping[str, Any], exclude: str | None = None) -> Response | None:
        for user in self.users.values():
            if user.user_id == exclude:
                continue
            if body.get("mobile") and _same_mobile(user.mobile, str(body["mobile"])):
                return _err(41001, "mobile has already exist error")
            if body.get("email") and user.email == body["email"]:
                return _err(41002, "email has already exist error")
            if body.get("employee_no") and user.employee_no == body["employee_no"]:
                return _err(44051, "employee_no already existed")
        return None

    @route("POST", f"{PREFIX}/contact/v3/users")
    def create_user(self, request: Request) -> Response:
        refused = self._id_types(request)
        if refused:
            return refused
        body = request.json() or {}
        digest = json.dumps(body, sort_keys=True, ensure_ascii=False)
        client_token = request.arg("client_token") or ""
        with self._lock:
            if client_token and client_token in self._client_tokens:
                seen, user_id = self._client_tokens[client_token]
                if seen != digest:
                    return _err(40021, "no a same request error")
                if user_id in self.users:
                    return _ok({"user": self.users[user_id].as_json()})
            if not body.get("name"):
                return _err(41040, "user name is null error")
            if not body.get("mobile"):
                return _err(41010, "no mobile error")
            department_ids = [str(d) for d in body.get("department_ids") or []]
            if not department_ids:
                return _err(41017, "department is required error")
            if any(d not in self.departments for d in department_ids):
                return _err(40004, "no dept authority error", status=403)
            if int(body.get("employee_type") or 0) not in (1, 2, 3, 4, 5):
                return _err(41059, "invalid employee type error")
            user_id = str(body.get("user_id") or "")
            if user_id and user_id in self.users:
                return _err(41011, "user id already exist error")
            conflict = self._conflict(body)
            if conflict:
                return conflict
            self._serial += 1
            user = FeishuUser(
                user_id=user_id or f"sim{self._serial:06d}",
                open_id=f"ou_{uuidlib.uuid4().hex}",
                union_id=f"on_{uuidlib.uuid4().hex}",
                name=str(body["name"]),
                mobile=str(body["mobile"]),
                department_ids=department_ids,
                email=str(body.get("email") or ""),
                employee_no=str(body.get("employee_no") or ""),
                employee_type=int(body["employee_type"]),
                job_title=str(body.get("job_title") or ""),
                leader_user_id=str(body.get("leader_user_id") or ""),
                join_time=int(body["join_time"]) if body.get("join_time") else int(self.clock()),
            )
            self.users[user.user_id] = user
            if client_token:
                self._client_tokens[client_token] = (digest, user.user_id)
            self.accounts += 1
            return _ok({"user": user.as_json()})

    # declared before users/{user_id}, which would otherwise take the path
    @route("GET", f"{PREFIX}/contact/v3/users/find_by_department")
    def find_by_department(self, request: Request) -> Response:
        refused = self._id_types(request)
        if refused:
            return refused
        department_id = request.arg("department_id") or ""
        with self._lock:
            if department_id not in self.departments:
                return _err(40004, "no dept authority error", status=403)
            members = sorted(
                (u for u in self.users.values() if department_id in u.department_ids), key=lambda u: u.user_id
            )
            return self._paged([u.as_json() for u in members], request, MAX_CONTACT_PAGE)

    @route("GET", f"{PREFIX}/contact/v3/users/{{user_id}}")
    def get_user(self, request: Request) -> Response:
        refused = self._id_types(request)
        if refused:
            return refused
        with self._lock:
            user = self.users.get(request.params["user_id"])
            if user is None:
                return _err(41012, "user id invalid error")
            return _ok({"user": user.as_json()})

    @route("PATCH", f"{PREFIX}/contact/v3/users/{{user_id}}")
    def patch_user(self, request: Request) -> Response:
        refused = self._id_types(request)
        if refused:
            return refused
        body = request.json() or {}
        with self._lock:
            user = self.users.get(request.params["user_id"])
            if user is None:
                return _err(41012, "user id invalid error")
            if "department_ids" in body and any(
                str(d) not in self.departments for d in body["department_ids"]
            ):
                return _err(40004, "no dept authority error", status=403)
            conflict = self._conflict(body, exclude=user.user_id)
            if conflict:
                return conflict
            for key in ("name", "mobile", "email", "employee_no", "job_title", "leader_user_id"):
                if key in body:
                    setattr(user, key, str(body[key]))
            if "department_ids" in body:
                user.department_ids = [str(d) for d in body["department_ids"]]
            if "join_time" in body:
                user.join_time = int(body["join_time"]) or None
            if "is_frozen" in body:
                user.is_frozen = bool(body["is_frozen"])
            self.updates += 1
            return _ok({"user": user.as_json()})

    @route("POST", f"{PREFIX}/contact/v3/users/batch_get_id")
    def batch_get_id(self, request: Request) -> Response:
        if (request.arg("user_id_type") or "open_id") != "user_id":
            return _err(40001, "param error: this simulator speaks user_id_type=user_id")
        body = request.json() or {}
        mobiles = [str(m) for m in body.get("mobiles") or []]
        emails = [str(e) for e in body.get("emails") or []]
        if len(mobiles) > 50 or len(emails) > 50:
            return _err(40001, "param error: at most 50 mobiles and 50 emails")
        found: list[dict[str, Any]] = []
        with self._lock:
            for mobile in mobiles:
                user = next((u for u in self.users.values() if _same_mobile(u.mobile, mobile)), None)
                entry: dict[str, Any] = {"mobile": mobile}
                if user is not None:
                    entry |= {"user_id": user.user_id, "status": user.as_json()["status"]}
                found.append(entry)
            for email in emails:
                user = next((u for u in self.users.values() if email and u.email == email), None)
                entry = {"email": email}
                if user is not None:
                    entry |= {"user_id": user.user_id, "status": user.as_json()["status"]}
                found.append(entry)
        return _ok({"user_list": found})

    def _paged(self, items: list[Any], request: Request, maximum: int, key: str = "items") -> Response:
        """One page of ``items`` under ``key``, by ``page_size`` / ``page_token`` (Feishu's paging)."""
        try:
            size = int(request.arg("page_size") or 10)
        except ValueError:
            return _err(40001, "param error: page_size")
        if not 1 <= size <= maximum:
            return _err(40001, f"param error: page_size must be 1 to {maximum}")
        token = request.arg("page_token") or ""
        start = int(token) if token.isdigit() else 0
        following = start + size
        data: dict[str, Any] = {key: items[start:following], "has_more": following < len(items)}
        if following < len(items):
            data["page_token"] = str(following)
        return _ok(data)

    @route("GET", f"{PREFIX}/contact/v3/departments/{{department_id}}/children")
    def department_children(self, request: Request) -> Response:
        if (request.arg("department_id_type") or "open_department_id") != "department_id":
            return _err(40001, "param error: this simulator speaks department_id_type=department_id")
        parent = request.params["department_id"]
        fetch_child = (request.arg("fetch_child") or "false") == "true"
        with self._lock:
            if parent not in self.departments:
                return _err(40004, "no dept authority error", status=403)
            wanted = {parent}
            found: list[dict[str, Any]] = []
            changed = True
            while changed:
                changed = False
                for d in self.departments.values():
                    if d["parent_department_id"] in wanted and d["department_id"] not in wanted:
                        found.append(dict(d))
                        if fetch_child:
                            wanted.add(d["department_id"])
                            changed = True
            return self._paged(found, request, MAX_CONTACT_PAGE)

    # -- approvals ---------------------------------------------------------------------------

    def _queue_event(self, instance: FeishuInstance, now: float) -> None:
        if instance.approval_code not in self.subscriptions:
            return
        self._serial += 1
        operate = str(int(now * 1000))
        event = {
            "ts": f"{now:.7f}",
            "uuid": uuidlib.uuid4().hex,
            "token": self.verification_token,
            "type": "event_callback",
            "event": {
                "app_id": self.app_id,
                "tenant_key": TENANT_KEY,
                "type": "approval_instance",
                "approval_code": instance.approval_code,
                "instance_code": instance.instance_code,
                "status": instance.status,
                "operate_time": operate,
                "instance_operate_time": operate,
                "uuid": instance.uuid,
            },
        }
        self.events.append(
            CallbackEvent(
                seq=self._serial,
                subject=instance.instance_code,
                status=instance.status,
                due=now,
                plaintext=json.dumps(event),
            )
        )

    def _settle(self) -> None:
        now = self.clock()
        with self._lock:
            for instance in self.instances.values():
                if instance.status == "PENDING" and now >= instance.decide_at:
                    instance.status, instance.end_time = instance.outcome, int(now * 1000)
                    self._queue_event(instance, now)

    @route("POST", f"{PREFIX}/approval/v4/approvals/{{approval_code}}/subscribe")
    def subscribe(self, request: Request) -> Response:
        code = request.params["approval_code"]
        with self._lock:
            if code != self.approval_code:
                return _err(1390002, "approval code not found")
            if code in self.subscriptions:
                return _err(1390007, "subscription existed")
            self.subscriptions.add(code)
        return _ok()

    @route("POST", f"{PREFIX}/approval/v4/instances")
    def create_instance(self, request: Request) -> Response:
        body = request.json() or {}
        with self._lock:
            if body.get("approval_code") != self.approval_code:
                return _err(1390002, "approval code not found")
            user_id = str(body.get("user_id") or "")
            if user_id not in self.users:
                return _err(1390001, "param is invalid: user_id")
            try:
                form = json.loads(str(body.get("form") or ""))
            except ValueError:
                form = None
            if not isinstance(form, list):
                return _err(1390001, "param is invalid: form must be a JSON array string")
            instance_uuid = str(body.get("uuid") or "")
            if instance_uuid and any(
                i.uuid.lower() == instance_uuid.lower() for i in self.instances.values()
            ):
                return _err(60012, "uuid conflict")
            now = self.clock()
            self._serial += 1
            instance = FeishuInstance(
                instance_code=str(uuidlib.uuid4()).upper(),
                approval_code=self.approval_code,
                user_id=user_id,
                department_id=str(body.get("department_id") or ""),
                form=str(body["form"]),
                uuid=instance_uuid,
                start_time=int(now * 1000),
                decide_at=now + self.approval_delay,
                outcome=self.approval_outcome,
                serial=self._serial,
            )
            self.instances[instance.instance_code] = instance
            self._queue_event(instance, now)
        return _ok({"instance_code": instance.instance_code})

    @route("GET", f"{PREFIX}/approval/v4/instances/{{instance_code}}")
    def get_instance(self, request: Request) -> Response:
        self._settle()
        with self._lock:
            instance = self.instances.get(request.params["instance_code"])
            if instance is None:
                return _err(1390003, "instance code not found")
            return _ok(instance.as_json(self.approval_name))

    @route("GET", f"{PREFIX}/approval/v4/instances")
    def list_instances(self, request: Request) -> Response:
        try:
            start, end = int(request.arg("start_time") or ""), int(request.arg("end_time") or "")
        except ValueError:
            return _err(1390001, "param is invalid: start_time and end_time are required")
        with self._lock:
            if request.arg("approval_code") != self.approval_code:
                return _err(1390002, "approval code not found")
            codes = [i.instance_code for i in self.instances.values() if start <= i.start_time <= end]
            return self._paged(codes, request, MAX_APPROVAL_PAGE, "instance_code_list")

    def approval_ids(self) -> list[str]:
        return list(self.instances)

    def decide(self, instance_code: str, *, approve: bool = True) -> None:
        """An approver acts now."""
        with self._lock:
            instance = self.instances[instance_code]
            instance.outcome = "APPROVED" if approve else "REJECTED"
            instance.decide_at = self.clock()
        self._settle()

    # -- messages ----------------------------------------------------------------------------

    @route("POST", f"{PREFIX}/im/v1/messages")
    def send_message(self, request: Request) -> Response:
        if request.arg("receive_id_type") != "user_id":
            return _err(40001, "param error: this simulator speaks receive_id_type=user_id")
        body = request.json() or {}
        now = self.clock()
        with self._lock:
            if str(body.get("receive_id") or "") not in self.users:
                return _err(230013, "bot has no availability to this user")
            if body.get("msg_type") != "text":
                return _err(230001, "param error: msg_type")
            try:
                text = json.loads(str(body.get("content") or ""))["text"]
            except (ValueError, KeyError, TypeError):
                return _err(230001, "param error: content must be a JSON string with text")
            message_uuid = str(body.get("uuid") or "")
            for sent in self.sent_messages:
                if message_uuid and sent["uuid"] == message_uuid and now - sent["at"] <= MESSAGE_DEDUPE_S:
                    return _ok({"message_id": sent["message_id"], "msg_type": "text"})
            message = {
                "message_id": f"om_{uuidlib.uuid4().hex}",
                "receive_id": body["receive_id"],
                "text": text,
                "uuid": message_uuid,
                "at": now,
            }
            self.sent_messages.append(message)
        return _ok(
            {"message_id": message["message_id"], "msg_type": "text", "create_time": str(int(now * 1000))}
        )

    # -- event delivery ----------------------------------------------------------------------

    def seal(self, event: CallbackEvent) -> Outgoing:
        body = self.crypto.encrypted_body(event.plaintext)
        signed = self.crypto.signed_headers(body, timestamp=str(int(self.clock())), nonce=random_nonce(12))
        return Outgoing(body, headers={"Content-Type": "application/json; charset=utf-8", **signed})

    def delivery(self, event: CallbackEvent, http_status: int | None, accepted: bool) -> Delivery:
        return Delivery(event.subject, event.status, http_status, accepted)

    def verify_callback_url(self, url: str, *, timeout: float = 5.0) -> bool:
        """Feishu's URL check: an encrypted ``url_verification`` whose challenge must come back."""
        challenge = random_nonce(16)
        plaintext = json.dumps(
            {"challenge": challenge, "token": self.verification_token, "type": "url_verification"}
        )
        reply = requests.post(url, data=self.crypto.encrypted_body(plaintext), timeout=timeout)
        try:
            return reply.status_code == 200 and reply.json().get("challenge") == challenge
        except ValueError:
            return False
