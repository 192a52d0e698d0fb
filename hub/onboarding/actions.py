"""The action interface: what a connector plugin implements for one onboarding step.

An action is named ``<connector plugin>.<verb>`` (``wecom.create_user``, ``esign.send_contract``)
and registered with the ``hub_register_onboarding_actions`` hook. hub calls it from a runner
that holds the task's claim:

1. :meth:`OnboardingAction.find` first: is the object already at the vendor (made by an
   earlier attempt whose reply hub never committed, or by hand)? Vendors without idempotency
   tokens need this; it returns the object's reference, which :meth:`~OnboardingAction.recovered`
   turns into an outcome (done, by default).
2. Otherwise :meth:`OnboardingAction.perform`, which passes ``ctx.idempotency_key`` as the
   vendor's idempotency token where there is one (Feishu ``client_token``, an e-contract
   vendor's request id), so a repeated call returns the first call's object.
3. A WAITING task completes when the vendor calls back: :meth:`~OnboardingAction.parse_callback`
   reads the vendor's event (which object it is about), :meth:`~OnboardingAction.on_callback`
   decides the outcome.
4. ``hub onboarding cancel`` calls :meth:`~OnboardingAction.undo` on what was done, newest
   first, where the action supports it.

An action keeps no state between calls: one instance serves every case and runner thread.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

from hub.errors import HubError

if TYPE_CHECKING:
    from hub.project import Project

#: ``<connector plugin>.<verb>``: lower-case letters, digits and ``_``.
ACTION_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")


class ActionFailed(HubError):
    """Raised by an action: the attempt failed. ``permanent`` ones go straight to an operator.

    The message is stored (masked) and shown to operators: never put personal data in it.
    """

    def __init__(self, reason: str, *, permanent: bool = False, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.permanent, self.retry_after = reason, permanent, retry_after


class UndoNotSupported(HubError):
    """The action (or this object) cannot be undone; ``cancel`` records it for an operator."""


@dataclass(frozen=True)
class ExternalRef:
    """An object a task made at a vendor: its id there (a user id, a sign flow id) and kind."""

    id: str
    kind: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "kind": self.kind}


@dataclass(frozen=True)
class TaskResult:
    """What a finished task left for the tasks after it: the vendor object and any data."""

    ref: ExternalRef | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # data may hold personal data (a work e-mail, an account)
        return f"TaskResult(ref={self.ref!r}, data=<{len(self.data)} field(s)>)"


class OutcomeKind(StrEnum):
    DONE = "done"
    WAITING = "waiting"
    RETRY = "retry"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Outcome:
    """How an attempt ended. Build it with the class methods."""

    kind: OutcomeKind
    ref: ExternalRef | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    #: WAITING: the vendor id the callback will name (a sign flow id, an approval instance id)
    correlation: str | None = None
    #: WAITING: the event type expected, for operators (``SIGN_FLOW_FINISH``)
    waiting_for: str | None = None
    #: RETRY / FAILED / SKIPPED: why, without personal data (it is masked again when stored)
    reason: str | None = None
    retry_after: float | None = None

    @classmethod
    def done(cls, ref: ExternalRef | None = None, data: Mapping[str, Any] | None = None) -> Outcome:
        """The object exists at the vendor; ``data`` is passed to later tasks (``ctx.results``)."""
        return cls(OutcomeKind.DONE, ref=ref, data=dict(data or {}))

    @classmethod
    def waiting(
        cls,
        correlation: str,
        *,
        event: str | None = None,
        ref: ExternalRef | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> Outcome:
        """Started; the vendor calls back about ``correlation`` when it finishes."""
        if not correlation:
            raise ValueError("a waiting outcome needs the id the vendor's callback will name")
        return cls(
            OutcomeKind.WAITING,
            ref=ref or ExternalRef(correlation),
            data=dict(data or {}),
            correlation=correlation,
            waiting_for=event,
        )

    @classmethod
    def retry(cls, reason: str, *, retry_after: float | None = None) -> Outcome:
        """A transient failure: try again after the backoff (or the vendor's ``retry_after``)."""
        return cls(OutcomeKind.RETRY, reason=reason, retry_after=retry_after)

    @classmethod
    def failed(cls, reason: str) -> Outcome:
        """Retrying cannot help (the vendor refused the data): an operator must look."""
        return cls(OutcomeKind.FAILED, reason=reason)

    @classmethod
    def skipped(cls, reason: str) -> Outcome:
        """Nothing to do for this case (an intern gets no payroll enrolment)."""
        return cls(OutcomeKind.SKIPPED, reason=reason)


@dataclass(frozen=True)
class CallbackEvent:
    """A vendor callback as an action reads it: which object, what happened, the details."""

    external_id: str
    event_type: str
    payload: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"CallbackEvent(event_type={self.event_type!r}, payload=<{len(self.payload)} key(s)>)"


class ActionContext:
    """What an action gets for one attempt. ``case`` is personal data in clear: never log it."""

    def __init__(
        self,
        *,
        case_id: str,
        task: str,
        action: str,
        connector: str,
        idempotency_key: str,
        case: Mapping[str, Any],
        options: Mapping[str, Any],
        results: Mapping[str, TaskResult],
        attempt: int,
        ref: ExternalRef | None = None,
        config_loader: Callable[[], Mapping[str, Any]] | None = None,
        project: Project | None = None,
    ) -> None:
        self.case_id = case_id
        #: the task's name in hub.toml (``create_oa_account``)
        self.task = task
        self.action = action
        #: the configured connector (``[connectors.NAME]``) the task acts on; "" if none
        self.connector = connector
        #: uuid5 of (case id, task name): the same for every attempt of this task, ever
        self.idempotency_key = idempotency_key
        self.case: Mapping[str, Any] = MappingProxyType(dict(case))
        #: the task's ``options`` table from hub.toml
        self.options: Mapping[str, Any] = MappingProxyType(dict(options))
        #: results of the case's finished tasks, by task name (``results["create_hr_record"].ref``)
        self.results: Mapping[str, TaskResult] = MappingProxyType(dict(results))
        #: 1 for the first attempt
        self.attempt = attempt
        #: this task's own object, when it has one (undo, callbacks)
        self.ref = ref
        self.project = project
        self._config_loader = config_loader
        self._config: Mapping[str, Any] | None = None

    @property
    def config(self) -> Mapping[str, Any]:
        """The connector's config with secrets resolved (read on first use; never log it)."""
        if self._config is None:
            loaded = self._config_loader() if self._config_loader is not None else {}
            self._config = MappingProxyType(dict(loaded))
        return self._config

    def __repr__(self) -> str:
        return (
            f"ActionContext(case_id={self.case_id!r}, task={self.task!r}, action={self.action!r}, "
            f"attempt={self.attempt})"
        )


class OnboardingAction(ABC):
    """One kind of onboarding step at one vendor. Subclass it and register an instance.

    Example::

        class CreateUser(OnboardingAction):
            name = "feishu.create_user"

            def perform(self, ctx):
                user = client(ctx.config).create_user(ctx.case, client_token=ctx.idempotency_key)
                return Outcome.done(ExternalRef(user["user_id"], "user"))

        @hub.hookimpl
        def hub_register_onboarding_actions():
            return [CreateUser()]
    """

    #: ``<connector plugin>.<verb>``; the plugin part must be the plugin of the task's connector
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: False for actions that talk to no configured connector (hub-internal steps)
    requires_connector: ClassVar[bool] = True

    @property
    def plugin(self) -> str:
        """The connector plugin the action belongs to (the part before the dot)."""
        return self.name.partition(".")[0]

    @property
    def supports_undo(self) -> bool:
        return type(self).undo is not OnboardingAction.undo

    def find(self, ctx: ActionContext) -> ExternalRef | None:
        """The object an earlier attempt (or a person) already made for this case, if any.

        Called before every :meth:`perform`. Look the object up by something the first attempt
        wrote into it (``ctx.idempotency_key`` or ``ctx.case_id`` in an external-id field, the
        employee number). Vendors that honour an idempotency token may keep the default.
        """
        return None

    def recovered(self, ctx: ActionContext, ref: ExternalRef) -> Outcome:
        """The outcome when :meth:`find` found the object: done, unless the action waits on it."""
        return Outcome.done(ref)

    @abstractmethod
    def perform(self, ctx: ActionContext) -> Outcome:
        """Do the step once. Raise :class:`ActionFailed` or return an :class:`Outcome`."""

    def undo(self, ctx: ActionContext) -> None:
        """Revert what the task did (disable the account, revoke the sign flow); ``ctx.ref`` is it.

        Must be safe to call twice. The default raises :class:`UndoNotSupported`.
        """
        raise UndoNotSupported(f"{self.name} cannot be undone")

    def parse_callback(self, event_type: str, body: bytes) -> CallbackEvent | None:
        """Read a verified callback of this action's vendor: the object it is about, or None.

        ``event_type`` is what the webhook verifier named the event; ``body`` the verified body
        (personal data: never log it). Return None for events the action does not wait for.
        """
        return None

    def on_callback(self, ctx: ActionContext, event: CallbackEvent) -> Outcome:
        """A callback about this WAITING task's object arrived: done by default.

        Return :meth:`Outcome.failed` for a refusal (the candidate declined to sign) and
        :meth:`Outcome.waiting` with the same correlation to keep waiting (an interim event).
        """
        return Outcome.done(ctx.ref or ExternalRef(event.external_id), dict(event.payload))
