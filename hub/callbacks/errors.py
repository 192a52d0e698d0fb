"""Why a vendor callback was refused, as types the webhook receiver maps to HTTP answers.

Every message is a fixed sentence naming the vendor scheme and the check that failed. No
message ever quotes the body, the plaintext, a signature, a nonce or a receive id: callbacks
carry personal data (new hires, signers) and these errors end up in logs and dead letters.
"""

from __future__ import annotations

from hub.errors import HubError


class CallbackError(HubError):
    """A callback did not pass verification; the receiver answers 4xx and processes nothing."""


class SignatureError(CallbackError):
    """The signature is missing, malformed or does not match the shared secret."""


class DecryptError(CallbackError):
    """The encrypted payload is malformed, badly padded or not addressed to this receiver."""


class StaleTimestamp(CallbackError):
    """The signed timestamp is missing, not a number, or outside the accepted window."""


class ReplayedNonce(CallbackError):
    """This (timestamp, nonce) or delivery id was accepted before.

    Vendors redeliver on timeouts with the same signed values, so the receiver should answer
    this with the vendor's normal "success" reply and skip processing, not with an error.
    """
