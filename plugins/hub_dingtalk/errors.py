"""Typed DingTalk failures: what the caller should do, DingTalk's code, never personal data.

DingTalk has two error models: the legacy host answers HTTP 200 with a numeric ``errcode``
(authentication problems wrapped as ``errcode 88`` with the real reason in the string
``sub_code``), the new host answers HTTP 4xx with a string ``code``. Both are reduced to one
``code`` here (the ``sub_code`` when there is one). Messages come from a fixed table; DingTalk's
own text is used, masked and cut short, only for codes the table does not know.
"""

from __future__ import annotations

from hub import vendor_http
from hub.vendor_http import ErrorCodes, ErrorKinds

#: code -> (field it is about, or "", a sentence that quotes no value)
KNOWN_CODES: dict[str, tuple[str, str]] = {
    "-1": ("", "system busy"),
    "22": ("", "unknown API name (wrong path)"),
    "33012": ("userid", "invalid userid"),
    "40000": ("", "access token missing"),
    "40001": ("", "invalid app secret or access token"),
    "40014": ("", "invalid access token"),
    "40035": ("", "invalid or missing parameter"),
    "40089": ("", "invalid corp id or corp secret"),
    "40096": ("", "invalid appKey or appSecret"),
    "42001": ("", "access token expired"),
    "43007": ("", "authorisation required"),
    "50002": ("", "the member is outside the app's authorised scope"),
    "60003": ("department", "department not found"),
    "60011": ("", "the app has no permission for this API"),
    "60020": ("", "the caller's IP is not on the app's allow-list"),
    "60102": ("userid", "the userid is already taken"),
    "60103": ("mobile", "the mobile number is not valid"),
    "60104": ("mobile", "the mobile number is already used by another member"),
    "60106": ("email", "the e-mail address is already used by another member"),
    "60112": ("name", "the member name is not valid"),
    "60121": ("userid", "no such member"),
    "90001": ("", "all APIs are temporarily disabled for this server (rate limit)"),
    "90002": ("", "this API is temporarily disabled (global QPS limit)"),
    "90005": ("", "this API is temporarily disabled for the organisation (rate limit)"),
    "90006": ("", "this API is temporarily disabled for the app (per-minute limit)"),
    "90018": ("", "the app is over this API's QPS limit"),
    "ip_throttled": ("", "the calling IP is blocked for five minutes (20 s / 10 000 calls limit)"),
    "InvalidAuthentication": ("", "invalid access token"),
    "invalidClientIdOrSecret": ("", "invalid appKey or appSecret"),
    "apiPermissionDenied": ("", "the app has no permission for this API"),
    "unauthorized.client": ("", "the app is not authorised"),
    "Forbidden.AccessDenied.AccessTokenPermissionDenied": ("", "the app has no permission for this API"),
    "Forbidden.AccessDenied.IpNotInWhiteList": ("", "the caller's IP is not on the app's allow-list"),
    "Forbidden.AccessDenied.QpsLimitForApi": ("", "this API is over its global QPS limit"),
    "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi": ("", "the app is over this API's QPS limit"),
    "Forbidden.AccessDenied.QpmLimitForAppkeyAndApi": ("", "the app is over this API's per-minute limit"),
    "qps.exceed.limit": ("", "too many requests"),
    "request.overlimit": ("", "too many requests"),
    "InvalidParameter": ("", "invalid parameter"),
}

#: codes that mean "fetch a new token and try once more"
TOKEN_INVALID = frozenset({"40014", "42001", "40001", "40000", "InvalidAuthentication"})
#: codes that mean "back off and try again"
THROTTLED = frozenset(
    {
        "90001",
        "90002",
        "90005",
        "90006",
        "90018",
        "Forbidden.AccessDenied.QpsLimitForApi",
        "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi",
        "Forbidden.AccessDenied.QpmLimitForAppkeyAndApi",
        "qps.exceed.limit",
        "request.overlimit",
    }
)
AUTH = frozenset(
    {
        "40089",
        "40096",
        "43007",
        "60011",
        "60020",
        "invalidClientIdOrSecret",
        "apiPermissionDenied",
        "unauthorized.client",
        "Forbidden.AccessDenied.AccessTokenPermissionDenied",
        "Forbidden.AccessDenied.IpNotInWhiteList",
    }
)
CONFLICT = frozenset({"60102", "60104", "60106"})
NOT_FOUND = frozenset({"60121", "33012", "60003"})

CODES = ErrorCodes(KNOWN_CODES, TOKEN_INVALID, THROTTLED, AUTH, CONFLICT, NOT_FOUND)


class DingTalkError(vendor_http.VendorError):
    """A DingTalk call failed; ``code`` is DingTalk's (errcode, sub_code or new-host code)."""

    vendor = "DingTalk"


class DingTalkAuthError(DingTalkError, vendor_http.AuthFailed):
    """Credentials, IP allow-list or permissions are wrong: fix the configuration."""


class DingTalkRateLimited(DingTalkError, vendor_http.RateLimited):
    """Still over a DingTalk rate limit after backing off; try again later (``retry_after``)."""


class DingTalkUnavailable(DingTalkError, vendor_http.Unavailable):
    """Timeouts or server errors outlasted the retries; try again later."""


class DingTalkOutcomeUnknown(DingTalkError, vendor_http.OutcomeUnknown):
    """A write was sent and its answer lost: look the record up before sending it again."""


class DingTalkConflict(DingTalkError, vendor_http.Conflict):
    """The value of ``field`` (mobile, userid, e-mail) already belongs to another member."""


class DingTalkNotFound(DingTalkError, vendor_http.NotFound):
    """The member, department or approval instance does not exist."""


KINDS = ErrorKinds.of(CODES, DingTalkError, code_of_status=str)
#: (field, reason) for a code; an unknown code keeps a masked excerpt of the vendor's text
describe = CODES.describe
#: the typed error for a code DingTalk answered
error_for = KINDS.error_for
