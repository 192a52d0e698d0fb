"""The AEAD primitives hub seals personal data with: AES-256-GCM and SM4-GCM.

These are the functions the Wycheproof vectors run against, so what they accept is exactly
what hub relies on: 12-byte nonces only (hub generates no other size), full 16-byte tags,
and ``ciphertext || tag`` as one string of bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
TAG_BYTES = 16


class AeadError(Exception):
    """The ciphertext, tag, nonce or associated data does not authenticate under this key."""


@dataclass(frozen=True)
class Algorithm:
    """An AEAD hub can seal with; ``alg_id`` is the byte written into every ciphertext header."""

    name: str
    alg_id: int
    key_bytes: int


AES_256_GCM = Algorithm("aes-256-gcm", 1, 32)
SM4_GCM = Algorithm("sm4-gcm", 2, 16)
ALGORITHMS = {a.name: a for a in (AES_256_GCM, SM4_GCM)}
BY_ID = {a.alg_id: a for a in ALGORITHMS.values()}


def _check(algorithm: Algorithm, key: bytes, nonce: bytes) -> None:
    if len(key) != algorithm.key_bytes:
        raise AeadError(f"{algorithm.name} needs a {algorithm.key_bytes}-byte key")
    if len(nonce) != NONCE_BYTES:
        raise AeadError(f"nonce must be {NONCE_BYTES} bytes")


def encrypt(algorithm: Algorithm, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """``ciphertext || tag`` of ``plaintext`` under ``key``, authenticating ``aad``."""
    _check(algorithm, key, nonce)
    return encryptor(algorithm, key)(nonce, plaintext, aad)


def decrypt(algorithm: Algorithm, key: bytes, nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
    """Inverse of :func:`encrypt`; :class:`AeadError` if anything does not authenticate."""
    _check(algorithm, key, nonce)
    if len(sealed) < TAG_BYTES:
        raise AeadError("ciphertext shorter than its tag")
    return decryptor(algorithm, key)(nonce, sealed, aad)


Encrypt = Callable[[bytes, bytes, bytes], bytes]


def encryptor(algorithm: Algorithm, key: bytes) -> Encrypt:
    """A function ``(nonce, plaintext, aad) -> ciphertext || tag`` with the key schedule done once."""
    if algorithm is AES_256_GCM:
        return AESGCM(key).encrypt
    if algorithm is SM4_GCM:
        sm4 = algorithms.SM4(key)

        def sm4_encrypt(nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
            ctx = Cipher(sm4, modes.GCM(nonce)).encryptor()
            ctx.authenticate_additional_data(aad)
            body = ctx.update(plaintext) + ctx.finalize()
            return body + ctx.tag

        return sm4_encrypt
    raise AeadError(f"unknown algorithm {algorithm.name}")


def decryptor(algorithm: Algorithm, key: bytes) -> Encrypt:
    """A function ``(nonce, ciphertext || tag, aad) -> plaintext`` raising :class:`AeadError`."""
    if algorithm is AES_256_GCM:
        aes = AESGCM(key)

        def aes_decrypt(nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
            try:
                return aes.decrypt(nonce, sealed, aad)
            except InvalidTag as exc:
                raise AeadError("ciphertext does not authenticate") from exc

        return aes_decrypt
    if algorithm is SM4_GCM:
        sm4 = algorithms.SM4(key)

        def sm4_decrypt(nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
            if len(sealed) < TAG_BYTES:
                raise AeadError("ciphertext shorter than its tag")
            body, tag = sealed[:-TAG_BYTES], sealed[-TAG_BYTES:]
            ctx = Cipher(sm4, modes.GCM(nonce, tag)).decryptor()
            ctx.authenticate_additional_data(aad)
            try:
                return ctx.update(body) + ctx.finalize()
            except InvalidTag as exc:
                raise AeadError("ciphertext does not authenticate") from exc

        return sm4_decrypt
    raise AeadError(f"unknown algorithm {algorithm.name}")


def supported(algorithm: Algorithm) -> bool:
    """Whether the linked OpenSSL can do ``algorithm`` (distro and FIPS builds may lack SM4)."""
    try:
        encrypt(algorithm, bytes(algorithm.key_bytes), bytes(NONCE_BYTES), b"probe", b"")
    except Exception:  # noqa: BLE001 - any failure means "not available here"
        return False
    return True
