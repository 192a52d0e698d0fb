"""Typed SuccessFactors failures: what the caller should do, the HTTP status, never personal data.

The OData API answers errors with an HTTP status and ``{"error": {"code", "message": {"lang",
"value"}}}``; the token endpoint with ``{"errorMessage": ...}``. Both texts can quote the request
(a user id, an e-mail address), so messages come from the table below by status and the vendor's
text is only used, masked and cut short, for statuses the table does not know. An upsert's rows
are answered inside an HTTP 200 (``status``/``httpCode``/``message`` per row); a refused row is a
:class:`SuccessFactorsRowRefused` (4xx: the data is wrong, an operator must look) or a
:class:`SuccessFactorsRowFailed` (5xx inside the 200: tried again later).
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

#: HTTP status -> (field it is about, or "", a sentence that quotes no value)
KNOWN_CODES: dict[int, tuple[str, str]] = {
    400: ("", "the request was refused as malformed (unknown entity, property or filter)"),
    401: ("", "the access token is missing, invalid or expired"),
    403: ("", "the API user lacks the permission for this entity"),
    404: ("", "no such entity or record"),
    405: ("", "method not allowed on this resource"),
    412: ("", "a precondition failed (the record changed meanwhile)"),
    429: ("", "over SuccessFactors' API rate limit"),
}

CODES = ErrorCodes(
    KNOWN_CODES,
    token_invalid=frozenset({401}),
    throttled=frozenset({429}),
    auth=frozenset({401, 403}),  # 401 after a fresh token: the client or user is refused
    conflict=frozenset({412}),
    not_found=frozenset({404}),
)


class SuccessFactorsError(VendorError):
    """A SuccessFactors call failed; ``code`` is the HTTP status (or a row's ``httpCode``)."""

    vendor = "SuccessFactors"
    code_label = "HTTP"


class SuccessFactorsAuthError(SuccessFactorsError, AuthFailed):
    """The OAuth client, key, company or API user is wrong, or lacks permissions: fix the configuration."""


class SuccessFactorsRateLimited(SuccessFactorsError, RateLimited):
    """Still throttled (429) after backing off; try again later (``retry_after``)."""


class SuccessFactorsUnavailable(SuccessFactorsError, Unavailable):
    """Timeouts or 5xx outlasted the retries; try again later."""


class SuccessFactorsOutcomeUnknown(SuccessFactorsError, OutcomeUnknown):
    """A non-idempotent call was sent and its answer lost (upserts are idempotent: never this)."""


class SuccessFactorsConflict(SuccessFactorsError, Conflict):
    """The record changed between read and write."""


class SuccessFactorsNotFound(SuccessFactorsError, NotFound):
    """The entity or record does not exist."""


KINDS = ErrorKinds.of(CODES, SuccessFactorsError)


class SuccessFactorsRowRefused(SuccessFactorsError):
    """An upsert row came back ``ERROR`` with a 4xx ``httpCode`` (a missing required field, a bad
    value, an unknown parent): retrying the same data cannot help. ``index`` is the row's place
    in the request, ``entity`` its entity."""

    def __init__(self, entity: str, index: int, http_code: int | None, reason: str) -> None:
        self.entity, self.index = entity, index
        super().__init__(f"upsert {entity} (row {index})", http_code, reason)


class SuccessFactorsRowFailed(SuccessFactorsRowRefused):
    """An upsert row came back ``ERROR`` with a 5xx ``httpCode``: the server failed on it; the
    upsert (idempotent by key) is sent again later."""

    retryable = True
