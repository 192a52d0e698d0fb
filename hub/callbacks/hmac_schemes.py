"""HMAC callback and request signatures: Greenhouse, DocuSign Connect, e签宝, 法大大 FASC.

Each scheme has a ``*_signature`` (or ``*_headers``) function that produces what the vendor sends
(used by the simulators and by hub's outgoing requests) and a ``verify_*`` function that raises
:class:`SignatureError` otherwise. Verification always recomputes over the raw body bytes as
received and compares in constant time; nothing is parsed before the signature checks out
(FASC is the exception: its signature covers the decoded ``bizContent`` form field, so the form
is parsed first, and nothing else is read from it).

Header lookups ignore letter case, because ASGI servers hand headers over lower-cased.
Freshness of the timestamps (e签宝 and FASC: milliseconds) is :mod:`hub.callbacks.replay`'s job.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qs, urlencode

from hub.callbacks.errors import SignatureError


def _hmac_sha256(key: bytes | str, message: bytes | str) -> bytes:
    key_bytes = key.encode("utf-8", "replace") if isinstance(key, str) else key
    message_bytes = message.encode("utf-8", "replace") if isinstance(message, str) else message
    return hmac.new(key_bytes, message_bytes, hashlib.sha256).digest()


def _equal(received: str, expected: str) -> bool:
    return hmac.compare_digest(
        received.strip().encode("utf-8", "replace"), expected.encode("utf-8", "replace")
    )


def header(headers: Mapping[str, str], name: str) -> str:
    """The value of header ``name`` in any letter case, ``""`` when absent."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return ""


# -- Greenhouse ------------------------------------------------------------------------------------

GREENHOUSE_HEADER = "Signature"


def greenhouse_signature(secret: str, body: bytes) -> str:
    """The ``Signature`` header value: ``sha256 <hex HMAC-SHA256(secret, body)>``."""
    return "sha256 " + _hmac_sha256(secret, body).hex()


def verify_greenhouse(secret: str, body: bytes, signature_header: str) -> None:
    """Greenhouse signs the body exactly as sent (after its own ``\\u003c`` escaping)."""
    scheme, _, digest = signature_header.strip().partition(" ")
    if scheme.lower() != "sha256" or not digest:
        raise SignatureError("Greenhouse Signature header is not 'sha256 <hex>'")
    if not _equal(digest.lower(), _hmac_sha256(secret, body).hex()):
        raise SignatureError("Greenhouse signature does not match")


# -- DocuSign Connect ------------------------------------------------------------------------------

DOCUSIGN_HEADER_RE = re.compile(r"^x-docusign-signature-(\d+)$", re.IGNORECASE)


def docusign_signature(secret: str, body: bytes) -> str:
    """``base64(HMAC-SHA256(secret, body))``, one ``X-DocuSign-Signature-N`` header per key."""
    return base64.b64encode(_hmac_sha256(secret, body)).decode()


def docusign_headers(secrets: Iterable[str], body: bytes) -> dict[str, str]:
    """Simulator side: ``X-DocuSign-Signature-1..N``, one per active Connect key."""
    return {
        f"X-DocuSign-Signature-{number}": docusign_signature(secret, body)
        for number, secret in enumerate(secrets, start=1)
    }


def verify_docusign(secrets: str | Iterable[str], body: bytes, headers: Mapping[str, str]) -> None:
    """Pass when any ``X-DocuSign-Signature-N`` matches any of hub's keys (rotation: many keys)."""
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    received = [value for name, value in headers.items() if DOCUSIGN_HEADER_RE.match(name)]
    if not received:
        raise SignatureError("DocuSign request has no X-DocuSign-Signature header")
    expected = [docusign_signature(key, body) for key in keys]
    # Every pair is compared, so the time taken does not reveal which key or header matched.
    matched = False
    for value in received:
        for candidate in expected:
            matched |= _equal(value, candidate)
    if not matched:
        raise SignatureError("DocuSign signature does not match any configured key")


# -- e签宝 (eSign) v3 ------------------------------------------------------------------------------

ESIGN_TIMESTAMP_HEADER = "X-Tsign-Open-TIMESTAMP"
ESIGN_SIGNATURE_HEADER = "X-Tsign-Open-SIGNATURE"
ESIGN_ALGORITHM_HEADER = "X-Tsign-Open-SIGNATURE-ALGORITHM"
ESIGN_ACCEPT = "*/*"
ESIGN_CONTENT_TYPE = "application/json; charset=UTF-8"


def esign_query_values(query: Mapping[str, str] | None) -> str:
    """``requestQuery`` of a callback: the values of hub's own notify-URL parameters, by key."""
    return "".join(query[key] for key in sorted(query)) if query else ""


def esign_callback_signature(
    app_secret: str, timestamp: str, body: bytes, query: Mapping[str, str] | None = None
) -> str:
    """Lower-case hex ``HMAC-SHA256(appSecret, timestamp + requestQuery + body)``."""
    message = (timestamp + esign_query_values(query)).encode("utf-8", "replace") + body
    return _hmac_sha256(app_secret, message).hex()


def esign_callback_headers(
    app_id: str, app_secret: str, timestamp: str, body: bytes, query: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Simulator side: the headers e签宝 sends with a callback (``timestamp`` in ms)."""
    return {
        "X-Tsign-Open-App-Id": app_id,
        ESIGN_TIMESTAMP_HEADER: timestamp,
        ESIGN_SIGNATURE_HEADER: esign_callback_signature(app_secret, timestamp, body, query),
        ESIGN_ALGORITHM_HEADER: "hmac-sha256",
    }


def verify_esign_callback(
    app_secret: str, headers: Mapping[str, str], body: bytes, query: Mapping[str, str] | None = None
) -> None:
    """Check an e签宝 callback; ``query`` is the parameters hub put on its own notify URL."""
    algorithm = header(headers, ESIGN_ALGORITHM_HEADER)
    if algorithm and algorithm.lower() != "hmac-sha256":
        raise SignatureError("e签宝 callback uses an unsupported signature algorithm")
    timestamp = header(headers, ESIGN_TIMESTAMP_HEADER)
    signature = header(headers, ESIGN_SIGNATURE_HEADER)
    if not timestamp or not signature:
        raise SignatureError("e签宝 callback lacks its timestamp or signature header")
    if not _equal(signature.lower(), esign_callback_signature(app_secret, timestamp, body, query)):
        raise SignatureError("e签宝 callback signature does not match")


def esign_content_md5(body: bytes) -> str:
    """``Content-MD5``: base64 of the body's MD5, ``""`` for an empty body (GET)."""
    if not body:
        return ""
    return base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()


def esign_path_and_parameters(path: str, query: Mapping[str, str] | None = None) -> str:
    """The path plus the query with keys sorted; a parameter without a value is its bare key."""
    if not query:
        return path
    pairs = [f"{key}={query[key]}" if query[key] != "" else key for key in sorted(query)]
    return path + "?" + "&".join(pairs)


def esign_string_to_sign(
    method: str,
    path_and_parameters: str,
    content_md5: str,
    *,
    accept: str = ESIGN_ACCEPT,
    content_type: str = ESIGN_CONTENT_TYPE,
    date: str = "",
) -> str:
    """``METHOD\\nAccept\\nContent-MD5\\nContent-Type\\nDate\\nPathAndParameters`` (no extra headers)."""
    return "\n".join([method.upper(), accept, content_md5, content_type, date, path_and_parameters])


def esign_request_signature(app_secret: str, string_to_sign: str) -> str:
    """``X-Tsign-Open-Ca-Signature``: base64 ``HMAC-SHA256(appSecret, StringToSign)``."""
    return base64.b64encode(_hmac_sha256(app_secret, string_to_sign)).decode()


def esign_request_headers(
    app_id: str,
    app_secret: str,
    method: str,
    path: str,
    body: bytes,
    *,
    timestamp_ms: str,
    query: Mapping[str, str] | None = None,
    accept: str = ESIGN_ACCEPT,
    content_type: str = ESIGN_CONTENT_TYPE,
) -> dict[str, str]:
    """Every header an e签宝 v3 API call needs in Signature auth mode."""
    content_md5 = esign_content_md5(body)
    to_sign = esign_string_to_sign(
        method, esign_path_and_parameters(path, query), content_md5, accept=accept, content_type=content_type
    )
    return {
        "X-Tsign-Open-App-Id": app_id,
        "X-Tsign-Open-Auth-Mode": "Signature",
        "X-Tsign-Open-Ca-Timestamp": timestamp_ms,
        "X-Tsign-Open-Ca-Signature": esign_request_signature(app_secret, to_sign),
        "Accept": accept,
        "Content-Type": content_type,
        "Content-MD5": content_md5,
    }


def verify_esign_request(
    app_secret: str,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    query: Mapping[str, str] | None = None,
) -> None:
    """Simulator side: check a signed e签宝 API call the way the gateway does.

    The MD5 is recomputed from the body received, so a body swapped under a valid signature fails.
    """
    signature = header(headers, "X-Tsign-Open-Ca-Signature")
    if not signature:
        raise SignatureError("e签宝 request has no X-Tsign-Open-Ca-Signature header")
    content_md5 = esign_content_md5(body)
    if header(headers, "Content-MD5") != content_md5:
        raise SignatureError("e签宝 request Content-MD5 does not match the body")
    to_sign = esign_string_to_sign(
        method,
        esign_path_and_parameters(path, query),
        content_md5,
        accept=header(headers, "Accept"),
        content_type=header(headers, "Content-Type"),
    )
    if not _equal(signature, esign_request_signature(app_secret, to_sign)):
        raise SignatureError("e签宝 request signature does not match")


# -- 法大大 FASC v5 --------------------------------------------------------------------------------

FASC_SIGN_HEADER = "X-FASC-Sign"
FASC_TIMESTAMP_HEADER = "X-FASC-Timestamp"
FASC_NONCE_HEADER = "X-FASC-Nonce"
FASC_SIGN_TYPE = "HMAC-SHA256"
#: The headers a FASC event callback signs, besides ``bizContent`` (official PHP callback sample).
FASC_CALLBACK_HEADERS = (
    "X-FASC-App-Id",
    "X-FASC-Sign-Type",
    "X-FASC-Timestamp",
    "X-FASC-Nonce",
    "X-FASC-Event",
)


def fasc_sort_param(params: Mapping[str, str]) -> str:
    """``k=v`` joined by ``&`` in key order, empty values and ``X-FASC-Sign`` left out."""
    return "&".join(
        f"{key}={params[key]}" for key in sorted(params) if params[key] and key != FASC_SIGN_HEADER
    )


def fasc_sign(app_secret: str, timestamp: str, params: Mapping[str, str]) -> str:
    """``hex(HMAC(HMAC(appSecret, timestamp), sha256_hex(sortParam)))``: the two-stage key."""
    sign_text = hashlib.sha256(fasc_sort_param(params).encode("utf-8", "replace")).hexdigest()
    return _hmac_sha256(_hmac_sha256(app_secret, timestamp), sign_text).hex()


def fasc_headers(
    app_id: str,
    app_secret: str,
    *,
    timestamp_ms: str,
    nonce: str,
    biz_content: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Signed FASC headers for a request or, with ``extra={"X-FASC-Event": ...}``, a callback.

    ``extra`` carries the call-specific headers (``X-FASC-Api-SubVersion``, ``X-FASC-AccessToken``,
    ``X-FASC-Grant-Type``, ``X-FASC-Event``). ``biz_content`` must be the exact string sent.
    """
    headers = {
        "X-FASC-App-Id": app_id,
        "X-FASC-Sign-Type": FASC_SIGN_TYPE,
        FASC_TIMESTAMP_HEADER: timestamp_ms,
        FASC_NONCE_HEADER: nonce,
        **(extra or {}),
    }
    signed = dict(headers)
    if biz_content is not None:
        signed["bizContent"] = biz_content
    headers[FASC_SIGN_HEADER] = fasc_sign(app_secret, timestamp_ms, signed)
    return headers


def verify_fasc(
    app_secret: str, headers: Mapping[str, str], biz_content: str | None, signed_headers: Iterable[str]
) -> None:
    """Check ``X-FASC-Sign`` over ``signed_headers`` (canonical names) plus ``bizContent``."""
    signature = header(headers, FASC_SIGN_HEADER)
    timestamp = header(headers, FASC_TIMESTAMP_HEADER)
    if not signature or not timestamp:
        raise SignatureError("FASC request lacks its X-FASC-Sign or X-FASC-Timestamp header")
    sign_type = header(headers, "X-FASC-Sign-Type")
    if sign_type and sign_type.upper() != FASC_SIGN_TYPE:
        raise SignatureError("FASC request uses an unsupported sign type")
    params = {name: header(headers, name) for name in signed_headers}
    if biz_content is not None:
        params["bizContent"] = biz_content
    if not _equal(signature.lower(), fasc_sign(app_secret, timestamp, params)):
        raise SignatureError("FASC signature does not match")


def fasc_callback_body(biz_content: str) -> bytes:
    """Simulator side: the form body FASC POSTs, ``bizContent=<url-encoded JSON>``."""
    return urlencode({"bizContent": biz_content}).encode()


def verify_fasc_callback(app_secret: str, headers: Mapping[str, str], body: bytes) -> str:
    """Check a FASC event POST (form ``bizContent``); returns the ``bizContent`` JSON string."""
    try:
        form = parse_qs(body.decode(), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise SignatureError("FASC callback body is not a UTF-8 form") from None
    values = form.get("bizContent", [])
    if len(values) != 1:
        raise SignatureError("FASC callback body must carry exactly one bizContent field")
    verify_fasc(app_secret, headers, values[0], FASC_CALLBACK_HEADERS)
    return values[0]
