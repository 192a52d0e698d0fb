"""Typed DocuSign failures: what the caller should do, DocuSign's ``errorCode``, never personal data.

DocuSign answers errors with an HTTP status and ``{"errorCode": "...", "message": "..."}``;
the message can quote the request (an e-mail address), so messages come from the table below
and DocuSign's text is only used, masked and cut short, for a code the table does not know.
The OAuth server answers ``{"error": "...", "error_description": "..."}`` (RFC 6749).
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

#: errorCode (or OAuth error) -> (field it is about, or "", a sentence that quotes no value)
KNOWN_CODES: dict[str, tuple[str, str]] = {
    "USER_AUTHENTICATION_FAILED": ("", "the access token is invalid or expired"),
    "AUTHORIZATION_INVALID_TOKEN": ("", "the access token is invalid"),
    "USER_LACKS_PERMISSIONS": ("", "the user lacks the permission for this call"),
    "PARTNER_AUTHENTICATION_FAILED": ("", "the integration key was refused"),
    "ACCOUNT_LACKS_PERMISSIONS": ("", "the account lacks the permission for this call"),
    "INVALID_REQUEST_PARAMETER": ("", "a request parameter is invalid"),
    "INVALID_REQUEST_BODY": ("", "the request body is invalid"),
    "INVALID_EMAIL_ADDRESS_FOR_RECIPIENT": ("email", "the signer's e-mail address is invalid"),
    "TEMPLATE_ID_INVALID": ("template_id", "the template does not exist"),
    "INVALID_ROLE_NAME": ("template_role", "the template has no such role"),
    "ENVELOPE_DOES_NOT_EXIST": ("", "the envelope does not exist"),
    "ENVELOPE_CANNOT_VOID_INVALID_STATE": ("", "only an envelope in process can be voided"),
    "HOURLY_APIINVOCATION_LIMIT_EXCEEDED": ("", "the hourly API call limit is exceeded"),
    "BURST_APIINVOCATION_LIMIT_EXCEEDED": ("", "the 30-second burst API call limit is exceeded"),
    "Hourly_Envelope_Polling_Limit_Exceeded": ("", "the envelope was polled too often this hour"),
    "invalid_grant": ("", "the JWT grant was refused (key, user id, integration key or audience)"),
    "consent_required": ("", "the user has not consented to the integration key (impersonation)"),
    "invalid_client": ("", "the integration key is unknown"),
    "unsupported_grant_type": ("", "the grant type is not supported"),
}

TOKEN_INVALID = frozenset({"USER_AUTHENTICATION_FAILED", "AUTHORIZATION_INVALID_TOKEN"})
THROTTLED = frozenset(
    {
        "HOURLY_APIINVOCATION_LIMIT_EXCEEDED",
        "BURST_APIINVOCATION_LIMIT_EXCEEDED",
        "Hourly_Envelope_Polling_Limit_Exceeded",
    }
)
AUTH = frozenset(
    {
        "USER_AUTHENTICATION_FAILED",
        "AUTHORIZATION_INVALID_TOKEN",
        "USER_LACKS_PERMISSIONS",
        "PARTNER_AUTHENTICATION_FAILED",
        "ACCOUNT_LACKS_PERMISSIONS",
        "invalid_grant",
        "consent_required",
        "invalid_client",
        "unsupported_grant_type",
    }
)
CONFLICT: frozenset[str] = frozenset()
NOT_FOUND = frozenset({"ENVELOPE_DOES_NOT_EXIST", "TEMPLATE_ID_INVALID"})

CODES = ErrorCodes(KNOWN_CODES, TOKEN_INVALID, THROTTLED, AUTH, CONFLICT, NOT_FOUND)


class DocuSignError(VendorError):
    """A DocuSign call failed; ``code`` is DocuSign's errorCode (or the HTTP status)."""

    vendor = "DocuSign"
    code_label = "errorCode"


class DocuSignAuthError(DocuSignError, AuthFailed):
    """The key, user, consent or token is wrong: fix the configuration, do not retry."""


class DocuSignRateLimited(DocuSignError, RateLimited):
    """Still over DocuSign's hourly or burst limit after backing off; try again after the reset."""


class DocuSignUnavailable(DocuSignError, Unavailable):
    """Timeouts or server errors outlasted the retries; try again later."""


class DocuSignOutcomeUnknown(DocuSignError, OutcomeUnknown):
    """An envelope was sent and the answer lost: look it up before sending it again."""


class DocuSignConflict(DocuSignError, Conflict):
    """Not used by DocuSign's codes so far; kept so every kind has a class."""


class DocuSignNotFound(DocuSignError, NotFound):
    """The envelope or template does not exist."""


KINDS = ErrorKinds.of(CODES, DocuSignError, code_of_status=str)
