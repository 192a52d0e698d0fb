"""The WXBizMsgCrypt family: WeCom (XML and JSON callbacks), DingTalk HTTP push, Yonyou events.

All of them share one scheme (vendors.md §0): ``key = b64decode(EncodingAESKey + "=")``,
AES-256-CBC with ``IV = key[:16]``, PKCS#7 padding to a **32-byte** block, plaintext
``random(16) || uint32_be(len(msg)) || msg || receive_id``, and
``signature = sha1("".join(sorted([token, timestamp, nonce, encrypt]))).hexdigest()``.

The signature is checked (in constant time, over the exact ciphertext string received) before
anything is decrypted, so a forged ciphertext never reaches the padding check. Decryption then
checks the trailing ``receive_id`` (WeCom corpid or suite id; DingTalk appKey, corpId or
suiteKey), because a valid message for another tenant of the same token is not ours.

Both directions are here: hub verifies and decrypts; the simulators encrypt and sign the way the
vendor does, with the 16-byte random prefix injectable so vendor vectors can be reproduced.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import string
import struct
import time
import xml.etree.ElementTree as ET  # DTDs are refused before parsing, see _xml_fields
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from hub.callbacks.errors import DecryptError, SignatureError

ENCODING_AES_KEY_CHARS = 43
PAD_BLOCK_BYTES = 32  # the vendors pad to 32, not to AES's 16: matters for byte-exact output
RANDOM_PREFIX_BYTES = 16
_AES_BLOCK = 16
_LENGTH_FIELD = struct.Struct(">I")
_PREFIX_ALPHABET = (string.ascii_letters + string.digits).encode()


def random_prefix() -> bytes:
    """16 random alphanumerics, the shape Tencent's and DingTalk's own encrypters emit."""
    return bytes(secrets.choice(_PREFIX_ALPHABET) for _ in range(RANDOM_PREFIX_BYTES))


def random_nonce(length: int = 16) -> str:
    """A nonce for replies hub signs (vendors accept any printable string)."""
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(length))


def pkcs7_pad(data: bytes, block: int = PAD_BLOCK_BYTES) -> bytes:
    """PKCS#7 to ``block`` bytes; 1 to ``block`` bytes of padding are always added."""
    count = block - len(data) % block
    return data + bytes([count]) * count


def pkcs7_unpad(data: bytes, block: int = PAD_BLOCK_BYTES) -> bytes:
    """Strict inverse of :func:`pkcs7_pad`: every padding byte is checked, not only the last.

    A 16-byte padding produced by a 16-block encrypter is valid under a 32 block too, so
    WXBizMsgCrypt messages padded either way decrypt.
    """
    if not data:
        raise DecryptError("decrypted payload is empty")
    count = data[-1]
    if count < 1 or count > block or count > len(data):
        raise DecryptError("decrypted payload has invalid padding")
    if not hmac.compare_digest(data[-count:], bytes([count]) * count):
        raise DecryptError("decrypted payload has invalid padding")
    return data[:-count]


def b64decode_strict(value: str, what: str) -> bytes:
    """Base64 that refuses stray characters (line breaks are tolerated, some SDKs wrap at 76)."""
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise DecryptError(f"{what} is not valid base64") from None


def normalise_echostr(echostr: str) -> str:
    """The URL-verification ``echostr`` as the vendor signed it, whatever decoding it went through.

    WeCom sends it percent-encoded (``%2B``, ``%2F``, ``%3D``) and its sample code insists on
    URL-decoding it. A raw query value still holds ``%``; a form decoder turns a literal ``+``
    into a space. Neither ``%`` nor a space is base64, so both repairs are unambiguous.
    """
    if "%" in echostr:
        echostr = unquote(echostr)
    return echostr.replace(" ", "+")


@dataclass(frozen=True)
class EncryptedMessage:
    """A ciphertext with the values its signature covers, ready to be framed for one vendor."""

    encrypt: str
    signature: str
    timestamp: str
    nonce: str


@dataclass(frozen=True)
class OutgoingCallback:
    """What a simulator sends: the signed query parameters and the exact body bytes."""

    query: dict[str, str]
    body: bytes


class WXBizMsgCrypt:
    """The shared core: signature, AES framing and the receive_id check.

    Use :class:`WeComCrypto` or :class:`DingTalkCrypto` for the vendor framings; this class is
    enough on its own for Yonyou event push (same scheme, ``{"encrypt"}`` style bodies).
    """

    def __init__(
        self,
        token: str,
        encoding_aes_key: str,
        receive_id: str,
        *,
        prefix_source: Callable[[], bytes] = random_prefix,
    ) -> None:
        if len(encoding_aes_key) != ENCODING_AES_KEY_CHARS:
            raise ValueError(f"EncodingAESKey must be {ENCODING_AES_KEY_CHARS} characters")
        try:
            key = base64.b64decode(encoding_aes_key + "=", validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("EncodingAESKey is not base64") from None
        if not token or not receive_id:
            raise ValueError("token and receive_id are required")
        self._token = token
        self._key = key
        self._iv = key[:_AES_BLOCK]
        self._receive_id = receive_id.encode()
        self._prefix_source = prefix_source

    # -- signature -------------------------------------------------------------------------------

    def sign(self, timestamp: str, nonce: str, encrypt: str) -> str:
        """``sha1`` hex of the four values sorted and joined, as every vendor SDK computes it."""
        joined = "".join(sorted([self._token, timestamp, nonce, encrypt]))
        return hashlib.sha1(joined.encode("utf-8", "replace")).hexdigest()  # noqa: S324  (the vendor's scheme)

    def verify_signature(self, signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        """Raise :class:`SignatureError` unless ``signature`` matches, compared in constant time."""
        expected = self.sign(timestamp, nonce, encrypt)
        if not signature or not hmac.compare_digest(
            signature.strip().lower().encode("utf-8", "replace"), expected.encode("utf-8", "replace")
        ):
            raise SignatureError("WXBizMsgCrypt msg_signature does not match")

    # -- AES framing -----------------------------------------------------------------------------

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._iv))

    def encrypt(self, plaintext: bytes | str, *, prefix: bytes | None = None) -> str:
        """Base64 ciphertext of ``plaintext`` framed for this receive_id.

        ``prefix`` pins the 16 random bytes (vector tests); otherwise ``prefix_source`` makes them.
        """
        message = plaintext.encode() if isinstance(plaintext, str) else plaintext
        head = self._prefix_source() if prefix is None else prefix
        if len(head) != RANDOM_PREFIX_BYTES:
            raise ValueError(f"the random prefix must be {RANDOM_PREFIX_BYTES} bytes")
        framed = head + _LENGTH_FIELD.pack(len(message)) + message + self._receive_id
        encryptor = self._cipher().encryptor()
        sealed = encryptor.update(pkcs7_pad(framed)) + encryptor.finalize()
        return base64.b64encode(sealed).decode()

    def decrypt(self, encrypt: str) -> bytes:
        """The message inside ``encrypt``; :class:`DecryptError` if framing or receive_id is wrong.

        Call only after :meth:`verify_signature` (or use :meth:`open`), never on unsigned input.
        """
        sealed = b64decode_strict(encrypt, "WXBizMsgCrypt ciphertext")
        if not sealed or len(sealed) % _AES_BLOCK:
            raise DecryptError("WXBizMsgCrypt ciphertext length is not a whole number of AES blocks")
        decryptor = self._cipher().decryptor()
        framed = pkcs7_unpad(decryptor.update(sealed) + decryptor.finalize())
        header = RANDOM_PREFIX_BYTES + _LENGTH_FIELD.size
        if len(framed) < header:
            raise DecryptError("WXBizMsgCrypt plaintext is shorter than its header")
        (length,) = _LENGTH_FIELD.unpack_from(framed, RANDOM_PREFIX_BYTES)
        if header + length > len(framed):
            raise DecryptError("WXBizMsgCrypt length field overruns the plaintext")
        message, receiver = framed[header : header + length], framed[header + length :]
        if not hmac.compare_digest(receiver, self._receive_id):
            raise DecryptError("WXBizMsgCrypt message is addressed to a different receive_id")
        return message

    # -- both together ---------------------------------------------------------------------------

    def seal(
        self, plaintext: bytes | str, timestamp: str, nonce: str, *, prefix: bytes | None = None
    ) -> EncryptedMessage:
        """Encrypt and sign: what a vendor sends, and what hub replies with."""
        encrypt = self.encrypt(plaintext, prefix=prefix)
        return EncryptedMessage(encrypt, self.sign(timestamp, nonce, encrypt), timestamp, nonce)

    def open(self, signature: str, timestamp: str, nonce: str, encrypt: str) -> bytes:
        """Verify the signature, then decrypt: the only order that is safe."""
        self.verify_signature(signature, timestamp, nonce, encrypt)
        return self.decrypt(encrypt)

    def verify_url(self, signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """Answer a URL-verification GET: the decrypted ``echostr``, to be returned as the body.

        ``echostr`` may be the raw (percent-encoded) query value or an already decoded one.
        """
        echostr = normalise_echostr(echostr)
        plain = self.open(signature, timestamp, nonce, echostr)
        try:
            return plain.decode()
        except UnicodeDecodeError:
            raise DecryptError("WXBizMsgCrypt echostr is not UTF-8") from None


def _json_object(body: bytes, vendor: str) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise DecryptError(f"{vendor} callback body is not JSON") from None
    if not isinstance(parsed, dict):
        raise DecryptError(f"{vendor} callback body is not a JSON object")
    return parsed


def _string_field(document: Mapping[str, Any], names: tuple[str, ...], vendor: str) -> str:
    for name in names:
        value = document.get(name)
        if isinstance(value, str) and value:
            return value
    raise DecryptError(f"{vendor} callback body has no {names[0]} field")


_XML_REPLY = (
    "<xml>\n<Encrypt><![CDATA[{encrypt}]]></Encrypt>\n"
    "<MsgSignature><![CDATA[{signature}]]></MsgSignature>\n"
    "<TimeStamp>{timestamp}</TimeStamp>\n<Nonce><![CDATA[{nonce}]]></Nonce>\n</xml>"
)


def _xml_fields(body: bytes, vendor: str) -> dict[str, str]:
    """Top-level child texts of a WeCom ``<xml>`` envelope.

    Declarations of any kind (DTD, entities) are refused before parsing: the envelope never has
    them, and refusing them closes entity-expansion attacks without an extra dependency.
    """
    if b"<!" in body.replace(b"<![CDATA[", b""):
        raise DecryptError(f"{vendor} callback XML carries a declaration")
    try:
        root = ET.fromstring(body)  # noqa: S314  (declarations refused above)
    except ET.ParseError:
        raise DecryptError(f"{vendor} callback body is not XML") from None
    return {child.tag: child.text or "" for child in root}


class WeComCrypto(WXBizMsgCrypt):
    """WeCom callbacks: URL verification, XML mode, JSON mode (``WXBizJsonMsgCrypt``), replies.

    Timestamps are in seconds, signed as strings.
    """

    vendor = "WeCom"

    def decrypt_xml(self, signature: str, timestamp: str, nonce: str, body: bytes) -> bytes:
        """Plaintext XML of a POSTed ``<xml><ToUserName/><Encrypt/><AgentID/></xml>`` callback."""
        encrypt = _xml_fields(body, self.vendor).get("Encrypt", "")
        if not encrypt:
            raise DecryptError("WeCom callback XML has no Encrypt element")
        return self.open(signature, timestamp, nonce, encrypt)

    def decrypt_json(self, signature: str, timestamp: str, nonce: str, body: bytes) -> bytes:
        """Plaintext of a JSON-mode ``{"tousername","encrypt","agentid"}`` callback."""
        encrypt = _string_field(_json_object(body, self.vendor), ("encrypt", "Encrypt"), self.vendor)
        return self.open(signature, timestamp, nonce, encrypt)

    def encrypt_xml_reply(
        self, plaintext: bytes | str, timestamp: str, nonce: str, *, prefix: bytes | None = None
    ) -> str:
        """The passive encrypted reply, in the exact layout of Tencent's and wechatpy's template."""
        sealed = self.seal(plaintext, timestamp, nonce, prefix=prefix)
        return _XML_REPLY.format(
            encrypt=sealed.encrypt, signature=sealed.signature, timestamp=timestamp, nonce=nonce
        )

    def encrypt_json_reply(
        self, plaintext: bytes | str, timestamp: str, nonce: str, *, prefix: bytes | None = None
    ) -> str:
        """The JSON-mode encrypted reply ``{"encrypt","msgsignature","timestamp","nonce"}``."""
        sealed = self.seal(plaintext, timestamp, nonce, prefix=prefix)
        return json.dumps(
            {
                "encrypt": sealed.encrypt,
                "msgsignature": sealed.signature,
                "timestamp": timestamp,
                "nonce": nonce,
            }
        )

    def open_xml_reply(self, reply: bytes) -> bytes:
        """Simulator side: check and decrypt a passive reply built by :meth:`encrypt_xml_reply`."""
        fields = _xml_fields(reply, self.vendor)
        return self.open(
            fields.get("MsgSignature", ""),
            fields.get("TimeStamp", ""),
            fields.get("Nonce", ""),
            fields.get("Encrypt", ""),
        )

    # -- simulator side ----------------------------------------------------------------------------

    def url_verification(self, echo: str, timestamp: str, nonce: str) -> dict[str, str]:
        """Query parameters of the GET WeCom sends to verify a URL (``echostr`` not yet encoded)."""
        sealed = self.seal(echo, timestamp, nonce)
        return {
            "msg_signature": sealed.signature,
            "timestamp": timestamp,
            "nonce": nonce,
            "echostr": sealed.encrypt,
        }

    def xml_callback(
        self,
        plaintext: bytes | str,
        timestamp: str,
        nonce: str,
        *,
        agent_id: str,
        prefix: bytes | None = None,
    ) -> OutgoingCallback:
        """An XML-mode event POST as WeCom sends it."""
        sealed = self.seal(plaintext, timestamp, nonce, prefix=prefix)
        body = (
            f"<xml><ToUserName><![CDATA[{self._receive_id.decode()}]]></ToUserName>\n"
            f"<Encrypt><![CDATA[{sealed.encrypt}]]></Encrypt>\n"
            f"<AgentID><![CDATA[{agent_id}]]></AgentID>\n</xml>"
        )
        return OutgoingCallback(_signed_query(sealed), body.encode())

    def json_callback(
        self,
        plaintext: bytes | str,
        timestamp: str,
        nonce: str,
        *,
        agent_id: str,
        prefix: bytes | None = None,
    ) -> OutgoingCallback:
        """A JSON-mode event POST as WeCom sends it."""
        sealed = self.seal(plaintext, timestamp, nonce, prefix=prefix)
        body = {"tousername": self._receive_id.decode(), "encrypt": sealed.encrypt, "agentid": agent_id}
        return OutgoingCallback(_signed_query(sealed), json.dumps(body).encode())


def _signed_query(sealed: EncryptedMessage) -> dict[str, str]:
    return {"msg_signature": sealed.signature, "timestamp": sealed.timestamp, "nonce": sealed.nonce}


class DingTalkCrypto(WXBizMsgCrypt):
    """DingTalk HTTP event push: ``{"encrypt"}`` bodies, millisecond timestamps, encrypted replies.

    ``receive_id`` is the appKey (event subscription), the corpId (legacy ``register_call_back``)
    or the suiteKey (ISV apps). The URL check is an ordinary event whose plaintext is
    ``{"EventType":"check_url"}``; it is answered like any other, with :meth:`encrypted_reply`.
    """

    vendor = "DingTalk"

    def decrypt_callback(self, signature: str, timestamp: str, nonce: str, body: bytes) -> bytes:
        """Plaintext JSON of a pushed event; the query's ``msg_signature`` (or older ``signature``)."""
        encrypt = _string_field(_json_object(body, self.vendor), ("encrypt",), self.vendor)
        return self.open(signature, timestamp, nonce, encrypt)

    def encrypted_reply(
        self,
        plaintext: bytes | str = "success",
        *,
        timestamp: str | None = None,
        nonce: str | None = None,
        prefix: bytes | None = None,
    ) -> dict[str, str]:
        """``getEncryptedMap("success")``: the JSON object DingTalk expects as the HTTP answer."""
        stamp = timestamp if timestamp is not None else str(int(time.time() * 1000))
        sealed = self.seal(plaintext, stamp, nonce if nonce is not None else random_nonce(), prefix=prefix)
        return {
            "msg_signature": sealed.signature,
            "timeStamp": sealed.timestamp,
            "nonce": sealed.nonce,
            "encrypt": sealed.encrypt,
        }

    def open_reply(self, reply: bytes) -> bytes:
        """Simulator side: check and decrypt hub's answer (expected to be ``b"success"``)."""
        fields = _json_object(reply, self.vendor)
        values = [fields.get(name) for name in ("msg_signature", "timeStamp", "nonce", "encrypt")]
        if not all(isinstance(value, str) for value in values):
            raise DecryptError("DingTalk reply lacks msg_signature, timeStamp, nonce or encrypt")
        signature, timestamp, nonce, encrypt = (str(value) for value in values)
        return self.open(signature, timestamp, nonce, encrypt)

    def callback(
        self, plaintext: bytes | str, timestamp: str, nonce: str, *, prefix: bytes | None = None
    ) -> OutgoingCallback:
        """Simulator side: an event POST as DingTalk sends it (``timestamp`` in milliseconds)."""
        sealed = self.seal(plaintext, timestamp, nonce, prefix=prefix)
        return OutgoingCallback(_signed_query(sealed), json.dumps({"encrypt": sealed.encrypt}).encode())
