"""A typed e签宝 (eSign) Open API v3 client: signed requests, contract upload, sign flows.

Every call is signed (Signature auth mode, no token): ``X-Tsign-Open-App-Id``,
``X-Tsign-Open-Auth-Mode: Signature``, ``X-Tsign-Open-Ca-Timestamp`` (ms) and
``X-Tsign-Open-Ca-Signature`` = base64 HMAC-SHA256(appSecret, METHOD, Accept, Content-MD5,
Content-Type, Date, sorted path+query), built by :func:`hub.callbacks.hmac_schemes.esign_request_headers`
over the exact body bytes sent (re-signed, with a fresh timestamp, on every retry). Timeouts and
5xx are retried for reads and for writes that are harmless to repeat (an upload URL, a revoke);
a sign flow whose answer is lost is looked up before it is created again (e签宝 has no
idempotency token): hub's reference is in the flow's title and, exactly, in the employee's sign
field's ``customBizNum``.

What was checked, and where (searched 2026-11; nothing was run against e签宝 itself):

- Signing scheme: vendors.md §2.1 [V]; e签宝's official Java demo (``EsignHttpHelper``,
  ``EsignHeaderConstant``: Accept ``*/*``, ``application/json; charset=UTF-8``, empty Content-MD5
  for GET) [V].
- ``POST /v3/files/file-upload-url`` ``{contentMd5, contentType, fileName, fileSize,
  convertToPDF}`` -> ``{fileId, fileUploadUrl}``; ``PUT fileUploadUrl`` with ``Content-MD5`` and
  ``Content-Type`` (answer ``{"errCode": 0}``); ``GET /v3/files/{fileId}`` until ``fileStatus`` is
  2 or 5: the official demo ``FileDemo.java`` [V].
- ``POST /v3/sign-flow/create-by-file`` (``docs``, ``signFlowConfig{signFlowTitle, autoStart,
  autoFinish, notifyUrl, signFlowExpireTime (ms, <= 90 days), noticeConfig}``, ``signers[]``:
  ``signerType`` 0 person / 1 organisation, ``psnSignerInfo{psnAccount, psnInfo{psnName,
  psnIDCardNum, psnIDCardType}}``, ``signFields[{fileId, customBizNum, normalSignFieldConfig{autoSign,
  signFieldStyle, signFieldPosition{positionPage, positionX, positionY}}}]``): the open.esign.cn
  ``pdf-sign3`` pages as transcribed in fastesign's ``SignFlowCreateByFileRequest`` and an e签宝
  API digest [S]. ``customBizNum`` comes back in signer callbacks and in ``detail``'s sign fields
  [S]; personal signers cannot auto-sign, the app's own organisation can [S].
- ``POST /v3/sign-flow/{id}/sign-url`` ``{operator{psnAccount}, urlType, clientType}`` ->
  ``{url, shortUrl}``; ``GET /v3/sign-flow/{id}/detail`` -> ``signFlowStatus`` 0 draft, 1 signing,
  2 done, 3 revoked, 5 expired, 7 refused; ``POST .../revoke {revokeReason}`` (1437203 not in
  progress, 1437168 revoked already); ``POST .../file-download-url`` -> ``files[{fileId, fileName,
  downloadUrl}]`` (1437518 until done) [S].
- ``POST /v3/sign-flow/sign-flow-list`` ``{pageNum, pageSize<=100, signFlowStartTimeFrom/To (ms,
  <= 1 year apart), signFlowStatus[], operator{psnAccount}}`` -> ``{total, signFlowInfos[{signFlowId,
  signFlowTitle, signFlowStatus, ...}]}``: e签宝's own doc page (yuque mirror) [V]. It lists only
  flows this app started through the API.
- Assumed, not documented where we looked: the gateway's answer to a bad signature (HTTP 401)
  and to a rate limit (HTTP 429); the meaning of ``fileStatus`` values other than 2 and 5.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

import orjson

from hub.callbacks.hmac_schemes import esign_request_headers
from hub.vendor_http import Answer, HttpSettings, VendorClient
from hub_esign.econtract import create_once, epoch_ms, exchange_bytes, media_type_of, wait_until
from hub_esign.errors import (
    ALREADY_REVOKED,
    FILE_NOT_READY,
    KINDS,
    NOT_REVOCABLE,
    EsignError,
    EsignNotFound,
    EsignOutcomeUnknown,
)

DEFAULT_BASE_URL = "https://openapi.esign.cn"
SANDBOX_BASE_URL = "https://smlopenapi.esign.cn"
#: signFlowStatus
DRAFT, SIGNING, DONE, REVOKED, EXPIRED, REFUSED = 0, 1, 2, 3, 5, 7
FLOW_STATUS = {
    DRAFT: "DRAFT",
    SIGNING: "SIGNING",
    DONE: "DONE",
    REVOKED: "REVOKED",
    EXPIRED: "EXPIRED",
    REFUSED: "REFUSED",
}
#: fileStatus values that mean "ready to sign" (2 uploaded as PDF, 5 converted to PDF)
FILE_READY = frozenset({2, 5})
MAX_EXPIRE_DAYS = 90
MAX_PAGE_SIZE = 100
UPLOAD_CONTENT_TYPE = "application/octet-stream"
PSN_ID_CARD = "CRED_PSN_CH_IDCARD"


def flow_reference(idempotency_key: str) -> str:
    """hub's mark in a sign flow's title (e签宝 has no external-id field on flows)."""
    return "hub-" + idempotency_key.replace("-", "")[:20]


def content_md5(content: bytes) -> str:
    return base64.b64encode(hashlib.md5(content, usedforsecurity=False).digest()).decode()


def _position(value: Any, default: Mapping[str, Any]) -> dict[str, Any]:
    given = dict(value) if isinstance(value, Mapping) else {}
    return {
        "positionPage": str(given.get("page", default["page"])),
        "positionX": float(given.get("x", default["x"])),
        "positionY": float(given.get("y", default["y"])),
    }


@dataclass(frozen=True, kw_only=True)
class EsignSettings(HttpSettings):
    """The connector configuration, with defaults filled in (secrets already resolved)."""

    app_id: str
    app_secret: str
    base_url: str = DEFAULT_BASE_URL
    #: the flows' notifyUrl: hub serve's ``/webhooks/<connector>`` (or a console webhook)
    notify_url: str = ""
    flow_title: str = "劳动合同"
    #: e签宝's notices to the signer: "1" SMS, "2" e-mail, "" none (hub hands out the link)
    notice_types: str = "1"
    expire_days: int = 30
    #: the employer (the app's own organisation) seals automatically after the employee
    employer_auto_sign: bool = True
    #: also send the ID number, so e签宝 checks it against the account's real name
    send_id_number: bool = False
    employee_position: Mapping[str, Any] = field(
        default_factory=lambda: {"positionPage": "1", "positionX": 400.0, "positionY": 150.0}
    )
    employer_position: Mapping[str, Any] = field(
        default_factory=lambda: {"positionPage": "1", "positionX": 150.0, "positionY": 150.0}
    )
    redirect_url: str = ""
    lookback_days: int = 90
    file_poll_attempts: int = 10
    file_poll_interval: float = 1.0
    employer: str = ""

    @classmethod
    def parse(cls, config: Mapping[str, Any]) -> EsignSettings:
        signing = config.get("sign_fields") or {}
        return cls(
            app_id=str(config["app_id"]),
            app_secret=str(config["app_secret"]),
            base_url=str(config.get("base_url") or DEFAULT_BASE_URL).rstrip("/"),
            notify_url=str(config.get("notify_url") or ""),
            flow_title=str(config.get("flow_title") or "劳动合同"),
            notice_types=str(config.get("notice_types", "1")),
            expire_days=min(int(config.get("expire_days") or 30), MAX_EXPIRE_DAYS),
            employer_auto_sign=bool(config.get("employer_auto_sign", True)),
            send_id_number=bool(config.get("send_id_number", False)),
            employee_position=_position(signing.get("employee"), {"page": 1, "x": 400, "y": 150}),
            employer_position=_position(signing.get("employer"), {"page": 1, "x": 150, "y": 150}),
            redirect_url=str(config.get("redirect_url") or ""),
            lookback_days=int(config.get("lookback_days") or 90),
            file_poll_attempts=int(config.get("file_poll_attempts") or 10),
            file_poll_interval=float(config.get("file_poll_interval_seconds", 1.0)),
            employer=str(config.get("employer") or ""),
            **HttpSettings.options(config),
        )


@dataclass(frozen=True)
class Signer:
    """The employee who signs: the account e签宝 knows them by (mobile or e-mail) and the name."""

    name: str
    account: str
    id_number: str = ""

    def __repr__(self) -> str:  # personal data
        return "Signer(<masked>)"


@dataclass(frozen=True)
class SignFlowRequest:
    """One labour contract to sign: the uploaded file, the signer, hub's reference."""

    file_id: str
    file_name: str
    signer: Signer
    #: the task's idempotency key: the employee's sign field's customBizNum
    reference: str


@dataclass(frozen=True)
class SignedFile:
    content: bytes
    media_type: str
    file_name: str


class EsignClient(VendorClient[EsignSettings]):
    """e签宝's v3 API with signed requests, retries and sign flows that are never made twice."""

    errors = KINDS
    retry_http_429 = False  # read the answer: 429 is backed off by the authenticated call
    throttle_floor = 1.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **kwargs: Any) -> Self:
        return cls(EsignSettings.parse(config), **kwargs)

    # -- transport ----------------------------------------------------------------------------

    def _fetch_token(self, credential: str) -> tuple[str, float]:
        """Signature mode has no token: every request is signed; nothing is fetched."""
        return self.settings.app_id, 10.0**9

    def call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Mapping[str, str] | None = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        """A signed call: ``data`` when e签宝's code is 0, else an :class:`EsignError`."""
        payload = orjson.dumps(body) if body is not None else b""
        url = self.settings.base_url + path
        method = method.upper()

        def headers() -> Mapping[str, str]:
            return esign_request_headers(
                self.settings.app_id,
                self.settings.app_secret,
                method,
                path,
                payload,
                timestamp_ms=str(epoch_ms(self._clock)),
                query=query,
            )

        def attempt(_: str) -> Answer:
            response = exchange_bytes(
                self,
                operation,
                method,
                url,
                body=payload or None,
                headers=headers,
                params=query,
                idempotent=idempotent,
            )
            if response.status_code == 429:
                return Answer({}, 429, "", throttled=True)
            if response.status_code in (401, 403, 404):
                return Answer({}, response.status_code, "")
            data = self._json(operation, response)
            code = data.get("code")
            ok = code in (0, "0")
            try:
                number = int(code) if code is not None else response.status_code
            except (TypeError, ValueError):
                number = response.status_code
            found = data.get("data")
            return Answer(
                found if isinstance(found, dict) else {}, number, str(data.get("message") or ""), ok=ok
            )

        return self._authorized(operation, attempt, idempotent=idempotent)

    # -- files --------------------------------------------------------------------------------

    def upload_file(self, content: bytes, file_name: str, *, convert_to_pdf: bool) -> str:
        """Upload a contract (upload URL, PUT, then wait until e签宝 has it as a PDF): its fileId."""
        md5 = content_md5(content)
        target = self.call(
            "file_upload_url",
            "POST",
            "/v3/files/file-upload-url",
            body={
                "contentMd5": md5,
                "contentType": UPLOAD_CONTENT_TYPE,
                "fileName": file_name,
                "fileSize": len(content),
                "convertToPDF": convert_to_pdf,
            },
            idempotent=True,  # a second upload URL is harmless: the first one is never used
        )
        file_id, upload_url = str(target.get("fileId") or ""), str(target.get("fileUploadUrl") or "")
        if not file_id or not upload_url:
            raise KINDS.error("file_upload_url", None, "e签宝 gave no file id or upload URL")
        response = exchange_bytes(
            self,
            "upload_file",
            "PUT",
            upload_url,
            body=content,
            headers=lambda: {"Content-MD5": md5, "Content-Type": UPLOAD_CONTENT_TYPE},
            idempotent=True,  # the same bytes to the same URL
        )
        answer = self._json("upload_file", response) if response.content else {}
        if response.status_code != 200 or str(answer.get("errCode", 0)) != "0":
            raise KINDS.error("upload_file", response.status_code, "the file upload was refused")
        if not wait_until(
            lambda: self.file_status(file_id) in FILE_READY,
            attempts=self.settings.file_poll_attempts,
            interval=self.settings.file_poll_interval,
            sleep=self._sleep,
        ):
            raise KINDS.unavailable(
                "upload_file", FILE_NOT_READY, "e签宝 has not finished processing the file"
            )
        return file_id

    def file_status(self, file_id: str) -> int:
        data = self.call("file_status", "GET", f"/v3/files/{file_id}")
        try:
            return int(data.get("fileStatus", -1))
        except (TypeError, ValueError):
            return -1

    # -- sign flows ---------------------------------------------------------------------------

    def flow_body(self, request: SignFlowRequest) -> dict[str, Any]:
        """The create-by-file request: the employee signs by hand, the employer seals itself."""
        settings = self.settings
        config: dict[str, Any] = {
            "signFlowTitle": f"{settings.flow_title} {flow_reference(request.reference)}",
            "autoStart": True,
            "autoFinish": True,  # else a fully signed flow waits for /finish and no callback comes
            "signFlowExpireTime": epoch_ms(self._clock) + settings.expire_days * 86_400_000,
        }
        if settings.notify_url:
            config["notifyUrl"] = settings.notify_url
        if settings.notice_types:
            config["noticeConfig"] = {"noticeTypes": settings.notice_types}
        if settings.redirect_url:
            config["redirectConfig"] = {"redirectUrl": settings.redirect_url}
        person: dict[str, Any] = {"psnName": request.signer.name}
        if settings.send_id_number and request.signer.id_number:
            person.update(psnIDCardNum=request.signer.id_number, psnIDCardType=PSN_ID_CARD)
        signers: list[dict[str, Any]] = [
            {
                "signConfig": {"signOrder": 1},
                "signerType": 0,
                "psnSignerInfo": {"psnAccount": request.signer.account, "psnInfo": person},
                "signFields": [
                    {
                        "fileId": request.file_id,
                        "customBizNum": request.reference,
                        "normalSignFieldConfig": {
                            "signFieldStyle": 1,
                            "signFieldPosition": dict(settings.employee_position),
                        },
                    }
                ],
            }
        ]
        if settings.employer_auto_sign:
            signers.append(
                {
                    "signConfig": {"signOrder": 2},
                    "signerType": 1,
                    "signFields": [
                        {
                            "fileId": request.file_id,
                            "customBizNum": f"{request.reference}:employer",
                            "normalSignFieldConfig": {
                                "autoSign": True,
                                "signFieldStyle": 1,
                                "signFieldPosition": dict(settings.employer_position),
                            },
                        }
                    ],
                }
            )
        return {
            "docs": [{"fileId": request.file_id, "fileName": request.file_name}],
            "signFlowConfig": config,
            "signers": signers,
        }

    def create_flow(self, request: SignFlowRequest) -> str:
        """Create the sign flow as it is (no look-up first): its signFlowId."""
        data = self.call(
            "create_sign_flow",
            "POST",
            "/v3/sign-flow/create-by-file",
            body=self.flow_body(request),
            idempotent=False,
        )
        flow_id = str(data.get("signFlowId") or "")
        if not flow_id:
            raise KINDS.error("create_sign_flow", None, "e签宝 returned no signFlowId")
        return flow_id

    def start_flow_once(self, request: SignFlowRequest) -> str:
        """The flow for ``request.reference``: found, or created once (a lost answer looked up)."""
        return create_once(
            lambda: self.find_flow(request.reference, request.signer.account),
            lambda: self.create_flow(request),
            EsignOutcomeUnknown,
        )

    def list_flows(
        self,
        *,
        start_ms: int,
        end_ms: int,
        account: str = "",
        statuses: tuple[int, ...] = (),
        page_size: int = MAX_PAGE_SIZE,
    ) -> Iterator[dict[str, Any]]:
        """Flows this app started between ``start_ms`` and ``end_ms`` (at most a year), page by page."""
        page = 1
        while True:
            body: dict[str, Any] = {
                "pageNum": page,
                "pageSize": min(page_size, MAX_PAGE_SIZE),
                "signFlowStartTimeFrom": start_ms,
                "signFlowStartTimeTo": end_ms,
            }
            if statuses:
                body["signFlowStatus"] = list(statuses)
            if account:
                body["operator"] = {"psnAccount": account}
            data = self.call("list_sign_flows", "POST", "/v3/sign-flow/sign-flow-list", body=body)
            flows = [f for f in data.get("signFlowInfos") or [] if isinstance(f, dict)]
            yield from flows
            total = int(data.get("total") or 0)
            if not flows or page * body["pageSize"] >= total:
                return
            page += 1

    def find_flow(self, reference: str, account: str) -> str | None:
        """The flow (signing or done) that carries ``reference``, started by an earlier attempt.

        Listed by the signer's account over ``lookback_days``; a title with hub's mark is
        confirmed by the employee's sign field's ``customBizNum``.
        """
        now = epoch_ms(self._clock)
        start = now - min(self.settings.lookback_days, 365) * 86_400_000
        mark = flow_reference(reference)
        for flow in self.list_flows(
            start_ms=start, end_ms=now + 60_000, account=account, statuses=(SIGNING, DONE)
        ):
            flow_id = str(flow.get("signFlowId") or "")
            if not flow_id or mark not in str(flow.get("signFlowTitle") or ""):
                continue
            detail = self.flow_detail(flow_id)
            numbers = {
                str(sign_field.get("customBizNum") or "")
                for signer in detail.get("signers") or []
                for sign_field in (signer.get("signFields") or [])
            }
            if reference in numbers:
                return flow_id
        return None

    def flow_detail(self, flow_id: str) -> dict[str, Any]:
        return self.call("sign_flow_detail", "GET", f"/v3/sign-flow/{flow_id}/detail")

    def flow_status(self, flow_id: str) -> int:
        try:
            return int(self.flow_detail(flow_id).get("signFlowStatus", -1))
        except (TypeError, ValueError):
            return -1

    def sign_url(self, flow_id: str, account: str) -> str:
        """The employee's signing link (the long one: the short one lasts 90 days)."""
        data = self.call(
            "sign_url",
            "POST",
            f"/v3/sign-flow/{flow_id}/sign-url",
            body={"operator": {"psnAccount": account}, "urlType": 2, "clientType": "ALL"},
        )
        return str(data.get("url") or data.get("shortUrl") or "")

    def revoke(self, flow_id: str, reason: str) -> bool:
        """Revoke a flow in progress; False when it was revoked already. Twice is harmless."""
        try:
            self.call(
                "revoke_sign_flow",
                "POST",
                f"/v3/sign-flow/{flow_id}/revoke",
                body={"revokeReason": reason[:50]},
            )
        except EsignError as exc:
            if exc.code == ALREADY_REVOKED:
                return False
            raise
        return True

    def download_signed(self, flow_id: str) -> SignedFile:
        """The signed contract (the flow's first file), fetched from its short-lived download URL."""
        data = self.call(
            "file_download_url",
            "POST",
            f"/v3/sign-flow/{flow_id}/file-download-url",
            body={"urlAvailableDate": 3600},
        )
        files = [f for f in data.get("files") or [] if isinstance(f, dict) and f.get("downloadUrl")]
        if not files:
            raise EsignNotFound("file_download_url", None, "the sign flow has no signed file")
        first = files[0]
        response = exchange_bytes(
            self,
            "download_signed",
            "GET",
            str(first["downloadUrl"]),
            body=None,
            headers=dict,
            idempotent=True,
        )
        if response.status_code != 200:
            raise KINDS.error(
                "download_signed", response.status_code, "the signed file could not be downloaded"
            )
        content = response.content
        return SignedFile(content, media_type_of(response, content), str(first.get("fileName") or ""))

    def check(self) -> None:
        """Sign a harmless call (list yesterday's flows): proves the app id and secret."""
        now = epoch_ms(self._clock)
        next(iter(self.list_flows(start_ms=now - 86_400_000, end_ms=now, page_size=1)), None)


__all__ = [
    "DONE",
    "EXPIRED",
    "FLOW_STATUS",
    "NOT_REVOCABLE",
    "REFUSED",
    "REVOKED",
    "SIGNING",
    "EsignClient",
    "EsignSettings",
    "SignFlowRequest",
    "SignedFile",
    "Signer",
    "flow_reference",
]
