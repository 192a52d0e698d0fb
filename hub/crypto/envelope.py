"""The ciphertext format (v1) and the associated data that binds a value to where it lives.

::

    byte 0      format version (0x01)
    byte 1      algorithm id (0x01 AES-256-GCM, 0x02 SM4-GCM)
    bytes 2..5  data key id, uint32 big-endian: which key, without trial decryption
    bytes 6..17 random 96-bit nonce
    rest        ciphertext || 16-byte tag

    AAD = bytes 0..5 || lp(tenant) || lp(part) ...   lp(x) = uint32_be(len(x)) || utf8(x)

The header is part of the associated data, so changing the version, the algorithm or the key
id makes the value fail to decrypt; the length-prefixed context parts (table, field, record
id) make a value copied to another row or column fail too.
"""

from __future__ import annotations

import base64
import re
import struct
from binascii import b2a_base64
from dataclasses import dataclass

FORMAT_VERSION = 1
HEADER = struct.Struct(">BBI")
HEADER_BYTES = HEADER.size
NONCE_OFFSET = HEADER_BYTES
BODY_OFFSET = HEADER_BYTES + 12
#: text form, for values stored in text columns of a destination
TEXT_PREFIX = "hub1."
_TEXT_BODY = re.compile(r"[A-Za-z0-9_-]*")
_URLSAFE = bytes.maketrans(b"+/", b"-_")


class FormatError(ValueError):
    """Not a hub ciphertext, or one of a version this hub does not know."""


@dataclass(frozen=True)
class Header:
    version: int
    alg_id: int
    key_id: int

    def pack(self) -> bytes:
        return HEADER.pack(self.version, self.alg_id, self.key_id)


def lp(*parts: str) -> bytes:
    """Length-prefixed concatenation: ("a|b",) and ("a", "b") never collide."""
    out = bytearray()
    for part in parts:
        raw = part.encode()
        out += struct.pack(">I", len(raw))
        out += raw
    return bytes(out)


def parse_header(blob: bytes) -> Header:
    if len(blob) < BODY_OFFSET + 16:
        raise FormatError("ciphertext too short")
    version, alg_id, key_id = HEADER.unpack_from(blob)
    if version != FORMAT_VERSION:
        raise FormatError(f"unknown ciphertext format version {version}")
    return Header(version, alg_id, key_id)


def to_text(blob: bytes) -> str:
    """``hub1.`` + unpadded base64url of ``blob`` (called per value: binascii, no wrappers)."""
    return TEXT_PREFIX + b2a_base64(blob, newline=False).translate(_URLSAFE).rstrip(b"=").decode()


def from_text(text: str) -> bytes:
    """Inverse of :func:`to_text`; strict: one blob has exactly one text form.

    ``base64.urlsafe_b64decode`` alone also accepts ``+`` and ``/``, padding, and non-zero
    unused bits in the last character, so an altered text could still open.
    """
    if not text.startswith(TEXT_PREFIX):
        raise FormatError("not a hub ciphertext")
    body = text[len(TEXT_PREFIX) :]
    if not _TEXT_BODY.fullmatch(body):
        raise FormatError("not a hub ciphertext")
    try:
        blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError as exc:
        raise FormatError("not a hub ciphertext") from exc
    if to_text(blob) != text:
        raise FormatError("not a hub ciphertext (non-canonical encoding)")
    return blob


def is_text_ciphertext(value: object) -> bool:
    return isinstance(value, str) and value.startswith(TEXT_PREFIX)
