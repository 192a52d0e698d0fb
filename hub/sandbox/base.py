"""The machinery every vendor simulator shares: a threaded HTTP server on loopback.

A simulator stands in for a vendor's cloud API in tests, the demo and ``hub sandbox start``.
It is never a vendor: every response carries ``X-Hub-Simulator: <vendor>``. Each vendor module
subclasses :class:`Simulator`, declares its routes with :func:`route`, and reproduces the
vendor's documented auth, pagination, rate limits (429 + Retry-After), error codes, token
expiry and callback signatures. Faults are injected through :class:`Faults` (refused before
the vendor acts, or acted on and the answer lost) and :meth:`Simulator.lose_replies` /
:meth:`Simulator.drop_replies`, so retry and re-auth paths are tested against the same server
the demo uses.
"""

from __future__ import annotations

import re
import socket
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Literal, Self, TypeVar

import orjson
import requests

#: Every simulator registered by import: vendor name -> class (``hub sandbox start VENDOR``).
SIMULATORS: dict[str, type[Simulator]] = {}

Handler = Callable[["Simulator", "Request"], "Response"]
#: a route handler of any simulator subclass (``self`` typed as the subclass)
HandlerT = TypeVar("HandlerT", bound=Callable[..., "Response"])
#: how an answer is lost after the vendor acted: the connection closes unanswered, or a 5xx
LostReplyMode = Literal["drop", "status"]
#: the step of the fixed fault patterns (the golden ratio spreads hits evenly, without randomness)
_PATTERN_STEP = 0.6180339887


@dataclass
class Request:
    """One HTTP request as a route handler sees it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # from the route's {placeholders}
    #: set by :attr:`Faults.lost_reply_rate`: processed as usual, then the answer is lost
    reply_lost: bool = False

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The first value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        """The body as JSON (``None`` when empty)."""
        return orjson.loads(self.body) if self.body else None

    def form(self) -> dict[str, str]:
        """The body as an urlencoded form."""
        return {k: v[0] for k, v in urllib.parse.parse_qs(self.body.decode()).items()}


@dataclass
class Response:
    """What a route answers: a status, a JSON-able body (or bytes), headers."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        if self.body is None:
            return b""
        return orjson.dumps(self.body)


def route(method: str, pattern: str) -> Callable[[HandlerT], HandlerT]:
    """Declare a handler for ``method`` on ``pattern`` (``/v1/candidates/{id}``)."""

    def mark(fn: HandlerT) -> HandlerT:
        fn._hub_routes = [*getattr(fn, "_hub_routes", []), (method.upper(), pattern)]  # type: ignore[attr-defined]
        return fn

    return mark


def _compile(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[a-zA-Z_]+\})", pattern)
    regex = "".join(
        f"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") and p.endswith("}") else re.escape(p) for p in parts
    )
    return re.compile(f"^{regex}$")


@dataclass
class RateLimit:
    """At most ``requests`` per ``window`` seconds; over it, 429 with Retry-After."""

    requests: int
    window: float

    def __post_init__(self) -> None:
        self._hits: deque[float] = deque()
        self._lock = threading.Lock()

    def check(self, now: float) -> tuple[bool, int, float]:
        """(allowed, remaining, seconds until a slot frees)."""
        with self._lock:
            while self._hits and now - self._hits[0] >= self.window:
                self._hits.popleft()
            if len(self._hits) >= self.requests:
                return False, 0, self.window - (now - self._hits[0])
            self._hits.append(now)
            return True, self.requests - len(self._hits), 0.0


@dataclass
class Faults:
    """Failures to inject, consumed in order by the requests that reach a route.

    ``throttle``: answer the next N requests 429 with ``Retry-After: retry_after``.
    ``errors``: answer the next N requests with ``error_status`` (5xx by default).
    ``error_rate``: answer this share of requests with ``error_status`` (seeded, repeatable)
    before the vendor acts on them.
    ``lost_reply_rate``: let the vendor act on this share of requests, then lose the answer (a
    fixed pattern too, counted apart from ``error_rate``, so the two shares add up): with
    ``lost_reply_mode`` "drop" the connection closes without an answer at once (the client sees
    a reset or a read timeout), with "status" the answer is ``error_status``. The client cannot
    tell whether a write happened: its retry must find what the first attempt made.
    ``only``: restrict the faults to paths containing this text.

    Requests to ``public_paths`` (token endpoints) are never faulted.
    """

    throttle: int = 0
    retry_after: float = 1.0
    errors: int = 0
    error_status: int = 503
    error_rate: float = 0.0
    only: str | None = None
    lost_reply_rate: float = 0.0
    lost_reply_mode: LostReplyMode = "drop"

    def __post_init__(self) -> None:
        if self.lost_reply_mode not in ("drop", "status"):
            raise ValueError("lost_reply_mode is 'drop' or 'status'")
        for name in ("error_rate", "lost_reply_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} is a share between 0 and 1")

    @classmethod
    def flaky(cls, rate: float, *, only: str | None = None) -> Faults:
        """About ``rate`` of the requests fail: half refused with a 5xx before the vendor acts,
        half acted on with the connection then dropped (what "10% 5xx or timeouts" means)."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate is a share between 0 and 1")
        return cls(error_rate=rate / 2, lost_reply_rate=rate / 2, only=only)


@dataclass
class LostReply:
    """The next ``remaining`` successful answers to matching requests are lost after the vendor
    acted: replaced by ``status``, or (``status`` None) the connection closes unanswered."""

    fragment: str
    remaining: int
    status: int | None
    #: ``fragment`` is the whole path, not a part of it
    exact: bool = False
    #: only requests of this method
    method: str | None = None

    def take(self, request: Request, response: Response) -> bool:
        """Whether this loss swallows ``response``; one fewer left if it does."""
        if self.remaining <= 0 or not 200 <= response.status < 300:
            return False
        if self.method is not None and request.method != self.method.upper():
            return False
        if not (request.path == self.fragment if self.exact else self.fragment in request.path):
            return False
        self.remaining -= 1
        return True


class Simulator:
    """A vendor API on ``http://127.0.0.1:<port>``, started in a background thread.

    Subclasses set ``vendor`` and decorate handlers with :func:`route`; ``authenticate`` is
    called before every route not listed in ``public_paths`` and may answer instead of it.
    """

    vendor: ClassVar[str] = ""
    public_paths: ClassVar[tuple[str, ...]] = ()
    _routes: ClassVar[list[tuple[str, re.Pattern[str], Handler]]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._routes = []
        for klass in reversed(cls.__mro__):
            for value in vars(klass).values():
                for method, pattern in getattr(value, "_hub_routes", ()):
                    cls._routes.append((method, _compile(pattern), value))
        if cls.vendor:
            SIMULATORS[cls.vendor] = cls

    def __init__(
        self,
        *,
        port: int = 0,
        rate_limit: RateLimit | None = None,
        faults: Faults | None = None,
        token_ttl: float = 7200.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.port = port
        self.rate_limit = rate_limit
        self.faults = faults or Faults()
        self.token_ttl = token_ttl
        self.clock = clock
        #: (method, path with query, status) of every request, for assertions; status 0: the
        #: connection was dropped without an answer
        self.requests: list[tuple[str, str, int]] = []
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._fault_counter = 0
        self._lost_reply_counter = 0
        self._lost_replies: list[LostReply] = []
        self._tokens: dict[str, float] = {}  # access token -> expiry (clock seconds)
        #: simulators that call back: deliver what is due every 0.2 s in the background
        self.auto_deliver = False
        self._stop_delivery = threading.Event()
        self._delivery_thread: threading.Thread | None = None
        self._token_serial = 0

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"the {self.vendor} simulator is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> Self:
        simulator = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once: no delayed-ACK stalls

            def _serve(self) -> None:
                simulator._handle(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve  # noqa: N815 (http.server's names)

            def log_message(self, format: str, *args: Any) -> None:
                return  # the request log is in simulator.requests

        server = ThreadingHTTPServer(("127.0.0.1", self.port), _Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sim-{self.vendor}",
            daemon=True,
        )
        self._thread.start()
        if self.auto_deliver:
            self._stop_delivery.clear()
            self._delivery_thread = threading.Thread(
                target=self._deliver_forever, name=f"sim-{self.vendor}-callbacks", daemon=True
            )
            self._delivery_thread.start()
        return self

    def stop(self) -> None:
        self._stop_delivery.set()
        if self._delivery_thread is not None:
            self._delivery_thread.join(timeout=5)
            self._delivery_thread = None
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def deliver_callbacks(self) -> object:
        """Send the callbacks that are due (simulators of vendors that call back override it)."""
        return None

    def _deliver_forever(self) -> None:
        while not self._stop_delivery.wait(0.2):
            try:
                self.deliver_callbacks()
            except (requests.RequestException, ValueError):
                continue  # nowhere to deliver yet, or the receiver is down: vendors retry

    # -- tokens ------------------------------------------------------------------------------

    def issue_token(self, ttl: float | None = None) -> tuple[str, float]:
        """A new access token and its lifetime in seconds."""
        with self._lock:
            self._token_serial += 1
            token = f"sim-{self.vendor}-token-{self._token_serial}-{int(self.clock() * 1000)}"
            lifetime = self.token_ttl if ttl is None else ttl
            self._tokens[token] = self.clock() + lifetime
            return token, lifetime

    def token_valid(self, token: str | None) -> bool:
        with self._lock:
            expiry = self._tokens.get(token or "")
            return expiry is not None and expiry > self.clock()

    def expire_tokens(self) -> None:
        """Make every issued token expire now (a token expiry mid-sync)."""
        with self._lock:
            for token in self._tokens:
                self._tokens[token] = 0.0

    def bearer(self, request: Request) -> str | None:
        value = request.headers.get("authorization", "")
        return value[7:].strip() if value.lower().startswith("bearer ") else None

    # -- hooks for subclasses -----------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        """Answer instead of the route (401/403) when the request is not authorised."""
        return None

    def throttled(self, retry_after: float) -> Response:
        """The vendor's answer to a request over its rate limit."""
        seconds = max(1, int(retry_after + 0.999))
        return Response(429, {"message": "Too Many Requests"}, {"Retry-After": str(seconds)})

    def server_error(self, status: int) -> Response:
        """The vendor's answer for an injected 5xx."""
        return Response(status, {"message": "Service Unavailable"})

    def rate_headers(self, remaining: int) -> dict[str, str]:
        """Headers reporting the rate limit on every answer (vendors that send them)."""
        return {}

    # -- lost answers -------------------------------------------------------------------------

    def lose_replies(self, path: str, times: int = 1, status: int = 502) -> None:
        """Process the next ``times`` requests whose path contains ``path``, then answer ``status``.

        The write happened at the vendor but the client never learns it: the retry must find
        what the first attempt made. Only successful answers are lost.
        """
        self._expect_lost(LostReply(path, times, status))

    def drop_replies(
        self, path: str, times: int = 1, *, exact: bool = False, method: str | None = None
    ) -> None:
        """Process the next ``times`` requests whose path contains ``path`` (is ``path`` with
        ``exact``; of ``method``), then close the connection without an answer: a timeout or a
        reset to the client, which cannot know that the vendor acted."""
        self._expect_lost(LostReply(path, times, None, exact, method))

    def _expect_lost(self, loss: LostReply) -> None:
        with self._lock:
            self._lost_replies.append(loss)

    def _answer_sent(self, request: Request, response: Response) -> Response | None:
        """What goes back for a processed request: ``response``, a 5xx in its place, or ``None``
        (the connection is dropped unanswered)."""
        with self._lock:
            for loss in self._lost_replies:
                if loss.take(request, response):
                    return None if loss.status is None else self.server_error(loss.status)
        if request.reply_lost:
            if self.faults.lost_reply_mode == "drop":
                return None
            return self.server_error(self.faults.error_status)
        return response

    # -- dispatch -----------------------------------------------------------------------------

    def _inject(self, request: Request) -> Response | None:
        faults = self.faults
        if faults.only and faults.only not in request.path:
            return None
        with self._lock:
            if faults.throttle > 0:
                faults.throttle -= 1
                return self.throttled(faults.retry_after)
            if faults.errors > 0:
                faults.errors -= 1
                return self.server_error(faults.error_status)
            if faults.error_rate > 0:
                self._fault_counter += 1
                # a fixed pattern, not random: runs are repeatable
                if (self._fault_counter * _PATTERN_STEP) % 1.0 < faults.error_rate:
                    return self.server_error(faults.error_status)
            if faults.lost_reply_rate > 0:
                self._lost_reply_counter += 1
                # the same pattern half a turn apart: its hits fall between the refused ones
                if (self._lost_reply_counter * _PATTERN_STEP + 0.5) % 1.0 < faults.lost_reply_rate:
                    request.reply_lost = True
        return None

    def dispatch(self, request: Request) -> Response:
        public = any(request.path.startswith(p) for p in self.public_paths)
        if not public:
            injected = self._inject(request)
            if injected is not None:
                return injected
            remaining = -1
            if self.rate_limit is not None:
                allowed, remaining, wait = self.rate_limit.check(time.monotonic())
                if not allowed:
                    return self.throttled(wait)
            denied = self.authenticate(request)
            if denied is not None:
                return denied
        else:
            remaining = -1
        allowed_methods = []
        for method, pattern, handler in self._routes:
            match = pattern.match(request.path)
            if match is None:
                continue
            if method != request.method:
                allowed_methods.append(method)
                continue
            request.params = match.groupdict()
            response = handler(self, request)
            if remaining >= 0:
                response.headers = {**self.rate_headers(remaining), **response.headers}
            return response
        if allowed_methods:
            return Response(405, {"message": f"method {request.method} not allowed"})
        return Response(404, {"message": f"no such resource: {request.path}"})

    def _handle(self, http: BaseHTTPRequestHandler) -> None:
        parsed = urllib.parse.urlsplit(http.path)
        length = int(http.headers.get("Content-Length") or 0)
        body = http.rfile.read(length) if length else b""
        request = Request(
            method=http.command,
            path=parsed.path,
            query=urllib.parse.parse_qs(parsed.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in http.headers.items()},
            body=body,
        )
        try:
            response = self.dispatch(request)
        except Exception as exc:  # noqa: BLE001 - a simulator bug answers 500, as a vendor would
            response = Response(500, {"message": f"simulator error: {type(exc).__name__}"})
        sent = self._answer_sent(request, response)
        with self._lock:
            self.requests.append((request.method, http.path, 0 if sent is None else sent.status))
        if sent is None:
            http.close_connection = True  # nothing written: the client's read ends unanswered
            return
        response = sent
        payload = response.encoded()
        http.send_response(response.status)
        headers = {"Content-Type": "application/json; charset=utf-8", **response.headers}
        for name, value in headers.items():
            http.send_header(name, value)
        http.send_header("X-Hub-Simulator", self.vendor)
        http.send_header("Content-Length", str(len(payload)))
        # one write for headers and body: a separate small write would wait on a delayed ACK
        http._headers_buffer.append(b"\r\n")  # type: ignore[attr-defined]
        http.wfile.write(b"".join(http._headers_buffer) + payload)  # type: ignore[attr-defined]
        http._headers_buffer = []  # type: ignore[attr-defined]

    @classmethod
    def for_sandbox(cls, *, port: int, seed: int, size: int) -> Simulator:
        """The simulator ``hub sandbox start`` runs: ``size`` seeded records where that applies."""
        return cls(port=port)

    def describe(self) -> dict[str, Any]:
        """What an integrator needs to point a connector at this simulator (``hub sandbox``)."""
        return {"vendor": self.vendor, "url": self.url}


def free_port() -> int:
    """A loopback port free right now: for a receiver (``hub serve``) the simulators must call
    back before it is started."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pages(items: list[Any], offset: int, limit: int) -> tuple[list[Any], int | None]:
    """One page of ``items`` and the next offset (``None`` on the last page)."""
    page = items[offset : offset + limit]
    following = offset + limit
    return page, (following if following < len(items) else None)


def iso(ts: float) -> str:
    """A UTC ISO-8601 timestamp with milliseconds, as most vendors write them."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"
