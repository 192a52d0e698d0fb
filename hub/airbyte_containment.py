"""Keeping airbyte-cdk's process-wide side effects inside the call that caused them.

The CDK was written to own its process. Embedded in hub it would:

* ``print()`` AirbyteMessage JSON to stdout from its worker threads: a CONTROL message with
  the whole connector config (rotated OAuth tokens in clear) whenever a single-use refresh
  token is used, and a TRACE "rate limited" status on every 429;
* put a JSON-printing handler on the root logger when ``airbyte_cdk`` is imported (hub
  removes it on import, see :func:`hub._contain_airbyte_logging`; done again here).

While a CDK call runs (every source read by the engine, and the manifest connector's spec,
check and discover), :func:`contained` puts a routing stream on ``sys.stdout``: lines that
are Airbyte messages are taken off stdout (CONTROL configs go to the call they belong to,
the rest is logged at debug level, without values), everything else is written through.
The CDK prints CONTROL from its own worker threads, so a message is attributed by content:
it belongs to the active call whose config it reproduces, apart from the paths the
manifest's OAuth authenticators write (``refresh_token_config_path`` and friends), or to the
call running in the printing thread. A CONTROL message no active call claims is dropped with
a warning: it is never handed to the wrong connector.
"""

from __future__ import annotations

import copy
import io
import logging
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

import orjson

import hub

log = logging.getLogger("hub.airbyte")

#: ``type`` values of Airbyte protocol messages: a stdout line that parses as JSON with one
#: of these is the CDK talking to a platform that is not there.
_MESSAGE_TYPES = frozenset(
    {"RECORD", "STATE", "LOG", "SPEC", "CONNECTION_STATUS", "CATALOG", "TRACE", "CONTROL"}
)


def _leaves(value: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """``(path, value)`` for every non-mapping value of a nested config."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _leaves(item, (*prefix, str(key)))
    else:
        yield prefix, value


def _lookup(config: Mapping[str, Any], path: tuple[str, ...]) -> tuple[bool, Any]:
    node: Any = config
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


class ConfigCapture:
    """One CDK call in flight: the config it was given and the CONTROL configs it printed."""

    def __init__(self, config: Mapping[str, Any], written_paths: Sequence[Sequence[str]]) -> None:
        self.thread = threading.get_ident()
        self._baselines: list[Any] = []
        self._written = [tuple(p) for p in written_paths]
        self._lock = threading.Lock()
        self._updates: list[dict[str, Any]] = []
        self.add_baseline(config)

    def add_baseline(self, config: Mapping[str, Any] | None) -> None:
        """Another form of this call's config: the CDK's own, after its config transformations."""
        if isinstance(config, Mapping):
            # JSON round trip: compared with what the CDK serialised, not with Python objects
            self._baselines.append(orjson.loads(orjson.dumps(dict(config), default=str)))

    def _written_by_cdk(self, path: tuple[str, ...]) -> bool:
        return any(path[: len(w)] == w for w in self._written)

    def reproduces(self, config: Mapping[str, Any]) -> bool:
        """Whether ``config`` is this call's config with only CDK-written paths changed."""
        return any(self._matches(baseline, config) for baseline in self._baselines)

    def _matches(self, baseline: Any, config: Mapping[str, Any]) -> bool:
        compared = 0
        for path, value in _leaves(baseline):
            if self._written_by_cdk(path):
                continue
            found, other = _lookup(config, path)
            if not found or other != value:
                return False
            compared += 1
        return compared > 0  # an empty config identifies nothing

    def offer(self, config: dict[str, Any]) -> None:
        with self._lock:
            self._updates.append(config)

    def take(self) -> list[dict[str, Any]]:
        """The config updates printed since the last call, oldest first."""
        if not self._updates:  # asked once a message: most calls find nothing, without the lock
            return []
        with self._lock:
            updates, self._updates = self._updates, []
        return updates


class _RoutingStdout(io.TextIOBase):
    """``sys.stdout`` while manifests run: Airbyte message lines are taken off, the rest passes."""

    def __init__(self, target: TextIO) -> None:
        super().__init__()
        self.target = target
        self._pending = threading.local()

    # what callers of sys.stdout look at
    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.target, "encoding", None) or "utf-8"

    def isatty(self) -> bool:
        return bool(getattr(self.target, "isatty", lambda: False)())

    def fileno(self) -> int:
        return int(self.target.fileno())

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        buffered = getattr(self._pending, "text", "")
        if buffered:
            self._pending.text = ""
            self._emit(buffered)
        self.target.flush()

    def write(self, text: str) -> int:
        pending: str = getattr(self._pending, "text", "")
        if not pending and not text.lstrip().startswith("{"):
            self.target.write(text)  # not JSON: nothing of the CDK's protocol
            return len(text)
        pending += text
        while "\n" in pending:
            line, pending = pending.split("\n", 1)
            self._emit(line + "\n")
        self._pending.text = pending
        return len(text)

    def _emit(self, line: str) -> None:
        message = _airbyte_message(line) if _active else None
        if message is None:
            self.target.write(line)
            return
        _route(message)


def _airbyte_message(line: str) -> dict[str, Any] | None:
    stripped = line.strip()
    if not stripped.startswith("{"):
        return None
    try:
        message = orjson.loads(stripped)
    except orjson.JSONDecodeError:
        return None
    if isinstance(message, dict) and message.get("type") in _MESSAGE_TYPES:
        return message
    return None


_lock = threading.RLock()
_active: list[ConfigCapture] = []
_router: _RoutingStdout | None = None


def _route(message: dict[str, Any]) -> None:
    """Hand a printed Airbyte message to the call it belongs to; never echo its content."""
    kind = message.get("type")
    control = message.get("control") if kind == "CONTROL" else None
    config = ((control or {}).get("connectorConfig") or {}).get("config")
    if not isinstance(config, dict):
        if kind == "TRACE":
            trace = message.get("trace") or {}
            status = trace.get("stream_status") or {}
            reasons = [r.get("type") for r in status.get("reasons") or [] if isinstance(r, dict)]
            log.debug("airbyte-cdk printed a %s %s message %s", kind, trace.get("type"), reasons or "")
        else:
            log.debug("airbyte-cdk printed a %s message (taken off stdout)", kind)
        return
    thread = threading.get_ident()
    with _lock:
        matching = [c for c in _active if c.reproduces(config)]
        here = [c for c in _active if c.thread == thread]
        owner = next((c for c in matching if c.thread == thread), None)
        if owner is None and matching:
            owner = matching[0]
        if owner is None and len(here) == 1:
            owner = here[0]  # printed by the call's own thread (a config migration)
    if owner is None:
        log.warning("dropped a connector config update that no running connector claims")
        return
    owner.offer(config)


@contextmanager
def contained(capture: ConfigCapture) -> Iterator[ConfigCapture]:
    """Run a CDK call with its stdout prints taken off stdout and its CONTROL configs captured."""
    global _router
    with _lock:
        if _router is None or sys.stdout is not _router:
            _router = _RoutingStdout(sys.stdout)
            sys.stdout = _router
        _active.append(capture)
    try:
        yield capture
    finally:
        with _lock:
            _active.remove(capture)
            router = _router
            if not _active and router is not None:
                router.flush()
                if sys.stdout is router:
                    sys.stdout = router.target
                _router = None
        hub._contain_airbyte_logging()


def snapshot(config: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``config`` for the CDK, which mutates nested dicts in place."""
    return copy.deepcopy(dict(config))
