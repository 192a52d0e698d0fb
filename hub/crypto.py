"""Keys and authenticated encryption for what hub stores about people.

A key provider (plugin hook ``hub_key_provider``) supplies the key-encryption key (KEK).
Purpose keys are derived from it with HKDF, so one secret protects dead letters, secrets
and blind indexes without any key ever being reused across purposes. Ciphertexts are
AES-256-GCM with associated data that binds each value to where it is stored: a value
copied to another row or column fails to decrypt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hub.errors import ConfigProblem, ConfigurationError, HubError

FORMAT_VERSION = 1
ALG_AES256GCM = 1
NONCE_BYTES = 12


class KeyProvider(Protocol):
    """Supplies the key-encryption key; implement it in a plugin for Vault or a cloud KMS."""

    key_id: str

    def load_kek(self) -> bytes:
        """Return the 32-byte key-encryption key."""
        ...


class DecryptionError(HubError):
    """A ciphertext was tampered with, moved, or sealed under another key."""


@dataclass
class EnvKeyProvider:
    """KEK from an environment variable holding 32 bytes, base64-encoded."""

    variable: str = "HUB_MASTER_KEY"
    key_id: str = "env"

    def load_kek(self) -> bytes:
        raw = os.environ.get(self.variable, "")
        try:
            key = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        except ValueError as exc:
            raise ConfigurationError([ConfigProblem(self.variable, "is not base64")], "environment") from exc
        if len(key) != 32:
            raise ConfigurationError(
                [ConfigProblem(self.variable, "must decode to 32 bytes (hub keys init prints one)")],
                "environment",
            )
        return key


@dataclass
class FileKeyProvider:
    """KEK in a file readable by its owner only; created on first use."""

    path: Path
    key_id: str = "file"

    def load_kek(self) -> bytes:
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(base64.urlsafe_b64encode(os.urandom(32)))
        mode = stat.S_IMODE(self.path.stat().st_mode)
        if mode & 0o077:
            raise ConfigurationError(
                [ConfigProblem(str(self.path), f"key file mode is {oct(mode)}; it must be 0600")], "keys"
            )
        key = base64.urlsafe_b64decode(self.path.read_bytes().strip())
        if len(key) != 32:
            raise ConfigurationError([ConfigProblem(str(self.path), "key file must hold 32 bytes")], "keys")
        return key


class Keyring:
    """Purpose keys derived from the KEK, and the seal / open / blind operations on them."""

    def __init__(self, kek: bytes, key_id: str = "default") -> None:
        self._kek = kek
        self.key_id = key_id
        self._cache: dict[str, bytes] = {}

    def _key(self, purpose: str) -> bytes:
        key = self._cache.get(purpose)
        if key is None:
            key = HKDF(
                algorithm=hashes.SHA256(), length=32, salt=None, info=b"hub/" + purpose.encode()
            ).derive(self._kek)
            self._cache[purpose] = key
        return key

    def seal(self, plaintext: bytes, purpose: str, context: str) -> bytes:
        """Encrypt ``plaintext`` for ``purpose``, bound to ``context`` (table, column, row)."""
        header = bytes([FORMAT_VERSION, ALG_AES256GCM])
        nonce = os.urandom(NONCE_BYTES)
        aad = header + purpose.encode() + b"\x00" + context.encode()
        return header + nonce + AESGCM(self._key(purpose)).encrypt(nonce, plaintext, aad)

    def open(self, sealed: bytes, purpose: str, context: str) -> bytes:
        """Decrypt what :meth:`seal` produced with the same purpose and context."""
        if len(sealed) < 2 + NONCE_BYTES + 16 or sealed[0] != FORMAT_VERSION or sealed[1] != ALG_AES256GCM:
            raise DecryptionError("unknown ciphertext format")
        header, nonce, body = sealed[:2], sealed[2 : 2 + NONCE_BYTES], sealed[2 + NONCE_BYTES :]
        aad = header + purpose.encode() + b"\x00" + context.encode()
        try:
            return AESGCM(self._key(purpose)).decrypt(nonce, body, aad)
        except Exception as exc:
            raise DecryptionError("ciphertext does not authenticate") from exc

    def blind(self, value: str, purpose: str) -> str:
        """Keyed digest for exact-match lookup without storing the value (a blind index)."""
        return hmac.new(self._key("blind/" + purpose), value.encode(), hashlib.sha256).hexdigest()[:32]
