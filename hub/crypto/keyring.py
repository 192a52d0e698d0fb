"""Data keys per data class, wrapped by the KEK, and the seal / open / blind operations.

The KEK (from a :class:`~hub.crypto.providers.KeyProvider`) only wraps data keys; the wrapped
keys live in the ``crypto_keys`` table. Each data class (identity, contact, financial,
compensation, personal, secret) has one *primary* key that seals new values; older keys stay
*active* for decryption until ``hub keys reencrypt`` has moved their values and
``hub keys retire`` disables them. Rotating the KEK rewraps the data keys only.

Blind indexes and hub's record digests use HMAC subkeys derived (HKDF) from one *index*
root key, kept wrapped like the data keys, so they stay stable across data-key rotations.
Without a database (tests, previews) the keys live in memory for the keyring's lifetime.
"""

from __future__ import annotations

import os
import struct
import threading
import time
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hub.crypto import aead
from hub.crypto.envelope import (
    BODY_OFFSET,
    FORMAT_VERSION,
    HEADER,
    NONCE_OFFSET,
    FormatError,
    from_text,
    lp,
    parse_header,
    to_text,
)
from hub.crypto.mac import HmacSha256
from hub.crypto.providers import kek_fingerprint
from hub.errors import HubError

if TYPE_CHECKING:
    import pyarrow as pa

    from hub.store.db import Database

#: Data classes with a data key each. "personal" holds whole records (dead letters, raw
#: payloads, review details) and PII without a narrower class; "secret" connector credentials.
DATA_CLASSES = ("identity", "contact", "financial", "compensation", "personal", "secret")
#: HMAC root for blind indexes and record digests (not an AEAD key).
INDEX_CLASS = "index"
#: A PII field's masking kind -> the data class whose key seals it.
CLASS_OF_KIND = {
    "id_number": "identity",
    "phone": "contact",
    "email": "contact",
    "bank_account": "financial",
    "money": "compensation",
    "text": "personal",
}
#: Kinds that get a blind index next to the ciphertext (exact-match lookup without decrypting).
INDEXED_KINDS = frozenset({"id_number", "phone", "email", "bank_account"})
_UINT32 = struct.Struct(">I")
#: How long a process trusts its cached view of which key is primary.
PRIMARY_TTL_SECONDS = 30.0


class DecryptionError(HubError):
    """A ciphertext was tampered with, moved, sealed under another key, or its key is retired."""


class KeyOperationError(HubError):
    """A key operation is not possible (unknown key, retiring a primary key, ...)."""


@dataclass(frozen=True)
class DataKey:
    id: int
    data_class: str
    algorithm: aead.Algorithm
    status: str
    material: bytes


def _wrap_aad(tenant: str, key_id: int, data_class: str, algorithm: str) -> bytes:
    return lp("hub-dek-v1", tenant, str(key_id), data_class, algorithm)


def wrap_key(kek: bytes, material: bytes, tenant: str, key_id: int, data_class: str, algorithm: str) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(kek).encrypt(nonce, material, _wrap_aad(tenant, key_id, data_class, algorithm))


def unwrap_key(
    kek: bytes, wrapped: bytes, tenant: str, key_id: int, data_class: str, algorithm: str
) -> bytes:
    try:
        return AESGCM(kek).decrypt(
            wrapped[:12], wrapped[12:], _wrap_aad(tenant, key_id, data_class, algorithm)
        )
    except Exception as exc:
        raise DecryptionError(
            f"data key {key_id} does not unwrap with this KEK (wrong key file or HUB_MASTER_KEY?)"
        ) from exc


def normalise_for_index(value: str) -> str:
    """What a blind index is computed over: NFKC, no spaces, upper case (``ｘ`` == ``x`` == ``X``)."""
    return unicodedata.normalize("NFKC", value).strip().replace(" ", "").upper()


@dataclass(frozen=True, repr=False)
class KeyringSpec:
    """A keyring's KEK and settings, handed to a worker process (it holds the KEK: never log it)."""

    kek: bytes
    key_id: str
    tenant: str
    algorithm: str

    def open(self, db: Database | None) -> Keyring:
        return Keyring(self.kek, self.key_id, db=db, tenant=self.tenant, algorithm=self.algorithm)

    def __repr__(self) -> str:
        return f"KeyringSpec(key_id={self.key_id!r}, tenant={self.tenant!r}, algorithm={self.algorithm!r})"


class Keyring:
    """Seals and opens values with the tenant's data keys; computes blind indexes.

    Thread-safe: a sync seals on its writer thread while another thread prepares.
    """

    def __init__(
        self,
        kek: bytes,
        key_id: str = "default",
        *,
        db: Database | None = None,
        tenant: str = "default",
        algorithm: str = "aes-256-gcm",
    ) -> None:
        if len(kek) != 32:
            raise ValueError("the key-encryption key must be 32 bytes")
        if algorithm not in aead.ALGORITHMS:
            raise ValueError(f"unknown algorithm {algorithm!r} (known: {', '.join(aead.ALGORITHMS)})")
        if not aead.supported(aead.ALGORITHMS[algorithm]):
            raise HubError(f"{algorithm} is not supported by the OpenSSL that cryptography links against")
        self._kek = kek
        self._provider_key_id = key_id
        self.kek_id = f"{key_id}:{kek_fingerprint(kek)}"
        self.db = db
        self.tenant = tenant
        self.algorithm = aead.ALGORITHMS[algorithm]
        self._lock = threading.RLock()
        self._keys: dict[int, DataKey] = {}
        #: when each key's row was last read: ``open`` re-reads its status after PRIMARY_TTL_SECONDS
        self._loaded_at: dict[int, float] = {}
        self._primary: dict[str, tuple[int, float]] = {}
        self._memory_ids = iter(range(1, 2**31))
        self._encrypt_fns: dict[int, aead.Encrypt] = {}
        self._decrypt_fns: dict[int, aead.Encrypt] = {}
        self._hmac_keys: dict[str, bytes] = {}
        self._blind_macs: dict[str, HmacSha256] = {}
        self.encryptions: Counter[int] = Counter()

    def spec(self) -> KeyringSpec:
        """What a worker process needs to open this keyring over its own connection."""
        return KeyringSpec(self._kek, self._provider_key_id, self.tenant, self.algorithm.name)

    # -- data keys ---------------------------------------------------------------------------

    def _load(self, key_id: int) -> DataKey | None:
        if self.db is None:
            return self._keys.get(key_id)
        from hub.store.models import CryptoKey

        with self.db.session() as session:
            row = session.get(CryptoKey, key_id)
            if row is None or row.tenant != self.tenant:
                return None
            algorithm = aead.ALGORITHMS.get(row.algorithm)
            if row.data_class == INDEX_CLASS:
                algorithm = aead.AES_256_GCM
            if algorithm is None:
                raise DecryptionError(f"data key {key_id} uses unknown algorithm {row.algorithm}")
            material = unwrap_key(self._kek, row.wrapped, row.tenant, row.id, row.data_class, row.algorithm)
            key = DataKey(row.id, row.data_class, algorithm, row.status, material)
        self._keys[key_id] = key
        self._loaded_at[key_id] = time.monotonic()
        return key

    def key(self, key_id: int, *, refresh: bool = False) -> DataKey:
        with self._lock:
            key = None if refresh else self._keys.get(key_id)
            if key is None:
                key = self._load(key_id)
            if key is None:
                raise DecryptionError(f"no data key {key_id} for this tenant")
            return key

    def primary(self, data_class: str) -> DataKey:
        """The key that seals new values of ``data_class``; created on first use."""
        if data_class not in DATA_CLASSES and data_class != INDEX_CLASS:
            raise ValueError(f"unknown data class {data_class!r} (known: {', '.join(DATA_CLASSES)})")
        with self._lock:
            cached = self._primary.get(data_class)
            if cached is not None and (self.db is None or time.monotonic() - cached[1] < PRIMARY_TTL_SECONDS):
                return self._keys[cached[0]]
            key = self._find_primary(data_class) or self._create_primary(data_class)
            self._keys[key.id] = key
            self._primary[data_class] = (key.id, time.monotonic())
            self._encrypt_fns.pop(key.id, None)
            return key

    def _find_primary(self, data_class: str) -> DataKey | None:
        if self.db is None:
            return None
        from sqlalchemy import select

        from hub.store.models import CryptoKey

        with self.db.session() as session:
            row_id = session.execute(
                select(CryptoKey.id).where(CryptoKey.primary_of == f"{self.tenant}/{data_class}")
            ).scalar_one_or_none()
        if row_id is None:
            return None
        return self.key(int(row_id), refresh=True)

    def _create_primary(self, data_class: str, *, demote: int | None = None) -> DataKey:
        algorithm = aead.AES_256_GCM if data_class == INDEX_CLASS else self.algorithm
        material = os.urandom(32 if data_class == INDEX_CLASS else algorithm.key_bytes)
        if self.db is None:
            key_id = next(self._memory_ids)
            if demote is not None:
                old = self._keys[demote]
                self._keys[demote] = DataKey(old.id, old.data_class, old.algorithm, "active", old.material)
            return DataKey(key_id, data_class, algorithm, "primary", material)
        from sqlalchemy import func, select
        from sqlalchemy.exc import IntegrityError

        from hub.store.models import CryptoKey, utcnow

        stored_alg = "hmac-sha256" if data_class == INDEX_CLASS else algorithm.name
        for _ in range(5):
            try:
                with self.db.session() as session:
                    if demote is not None:
                        old_row = session.get(CryptoKey, demote)
                        if old_row is None or old_row.status != "primary":
                            raise KeyOperationError(
                                f"key {demote} is no longer primary (rotated concurrently?)"
                            )
                        old_row.status, old_row.primary_of, old_row.demoted_at = "active", None, utcnow()
                        session.flush()
                    key_id = (
                        int(session.execute(select(func.coalesce(func.max(CryptoKey.id), 0))).scalar_one())
                        + 1
                    )
                    session.add(
                        CryptoKey(
                            id=key_id,
                            tenant=self.tenant,
                            data_class=data_class,
                            algorithm=stored_alg,
                            wrapped=wrap_key(
                                self._kek, material, self.tenant, key_id, data_class, stored_alg
                            ),
                            kek_id=self.kek_id,
                            status="primary",
                            primary_of=f"{self.tenant}/{data_class}",
                        )
                    )
                if demote is not None and demote in self._keys:
                    self._keys.pop(demote)
                return DataKey(key_id, data_class, algorithm, "primary", material)
            except IntegrityError:
                # Another process created a key at the same moment: use its primary if there is one.
                if demote is None:
                    found = self._find_primary(data_class)
                    if found is not None:
                        return found
                time.sleep(0.05)
        raise KeyOperationError(f"could not create a data key for {data_class} (state store busy)")

    def rotate(self, data_classes: Iterable[str] = DATA_CLASSES) -> dict[str, tuple[int | None, int]]:
        """A new primary key per class; the old one stays active for decryption. Returns old/new ids."""
        changed: dict[str, tuple[int | None, int]] = {}
        with self._lock:
            for data_class in data_classes:
                if data_class == INDEX_CLASS:
                    raise KeyOperationError(
                        "the index key cannot be rotated without rebuilding every blind index"
                    )
                if data_class not in DATA_CLASSES:
                    raise KeyOperationError(
                        f"unknown data class {data_class!r} (known: {', '.join(DATA_CLASSES)})"
                    )
                old = self._find_primary(data_class) if self.db is not None else None
                if self.db is None and data_class in self._primary:
                    old = self._keys[self._primary[data_class][0]]
                new = self._create_primary(data_class, demote=old.id if old else None)
                self._keys[new.id] = new
                self._primary[data_class] = (new.id, time.monotonic())
                changed[data_class] = (old.id if old else None, new.id)
        return changed

    def ensure_keys(self) -> list[DataKey]:
        """Create the primary key of every data class (and the index key) that has none yet."""
        return [self.primary(c) for c in (*DATA_CLASSES, INDEX_CLASS)]

    def forget_cache(self) -> None:
        """Drop cached keys and primaries (after a rotation or retirement by another process)."""
        with self._lock:
            self._keys.clear()
            self._loaded_at.clear()
            self._primary.clear()
            self._encrypt_fns.clear()
            self._decrypt_fns.clear()

    def flush_counters(self) -> None:
        """Add this process's encryption counts to ``crypto_keys.encryptions`` (the nonce budget)."""
        if self.db is None:
            return
        from sqlalchemy import update

        from hub.store.models import CryptoKey

        with self._lock:
            counts, self.encryptions = self.encryptions, Counter()
        if not counts:
            return
        with self.db.session() as session:
            for key_id, n in counts.items():
                session.execute(
                    update(CryptoKey)
                    .where(CryptoKey.id == key_id)
                    .values(encryptions=CryptoKey.encryptions + n)
                )

    # -- sealing -----------------------------------------------------------------------------

    def _encryptor(self, key: DataKey) -> aead.Encrypt:
        fn = self._encrypt_fns.get(key.id)
        if fn is None:
            fn = self._encrypt_fns[key.id] = aead.encryptor(key.algorithm, key.material)
        return fn

    def _decryptor(self, key: DataKey) -> aead.Encrypt:
        fn = self._decrypt_fns.get(key.id)
        if fn is None:
            fn = self._decrypt_fns[key.id] = aead.decryptor(key.algorithm, key.material)
        return fn

    def _sealing_key(self, data_class: str) -> DataKey:
        # primary() also serves the index root (an HMAC key): it must never double as an AEAD key.
        if data_class not in DATA_CLASSES:
            raise ValueError(f"cannot seal with data class {data_class!r} (known: {', '.join(DATA_CLASSES)})")
        return self.primary(data_class)

    def seal(self, plaintext: bytes, data_class: str, *context: str) -> bytes:
        """Encrypt ``plaintext`` with the class's primary key, bound to ``context``.

        ``context`` names where the value is stored: table, field, record id. Opening needs the
        same parts, so a value copied elsewhere does not decrypt.
        """
        key = self._sealing_key(data_class)
        header = HEADER.pack(FORMAT_VERSION, key.algorithm.alg_id, key.id)
        nonce = os.urandom(12)
        body = self._encryptor(key)(nonce, plaintext, header + lp(self.tenant, *context))
        with self._lock:  # the nonce budget must not under-count when threads seal at once
            self.encryptions[key.id] += 1
        return header + nonce + body

    def seal_many(
        self, values: Sequence[str | None], data_class: str, table: str, field: str, record_ids: Sequence[str]
    ) -> list[str | None]:
        """Text ciphertexts of a column (``None`` stays ``None``), each bound to its record id."""
        key = self._sealing_key(data_class)
        out = seal_column(
            key.algorithm.name, key.material, key.id, (self.tenant, table, field), values, record_ids
        )
        sealed = sum(v is not None for v in values)
        with self._lock:
            self.encryptions[key.id] += sealed
        return out

    def seal_each(
        self, values: Sequence[str], data_class: str, context: tuple[str, ...], last_parts: Sequence[str]
    ) -> list[bytes]:
        """``seal(value.encode(), data_class, *context, last)`` for each value and its last part.

        The same ciphertexts (under fresh nonces), with the per-call costs paid once: what a
        chunk's change events need for their record ids.
        """
        key = self._sealing_key(data_class)
        out = seal_column(
            key.algorithm.name,
            key.material,
            key.id,
            (self.tenant, *context),
            values,
            last_parts,
            as_text=False,
        )
        with self._lock:
            self.encryptions[key.id] += len(values)
        return out

    def column_task(
        self, data_class: str, table: str, field: str
    ) -> tuple[str, bytes, int, tuple[str, str, str]]:
        """What :func:`seal_column` needs to seal a column elsewhere (another process); counts nothing."""
        key = self._sealing_key(data_class)
        return key.algorithm.name, key.material, key.id, (self.tenant, table, field)

    def count_sealed(self, key_id: int, n: int) -> None:
        """Add ``n`` values sealed outside this keyring (by :func:`seal_column`) to the nonce budget."""
        with self._lock:
            self.encryptions[key_id] += n

    def open(self, blob: bytes, *context: str) -> bytes:
        """Decrypt what :meth:`seal` produced with the same context parts."""
        try:
            header = parse_header(blob)
        except FormatError as exc:
            raise DecryptionError(str(exc)) from exc
        key = self.key(header.key_id)
        if self.db is not None and (
            key.status == "retired"  # un-retired since? (never, today: be sure)
            or time.monotonic() - self._loaded_at.get(key.id, 0.0) > PRIMARY_TTL_SECONDS
        ):
            # Another process may have retired it since: a long-lived process (the scheduler)
            # stops opening values under a retired key within PRIMARY_TTL_SECONDS.
            key = self.key(header.key_id, refresh=True)
        if key.status == "retired":
            raise DecryptionError(f"data key {key.id} is retired")
        if key.data_class == INDEX_CLASS:
            raise DecryptionError("ciphertext header names the blind-index key, which seals nothing")
        if key.algorithm.alg_id != header.alg_id:
            raise DecryptionError("ciphertext header names another algorithm than its key's")
        aad = blob[:NONCE_OFFSET] + lp(self.tenant, *context)
        try:
            return self._decryptor(key)(blob[NONCE_OFFSET:BODY_OFFSET], blob[BODY_OFFSET:], aad)
        except aead.AeadError as exc:
            raise DecryptionError("ciphertext does not authenticate (tampered, moved or wrong key)") from exc

    def seal_text(self, value: str, data_class: str, *context: str) -> str:
        return to_text(self.seal(value.encode(), data_class, *context))

    def open_text(self, text: str, *context: str) -> str:
        try:
            blob = from_text(text)
        except FormatError as exc:
            raise DecryptionError(str(exc)) from exc
        return self.open(blob, *context).decode()

    @staticmethod
    def key_id_of(blob: bytes | str) -> int:
        """The data key a ciphertext names in its header."""
        raw = from_text(blob) if isinstance(blob, str) else blob
        return parse_header(raw).key_id

    # -- keyed digests -----------------------------------------------------------------------

    def hmac_key(self, purpose: str) -> bytes:
        """A subkey of the index root for ``purpose`` (blind indexes, record digests, hashes)."""
        key = self._hmac_keys.get(purpose)
        if key is None:
            root = self.primary(INDEX_CLASS).material
            key = HKDF(
                algorithm=hashes.SHA256(), length=32, salt=None, info=lp("hub-bidx-v1", self.tenant, purpose)
            ).derive(root)
            self._hmac_keys[purpose] = key
        return key

    def blind(self, value: str, purpose: str) -> str:
        """Keyed digest for exact-match lookup without storing the value (a blind index).

        HMAC-SHA256 under the purpose's subkey, truncated to 128 bits, as hex.
        """
        mac = self._blind_macs.get(purpose)
        if mac is None:
            mac = self._blind_macs[purpose] = HmacSha256(self.hmac_key("blind/" + purpose))
        return mac.digest(value.encode())[:16].hex()

    def blind_key(self, kind: str) -> bytes:
        """The subkey :meth:`blind_index` uses for ``kind`` (for :func:`blind_column` elsewhere)."""
        return self.hmac_key("blind/" + kind)

    def blind_index(self, value: str, kind: str) -> str:
        """Blind index of a PII value of ``kind``, over its normalised form."""
        return self.blind(normalise_for_index(value), kind)

    # -- the KEK -----------------------------------------------------------------------------

    def rewrap_all(self, new_kek: bytes, new_kek_label: str = "default") -> int:
        """Rewrap every data key of this tenant under ``new_kek`` (KEK rotation); returns how many.

        One transaction: every key or none. A key already wrapped by ``new_kek`` (a rotation
        interrupted after its commit, run again) is checked and kept, so running it twice is safe.
        """
        if self.db is None:
            self._kek = new_kek
            return len(self._keys)
        from sqlalchemy import select

        from hub.store.models import CryptoKey

        new_fingerprint = kek_fingerprint(new_kek)
        new_id = f"{new_kek_label}:{new_fingerprint}"
        count = 0
        with self.db.session() as session:
            rows = session.execute(select(CryptoKey).where(CryptoKey.tenant == self.tenant)).scalars().all()
            for row in rows:
                if row.kek_id.rpartition(":")[2] == new_fingerprint:
                    unwrap_key(new_kek, row.wrapped, row.tenant, row.id, row.data_class, row.algorithm)
                else:
                    material = unwrap_key(
                        self._kek, row.wrapped, row.tenant, row.id, row.data_class, row.algorithm
                    )
                    row.wrapped = wrap_key(
                        new_kek, material, row.tenant, row.id, row.data_class, row.algorithm
                    )
                row.kek_id = new_id
                count += 1
        self._kek, self.kek_id = new_kek, new_id
        return count


def describe(keyring: Keyring) -> list[dict[str, Any]]:
    """The tenant's keys without their material, for ``hub keys status``."""
    if keyring.db is None:
        return [
            {"id": k.id, "data_class": k.data_class, "algorithm": k.algorithm.name, "status": k.status}
            for k in keyring._keys.values()
        ]
    return describe_keys(keyring.db, keyring.tenant)


def describe_keys(db: Database, tenant: str) -> list[dict[str, Any]]:
    """The tenant's keys as stored, without their material; needs no KEK (``hub keys status``)."""
    from sqlalchemy import select

    from hub.store.models import CryptoKey

    with db.session() as session:
        rows = session.execute(
            select(CryptoKey).where(CryptoKey.tenant == tenant).order_by(CryptoKey.id)
        ).scalars()
        return [
            {
                "id": r.id,
                "data_class": r.data_class,
                "algorithm": r.algorithm,
                "status": r.status,
                "kek_id": r.kek_id,
                "encryptions": r.encryptions,
                "created_at": r.created_at,
                "demoted_at": r.demoted_at,
                "retired_at": r.retired_at,
            }
            for r in rows
        ]


def seal_column(
    algorithm: str,
    material: bytes,
    key_id: int,
    place: tuple[str, ...],
    values: Sequence[str | None],
    record_ids: Sequence[str],
    keep_empty: bool = False,
    as_text: bool = True,
) -> list[Any]:
    """Text ciphertexts of a column under one data key: the loop behind :meth:`Keyring.seal_many`.

    ``None`` stays ``None``; with ``keep_empty`` an empty string stays as it is too (nothing to
    hide, no nonce spent) instead of being sealed. ``as_text=False``: the ciphertexts as bytes.

    A plain function of its arguments, so a worker process can run it. ``place`` is (tenant,
    table, field); AAD = header || lp(tenant, table, field) || lp(record_id), the same bytes
    :meth:`Keyring.seal` builds, with the constant part once and lp() of the record id inlined
    (this loop runs once per value of a sync; per-value overhead is most of its cost).
    """
    alg = aead.ALGORITHMS[algorithm]
    header = HEADER.pack(FORMAT_VERSION, alg.alg_id, key_id)
    encrypt = aead.encryptor(alg, material)
    prefix = header + lp(*place)
    pack_length = _UINT32.pack
    nonces = os.urandom(12 * len(values))
    out: list[Any] = []
    append = out.append
    offset = 0
    for value, record_id in zip(values, record_ids, strict=True):
        if value is None or (keep_empty and not value):
            append(value)
        else:
            nonce = nonces[offset : offset + 12]
            raw_id = record_id.encode()
            body = encrypt(nonce, value.encode(), prefix + pack_length(len(raw_id)) + raw_id)
            append(to_text(header + nonce + body) if as_text else header + nonce + body)
        offset += 12
    return out


def blind_column(blind_key: bytes, values: Sequence[str | None]) -> list[str | None]:
    """Blind indexes of a column (``Keyring.blind_index`` per value) under the kind's blind subkey."""
    mac = HmacSha256(blind_key)
    return [mac.digest(normalise_for_index(v).encode())[:16].hex() if v else None for v in values]


#: What :func:`seal_text_columns` needs per column: :meth:`Keyring.column_task`'s tuple, and the
#: kind's blind subkey (:meth:`Keyring.blind_key`) when the column gets a blind index.
ColumnTask = tuple[tuple[str, bytes, int, tuple[str, str, str]], bytes | None]


def seal_text_columns(
    tasks: Sequence[ColumnTask], columns: Sequence[pa.Array], record_ids: pa.Array
) -> list[tuple[pa.Array, pa.Array | None]]:
    """Each text column sealed (:func:`seal_column`) and, if its task says so, blind-indexed.

    What a sealing worker runs for a chunk's rows: Arrow arrays in and out cross the process
    boundary as a few buffers each, where lists of str would be pickled and unpickled value by
    value on the sync's own process. Null and empty values are kept as they are (no nonce spent).
    """
    ids = [v or "" for v in record_ids.to_pylist()]
    out: list[tuple[pa.Array, pa.Array | None]] = []
    for (task, blind_key), column in zip(tasks, columns, strict=True):
        values: list[str | None] = column.to_pylist()
        text = text_array(seal_column(*task, values, ids, keep_empty=True))
        blinded = text_array(blind_column(blind_key, values)) if blind_key is not None else None
        out.append((text, blinded))
    return out


def text_array(values: Sequence[str | None]) -> pa.Array:
    """``values`` as an Arrow string array, built from its buffers.

    ``pyarrow.array`` imports pandas on its first call with a list (it asks whether the list
    is a pandas object): two seconds of CPU in each sealing worker of each sync, for nothing.
    """
    import numpy as np
    import pyarrow as pa

    encoded = [b"" if v is None else v.encode() for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)), out=offsets[1:])
    valid = np.fromiter((v is not None for v in values), dtype=bool, count=len(encoded))
    nulls = len(encoded) - int(valid.sum())
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None
    if offsets[-1] < 2**31:
        return pa.StringArray.from_buffers(
            len(encoded),
            pa.py_buffer(offsets.astype(np.int32)),
            pa.py_buffer(b"".join(encoded)),
            bitmap,
            nulls,
        )
    large = pa.LargeStringArray.from_buffers(
        len(encoded), pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded)), bitmap, nulls
    )
    return large.cast(pa.string())  # raises, as pyarrow.array would, past 2 GiB of text
