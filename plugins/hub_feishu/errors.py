"""Typed Feishu / Lark failures: what the caller should do, Feishu's code, never personal data.

Feishu answers ``{code, msg, data}``, errors usually with an HTTP 4xx status. Messages come from
a fixed table; Feishu's ``msg`` is used, masked and cut short, only for codes it does not know.
"""

from __future__ import annotations

from hub import vendor_http
from hub.vendor_http import ErrorCodes, ErrorKinds

#: code -> (field it is about, or "", a sentence that quotes no value)
KNOWN_CODES: dict[int, tuple[str, str]] = {
    10003: ("", "invalid app_id or parameters"),
    10014: ("", "invalid app secret"),
    40001: ("", "invalid parameter"),
    40003: ("", "internal error"),
    40004: ("department", "the app may not use this department (contact scope)"),
    40021: ("", "the client_token was used before with a different request"),
    41001: ("mobile", "the mobile number is already used by another user"),
    41002: ("email", "the e-mail address is already used by another user"),
    41003: ("mobile", "the contact details belong to two different Feishu accounts"),
    41004: ("mobile", "the mobile number is not valid"),
    41005: ("email", "the e-mail address is not valid"),
    41010: ("mobile", "a mobile number is required"),
    41011: ("user_id", "the user_id is already taken"),
    41012: ("user_id", "no user with this user_id"),
    41017: ("department", "a department is required"),
    41040: ("name", "a name is required"),
    41050: ("", "the app may not see this user (contact scope)"),
    41053: ("", "the user already exists"),
    41059: ("employee_type", "invalid employee type"),
    44051: ("employee_no", "the employee number is already used by another user"),
    60012: ("uuid", "an approval instance with this uuid already exists"),
    99991400: ("", "request frequency limit reached"),
    99991661: ("", "access token missing"),
    99991663: ("", "invalid or expired tenant access token"),
    99991664: ("", "invalid or expired app access token"),
    99991668: ("", "invalid user access token"),
    99991671: ("", "invalid access token"),
    99991672: ("", "the app lacks a permission for this API"),
    1390001: ("", "invalid approval parameter"),
    1390002: ("", "approval code not found"),
    1390003: ("", "approval instance not found"),
    1390007: ("", "already subscribed"),
    230013: ("", "the app cannot message this user"),
    230020: ("", "message frequency limit reached"),
}

#: refetch the token and try once more (lark-oapi: ErrCode*AccessTokenInvalid)
TOKEN_INVALID = frozenset({99991663, 99991664, 99991671})
THROTTLED = frozenset({99991400, 230020})
AUTH = frozenset({10003, 10014, 99991661, 99991672, 40004, 41050})
CONFLICT = frozenset({41001, 41002, 41003, 41011, 44051, 41053})
NOT_FOUND = frozenset({41012, 1390002, 1390003, 230013})

CODES = ErrorCodes(KNOWN_CODES, TOKEN_INVALID, THROTTLED, AUTH, CONFLICT, NOT_FOUND)


class FeishuError(vendor_http.VendorError):
    """A Feishu call failed; ``code`` is Feishu's ``code`` (or the HTTP status)."""

    vendor = "Feishu"


class FeishuAuthError(FeishuError, vendor_http.AuthFailed):
    """Credentials, scopes or permissions are wrong: fix the configuration."""


class FeishuRateLimited(FeishuError, vendor_http.RateLimited):
    """Still over Feishu's frequency limit after backing off."""


class FeishuUnavailable(FeishuError, vendor_http.Unavailable):
    """Timeouts or server errors outlasted the retries; try again later."""


class FeishuOutcomeUnknown(FeishuError, vendor_http.OutcomeUnknown):
    """A write was sent and its answer lost: look the record up before sending it again."""


class FeishuConflict(FeishuError, vendor_http.Conflict):
    """The value of ``field`` (mobile, e-mail, user_id, employee_no, uuid) is already taken."""


class FeishuNotFound(FeishuError, vendor_http.NotFound):
    """The user, approval or instance does not exist."""


KINDS = ErrorKinds.of(CODES, FeishuError)
#: (field, reason) for a code; an unknown code keeps a masked excerpt of the vendor's text
describe = CODES.describe
#: the typed error for a code Feishu answered
error_for = KINDS.error_for
