"""A simulator of e签宝 (eSign) Open API v3: signed requests, file upload, sign flows, callbacks.

It is not e签宝: every answer carries ``X-Hub-Simulator: esign``, and the "signed" file is the
uploaded one with a trailer saying the simulator signed it (no PDF conversion, no seal).

What it reproduces (shapes as checked in ``hub_esign.client``): every API call must carry
``X-Tsign-Open-App-Id``, ``X-Tsign-Open-Auth-Mode: Signature``, a fresh ``X-Tsign-Open-Ca-Timestamp``
(ms, within 15 minutes) and ``X-Tsign-Open-Ca-Signature``, verified with
:func:`hub.callbacks.hmac_schemes.verify_esign_request` (Content-MD5 recomputed from the body):
otherwise HTTP 401. Answers are ``{code, message, data}`` (``code`` 0 on success, e签宝's
1435xxx/1437xxx business codes otherwise, HTTP 200). Files: ``file-upload-url`` -> a PUT URL on
the simulator (``Content-MD5`` must match the announced ``contentMd5``), ``GET /v3/files/{id}``
reports ``fileStatus`` 1 (processing) on the first poll after the upload, then 2 (a PDF) or 5
(converted). Flows: ``create-by-file`` (the file must be ready: 1437513; a person cannot
auto-sign: 1435002), ``sign-flow-list`` (dates required, at most a year apart, ``operator``
filter), ``detail``, ``sign-url``, ``revoke`` (1437203 / 1437168), ``file-download-url`` (1437518
until done) and the download itself.

Signing: ``signing_delay`` seconds after a flow starts, the employee signs (or refuses, with
``signing_outcome = "refuse"``); the flow then finishes (status 2, or 7) and two events are
queued: ``SIGN_MISSON_COMPLETE`` (the signer) and ``SIGN_FLOW_COMPLETE``. A revoke queues
``SIGN_FLOW_COMPLETE`` with status 3. :meth:`EsignSimulator.deliver_callbacks` POSTs them signed
the e签宝 way (``X-Tsign-Open-TIMESTAMP`` ms, hex HMAC-SHA256 over timestamp + the target URL's
query values + body), to ``url``, else ``callback_url`` (``HUB_SANDBOX_CALLBACK_URL`` for
``hub sandbox start``), else the flow's ``notifyUrl``; optionally repeating or reversing them. A
delivery answered with anything but 200 stays queued. Faults: the base :class:`Faults`,
:meth:`lose_replies` and :meth:`drop_replies` (e签宝 did the write, the answer is lost).
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
import requests

from hub.callbacks import SignatureError
from hub.callbacks.hmac_schemes import esign_callback_headers, verify_esign_request
from hub.sandbox.base import Faults, RateLimit, Request, Response, Simulator
from hub.sandbox.base import route as _base_route

DEFAULT_APP_ID = "7439000000"
DEFAULT_APP_SECRET = "sim-esign-app-secret"  # noqa: S105 - a simulator credential
DEFAULT_ORG = "模拟科技有限公司"
OSS = "/sim-oss"
MAX_SKEW_MS = 15 * 60 * 1000
DRAFT, SIGNING, DONE, REVOKED, EXPIRED, REFUSED = 0, 1, 2, 3, 5, 7
STATUS_TEXT = {DONE: "完成", REVOKED: "撤销", EXPIRED: "过期", REFUSED: "拒签"}

_Handler = Callable[["EsignSimulator", Request], Response]


def route(method: str, pattern: str) -> Callable[[_Handler], _Handler]:
    """The base :func:`~hub.sandbox.base.route`, typed for this simulator's handlers."""
    return cast(Callable[[_Handler], _Handler], _base_route(method, pattern))


def _ok(data: Any = None) -> Response:
    return Response(200, {"code": 0, "message": "成功", "data": data})


def _err(code: int, message: str) -> Response:
    return Response(200, {"code": code, "message": message, "data": None})


@dataclass
class SimFile:
    file_id: str
    file_name: str
    content_md5: str
    size: int
    convert: bool
    token: str
    content: bytes | None = None
    polls: int = 0

    @property
    def status(self) -> int:
        if self.content is None:
            return 0
        if self.polls <= 1:
            return 1
        return 5 if self.convert else 2


@dataclass
class SimFlow:
    flow_id: str
    title: str
    file_id: str
    file_name: str
    notify_url: str
    signers: list[dict[str, Any]]
    account: str
    created_ms: int
    sign_at: float
    status: int = SIGNING
    finished_ms: int | None = None
    revoke_reason: str = ""
    signer_status: int = 0  # 0 waiting, 2 signed, 4 refused
    download_token: str = field(default_factory=lambda: secrets.token_hex(8))

    def info(self) -> dict[str, Any]:
        return {
            "signFlowId": self.flow_id,
            "signFlowTitle": self.title,
            "signFlowStatus": self.status,
            "signFlowStartTime": self.created_ms,
            "signFlowEndTime": self.finished_ms,
            "rescissionStatus": 0,
            "signFlowInitiator": {"orgInitiator": {"orgName": DEFAULT_ORG}},
            "signers": [
                {
                    "signOrder": 1,
                    "signStatus": self.signer_status,
                    "psnSigner": {"psnAccount": {"accountMobile": self.account}},
                }
            ],
        }


@dataclass
class CallbackEvent:
    """One event queued for delivery; its body and signature are made once, so copies are exact."""

    seq: int
    flow_id: str
    action: str
    due: float
    body: bytes
    timestamp_ms: str
    delivered: bool = False
    attempts: int = 0


@dataclass
class Delivery:
    flow_id: str
    action: str
    http_status: int | None
    accepted: bool


class EsignSimulator(Simulator):
    """e签宝's v3 contract signing on loopback: signed requests, uploads, sign flows, callbacks."""

    vendor = "esign"
    public_paths = (OSS + "/",)

    def __init__(
        self,
        *,
        app_id: str = DEFAULT_APP_ID,
        app_secret: str = DEFAULT_APP_SECRET,
        signing_delay: float = 2.0,
        signing_outcome: str = "sign",
        callback_url: str | None = None,
        auto_deliver: bool = False,
        port: int = 0,
        rate_limit: RateLimit | None = None,
        faults: Faults | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(port=port, rate_limit=rate_limit, faults=faults, clock=clock)
        if signing_outcome not in ("sign", "refuse"):
            raise ValueError("signing_outcome is 'sign' or 'refuse'")
        self.app_id = app_id
        self.app_secret = app_secret
        self.signing_delay = signing_delay
        self.signing_outcome = signing_outcome
        self.callback_url = callback_url
        self.auto_deliver = auto_deliver or bool(callback_url)
        self.files: dict[str, SimFile] = {}
        self.flows: dict[str, SimFlow] = {}
        self.events: list[CallbackEvent] = []
        self.deliveries: list[Delivery] = []
        #: copies of each event by flow id ("*": every flow), and newest first, when not told
        self.callback_repeat: dict[str, int] = {}
        self.callback_reverse = False
        #: sign flows created through the API, and those signed
        self.contracts = 0
        self.signed = 0
        self._serial = 0

    @classmethod
    def for_sandbox(cls, *, port: int, seed: int, size: int) -> EsignSimulator:
        return cls(port=port, callback_url=os.environ.get("HUB_SANDBOX_CALLBACK_URL"), auto_deliver=True)

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "base_url": self.url,
            "app_id": self.app_id,
            "app_secret": self.app_secret,
            "signing_delay_seconds": self.signing_delay,
            "callback_url": self.callback_url
            or "the flow's notifyUrl (set HUB_SANDBOX_CALLBACK_URL to override)",
        }

    # -- lifecycle: callbacks in the background ------------------------------------------------

    # -- faults, auth, envelopes ----------------------------------------------------------------

    def throttled(self, retry_after: float) -> Response:
        return Response(429, {"code": 429, "message": "请求过于频繁"})

    def server_error(self, status: int) -> Response:
        return Response(status, {"code": status, "message": "系统繁忙"})

    def authenticate(self, request: Request) -> Response | None:
        headers = request.headers
        if headers.get("x-tsign-open-app-id") != self.app_id:
            return Response(401, {"code": 401, "message": "appId无效"})
        if headers.get("x-tsign-open-auth-mode", "").lower() != "signature":
            return Response(401, {"code": 401, "message": "鉴权模式无效"})
        stamp = headers.get("x-tsign-open-ca-timestamp", "")
        if not stamp.isdigit() or abs(int(stamp) - int(self.clock() * 1000)) > MAX_SKEW_MS:
            return Response(401, {"code": 401, "message": "时间戳无效"})
        query = {key: values[0] for key, values in request.query.items()}
        try:
            verify_esign_request(self.app_secret, request.method, request.path, headers, request.body, query)
        except SignatureError:
            return Response(401, {"code": 401, "message": "签名校验失败"})
        return None

    def _next_id(self) -> str:
        self._serial += 1
        return hashlib.sha256(f"esign-sim-{self._serial}-{self.app_id}".encode()).hexdigest()[:32]

    # -- files ----------------------------------------------------------------------------------

    @route("POST", "/v3/files/file-upload-url")
    def file_upload_url(self, request: Request) -> Response:
        body = request.json() or {}
        md5, name = str(body.get("contentMd5") or ""), str(body.get("fileName") or "")
        if not md5 or not name or "." not in name or not int(body.get("fileSize") or 0):
            return _err(1435002, "参数错误: contentMd5、fileName、fileSize不能为空")
        with self._lock:
            file_id = self._next_id()
            token = secrets.token_hex(8)
            self.files[file_id] = SimFile(
                file_id, name, md5, int(body["fileSize"]), bool(body.get("convertToPDF")), token
            )
        return _ok({"fileId": file_id, "fileUploadUrl": f"{self.url}{OSS}/upload/{file_id}?token={token}"})

    @route("PUT", OSS + "/upload/{file_id}")
    def upload(self, request: Request) -> Response:
        with self._lock:
            sim_file = self.files.get(request.params["file_id"])
            if sim_file is None or request.arg("token") != sim_file.token:
                return Response(403, {"errCode": 403, "msg": "签名无效"})
            received = base64.b64encode(hashlib.md5(request.body, usedforsecurity=False).digest()).decode()
            if request.headers.get("content-md5") != sim_file.content_md5 or received != sim_file.content_md5:
                return Response(400, {"errCode": 400, "msg": "Content-MD5不匹配"})
            sim_file.content = request.body
        return Response(200, {"errCode": 0, "msg": "成功"})

    @route("GET", "/v3/files/{file_id}")
    def file_status(self, request: Request) -> Response:
        with self._lock:
            sim_file = self.files.get(request.params["file_id"])
            if sim_file is None:
                return _err(1435011, "文件不存在")
            if sim_file.content is not None:
                sim_file.polls += 1
            return _ok(
                {"fileId": sim_file.file_id, "fileName": sim_file.file_name, "fileStatus": sim_file.status}
            )

    # -- sign flows -----------------------------------------------------------------------------

    @route("POST", "/v3/sign-flow/create-by-file")
    def create_by_file(self, request: Request) -> Response:
        body = request.json() or {}
        config = body.get("signFlowConfig") or {}
        docs = body.get("docs") or []
        signers = body.get("signers") or []
        title = str(config.get("signFlowTitle") or "")
        if not title or any(c in title for c in '/\\:*"<>|？'):
            return _err(1435002, "参数错误: signFlowTitle不合法")
        if not docs or not signers:
            return _err(1435011, "流程自动开启的场景文档和签署人信息不能为空")
        if len(signers) > 10:
            return _err(1437608, "流程创建签署人或签署主体个数超过数量限制，最多允许创建10个。")
        file_id = str(docs[0].get("fileId") or "")
        account = ""
        with self._lock:
            sim_file = self.files.get(file_id)
            if sim_file is None:
                return _err(1435002, "参数错误: 文件id不存在")
            if sim_file.status not in (2, 5):
                return _err(1437513, "文档未成功转换成pdf, 请稍后重试")
            for signer in signers:
                fields = signer.get("signFields") or []
                if not fields:
                    return _err(1435002, "参数错误: 签署区信息不能为空")
                if any(f.get("fileId") != file_id for f in fields):
                    return _err(1435002, "参数错误: 文件id不在签署流程中")
                if signer.get("signerType") == 0:
                    info = signer.get("psnSignerInfo") or {}
                    account = str(info.get("psnAccount") or "")
                    if not account or not (info.get("psnInfo") or {}).get("psnName"):
                        return _err(1435002, "参数错误: 个人签署方psnAccount与psnName不能为空")
                    if any((f.get("normalSignFieldConfig") or {}).get("autoSign") for f in fields):
                        return _err(1435002, "参数错误: 个人签署不支持自动签署")
            if not account:
                return _err(1435002, "参数错误: 缺少个人签署方")
            expire = int(config.get("signFlowExpireTime") or 0)
            now_ms = int(self.clock() * 1000)
            if expire and expire > now_ms + 90 * 86_400_000:
                return _err(1435002, "参数错误: 签署截止时间signFlowExpireTime不能超过发起后90天")
            flow_id = self._next_id()
            self.flows[flow_id] = SimFlow(
                flow_id=flow_id,
                title=title,
                file_id=file_id,
                file_name=str(docs[0].get("fileName") or sim_file.file_name),
                notify_url=str(config.get("notifyUrl") or ""),
                signers=[dict(s) for s in signers],
                account=account,
                created_ms=now_ms,
                sign_at=self.clock() + self.signing_delay,
            )
            self.contracts += 1
        return _ok({"signFlowId": flow_id})

    @route("POST", "/v3/sign-flow/sign-flow-list")
    def flow_list(self, request: Request) -> Response:
        self._settle()
        body = request.json() or {}
        try:
            page, size = int(body["pageNum"]), int(body["pageSize"])
        except (KeyError, TypeError, ValueError):
            return _err(1435002, "参数错误: pageNum、pageSize不能为空")
        if page < 1 or not 1 <= size <= 100:
            return _err(1435002, "参数错误: pageSize取值范围[1~100]")
        start, end = body.get("signFlowStartTimeFrom"), body.get("signFlowStartTimeTo")
        if start is None or end is None:
            return _err(1435002, "参数错误: 发起签署流程的时间区间和完结签署流程的时间区间不可同时为空")
        if int(end) - int(start) > 366 * 86_400_000:
            return _err(1435002, "参数错误: 开始时间到结束时间的时间范围最长不可超过1年")
        statuses = set(body.get("signFlowStatus") or [])
        account = str((body.get("operator") or {}).get("psnAccount") or "")
        with self._lock:
            found = [
                flow.info()
                for flow in self.flows.values()
                if int(start) <= flow.created_ms <= int(end)
                and (not statuses or flow.status in statuses)
                and (not account or flow.account == account)
            ]
        return _ok({"total": len(found), "signFlowInfos": found[(page - 1) * size : page * size]})

    def _flow(self, request: Request) -> SimFlow | None:
        self._settle()
        return self.flows.get(request.params["flow_id"])

    @route("GET", "/v3/sign-flow/{flow_id}/detail")
    def flow_detail(self, request: Request) -> Response:
        with self._lock:
            flow = self._flow(request)
            if flow is None:
                return _err(1435011, f"流程不存在:{request.params['flow_id']}")
            signers = []
            for signer in flow.signers:
                copy = {k: v for k, v in signer.items() if k != "signFields"}
                copy["signStatus"] = (
                    flow.signer_status if signer.get("signerType") == 0 else (2 if flow.status == DONE else 0)
                )
                copy["signFields"] = [
                    {
                        "signFieldId": f"{flow.flow_id}-{i}",
                        "signFieldStatus": "4" if flow.status == DONE else "0",
                        "customBizNum": f.get("customBizNum"),
                        "fileId": f.get("fileId"),
                    }
                    for i, f in enumerate(signer.get("signFields") or [])
                ]
                signers.append(copy)
            return _ok(
                {
                    "signFlowStatus": flow.status,
                    "signFlowDescription": STATUS_TEXT.get(flow.status, "签署中"),
                    "revokeReason": flow.revoke_reason or None,
                    "signFlowCreateTime": flow.created_ms,
                    "signFlowStartTime": flow.created_ms,
                    "signFlowFinishTime": flow.finished_ms,
                    "signFlowConfig": {
                        "signFlowTitle": flow.title,
                        "autoFinish": True,
                        "notifyUrl": flow.notify_url,
                    },
                    "docs": [{"fileId": flow.file_id, "fileName": flow.file_name}],
                    "signers": signers,
                }
            )

    @route("POST", "/v3/sign-flow/{flow_id}/sign-url")
    def sign_url(self, request: Request) -> Response:
        operator = ((request.json() or {}).get("operator") or {}).get("psnAccount")
        with self._lock:
            flow = self._flow(request)
            if flow is None:
                return _err(1435011, f"流程不存在:{request.params['flow_id']}")
            if flow.status != SIGNING and flow.status != DONE:
                return _err(1437103, "流程未开启")
            if operator != flow.account:
                return _err(1437114, "当前用户不是流程参与人, 无权查看流程")
            short = f"{self.url}/sim-sign/{flow.flow_id[:8]}"
            return _ok({"url": f"{self.url}/sim-sign/{flow.flow_id}?from=hub", "shortUrl": short})

    @route("POST", "/v3/sign-flow/{flow_id}/revoke")
    def revoke(self, request: Request) -> Response:
        reason = str((request.json() or {}).get("revokeReason") or "")
        if len(reason) > 50:
            return _err(1435002, "参数错误: revokeReason不能超过50个字")
        with self._lock:
            flow = self._flow(request)
            if flow is None:
                return _err(1435011, f"流程不存在:{request.params['flow_id']}")
            if flow.status == REVOKED:
                return _err(1437168, "流程已撤销")
            if flow.status != SIGNING:
                return _err(1437203, "非签署中的流程不允许撤销")
            flow.status, flow.revoke_reason = REVOKED, reason
            flow.finished_ms = int(self.clock() * 1000)
            self._queue_complete(flow)
        return _ok(None)

    @route("POST", "/v3/sign-flow/{flow_id}/file-download-url")
    def download_url(self, request: Request) -> Response:
        with self._lock:
            flow = self._flow(request)
            if flow is None:
                return _err(1435011, f"流程不存在:{request.params['flow_id']}")
            if flow.status != DONE:
                return _err(1437518, "流程非签署完成状态，不允许下载文档")
            url = f"{self.url}{OSS}/download/{flow.flow_id}?token={flow.download_token}"
            return _ok(
                {
                    "files": [{"fileId": flow.file_id, "fileName": flow.file_name, "downloadUrl": url}],
                    "attachments": [],
                }
            )

    @route("GET", OSS + "/download/{flow_id}")
    def download(self, request: Request) -> Response:
        with self._lock:
            flow = self.flows.get(request.params["flow_id"])
            if flow is None or request.arg("token") != flow.download_token or flow.status != DONE:
                return Response(403, b"AccessDenied", {"Content-Type": "application/xml"})
            content = self.signed_content(flow)
        media = "application/pdf" if content.startswith(b"%PDF") else "text/html; charset=utf-8"
        return Response(200, content, {"Content-Type": media})

    def signed_content(self, flow: SimFlow) -> bytes:
        """The "signed" file: the upload plus a trailer naming the simulator (no real seal)."""
        original = self.files[flow.file_id].content or b""
        note = f"signed by the hub e签宝 simulator: flow {flow.flow_id} at {flow.finished_ms}"
        trailer = f"\n%{note}\n" if original.startswith(b"%PDF") else f"\n<!-- {note} -->\n"
        return original + trailer.encode()

    # -- signing and callbacks --------------------------------------------------------------

    def _settle(self) -> None:
        """The employee signs (or refuses) the flows whose signing delay is over."""
        now = self.clock()
        with self._lock:
            for flow in self.flows.values():
                if flow.status == SIGNING and now >= flow.sign_at:
                    self._finish(flow, signed=self.signing_outcome == "sign")

    def sign(self, flow_id: str, *, refuse: bool = False) -> None:
        """The employee acts now (signs, or refuses)."""
        with self._lock:
            flow = self.flows[flow_id]
            if flow.status == SIGNING:
                self._finish(flow, signed=not refuse)

    def _finish(self, flow: SimFlow, *, signed: bool) -> None:
        now_ms = int(self.clock() * 1000)
        flow.signer_status = 2 if signed else 4
        flow.status = DONE if signed else REFUSED
        flow.finished_ms = now_ms
        employee = next((s for s in flow.signers if s.get("signerType") == 0), {})
        custom = next((f.get("customBizNum") for f in employee.get("signFields") or []), None)
        self._queue(
            flow,
            "SIGN_MISSON_COMPLETE",
            {
                "action": "SIGN_MISSON_COMPLETE",
                "timestamp": now_ms,
                "signFlowId": flow.flow_id,
                "customBizNum": custom,
                "signOrder": 1,
                "operateTime": now_ms,
                "signResult": 2 if signed else 4,
                "resultDescription": "签署完成" if signed else "拒签",
                "operator": {"psnAccount": {"accountMobile": flow.account}},
            },
        )
        if signed:
            self.signed += 1
        self._queue_complete(flow)

    def _queue_complete(self, flow: SimFlow) -> None:
        self._queue(
            flow,
            "SIGN_FLOW_COMPLETE",
            {
                "action": "SIGN_FLOW_COMPLETE",
                "timestamp": flow.finished_ms,
                "signFlowId": flow.flow_id,
                "signFlowTitle": flow.title,
                "signFlowStatus": str(flow.status),  # a string in callbacks, an int in detail
                "statusDescription": STATUS_TEXT.get(flow.status, ""),
                "signFlowCreateTime": flow.created_ms,
                "signFlowStartTime": flow.created_ms,
                "signFlowFinishTime": flow.finished_ms,
            },
        )

    def _queue(self, flow: SimFlow, action: str, body: Mapping[str, Any]) -> None:
        self._serial += 1
        self.events.append(
            CallbackEvent(
                seq=self._serial,
                flow_id=flow.flow_id,
                action=action,
                due=self.clock(),
                body=orjson.dumps(body),
                timestamp_ms=str(int(self.clock() * 1000)),
            )
        )

    def due_events(self) -> list[CallbackEvent]:
        self._settle()
        now = self.clock()
        with self._lock:
            return [e for e in self.events if not e.delivered and e.due <= now]

    def deliver_callbacks(
        self,
        url: str | None = None,
        *,
        repeat: Mapping[str, int] | None = None,
        reverse: bool | None = None,
        timeout: float = 5.0,
    ) -> list[Delivery]:
        """POST every due event, signed the e签宝 way, and return what happened to each copy.

        The target is ``url``, else ``callback_url``, else the flow's ``notifyUrl``. ``repeat``
        sends a flow's events that many times (byte for byte the same, as e签宝 retries);
        ``reverse`` sends them newest first. Any 200 acknowledges an event.
        """
        events = self.due_events()
        copies = dict(self.callback_repeat if repeat is None else repeat)
        if self.callback_reverse if reverse is None else reverse:
            events.reverse()
        results = []
        for event in events:
            target = url or self.callback_url or self.flows[event.flow_id].notify_url
            if not target:
                raise ValueError("no callback URL: pass one, set callback_url, or give the flow a notifyUrl")
            query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(target).query))
            headers = {
                **esign_callback_headers(self.app_id, self.app_secret, event.timestamp_ms, event.body, query),
                "Content-Type": "application/json; charset=UTF-8",
            }
            for _ in range(max(1, copies.get(event.flow_id, copies.get("*", 1)))):
                event.attempts += 1
                try:
                    reply = requests.post(target, data=event.body, headers=headers, timeout=timeout)
                    status: int | None = reply.status_code
                except requests.RequestException:
                    status = None
                with self._lock:
                    event.delivered = event.delivered or status == 200
                    results.append(Delivery(event.flow_id, event.action, status, status == 200))
                    self.deliveries.append(results[-1])
        return results
