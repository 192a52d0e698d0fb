"""Processing the inbox: one background worker turns accepted callbacks into sync runs.

The worker takes the due events, groups them by connector and hands each group to a
dispatcher; the default, :class:`SyncDispatcher`, runs every pipeline whose source is that
connector once, with trigger ``webhook``. Ten events for one connector that arrive together
are one run per pipeline (coalesced), and runs are serial (one worker, and each pipeline's own
lease). A pipeline that is already running (a schedule, a manual ``hub sync``) postpones the
group for ``busy_retry`` seconds without counting an attempt; a failed run counts one, with
exponential backoff, and after ``max_attempts`` the events are ``failed`` until
``hub webhooks retry``. Events are marked ``processed`` only after every run succeeded.

The guarantee, precisely: an event is marked processed at most once, and only after runs that
started after it was stored have committed. A crash after those runs committed but before the
mark leaves the event ``received``; the worker (on restart) runs the pipelines again, and that
incremental run is a no-op because hub's change detection finds every record unchanged. So
the sync's effects happen exactly once, while a run may repeat.

One worker per database: each ``hub serve`` competes for the ``webhooks:processor`` lease and
the others only accept and store, taking over if the leader dies. Nothing here knows HTTP: the
onboarding callbacks (approvals, contracts signed) reuse it with their own dispatcher.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from hub.errors import PipelineBusy
from hub.leases import LeaseHolder
from hub.masking import mask_text
from hub.webhooks.inbox import Inbox, InboxEvent

if TYPE_CHECKING:
    from hub.engine import RunResult
    from hub.project import Project

log = logging.getLogger("hub.webhooks")

PROCESSOR_LEASE = "webhooks:processor"


@dataclass(frozen=True)
class ProcessingPolicy:
    """How the worker paces itself."""

    #: failed runs before the events are ``failed``
    max_attempts: int = 5
    #: seconds before trying again when a pipeline was already running
    busy_retry: float = 5.0
    #: backoff after a failed run: base * 2 ** (attempt - 1), at most cap
    retry_base: float = 30.0
    retry_cap: float = 3600.0
    #: the worker looks at the inbox at least this often (a retry from the CLI, a standby)
    poll: float = 15.0
    #: after a wake-up, wait this long for more events to coalesce into the same run
    settle: float = 0.5
    lease_ttl: float = 30.0

    def retry_delay(self, attempt: int) -> float:
        return float(min(self.retry_cap, self.retry_base * 2 ** max(0, attempt - 1)))


@dataclass
class DispatchResult:
    """What a dispatcher did with one connector's events."""

    run_ids: list[int] = field(default_factory=list)
    #: a pipeline was running: try again later, no attempt counted
    busy: str | None = None
    #: a run failed (or could not start): an attempt counted
    error: str | None = None
    #: said in the inbox for processed events (e.g. that no pipeline reads the connector)
    note: str | None = None


class Dispatcher(Protocol):
    def __call__(self, connector: str, events: Sequence[InboxEvent]) -> DispatchResult: ...


class SyncDispatcher:
    """Runs each pipeline reading the connector once, trigger ``webhook``, one after another.

    The runs are the pipelines' own: incremental streams read from their saved cursor, so a
    run reads what changed since the last one (the event's record among them); full-refresh
    streams read everything, and unchanged records are skipped as in any run.
    """

    def __init__(self, project: Project, run_sync: Callable[[Project, str], RunResult] | None = None) -> None:
        self.project = project
        self._run_sync = run_sync or _run_webhook_sync

    def pipelines_of(self, connector: str) -> list[str]:
        return sorted(p.name for p in self.project.settings.pipelines.values() if p.source == connector)

    def __call__(self, connector: str, events: Sequence[InboxEvent]) -> DispatchResult:
        result = DispatchResult()
        pipelines = self.pipelines_of(connector)
        if not pipelines:
            result.note = f"no pipeline reads connector {connector}"
            return result
        for pipeline in pipelines:
            try:
                run = self._run_sync(self.project, pipeline)
            except PipelineBusy as exc:
                result.busy = str(exc)
                return result
            except Exception as exc:  # noqa: BLE001 - any failure is the events' attempt
                result.error = mask_text(f"{pipeline}: {type(exc).__name__}: {exc}")
                return result
            result.run_ids.append(run.run_id)
            log.info(
                "webhook run %s of %s (%d event(s) of %s): %s %s",
                run.run_id,
                pipeline,
                len(events),
                connector,
                run.status,
                run.counts.as_dict(),
            )
            if run.status == "failed":
                result.error = mask_text(f"run {run.run_id} of {pipeline} failed: {run.error}")
                return result
        return result


def _run_webhook_sync(project: Project, pipeline: str) -> RunResult:
    from hub.engine import Sync

    return Sync(project, pipeline, trigger="webhook").run()


class InboxProcessor:
    """The single background worker over the inbox (see the module docstring for guarantees)."""

    def __init__(
        self,
        project: Project,
        inbox: Inbox,
        *,
        policy: ProcessingPolicy | None = None,
        dispatcher: Dispatcher | None = None,
    ) -> None:
        self.project = project
        self.inbox = inbox
        self.policy = policy or ProcessingPolicy()
        self.dispatcher: Dispatcher = dispatcher or SyncDispatcher(project)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: "stopped", "standby" (another process leads) or "leading"
        self.state = "stopped"

    # -- one pass ----------------------------------------------------------------------------

    def run_once(self, now: datetime | None = None) -> int:
        """Dispatch every due event, one group per connector; return how many were processed."""
        now = now or datetime.now(UTC)
        groups: dict[str, list[InboxEvent]] = {}
        for event in self.inbox.due(now):
            groups.setdefault(event.connector, []).append(event)
        processed = 0
        for connector, events in groups.items():
            if self._stop.is_set():
                break
            ids = [e.id for e in events]
            outcome = self.dispatcher(connector, events)
            if outcome.busy is not None:
                until = datetime.now(UTC) + timedelta(seconds=self.policy.busy_retry)
                self.inbox.postpone(ids, until, f"pipeline busy, retrying: {outcome.busy}")
                log.info("%d event(s) of %s wait: %s", len(ids), connector, outcome.busy)
            elif outcome.error is not None:
                self.inbox.record_failure(
                    ids,
                    outcome.error,
                    outcome.run_ids,
                    max_attempts=self.policy.max_attempts,
                    delay=self.policy.retry_delay,
                )
                log.warning("%d event(s) of %s not processed: %s", len(ids), connector, outcome.error)
            else:
                processed += self.inbox.mark_processed(ids, outcome.run_ids, outcome.note)
                if outcome.note:
                    log.info("%d event(s) of %s processed: %s", len(ids), connector, outcome.note)
        if groups:
            self._flush_key_counters()
        return processed

    def _flush_key_counters(self) -> None:
        try:
            self.project.keyring.flush_counters()
        except Exception:  # a count is not worth stopping the worker
            log.warning("could not save the encryption counts of the data keys", exc_info=True)

    # -- the worker thread -------------------------------------------------------------------

    def wake(self) -> None:
        """An event was stored: look now (called by the receiver after its commit)."""
        self._wake.set()

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._wake.set()  # resume whatever a previous process left unprocessed
        self._thread = threading.Thread(target=self._loop, name="webhook-processor", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the current run (a run cut short by exit resumes from its checkpoint)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            if self._thread.is_alive():
                log.warning("the webhook worker is still in a sync run; leaving it to the process exit")
        self._thread = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        lease: LeaseHolder | None = None
        try:
            while not self._stop.is_set():
                if lease is not None and lease.lost.is_set():
                    log.warning("lost the webhook worker lease; standing by")
                    lease.release()
                    lease, self.state = None, "standby"
                if lease is None:
                    lease = self._try_lead()
                if lease is None:
                    self._wake.clear()  # the leader finds what this process stores on its next poll
                else:
                    woken = self._wake.is_set()
                    # not woken: a postponed event come due, a retry from the CLI, a standby's store
                    if woken or self._due_now():
                        self._wake.clear()
                        if woken and self.policy.settle > 0:
                            self._stop.wait(self.policy.settle)  # let a burst coalesce into one run
                        try:
                            self.run_once()
                        except Exception as exc:  # noqa: BLE001 - the worker outlives a bad pass
                            log.error(
                                "webhook worker pass failed: %s", mask_text(f"{type(exc).__name__}: {exc}")
                            )
                self._wake.wait(self._sleep_seconds(lease is not None))
        finally:
            if lease is not None:
                lease.release()
            self.state = "stopped"

    def _try_lead(self) -> LeaseHolder | None:
        """The worker lease, if free; otherwise stand by (another process works the inbox)."""
        candidate = LeaseHolder(self.project.db, PROCESSOR_LEASE, ttl=self.policy.lease_ttl)
        try:
            if candidate.try_acquire():
                candidate.start_renewing()
                self.state = "leading"
                log.info("this process works the webhook inbox (%s)", candidate.owner)
                return candidate
            if self.state != "standby":
                self.state = "standby"
                log.info(
                    "another process works the webhook inbox (%s); standing by", candidate.current_owner()
                )
        except Exception as exc:  # noqa: BLE001 - the database may be briefly away; try again later
            log.warning("could not take the webhook worker lease: %s", type(exc).__name__)
        return None

    def _sleep_seconds(self, leading: bool) -> float:
        if not leading:
            return self.policy.poll
        try:
            nxt = self.inbox.next_attempt_at()
        except Exception:  # noqa: BLE001 - the database may be briefly away; poll again
            return self.policy.poll
        if nxt is None:
            return self.policy.poll
        return max(0.05, min(self.policy.poll, (nxt - datetime.now(UTC)).total_seconds()))

    def _due_now(self) -> bool:
        try:
            return bool(self.inbox.due(limit=1))
        except Exception:  # noqa: BLE001
            return False
