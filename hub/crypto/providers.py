"""Key providers: where the key-encryption key (KEK) comes from.

The KEK never encrypts data itself; it wraps the data keys kept in the state store
(:mod:`hub.crypto.keyring`). Built in: an environment variable and a key file with mode
0600; the ``hub_key_provider`` hook makes Vault transit or a cloud KMS a plugin away.
"""

from __future__ import annotations

import base64
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from hub.errors import ConfigProblem, ConfigurationError


class KeyProvider(Protocol):
    """Supplies the key-encryption key; implement it in a plugin for Vault or a cloud KMS."""

    key_id: str

    def load_kek(self) -> bytes:
        """Return the 32-byte key-encryption key."""
        ...


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
                [ConfigProblem(self.variable, "must decode to 32 bytes (hub keys new-kek FILE writes one)")],
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


def kek_fingerprint(kek: bytes) -> str:
    """A short public name for a KEK: tells which KEK wrapped a data key, reveals nothing of it."""
    import hashlib
    import hmac

    return hmac.new(kek, b"hub/kek-id", hashlib.sha256).hexdigest()[:12]
