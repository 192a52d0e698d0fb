"""The SAML 2.0 bearer assertion SuccessFactors' ``/oauth/token`` takes, signed with ``cryptography``.

SuccessFactors has no client secret: an OAuth client is registered with an X.509 certificate
(its "API key" is the ``client_id``), and the client proves itself with an assertion signed by
the certificate's private key (RFC 7522, ``grant_type=urn:ietf:params:oauth:grant-type:saml2-bearer``).
The assertion names the API user in ``NameID``, the client in an ``api_key`` attribute, the
audience ``www.successfactors.com`` and the token URL as recipient; it is valid for a few
minutes and used once (a fresh ``ID`` for every token request).

The signature is an enveloped XML-DSig signature: RSA-SHA256 over the exclusive-canonical
``SignedInfo``, which holds the SHA-256 digest of the assertion without its signature. Rather
than canonicalising a parsed tree (which would need lxml/xmlsec), the assertion is *written*
in its canonical form: no whitespace between elements, attributes in order, namespaces
declared on the elements that use them, empty elements as start/end pairs, text escaped as
C14N escapes it. The bytes digested and signed are then exactly what an exclusive-C14N
verifier computes; the tests check it against ElementTree's C14N 2.0 writer, and the
simulator (``hub.sandbox.successfactors``) verifies the signature independently.

What was checked, and where (searched 2026-11; nothing was run against SuccessFactors):

- token request form ``client_id, company_id, grant_type, assertion`` (base64 of the signed
  XML) and answer ``{access_token, token_type, expires_in}``, error text in ``errorMessage``:
  ``piejanssens/sf-oauth`` ``src/gen.js`` and ``src/serve.js`` [S];
- audience ``www.successfactors.com``, the ``api_key`` attribute, ``NameID`` = user id,
  recipient = the token URL: ``sf-oauth`` ``gen.js`` [S]; jitterbit's SuccessFactors OData
  security provider defaults issuer = client id and recipient = ``{api}/odata/v2`` [S]
  (vendors.md §6.1): both recipients are accepted by the simulator, the token URL is sent;
- ``NameID`` is always read as a user id (not a user name) for hand-made assertions: SAP
  community blog "SAML assertions for SAP SuccessFactors OAuth 2.0 API's: handling of user
  identifiers" (2023) [S];
- ``/oauth/idp`` (SuccessFactors signs the assertion when sent the private key) is deprecated
  (same blog, KBA 3031657 points to the offline tool instead) and is not used: the private key
  never leaves hub.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SAML_NS = "urn:oasis:names:tc:SAML:2.0:assertion"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
NAMEID_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
PASSWORD_TRANSPORT = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"  # noqa: S105
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:saml2-bearer"
AUDIENCE = "www.successfactors.com"
#: How long an assertion is valid (SAP's offline tool defaults to 10 minutes).
DEFAULT_LIFETIME_S = 600
#: How far back ``NotBefore`` reaches, for a server clock slightly behind ours.
CLOCK_SKEW_S = 60


class AssertionKeyError(ValueError):
    """The configured private key is not an RSA private key in PEM (the message quotes none of it)."""


def load_private_key(text: str) -> rsa.RSAPrivateKey:
    """An RSA private key from PEM text (PKCS#8 or PKCS#1), or from the bare base64 body of one.

    SuccessFactors' tools hand out the key as PEM; some admins paste only the base64 body.
    """
    value = text.strip()
    if "-----BEGIN" not in value:
        body = "".join(value.split())
        value = "-----BEGIN PRIVATE KEY-----\n" + body + "\n-----END PRIVATE KEY-----\n"
    try:
        key = serialization.load_pem_private_key(value.encode(), password=None)
    except (ValueError, TypeError):
        raise AssertionKeyError("the private key is not a PEM private key (or it is encrypted)") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise AssertionKeyError("the private key is not an RSA key (SuccessFactors signs with RSA-SHA256)")
    return key


# -- canonical XML, written directly ---------------------------------------------------------


def _text(value: str) -> str:
    """Character data as C14N writes it."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#xD;")


def _attribute(value: str) -> str:
    """An attribute value as C14N writes it."""
    return (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace('"', "&quot;")
        .replace("\t", "&#x9;")
        .replace("\n", "&#xA;")
        .replace("\r", "&#xD;")
    )


def _element(tag: str, attributes: dict[str, str] | None = None, *content: str, xmlns: str = "") -> str:
    """``<tag xmlns.. a="..">content</tag>``: namespace first, then attributes by name (all are
    unqualified, so C14N orders them by name alone)."""
    attrs = "".join(f' {name}="{_attribute(value)}"' for name, value in sorted((attributes or {}).items()))
    return f"<{tag}{xmlns}{attrs}>{''.join(content)}</{tag}>"


def _instant(moment: datetime) -> str:
    """``2026-11-02T08:00:00.000Z``: SAML's xs:dateTime in UTC."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class AssertionRequest:
    """What an assertion says: who asks (``client_id``), for whom (``user_id``), to whom."""

    client_id: str
    user_id: str
    #: where the assertion is presented (the token URL)
    recipient: str
    #: who issues it; SuccessFactors' clients use the client id
    issuer: str = ""
    audience: str = AUDIENCE
    lifetime: float = DEFAULT_LIFETIME_S


def _unsigned(request: AssertionRequest, assertion_id: str, now: datetime) -> tuple[str, str, str]:
    """(start tag, issuer element, the elements after the signature) of the assertion."""
    until = now + timedelta(seconds=request.lifetime)
    start = (
        f'<saml2:Assertion xmlns:saml2="{SAML_NS}"'
        f' ID="{_attribute(assertion_id)}" IssueInstant="{_instant(now)}" Version="2.0">'
    )
    issuer = _element("saml2:Issuer", None, _text(request.issuer or request.client_id))
    subject = _element(
        "saml2:Subject",
        None,
        _element("saml2:NameID", {"Format": NAMEID_UNSPECIFIED}, _text(request.user_id)),
        _element(
            "saml2:SubjectConfirmation",
            {"Method": BEARER},
            _element(
                "saml2:SubjectConfirmationData",
                {"NotOnOrAfter": _instant(until), "Recipient": request.recipient},
            ),
        ),
    )
    conditions = _element(
        "saml2:Conditions",
        {"NotBefore": _instant(now - timedelta(seconds=CLOCK_SKEW_S)), "NotOnOrAfter": _instant(until)},
        _element(
            "saml2:AudienceRestriction", None, _element("saml2:Audience", None, _text(request.audience))
        ),
    )
    authn = _element(
        "saml2:AuthnStatement",
        {"AuthnInstant": _instant(now), "SessionIndex": assertion_id},
        _element(
            "saml2:AuthnContext", None, _element("saml2:AuthnContextClassRef", None, PASSWORD_TRANSPORT)
        ),
    )
    attributes = _element(
        "saml2:AttributeStatement",
        None,
        _element(
            "saml2:Attribute",
            {"Name": "api_key"},
            _element("saml2:AttributeValue", None, _text(request.client_id)),
        ),
    )
    return start, issuer, subject + conditions + authn + attributes


def signed_info(reference: str, digest: bytes) -> str:
    """The ``SignedInfo`` element's content (children) for a reference and its SHA-256 digest."""
    return (
        _element("ds:CanonicalizationMethod", {"Algorithm": EXC_C14N})
        + _element("ds:SignatureMethod", {"Algorithm": RSA_SHA256})
        + _element(
            "ds:Reference",
            {"URI": reference},
            _element(
                "ds:Transforms",
                None,
                _element("ds:Transform", {"Algorithm": ENVELOPED}),
                _element("ds:Transform", {"Algorithm": EXC_C14N}),
            ),
            _element("ds:DigestMethod", {"Algorithm": SHA256}),
            _element("ds:DigestValue", None, base64.b64encode(digest).decode()),
        )
    )


def signed_assertion(
    key: rsa.RSAPrivateKey,
    request: AssertionRequest,
    *,
    now: datetime | None = None,
    assertion_id: str | None = None,
) -> bytes:
    """The assertion XML, signed (enveloped XML-DSig, RSA-SHA256, exclusive C14N)."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    ident = assertion_id or f"_{uuid.uuid4().hex}"  # an xs:ID starts with a letter or "_"
    start, issuer, rest = _unsigned(request, ident, moment)
    # enveloped-signature transform: the digest covers the assertion without its Signature
    digest = hashlib.sha256((start + issuer + rest + "</saml2:Assertion>").encode()).digest()
    info = signed_info(f"#{ident}", digest)
    # exclusive C14N of SignedInfo on its own: the ds namespace it uses is declared on it
    canonical_info = f'<ds:SignedInfo xmlns:ds="{DSIG_NS}">{info}</ds:SignedInfo>'
    signature = key.sign(canonical_info.encode(), padding.PKCS1v15(), hashes.SHA256())
    signature_element = (
        f'<ds:Signature xmlns:ds="{DSIG_NS}"><ds:SignedInfo>{info}</ds:SignedInfo>'
        f"<ds:SignatureValue>{base64.b64encode(signature).decode()}</ds:SignatureValue></ds:Signature>"
    )
    # SAML's schema puts the Signature right after the Issuer
    return (start + issuer + signature_element + rest + "</saml2:Assertion>").encode()


def token_assertion(key: rsa.RSAPrivateKey, request: AssertionRequest, *, now: datetime | None = None) -> str:
    """The ``assertion`` form value of a token request: the signed XML, base64 (a fresh ID each time)."""
    return base64.b64encode(signed_assertion(key, request, now=now)).decode()
