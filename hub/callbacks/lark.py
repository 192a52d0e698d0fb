"""Feishu / Lark event callbacks: "Encrypt Key" decryption, ``X-Lark-Signature``, URL verification.

With an Encrypt Key configured, Feishu POSTs ``{"encrypt": b64(iv || AES-256-CBC(event))}``
with ``key = SHA256(encrypt_key)`` and PKCS#7 to 16 bytes, and signs each delivery with
``X-Lark-Signature = sha256_hex(timestamp + nonce + encrypt_key + raw_body)`` (vendors.md §0,
lark-oapi ``dispatcher_handler``). The signature covers the raw body bytes, so verify it before
parsing anything. Inside the event, the Verification Token (``header.token`` in schema 2.0,
``token`` in 1.0 and in ``url_verification``) identifies the app.

Feishu does not sign the ``url_verification`` handshake; it is authenticated by the token
(and, with an Encrypt Key, by decrypting at all).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from hub.callbacks.errors import DecryptError, SignatureError
from hub.callbacks.wxbiz import b64decode_strict, pkcs7_pad, pkcs7_unpad

IV_BYTES = 16
TIMESTAMP_HEADER = "X-Lark-Request-Timestamp"
NONCE_HEADER = "X-Lark-Request-Nonce"
SIGNATURE_HEADER = "X-Lark-Signature"


class LarkCrypto:
    """One app's Encrypt Key: decrypt and verify (hub), encrypt and sign (simulator)."""

    def __init__(self, encrypt_key: str, *, iv_source: Callable[[int], bytes] = os.urandom) -> None:
        if not encrypt_key:
            raise ValueError("the Encrypt Key is required")
        self._encrypt_key = encrypt_key
        self._key = hashlib.sha256(encrypt_key.encode()).digest()
        self._iv_source = iv_source

    # -- AES -------------------------------------------------------------------------------------

    def decrypt(self, encrypt: str) -> bytes:
        """The event JSON inside ``encrypt``; :class:`DecryptError` on any malformed input."""
        raw = b64decode_strict(encrypt, "Lark ciphertext")
        if len(raw) < 2 * IV_BYTES or len(raw) % IV_BYTES:
            raise DecryptError("Lark ciphertext length is not IV plus whole AES blocks")
        decryptor = Cipher(algorithms.AES(self._key), modes.CBC(raw[:IV_BYTES])).decryptor()
        return pkcs7_unpad(decryptor.update(raw[IV_BYTES:]) + decryptor.finalize(), IV_BYTES)

    def encrypt(self, plaintext: bytes | str, *, iv: bytes | None = None) -> str:
        """``b64(iv || ciphertext)`` as Feishu produces it; ``iv`` is random unless pinned."""
        message = plaintext.encode() if isinstance(plaintext, str) else plaintext
        vector = self._iv_source(IV_BYTES) if iv is None else iv
        if len(vector) != IV_BYTES:
            raise ValueError(f"the IV must be {IV_BYTES} bytes")
        encryptor = Cipher(algorithms.AES(self._key), modes.CBC(vector)).encryptor()
        sealed = encryptor.update(pkcs7_pad(message, IV_BYTES)) + encryptor.finalize()
        return base64.b64encode(vector + sealed).decode()

    def decrypt_body(self, body: bytes) -> bytes:
        """The event JSON of a raw ``{"encrypt": ...}`` request body."""
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise DecryptError("Lark callback body is not JSON") from None
        encrypt = document.get("encrypt") if isinstance(document, dict) else None
        if not isinstance(encrypt, str) or not encrypt:
            raise DecryptError("Lark callback body has no encrypt field")
        return self.decrypt(encrypt)

    def encrypted_body(self, plaintext: bytes | str, *, iv: bytes | None = None) -> bytes:
        """Simulator side: the raw body Feishu POSTs when an Encrypt Key is set."""
        return json.dumps({"encrypt": self.encrypt(plaintext, iv=iv)}).encode()

    # -- signature -------------------------------------------------------------------------------

    def sign(self, timestamp: str, nonce: str, body: bytes) -> str:
        """``X-Lark-Signature`` of a raw body."""
        return hashlib.sha256(
            (timestamp + nonce + self._encrypt_key).encode("utf-8", "replace") + body
        ).hexdigest()

    def verify_signature(self, timestamp: str, nonce: str, body: bytes, signature: str) -> None:
        """Raise :class:`SignatureError` unless ``signature`` matches the raw ``body``."""
        expected = self.sign(timestamp, nonce, body)
        if not signature or not hmac.compare_digest(
            signature.strip().lower().encode("utf-8", "replace"), expected.encode("utf-8", "replace")
        ):
            raise SignatureError("Lark X-Lark-Signature does not match")

    def verify_headers(self, headers: Mapping[str, str], body: bytes) -> None:
        """:meth:`verify_signature` reading the three ``X-Lark-*`` headers, in any letter case."""
        lowered = {name.lower(): value for name, value in headers.items()}
        self.verify_signature(
            lowered.get(TIMESTAMP_HEADER.lower(), ""),
            lowered.get(NONCE_HEADER.lower(), ""),
            body,
            lowered.get(SIGNATURE_HEADER.lower(), ""),
        )

    def signed_headers(self, body: bytes, *, timestamp: str, nonce: str) -> dict[str, str]:
        """Simulator side: the headers Feishu sends with ``body``."""
        return {
            TIMESTAMP_HEADER: timestamp,
            NONCE_HEADER: nonce,
            SIGNATURE_HEADER: self.sign(timestamp, nonce, body),
        }


def event_token(event: Mapping[str, Any]) -> str:
    """The Verification Token an event carries (schema 2.0 ``header.token``, else ``token``)."""
    header = event.get("header")
    if isinstance(header, Mapping) and isinstance(header.get("token"), str):
        return str(header["token"])
    token = event.get("token")
    return token if isinstance(token, str) else ""


def check_verification_token(event: Mapping[str, Any], verification_token: str) -> None:
    """Raise :class:`SignatureError` unless the event carries this app's Verification Token."""
    carried = event_token(event)
    if not carried or not hmac.compare_digest(
        carried.encode("utf-8", "replace"), verification_token.encode("utf-8", "replace")
    ):
        raise SignatureError("Lark verification token does not match")


def url_verification_reply(event: Mapping[str, Any], verification_token: str) -> dict[str, str] | None:
    """``{"challenge": ...}`` for a ``url_verification`` event, ``None`` for any other event.

    The token is checked first: answering a stranger's challenge would confirm the URL is live.
    """
    if event.get("type") != "url_verification":
        return None
    check_verification_token(event, verification_token)
    challenge = event.get("challenge")
    if not isinstance(challenge, str):
        raise DecryptError("Lark url_verification has no challenge")
    return {"challenge": challenge}
