"""Vendor callback cryptography: verify and decrypt for hub, sign and encrypt for the simulators.

Pure functions and small classes on ``cryptography`` and the standard library, with no tie to
any web framework: the webhook receiver passes in raw body bytes, query values and headers.

- :mod:`hub.callbacks.wxbiz`: WXBizMsgCrypt (WeCom XML/JSON, DingTalk push, Yonyou events)
- :mod:`hub.callbacks.lark`: Feishu / Lark Encrypt Key, ``X-Lark-Signature``, URL verification
- :mod:`hub.callbacks.hmac_schemes`: Greenhouse, DocuSign Connect, e签宝, 法大大 FASC
- :mod:`hub.callbacks.replay`: timestamp freshness (seconds or milliseconds) and nonce reuse
- :mod:`hub.callbacks.errors`: the typed refusals, whose messages never quote the payload

See ``docs/callbacks.md`` for which vendor uses what.
"""

from hub.callbacks.errors import CallbackError, DecryptError, ReplayedNonce, SignatureError, StaleTimestamp
from hub.callbacks.lark import LarkCrypto
from hub.callbacks.replay import (
    VENDOR_TIMESTAMP_UNITS,
    InMemoryNonceStore,
    NonceStore,
    ReplayGuard,
    TimeUnit,
    check_freshness,
    signed_at,
)
from hub.callbacks.wxbiz import DingTalkCrypto, WeComCrypto, WXBizMsgCrypt

__all__ = [
    "VENDOR_TIMESTAMP_UNITS",
    "CallbackError",
    "DecryptError",
    "DingTalkCrypto",
    "InMemoryNonceStore",
    "LarkCrypto",
    "NonceStore",
    "ReplayGuard",
    "ReplayedNonce",
    "SignatureError",
    "StaleTimestamp",
    "TimeUnit",
    "WXBizMsgCrypt",
    "WeComCrypto",
    "check_freshness",
    "signed_at",
]
