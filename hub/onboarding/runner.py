"""The runner: claims due onboarding tasks with a lease, performs them once, records the outcome.

A task is due when it is PENDING or FAILED with its ``next_attempt_at`` passed (or IN_PROGRESS
with its claim lapsed: its runner died), its case is open, and every task it runs ``after`` is
DONE or SKIPPED. Each step is its own transaction:

1. **claim**: ``UPDATE onboarding_tasks SET status = IN_PROGRESS, claim_token = T,
   claimed_until = now + claim_ttl, attempts = attempts + 1 WHERE id = :id AND status = :seen
   AND claim_token IS :seen_token AND attempts = :seen_attempts``. Of two runners that saw the
   same row, exactly one updates it (the database serialises the two UPDATEs and the second
   one's WHERE no longer holds), so a task is never performed by two runners at once.
2. **perform**, holding no transaction: the action's ``find`` (is the object already there?),
   else ``perform`` with the task's idempotency key.
3. **record**: ``UPDATE ... WHERE id = :id AND claim_token = T`` with the outcome, the case row
   locked so the case's status follows its tasks. A runner whose claim lapsed and was taken
   over records nothing (the new holder's ``find`` or the idempotency key sees the object).

A crash between the vendor's reply and step 3 leaves the task IN_PROGRESS until its claim
lapses; the next attempt's ``find`` (or the vendor's idempotency token) returns the object the
crashed attempt made, so it is never created twice. Failures are retried with exponential
backoff (``[onboarding] retry``) and, out of attempts or refused for good, wait for an
operator (NEEDS_OPERATOR).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import requests
from sqlalchemy import and_, or_, select, update

from hub.errors import ConfigurationError
from hub.leases import HOST
from hub.masking import mask_text
from hub.onboarding.actions import ActionFailed, Outcome, OutcomeKind
from hub.onboarding.flow import OnboardingFlow, masked_error
from hub.onboarding.models import ACTIVE_CASES, CLAIMABLE, SATISFIED, CaseStatus, TaskStatus
from hub.retry import is_transient, retry_after_of
from hub.store.models import OnboardingCaseRow, OnboardingTaskRow

if TYPE_CHECKING:
    from hub.project import Project

log = logging.getLogger("hub.onboarding")

#: Tasks looked at per query; a pass queries again until nothing is due.
BATCH = 100


@dataclass
class RunReport:
    """What one pass did, by outcome (and which tasks), for the CLI and the scheduler's log."""

    claimed: int = 0
    done: int = 0
    recovered: int = 0
    waiting: int = 0
    retrying: int = 0
    needs_operator: int = 0
    skipped: int = 0
    lost: int = 0
    cancellations: int = 0
    tasks: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "claimed": self.claimed,
            "done": self.done,
            "recovered": self.recovered,
            "waiting": self.waiting,
            "retrying": self.retrying,
            "needs_operator": self.needs_operator,
            "skipped": self.skipped,
            "lost": self.lost,
            "cancellations": self.cancellations,
            "tasks": self.tasks,
        }


def outcome_of(exc: Exception) -> Outcome:
    """An exception an action raised, as an outcome: transient ones are retried, refusals not."""
    if isinstance(exc, ActionFailed):
        if exc.permanent:
            return Outcome.failed(exc.reason)
        return Outcome.retry(exc.reason, retry_after=exc.retry_after)
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, ConfigurationError):
        return Outcome.failed(text)  # a missing secret: an operator fixes hub.toml, then retries
    if is_transient(exc):
        return Outcome.retry(text, retry_after=retry_after_of(exc))
    if (
        isinstance(exc, requests.HTTPError)
        and exc.response is not None
        and 400 <= exc.response.status_code < 500
    ):
        return Outcome.failed(text)  # the vendor refused the request: retrying sends the same
    return Outcome.retry(text)  # unknown: counted against the attempts, then an operator


class OnboardingRunner:
    """Performs due tasks; any number of runners (threads, processes, hosts) may run at once."""

    def __init__(self, flow: OnboardingFlow, *, owner: str | None = None) -> None:
        self.flow = flow
        self.owner = owner or f"{HOST}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        #: called at the start of each pass (``hub onboarding run --intake``: open new cases)
        self.before_pass: Callable[[], object] | None = None

    @property
    def claim_ttl(self) -> timedelta:
        return timedelta(seconds=self.flow.config.claim_ttl)

    def stop(self) -> None:
        self._stop.set()

    # -- one pass ----------------------------------------------------------------------------------

    def run_once(self, now: datetime | None = None) -> RunReport:
        """Perform every task that is due, and those that become due meanwhile, once each.

        ``now`` fixes the clock for the pass (tests); by default each step reads the time.
        """
        report = RunReport()
        if self.before_pass is not None:
            from hub.onboarding.intake import IntakeBusy

            try:
                self.before_pass()
            except IntakeBusy:
                log.debug("onboarding intake: another runner has it this pass")
            except Exception as exc:  # noqa: BLE001 - the due tasks still run
                log.error("onboarding intake failed: %s", mask_text(f"{type(exc).__name__}: {exc}"))
        self._finish_cancellations(now, report)
        seen: set[int] = set()
        while not self._stop.is_set():
            moment = now or datetime.now(UTC)
            due = [t for t in self.due(moment) if t.id not in seen]
            if not due:
                break
            for task in due:
                if self._stop.is_set():
                    break
                seen.add(task.id)
                claimed = self.claim(task, now or datetime.now(UTC))
                if claimed is None:
                    continue
                report.claimed += 1
                self._perform(claimed, now, report)
        return report

    def due(self, now: datetime, limit: int = BATCH) -> list[OnboardingTaskRow]:
        """Tasks a runner may claim now, dependencies respected, oldest first."""
        claimable = [str(s) for s in CLAIMABLE]
        with self.flow.db.session() as session:
            candidates = list(
                session.execute(
                    select(OnboardingTaskRow)
                    .join(OnboardingCaseRow, OnboardingCaseRow.id == OnboardingTaskRow.case_id)
                    .where(
                        OnboardingCaseRow.status.in_([str(s) for s in ACTIVE_CASES]),
                        or_(
                            and_(
                                OnboardingTaskRow.status.in_(claimable),
                                or_(
                                    OnboardingTaskRow.next_attempt_at.is_(None),
                                    OnboardingTaskRow.next_attempt_at <= now,
                                ),
                            ),
                            and_(
                                OnboardingTaskRow.status == TaskStatus.IN_PROGRESS,
                                OnboardingTaskRow.claimed_until < now,
                            ),
                        ),
                    )
                    .order_by(OnboardingTaskRow.id)
                    .limit(limit)
                ).scalars()
            )
            cases = sorted({t.case_id for t in candidates})
            statuses: dict[tuple[str, str], str] = {}
            for start in range(0, len(cases), 500):
                for case_id, name, status in session.execute(
                    select(OnboardingTaskRow.case_id, OnboardingTaskRow.name, OnboardingTaskRow.status).where(
                        OnboardingTaskRow.case_id.in_(cases[start : start + 500])
                    )
                ):
                    statuses[(case_id, name)] = status
        return [
            t
            for t in candidates
            if all(statuses.get((t.case_id, dep)) in SATISFIED for dep in (t.after or ()))
        ]

    def claim(self, task: OnboardingTaskRow, now: datetime) -> OnboardingTaskRow | None:
        """Take the task for one attempt (see the module docstring); None if another runner did."""
        token = f"{self.owner}:{uuid.uuid4().hex}"[:64]
        guard = [
            OnboardingTaskRow.id == task.id,
            OnboardingTaskRow.status == task.status,
            OnboardingTaskRow.attempts == task.attempts,
            OnboardingTaskRow.claim_token.is_(None)
            if task.claim_token is None
            else OnboardingTaskRow.claim_token == task.claim_token,
        ]
        policy = self.flow.retry_policy(task.name)
        if task.status == TaskStatus.IN_PROGRESS and task.attempts >= policy.attempts:
            # The last attempt never reported back (its runner died): an operator decides.
            with self.flow.db.session() as session:
                case = self.flow.lock_case(session, task.case_id)
                done = session.execute(
                    update(OnboardingTaskRow)
                    .where(*guard)
                    .values(
                        status=TaskStatus.NEEDS_OPERATOR,
                        claim_token=None,
                        claimed_until=None,
                        updated_at=now,
                        last_error=f"attempt {task.attempts} of {policy.attempts} did not finish "
                        "(runner stopped?); retry looks the object up before creating it",
                    )
                )
                if done.rowcount == 1 and case is not None:  # type: ignore[attr-defined]
                    self.flow.refresh_case(session, case, now)
            return None
        with self.flow.db.session() as session:
            result = session.execute(
                update(OnboardingTaskRow)
                .where(*guard)
                .values(
                    status=TaskStatus.IN_PROGRESS,
                    claim_token=token,
                    claimed_until=now + self.claim_ttl,
                    attempts=task.attempts + 1,
                    started_at=now,
                    updated_at=now,
                )
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return None
            claimed = session.get(OnboardingTaskRow, task.id)
            assert claimed is not None
            session.expunge(claimed)
        if task.status == TaskStatus.IN_PROGRESS:
            log.warning(
                "onboarding case %s task %s: took over attempt %d after its claim lapsed",
                task.case_id,
                task.name,
                task.attempts,
            )
        return claimed

    def _perform(self, task: OnboardingTaskRow, now: datetime | None, report: RunReport) -> None:
        """Run one claimed attempt and record it. Only exceptions (never BaseException) are caught:
        a process that is being killed leaves the claim to lapse, which is the crash path."""
        recovered = False
        action = self.flow.actions.get(task.action)
        try:
            if action is None:
                outcome = Outcome.failed(f"action {task.action} is not registered (plugin removed?)")
            else:
                data, results, _ = self.flow.load_case(task.case_id)
                ctx = self.flow.context(task, data, results, attempt=task.attempts)
                found = action.find(ctx)
                if found is not None:
                    recovered = True
                    outcome = action.recovered(ctx, found)
                else:
                    outcome = action.perform(ctx)
                if not isinstance(outcome, Outcome):
                    raise TypeError(
                        f"{task.action}.perform returned {type(outcome).__name__}, not an Outcome"
                    )
        except Exception as exc:  # noqa: BLE001 - an action's failure is the attempt's outcome
            outcome = outcome_of(exc)
        moment = now or datetime.now(UTC)
        status = self.flow.record_outcome(
            task,
            outcome,
            now=moment,
            guard=OnboardingTaskRow.claim_token == task.claim_token,
            attempts=task.attempts,
            recovered=recovered,
        )
        entry = {"case": task.case_id, "task": task.name, "attempt": str(task.attempts)}
        if status is None:
            report.lost += 1
            entry["status"] = "lost"
            log.warning(
                "onboarding case %s task %s: claim lapsed before the outcome was recorded; "
                "the runner that took over looks the object up",
                task.case_id,
                task.name,
            )
        else:
            entry["status"] = status
            self._count(report, status, outcome, recovered)
            line = "onboarding case %s task %s attempt %d: %s"
            args: tuple[Any, ...] = (task.case_id, task.name, task.attempts, status)
            if outcome.reason and outcome.kind != OutcomeKind.DONE:
                line += " (%s)"
                args = (*args, masked_error(outcome.reason))
            log.log(logging.WARNING if status == TaskStatus.NEEDS_OPERATOR else logging.INFO, line, *args)
        report.tasks.append(entry)

    @staticmethod
    def _count(report: RunReport, status: str, outcome: Outcome, recovered: bool) -> None:
        if status == TaskStatus.DONE:
            report.done += 1
            report.recovered += int(recovered)
        elif status == TaskStatus.WAITING:
            report.waiting += 1
            report.recovered += int(recovered)
        elif status == TaskStatus.FAILED:
            report.retrying += 1
        elif status == TaskStatus.NEEDS_OPERATOR:
            report.needs_operator += 1
        elif status == TaskStatus.SKIPPED:
            report.skipped += 1

    def _finish_cancellations(self, now: datetime | None, report: RunReport) -> None:
        """Cases left CANCELLING (a task was mid-attempt when cancelled): undo what is left."""
        with self.flow.db.session() as session:
            pending = list(
                session.execute(
                    select(OnboardingCaseRow.id, OnboardingCaseRow.cancel_reason).where(
                        OnboardingCaseRow.status == CaseStatus.CANCELLING
                    )
                )
            )
        for case_id, reason in pending:
            moment = now or datetime.now(UTC)
            with self.flow.db.session() as session:
                running = session.execute(
                    select(OnboardingTaskRow.id).where(
                        OnboardingTaskRow.case_id == case_id,
                        OnboardingTaskRow.status == TaskStatus.IN_PROGRESS,
                        OnboardingTaskRow.claimed_until > moment,
                    )
                ).first()
            if running is not None:
                continue
            try:
                self.flow.cancel(case_id, reason or "cancelled", now=moment)
                report.cancellations += 1
            except Exception as exc:  # noqa: BLE001 - another process may be cancelling it
                log.warning("onboarding case %s: cancellation not finished: %s", case_id, mask_text(str(exc)))

    # -- continuously ------------------------------------------------------------------------------

    def run_forever(self, *, poll: float = 5.0, duration: float | None = None) -> None:
        """Passes every ``poll`` seconds until :meth:`stop` (or ``duration`` seconds)."""
        import time

        deadline = None if duration is None else time.monotonic() + duration
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # noqa: BLE001 - the runner outlives a bad pass (database away)
                log.error("onboarding pass failed: %s", mask_text(f"{type(exc).__name__}: {exc}"))
            if deadline is not None and time.monotonic() >= deadline:
                break
            wait = poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic()))
            self._stop.wait(wait)


def run_scheduled(project: Project) -> Mapping[str, Any]:
    """The scheduler's ``onboarding:run`` job: intake of accepted offers, then due tasks."""
    from hub.onboarding.intake import intake

    flow = OnboardingFlow(project)
    opened = intake(flow) if flow.config.store else None
    report = OnboardingRunner(flow).run_once()
    summary = {"opened": opened.opened if opened else 0, **report.as_dict()}
    summary.pop("tasks")
    log.info("onboarding run: %s", summary)
    return summary
