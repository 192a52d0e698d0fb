"""Employment contracts (劳动合同) and e-signature flows (canonical-model.md §8.3).

Probation lives on the contract (试用期). The statutory caps of 劳动合同法 Art. 19 are not
enforced here: the model only refuses dates that are the wrong way round.
"""

from __future__ import annotations

import uuid
from datetime import date
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub.schema.base import (
    CanonicalModel,
    Coded,
    PhoneNumber,
    PIIClass,
    Sha256Hex,
    Timestamp,
    check_order,
    pii,
)


class ContractType(StrEnum):
    """Kind of contract."""

    FIXED_TERM = "FIXED_TERM"
    """固定期限."""
    OPEN_ENDED = "OPEN_ENDED"
    """无固定期限."""
    TASK_BASED = "TASK_BASED"
    """以完成一定工作任务为期限."""
    INTERNSHIP = "INTERNSHIP"
    """实习协议."""
    LABOR_SERVICE = "LABOR_SERVICE"
    """劳务合同."""
    DISPATCH = "DISPATCH"
    """劳务派遣."""
    OTHER = "OTHER"


class ContractStatus(StrEnum):
    """Where a contract stands."""

    DRAFT = "DRAFT"
    SENT = "SENT"
    SIGNING = "SIGNING"
    SIGNED = "SIGNED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"
    TERMINATED = "TERMINATED"
    RESCINDED = "RESCINDED"
    OTHER = "OTHER"


class SignFlowStatus(StrEnum):
    """e签宝 signFlowStatus: 0 草稿, 1 签署中, 2 完成, 3 撤销, 5 过期, 7 拒签."""

    DRAFT = "DRAFT"
    SIGNING = "SIGNING"
    COMPLETED = "COMPLETED"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"
    REJECTED = "REJECTED"
    OTHER = "OTHER"


class RescissionStatus(StrEnum):
    """Rescission (解约) state of a completed flow."""

    NONE = "NONE"
    RESCINDING = "RESCINDING"
    PARTIALLY_RESCINDED = "PARTIALLY_RESCINDED"
    RESCINDED = "RESCINDED"
    OTHER = "OTHER"


class SignerType(StrEnum):
    """Who signs: a person or an organisation (seal)."""

    PERSON = "PERSON"
    ORG = "ORG"
    OTHER = "OTHER"


class SignerStatus(StrEnum):
    """e签宝 signStatus: 0 等待, 1 签署中, 2 已签, 3 待审批, 4 拒签."""

    WAITING = "WAITING"
    SIGNING = "SIGNING"
    SIGNED = "SIGNED"
    PENDING_APPROVAL = "PENDING_APPROVAL"
    REJECTED = "REJECTED"
    OTHER = "OTHER"


class Signer(BaseModel):
    """One signer of a sign flow."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    signer_type: Coded[SignerType] = Field(description="Person or organisation.")
    name: str | None = pii(PIIClass.ENCRYPT, "text", description="Signer's name.")
    mobile: PhoneNumber | None = pii(PIIClass.ENCRYPT_INDEX, "phone", description="Signer's mobile, E.164.")
    id_number: str | None = pii(PIIClass.ENCRYPT_INDEX, "id_number", description="Signer's ID number.")
    org_name: str | None = Field(default=None, description="Organisation signing (for ORG signers).")
    sign_order: int | None = Field(default=None, ge=1, description="Position in the signing order.")
    sign_status: Coded[SignerStatus] | None = Field(default=None, description="Signer's progress.")
    real_name_verified: bool | None = Field(default=None, description="Passed real-name authentication.")
    signed_at: Timestamp | None = Field(default=None, description="When the signer signed.")
    third_party_biz_no: str | None = Field(default=None, description="Caller's reference for the signer.")


class SignDocument(BaseModel):
    """One document in a sign flow."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    remote_file_id: str | None = Field(default=None, description="The e-sign provider's file id.")
    name: str | None = Field(default=None, description="File name.")
    sha256: Sha256Hex | None = Field(default=None, description="Digest of the signed file.")


class EmploymentContract(CanonicalModel):
    """A labour contract between an employee and a legal entity, with its term and probation."""

    employee_id: uuid.UUID | None = Field(
        default=None, description="Hub id of the Employee (set once linked)."
    )
    legal_entity_id: uuid.UUID | None = Field(
        default=None, description="Hub id of the contracting LegalEntity (合同公司)."
    )
    contract_number: str | None = Field(default=None, description="Contract number (合同编号).")
    contract_type: Coded[ContractType] | None = Field(default=None, description="Kind of contract.")
    sequence: int | None = Field(
        default=None, ge=1, description="1 for the first contract with the employer."
    )
    renew_count: int | None = Field(default=None, ge=0, description="Times renewed (续签次数).")
    term_months: int | None = Field(
        default=None, ge=0, description="Term in months (合同期限); empty for open-ended contracts."
    )
    start_date: date | None = Field(default=None, description="First day of the contract.")
    end_date: date | None = Field(default=None, description="Last day; empty for open-ended contracts.")
    probation_months: int | None = Field(
        default=None, ge=0, description="Probation length in months (试用期)."
    )
    probation_start: date | None = Field(default=None, description="First day of probation.")
    probation_end: date | None = Field(default=None, description="Last day of probation.")
    status: Coded[ContractStatus] | None = Field(default=None, description="Where the contract stands.")
    signed_at: Timestamp | None = Field(default=None, description="When both parties had signed.")
    sign_due_date: date | None = Field(
        default=None, description="Date by which the contract must be signed (one month after start)."
    )
    non_compete: bool | None = Field(default=None, description="Has a non-compete covenant (竞业限制).")
    sign_flow_id: uuid.UUID | None = Field(default=None, description="Hub id of the SignFlow.")
    document_attachment_id: uuid.UUID | None = Field(
        default=None, description="Hub id of the signed contract Attachment (encrypted file)."
    )

    @model_validator(mode="after")
    def _dates(self) -> EmploymentContract:
        check_order(self, ("start_date", "end_date"), ("probation_start", "probation_end"))
        return self


class SignFlow(CanonicalModel):
    """An e-signature flow (e签宝 v3 signFlow) carrying one or more documents."""

    connector: str | None = Field(default=None, description="hub.toml connector of the e-sign provider.")
    remote_flow_id: str | None = Field(default=None, description="The provider's flow id (signFlowId).")
    title: str | None = Field(default=None, description="Flow title (signFlowTitle).")
    status: Coded[SignFlowStatus] | None = Field(default=None, description="Flow status.")
    rescission_status: Coded[RescissionStatus] | None = Field(default=None, description="Rescission state.")
    started_at: Timestamp | None = Field(default=None, description="When signing started.")
    finished_at: Timestamp | None = Field(default=None, description="When the flow finished.")
    revoke_reason: str | None = Field(default=None, description="Why the flow was revoked.")
    signers: list[Signer] = Field(default_factory=list, description="Signers, in order.")
    documents: list[SignDocument] = Field(default_factory=list, description="Documents signed.")

    @model_validator(mode="after")
    def _dates(self) -> SignFlow:
        check_order(self, ("started_at", "finished_at"))
        return self
