"""Typed SCIM failures: what the caller should do, the HTTP status and ``scimType``, no personal data.

RFC 7644 §3.12 errors are ``{"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
"status": "409", "scimType": "uniqueness", "detail": "..."}``. A failure's ``code`` is the
HTTP status and, when the server named one of the RFC's ``scimType`` values, that type
(``"409 uniqueness"``, ``"400 invalidFilter"``, ``"404"``). Messages come from the fixed
tables below. The server's ``detail`` is never used: servers quote the request in it
(``userName 'zhang.san@example.com' already exists``), and these messages reach logs, task rows
and the CLI.
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

#: RFC 7644 §3.12 table 9: scimType -> (the attribute it is about, or "", a sentence)
SCIM_TYPES: dict[str, tuple[str, str]] = {
    "invalidFilter": ("filter", "the filter is invalid or not supported for this attribute"),
    "tooMany": ("filter", "the query would return more results than the server allows"),
    "uniqueness": ("", "a value that must be unique (userName, externalId) is already taken"),
    "mutability": ("", "the request changes an attribute the server does not let change"),
    "invalidSyntax": ("", "the request body is not valid for the server's schema"),
    "invalidPath": ("path", "the PATCH path is invalid"),
    "noTarget": ("path", "the PATCH path matched no attribute or value"),
    "invalidValue": ("", "a value is missing, of the wrong type or not allowed"),
    "invalidVers": ("", "the SCIM protocol version is not supported"),
    "sensitive": ("", "the request carries sensitive data in its URL; the server refuses it"),
}

#: RFC 7644 §3.12 table 8 (and 429/503, which servers send too): status -> sentence
STATUSES: dict[int, str] = {
    400: "the server refused the request as malformed",
    401: "the credentials (bearer token or username and password) were refused",
    403: "the credentials may not perform this operation",
    404: "no such resource",
    409: "the resource conflicts with an existing one",
    412: "the resource changed since it was read (ETag mismatch)",
    413: "the request is larger than the server accepts",
    429: "too many requests",
    500: "the server failed",
    501: "the server does not implement this operation",
    503: "the server is unavailable",
}

#: statuses a scimType is sent with (the RFC's, and the ones servers use instead)
TYPED_STATUSES = (400, 403, 409)


def code_of(status: int, scim_type: object = None) -> str:
    """``"409 uniqueness"``: the status, and the RFC scimType when the server gave a known one.

    A type the RFC does not define is dropped (it is the server's text, not a code).
    """
    if isinstance(scim_type, str):
        canonical = {t.lower(): t for t in SCIM_TYPES}.get(scim_type.strip().lower())
        if canonical is not None and status in TYPED_STATUSES:
            return f"{status} {canonical}"
    return str(status)


def _known() -> dict[str, tuple[str, str]]:
    known = {str(status): ("", reason) for status, reason in STATUSES.items()}
    for status in TYPED_STATUSES:
        for scim_type, described in SCIM_TYPES.items():
            known[f"{status} {scim_type}"] = described
    return known


CODES = ErrorCodes(
    _known(),
    token_invalid=frozenset(),  # static credentials: nothing to refetch
    throttled=frozenset({"429"}),
    auth=frozenset({"401", "403"}),
    conflict=frozenset({"409", *(f"{s} uniqueness" for s in TYPED_STATUSES)}),
    not_found=frozenset({"404"}),
)


class ScimError(VendorError):
    """A SCIM call failed; ``code`` is ``"<HTTP status>[ <scimType>]"``, ``operation`` hub's."""

    vendor = "SCIM"
    code_label = "status"


class ScimAuthError(ScimError, AuthFailed):
    """The credentials were refused or may not do this: fix the configuration, do not retry."""


class ScimRateLimited(ScimError, RateLimited):
    """Still over the server's rate limit (HTTP 429) after backing off; try again later."""


class ScimUnavailable(ScimError, Unavailable):
    """Timeouts or server errors outlasted the retries; try again later."""


class ScimOutcomeUnknown(ScimError, OutcomeUnknown):
    """A write was sent and its answer lost: look the user up before sending it again."""


class ScimConflict(ScimError, Conflict):
    """A unique value (``field``: userName, externalId) already belongs to another resource."""


class ScimNotFound(ScimError, NotFound):
    """The resource the call names does not exist (any more)."""


class ScimPreconditionFailed(ScimError):
    """The resource kept changing under hub's writes (HTTP 412 on ``If-Match``); try again later."""

    retryable = True


KINDS: ErrorKinds[ScimError] = ErrorKinds.of(CODES, ScimError, code_of_status=str)
