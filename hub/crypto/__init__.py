"""Encryption of personal data: AEAD primitives, the ciphertext format, keys and providers.

See :mod:`hub.crypto.keyring` for the key hierarchy and :mod:`hub.crypto.envelope` for the
format every ciphertext hub writes follows.
"""

from hub.crypto.aead import AES_256_GCM, ALGORITHMS, SM4_GCM, AeadError, Algorithm
from hub.crypto.envelope import FormatError, is_text_ciphertext
from hub.crypto.keyring import (
    CLASS_OF_KIND,
    DATA_CLASSES,
    INDEXED_KINDS,
    DecryptionError,
    Keyring,
    normalise_for_index,
)
from hub.crypto.providers import EnvKeyProvider, FileKeyProvider, KeyProvider, kek_fingerprint

__all__ = [
    "AES_256_GCM",
    "ALGORITHMS",
    "CLASS_OF_KIND",
    "DATA_CLASSES",
    "INDEXED_KINDS",
    "SM4_GCM",
    "AeadError",
    "Algorithm",
    "DecryptionError",
    "EnvKeyProvider",
    "FileKeyProvider",
    "FormatError",
    "KeyProvider",
    "Keyring",
    "is_text_ciphertext",
    "kek_fingerprint",
    "normalise_for_index",
]
