"""Typed WeCom failures: what the caller should do, the vendor's errcode, never personal data.

Messages are built from a fixed table of reasons per errcode. WeCom's own ``errmsg`` is only
used, masked and cut short, for codes the table does not know: it can quote the request
(``mobile existed:<userid>``), and these messages reach logs, task rows and the CLI.
"""

from __future__ import annotations

from hub import vendor_http
from hub.vendor_http import ErrorCodes, ErrorKinds

#: errcode -> (field it is about, or "", a sentence that quotes no value)
KNOWN_CODES: dict[int, tuple[str, str]] = {
    -1: ("", "system busy"),
    40001: ("", "invalid corp secret or access token"),
    40013: ("", "invalid corp id"),
    40014: ("", "invalid access token"),
    40056: ("", "invalid agent id"),
    40058: ("", "invalid parameter"),
    41001: ("", "access token missing"),
    42001: ("", "access token expired"),
    44004: ("", "message content is empty"),
    45009: ("", "API frequency limit reached"),
    45033: ("", "API concurrency limit reached"),
    46004: ("", "no such member"),
    48002: ("", "the app has no permission for this API"),
    60003: ("department", "department not found"),
    60011: ("", "the app may not manage this member, department or tag"),
    60020: ("", "the caller's IP is not on the app's trusted IP list"),
    60102: ("userid", "the userid is already taken"),
    60103: ("mobile", "the mobile number is not valid"),
    60104: ("mobile", "the mobile number is already used by another member"),
    60105: ("email", "the e-mail address is not valid"),
    60106: ("email", "the e-mail address is already used by another member"),
    60111: ("userid", "no member with this userid"),
    60112: ("name", "the member name is not valid"),
    60127: ("department", "department missing"),
    60129: ("mobile", "a member needs a mobile number or an e-mail address"),
    82001: ("", "every recipient is invalid"),
}

#: errcodes that mean "fetch a new token and try once more"
TOKEN_INVALID = frozenset({40001, 40014, 42001})
#: errcodes that mean "back off and try again"
THROTTLED = frozenset({45009, 45033})
#: errcodes about credentials or permissions
AUTH = frozenset({40001, 40013, 41002, 41004, 48002, 50001, 60011, 60020})
CONFLICT = frozenset({60102, 60104, 60106})
NOT_FOUND = frozenset({46004, 60111, 60003, 82001})

CODES = ErrorCodes(KNOWN_CODES, TOKEN_INVALID, THROTTLED, AUTH, CONFLICT, NOT_FOUND)


class WeComError(vendor_http.VendorError):
    """A WeCom call failed; ``code`` is WeCom's errcode (or the HTTP status), ``operation`` ours."""

    vendor = "WeCom"
    code_label = "errcode"


class WeComAuthError(WeComError, vendor_http.AuthFailed):
    """Credentials, IP allow-list or permissions are wrong: fix the configuration, do not retry."""


class WeComRateLimited(WeComError, vendor_http.RateLimited):
    """Still over WeCom's frequency limit after backing off; try again later."""


class WeComUnavailable(WeComError, vendor_http.Unavailable):
    """Timeouts or server errors outlasted the retries; try again later."""


class WeComOutcomeUnknown(WeComError, vendor_http.OutcomeUnknown):
    """A write was sent and its answer lost: look the record up before sending it again."""


class WeComConflict(WeComError, vendor_http.Conflict):
    """The value of ``field`` (mobile, userid, e-mail) already belongs to another member."""


class WeComNotFound(WeComError, vendor_http.NotFound):
    """The member, department or approval does not exist."""


KINDS = ErrorKinds.of(CODES, WeComError)
#: (field, reason) for a code; an unknown code keeps a masked excerpt of the vendor's text
describe = CODES.describe
#: the typed error for a code WeCom answered
error_for = KINDS.error_for
