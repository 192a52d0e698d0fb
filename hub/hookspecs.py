"""The hooks a hub plugin can implement.

Every hook is named ``hub_*``. Registration hooks return lists of frozen records
(:class:`hub.connectors.Connector`, :class:`hub.transforms.Transform`); the core
flattens them and refuses duplicate names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from hub.changes import Change
    from hub.connectors import Connector
    from hub.crypto import KeyProvider
    from hub.onboarding.actions import OnboardingAction
    from hub.transforms import Transform
    from hub.webhooks.verifier import WebhookHandler

hookspec = pluggy.HookspecMarker("hub")
hookimpl = pluggy.HookimplMarker("hub")


@hookspec
def hub_register_connectors() -> list[Connector]:
    """Register connectors.

    Return a list of :class:`hub.Connector` records, each naming a category
    (ats, assessment, hris, oa, finance, econtract, generic) and the Airbyte
    source and/or destination class that implements it.

    Example::

        @hub.hookimpl
        def hub_register_connectors():
            return [hub.Connector(name="workday", category="hris", source=WorkdaySource)]
    """


@hookspec
def hub_register_transforms() -> list[Transform]:
    """Register value transforms that mapping files can name.

    Return a list of :class:`hub.Transform` records.
    """


@hookspec
def hub_register_webhooks() -> list[WebhookHandler]:
    """Register webhook verifiers: how a connector's vendor callbacks are authenticated.

    Return a list of :class:`hub.webhooks.WebhookHandler` records, each naming the connector
    (as registered by ``hub_register_connectors``) and its :class:`hub.webhooks.WebhookVerifier`.
    ``hub serve`` then accepts ``POST /webhooks/<configured connector>`` for connectors with a
    ``[connectors.NAME.webhook]`` table.

    Example::

        @hub.hookimpl
        def hub_register_webhooks():
            return [WebhookHandler(connector="greenhouse", verifier=GreenhouseVerifier)]
    """


@hookspec
def hub_register_onboarding_actions() -> list[OnboardingAction]:
    """Register onboarding actions: one step of a hire's onboarding at one vendor.

    Return a list of :class:`hub.onboarding.OnboardingAction` instances, each named
    ``<connector plugin>.<verb>`` (``wecom.create_user``); ``[onboarding] tasks`` in hub.toml
    name them, with a configured connector of that plugin. An action looks the object up
    (``find``) before creating it, passes ``ctx.idempotency_key`` as the vendor's idempotency
    token where there is one, and may wait for a vendor callback, or ``undo`` on cancel.

    Example::

        @hub.hookimpl
        def hub_register_onboarding_actions():
            return [CreateWeComUser(), StartOnboardingApproval()]
    """


@hookspec
def hub_run_started(run_id: int, pipeline: str, trigger: str) -> None:
    """Called when a sync run starts, after its row is in the sync log.

    :param run_id: id of the run in the sync log.
    :param pipeline: pipeline name from hub.toml.
    :param trigger: ``manual``, ``schedule`` or ``webhook``.
    """


@hookspec
def hub_run_finished(run_id: int, pipeline: str, status: str, counts: dict[str, int]) -> None:
    """Called when a sync run ends, whatever its outcome.

    :param status: ``succeeded``, ``failed`` or ``partial`` (finished with dead letters).
    :param counts: totals of read, inserted, updated, unchanged and rejected records.
    """


@hookspec
def hub_record_rejected(run_id: int, pipeline: str, stream: str, position: str, reason: str) -> None:
    """Called for every record sent to dead letters.

    :param position: where the record came from (``file.csv:12``, a cursor value).
    :param reason: why it was rejected; never holds personal data.
    """


@hookspec
def hub_records_changed(run_id: int, pipeline: str, entity: str, events: list[Change]) -> None:
    """Called after a chunk of a mapped stream committed, with the canonical records it changed.

    :param entity: the canonical entity (or the stream's ``destination_stream``).
    :param events: one :class:`hub.changes.Change` per record created or updated: its event id
        in ``change_events``, ``kind`` (``created`` or ``updated``), ``changed_fields`` (names
        only; identity fields as ``identity.<name>``), ``key_digest`` and ``record_id`` (the
        record's source key, in clear: it may be personal data, never log it).

    Called once per chunk, after its checkpoint is saved; a crash between the two skips the
    call but never the ``change_events`` rows (read them with ``hub changes list --after ID``
    for exactly-once processing). Runs in the sync's writer thread: keep it short, and hand
    long work to a queue. An exception is logged as a plugin error; the sync goes on.

    Example::

        @hub.hookimpl
        def hub_records_changed(run_id, pipeline, entity, events):
            if entity == "Person":
                queue.put([e.id for e in events if "identity.id_number" in e.changed_fields])
    """


@hookspec(firstresult=True)
def hub_key_provider(settings: dict[str, Any]) -> KeyProvider | None:
    """Return the key provider that supplies hub's key-encryption key.

    :param settings: the ``[keys]`` table of hub.toml (may be empty).

    Stops at the first non-None result; the built-in providers (environment
    variable, key file) are registered ``trylast`` so a plugin (Vault, KMS) wins.
    """
