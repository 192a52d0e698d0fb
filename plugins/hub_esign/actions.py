"""``esign.send_contract``: the labour contract, signed through e签宝, archived sealed.

::

    [onboarding]
    tasks = [
      { name = "send_contract", action = "esign.send_contract", connector = "esign",
        options = { duties = ["负责后端服务开发"], attributes = { core_data_access = true } } },
    ]

1. The contract is rendered with :mod:`hub.contracts` (``[contracts]`` clause rules applied;
   the statutory checks first: a probation art. 19 refuses fails the task for good, the
   article named), uploaded to e签宝 (upload URL, PUT, wait for the file), and a sign flow is
   started: the employee signs by hand (mobile as the e签宝 account, name as the API requires;
   the ID number only with ``send_id_number = true``), the employer's own organisation seals
   automatically after. The task then WAITs for e签宝's ``SIGN_FLOW_COMPLETE`` callback; its
   result holds the signing link (``sign_url``) for whoever hands it to the employee.
2. e签宝 has no idempotency token, so ``find`` looks first: flows of the employee's account
   whose title carries hub's mark and whose sign field's ``customBizNum`` is the task's
   idempotency key. An attempt whose answer was lost is recovered, never repeated.
3. On ``SIGN_FLOW_COMPLETE`` with status 2 the signed file is downloaded, sealed with
   :func:`hub.contracts.documents.archive_document` and kept in the task's result
   (:func:`hub_esign.econtract.archived_contract` gives it back): DONE. Revoked (3), expired (5)
   or refused (7) goes to an operator. A signer's ``SIGN_MISSON_COMPLETE`` only makes hub look at
   the flow (a late or lost final callback does not leave the task waiting).
4. ``hub onboarding cancel`` revokes a flow still in progress; a signed contract cannot be
   revoked (it is reported as not undoable: rescind it in e签宝).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import orjson

from hub.oa.actions import case_text, national_mobile, vendor_failures
from hub.onboarding import ActionContext, ActionFailed, CallbackEvent, ExternalRef, OnboardingAction, Outcome
from hub.onboarding.actions import UndoNotSupported
from hub_esign.client import (
    DONE,
    EXPIRED,
    FLOW_STATUS,
    REFUSED,
    REVOKED,
    EsignClient,
    Signer,
    SignFlowRequest,
)
from hub_esign.econtract import SIGNED_DOCUMENT, archive_signed, own_data, render_contract

FLOW_KIND = "esign_sign_flow"
#: e签宝's event when a flow ends (finished, revoked, expired, refused)
FLOW_COMPLETE = "SIGN_FLOW_COMPLETE"
#: e签宝's event when one signer has signed (or refused)
SIGNER_COMPLETE = "SIGN_MISSON_COMPLETE"  # sic: e签宝's spelling
#: signResult in SIGN_MISSON_COMPLETE
SIGN_RESULT_SIGNED, SIGN_RESULT_FAILED, SIGN_RESULT_REFUSED = 2, 3, 4
ENDED = {REVOKED: "revoked", EXPIRED: "expired", REFUSED: "refused by the signer"}
CANCEL_REASON = "入职已取消"


def client_of(ctx: ActionContext) -> EsignClient:
    try:
        return EsignClient.from_config(ctx.config)
    except (KeyError, TypeError, ValueError) as exc:
        raise ActionFailed(
            f"the esign connector is misconfigured ({type(exc).__name__})", permanent=True
        ) from None


def signer_of(ctx: ActionContext) -> Signer:
    """The employee as e签宝 needs them: the account (mobile, else e-mail) and the name."""
    case = ctx.case
    name = case_text(case, "name", "full_name", "legal_name")
    account = national_mobile(case_text(case, "mobile", "phone")) or case_text(case, "email")
    if not name or not account:
        raise ActionFailed(
            "the case needs the employee's name and a mobile number (or e-mail) for e签宝", permanent=True
        )
    return Signer(name=name, account=account, id_number=case_text(case, "id_number"))


def _status(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


class SendContract(OnboardingAction):
    """Render the labour contract, have it signed through e签宝, archive the signed file."""

    name: ClassVar[str] = "esign.send_contract"
    description: ClassVar[str] = (
        "render the labour contract, start an e签宝 sign flow; done when signed (archived sealed)"
    )

    def find(self, ctx: ActionContext) -> ExternalRef | None:
        client = client_of(ctx)
        with vendor_failures():
            found = client.find_flow(ctx.idempotency_key, signer_of(ctx).account)
        return ExternalRef(found, FLOW_KIND) if found else None

    def recovered(self, ctx: ActionContext, ref: ExternalRef) -> Outcome:
        client = client_of(ctx)
        with vendor_failures():
            status = client.flow_status(ref.id)
        return self.outcome_of(ctx, client, ref.id, status)

    def perform(self, ctx: ActionContext) -> Outcome:
        client = client_of(ctx)
        signer = signer_of(ctx)
        document = render_contract(ctx, client.settings.employer)
        primary = document.primary
        is_pdf = primary.media_type == "application/pdf"
        with vendor_failures():
            file_id = client.upload_file(
                primary.content, f"劳动合同.{primary.extension}", convert_to_pdf=not is_pdf
            )
            flow_id = client.start_flow_once(
                SignFlowRequest(
                    file_id=file_id, file_name="劳动合同.pdf", signer=signer, reference=ctx.idempotency_key
                )
            )
        return self.waiting(
            ctx,
            client,
            flow_id,
            {"unsigned_sha256": document.sha256, "clause_set_version": document.clause_set.id},
        )

    def waiting(
        self, ctx: ActionContext, client: EsignClient, flow_id: str, extra: Mapping[str, Any] | None = None
    ) -> Outcome:
        with vendor_failures():
            url = client.sign_url(flow_id, signer_of(ctx).account)
        data = {**own_data(ctx), **(extra or {}), "sign_flow_id": flow_id, "sign_url": url}
        return Outcome.waiting(flow_id, event=FLOW_COMPLETE, ref=ExternalRef(flow_id, FLOW_KIND), data=data)

    def outcome_of(
        self, ctx: ActionContext, client: EsignClient, flow_id: str, status: int | None
    ) -> Outcome:
        """DONE with the signed file archived, FAILED when the flow ended unsigned, else WAITING."""
        if status == DONE:
            with vendor_failures():
                signed = client.download_signed(flow_id)
            mine = own_data(ctx)
            archived = archive_signed(
                ctx, signed.content, signed.media_type, clause_set_version=mine.get("clause_set_version")
            )
            return Outcome.done(
                ExternalRef(flow_id, FLOW_KIND),
                {
                    "contract_status": "SIGNED",
                    "sign_flow_id": flow_id,
                    "signed_sha256": archived["sha256"],
                    "unsigned_sha256": mine.get("unsigned_sha256"),
                    "clause_set_version": mine.get("clause_set_version"),
                    SIGNED_DOCUMENT: archived,
                },
            )
        if status in ENDED:
            return Outcome.failed(f"the e签宝 sign flow was {ENDED[status]}")
        return self.waiting(ctx, client, flow_id)

    def parse_callback(self, event_type: str, body: bytes) -> CallbackEvent | None:
        if event_type not in (FLOW_COMPLETE, SIGNER_COMPLETE):
            return None  # e签宝 adds actions over time: unknown ones are ignored
        try:
            event = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(event, dict) or not event.get("signFlowId"):
            return None
        payload: dict[str, Any] = {"action": event_type}
        if event_type == FLOW_COMPLETE:
            payload["sign_flow_status"] = _status(event.get("signFlowStatus"))
        else:
            payload["sign_result"] = _status(event.get("signResult"))
        return CallbackEvent(external_id=str(event["signFlowId"]), event_type=event_type, payload=payload)

    def on_callback(self, ctx: ActionContext, event: CallbackEvent) -> Outcome:
        client = client_of(ctx)
        status = _status(event.payload.get("sign_flow_status"))
        if event.event_type == SIGNER_COMPLETE and event.payload.get("sign_result") == SIGN_RESULT_REFUSED:
            return Outcome.failed("the employee refused to sign the contract in e签宝")
        if status is None:
            # a signer's event, or one delivered late: e签宝's current state decides
            with vendor_failures():
                status = client.flow_status(event.external_id)
        return self.outcome_of(ctx, client, event.external_id, status)

    def undo(self, ctx: ActionContext) -> None:
        """Revoke the flow while it is in progress; a signed contract stays (rescind it in e签宝)."""
        if ctx.ref is None:
            return
        client = client_of(ctx)
        with vendor_failures():
            status = client.flow_status(ctx.ref.id)
            if status == DONE:
                raise UndoNotSupported(
                    "the contract is signed already: e签宝 cannot revoke it (rescind it in e签宝)"
                )
            if status in ENDED:
                return
            client.revoke(ctx.ref.id, CANCEL_REASON)


ACTIONS: tuple[OnboardingAction, ...] = (SendContract(),)

__all__ = ["ACTIONS", "FLOW_COMPLETE", "FLOW_KIND", "FLOW_STATUS", "SIGNER_COMPLETE", "SendContract"]
