"""The vendor-neutral client machinery: token cache margins, error kinds and code tables.

The transport and the authenticated call are exercised over loopback by the OA plugins' tests
(tests/plugins/test_wecom.py, test_dingtalk.py, test_feishu.py) against their simulators; an
answer that breaks off mid-body (which no simulator sends) against a raw loopback socket here.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator, Mapping
from typing import Any, Self

import pytest

from hub.vendor_http import (
    AuthFailed,
    Conflict,
    ErrorCodes,
    ErrorKinds,
    HttpSettings,
    NotFound,
    OutcomeUnknown,
    RateLimited,
    TokenCache,
    Unavailable,
    VendorClient,
    VendorError,
)


class AcmeError(VendorError):
    vendor = "Acme"
    code_label = "errcode"


class AcmeAuth(AcmeError, AuthFailed):
    pass


class AcmeLimited(AcmeError, RateLimited):
    pass


class AcmeDown(AcmeError, Unavailable):
    pass


class AcmeLost(AcmeError, OutcomeUnknown):
    pass


class AcmeTaken(AcmeError, Conflict):
    pass


class AcmeMissing(AcmeError, NotFound):
    pass


CODES = ErrorCodes(
    {7: ("mobile", "the mobile number is taken"), 9: ("", "too many calls")},
    token_invalid=frozenset({3}),
    throttled=frozenset({9}),
    auth=frozenset({4}),
    conflict=frozenset({7}),
    not_found=frozenset({8}),
)
KINDS = ErrorKinds.of(CODES, AcmeError)


def test_token_cache_keeps_a_token_until_the_margin_before_expiry() -> None:
    now = [1000.0]
    issued = iter(["t1", "t2", "t3"])
    cache = TokenCache(lambda: now[0], margin=300)
    fetch = lambda: (next(issued), 7200.0)  # noqa: E731
    assert cache.get("app", fetch) == "t1"
    now[0] += 7200 - 301
    assert cache.get("app", fetch) == "t1"
    now[0] += 2  # inside the margin: a new token before the vendor refuses the old one
    assert cache.get("app", fetch) == "t2"
    cache.invalidate("app")
    assert cache.get("app", fetch) == "t3" and cache.fetches == 3


def test_short_lived_tokens_keep_half_their_life() -> None:
    now = [0.0]
    cache = TokenCache(lambda: now[0], margin=300)
    cache.get("", lambda: ("short", 100.0))
    now[0] = 49.0
    assert cache.get("", lambda: ("other", 100.0)) == "short"
    now[0] = 51.0
    assert cache.get("", lambda: ("other", 100.0)) == "other"


def test_codes_pick_the_vendors_kind_and_quote_no_vendor_text() -> None:
    taken = KINDS.error_for("create_user", 7, "mobile existed: 13800138000")
    assert isinstance(taken, AcmeTaken) and isinstance(taken, Conflict) and taken.field == "mobile"
    assert "13800138000" not in str(taken)
    assert str(taken) == "Acme create_user failed: errcode 7: the mobile number is taken"
    assert isinstance(KINDS.error_for("x", 8, ""), AcmeMissing)
    assert isinstance(KINDS.error_for("x", 4, ""), AcmeAuth)
    limited = KINDS.error_for("x", 9, "")
    assert isinstance(limited, AcmeLimited) and limited.retryable
    unknown = KINDS.error_for("x", 99, "bad value 13800138000 for mobile")
    assert type(unknown) is AcmeError and not unknown.retryable
    assert "13800138000" not in unknown.reason  # masked


def test_a_refused_token_is_an_auth_error_unless_it_is_a_rate_limit() -> None:
    assert isinstance(KINDS.token_refused("gettoken", 5, "nope"), AcmeAuth)
    assert isinstance(KINDS.token_refused("gettoken", 9, ""), AcmeLimited)


def test_a_vendor_must_declare_every_kind() -> None:
    class HalfError(VendorError):
        vendor = "Half"

    class HalfAuth(HalfError, AuthFailed):
        pass

    with pytest.raises(TypeError, match="HalfError needs exactly one subclass that is a RateLimited"):
        ErrorKinds.of(CODES, HalfError)
    assert HalfAuth.retryable is False


class AcmeClient(VendorClient[HttpSettings]):
    errors = KINDS

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **kwargs: Any) -> Self:
        return cls(HttpSettings(backoff_base=0.01), **kwargs)

    def _fetch_token(self, credential: str) -> tuple[str, float]:
        return "token", 3600.0


@pytest.fixture
def breaking_server() -> Iterator[tuple[str, list[bytes]]]:
    """A loopback HTTP peer whose first answer breaks off mid-body; later ones are whole.

    Yields its URL and the request lines it received."""
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                received.append(data.split(b"\r\n", 1)[0])
                body = b'{"ok": true}'
                head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                if len(received) == 1:  # announce the whole body, send half of it, hang up
                    conn.sendall(head + b"Content-Length: %d\r\n\r\n" % len(body) + body[:5])
                else:
                    conn.sendall(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/items", received
    listener.close()


def test_an_answer_that_breaks_off_is_retried_for_a_read(breaking_server: tuple[str, list[bytes]]) -> None:
    url, received = breaking_server
    sleeps: list[float] = []
    client = AcmeClient.from_config({}, sleep=sleeps.append)
    response = client._exchange("get_item", "GET", url, idempotent=True)
    assert response.json() == {"ok": True}
    assert len(received) == 2 and len(sleeps) == 1


def test_an_answer_that_breaks_off_is_an_unknown_outcome_for_a_write(
    breaking_server: tuple[str, list[bytes]],
) -> None:
    url, received = breaking_server
    with pytest.raises(AcmeLost) as caught:
        AcmeClient.from_config({}, sleep=lambda _: None)._exchange(
            "create_item", "POST", url, idempotent=False
        )
    assert caught.value.retryable and len(received) == 1  # not sent again: look it up first
