"""Onboarding: one case per accepted offer, its tasks pushed to every system exactly once.

A case's personal data is sealed in hub's database; each task is an outbox entry that a
runner claims with a lease, performs through a connector plugin's action (with an idempotency
key, and a look-up before creating), and records. See docs/onboarding.md.

- :mod:`hub.onboarding.actions`: the interface plugins implement (``hub_register_onboarding_actions``)
- :mod:`hub.onboarding.config`: the ``[onboarding]`` table
- :mod:`hub.onboarding.flow`: cases, operator commands, callbacks
- :mod:`hub.onboarding.runner`: claiming and performing due tasks
- :mod:`hub.onboarding.intake`: cases from accepted offers (change events, the canonical store)
- :mod:`hub.onboarding.webhooks`: vendor callbacks from the webhook inbox
"""

from hub.onboarding.actions import (
    ActionContext,
    ActionFailed,
    CallbackEvent,
    ExternalRef,
    OnboardingAction,
    Outcome,
    TaskResult,
    UndoNotSupported,
)

__all__ = [
    "ActionContext",
    "ActionFailed",
    "CallbackEvent",
    "ExternalRef",
    "OnboardingAction",
    "Outcome",
    "TaskResult",
    "UndoNotSupported",
]
