"""What the OA simulators (WeCom, DingTalk, Feishu) share: lost replies and approval callbacks.

An OA simulator decides each approval by itself ``approval_delay`` seconds after it is
submitted (``approval_outcome``, or :meth:`decide` at once), queues the vendor's callback for
every change, and delivers the queue the way the vendor pushes: sealed once, so a redelivery is
byte for byte the same; repeated or newest first on request (``repeat``, ``reverse``, or
``callback_repeat`` / ``callback_reverse`` for the background delivery); kept queued until the
receiver acknowledges it. With ``callback_url`` a background thread delivers as events fall due.
:meth:`OASimulator.lose_replies` (and the base ``drop_replies``) make the vendor act on a write
whose answer is then lost.

Each vendor module keeps its routes, envelopes, error codes, crypto and its own
``CallbackEvent`` / ``Delivery`` records.
"""

from __future__ import annotations

import os
import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Self, TypedDict, TypeVar

import requests

from hub.sandbox.base import Faults, LostReply, RateLimit, Simulator


class OASimulatorOptions(TypedDict, total=False):
    """The options every OA simulator takes besides the vendor's credentials and ids."""

    #: seeded members in the address book, and the seed
    count: int
    seed: int
    approval_delay: float
    #: how approvals end, in the vendor's words (approve / agree / APPROVED, or the refusal)
    approval_outcome: str | None
    callback_url: str | None
    port: int
    #: ``"vendor"``: the vendor's documented limit; ``None``: unlimited
    rate_limit: RateLimit | str | None
    faults: Faults | None
    token_ttl: float
    clock: Callable[[], float]


@dataclass(frozen=True)
class Outgoing:
    """A sealed callback as it goes out: the exact body, its query parameters and headers."""

    body: bytes
    params: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(kw_only=True)
class QueuedCallback:
    """One callback queued for delivery; sealed once, so a redelivery is byte for byte the same."""

    seq: int
    #: the approval it is about (the key of ``repeat``)
    subject: str
    due: float
    plaintext: str
    sealed: Outgoing | None = None
    delivered: bool = False
    attempts: int = 0


EventT = TypeVar("EventT", bound=QueuedCallback)
DeliveryT = TypeVar("DeliveryT")


class OASimulator(Simulator, Generic[EventT, DeliveryT]):
    """An OA vendor on loopback: seeded, with self-deciding approvals and callback delivery.

    A subclass sets its vendor attributes *before* calling ``super().__init__`` (which seeds
    the directory last, through :meth:`_seed`), and implements :meth:`_settle`,
    :meth:`seal` and :meth:`delivery`.
    """

    #: the vendor's words for how an approval ends: (approved, refused); the first is the default
    outcomes: ClassVar[tuple[str, str]]
    #: the vendor's documented rate limit (requests, window seconds) for ``rate_limit="vendor"``
    vendor_rate: ClassVar[tuple[int, float] | None] = None
    #: what the vendor calls its callbacks, in ``describe``
    callback_noun: ClassVar[str] = "callbacks"

    def __init__(
        self,
        *,
        count: int = 30,
        seed: int = 1,
        approval_delay: float = 2.0,
        approval_outcome: str | None = None,
        callback_url: str | None = None,
        port: int = 0,
        rate_limit: RateLimit | str | None = "vendor",
        faults: Faults | None = None,
        token_ttl: float = 7200.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if rate_limit == "vendor":
            rate_limit = RateLimit(*self.vendor_rate) if self.vendor_rate else None
        elif isinstance(rate_limit, str):
            raise ValueError("rate_limit is a RateLimit, 'vendor' or None")
        super().__init__(port=port, rate_limit=rate_limit, faults=faults, token_ttl=token_ttl, clock=clock)
        outcome = approval_outcome or self.outcomes[0]
        if outcome not in self.outcomes:
            raise ValueError(f"approval_outcome is {self.outcomes[0]!r} or {self.outcomes[1]!r}")
        self.approval_delay = approval_delay
        self.approval_outcome = outcome
        self.callback_url = callback_url
        self.events: list[EventT] = []
        self.deliveries: list[DeliveryT] = []
        #: what deliver_callbacks (and the background delivery) does when not told: copies of
        #: each event by approval id ("*": every approval), and newest first
        self.callback_repeat: dict[str, int] = {}
        self.callback_reverse = False
        #: accounts created through the API (the seeded ones are not counted)
        self.accounts = 0
        self._stop_delivery = threading.Event()
        self._delivery_thread: threading.Thread | None = None
        self._seed(count, seed)

    @abstractmethod
    def _seed(self, count: int, seed: int) -> None:
        """Fill the address book with ``count`` generated people."""

    @classmethod
    def for_sandbox(cls, *, port: int, seed: int, size: int) -> Self:
        return cls(port=port, seed=seed, count=size, callback_url=os.environ.get("HUB_SANDBOX_CALLBACK_URL"))

    def describe(self) -> dict[str, Any]:
        hint = f"set HUB_SANDBOX_CALLBACK_URL to receive approval {self.callback_noun}"
        return {**super().describe(), "base_url": self.url, "callback_url": self.callback_url or hint}

    # -- lifecycle: callbacks in the background ------------------------------------------------

    def start(self) -> Self:
        super().start()
        if self.callback_url:
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
        super().stop()

    def _deliver_forever(self) -> None:
        while not self._stop_delivery.wait(0.2):
            try:
                self.deliver_callbacks()
            except requests.RequestException:
                continue  # the receiver is down: the events stay queued, as the vendor retries

    # -- faults ------------------------------------------------------------------------------

    def lose_replies(self, path: str, times: int = 1, status: int = 502, *, exact: bool = False) -> None:
        """Process the next ``times`` requests to a path, then answer ``status`` instead.

        ``path`` is a fragment of the request path, or the whole path with ``exact``. The write
        happened at the vendor but the client never learns it: the retry must find what the
        first attempt created.
        """
        self._expect_lost(LostReply(path, times, status, exact))

    # -- callback delivery ---------------------------------------------------------------------

    @abstractmethod
    def approval_ids(self) -> list[str]:
        """The ids of the approvals submitted so far, oldest first."""

    @abstractmethod
    def _settle(self) -> None:
        """Decide the approvals whose delay is over, queueing their callbacks."""

    @abstractmethod
    def seal(self, event: EventT) -> Outgoing:
        """The event as the vendor sends it (called once per event)."""

    @abstractmethod
    def delivery(self, event: EventT, http_status: int | None, accepted: bool) -> DeliveryT:
        """The record of one POST of ``event``."""

    def acknowledged(self, reply: requests.Response) -> bool:
        """Whether the receiver's answer acknowledges the event (any 200, unless the vendor wants more)."""
        return reply.status_code == 200

    def due_events(self) -> list[EventT]:
        """Queued events whose time has come (approvals whose delay is over are decided first)."""
        self._settle()
        now = self.clock()
        with self._lock:
            return [e for e in self.events if not e.delivered and e.due <= now]

    def deliver_callbacks(
        self,
        url: str | None = None,
        *,
        repeat: Mapping[str, int] | None = None,
        reverse: bool | None = None,
        timeout: float = 5.0,
    ) -> list[DeliveryT]:
        """POST every due event to ``url`` (default ``callback_url``) and return what happened.

        ``repeat`` delivers the events of an approval (by its id) that many times, each copy
        byte for byte the same, as the vendor does when it retries; ``reverse`` sends them newest
        first (the decision before the submission). An event the receiver does not acknowledge
        stays queued for the next call. Without them, ``callback_repeat`` (``{"*": 3}``: every
        event three times) and ``callback_reverse`` decide, for the background delivery too.
        """
        target = url or self.callback_url
        if not target:
            raise ValueError("no callback URL: pass one or set callback_url")
        events = self.due_events()
        copies = dict(self.callback_repeat if repeat is None else repeat)
        if self.callback_reverse if reverse is None else reverse:
            events.reverse()
        results: list[DeliveryT] = []
        for event in events:
            if event.sealed is None:
                event.sealed = self.seal(event)
            sealed = event.sealed
            for _ in range(max(1, copies.get(event.subject, copies.get("*", 1)))):
                event.attempts += 1
                try:
                    reply = requests.post(
                        target,
                        params=dict(sealed.params),
                        data=sealed.body,
                        headers=dict(sealed.headers),
                        timeout=timeout,
                    )
                    status: int | None = reply.status_code
                    accepted = self.acknowledged(reply)
                except requests.RequestException:
                    status, accepted = None, False
                with self._lock:
                    event.delivered = event.delivered or accepted
                    results.append(self.delivery(event, status, accepted))
                    self.deliveries.append(results[-1])
        return results
