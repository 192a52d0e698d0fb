"""Statuses of onboarding cases and tasks, and what the operator commands show of them.

The tables themselves are in :mod:`hub.store.models` (``OnboardingCaseRow``,
``OnboardingTaskRow``) with the rest of the state store, so migrations see them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class CaseStatus(StrEnum):
    """Where a case stands (derived from its tasks, except the cancel states)."""

    OPEN = "OPEN"
    NEEDS_OPERATOR = "NEEDS_OPERATOR"
    """A task is out of attempts or failed permanently: ``hub onboarding retry`` or ``skip``."""
    COMPLETED = "COMPLETED"
    CANCELLING = "CANCELLING"
    """``cancel`` found a task mid-attempt; running ``cancel`` again finishes the job."""
    CANCELLED = "CANCELLED"


class TaskStatus(StrEnum):
    """Where a task (an outbox entry) stands."""

    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    """Claimed by a runner until ``claimed_until``; a lapsed claim is taken over."""
    WAITING = "WAITING"
    """Performed; the vendor calls back when it is done (approval finished, contract signed)."""
    DONE = "DONE"
    FAILED = "FAILED"
    """Failed an attempt; tried again at ``next_attempt_at``."""
    NEEDS_OPERATOR = "NEEDS_OPERATOR"
    CANCELLED = "CANCELLED"
    SKIPPED = "SKIPPED"


#: A task in one of these counts as finished for the tasks that run after it.
SATISFIED = frozenset({TaskStatus.DONE, TaskStatus.SKIPPED})
#: A runner may claim a task in one of these (when due).
CLAIMABLE = frozenset({TaskStatus.PENDING, TaskStatus.FAILED})
#: Cases a runner works on: a task waiting for an operator holds up only the tasks after it.
ACTIVE_CASES = frozenset({CaseStatus.OPEN, CaseStatus.NEEDS_OPERATOR})


@dataclass(frozen=True)
class TaskView:
    """A task as ``hub onboarding show`` prints it: nothing here is personal data."""

    name: str
    action: str
    connector: str
    status: str
    attempts: int
    after: tuple[str, ...]
    next_attempt_at: datetime | None
    last_error: str | None
    result_ref: str | None
    waiting_for: str | None
    undo_status: str | None
    undo_error: str | None
    started_at: datetime | None
    completed_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "action": self.action,
            "connector": self.connector,
            "status": self.status,
            "attempts": self.attempts,
            "after": list(self.after),
            "next_attempt_at": self.next_attempt_at.isoformat() if self.next_attempt_at else None,
            "last_error": self.last_error,
            "result_ref": self.result_ref,
            "waiting_for": self.waiting_for,
            "undo_status": self.undo_status,
            "undo_error": self.undo_error,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "completed_at": self.completed_at.isoformat() if self.completed_at else None,
        }


@dataclass(frozen=True)
class CaseView:
    """A case as the operator commands show it; ``person`` is already masked."""

    id: str
    status: str
    source: str
    source_ref: str
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    cancel_reason: str | None
    tasks: tuple[TaskView, ...] = ()
    person: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "source": self.source,
            "source_ref": self.source_ref,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
            "cancel_reason": self.cancel_reason,
            "person": self.person,
            "tasks": [t.as_dict() for t in self.tasks],
        }
