"""Vendor callbacks for onboarding, from the webhook inbox (``hub serve``).

The inbox's worker (:class:`hub.webhooks.processor.InboxProcessor`) hands each connector's
events to one dispatcher. :class:`OnboardingDispatcher` reads every event first: the actions
of the connector's plugin parse it (:meth:`~hub.onboarding.actions.OnboardingAction.parse_callback`),
and an event about an object a WAITING task made goes to :meth:`OnboardingFlow.on_callback`.
Then it passes the events on to the next dispatcher (by default the sync runs of
:class:`~hub.webhooks.processor.SyncDispatcher`), so a callback still triggers its pipelines.

Exactly once: the inbox marks events processed only after the dispatcher returns; a crash
before that delivers them again, and ``on_callback`` finds the task past waiting (a no-op).
A callback that arrives while a task of its connector is mid-attempt (the vendor answered
faster than hub recorded the WAITING state) postpones the group a few seconds without
counting an attempt, so it is not lost.

Wiring: ``WebhookService(project, dispatcher=onboarding_dispatcher(project))``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from hub.masking import mask_text
from hub.onboarding.actions import CallbackEvent, OnboardingAction
from hub.onboarding.flow import CallbackStatus, OnboardingFlow
from hub.webhooks.inbox import Inbox, InboxEvent
from hub.webhooks.processor import Dispatcher, DispatchResult, SyncDispatcher

if TYPE_CHECKING:
    from hub.project import Project

log = logging.getLogger("hub.onboarding")


class OnboardingDispatcher:
    """Routes callbacks to waiting onboarding tasks, then to ``then`` (the sync runs)."""

    def __init__(self, flow: OnboardingFlow, inbox: Inbox, then: Dispatcher | None = None) -> None:
        self.flow = flow
        self.inbox = inbox
        self.then = then

    def parsers(self, connector: str) -> list[OnboardingAction]:
        """The actions of the configured connector's plugin (they know its callbacks)."""
        configured = self.flow.project.settings.connectors.get(connector)
        if configured is None:
            return []
        return [a for a in self.flow.actions.values() if a.plugin == configured.plugin]

    def parse(self, connector: str, event: InboxEvent) -> CallbackEvent | None:
        parsers = self.parsers(connector)
        if not parsers:
            return None
        body = self.inbox.open(event)
        for action in parsers:
            found = action.parse_callback(event.action, body)
            if found is not None:
                return found
        return None

    def __call__(self, connector: str, events: Sequence[InboxEvent]) -> DispatchResult:
        matched = 0
        for event in events:
            try:
                callback = self.parse(connector, event)
            except Exception as exc:  # noqa: BLE001 - a bad event counts an attempt, the rest waits
                return DispatchResult(
                    error=mask_text(f"onboarding: event {event.id}: {type(exc).__name__}: {exc}")
                )
            if callback is None:
                continue
            result = self.flow.on_callback(
                connector, callback.event_type, callback.external_id, callback.payload
            )
            if result.errors:
                return DispatchResult(error="onboarding: " + "; ".join(result.errors))
            if result.status == CallbackStatus.TOO_EARLY:
                return DispatchResult(busy=f"an onboarding task of {connector} is being performed")
            matched += result.status == CallbackStatus.MATCHED
        outcome = self.then(connector, events) if self.then is not None else DispatchResult()
        if matched:
            note = f"{matched} onboarding callback(s)"
            outcome.note = f"{outcome.note}; {note}" if outcome.note else note
        return outcome


def onboarding_dispatcher(project: Project, inbox: Inbox | None = None) -> Dispatcher:
    """The dispatcher ``hub serve`` should use: onboarding first when ``[onboarding]`` has tasks."""
    sync = SyncDispatcher(project)
    if not project.settings.onboarding.enabled:
        return sync
    flow = OnboardingFlow(project)
    return OnboardingDispatcher(flow, inbox or Inbox(project.db, project.keyring), then=sync)
