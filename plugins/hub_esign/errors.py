"""Typed e签宝 failures: what the caller should do, e签宝's business code, never personal data.

e签宝 answers ``{"code": 0, "message": "成功", "data": {...}}``; a business error is HTTP 200
with another ``code`` (1435xxx / 1436xxx / 1437xxx) and a Chinese ``message`` that may quote the
request (``流程不存在:%s``), so messages come from the table below and e签宝's text is only
used, masked and cut short, for a code the table does not know. HTTP statuses stand in for
the gateway's own refusals (401: signature or app id refused; 429: over the rate limit).
"""

from __future__ import annotations

from hub.vendor_http import (
    AuthFailed,
    Conflict,
    ErrorCodes,
    ErrorKinds,
    NotFound,
    OutcomeUnknown,
    RateLimited,
    Unavailable,
    VendorError,
)

#: code -> (field it is about, or "", a sentence that quotes no value)
KNOWN_CODES: dict[int, tuple[str, str]] = {
    401: ("", "e签宝 refused the request signature or the app id"),
    403: ("", "the app may not call this API"),
    404: ("", "no such e签宝 API"),
    429: ("", "over e签宝's rate limit"),
    1435002: ("", "parameter error"),
    1435011: ("", "the sign flow or account does not exist, or this operation is not allowed for it"),
    1435404: ("", "the enterprise account has too few e-contracts left"),
    1435405: ("", "the enterprise account has too few e-contracts left"),
    1436116: ("", "the app is not authorised to start sign flows for this organisation"),
    1437103: ("", "the sign flow has not started"),
    1437113: ("", "not every sign field is signed"),
    1437114: ("", "the account is not a participant of the sign flow"),
    1437168: ("", "the sign flow is revoked already"),
    1437169: ("", "the sign flow has expired"),
    1437182: ("", "no valid seal authorisation for the organisation"),
    1437203: ("", "only a sign flow in progress can be revoked"),
    1437306: ("", "the sign field's page is beyond the document"),
    1437328: ("name", "the signer's name or ID does not match e签宝's real-name record for the account"),
    1437513: ("", "the file is not converted to PDF yet"),
    1437518: ("", "the sign flow is not finished: its files cannot be downloaded yet"),
    1437608: ("", "too many signers in one sign flow"),
}

THROTTLED = frozenset({429})
AUTH = frozenset({401, 403, 1436116})
CONFLICT = frozenset({1437328})
NOT_FOUND = frozenset({404, 1435011})
#: revoking a flow that is revoked already
ALREADY_REVOKED = 1437168
#: revoking a flow that is not in progress (finished, expired, refused)
NOT_REVOCABLE = 1437203
#: creating a flow from a file e签宝 has not finished converting
FILE_NOT_READY = 1437513

CODES = ErrorCodes(KNOWN_CODES, frozenset(), THROTTLED, AUTH, CONFLICT, NOT_FOUND)


class EsignError(VendorError):
    """An e签宝 call failed; ``code`` is e签宝's business code (or the HTTP status), ``operation`` hub's."""

    vendor = "e签宝"
    code_label = "code"


class EsignAuthError(EsignError, AuthFailed):
    """App id, secret or permissions are wrong: fix the configuration, do not retry."""


class EsignRateLimited(EsignError, RateLimited):
    """Still over e签宝's rate limit after backing off; try again later."""


class EsignUnavailable(EsignError, Unavailable):
    """Timeouts or server errors outlasted the retries (or a file never got ready); try again later."""


class EsignOutcomeUnknown(EsignError, OutcomeUnknown):
    """A write was sent and its answer lost: look the sign flow up before sending it again."""


class EsignConflict(EsignError, Conflict):
    """The signer's details disagree with what e签宝 knows of the account."""


class EsignNotFound(EsignError, NotFound):
    """The sign flow, file or account does not exist."""


KINDS = ErrorKinds.of(CODES, EsignError)
