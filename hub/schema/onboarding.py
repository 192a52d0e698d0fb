"""Onboarding orchestration: one case per hire, with idempotent tasks (canonical-model.md §8.4).

The case bridges the ATS and the HRIS (Feishu pre_hire with ats_application_id); each task
pushes to one target system. A task's ``idempotency_key`` is sent with every attempt (Feishu
``client_token``), so a retried push never creates a second record. Both status enums are
hub's own, so they are plain enums rather than :class:`~hub.schema.base.Coded`.
"""

from __future__ import annotations

import uuid
from datetime import date
from enum import StrEnum
from typing import Any

from pydantic import Field

from hub.schema.base import CanonicalModel, SourceRef, Timestamp

#: Namespace of derived idempotency keys (uuid5), fixed forever.
IDEMPOTENCY_NAMESPACE = uuid.UUID("5b0c3f51-8a51-4d38-9d0e-6f4b1f0c7a10")


class OnboardingStatus(StrEnum):
    """Where an onboarding case stands."""

    INITIATED = "INITIATED"
    COLLECTING_INFO = "COLLECTING_INFO"
    DOCS_VERIFIED = "DOCS_VERIFIED"
    CONTRACT_SENT = "CONTRACT_SENT"
    CONTRACT_SIGNED = "CONTRACT_SIGNED"
    PROVISIONING = "PROVISIONING"
    READY = "READY"
    ONBOARDED = "ONBOARDED"
    CANCELLED = "CANCELLED"
    NO_SHOW = "NO_SHOW"


class OnboardingTaskType(StrEnum):
    """What an onboarding task does."""

    COLLECT_PERSONAL_INFO = "COLLECT_PERSONAL_INFO"
    VERIFY_ID = "VERIFY_ID"
    COLLECT_BANK = "COLLECT_BANK"
    BACKGROUND_CHECK = "BACKGROUND_CHECK"
    SIGN_CONTRACT = "SIGN_CONTRACT"
    CREATE_HRIS_RECORD = "CREATE_HRIS_RECORD"
    PROVISION_OA_ACCOUNT = "PROVISION_OA_ACCOUNT"
    PROVISION_SCIM = "PROVISION_SCIM"
    ENROLL_PAYROLL = "ENROLL_PAYROLL"
    ENROLL_SOCIAL_INSURANCE = "ENROLL_SOCIAL_INSURANCE"
    CHECK_IN = "CHECK_IN"
    """签到 on the first day."""
    EQUIPMENT = "EQUIPMENT"


class TaskStatus(StrEnum):
    """Where an onboarding task stands."""

    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    DONE = "DONE"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


def make_idempotency_key(
    case_id: uuid.UUID, task_type: OnboardingTaskType, target_connector: str | None
) -> str:
    """The stable key of a task: the same case, task type and target always give the same key."""
    name = f"{case_id}:{task_type.value}:{target_connector or ''}"
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, name))


def _derived_key(data: dict[str, Any]) -> str:
    """The default key, from the fields validated so far ("" and an error without a case id)."""
    case_id, task_type = data.get("case_id"), data.get("task_type")
    if not isinstance(case_id, uuid.UUID) or not isinstance(task_type, OnboardingTaskType):
        return ""
    return make_idempotency_key(case_id, task_type, data.get("target_connector"))


class OnboardingCase(CanonicalModel):
    """One hire's way from accepted offer to first day."""

    application_id: uuid.UUID | None = Field(default=None, description="Hub id of the Application.")
    offer_id: uuid.UUID | None = Field(default=None, description="Hub id of the accepted Offer.")
    candidate_id: uuid.UUID | None = Field(default=None, description="Hub id of the Candidate.")
    person_id: uuid.UUID | None = Field(default=None, description="Hub id of the Person.")
    employee_id: uuid.UUID | None = Field(
        default=None, description="Hub id of the Employee, once the HRIS has created the record."
    )
    legal_entity_id: uuid.UUID | None = Field(
        default=None, description="Hub id of the employing LegalEntity."
    )
    planned_start_date: date | None = Field(default=None, description="Agreed first day.")
    actual_start_date: date | None = Field(default=None, description="Actual first day.")
    onboarding_location_id: uuid.UUID | None = Field(
        default=None, description="Hub id of the Location to report to."
    )
    hrbp_user_id: uuid.UUID | None = Field(
        default=None, description="Hub id of the HR business partner (Employee)."
    )
    status: OnboardingStatus = Field(default=OnboardingStatus.INITIATED, description="Where the case stands.")
    cancel_reason: str | None = Field(default=None, description="Why the case was cancelled.")


class OnboardingTask(CanonicalModel):
    """One step of an onboarding case, pushed to at most one target system."""

    case_id: uuid.UUID | None = Field(default=None, description="Hub id of the OnboardingCase.")
    task_type: OnboardingTaskType = Field(description="What the task does.")
    target_connector: str | None = Field(default=None, description="hub.toml connector the task writes to.")
    status: TaskStatus = Field(default=TaskStatus.PENDING, description="Where the task stands.")
    idempotency_key: str = Field(
        default_factory=lambda data: _derived_key(data),
        validate_default=True,
        min_length=1,
        max_length=64,
        description="Sent with every attempt (e.g. Feishu client_token); derived from case, type and "
        "target when not given.",
    )
    attempts: int = Field(default=0, ge=0, description="Attempts made so far.")
    last_error: str | None = Field(default=None, description="Last failure, masked (never personal data).")
    due_at: Timestamp | None = Field(default=None, description="When the task should be done.")
    completed_at: Timestamp | None = Field(default=None, description="When the task was done or skipped.")
    result_ref: SourceRef | None = Field(
        default=None, description="The record the task created in the target."
    )
