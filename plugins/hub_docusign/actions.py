"""``docusign.send_contract``: the labour contract, signed through DocuSign, archived sealed.

::

    [onboarding]
    tasks = [
      { name = "send_contract", action = "docusign.send_contract", connector = "docusign",
        options = { duties = ["Backend development"] } },
    ]

1. The contract's terms come from the case; the statutory checks and the ``[contracts]``
   clause rules run first (a probation art. 19 refuses fails the task for good, the article
   named). With ``template_id`` (connector config, or the task's options) the envelope is sent
   from that DocuSign template: the employee as its ``template_role``, the text tabs named in
   ``template_tabs`` filled (salary, start date, duties by default). Without it, hub renders the
   contract (:mod:`hub.contracts`) and sends it as the envelope's document, with a signature
   tab at ``sign_anchor``. The task then WAITs for DocuSign Connect's ``envelope-completed``.
2. DocuSign has no idempotency token: the task's idempotency key is the envelope's custom
   field ``hub_idempotency_key``, and ``find`` looks it up first
   (``GET /envelopes?custom_field=...``), so an attempt whose answer was lost is recovered.
3. On ``envelope-completed`` the combined signed document is downloaded, sealed with
   :func:`hub.contracts.documents.archive_document` and kept in the task's result
   (:func:`hub_esign.econtract.archived_contract` gives it back): DONE. Declined or voided goes to
   an operator. Interim events (``envelope-sent``, ``recipient-completed``) make hub look at the
   envelope, so a late or lost final event does not leave the task waiting.
4. ``hub onboarding cancel`` voids an envelope still in process; a completed one cannot be
   voided (reported as not undoable).
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson
from hub_esign.econtract import SIGNED_DOCUMENT, archive_signed, contract_fields, own_data, render_contract

from hub.oa.actions import case_text, vendor_failures
from hub.onboarding import ActionContext, ActionFailed, CallbackEvent, ExternalRef, OnboardingAction, Outcome
from hub.onboarding.actions import UndoNotSupported
from hub_docusign.client import ENDED, DocuSignClient, Recipient

ENVELOPE_KIND = "docusign_envelope"
COMPLETED_EVENT = "envelope-completed"
#: Connect events about an envelope that hub reads
EVENTS = frozenset(
    {
        "envelope-sent",
        "envelope-delivered",
        "envelope-completed",
        "envelope-declined",
        "envelope-voided",
        "recipient-completed",
        "recipient-declined",
    }
)
#: the envelope status an event states outright (others: hub asks DocuSign)
FINAL = {"envelope-completed": "completed", "envelope-declined": "declined", "envelope-voided": "voided"}
VOID_REASON = "Onboarding cancelled"


def client_of(ctx: ActionContext) -> DocuSignClient:
    try:
        return DocuSignClient.from_config(ctx.config)
    except (KeyError, TypeError, ValueError) as exc:
        raise ActionFailed(
            f"the docusign connector is misconfigured ({type(exc).__name__}: {exc})"
            if isinstance(exc, ValueError)
            else f"the docusign connector is misconfigured ({type(exc).__name__})",
            permanent=True,
        ) from None


def recipient_of(ctx: ActionContext) -> Recipient:
    name = case_text(ctx.case, "name", "full_name", "legal_name")
    email = case_text(ctx.case, "email", "personal_email", "work_email")
    if not name or not email:
        raise ActionFailed(
            "the case needs the employee's name and e-mail address for DocuSign", permanent=True
        )
    return Recipient(name=name, email=email)


class SendContract(OnboardingAction):
    """Send the labour contract for signature through DocuSign; archive the signed document."""

    name: ClassVar[str] = "docusign.send_contract"
    description: ClassVar[str] = (
        "send the labour contract (DocuSign template or hub's rendering); done when completed (archived sealed)"
    )

    def find(self, ctx: ActionContext) -> ExternalRef | None:
        client = client_of(ctx)
        with vendor_failures():
            found = client.find_envelope(ctx.idempotency_key)
        return ExternalRef(found.envelope_id, ENVELOPE_KIND) if found else None

    def recovered(self, ctx: ActionContext, ref: ExternalRef) -> Outcome:
        client = client_of(ctx)
        with vendor_failures():
            status = client.envelope_status(ref.id)
        return self.outcome_of(ctx, client, ref.id, status)

    def perform(self, ctx: ActionContext) -> Outcome:
        client = client_of(ctx)
        recipient = recipient_of(ctx)
        template = str(ctx.options.get("template_id") or client.settings.template_id)
        data: dict[str, Any]
        if template:
            fields, version = contract_fields(ctx, client.settings.employer)
            missing = sorted({name for name in client.settings.template_tabs.values() if name not in fields})
            if missing:
                raise ActionFailed(
                    f"template_tabs names unknown contract fields: {', '.join(missing)}", permanent=True
                )
            tabs = {label: fields[name] for label, name in client.settings.template_tabs.items()}
            definition = client.template_envelope(template, recipient, tabs, ctx.idempotency_key)
            data = {"clause_set_version": version, "template_id": template}
        else:
            document = render_contract(ctx, client.settings.employer)
            primary = document.primary
            definition = client.document_envelope(
                primary.content, primary.extension, recipient, ctx.idempotency_key
            )
            data = {"clause_set_version": document.clause_set.id, "unsigned_sha256": document.sha256}
        with vendor_failures():
            envelope_id = client.send_once(definition, ctx.idempotency_key)
        return self.waiting(envelope_id, data)

    def waiting(self, envelope_id: str, data: dict[str, Any] | None = None) -> Outcome:
        return Outcome.waiting(
            envelope_id,
            event=COMPLETED_EVENT,
            ref=ExternalRef(envelope_id, ENVELOPE_KIND),
            data={**(data or {}), "envelope_id": envelope_id},
        )

    def outcome_of(
        self, ctx: ActionContext, client: DocuSignClient, envelope_id: str, status: str
    ) -> Outcome:
        """DONE with the signed document archived, FAILED when it ended unsigned, else WAITING."""
        if status == "completed":
            with vendor_failures():
                signed = client.signed_document(envelope_id)
            mine = own_data(ctx)
            archived = archive_signed(
                ctx, signed.content, signed.media_type, clause_set_version=mine.get("clause_set_version")
            )
            return Outcome.done(
                ExternalRef(envelope_id, ENVELOPE_KIND),
                {
                    "contract_status": "SIGNED",
                    "envelope_id": envelope_id,
                    "signed_sha256": archived["sha256"],
                    "unsigned_sha256": mine.get("unsigned_sha256"),
                    "clause_set_version": mine.get("clause_set_version"),
                    SIGNED_DOCUMENT: archived,
                },
            )
        if status in ENDED:
            return Outcome.failed(f"the DocuSign envelope was {status}")
        return self.waiting(envelope_id, dict(own_data(ctx)))

    def parse_callback(self, event_type: str, body: bytes) -> CallbackEvent | None:
        if event_type not in EVENTS:
            return None
        try:
            message = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        data = message.get("data") if isinstance(message, dict) else None
        envelope_id = data.get("envelopeId") if isinstance(data, dict) else None
        if not envelope_id:
            return None
        payload: dict[str, Any] = {"event": event_type}
        if event_type in FINAL:
            payload["status"] = FINAL[event_type]
        return CallbackEvent(external_id=str(envelope_id), event_type=event_type, payload=payload)

    def on_callback(self, ctx: ActionContext, event: CallbackEvent) -> Outcome:
        client = client_of(ctx)
        status = str(event.payload.get("status") or "")
        if not status:
            # an interim event, or one delivered late: DocuSign's current state decides
            with vendor_failures():
                status = client.envelope_status(event.external_id)
        return self.outcome_of(ctx, client, event.external_id, status)

    def undo(self, ctx: ActionContext) -> None:
        """Void the envelope while it is in process; a completed contract stays."""
        if ctx.ref is None:
            return
        client = client_of(ctx)
        with vendor_failures():
            status = client.envelope_status(ctx.ref.id)
            if status == "completed":
                raise UndoNotSupported(
                    "the contract is signed already: a completed DocuSign envelope cannot be voided"
                )
            if status in ENDED:
                return
            client.void(ctx.ref.id, VOID_REASON)


ACTIONS: tuple[OnboardingAction, ...] = (SendContract(),)

__all__ = ["ACTIONS", "COMPLETED_EVENT", "ENVELOPE_KIND", "SendContract"]
