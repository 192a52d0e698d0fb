"""Onboarding cases: opening them (sealed), what operators do with them, vendor callbacks.

A case is one row in ``onboarding_cases`` (its personal data sealed, bound to the case id)
and one row per configured task in ``onboarding_tasks``, copied from ``[onboarding] tasks``
when the case opens (a later change of hub.toml does not reshape running cases). Tasks are
performed by :mod:`hub.onboarding.runner`; this module holds what both share and what
operators do: ``retry`` (back in the queue with a fresh attempt budget), ``skip`` (an
operator did it by hand), ``cancel`` (undo what was done, newest first, and record what
could not be undone), and :meth:`OnboardingFlow.on_callback` (a vendor says a WAITING task's
object is finished).

Nothing here logs, raises or returns personal data in clear: errors are masked, the person
is shown masked (:func:`mask_case`), vendor ids are shown masked and looked up by keyed
digest.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.errors import ConfigProblem, ConfigurationError, HubError, PluginError
from hub.masking import mask_text, mask_value, pii_kind
from hub.onboarding.actions import (
    ACTION_NAME_RE,
    ActionContext,
    CallbackEvent,
    ExternalRef,
    OnboardingAction,
    Outcome,
    OutcomeKind,
    TaskResult,
    UndoNotSupported,
)
from hub.onboarding.config import OnboardingConfig, RetryPolicy
from hub.onboarding.models import (
    ACTIVE_CASES,
    SATISFIED,
    CaseStatus,
    CaseView,
    TaskStatus,
    TaskView,
)
from hub.plugins import PluginRegistry, collect_registrations
from hub.schema.onboarding import IDEMPOTENCY_NAMESPACE
from hub.store.models import AuditEntry, OnboardingCaseRow, OnboardingTaskRow

if TYPE_CHECKING:
    from hub.config import ConnectorConfig
    from hub.crypto import Keyring
    from hub.project import Project
    from hub.store import Database

log = logging.getLogger("hub.onboarding")

#: Purposes of the keyed digests (blind indexes) onboarding keeps.
SOURCE_PURPOSE = "onboarding-source"
CORRELATION_PURPOSE = "onboarding-correlation"
#: Longest error text kept on a task.
ERROR_CHARS = 1000
#: Case fields shown as they are by ``show`` (no personal data); the rest is masked.
PLAIN_FIELDS = frozenset(
    {
        "offer_remote_id",
        "application_remote_id",
        "candidate_remote_id",
        "job_remote_id",
        "person_id",
        "job_title",
        "department",
        "employment_type",
        "contract_type",
        "contract_term_months",
        "probation_months",
        "legal_entity",
        "work_location",
        "location",
        "start_date",
    }
)
#: Case fields whose masking kind their name does not give away.
FIELD_KINDS = {
    "name": "name",
    "full_name": "name",
    "family_name": "name",
    "given_name": "name",
    "legal_name": "name",
    "gender": "text",
    "nationality": "text",
    "ethnicity": "text",
}


class CaseNotFound(HubError):
    """No case has that id (or prefix); the operator mistyped it."""


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def masked_error(text: str) -> str:
    """An error as stored and shown: masked, printable, bounded."""
    printable = "".join(c if c.isprintable() else " " for c in text[: ERROR_CHARS * 2])
    return mask_text(printable)[:ERROR_CHARS]


def idempotency_key(case_id: str, task: str) -> str:
    """The task's key for every attempt, ever: uuid5 of the case id and the task name."""
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"onboarding:{case_id}:{task}"))


def _mask_name(value: str) -> str:
    text = value.strip()
    return text[:1] + "*" * (len(text) - 1) if text else ""


def mask_case(data: Mapping[str, Any]) -> dict[str, Any]:
    """The case's data as operators see it: ids and job facts plain, personal data masked."""
    shown: dict[str, Any] = {}
    for key, value in data.items():
        if value is None or value == "":
            shown[key] = value
        elif key in PLAIN_FIELDS and isinstance(value, str | int | float | bool):
            shown[key] = mask_text(str(value)) if isinstance(value, str) else value
        else:
            kind = FIELD_KINDS.get(key) or pii_kind(key)
            if kind == "name":
                shown[key] = _mask_name(str(value))
            elif kind is not None and isinstance(value, str | int | float):
                shown[key] = mask_value(kind, value)
            else:
                shown[key] = "***"
    return shown


# -- actions: registration and checks ------------------------------------------------------


def collect_onboarding_actions(registry: PluginRegistry) -> dict[str, OnboardingAction]:
    """Every action the plugins register, by name; two with one name, or a bad name, is an error."""
    found: dict[str, OnboardingAction] = {}
    owner: dict[str, str] = {}
    for plugin, action in collect_registrations(
        registry, "hub_register_onboarding_actions", OnboardingAction
    ):
        if not ACTION_NAME_RE.match(action.name):
            raise PluginError(
                f"plugin {plugin} registers an onboarding action named {action.name!r}; "
                "names are <connector plugin>.<verb> (lower case, digits, _)"
            )
        if action.name in found:
            raise PluginError(
                f"two plugins register an onboarding action named {action.name!r}: "
                f"{owner[action.name]} and {plugin}"
            )
        found[action.name], owner[action.name] = action, plugin
    return dict(sorted(found.items()))


def check_actions(
    config: OnboardingConfig,
    actions: Mapping[str, OnboardingAction],
    connectors: Mapping[str, ConnectorConfig],
) -> list[ConfigProblem]:
    """Each task's action exists and fits its connector (problems name the hub.toml key)."""
    problems: list[ConfigProblem] = []
    for spec in config.tasks:
        where = f"onboarding.tasks[{spec.position}]"
        action = actions.get(spec.action)
        if action is None:
            known = ", ".join(actions) or "none: no plugin registers onboarding actions"
            problems.append(
                ConfigProblem(f"{where}.action", f"unknown action {spec.action!r} (known: {known})")
            )
            continue
        if spec.connector is None:
            if action.requires_connector:
                problems.append(
                    ConfigProblem(
                        f"{where}.connector",
                        f"required: action {spec.action} acts on a {action.plugin} connector",
                    )
                )
            continue
        configured = connectors.get(spec.connector)
        if configured is not None and configured.plugin != action.plugin:
            problems.append(
                ConfigProblem(
                    f"{where}.connector",
                    f"action {spec.action} acts on {action.plugin} connectors; "
                    f"{spec.connector} is a {configured.plugin} connector",
                )
            )
    return problems


def check_onboarding_settings(project: Project) -> dict[str, OnboardingAction]:
    """``[onboarding]`` against the registered actions (``hub config check``); raises on problems."""
    actions = collect_onboarding_actions(project.registry)
    problems = check_actions(project.settings.onboarding, actions, project.settings.connectors)
    if problems:
        raise ConfigurationError(problems, str(project.path))
    return actions


# -- results of operations ----------------------------------------------------------------


class CallbackStatus(StrEnum):
    MATCHED = "matched"
    """A WAITING task took the callback."""
    ALREADY_HANDLED = "already_handled"
    """The task it is about is past waiting (a redelivered callback): nothing to do."""
    TOO_EARLY = "too_early"
    """A task of that connector is mid-attempt and may be the one: deliver it again shortly."""
    NO_MATCH = "no_match"
    """No onboarding task waits for that object."""


@dataclass(frozen=True)
class CallbackResult:
    status: CallbackStatus
    #: ``case_id/task`` of each task the callback moved
    tasks: tuple[str, ...] = ()
    #: masked failures of actions' ``on_callback`` (the event should be delivered again)
    errors: tuple[str, ...] = ()


@dataclass
class CancelReport:
    """What ``cancel`` did: undone, not undoable (by the action), failed to undo, still running."""

    case_id: str
    status: str
    undone: list[str] = field(default_factory=list)
    not_supported: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    still_running: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "status": self.status,
            "undone": self.undone,
            "not_supported": self.not_supported,
            "failed": [{"task": t, "error": e} for t, e in self.failed],
            "still_running": self.still_running,
            "cancelled": self.cancelled,
        }


# -- the flow ------------------------------------------------------------------------------


class OnboardingFlow:
    """Cases and tasks of one hub project, and the operations on them (thread-safe)."""

    def __init__(
        self,
        project: Project,
        *,
        actions: Mapping[str, OnboardingAction] | None = None,
        config: OnboardingConfig | None = None,
    ) -> None:
        self.project = project
        self.config = config or project.settings.onboarding
        if actions is None:
            actions = collect_onboarding_actions(project.registry)
        self.actions = dict(actions)
        problems = check_actions(self.config, self.actions, project.settings.connectors)
        if problems:
            raise ConfigurationError(problems, str(project.path))

    @property
    def db(self) -> Database:
        return self.project.db

    @cached_property
    def keyring(self) -> Keyring:
        return self.project.keyring

    def retry_policy(self, task: str) -> RetryPolicy:
        spec = self.config.task(task)
        return spec.retry if spec is not None else self.config.retry

    # -- sealing -----------------------------------------------------------------------------

    def seal_case(self, case_id: str, data: Mapping[str, Any]) -> bytes:
        raw = orjson.dumps(dict(data), default=str, option=orjson.OPT_NON_STR_KEYS)
        return bytes(self.keyring.seal(raw, "personal", "onboarding_cases", case_id))

    def open_case_data(self, row: OnboardingCaseRow) -> dict[str, Any]:
        """The case's data in clear (personal data: never log it)."""
        data = orjson.loads(self.keyring.open(row.data, "onboarding_cases", row.id))
        return data if isinstance(data, dict) else {}

    def seal_result(self, case_id: str, task: str, ref: ExternalRef | None, data: Mapping[str, Any]) -> bytes:
        raw = orjson.dumps(
            {"ref": ref.as_dict() if ref else None, "data": dict(data)},
            default=str,
            option=orjson.OPT_NON_STR_KEYS,
        )
        return bytes(self.keyring.seal(raw, "personal", "onboarding_tasks", case_id, task))

    def open_result(self, row: OnboardingTaskRow) -> TaskResult:
        if row.result is None:
            return TaskResult()
        opened = orjson.loads(self.keyring.open(row.result, "onboarding_tasks", row.case_id, row.name))
        ref = opened.get("ref")
        return TaskResult(
            ref=ExternalRef(str(ref["id"]), str(ref.get("kind") or "")) if ref else None,
            data=dict(opened.get("data") or {}),
        )

    def correlation_digest(self, connector: str, external_id: str) -> str:
        return self.keyring.blind(f"{connector}\x1f{external_id}", CORRELATION_PURPOSE)

    def source_digest(self, offer_remote_id: str) -> str:
        return self.keyring.blind(f"offer\x1f{offer_remote_id.strip()}", SOURCE_PURPOSE)

    # -- opening cases -----------------------------------------------------------------------

    def open_case(
        self,
        data: Mapping[str, Any],
        *,
        source: str,
        offer_remote_id: str | None = None,
        session: Session | None = None,
        now: datetime | None = None,
    ) -> tuple[str, bool]:
        """Open a case for ``data`` (sealed at once); returns (case id, whether it is new).

        With an offer id (or ``offer_remote_id`` in ``data``) there is one case per offer,
        whichever way it arrives (``start --offer``, a JSON file, intake), even from two
        processes at once. ``session``: insert in the caller's transaction (intake).
        """
        if not self.config.enabled:
            raise ConfigurationError(
                [ConfigProblem("onboarding.tasks", "no tasks configured: onboarding is off")],
                str(self.project.path),
            )
        offer = offer_remote_id or (str(data["offer_remote_id"]) if data.get("offer_remote_id") else None)
        digest = self.source_digest(offer) if offer else None
        now = now or datetime.now(UTC)
        case_id = str(uuid.uuid4())
        row = OnboardingCaseRow(
            id=case_id,
            status=CaseStatus.OPEN,
            source=source,
            source_ref=mask_text(offer)[:200] if offer else "",
            source_digest=digest,
            data=self.seal_case(case_id, data),
            created_at=now,
            updated_at=now,
        )
        tasks = [
            OnboardingTaskRow(
                case_id=case_id,
                name=spec.name,
                action=spec.action,
                connector=spec.connector or "",
                position=spec.position,
                after=list(spec.after),
                options=orjson.loads(orjson.dumps(dict(spec.options), default=str)),
                status=TaskStatus.PENDING,
                attempts=0,
                idempotency_key=idempotency_key(case_id, spec.name),
                created_at=now,
                updated_at=now,
            )
            for spec in self.config.tasks
        ]
        if session is not None:
            existing = self._case_of_digest(session, digest) if digest else None
            if existing is not None:
                return existing, False
            session.add(row)
            session.flush()
            session.add_all(tasks)
            session.add(_opened(case_id, source))
            session.flush()
            return case_id, True
        try:
            with self.db.session() as own:
                existing = self._case_of_digest(own, digest) if digest else None
                if existing is not None:
                    return existing, False
                own.add(row)
                own.flush()
                own.add_all(tasks)
                own.add(_opened(case_id, source))
        except IntegrityError:
            # The same offer opened by another process meanwhile: its case is the case.
            with self.db.session() as again:
                found = self._case_of_digest(again, digest) if digest else None
            if found is None:
                raise
            return found, False
        finally:
            self.keyring.flush_counters()
        log.info("opened onboarding case %s (%s, %d tasks)", case_id, source, len(tasks))
        return case_id, True

    @staticmethod
    def _case_of_digest(session: Session, digest: str | None) -> str | None:
        if digest is None:
            return None
        return session.execute(
            select(OnboardingCaseRow.id).where(OnboardingCaseRow.source_digest == digest)
        ).scalar_one_or_none()

    # -- reading -----------------------------------------------------------------------------

    def resolve_case(self, ref: str) -> str:
        """A case id from its full id or a unique prefix of at least 4 characters."""
        ref = ref.strip().lower()
        with self.db.session() as session:
            if session.get(OnboardingCaseRow, ref) is not None:
                return ref
            if len(ref) >= 4:
                found = list(
                    session.execute(
                        select(OnboardingCaseRow.id).where(OnboardingCaseRow.id.like(f"{ref}%")).limit(2)
                    ).scalars()
                )
                if len(found) == 1:
                    return str(found[0])
                if len(found) > 1:
                    raise CaseNotFound(f"case {ref!r} is ambiguous: give more of its id")
        raise CaseNotFound(f"no onboarding case {mask_text(ref)!r}")

    def case_data(self, case_id: str) -> dict[str, Any]:
        """The case's data in clear (personal data: never log or print it)."""
        with self.db.session() as session:
            row = session.get(OnboardingCaseRow, case_id)
            if row is None:
                raise CaseNotFound(f"no onboarding case {case_id!r}")
            return self.open_case_data(row)

    def list_cases(self, *, status: str | None = None, limit: int = 100) -> list[CaseView]:
        """Newest first, with their tasks; the person is not included (see :meth:`show`)."""
        query = select(OnboardingCaseRow).order_by(OnboardingCaseRow.created_at.desc()).limit(limit)
        if status is not None:
            query = query.where(OnboardingCaseRow.status == status.upper())
        with self.db.session() as session:
            cases = list(session.execute(query).scalars())
            tasks = self._tasks_of(session, [c.id for c in cases])
        return [self._view(c, tasks.get(c.id, [])) for c in cases]

    def show(self, case_id: str) -> CaseView:
        """The case with its tasks and its person, masked."""
        with self.db.session() as session:
            row = session.get(OnboardingCaseRow, case_id)
            if row is None:
                raise CaseNotFound(f"no onboarding case {case_id!r}")
            tasks = self._tasks_of(session, [case_id]).get(case_id, [])
            person = mask_case(self.open_case_data(row))
        return self._view(row, tasks, person)

    @staticmethod
    def _tasks_of(session: Session, case_ids: list[str]) -> dict[str, list[OnboardingTaskRow]]:
        found: dict[str, list[OnboardingTaskRow]] = {}
        for start in range(0, len(case_ids), 500):
            rows = session.execute(
                select(OnboardingTaskRow)
                .where(OnboardingTaskRow.case_id.in_(case_ids[start : start + 500]))
                .order_by(OnboardingTaskRow.position)
            ).scalars()
            for row in rows:
                found.setdefault(row.case_id, []).append(row)
        return found

    @staticmethod
    def _view(
        row: OnboardingCaseRow, tasks: Iterable[OnboardingTaskRow], person: dict[str, Any] | None = None
    ) -> CaseView:
        return CaseView(
            id=row.id,
            status=row.status,
            source=row.source,
            source_ref=row.source_ref,
            created_at=_aware(row.created_at) or datetime.now(UTC),
            updated_at=_aware(row.updated_at) or datetime.now(UTC),
            closed_at=_aware(row.closed_at),
            cancel_reason=row.cancel_reason,
            tasks=tuple(
                TaskView(
                    name=t.name,
                    action=t.action,
                    connector=t.connector,
                    status=t.status,
                    attempts=t.attempts,
                    after=tuple(t.after or ()),
                    next_attempt_at=_aware(t.next_attempt_at),
                    last_error=t.last_error,
                    result_ref=t.result_ref,
                    waiting_for=t.waiting_for,
                    undo_status=t.undo_status,
                    undo_error=t.undo_error,
                    started_at=_aware(t.started_at),
                    completed_at=_aware(t.completed_at),
                )
                for t in tasks
            ),
            person=person or {},
        )

    # -- what the runner and callbacks share ----------------------------------------------------

    def context(
        self,
        task: OnboardingTaskRow,
        case: Mapping[str, Any],
        results: Mapping[str, TaskResult],
        *,
        attempt: int,
        ref: ExternalRef | None = None,
    ) -> ActionContext:
        connector = task.connector
        return ActionContext(
            case_id=task.case_id,
            task=task.name,
            action=task.action,
            connector=connector,
            idempotency_key=task.idempotency_key,
            case=case,
            options=task.options or {},
            results=results,
            attempt=attempt,
            ref=ref,
            config_loader=(lambda: self.project.config_of(connector)) if connector else None,
            project=self.project,
        )

    def load_case(
        self, case_id: str
    ) -> tuple[dict[str, Any], dict[str, TaskResult], dict[str, OnboardingTaskRow]]:
        """The case's data, the results of its tasks that have one, and its tasks by name."""
        with self.db.session() as session:
            row = session.get(OnboardingCaseRow, case_id)
            if row is None:
                raise CaseNotFound(f"no onboarding case {case_id!r}")
            tasks = {t.name: t for t in self._tasks_of(session, [case_id]).get(case_id, [])}
            data = self.open_case_data(row)
        results = {
            name: self.open_result(t)
            for name, t in tasks.items()
            if t.result is not None and t.status in (TaskStatus.DONE, TaskStatus.WAITING)
        }
        return data, results, tasks

    @staticmethod
    def lock_case(session: Session, case_id: str) -> OnboardingCaseRow | None:
        """The case row, locked until the transaction ends (PostgreSQL / MariaDB): status
        changes of one case's tasks are serialised, so the case's status is never stale."""
        return session.execute(
            select(OnboardingCaseRow).where(OnboardingCaseRow.id == case_id).with_for_update()
        ).scalar_one_or_none()

    @staticmethod
    def refresh_case(session: Session, case: OnboardingCaseRow, now: datetime) -> None:
        """Derive the case's status from its tasks (call with the case locked)."""
        if case.status in (CaseStatus.CANCELLING, CaseStatus.CANCELLED):
            return
        statuses = [
            TaskStatus(s)
            for s in session.execute(
                select(OnboardingTaskRow.status).where(OnboardingTaskRow.case_id == case.id)
            ).scalars()
        ]
        if statuses and all(s in SATISFIED for s in statuses):
            new = CaseStatus.COMPLETED
        elif TaskStatus.NEEDS_OPERATOR in statuses:
            new = CaseStatus.NEEDS_OPERATOR
        else:
            new = CaseStatus.OPEN
        if case.status != new:
            case.status, case.updated_at = new, now
            if new == CaseStatus.COMPLETED:
                case.closed_at = now
                log.info("onboarding case %s completed", case.id)

    def record_outcome(
        self,
        task: OnboardingTaskRow,
        outcome: Outcome,
        *,
        now: datetime,
        guard: Any,
        attempts: int,
        recovered: bool = False,
    ) -> str | None:
        """Store an outcome if ``guard`` (a WHERE clause on the task) still holds; the new status.

        One transaction: the case row locked, the task updated conditionally, the case's status
        derived. None when the guard failed (the claim lapsed and another runner took the task,
        or a callback was handled already).
        """
        values: dict[str, Any] = {"updated_at": now, "claim_token": None, "claimed_until": None}
        policy = self.retry_policy(task.name)
        if outcome.kind == OutcomeKind.DONE:
            values.update(
                status=TaskStatus.DONE,
                completed_at=now,
                next_attempt_at=None,
                result=self.seal_result(task.case_id, task.name, outcome.ref, outcome.data),
                result_ref=mask_text(outcome.ref.id)[:200] if outcome.ref else None,
            )
            if recovered:
                values["last_error"] = (
                    "found at the vendor (made by an earlier attempt, or by hand): not created again"
                )
        elif outcome.kind == OutcomeKind.WAITING:
            assert outcome.correlation is not None
            values.update(
                status=TaskStatus.WAITING,
                next_attempt_at=None,
                result=self.seal_result(task.case_id, task.name, outcome.ref, outcome.data),
                result_ref=mask_text(outcome.ref.id)[:200] if outcome.ref else None,
                correlation_digest=self.correlation_digest(task.connector, outcome.correlation),
                waiting_for=(outcome.waiting_for or "")[:100] or None,
            )
        elif outcome.kind == OutcomeKind.SKIPPED:
            values.update(
                status=TaskStatus.SKIPPED,
                completed_at=now,
                next_attempt_at=None,
                last_error=masked_error(f"skipped: {outcome.reason or ''}"),
            )
        elif outcome.kind == OutcomeKind.RETRY and attempts < policy.attempts:
            delay = policy.delay(attempts, outcome.retry_after)
            values.update(
                status=TaskStatus.FAILED,
                next_attempt_at=now + _seconds(delay),
                last_error=masked_error(outcome.reason or "failed"),
            )
        else:
            why = outcome.reason or "failed"
            if outcome.kind == OutcomeKind.RETRY:
                why = f"{why} (attempt {attempts} of {policy.attempts}: out of attempts)"
            values.update(
                status=TaskStatus.NEEDS_OPERATOR, next_attempt_at=None, last_error=masked_error(why)
            )
        with self.db.session() as session:
            case = self.lock_case(session, task.case_id)
            result = session.execute(
                update(OnboardingTaskRow).where(OnboardingTaskRow.id == task.id, guard).values(**values)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return None
            if case is not None:
                self.refresh_case(session, case, now)
        self.keyring.flush_counters()
        return str(values["status"])

    # -- operators -----------------------------------------------------------------------------

    @staticmethod
    def _transition(session: Session, row: OnboardingTaskRow, **values: Any) -> bool:
        """Change a task only if it is as read (status and attempts), like a claim: an operator's
        change never overwrites a runner's claim taken in between. Flushed rows are refreshed."""
        changed = session.execute(
            update(OnboardingTaskRow)
            .where(
                OnboardingTaskRow.id == row.id,
                OnboardingTaskRow.status == row.status,
                OnboardingTaskRow.attempts == row.attempts,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if changed.rowcount != 1:  # type: ignore[attr-defined]
            return False
        session.expire(row)
        return True

    def retry(self, case_id: str, task: str | None = None, *, now: datetime | None = None) -> list[str]:
        """Put the case's failed tasks (or ``task``, also a WAITING one) back in the queue now,
        with a fresh attempt budget. Returns the names of the tasks queued."""
        now = now or datetime.now(UTC)
        retryable = {TaskStatus.NEEDS_OPERATOR, TaskStatus.FAILED}
        if task is not None:
            retryable.add(TaskStatus.WAITING)
        queued: list[str] = []
        with self.db.session() as session:
            case = self.lock_case(session, case_id)
            if case is None:
                raise CaseNotFound(f"no onboarding case {case_id!r}")
            if case.status not in ACTIVE_CASES:
                raise HubError(f"case {case_id} is {case.status}: nothing to retry")
            rows = self._tasks_of(session, [case_id]).get(case_id, [])
            if task is not None:
                rows = [r for r in rows if r.name == task]
                if not rows:
                    raise HubError(f"case {case_id} has no task {task!r}")
                if rows[0].status not in retryable:
                    raise HubError(
                        f"task {task} is {rows[0].status}: only failed or waiting tasks are retried"
                    )
            for row in rows:
                if row.status in retryable and self._transition(
                    session,
                    row,
                    status=TaskStatus.PENDING,
                    attempts=0,
                    next_attempt_at=None,
                    correlation_digest=None,
                    waiting_for=None,
                    updated_at=now,
                ):
                    queued.append(row.name)
            self.refresh_case(session, case, now)
            if queued:
                session.add(
                    AuditEntry(
                        actor=_actor(),
                        action="onboarding.retry",
                        target=f"case {case_id}",
                        details={"tasks": queued},
                    )
                )
        return queued

    def skip(self, case_id: str, task: str, reason: str, *, now: datetime | None = None) -> None:
        """An operator did the task by hand (or it does not apply): later tasks may run."""
        now = now or datetime.now(UTC)
        with self.db.session() as session:
            case = self.lock_case(session, case_id)
            if case is None:
                raise CaseNotFound(f"no onboarding case {case_id!r}")
            if case.status not in ACTIVE_CASES:
                raise HubError(f"case {case_id} is {case.status}: nothing to skip")
            row = session.execute(
                select(OnboardingTaskRow).where(
                    OnboardingTaskRow.case_id == case_id, OnboardingTaskRow.name == task
                )
            ).scalar_one_or_none()
            if row is None:
                raise HubError(f"case {case_id} has no task {task!r}")
            if row.status not in (
                TaskStatus.PENDING,
                TaskStatus.FAILED,
                TaskStatus.NEEDS_OPERATOR,
                TaskStatus.WAITING,
            ):
                raise HubError(f"task {task} is {row.status}: it cannot be skipped")
            if not self._transition(
                session,
                row,
                status=TaskStatus.SKIPPED,
                completed_at=now,
                updated_at=now,
                next_attempt_at=None,
                correlation_digest=None,
                last_error=masked_error(f"skipped by an operator: {reason}"),
            ):
                raise HubError(f"task {task} changed meanwhile (a runner took it): try again")
            self.refresh_case(session, case, now)
            session.add(
                AuditEntry(
                    actor=_actor(),
                    action="onboarding.skip",
                    target=f"case {case_id} task {task}",
                    reason=masked_error(reason),
                )
            )

    def cancel(self, case_id: str, reason: str, *, now: datetime | None = None) -> CancelReport:
        """Stop the case and undo what its tasks did, newest first, where the action can.

        Tasks not started are cancelled; done and waiting tasks are undone (the action's
        ``undo``); a task without undo, or whose undo failed, stays DONE with ``undo_status``
        saying so: the object still exists at the vendor. A task mid-attempt is left to finish;
        the case stays CANCELLING and running ``cancel`` again undoes it (and retries failed
        undos). One cancel of a case at a time.
        """
        from hub.leases import LeaseHolder

        now = now or datetime.now(UTC)
        lease = LeaseHolder(self.db, f"onboarding:cancel:{case_id}", ttl=300)
        if not lease.try_acquire():
            raise HubError(f"case {case_id} is being cancelled by another process")
        try:
            return self._cancel(case_id, reason, now)
        finally:
            lease.release()
            self.keyring.flush_counters()

    def _cancel(self, case_id: str, reason: str, now: datetime) -> CancelReport:
        with self.db.session() as session:
            case = self.lock_case(session, case_id)
            if case is None:
                raise CaseNotFound(f"no onboarding case {case_id!r}")
            if case.status == CaseStatus.CANCELLED:
                return CancelReport(case_id, case.status)
            if case.status == CaseStatus.COMPLETED:
                raise HubError(f"case {case_id} is COMPLETED: offboard the person instead")
            first = case.status != CaseStatus.CANCELLING
            case.status, case.updated_at = CaseStatus.CANCELLING, now
            case.cancel_reason = masked_error(reason)
            report = CancelReport(case_id, case.status)
            for row in self._tasks_of(session, [case_id]).get(case_id, []):
                if row.status not in (TaskStatus.PENDING, TaskStatus.FAILED, TaskStatus.NEEDS_OPERATOR):
                    continue
                # A task a runner claims meanwhile is left to finish (and undone then).
                if self._transition(
                    session, row, status=TaskStatus.CANCELLED, next_attempt_at=None, updated_at=now
                ):
                    report.cancelled.append(row.name)
            if first:
                session.add(
                    AuditEntry(
                        actor=_actor(),
                        action="onboarding.cancel",
                        target=f"case {case_id}",
                        reason=case.cancel_reason,
                    )
                )
        data, results, tasks = self.load_case(case_id)
        live = [t for t in tasks.values() if t.status == TaskStatus.IN_PROGRESS]
        report.still_running = sorted(t.name for t in live if (_aware(t.claimed_until) or now) > now)
        lapsed = [t for t in live if t.name not in report.still_running]
        interrupted: set[str] = set()
        with self.db.session() as session:
            for t in lapsed:  # a runner died mid-attempt: the object may exist at the vendor
                taken = session.execute(
                    update(OnboardingTaskRow)
                    .where(OnboardingTaskRow.id == t.id, OnboardingTaskRow.claim_token == t.claim_token)
                    .values(claim_token=None, claimed_until=None, updated_at=now)
                )
                if taken.rowcount == 1:  # type: ignore[attr-defined]
                    interrupted.add(t.name)
        undoable = [
            t
            for t in tasks.values()
            if (t.status in (TaskStatus.DONE, TaskStatus.WAITING) and t.undo_status != "undone")
            or t.name in interrupted
        ]
        undoable.sort(
            key=lambda t: (
                _aware(t.completed_at) or _aware(t.started_at) or _aware(t.updated_at) or now,
                t.position,
            ),
            reverse=True,
        )
        for t in undoable:
            self._undo(t, data, results, report, now, interrupted=t.name in interrupted)
        with self.db.session() as session:
            case = self.lock_case(session, case_id)
            assert case is not None
            if not report.still_running:
                case.status, case.closed_at = CaseStatus.CANCELLED, now
            case.updated_at = now
            report.status = case.status
        log.info(
            "onboarding case %s: %s (%d undone, %d not undoable, %d undo failures, %d still running)",
            case_id,
            report.status,
            len(report.undone),
            len(report.not_supported),
            len(report.failed),
            len(report.still_running),
        )
        return report

    def _undo(
        self,
        task: OnboardingTaskRow,
        data: Mapping[str, Any],
        results: Mapping[str, TaskResult],
        report: CancelReport,
        now: datetime,
        *,
        interrupted: bool = False,
    ) -> None:
        """Undo one task's object and record how it went on the task.

        ``interrupted``: the task's last attempt was cut short (a runner died), so hub has no
        reference; the action's ``find`` tells whether the object exists.
        """
        action = self.actions.get(task.action)
        ref = results.get(task.name, TaskResult()).ref
        values: dict[str, Any] = {"updated_at": now, "correlation_digest": None}
        ctx = self.context(task, data, results, attempt=task.attempts, ref=ref)
        try:
            if interrupted and action is not None and _implements_find(action):
                ref = action.find(ctx)
                if ref is None:  # the attempt made nothing: nothing to undo
                    values.update(status=TaskStatus.CANCELLED, undo_status=None)
                    report.cancelled.append(task.name)
                    self._update_task(task.id, values)
                    return
                ctx.ref = ref
            if interrupted and ref is None:
                raise UndoNotSupported(
                    f"an attempt of {task.name} was cut short and {task.action} cannot look its object up: "
                    f"check {task.connector or 'the vendor'} by hand"
                )
            if action is None or not action.supports_undo:
                raise UndoNotSupported(f"{task.action} cannot be undone")
            action.undo(ctx)
        except UndoNotSupported as exc:
            values.update(
                undo_status="not_supported", undo_error=masked_error(str(exc)), status=TaskStatus.DONE
            )
            report.not_supported.append(task.name)
        except Exception as exc:  # noqa: BLE001 - recorded for the operator; cancel again retries it
            error = masked_error(f"{type(exc).__name__}: {exc}")
            values.update(undo_status="failed", undo_error=error, status=TaskStatus.DONE)
            report.failed.append((task.name, error))
        else:
            values.update(undo_status="undone", undo_error=None, status=TaskStatus.CANCELLED)
            report.undone.append(task.name)
        self._update_task(task.id, values)

    def _update_task(self, task_id: int, values: Mapping[str, Any]) -> None:
        with self.db.session() as session:
            session.execute(update(OnboardingTaskRow).where(OnboardingTaskRow.id == task_id).values(**values))

    # -- vendor callbacks ------------------------------------------------------------------------

    def on_callback(
        self,
        connector: str,
        event_type: str,
        external_id: str,
        payload: Mapping[str, Any] | None = None,
        *,
        now: datetime | None = None,
    ) -> CallbackResult:
        """A vendor says its object ``external_id`` changed (approval finished, contract signed).

        The WAITING task that made the object (``Outcome.waiting(correlation=external_id)``
        on connector ``connector``) gets the event through its action's ``on_callback``:
        done, failed (to an operator) or still waiting. Safe to call twice with one event: the
        second finds the task past waiting. ``payload`` is personal data: never logged.
        """
        now = now or datetime.now(UTC)
        digest = self.correlation_digest(connector, external_id)
        with self.db.session() as session:
            waiting = list(
                session.execute(
                    select(OnboardingTaskRow).where(
                        OnboardingTaskRow.connector == connector,
                        OnboardingTaskRow.correlation_digest == digest,
                        OnboardingTaskRow.status == TaskStatus.WAITING,
                    )
                ).scalars()
            )
            handled = None
            if not waiting:
                handled = session.execute(
                    select(OnboardingTaskRow.id)
                    .where(
                        OnboardingTaskRow.connector == connector,
                        OnboardingTaskRow.correlation_digest == digest,
                    )
                    .limit(1)
                ).first()
                busy = session.execute(
                    select(func.count())
                    .select_from(OnboardingTaskRow)
                    .where(
                        OnboardingTaskRow.connector == connector,
                        OnboardingTaskRow.status == TaskStatus.IN_PROGRESS,
                        OnboardingTaskRow.claimed_until > now,
                    )
                ).scalar_one()
        if not waiting:
            if handled is not None:
                return CallbackResult(CallbackStatus.ALREADY_HANDLED)
            if busy:
                return CallbackResult(CallbackStatus.TOO_EARLY)
            return CallbackResult(CallbackStatus.NO_MATCH)
        event = CallbackEvent(external_id=external_id, event_type=event_type, payload=dict(payload or {}))
        moved: list[str] = []
        errors: list[str] = []
        took = False
        for task in waiting:
            action = self.actions.get(task.action)
            data, results, _ = self.load_case(task.case_id)
            own = results.get(task.name, TaskResult())
            outcome: Outcome
            if action is None:
                outcome = Outcome.failed(f"action {task.action} is not registered (plugin removed?)")
            else:
                ctx = self.context(task, data, results, attempt=task.attempts, ref=own.ref)
                try:
                    outcome = action.on_callback(ctx, event)
                except Exception as exc:  # noqa: BLE001 - the event is delivered again
                    errors.append(masked_error(f"{task.name}: {type(exc).__name__}: {exc}"))
                    continue
            if outcome.kind == OutcomeKind.WAITING and outcome.correlation == external_id:
                took = True  # an interim event: keep waiting
                continue
            if outcome.kind == OutcomeKind.DONE and outcome.ref is None:
                outcome = Outcome.done(own.ref or ExternalRef(external_id), outcome.data)
            if outcome.kind == OutcomeKind.RETRY:
                outcome = Outcome.failed(outcome.reason or "the vendor reported a failure")
            status = self.record_outcome(
                task,
                outcome,
                now=now,
                guard=(OnboardingTaskRow.status == TaskStatus.WAITING)
                & (OnboardingTaskRow.correlation_digest == digest),
                attempts=task.attempts,
            )
            if status is not None:
                moved.append(f"{task.case_id}/{task.name}")
                log.info(
                    "onboarding case %s task %s: callback %s -> %s",
                    task.case_id,
                    task.name,
                    event_type,
                    status,
                )
        if errors:
            return CallbackResult(
                CallbackStatus.MATCHED if moved else CallbackStatus.TOO_EARLY, tuple(moved), tuple(errors)
            )
        if moved or took:
            return CallbackResult(CallbackStatus.MATCHED, tuple(moved))
        return CallbackResult(CallbackStatus.ALREADY_HANDLED)


def _opened(case_id: str, source: str) -> AuditEntry:
    return AuditEntry(
        actor=_actor(), action="onboarding.open", target=f"case {case_id}", details={"source": source}
    )


def _implements_find(action: OnboardingAction) -> bool:
    return type(action).find is not OnboardingAction.find


def _seconds(value: float) -> Any:
    from datetime import timedelta

    return timedelta(seconds=value)


def _actor() -> str:
    from hub.project import actor

    return actor()
