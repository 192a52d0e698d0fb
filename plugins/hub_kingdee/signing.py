"""Kingdee's login signature and the v8 signed request headers (stateless, no login).

- ``LoginBySign``: ``sign = sha256_hex("".join(sorted([acctId, userName, appId, appSecret,
  timestamp])))``. The sort is what Kingdee's own example for third-party logins does
  (``SHA1Util.GetSignature``: ``arr.OrderBy(z => z)``, then join and hash, quoted in a Kingdee
  forum thread) [S]; the SHA-256 variant (``GetSHA256``) is the SDK's for ``LoginBySign`` [V].
- Signed headers (``LoginByApiSignHeaders`` in the SDK ports; Kingdee's Python SDK
  ``WebApiClient.BuildHeader``) [V]::

      X-Api-ClientID, X-Api-Auth-Version: 2.0, x-api-timestamp, x-api-nonce,
      x-api-signheaders: x-api-timestamp,x-api-nonce,
      X-Api-Signature: base64(hex(HMAC-SHA256(clientSecret,
          "POST\\n" + UrlEncodeUpper(path) + "\\n\\nx-api-nonce:N\\nx-api-timestamp:T\\n"))),
      X-Kd-Appkey: appId, X-Kd-Appdata: base64("acctId,userName,lcid,orgNum"),
      X-Kd-Signature: base64(hex(HMAC-SHA256(appSecret, appId + appData)))

  ``appId`` is ``<clientId>_<encoded client secret>``; the SDK decodes the secret by XOR with a
  fixed pad (``encode_util.DecodeAppSecret``: base64-decode, XOR with ROT13 of a constant,
  base64-encode) [V]. Note the double encoding "HMAC -> hex text -> base64 of that text".
"""

from __future__ import annotations

import base64
import codecs
import hashlib
import hmac
import time
import uuid
from collections.abc import Sequence
from urllib.parse import quote

#: The SDK's XOR pad: ROT13 of "0054s397p6234378o09pn7q3r5qropr7" (its random filler digits dropped)
_XOR_PAD = codecs.encode("0054s397p6234378o09pn7q3r5qropr7", "rot13").encode()
ENCODED_SECRET_CHARS = 32


def login_sign(values: Sequence[str]) -> str:
    """``LoginBySign``'s signature: SHA-256 hex of the values sorted, then joined."""
    return hashlib.sha256("".join(sorted(values)).encode("utf-8")).hexdigest()


def hex_hmac_b64(secret: str, message: str) -> str:
    """base64 of the hex text of HMAC-SHA256: how every Kingdee header signature is encoded."""
    digest = hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()
    return base64.b64encode(digest.encode("ascii")).decode("ascii")


def signature_message(path: str, nonce: str, timestamp: str) -> str:
    """What ``X-Api-Signature`` signs: the method, the URL-encoded path (upper-case hex), the headers."""
    return f"POST\n{quote(path, safe='')}\n\nx-api-nonce:{nonce}\nx-api-timestamp:{timestamp}\n"


def xor_secret(value: str) -> str:
    """The SDK's secret obfuscation, which is its own inverse: decode (and encode) a client secret."""
    raw = base64.b64decode(value)
    return base64.b64encode(bytes(b ^ _XOR_PAD[i % len(_XOR_PAD)] for i, b in enumerate(raw))).decode("ascii")


def client_credentials(app_id: str, api_client_secret: str = "") -> tuple[str, str]:
    """(client id, client secret) of a v8 app id ``<clientId>_<encoded secret>``.

    ``api_client_secret`` (already decoded) wins over the encoded part; an app id without one
    has no client credentials, and only the ``X-Kd-*`` headers are sent.
    """
    client_id, sep, encoded = app_id.partition("_")
    if not sep:
        return "", ""
    if api_client_secret:
        return client_id, api_client_secret
    if len(encoded) != ENCODED_SECRET_CHARS:
        return "", ""
    return client_id, xor_secret(encoded)


def signed_headers(
    *,
    path: str,
    app_id: str,
    app_secret: str,
    acct_id: str,
    username: str,
    lcid: int,
    org_number: str,
    api_client_secret: str = "",
    nonce: str | None = None,
    timestamp: str | None = None,
) -> dict[str, str]:
    """The headers that sign one request to ``path`` (``/k3cloud/Kingdee.BOS...kdsvc``)."""
    headers: dict[str, str] = {}
    client_id, client_secret = client_credentials(app_id, api_client_secret)
    if client_id and client_secret:
        stamp = timestamp or str(int(time.time() * 1000))
        once = nonce or uuid.uuid4().hex
        headers.update(
            {
                "X-Api-ClientID": client_id,
                "X-Api-Auth-Version": "2.0",
                "x-api-timestamp": stamp,
                "x-api-nonce": once,
                "x-api-signheaders": "x-api-timestamp,x-api-nonce",
                "X-Api-Signature": hex_hmac_b64(client_secret, signature_message(path, once, stamp)),
            }
        )
    app_data = f"{acct_id},{username},{lcid},{org_number}"
    headers.update(
        {
            "X-Kd-Appkey": app_id,
            "X-Kd-Appdata": base64.b64encode(app_data.encode("utf-8")).decode("ascii"),
            "X-Kd-Signature": hex_hmac_b64(app_secret, app_id + app_data),
        }
    )
    return headers
