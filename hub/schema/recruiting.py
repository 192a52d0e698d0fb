"""Recruiting (ATS) entities (canonical-model.md §8.2).

A Candidate points at a Person; an Application joins a Candidate to a Job; interviews,
scorecards and offers hang off the Application. Scorecards are restricted (role-gated);
offer pay is encrypted.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub.schema.base import (
    CanonicalModel,
    Coded,
    PIIClass,
    Sha256Hex,
    Timestamp,
    check_order,
    pii,
)
from hub.schema.contract import ContractType
from hub.schema.employment import EmployeeCategory, PayTerms


class JobStatus(StrEnum):
    """Where a job stands."""

    OPEN = "OPEN"
    CLOSED = "CLOSED"
    DRAFT = "DRAFT"
    ARCHIVED = "ARCHIVED"
    PENDING = "PENDING"
    OTHER = "OTHER"


class JobType(StrEnum):
    """A public posting or an internal requisition."""

    POSTING = "POSTING"
    REQUISITION = "REQUISITION"
    OTHER = "OTHER"


class ApplicationStatus(StrEnum):
    """Where an application stands."""

    ACTIVE = "ACTIVE"
    REJECTED = "REJECTED"
    HIRED = "HIRED"
    WITHDRAWN = "WITHDRAWN"
    OTHER = "OTHER"


class InterviewStatus(StrEnum):
    """Where an interview stands."""

    SCHEDULED = "SCHEDULED"
    AWAITING_FEEDBACK = "AWAITING_FEEDBACK"
    COMPLETE = "COMPLETE"
    CANCELLED = "CANCELLED"
    OTHER = "OTHER"


class Recommendation(StrEnum):
    """An interviewer's overall recommendation."""

    DEFINITELY_NO = "DEFINITELY_NO"
    NO = "NO"
    YES = "YES"
    STRONG_YES = "STRONG_YES"
    NO_DECISION = "NO_DECISION"
    OTHER = "OTHER"


class OfferStatus(StrEnum):
    """Where an offer stands (Merge SIGNED is ACCEPTED, DENIED is DECLINED)."""

    DRAFT = "DRAFT"
    APPROVAL_SENT = "APPROVAL_SENT"
    APPROVED = "APPROVED"
    SENT = "SENT"
    OPENED = "OPENED"
    ACCEPTED = "ACCEPTED"
    DECLINED = "DECLINED"
    WITHDRAWN = "WITHDRAWN"
    OTHER = "OTHER"


class AttachmentType(StrEnum):
    """What a file is; ID, bank-card and health files are sensitive."""

    RESUME = "RESUME"
    COVER_LETTER = "COVER_LETTER"
    OFFER_LETTER = "OFFER_LETTER"
    PHOTO = "PHOTO"
    ID_FRONT = "ID_FRONT"
    ID_BACK = "ID_BACK"
    DEGREE_CERT = "DEGREE_CERT"
    BANK_CARD = "BANK_CARD"
    HEALTH_CHECK = "HEALTH_CHECK"
    CONTRACT = "CONTRACT"
    OTHER = "OTHER"


class PrivacyConsent(BaseModel):
    """A candidate's consent to processing of their personal information (PIPL)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    version: str = Field(description="Version of the privacy notice consented to.")
    granted_at: Timestamp = Field(description="When consent was given.")
    purpose: str | None = Field(default=None, description="Purpose consented to.")


class Stage(BaseModel):
    """A stage of the hiring pipeline, as the ATS names it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    remote_id: str | None = Field(default=None, description="The stage's id in the ATS.")
    name: str | None = Field(default=None, description="Stage name.")
    order: int | None = Field(default=None, ge=0, description="Position in the pipeline, from 0.")


class ScreeningAnswer(BaseModel):
    """An answer to an application screening question."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    question: str = Field(description="The question.")
    answer: str | None = Field(default=None, description="The candidate's answer.")


class Rating(BaseModel):
    """A score for one competency on a scorecard."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    competency: str = Field(description="What was rated.")
    score: Decimal | None = Field(default=None, description="The score given.")
    max_score: Decimal | None = Field(default=None, description="The highest possible score.")
    comment: str | None = Field(default=None, description="The interviewer's comment.")


class Job(CanonicalModel):
    """A job opening (posting or requisition)."""

    code: str | None = Field(default=None, description="Job or requisition code.")
    title: str = Field(min_length=1, description="Job title.")
    description: str | None = Field(default=None, description="Job description.")
    status: Coded[JobStatus] | None = Field(default=None, description="Where the job stands.")
    type: Coded[JobType] | None = Field(default=None, description="Posting or requisition.")
    department_id: uuid.UUID | None = Field(default=None, description="Hub id of the OrgUnit.")
    location_ids: list[uuid.UUID] = Field(default_factory=list, description="Hub ids of the Locations.")
    legal_entity_id: uuid.UUID | None = Field(default=None, description="Hub id of the hiring LegalEntity.")
    employment_type: Coded[EmployeeCategory] | None = Field(
        default=None, description="Kind of relationship offered."
    )
    headcount: int | None = Field(default=None, ge=0, description="Number of hires planned.")
    confidential: bool | None = Field(default=None, description="Hidden from most ATS users.")
    hiring_manager_ids: list[uuid.UUID] = Field(
        default_factory=list, description="Hub ids of hiring managers."
    )
    recruiter_ids: list[uuid.UUID] = Field(default_factory=list, description="Hub ids of recruiters.")


class Candidate(CanonicalModel):
    """A person in the recruiting system (name, contacts and IDs live on the Person)."""

    person_id: uuid.UUID | None = Field(default=None, description="Hub id of the Person (set once linked).")
    current_company: str | None = Field(default=None, description="Current employer.")
    current_title: str | None = Field(default=None, description="Current job title.")
    source: str | None = Field(default=None, description="Where the candidate came from (channel).")
    tags: list[str] = Field(default_factory=list, description="ATS tags.")
    urls: list[str] = Field(default_factory=list, description="Profile and portfolio links.")
    can_contact: bool | None = Field(default=None, description="False if the candidate opted out of contact.")
    is_private: bool | None = Field(default=None, description="Visible to a restricted group only.")
    privacy_consent: PrivacyConsent | None = pii(PIIClass.RESTRICTED, description="PIPL consent record.")
    last_interaction_at: Timestamp | None = Field(
        default=None, description="Last contact with the candidate."
    )
    attachment_ids: list[uuid.UUID] = Field(default_factory=list, description="Hub ids of Attachments.")


class Application(CanonicalModel):
    """A candidate's application to a job."""

    candidate_id: uuid.UUID | None = Field(
        default=None, description="Hub id of the Candidate (set once linked)."
    )
    job_id: uuid.UUID | None = Field(default=None, description="Hub id of the Job (set once linked).")
    status: Coded[ApplicationStatus] | None = Field(default=None, description="Where the application stands.")
    current_stage: Stage | None = Field(default=None, description="Current pipeline stage.")
    applied_at: Timestamp | None = Field(default=None, description="When the candidate applied.")
    rejected_at: Timestamp | None = Field(default=None, description="When the application was rejected.")
    reject_reason: str | None = pii(PIIClass.RESTRICTED, description="Why it was rejected.")
    source: str | None = Field(default=None, description="Channel of the application.")
    credited_to_user_id: uuid.UUID | None = Field(
        default=None, description="Hub id of the credited recruiter."
    )
    screening_answers: list[ScreeningAnswer] = pii(
        PIIClass.RESTRICTED, default_factory=list, description="Answers to screening questions."
    )


class Interview(CanonicalModel):
    """A scheduled interview."""

    application_id: uuid.UUID | None = Field(default=None, description="Hub id of the Application.")
    stage: str | None = Field(default=None, description="Interview stage name.")
    organizer_id: uuid.UUID | None = Field(default=None, description="Hub id of the organiser.")
    interviewer_ids: list[uuid.UUID] = Field(default_factory=list, description="Hub ids of interviewers.")
    start_at: Timestamp | None = Field(default=None, description="Start time.")
    end_at: Timestamp | None = Field(default=None, description="End time.")
    location: str | None = Field(default=None, description="Room, address or meeting link.")
    status: Coded[InterviewStatus] | None = Field(default=None, description="Where the interview stands.")

    @model_validator(mode="after")
    def _times(self) -> Interview:
        check_order(self, ("start_at", "end_at"))
        return self


class Scorecard(CanonicalModel):
    """An interviewer's feedback on an application (restricted)."""

    application_id: uuid.UUID | None = Field(default=None, description="Hub id of the Application.")
    interview_id: uuid.UUID | None = Field(default=None, description="Hub id of the Interview.")
    interviewer_id: uuid.UUID | None = Field(default=None, description="Hub id of the interviewer.")
    overall_recommendation: Coded[Recommendation] | None = pii(
        PIIClass.RESTRICTED, description="Overall recommendation."
    )
    summary: str | None = pii(PIIClass.RESTRICTED, description="Overall comment.")
    ratings: list[Rating] = pii(
        PIIClass.RESTRICTED, default_factory=list, description="Per-competency ratings."
    )
    submitted_at: Timestamp | None = Field(default=None, description="When the feedback was submitted.")


class Offer(CanonicalModel):
    """An offer made on an application, with its terms and pay."""

    application_id: uuid.UUID | None = Field(default=None, description="Hub id of the Application.")
    status: Coded[OfferStatus] | None = Field(default=None, description="Where the offer stands.")
    sent_at: Timestamp | None = Field(default=None, description="When the offer was sent.")
    approved_at: Timestamp | None = Field(default=None, description="When the offer was approved.")
    closed_at: Timestamp | None = Field(
        default=None, description="When the offer was accepted, declined or withdrawn."
    )
    start_date: date | None = Field(default=None, description="Agreed first day.")
    job_title: str | None = Field(default=None, description="Job title offered.")
    department_id: uuid.UUID | None = Field(default=None, description="Hub id of the OrgUnit.")
    location_id: uuid.UUID | None = Field(default=None, description="Hub id of the work Location.")
    legal_entity_id: uuid.UUID | None = Field(
        default=None, description="Hub id of the employing LegalEntity."
    )
    manager_id: uuid.UUID | None = Field(default=None, description="Hub id of the future manager.")
    employment_type: Coded[EmployeeCategory] | None = Field(default=None, description="Kind of relationship.")
    contract_type: Coded[ContractType] | None = Field(default=None, description="Kind of contract offered.")
    contract_term_months: int | None = Field(default=None, ge=0, description="Contract term in months.")
    probation_months: int | None = Field(default=None, ge=0, description="Probation in months.")
    compensation: PayTerms | None = pii(PIIClass.ENCRYPT, "money", description="Pay offered.")
    offer_letter_attachment_id: uuid.UUID | None = Field(
        default=None, description="Hub id of the offer letter Attachment."
    )


class Attachment(CanonicalModel):
    """A file (resume, ID image, contract) kept encrypted in the object store."""

    owner_type: str | None = Field(default=None, description="Entity the file belongs to, e.g. Candidate.")
    owner_id: uuid.UUID | None = Field(default=None, description="Hub id of the owning record.")
    attachment_type: Coded[AttachmentType] | None = Field(default=None, description="What the file is.")
    file_name: str = pii(
        PIIClass.RESTRICTED,
        default=...,
        min_length=1,
        description="File name (often holds the person's name).",
    )
    content_type: str | None = Field(default=None, description="MIME type.")
    size: int | None = Field(default=None, ge=0, description="Size in bytes.")
    sha256: Sha256Hex | None = Field(default=None, description="Digest of the content.")
    storage_key: str | None = Field(default=None, description="Key of the encrypted object in hub's store.")
    source_url: str | None = pii(PIIClass.RESTRICTED, description="Short-lived download URL at the source.")
