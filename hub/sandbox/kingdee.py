"""A simulator of Kingdee 金蝶云星空 (K3Cloud) WebAPI for payroll onboarding: sessions, forms, queries.

What it reproduces (vendors.md §3.1, §7; each shape checked as noted in ``hub_kingdee.client``):
``POST /k3cloud/Kingdee.BOS.WebApi.ServicesStub.{Service}.{Method}.common.kdsvc`` with JSON.

- Logins ``AuthService.ValidateUser`` / ``LoginByAppSecret`` / ``LoginBySign`` (parameters as a
  list, ``{"parameters": [...]}``, or a JSON text of one) answer ``LoginResultType: 1``, a
  ``Context`` and ``KDSVCSessionId``, and set the cookies ``kdservice-sessionid`` and
  ``ASP.NET_SessionId``. A session lapses after ``session_idle`` seconds without a call (about
  20 minutes at Kingdee); :meth:`KingdeeSimulator.expire_sessions` ends them all now. A business
  call without a live session (or valid v8 signed headers, which need no login) answers
  ``MsgCode: 1`` "会话信息已丢失，请重新登录" and does nothing.
- Forms ``BD_Empinfo`` (employees, with the demo tenant's custom fields ``F_HUB_BankAccount``
  and ``F_HUB_Salary``), ``BD_Department`` and ``ORG_Organizations``: ``Save`` (``FID`` 0 creates;
  the number must be unique; required fields, base-data references ``{"FNumber": ...}`` and the
  custom fields are validated, answering ``MsgCode 11`` with each ``FieldName``), ``Submit``
  (``A``/``D`` -> ``B``), ``Audit`` (``B`` -> ``C``; anything else is refused), ``UnAudit``
  (``C`` -> ``D``), ``CancelAssign`` (``B`` -> ``A``), ``Delete`` (``Z``/``A``/``D`` only), ``View``,
  ``ExcuteOperation`` ``Forbid``/``Enable``, and ``ExecuteBillQuery`` (``FieldKeys`` with
  ``FDeptId.FNumber`` references, a ``FilterString`` of ``Field op value`` terms joined by
  ``and``, ``OrderString``, ``StartRow``/``Limit``/``TopRowCount``; errors wrapped ``[[...]]``).
- Faults: the base :class:`~hub.sandbox.base.Faults` (5xx answered as IIS's HTML page), a rate
  limit answered ``MsgCode 14``, and the base ``lose_replies`` / ``drop_replies`` (Kingdee does
  the write, the answer is lost; ``path`` names the method between dots: ``.Save.``, ``.Audit.``).

Assumed, not documented where we looked [M]: the wording of validation and state messages,
``LoginResultType -1`` for refused logins, ``MsgCode 10`` for an unknown record, ``MsgCode 11``
for operation validators, ``MsgCode 14`` (the table's 调用限制) for a rate limit, and that
``Save`` ignores fields its form does not know.
"""

from __future__ import annotations

import base64
import codecs
import hashlib
import hmac
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import quote

import orjson

from hub.sandbox.base import Faults, RateLimit, Request, Response, Simulator, iso
from hub.sandbox.base import route as _base_route
from hub.sandbox.people import DEPARTMENTS, people

PREFIX = "/k3cloud"
STUB = "Kingdee.BOS.WebApi.ServicesStub"
DEFAULT_ACCT_ID = "65a0sim00000001"
DEFAULT_USERNAME = "hub-integration"
DEFAULT_PASSWORD = "sim-kingdee-password"  # noqa: S105 - a simulator credential
DEFAULT_CLIENT_ID = "300001"
#: the decoded v8 client secret (24 bytes, base64: 32 characters, as Kingdee's are)
DEFAULT_CLIENT_SECRET = base64.b64encode(b"sim-kingdee-client-secr!").decode()
DEFAULT_APP_SECRET = "sim0kingdee0app0secret0000000001"  # noqa: S105 - a simulator credential
DEFAULT_ORG = "100"
SESSION_IDLE_S = 1200.0
SESSION_LOST = "会话信息已丢失，请重新登录"

EMPLOYEE_FORM = "BD_Empinfo"
DEPARTMENT_FORM = "BD_Department"
ORG_FORM = "ORG_Organizations"
BANK_FIELD = "F_HUB_BankAccount"
SALARY_FIELD = "F_HUB_Salary"
DEPARTMENT_CODES = ("RD", "DATA", "FIN", "HR", "MKT")
#: FDocumentStatus
DRAFT, CREATED, SUBMITTED, AUDITED, REAUDIT = "Z", "A", "B", "C", "D"
#: fields every form answers in ExecuteBillQuery
STANDARD_FIELDS = ("FID", "FDocumentStatus", "FForbidStatus", "FCreateDate", "FModifyDate", "FApproveDate")
_XOR_PAD = codecs.encode("0054s397p6234378o09pn7q3r5qropr7", "rot13").encode()

_Handler = Callable[["KingdeeSimulator", Request], Response]


def route(method: str, pattern: str) -> Callable[[_Handler], _Handler]:
    """The base :func:`~hub.sandbox.base.route`, typed for this simulator's handlers."""
    return cast(Callable[[_Handler], _Handler], _base_route(method, pattern))


def stub(service: str, method: str) -> str:
    return f"{PREFIX}/{STUB}.{service}.{method}.common.kdsvc"


def encode_client_secret(secret: str) -> str:
    """The SDK's obfuscation of a v8 client secret (XOR with a fixed pad; its own inverse)."""
    raw = base64.b64decode(secret)
    return base64.b64encode(bytes(b ^ _XOR_PAD[i % len(_XOR_PAD)] for i, b in enumerate(raw))).decode()


def _hex_hmac_b64(secret: str, message: str) -> str:
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return base64.b64encode(digest.encode()).decode()


def response_status(
    ok: bool,
    *,
    code: int = 0,
    errors: list[tuple[str | None, str, int]] | None = None,
    entities: list[tuple[int, str, int]] | None = None,
) -> dict[str, Any]:
    """Kingdee's ``ResponseStatus``: errors as (FieldName, Message, DIndex), entities as (Id, Number, DIndex)."""
    return {
        "ErrorCode": 0 if ok else 500,
        "IsSuccess": ok,
        "Errors": [{"FieldName": f, "Message": m, "DIndex": i} for f, m, i in errors or []],
        "SuccessEntitys": [{"Id": fid, "Number": n, "DIndex": i} for fid, n, i in entities or []],
        "SuccessMessages": [],
        "MsgCode": code,
    }


def failure(code: int, message: str, field_name: str | None = None) -> Response:
    return Response(
        200,
        {"Result": {"ResponseStatus": response_status(False, code=code, errors=[(field_name, message, 0)])}},
    )


@dataclass(frozen=True)
class FormDef:
    """A form of the simulated tenant: its fields (key -> caption), references and rules."""

    form_id: str
    title: str
    fields: dict[str, str]
    #: field -> the form its ``{"FNumber": ...}`` refers to
    base_data: dict[str, str] = field(default_factory=dict)
    required: tuple[str, ...] = ("FNumber", "FName")


FORMS: dict[str, FormDef] = {
    EMPLOYEE_FORM: FormDef(
        EMPLOYEE_FORM,
        "员工",
        {
            "FNumber": "员工编号",
            "FName": "员工姓名",
            "FStaffNumber": "员工工号",
            "FDeptId": "部门",
            "FCreateOrgId": "创建组织",
            "FUseOrgId": "使用组织",
            "FMobile": "移动电话",
            "FEmail": "电子邮箱",
            "FJoinDate": "入职日期",
            BANK_FIELD: "银行账号",
            SALARY_FIELD: "月薪",
        },
        {"FDeptId": DEPARTMENT_FORM, "FCreateOrgId": ORG_FORM, "FUseOrgId": ORG_FORM},
    ),
    DEPARTMENT_FORM: FormDef(
        DEPARTMENT_FORM,
        "部门",
        {"FNumber": "编码", "FName": "名称", "FCreateOrgId": "创建组织", "FUseOrgId": "使用组织"},
        {"FCreateOrgId": ORG_FORM, "FUseOrgId": ORG_FORM},
    ),
    ORG_FORM: FormDef(ORG_FORM, "组织机构", {"FNumber": "编码", "FName": "名称"}),
}


@dataclass
class Bill:
    """One record of a form."""

    fid: int
    number: str
    model: dict[str, Any]
    status: str = CREATED
    forbid: str = "A"
    created: float = 0.0
    modified: float = 0.0
    approved: float | None = None


@dataclass
class Session:
    """A login's session: its two cookies and when it was last used."""

    kdsvc: str
    asp: str
    username: str
    last_used: float
    alive: bool = True


_CONDITION_RE = re.compile(
    r"\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?)\s*(=|<>|!=|>=|<=|>|<)\s*('(?:[^']|'')*'|-?\d+(?:\.\d+)?)\s*", re.S
)
_AND_RE = re.compile(r"and\b", re.I)
_ORDER_RE = re.compile(r"^\s*([A-Za-z_]\w*)(?:\s+(asc|desc))?\s*$", re.I)
_DIGITS_RE = re.compile(r"^\d{12,19}$")


def parse_filter(text: str) -> list[tuple[str, str, Any]] | None:
    """``FNumber='E1' and FID>3`` -> [(key, op, value)]; ``None`` when Kingdee could not read it."""
    conditions: list[tuple[str, str, Any]] = []
    text = text.strip()
    position = 0
    while position < len(text):
        match = _CONDITION_RE.match(text, position)
        if match is None:
            return None
        key, op, raw = match.groups()
        value: Any = raw[1:-1].replace("''", "'") if raw.startswith("'") else float(raw)
        conditions.append((key, op, value))
        position = match.end()
        if position < len(text):
            joined = _AND_RE.match(text, position)
            if joined is None:
                return None
            position = joined.end()
    return conditions


def _compare(left: Any, op: str, right: Any) -> bool:
    if isinstance(right, float):
        try:
            left = float(left)
        except (TypeError, ValueError):
            return False
    else:
        left = "" if left is None else str(left)
    if op == "=":
        return bool(left == right)
    if op in ("<>", "!="):
        return bool(left != right)
    return bool({">": left > right, "<": left < right, ">=": left >= right, "<=": left <= right}[op])


class KingdeeSimulator(Simulator):
    """Kingdee K3Cloud WebAPI on loopback: one data centre, one integration user, ``count`` employees."""

    vendor = "kingdee"

    def __init__(
        self,
        *,
        count: int = 25,
        seed: int = 1,
        acct_id: str = DEFAULT_ACCT_ID,
        username: str = DEFAULT_USERNAME,
        password: str = DEFAULT_PASSWORD,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        app_secret: str = DEFAULT_APP_SECRET,
        session_idle: float = SESSION_IDLE_S,
        port: int = 0,
        rate_limit: RateLimit | None = None,
        faults: Faults | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(port=port, rate_limit=rate_limit, faults=faults, clock=clock)
        self.acct_id = acct_id
        self.username = username
        self.password = password
        self.client_id = client_id
        self.client_secret = client_secret
        #: the app of 第三方系统登录授权: ``<clientId>_<encoded client secret>`` (v8 format)
        self.app_id = f"{client_id}_{encode_client_secret(client_secret)}"
        self.app_secret = app_secret
        self.session_idle = session_idle
        self.sessions: dict[str, Session] = {}
        self.forms: dict[str, dict[int, Bill]] = {form: {} for form in FORMS}
        #: employees created through the API (the seeded ones are not counted)
        self.employees = 0
        #: employees audited through the API
        self.audited = 0
        self.logins = 0
        self._serial = 100000
        self._seed(count, seed)

    # -- generated data ----------------------------------------------------------------------

    def _add(self, form_id: str, number: str, model: dict[str, Any], status: str = AUDITED) -> Bill:
        self._serial += 1
        now = self.clock()
        bill = Bill(self._serial, number, {**model, "FNumber": number}, status, created=now, modified=now)
        self.forms[form_id][bill.fid] = bill
        return bill

    def _seed(self, count: int, seed: int) -> None:
        org = {"FNumber": DEFAULT_ORG}
        self._add(ORG_FORM, DEFAULT_ORG, {"FName": "模拟集团"})
        for code, name in zip(DEPARTMENT_CODES, DEPARTMENTS, strict=True):
            self._add(DEPARTMENT_FORM, code, {"FName": name, "FCreateOrgId": org, "FUseOrgId": org})
        for person in people(count, seed):
            code = DEPARTMENT_CODES[person.index % len(DEPARTMENT_CODES)]
            self._add(
                EMPLOYEE_FORM,
                f"E{person.index:05d}",
                {
                    "FName": person.name,
                    "FDeptId": {"FNumber": code},
                    "FCreateOrgId": org,
                    "FUseOrgId": org,
                    "FMobile": person.phone,
                    "FEmail": person.email,
                },
            )

    @classmethod
    def for_sandbox(cls, *, port: int, seed: int, size: int) -> KingdeeSimulator:
        return cls(port=port, seed=seed, count=size)

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "server_url": f"{self.url}{PREFIX}",
            "acct_id": self.acct_id,
            "username": self.username,
            "password": self.password,
            "app_id": self.app_id,
            "app_secret": self.app_secret,
            "org_number": DEFAULT_ORG,
            "employee_form": EMPLOYEE_FORM,
            "custom_fields": {"bank_account": BANK_FIELD, "salary": SALARY_FIELD},
            "departments": list(DEPARTMENT_CODES),
            "employees": len(self.forms[EMPLOYEE_FORM]),
        }

    def employee(self, number: str) -> Bill | None:
        """The employee with this number (tests)."""
        with self._lock:
            return next((b for b in self.forms[EMPLOYEE_FORM].values() if b.number == number), None)

    # -- faults ------------------------------------------------------------------------------

    def expire_sessions(self) -> None:
        """End every session now (the integration user idle past Kingdee's timeout)."""
        with self._lock:
            for session in self.sessions.values():
                session.alive = False

    def dispatch(self, request: Request) -> Response:
        response = super().dispatch(request)
        if request.path.endswith(".ExecuteBillQuery.common.kdsvc") and isinstance(response.body, dict):
            response = Response(response.status, [[response.body]], response.headers)  # Kingdee wraps it
        return response

    def throttled(self, retry_after: float) -> Response:
        return failure(14, "接口调用超出限流阈值，请稍后再试")

    def server_error(self, status: int) -> Response:
        page = f"<html><head><title>{status}</title></head><body>Server Error</body></html>"
        return Response(status, page.encode(), {"Content-Type": "text/html"})

    # -- sessions and signatures ---------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        if ".AuthService." in request.path:
            return None
        if self._session_of(request) is not None or self._signature_valid(request):
            return None
        return failure(1, SESSION_LOST)

    def _session_of(self, request: Request) -> Session | None:
        cookies = {}
        for part in request.headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            cookies[name] = value
        key = cookies.get("kdservice-sessionid") or request.headers.get("kdservice-sessionid", "")
        now = self.clock()
        with self._lock:
            session = self.sessions.get(key)
            if session is None or not session.alive or now - session.last_used > self.session_idle:
                return None
            asp = cookies.get("ASP.NET_SessionId")
            if asp is not None and asp != session.asp:
                return None
            session.last_used = now
            return session

    def _signature_valid(self, request: Request) -> bool:
        """The v8 signed headers: ``X-Kd-*`` always, ``X-Api-*`` for an app id with a client part."""
        headers = request.headers
        app_key = headers.get("x-kd-appkey", "")
        app_data_b64 = headers.get("x-kd-appdata", "")
        if app_key != self.app_id or not app_data_b64:
            return False
        try:
            app_data = base64.b64decode(app_data_b64).decode()
        except ValueError:
            return False
        acct, user, *_ = [*app_data.split(","), "", ""]
        expected = _hex_hmac_b64(self.app_secret, app_key + app_data)
        if acct != self.acct_id or user != self.username:
            return False
        if not hmac.compare_digest(headers.get("x-kd-signature", ""), expected):
            return False
        nonce, stamp = headers.get("x-api-nonce", ""), headers.get("x-api-timestamp", "")
        if headers.get("x-api-clientid") != self.client_id or not nonce or not stamp:
            return False
        message = f"POST\n{quote(request.path, safe='')}\n\nx-api-nonce:{nonce}\nx-api-timestamp:{stamp}\n"
        return hmac.compare_digest(
            headers.get("x-api-signature", ""), _hex_hmac_b64(self.client_secret, message)
        )

    def _login_parameters(self, request: Request, names: tuple[str, ...]) -> list[Any] | None:
        body = request.json() if request.body else {}
        if not isinstance(body, dict):
            return None
        parameters = body.get("parameters")
        if isinstance(parameters, str):
            try:
                parameters = orjson.loads(parameters)
            except orjson.JSONDecodeError:
                return None
        if parameters is None:  # named keys, as some SDKs send them
            lowered = {str(k).lower(): v for k, v in body.items()}
            parameters = [lowered.get(name.lower()) for name in names]
        return list(parameters) if isinstance(parameters, list) else None

    def _login(self, ok: bool, message: str) -> Response:
        if not ok:
            return Response(
                200, {"Message": message, "MessageCode": "CheckPasswordPolicy", "LoginResultType": -1}
            )
        with self._lock:
            self.logins += 1
            session = Session(uuid.uuid4().hex, uuid.uuid4().hex[:24], self.username, self.clock())
            self.sessions[session.kdsvc] = session
        body = {
            "Message": None,
            "MessageCode": "CheckPasswordPolicy",
            "LoginResultType": 1,
            "Context": {
                "UserLocale": "zh-CN",
                "LogLocale": "zh-CN",
                "DBid": self.acct_id,
                "DatabaseType": 3,
                "SessionId": session.asp,
                "UserId": 100001,
                "UserName": self.username,
            },
            "KDSVCSessionId": session.kdsvc,
            "IsSuccessByAPI": True,
        }
        # two Set-Cookie headers: the header dict's keys differ only in case (HTTP does not care)
        return Response(
            200,
            body,
            {
                "Set-Cookie": f"kdservice-sessionid={session.kdsvc}; path=/",
                "set-cookie": f"ASP.NET_SessionId={session.asp}; path=/; HttpOnly",
            },
        )

    def _user_ok(self, acct: Any, user: Any) -> str:
        if str(acct) != self.acct_id:
            return "数据中心不存在，请检查账套ID"
        if str(user) != self.username:
            return "用户名或密码错误！"
        return ""

    @route("POST", stub("AuthService", "ValidateUser"))
    def validate_user(self, request: Request) -> Response:
        p = self._login_parameters(request, ("acctid", "username", "password", "lcid"))
        if p is None or len(p) < 3:
            return self._login(False, "登录参数不正确")
        refused = self._user_ok(p[0], p[1]) or ("" if p[2] == self.password else "用户名或密码错误！")
        return self._login(not refused, refused)

    @route("POST", stub("AuthService", "LoginByAppSecret"))
    def login_by_app_secret(self, request: Request) -> Response:
        p = self._login_parameters(request, ("acctid", "username", "appid", "appsecret", "lcid"))
        if p is None or len(p) < 4:
            return self._login(False, "登录参数不正确")
        valid_app = p[2] == self.app_id and p[3] == self.app_secret
        refused = self._user_ok(p[0], p[1]) or ("" if valid_app else "第三方系统登录授权验证失败")
        return self._login(not refused, refused)

    @route("POST", stub("AuthService", "LoginBySign"))
    def login_by_sign(self, request: Request) -> Response:
        p = self._login_parameters(
            request, ("acctid", "username", "appid", "timestamp", "signeddata", "lcid")
        )
        if p is None or len(p) < 5:
            return self._login(False, "登录参数不正确")
        values = [str(p[0]), str(p[1]), self.app_id, self.app_secret, str(p[3])]
        expected = hashlib.sha256("".join(sorted(values)).encode()).hexdigest()
        valid = p[2] == self.app_id and hmac.compare_digest(str(p[4]), expected)
        refused = self._user_ok(p[0], p[1]) or ("" if valid else "签名验证失败")
        return self._login(not refused, refused)

    # -- form requests -----------------------------------------------------------------------

    def _request_data(self, request: Request) -> tuple[str, dict[str, Any]] | Response:
        """(form id, data) of a business call: ``{"formid", "data"}`` (data as JSON text or object)."""
        try:
            body = request.json() or {}
        except orjson.JSONDecodeError:
            return failure(8, "请求的JSON数据格式不正确")
        if not isinstance(body, dict):
            return failure(8, "请求的JSON数据格式不正确")
        parameters = body.get("parameters")
        form_id, data = body.get("formid"), body.get("data")
        if isinstance(parameters, list) and len(parameters) >= 2:  # the older SDKs' shape
            form_id, data = parameters[0], parameters[1]
        if isinstance(data, str):
            try:
                data = orjson.loads(data)
            except orjson.JSONDecodeError:
                return failure(8, "data数据包格式不正确")
        if not isinstance(data, dict):
            return failure(8, "data数据包不能为空")
        return str(form_id or data.get("FormId") or ""), data

    def _form(self, form_id: str) -> FormDef | Response:
        form = FORMS.get(form_id)
        return form if form is not None else failure(4, f"标识为“{form_id}”的业务对象不存在，或者被删除。")

    def _by_number(self, form_id: str, number: str, exclude: int = 0) -> Bill | None:
        return next(
            (b for b in self.forms[form_id].values() if b.number == number and b.fid != exclude), None
        )

    def _validate(self, form: FormDef, model: dict[str, Any]) -> list[tuple[str | None, str, int]]:
        errors: list[tuple[str | None, str, int]] = []
        for name in form.required:
            if model.get(name) in (None, ""):
                errors.append((name, f"字段“{form.fields[name]}”是必录项", 0))
        for name, target in form.base_data.items():
            ref = model.get(name)
            if ref in (None, "", {}):
                continue
            number = ref.get("FNumber") or ref.get("FNUMBER") if isinstance(ref, dict) else None
            if number is None or self._by_number(target, str(number)) is None:
                errors.append((name, f"字段“{form.fields[name]}”的值“{number}”在基础资料中不存在", 0))
        if form.form_id == EMPLOYEE_FORM:
            bank = model.get(BANK_FIELD)
            if bank not in (None, "") and not _DIGITS_RE.match(str(bank)):
                errors.append((BANK_FIELD, f"银行账号“{bank}”格式不正确，应为12到19位数字", 0))
            salary = model.get(SALARY_FIELD)
            if salary not in (None, ""):
                try:
                    valid = float(salary) >= 0
                except (TypeError, ValueError):
                    valid = False
                if not valid:
                    errors.append((SALARY_FIELD, f"月薪“{salary}”不是有效的金额", 0))
        return errors

    @route("POST", stub("DynamicFormService", "Save"))
    def save(self, request: Request) -> Response:
        parsed = self._request_data(request)
        if isinstance(parsed, Response):
            return parsed
        form_id, data = parsed
        form = self._form(form_id)
        if isinstance(form, Response):
            return form
        model = data.get("Model")
        if not isinstance(model, dict):
            return failure(8, "data数据包中的参数Model的值不能为空。")
        known = {k: v for k, v in model.items() if k in form.fields}
        fid = int(model.get("FID") or 0)
        with self._lock:
            bill = self.forms[form_id].get(fid) if fid else None
            if fid and bill is None:
                return failure(10, f"内码为{fid}的{form.title}不存在或已被删除")
            merged = {**(bill.model if bill else {}), **known}
            errors = self._validate(form, merged)
            number = str(merged.get("FNumber") or "")
            if number and self._by_number(form_id, number, exclude=fid):
                errors.append(("FNumber", f"{form.fields['FNumber']}“{number}”已经被使用，不允许重复", 0))
            if bill is not None and bill.status in (SUBMITTED, AUDITED):
                errors.append((None, f"{form.title}“{bill.number}”已提交或已审核，不允许修改", 0))
            if errors:
                return Response(
                    200, {"Result": {"ResponseStatus": response_status(False, code=11, errors=errors)}}
                )
            if bill is None:
                bill = self._add(form_id, number, merged, CREATED)
                if form_id == EMPLOYEE_FORM:
                    self.employees += 1
            else:
                bill.model, bill.number, bill.modified = merged, number, self.clock()
            if str(data.get("IsAutoSubmitAndAudit")).lower() == "true":
                self._set_status(form_id, bill, AUDITED)
            status = response_status(True, entities=[(bill.fid, bill.number, 0)])
        return Response(
            200,
            {
                "Result": {
                    "ResponseStatus": status,
                    "Id": bill.fid,
                    "Number": bill.number,
                    "NeedReturnData": [{}],
                }
            },
        )

    def _set_status(self, form_id: str, bill: Bill, status: str) -> None:
        bill.status, bill.modified = status, self.clock()
        if status == AUDITED:
            bill.approved = bill.modified
            if form_id == EMPLOYEE_FORM:
                self.audited += 1

    def _targets(self, form_id: str, data: dict[str, Any]) -> list[tuple[int, Bill | None, str]]:
        """(DIndex, record or None, how it was named) for ``Ids`` (a comma text) or ``Numbers``."""
        ids = [i.strip() for i in str(data.get("Ids") or "").split(",") if i.strip()]
        if ids:
            found = []
            for index, raw in enumerate(ids):
                bill = self.forms[form_id].get(int(raw)) if raw.isdigit() else None
                found.append((index, bill, f"内码{raw}"))
            return found
        numbers = data.get("Numbers") or []
        return [(i, self._by_number(form_id, str(n)), f"编码{n}") for i, n in enumerate(numbers)]

    def _operate(
        self,
        request: Request,
        allowed: tuple[str, ...],
        change: Callable[[str, Bill], str | None],
        refusal: str,
    ) -> Response:
        """A status operation: each record in ``allowed`` goes through ``change`` (which may refuse)."""
        parsed = self._request_data(request)
        if isinstance(parsed, Response):
            return parsed
        form_id, data = parsed
        form = self._form(form_id)
        if isinstance(form, Response):
            return form
        errors: list[tuple[str | None, str, int]] = []
        entities: list[tuple[int, str, int]] = []
        with self._lock:
            targets = self._targets(form_id, data)
            if not targets:
                return failure(8, "请指定要操作的单据内码（Ids）或编码（Numbers）")
            for index, bill, named in targets:
                if bill is None:
                    errors.append((None, f"{named}的{form.title}不存在或已被删除", index))
                elif bill.status not in allowed:
                    errors.append((None, refusal.format(title=form.title, number=bill.number), index))
                else:
                    refused = change(form_id, bill)
                    if refused:
                        errors.append((None, refused, index))
                    else:
                        entities.append((bill.fid, bill.number, index))
        if errors:
            code = 10 if all(b is None for _, b, _ in targets) else 11
            status = response_status(False, code=code, errors=errors, entities=entities)
        else:
            status = response_status(True, entities=entities)
        return Response(200, {"Result": {"ResponseStatus": status}})

    @route("POST", stub("DynamicFormService", "Submit"))
    def submit(self, request: Request) -> Response:
        return self._operate(
            request,
            (CREATED, REAUDIT),
            lambda form_id, bill: self._set_status(form_id, bill, SUBMITTED),
            "{title}“{number}”的数据状态不是创建或重新审核，不能提交",
        )

    @route("POST", stub("DynamicFormService", "Audit"))
    def audit(self, request: Request) -> Response:
        return self._operate(
            request,
            (SUBMITTED,),
            lambda form_id, bill: self._set_status(form_id, bill, AUDITED),
            "{title}“{number}”的数据状态不是审核中，不能审核",
        )

    @route("POST", stub("DynamicFormService", "UnAudit"))
    def unaudit(self, request: Request) -> Response:
        return self._operate(
            request,
            (AUDITED,),
            lambda form_id, bill: self._set_status(form_id, bill, REAUDIT),
            "{title}“{number}”不是已审核状态，不能反审核",
        )

    @route("POST", stub("DynamicFormService", "CancelAssign"))
    def cancel_assign(self, request: Request) -> Response:
        return self._operate(
            request,
            (SUBMITTED,),
            lambda form_id, bill: self._set_status(form_id, bill, CREATED),
            "{title}“{number}”不是审核中状态，不能撤销",
        )

    @route("POST", stub("DynamicFormService", "Delete"))
    def delete(self, request: Request) -> Response:
        def remove(form_id: str, bill: Bill) -> None:
            del self.forms[form_id][bill.fid]

        return self._operate(
            request, (DRAFT, CREATED, REAUDIT), remove, "{title}“{number}”已提交或已审核，不能删除"
        )

    @route("POST", stub("DynamicFormService", "ExcuteOperation"))
    def execute_operation(self, request: Request) -> Response:
        body = request.json() or {}
        operation = str(body.get("opNumber") or "") if isinstance(body, dict) else ""
        if operation not in ("Forbid", "Enable"):
            return failure(3, f"操作标识“{operation}”不存在或未启用")
        flag = "B" if operation == "Forbid" else "A"

        def forbid(form_id: str, bill: Bill) -> None:
            bill.forbid, bill.modified = flag, self.clock()

        return self._operate(request, (AUDITED,), forbid, "{title}“{number}”未审核，不能禁用或反禁用")

    @route("POST", stub("DynamicFormService", "View"))
    def view(self, request: Request) -> Response:
        parsed = self._request_data(request)
        if isinstance(parsed, Response):
            return parsed
        form_id, data = parsed
        form = self._form(form_id)
        if isinstance(form, Response):
            return form
        with self._lock:
            fid = str(data.get("Id") or "")
            bill = self.forms[form_id].get(int(fid)) if fid.isdigit() else None
            bill = bill or self._by_number(form_id, str(data.get("Number") or ""))
            if bill is None:
                return failure(10, f"{form.title}不存在或已被删除")
            record = {
                "Id": bill.fid,
                "Number": bill.number,
                "DocumentStatus": bill.status,
                "ForbidStatus": bill.forbid,
                **{k: v for k, v in bill.model.items() if k != "FNumber"},
            }
        return Response(200, {"Result": {"ResponseStatus": None, "Result": record}})

    # -- queries -------------------------------------------------------------------------------

    def _field_value(self, form: FormDef, bill: Bill, key: str) -> Any:
        head, _, sub = key.partition(".")
        standard = {
            "FID": bill.fid,
            "FNumber": bill.number,
            "FDocumentStatus": bill.status,
            "FForbidStatus": bill.forbid,
            "FCreateDate": iso(bill.created),
            "FModifyDate": iso(bill.modified),
            "FApproveDate": iso(bill.approved) if bill.approved is not None else None,
        }
        if head in standard and not sub:
            return standard[head]
        value = bill.model.get(head)
        target = form.base_data.get(head)
        if target is None:
            return value
        number = value.get("FNumber") if isinstance(value, dict) else None
        referenced = self._by_number(target, str(number)) if number is not None else None
        if not sub:
            return referenced.fid if referenced else None
        if sub.upper() == "FNUMBER":
            return number
        return self._field_value(FORMS[target], referenced, sub) if referenced else None

    def _known(self, form: FormDef, key: str) -> bool:
        head, _, sub = key.partition(".")
        if not sub:
            return head in form.fields or head in STANDARD_FIELDS
        target = form.base_data.get(head)
        return target is not None and (sub in FORMS[target].fields or sub in STANDARD_FIELDS)

    @route("POST", stub("DynamicFormService", "ExecuteBillQuery"))
    def execute_bill_query(self, request: Request) -> Response:
        parsed = self._request_data(request)
        if isinstance(parsed, Response):
            return parsed
        form_id, data = parsed
        form = self._form(form_id)
        if isinstance(form, Response):
            return form
        keys = [k.strip() for k in str(data.get("FieldKeys") or "").split(",") if k.strip()]
        if not keys:
            return failure(8, "data数据包中的参数FieldKeys的值不能为空。")
        unknown = next((k for k in keys if not self._known(form, k)), None)
        if unknown is not None:
            return failure(9, f"元数据中标识为{unknown}的字段不存在")
        raw_filter = data.get("FilterString") or ""
        conditions = (
            parse_filter(raw_filter) if isinstance(raw_filter, str) else ([] if not raw_filter else None)
        )
        if conditions is None or any(not self._known(form, key) for key, _, _ in conditions):
            return failure(4, "GetRealExpress error: the filter string cannot be parsed")
        order = _ORDER_RE.match(str(data.get("OrderString") or "FID"))
        if order is None or not self._known(form, order.group(1)):
            return failure(4, "the order string cannot be parsed")
        with self._lock:
            bills = [
                b
                for b in self.forms[form_id].values()
                if all(_compare(self._field_value(form, b, k), op, v) for k, op, v in conditions)
            ]
            bills.sort(
                key=lambda b: (
                    self._field_value(form, b, order.group(1)) is None,
                    self._field_value(form, b, order.group(1)),
                ),
                reverse=(order.group(2) or "").lower() == "desc",
            )
            top = int(data.get("TopRowCount") or 0)
            if top > 0:
                bills = bills[:top]
            start = max(int(data.get("StartRow") or 0), 0)
            limit = int(data.get("Limit") or 0)
            page = bills[start : start + limit] if limit > 0 else bills[start:]
            rows = [[self._field_value(form, b, k) for k in keys] for b in page]
        return Response(200, rows)
