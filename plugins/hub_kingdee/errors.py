"""Typed Kingdee failures: what the caller should do, Kingdee's ``MsgCode``, never personal data.

A failed Kingdee call answers ``Result.ResponseStatus{IsSuccess: false, MsgCode, Errors[{FieldName,
Message, DIndex}]}``. The ``MsgCode`` says what kind of failure it is (Kingdee's table, transcribed
in its WebAPI docs and many clients [S]); the ``Errors`` say which field. Kingdee's ``Message``
often quotes the value it refused (a bank account, a name), so :func:`scrub` removes every value
hub sent in the request before a message is kept, and masks what is left.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hub.masking import mask_text
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

#: MsgCode: 上下文丢失 (no valid session; log in again, once)
SESSION_LOST = 1
#: MsgCode: 调用限制 (call limit; back off)
CALL_LIMIT = 14
#: MsgCode: 网控冲突 (another user holds the record under network control; try again later)
NETWORK_CONTROL = 13

#: MsgCode -> ("", a sentence that quotes no value)
KNOWN_CODES: dict[int, tuple[str, str]] = {
    0: ("", "refused"),
    1: ("", "no valid session (会话信息已丢失): the login is refused or the session expired"),
    2: ("", "the integration user has no permission for this operation"),
    3: ("", "the operation is missing"),
    4: ("", "Kingdee raised an exception (unknown form, bad filter, ...)"),
    5: ("", "the form id is missing"),
    6: ("", "Kingdee's database refused the change"),
    7: ("", "Kingdee's licence refuses the call"),
    8: ("", "a parameter is missing or malformed"),
    9: ("", "a field or value does not exist in the form's metadata"),
    10: ("", "no such record"),
    11: ("", "validation failed"),
    12: ("", "the record's status does not allow the operation"),
    13: ("", "network control conflict: another user holds the record"),
    14: ("", "call limit reached"),
    15: ("", "administrators may not log in through the WebAPI"),
}

CODES = ErrorCodes(
    KNOWN_CODES,
    token_invalid=frozenset({SESSION_LOST}),
    throttled=frozenset({CALL_LIMIT}),
    auth=frozenset({SESSION_LOST, 2, 7, 15}),
    not_found=frozenset({10}),
)

#: the shortest value scrubbed from Kingdee's messages (two characters: a Chinese given name)
MIN_SCRUBBED = 2
#: how many of Kingdee's error entries a message keeps
SHOWN_ERRORS = 3
MESSAGE_CHARS = 160


class KingdeeError(VendorError):
    """A Kingdee call failed; ``code`` is Kingdee's MsgCode (or the HTTP status), ``operation`` hub's.

    ``field`` is the first ``FieldName`` Kingdee named; ``errors`` every (field, scrubbed message).
    """

    vendor = "Kingdee"
    code_label = "MsgCode"

    def __init__(
        self,
        operation: str,
        code: int | str | None,
        reason: str,
        *,
        field: str = "",
        retry_after: float | None = None,
        errors: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(operation, code, reason, field=field, retry_after=retry_after)
        self.errors = errors


class KingdeeAuthError(KingdeeError, AuthFailed):
    """Login refused, session lost twice, no permission or licence: fix the configuration."""


class KingdeeRateLimited(KingdeeError, RateLimited):
    """Still over Kingdee's call limit (MsgCode 14) after backing off; try again later."""


class KingdeeUnavailable(KingdeeError, Unavailable):
    """Timeouts, server errors or network-control conflicts outlasted the retries."""


class KingdeeOutcomeUnknown(KingdeeError, OutcomeUnknown):
    """A write was sent and its answer lost: look the record up before sending it again."""


class KingdeeConflict(KingdeeError, Conflict):
    """A value (the employee number) already belongs to another record."""


class KingdeeNotFound(KingdeeError, NotFound):
    """The record the call names does not exist (MsgCode 10)."""


KINDS = ErrorKinds.of(CODES, KingdeeError)


def sent_values(data: Any) -> set[str]:
    """Every scalar value in a request's data, as text (what Kingdee's messages may quote)."""
    found: set[str] = set()
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif item is not None and not isinstance(item, bool):
            text = str(item).strip()
            if len(text) >= MIN_SCRUBBED:
                found.add(text)
    return found


def scrub(message: str, values: Iterable[str]) -> str:
    """Kingdee's ``message`` without any value hub sent (longest first), masked and cut short."""
    text = " ".join(str(message or "").split())
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, "***")
    return mask_text(text)[:MESSAGE_CHARS]


def describe_errors(status: Mapping[str, Any], values: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """(FieldName, scrubbed Message) of each of Kingdee's error entries."""
    shown = set(values)
    entries = status.get("Errors") or []
    described = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, Mapping):
            continue
        field = str(entry.get("FieldName") or "").strip()
        described.append((field, scrub(str(entry.get("Message") or ""), shown)))
    return tuple(described)


def error_from_status(operation: str, status: Mapping[str, Any], values: Iterable[str]) -> KingdeeError:
    """The typed error for a ``ResponseStatus`` with ``IsSuccess: false``.

    The reason names Kingdee's fields and keeps Kingdee's messages with every sent value
    removed: "validation failed: F_HUB_BankAccount: 银行账号“***”不是有效的银行账号".
    """
    code = msg_code(status)
    entries = describe_errors(status, values)
    _, sentence = CODES.describe(code)
    details = "; ".join(
        f"{field}: {message}" if field else message for field, message in entries[:SHOWN_ERRORS]
    )
    reason = f"{sentence}: {details}" if details else sentence
    field = next((f for f, _ in entries if f), "")
    kind = KINDS.error_for(operation, code, "")
    return type(kind)(operation, code, reason, field=field, errors=entries)


def msg_code(status: Mapping[str, Any]) -> int:
    """Kingdee's MsgCode as a number (some versions send it as a string; absent is 0)."""
    try:
        return int(status.get("MsgCode") or 0)
    except (TypeError, ValueError):
        return 0
