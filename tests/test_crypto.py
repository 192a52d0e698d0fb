"""hub's encryption layer: Wycheproof vectors, the ciphertext format, and the keyring's promises.

The Wycheproof vectors are read from the shared test-data folder (``--wycheproof-root``,
``HUB_WYCHEPROOF_ROOT``, or ``<repo>/../shared/testdata/wycheproof``), never copied here.
Each vector file is one test that loops over every case and reports all failures at once;
the number of cases exercised per category is asserted, so an empty loop cannot pass.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import random
import struct
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hub.crypto import aead, envelope
from hub.crypto.aead import AES_256_GCM, SM4_GCM, AeadError, Algorithm
from hub.crypto.envelope import HEADER, TEXT_PREFIX, from_text, lp, to_text
from hub.crypto.keyring import DATA_CLASSES, INDEX_CLASS, DecryptionError, Keyring
from hub.crypto.mac import HmacSha256
from hub.store.db import Database
from hub.store.models import CryptoKey

KEK = bytes(range(32))
OTHER_KEK = bytes(range(100, 132))
ALGORITHMS = ["aes-256-gcm", "sm4-gcm"]
CONTEXT = ("people", "id_number", "E00000042")

# -- Wycheproof ---------------------------------------------------------------------------------


def wycheproof_cases(
    root: Path, name: str
) -> tuple[dict[str, Any], list[tuple[dict[str, Any], dict[str, Any]]]]:
    """The file's top level and its (group, test) pairs, pyca-style."""
    data = json.loads((root / name).read_text(encoding="utf-8"))
    cases = [(group, test) for group in data["testGroups"] for test in group["tests"]]
    assert len(cases) == data["numberOfTests"], f"{name}: numberOfTests disagrees with the file"
    return data, cases


def _h(value: str) -> bytes:
    return bytes.fromhex(value)


def _failure(name: str, test: dict[str, Any], what: str) -> str:
    return f"{name} tcId {test['tcId']} ({test['result']}, {test.get('comment', '')!r}): {what}"


#: What each AEAD file exercises: (category, result) -> number of cases.
#:   hub      12-byte IV, 16-byte tag, the algorithm's key size: through aead.encrypt/decrypt
#:   keysize  AES-128/192 with a 12-byte IV: refused by encrypt/decrypt (hub seals with
#:            AES-256 only), and run through aead.encryptor/decryptor, the keyring's hot path
#:   refused  any other IV (or tag) size: encrypt and decrypt must raise AeadError
AEAD_EXPECTED = {
    "aes_gcm_test.json": {
        ("hub", "valid"): 39,
        ("hub", "invalid"): 27,
        ("keysize", "valid"): 77,
        ("keysize", "invalid"): 54,
        ("refused", "valid"): 113,
        ("refused", "invalid"): 6,
    },
    "sm4_gcm_test.json": {
        ("hub", "valid"): 38,
        ("hub", "invalid"): 27,
        ("refused", "valid"): 37,
        ("refused", "invalid"): 2,
    },
}


def _supported_or_skip(algorithm: Algorithm) -> None:
    if not aead.supported(algorithm):
        pytest.skip(f"{algorithm.name} is not available in the OpenSSL cryptography links against")


@pytest.mark.parametrize(
    ("name", "algorithm"), [("aes_gcm_test.json", AES_256_GCM), ("sm4_gcm_test.json", SM4_GCM)]
)
def test_wycheproof_aead(wycheproof_root: Path, name: str, algorithm: Algorithm) -> None:
    _supported_or_skip(algorithm)
    _, cases = wycheproof_cases(wycheproof_root, name)
    counts: Counter[tuple[str, str]] = Counter()
    failures: list[str] = []
    for group, test in cases:
        key, iv, aad, msg = _h(test["key"]), _h(test["iv"]), _h(test["aad"]), _h(test["msg"])
        sealed = _h(test["ct"]) + _h(test["tag"])
        result = test["result"]
        assert result in ("valid", "invalid"), f"{name}: unexpected result {result!r} (acceptable?)"
        valid = result == "valid"
        assert len(iv) * 8 == group["ivSize"] and len(_h(test["tag"])) * 8 == group["tagSize"]
        if len(iv) != aead.NONCE_BYTES or group["tagSize"] != aead.TAG_BYTES * 8:
            category = "refused"
        elif len(key) != algorithm.key_bytes:
            category = "keysize"
        else:
            category = "hub"
        counts[category, result] += 1

        if category in ("refused", "keysize"):
            # hub must refuse the parameters outright, whatever the vector's verdict.
            for op, fn in (("encrypt", aead.encrypt), ("decrypt", aead.decrypt)):
                try:
                    fn(algorithm, key, iv, msg if op == "encrypt" else sealed, aad)
                except AeadError:
                    pass
                except Exception as exc:
                    failures.append(_failure(name, test, f"{op} raised {type(exc).__name__}, not AeadError"))
                else:
                    failures.append(_failure(name, test, f"{op} accepted a size hub does not support"))
        if category == "refused":
            continue

        if category == "hub":
            paths = [
                (
                    "encrypt/decrypt",
                    functools.partial(aead.encrypt, algorithm, key),
                    functools.partial(aead.decrypt, algorithm, key),
                )
            ]
        else:
            paths = []
        paths.append(("encryptor/decryptor", aead.encryptor(algorithm, key), aead.decryptor(algorithm, key)))
        for label, enc, dec in paths:
            if valid:
                got = enc(iv, msg, aad)
                if got != sealed:
                    failures.append(_failure(name, test, f"{label}: ct||tag differs"))
                try:
                    plain = dec(iv, sealed, aad)
                except Exception as exc:
                    failures.append(_failure(name, test, f"{label}: decrypt raised {type(exc).__name__}"))
                else:
                    if plain != msg:
                        failures.append(_failure(name, test, f"{label}: decrypt gave another plaintext"))
            else:
                try:
                    dec(iv, sealed, aad)
                except AeadError:
                    pass
                except Exception as exc:
                    failures.append(
                        _failure(name, test, f"{label}: raised {type(exc).__name__}, not AeadError")
                    )
                else:
                    failures.append(_failure(name, test, f"{label}: invalid vector decrypted"))

    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:30])
    assert dict(counts) == AEAD_EXPECTED[name]


def test_wycheproof_hkdf_sha256(wycheproof_root: Path) -> None:
    """HKDF-SHA256 as hub derives its HMAC subkeys (cryptography's HKDF)."""
    _, cases = wycheproof_cases(wycheproof_root, "hkdf_sha256_test.json")
    counts: Counter[str] = Counter()
    failures: list[str] = []
    for _group, test in cases:
        counts[test["result"]] += 1
        salt = _h(test["salt"])
        try:  # an impossible size is refused by the constructor (more than 255 blocks)
            hkdf = HKDF(algorithm=hashes.SHA256(), length=test["size"], salt=salt, info=_h(test["info"]))
            okm = hkdf.derive(_h(test["ikm"]))
        except ValueError:
            if test["result"] == "valid":
                failures.append(_failure("hkdf", test, "ValueError on a valid vector"))
            continue
        if test["result"] != "valid":
            failures.append(_failure("hkdf", test, "derived a key for an invalid vector"))
        elif okm != _h(test["okm"]):
            failures.append(_failure("hkdf", test, "okm differs"))
        if test["result"] == "valid" and not salt:
            # hub passes salt=None, which RFC 5869 defines as the empty (zero) salt.
            none_salt = HKDF(algorithm=hashes.SHA256(), length=test["size"], salt=None, info=_h(test["info"]))
            if none_salt.derive(_h(test["ikm"])) != _h(test["okm"]):
                failures.append(_failure("hkdf", test, "salt=None differs from the empty salt"))
    assert not failures, "\n".join(failures[:30])
    assert dict(counts) == {"valid": 83, "invalid": 3}


def test_wycheproof_hmac_sha256(wycheproof_root: Path) -> None:
    """HMAC-SHA256 as hub computes blind indexes (hub.crypto.mac, truncated), and stdlib hmac."""
    _, cases = wycheproof_cases(wycheproof_root, "hmac_sha256_test.json")
    counts: Counter[tuple[int, str]] = Counter()
    failures: list[str] = []
    for group, test in cases:
        size = group["tagSize"] // 8
        counts[group["tagSize"], test["result"]] += 1
        key, msg, tag = _h(test["key"]), _h(test["msg"]), _h(test["tag"])
        for label, mac in (
            ("hub.crypto.mac", HmacSha256(key).digest(msg)),
            ("hmac", hmac.new(key, msg, hashlib.sha256).digest()),
        ):
            matches = hmac.compare_digest(mac[:size], tag)
            if matches != (test["result"] == "valid"):
                failures.append(_failure("hmac", test, f"{label}: tag {'matches' if matches else 'differs'}"))
        if size == 16 and test["result"] == "valid" and HmacSha256(key).digest(msg)[:16].hex() != test["tag"]:
            failures.append(_failure("hmac", test, "hex truncation (a blind index's form) differs"))
    assert not failures, "\n".join(failures[:30])
    assert dict(counts) == {
        (128, "valid"): 33,
        (128, "invalid"): 54,
        (256, "valid"): 33,
        (256, "invalid"): 54,
    }
    assert {len(_h(t["key"])) for _, t in cases} >= {16, 32, 65}  # short, block-sized-or-less, hashed


def test_hmac_matches_stdlib() -> None:
    rng = random.Random(3)
    for key_len in (0, 1, 16, 32, 63, 64, 65, 200):
        key = rng.randbytes(key_len)
        mac = HmacSha256(key)
        for msg_len in (0, 1, 18, 55, 56, 64, 65, 1000):
            msg = rng.randbytes(msg_len)
            assert mac.digest(msg) == hmac.new(key, msg, hashlib.sha256).digest()


# -- keyrings -----------------------------------------------------------------------------------


@pytest.fixture(params=ALGORITHMS)
def algorithm(request: pytest.FixtureRequest) -> str:
    _supported_or_skip(aead.ALGORITHMS[request.param])
    return str(request.param)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'hub.db'}")
    yield database
    database.dispose()


@pytest.fixture(params=["memory", "sqlite"])
def keyring(request: pytest.FixtureRequest, algorithm: str, tmp_path: Path) -> Iterator[Keyring]:
    """An in-memory keyring, and one whose keys live in a SQLite state store."""
    if request.param == "memory":
        yield Keyring(KEK, algorithm=algorithm)
        return
    database = Database(f"sqlite:///{tmp_path / 'keys.db'}")
    yield Keyring(KEK, db=database, algorithm=algorithm)
    database.dispose()


@functools.cache
def unicode_samples(n: int, seed: int = 20240301) -> tuple[str, ...]:
    """Arbitrary Unicode: ASCII, CJK, full-width, emoji (with ZWJ sequences), combining marks,
    RTL, controls and NUL, astral planes; lengths from 0 to a few thousand."""
    rng = random.Random(seed)
    pools = [
        (0x20, 0x7E),  # ASCII
        (0x4E00, 0x9FFF),  # CJK unified ideographs
        (0xFF01, 0xFF5E),  # full-width forms
        (0x1F300, 0x1FAFF),  # emoji
        (0x0300, 0x036F),  # combining marks
        (0x0590, 0x06FF),  # Hebrew, Arabic
        (0x0000, 0x001F),  # controls, NUL
        (0x20000, 0x2A6DF),  # CJK extension B (astral)
    ]
    specials = [
        "",
        " ",
        "\x00",
        "张三",
        "１１０１０５１９４９１２３１００２ｘ",
        "👩‍👩‍👧‍👦",
        "e\u0301",
        "\ufeff",
        "\U0010fffd",
    ]
    out = list(specials)
    while len(out) < n:
        length = rng.choice([0, 1, 2, 5, 11, 18, 40, 100, 100, rng.randint(0, 2000)])
        chars = []
        for _ in range(length):
            if rng.random() < 0.1:
                code = rng.randint(0, 0x10FFFF)
                while 0xD800 <= code <= 0xDFFF:  # lone surrogates are not encodable text
                    code = rng.randint(0, 0x10FFFF)
            else:
                lo, hi = rng.choice(pools)
                code = rng.randint(lo, hi)
            chars.append(chr(code))
        out.append("".join(chars))
    return tuple(out)


def test_round_trip_arbitrary_unicode(keyring: Keyring) -> None:
    samples = unicode_samples(2000)
    ids = [f"R{i}" for i in range(len(samples))]
    for value, record_id in zip(samples, ids, strict=True):
        blob = keyring.seal(value.encode(), "personal", "people", "notes", record_id)
        assert keyring.open(blob, "people", "notes", record_id) == value.encode()
    column = keyring.seal_many([*samples, None], "contact", "people", "email", [*ids, "none"])
    assert column[-1] is None
    for text, value, record_id in zip(column, samples, ids, strict=False):
        assert text is not None and text.startswith(TEXT_PREFIX)
        assert keyring.open_text(text, "people", "email", record_id) == value
    text = keyring.seal_text(samples[3], "identity", *CONTEXT)
    assert keyring.open_text(text, *CONTEXT) == samples[3]


def test_seal_many_is_bound_to_each_record(keyring: Keyring) -> None:
    column = keyring.seal_many(
        ["a", "b", None, "d"], "financial", "people", "bank_account", ["1", "2", "3", "4"]
    )
    assert column[2] is None
    assert keyring.open_text(str(column[0]), "people", "bank_account", "1") == "a"
    with pytest.raises(DecryptionError):
        keyring.open_text(str(column[0]), "people", "bank_account", "2")  # swapped rows
    with pytest.raises(ValueError):
        keyring.seal_many(["a", "b"], "financial", "people", "bank_account", ["1"])


def test_seal_each_opens_as_seal_does_bound_to_its_last_part(keyring: Keyring) -> None:
    before = dict(keyring.encryptions)
    blobs = keyring.seal_each(["40000001", "张三", ""], "personal", ("change_events",), ["d1", "d2", "d3"])
    for blob, value, last in zip(blobs, ["40000001", "张三", ""], ["d1", "d2", "d3"], strict=True):
        assert isinstance(blob, bytes)
        assert keyring.open(blob, "change_events", last) == value.encode()
        reference = keyring.seal(value.encode(), "personal", "change_events", last)
        assert len(blob) == len(reference) and blob[: HEADER.size] == reference[: HEADER.size]
    with pytest.raises(DecryptionError):
        keyring.open(blobs[0], "change_events", "d2")
    key_id = keyring.primary("personal").id
    assert keyring.encryptions[key_id] == before.get(key_id, 0) + 3 + 3  # the three references too


def _flip_every_bit(blob: bytes) -> Iterator[bytes]:
    for pos in range(len(blob)):
        for bit in range(8):
            changed = bytearray(blob)
            changed[pos] ^= 1 << bit
            yield bytes(changed)


def test_every_flipped_bit_is_refused(keyring: Keyring) -> None:
    for plaintext in (b"", b"11010519491231002X"):
        blob = keyring.seal(plaintext, "identity", *CONTEXT)
        assert keyring.open(blob, *CONTEXT) == plaintext
        tried = 0
        for changed in _flip_every_bit(blob):
            with pytest.raises(DecryptionError):
                keyring.open(changed, *CONTEXT)
            tried += 1
        assert tried == 8 * len(blob) == 8 * (18 + len(plaintext) + 16)


def test_context_binding(keyring: Keyring) -> None:
    blob = keyring.seal(b"13800138000", "contact", "people", "phone", "E1")
    assert keyring.open(blob, "people", "phone", "E1") == b"13800138000"
    for context in [
        ("people", "phone", "E2"),  # another record
        ("people", "mobile", "E1"),  # another field
        ("staff", "phone", "E1"),  # another table
        ("people", "phone"),  # a part missing
        ("people", "phone", "E1", ""),  # a part added
        ("peoplephone", "", "E1"),  # same bytes, other split: lp() keeps them apart
        ("people", "phoneE1", ""),
    ]:
        with pytest.raises(DecryptionError):
            keyring.open(blob, *context)
    # Another tenant: the same key material, only the tenant in the AAD differs.
    tenant = keyring.tenant
    keyring.tenant = "acme"
    try:
        with pytest.raises(DecryptionError):
            keyring.open(blob, "people", "phone", "E1")
    finally:
        keyring.tenant = tenant
    assert keyring.open(blob, "people", "phone", "E1") == b"13800138000"


def test_another_tenant_has_no_access(db: Database) -> None:
    ours = Keyring(KEK, db=db, tenant="default")
    blob = ours.seal(b"x", "identity", *CONTEXT)
    theirs = Keyring(KEK, db=db, tenant="acme")
    with pytest.raises(DecryptionError, match="no data key"):
        theirs.open(blob, *CONTEXT)
    assert theirs.primary("identity").id != ours.primary("identity").id
    with pytest.raises(DecryptionError):
        theirs.open(blob, *CONTEXT)
    assert ours.open(blob, *CONTEXT) == b"x"


def test_header_tampering(keyring: Keyring) -> None:
    blob = keyring.seal(b"6222021234567890123", "financial", "people", "bank_account", "E1")
    ctx = ("people", "bank_account", "E1")
    other_key = keyring.primary("contact").id
    index_key = keyring.primary(INDEX_CLASS).id
    own_key = Keyring.key_id_of(blob)
    assert len({own_key, other_key, index_key}) == 3

    def with_header(version: int, alg_id: int, key_id: int) -> bytes:
        return struct.pack(">BBI", version, alg_id, key_id) + blob[6:]

    alg_id = blob[1]
    assert keyring.open(with_header(1, alg_id, own_key), *ctx) == b"6222021234567890123"
    for version in (0, 2, 0x7F, 0xFF):
        with pytest.raises(DecryptionError, match="version"):
            keyring.open(with_header(version, alg_id, own_key), *ctx)
    for other_alg in (0, 1, 2, 3, 0xFF):
        if other_alg != alg_id:
            with pytest.raises(DecryptionError):
                keyring.open(with_header(1, other_alg, own_key), *ctx)
    for key_id in (other_key, index_key, 0, 4242, 2**32 - 1):
        with pytest.raises(DecryptionError):
            keyring.open(with_header(1, alg_id, key_id), *ctx)


def test_truncated_and_extended_blobs(keyring: Keyring) -> None:
    blob = keyring.seal(b"salary 23000", "compensation", *CONTEXT)
    for length in range(len(blob)):
        with pytest.raises(DecryptionError):
            keyring.open(blob[:length], *CONTEXT)
    for extra in (b"\x00", b"\x00" * 16, blob):
        with pytest.raises(DecryptionError):
            keyring.open(blob + extra, *CONTEXT)
    with pytest.raises(DecryptionError):
        keyring.open(blob[:18] + blob[19:], *CONTEXT)  # a byte dropped from the middle


def test_index_key_never_seals(keyring: Keyring) -> None:
    """The blind-index root is an HMAC key: it must not double as an AEAD key."""
    with pytest.raises(ValueError):
        keyring.seal(b"x", INDEX_CLASS, *CONTEXT)
    with pytest.raises(ValueError):
        keyring.seal_many(["x"], INDEX_CLASS, "people", "id_number", ["1"])
    with pytest.raises(ValueError):
        keyring.seal(b"x", "no-such-class", *CONTEXT)
    # A header naming the index key is refused before any AEAD is attempted with it.
    blob = keyring.seal(b"x", "identity", *CONTEXT)
    forged = blob[:2] + struct.pack(">I", keyring.primary(INDEX_CLASS).id) + blob[6:]
    with pytest.raises(DecryptionError, match="blind-index key"):
        keyring.open(forged, *CONTEXT)


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def test_text_form(algorithm: str) -> None:
    keyring = Keyring(KEK, algorithm=algorithm)  # in memory: a forged key id costs no query
    value = "１１０１０５１９４９１２３１００２ｘ 张三"
    text = keyring.seal_text(value, "identity", *CONTEXT)
    assert text.startswith("hub1.") and "=" not in text
    assert from_text(text) == base64.urlsafe_b64decode(text[5:] + "=" * (-len(text[5:]) % 4))
    assert keyring.open_text(text, *CONTEXT) == value
    for size in (34, 35, 36):  # blob lengths with every remainder mod 3
        blob = bytes(range(size))
        assert from_text(to_text(blob)) == blob

    for plaintext in ("", "x", "xy"):  # blob lengths 34, 35, 36: every base64 tail shape
        text = keyring.seal_text(plaintext, "identity", *CONTEXT)
        assert keyring.open_text(text, *CONTEXT) == plaintext
        body_start = len(TEXT_PREFIX)
        tampered: list[str] = []
        for pos in range(len(text)):
            for char in _ALPHABET if pos >= body_start else "hubHUB1.2x":
                if char != text[pos]:
                    tampered.append(text[:pos] + char + text[pos + 1 :])
        tampered += [
            text + "=",
            text + "==",
            text + "\n",
            " " + text,
            text[:-1],
            text + "A",
            text.replace("-", "+").replace("_", "/"),
            text[:20] + "!" + text[20:],
            "HUB1." + text[5:],
            "hub2." + text[5:],
            text[5:],
        ]
        for bad in tampered:
            if bad == text:
                continue
            with pytest.raises(DecryptionError):
                keyring.open_text(bad, *CONTEXT)


def test_text_form_is_canonical() -> None:
    """Every blob has exactly one text form: the decoder refuses '+', '/', padding, stray bits."""
    rng = random.Random(7)
    for size in range(34, 64):
        blob = rng.randbytes(size)
        text = to_text(blob)
        assert from_text(text) == blob
        body = text[len(TEXT_PREFIX) :]
        # Another last character either names other bytes or is refused (its unused low bits
        # set): never the same blob under a second spelling.
        refused = 0
        for char in _ALPHABET:
            if char == body[-1]:
                continue
            try:
                assert from_text(TEXT_PREFIX + body[:-1] + char) != blob
            except envelope.FormatError:
                refused += 1
        assert refused == {0: 0, 1: 60, 2: 48}[size % 3]
        with pytest.raises(envelope.FormatError):
            from_text(text + "=" * (-len(body) % 4 or 4))


@pytest.mark.parametrize("how", ["seal_many", "seal"])
def test_no_repeated_nonce(how: str) -> None:
    keyring = Keyring(KEK)
    n = 100_000
    if how == "seal_many":
        ids = [str(i) for i in range(n)]
        column = keyring.seal_many(ids, "identity", "people", "id_number", ids)
        nonces = {base64.urlsafe_b64decode(str(text)[5:] + "==")[6:18] for text in column}
    else:
        seal = keyring.seal
        nonces = {seal(b"v", "contact", "people", "phone", "r")[6:18] for _ in range(n)}
    assert len(nonces) == n
    assert sum(keyring.encryptions.values()) == n


def test_blind_index(tmp_path: Path) -> None:
    keyring = Keyring(KEK)
    canonical = keyring.blind_index("11010519491231002X", "id_number")
    for variant in [
        "１１０１０５１９４９１２３１００２ｘ",  # full width, lower-case x
        "１１０１０５１９４９１２３１００２Ｘ",
        "11010519491231002x",
        " 110105 19491231 002X ",
        "110105\u300019491231002x",  # ideographic space
    ]:
        assert keyring.blind_index(variant, "id_number") == canonical, variant
    assert len(canonical) == 32 and int(canonical, 16) >= 0
    assert keyring.blind_index("11010519491231003X", "id_number") != canonical
    assert keyring.blind_index("11010519491231002X", "phone") != canonical  # another kind
    assert keyring.blind_index("11010519491231002X", "bank_account") != canonical

    # Documented derivation: HMAC-SHA256(HKDF(root, info=lp("hub-bidx-v1", tenant, "blind/" + kind)), norm)
    root = keyring.primary(INDEX_CLASS).material

    def by_hand(tenant: str, kind: str) -> str:
        subkey = HKDF(hashes.SHA256(), 32, salt=None, info=lp("hub-bidx-v1", tenant, "blind/" + kind)).derive(
            root
        )
        return hmac.new(subkey, b"11010519491231002X", hashlib.sha256).hexdigest()[:32]

    assert by_hand("default", "id_number") == canonical
    assert by_hand("acme", "id_number") != canonical  # the same root under another tenant

    # Tenants of one state store each get their own index key; a keyring on the same store
    # (another process) computes the same index.
    database = Database(f"sqlite:///{tmp_path / 'bidx.db'}")
    try:
        ours = Keyring(KEK, db=database).blind_index("110105194912310021", "id_number")
        again = Keyring(KEK, db=database).blind_index("110105194912310021", "id_number")
        theirs = Keyring(KEK, db=database, tenant="acme").blind_index("110105194912310021", "id_number")
        assert ours == again != theirs
    finally:
        database.dispose()


def test_retired_key_refuses(db: Database, algorithm: str) -> None:
    keyring = Keyring(KEK, db=db, algorithm=algorithm)
    old_blob = keyring.seal(b"old", "identity", *CONTEXT)
    ((old_id, _new_id),) = keyring.rotate(["identity"]).values()
    assert old_id == Keyring.key_id_of(old_blob)
    new_blob = keyring.seal(b"new", "identity", *CONTEXT)
    with db.session() as session:
        session.execute(sa.update(CryptoKey).where(CryptoKey.id == old_id).values(status="retired"))
    fresh = Keyring(KEK, db=db, algorithm=algorithm)
    with pytest.raises(DecryptionError, match="retired"):
        fresh.open(old_blob, *CONTEXT)
    assert fresh.open(new_blob, *CONTEXT) == b"new"
    keyring.forget_cache()  # the process that rotated, once it drops its cache
    with pytest.raises(DecryptionError, match="retired"):
        keyring.open(old_blob, *CONTEXT)


def test_rotation(keyring: Keyring) -> None:
    before = {c: keyring.seal(c.encode(), c, *CONTEXT) for c in DATA_CLASSES}
    changed = keyring.rotate()
    assert set(changed) == set(DATA_CLASSES)
    for data_class, (old_id, new_id) in changed.items():
        assert old_id == Keyring.key_id_of(before[data_class])
        assert new_id != old_id
        assert keyring.open(before[data_class], *CONTEXT) == data_class.encode()
        after = keyring.seal(b"after", data_class, *CONTEXT)
        assert Keyring.key_id_of(after) == new_id
        assert Keyring.key_id_of(str(keyring.seal_many(["v"], data_class, *CONTEXT[:2], ["r"])[0])) == new_id
        assert keyring.key(old_id).status == "active"
        assert keyring.primary(data_class).id == new_id
    if keyring.db is not None:
        # Another process on the same store opens both and seals with the new key.
        other = Keyring(KEK, db=keyring.db, algorithm=keyring.algorithm.name)
        for data_class, (_, new_id) in changed.items():
            assert other.open(before[data_class], *CONTEXT) == data_class.encode()
            assert Keyring.key_id_of(other.seal(b"x", data_class, *CONTEXT)) == new_id
        with keyring.db.session() as session:
            primaries = session.execute(
                sa.select(CryptoKey.data_class, sa.func.count())
                .where(CryptoKey.status == "primary")
                .group_by(CryptoKey.data_class)
            ).all()
        assert dict(primaries) == {c: 1 for c in DATA_CLASSES}


def test_rewrap_all(db: Database, algorithm: str) -> None:
    keyring = Keyring(KEK, db=db, algorithm=algorithm)
    keyring.ensure_keys()
    blobs = {c: keyring.seal(c.encode(), c, *CONTEXT) for c in DATA_CLASSES}
    bidx = keyring.blind_index("13800138000", "phone")
    keyring.rotate(["identity"])
    assert keyring.rewrap_all(OTHER_KEK, "kek-2") == len(DATA_CLASSES) + 2  # + index + rotated
    with db.session() as session:
        assert set(session.execute(sa.select(CryptoKey.kek_id)).scalars()) == {keyring.kek_id}
    assert keyring.kek_id.startswith("kek-2:")

    with_new = Keyring(OTHER_KEK, db=db, algorithm=algorithm)
    for data_class, blob in blobs.items():
        assert with_new.open(blob, *CONTEXT) == data_class.encode()
    assert with_new.blind_index("13800138000", "phone") == bidx  # the index key survived
    with_old = Keyring(KEK, db=db, algorithm=algorithm)
    for blob in blobs.values():
        with pytest.raises(DecryptionError, match="does not unwrap"):
            with_old.open(blob, *CONTEXT)
    # The keyring that rewrapped keeps working, and creates new keys under the new KEK.
    assert keyring.open(blobs["contact"], *CONTEXT) == b"contact"
    keyring.rotate(["contact"])
    assert with_new.open(keyring.seal(b"z", "contact", *CONTEXT), *CONTEXT) == b"z"


@pytest.mark.parametrize("round_", range(3))
def test_racing_keyrings_create_one_primary(tmp_path: Path, round_: int) -> None:
    """Keyrings in separate engines (like separate processes) race to create the first keys."""
    url = f"sqlite:///{tmp_path / 'race.db'}"
    Database(url).dispose()  # migrated once, before the race
    workers = 4
    databases = [Database(url) for _ in range(workers)]
    keyrings = [Keyring(KEK, db=d) for d in databases]
    barrier = threading.Barrier(workers)
    results: list[dict[str, int]] = [{} for _ in range(workers)]
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            barrier.wait()
            order = list((*DATA_CLASSES, INDEX_CLASS))
            random.Random(i * 10 + round_).shuffle(order)
            results[i] = {c: keyrings[i].primary(c).id for c in order}
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert not errors, errors
        assert all(r == results[0] for r in results), results
        with databases[0].session() as session:
            rows = session.execute(sa.select(CryptoKey.data_class, CryptoKey.status)).all()
        assert Counter(c for c, s in rows if s == "primary") == {c: 1 for c in (*DATA_CLASSES, INDEX_CLASS)}
        assert len(rows) == len(DATA_CLASSES) + 1  # the losers created nothing
        # Everyone seals with the winner's key, and everyone opens everyone's values.
        blobs = [k.seal(b"v", "identity", *CONTEXT) for k in keyrings]
        assert all(k.open(b, *CONTEXT) == b"v" for k in keyrings for b in blobs)
    finally:
        for database in databases:
            database.dispose()


# -- the documented layout ---------------------------------------------------------------------


def _lp_by_hand(*parts: str) -> bytes:
    out = b""
    for part in parts:
        raw = part.encode("utf-8")
        out += len(raw).to_bytes(4, "big") + raw
    return out


def test_golden_layout() -> None:
    """Header = version 1, alg id, key id uint32 big-endian; AAD = header || lp(tenant) || lp(parts)."""
    keyring = Keyring(KEK, tenant="集团-华东")
    while keyring.primary("identity").id < 0x0102:  # a key id that needs two bytes
        keyring.rotate(["identity"])
    key = keyring.primary("identity")
    context = ("入职候选人", "身份证号", "张三-0042")
    plaintext = b"11010519491231002X"
    blob = keyring.seal(plaintext, "identity", *context)

    assert blob[0] == 0x01
    assert blob[1] == 0x01  # AES-256-GCM
    assert blob[2:6] == bytes([0, 0, key.id >> 8, key.id & 0xFF]) == struct.pack(">I", key.id)
    assert len(blob) == 6 + 12 + len(plaintext) + 16
    nonce, body = blob[6:18], blob[18:]
    aad = blob[:6] + _lp_by_hand("集团-华东", *context)
    assert (
        aad[6:10] == (len("集团-华东".encode())).to_bytes(4, "big") == b"\x00\x00\x00\x0d"
    )  # bytes, not chars
    assert AESGCM(key.material).decrypt(nonce, body, aad) == plaintext
    assert AESGCM(key.material).encrypt(nonce, plaintext, aad) == body
    assert lp("集团-华东", *context) == _lp_by_hand("集团-华东", *context)

    text = keyring.seal_text("13800138000", "identity", *context)
    raw = base64.urlsafe_b64decode(text.removeprefix("hub1.") + "==")
    assert (
        AESGCM(key.material).decrypt(raw[6:18], raw[18:], raw[:6] + _lp_by_hand("集团-华东", *context))
        == b"13800138000"
    )


def test_golden_layout_sm4() -> None:
    _supported_or_skip(SM4_GCM)
    keyring = Keyring(KEK, algorithm="sm4-gcm")
    key = keyring.primary("financial")
    blob = keyring.seal(b"6222021234567890123", "financial", "people", "bank_account", "E1")
    assert blob[:6] == b"\x01\x02" + struct.pack(">I", key.id)
    aad = blob[:6] + _lp_by_hand("default", "people", "bank_account", "E1")
    ctx = Cipher(algorithms.SM4(key.material), modes.GCM(blob[6:18], blob[-16:])).decryptor()
    ctx.authenticate_additional_data(aad)
    assert ctx.update(blob[18:-16]) + ctx.finalize() == b"6222021234567890123"


def test_golden_blob(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the randomness pinned, the sealed bytes are exactly these (format v1 frozen)."""
    stream = iter(range(1 << 20))

    def fake_urandom(n: int) -> bytes:
        return bytes(next(stream) & 0xFF for _ in range(n))

    monkeypatch.setattr("hub.crypto.keyring.os.urandom", fake_urandom)
    keyring = Keyring(KEK)
    blob = keyring.seal(b"11010519491231002X", "identity", "people", "id_number", "E1")
    material = bytes(range(32))  # the first 32 "random" bytes became the identity key (id 1)
    nonce = bytes(range(32, 44))
    aad = b"\x01\x01\x00\x00\x00\x01" + _lp_by_hand("default", "people", "id_number", "E1")
    expected = (
        b"\x01\x01\x00\x00\x00\x01" + nonce + AESGCM(material).encrypt(nonce, b"11010519491231002X", aad)
    )
    assert blob == expected
    assert blob.hex() == GOLDEN_AES_BLOB

    # seal_many builds the same AAD inline: its text decodes to the blob built by hand.
    column = keyring.seal_many(
        ["110105", None, "张三"], "identity", "people", "id_number", ["E1", "E2", "记录3"]
    )
    assert column[1] is None
    for value, record_id, text, start in (("110105", "E1", column[0], 44), ("张三", "记录3", column[2], 68)):
        nonce = bytes(range(start, start + 12))
        aad = b"\x01\x01\x00\x00\x00\x01" + _lp_by_hand("default", "people", "id_number", record_id)
        sealed = b"\x01\x01\x00\x00\x00\x01" + nonce + AESGCM(material).encrypt(nonce, value.encode(), aad)
        assert text == "hub1." + base64.urlsafe_b64encode(sealed).decode().rstrip("=")


GOLDEN_AES_BLOB = (
    "010100000001202122232425262728292a2be30b96415cad2b372e4573fcf229c4c9e2111894e5b5883f1989f67c4c7f24dcc455"
)
