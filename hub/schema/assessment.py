"""Assessment orders and results (canonical-model.md §8.2; HR Open OrderType/ReportType, Kombo).

Results are restricted: every score, band and comment is role-gated and access-audited.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from hub.schema.base import CanonicalModel, Coded, LanguageTag, PIIClass, Timestamp, pii


class AssessmentStatus(StrEnum):
    """HR Open AssessmentStatusCodeList, collapsed."""

    ORDERED = "ORDERED"
    INVITED = "INVITED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    SCORED = "SCORED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"
    ERROR = "ERROR"
    OTHER = "OTHER"


class AssessmentType(StrEnum):
    """Kind of assessment package."""

    COGNITIVE = "COGNITIVE"
    PERSONALITY = "PERSONALITY"
    SKILLS = "SKILLS"
    CODING = "CODING"
    LANGUAGE = "LANGUAGE"
    BACKGROUND_CHECK = "BACKGROUND_CHECK"
    OTHER = "OTHER"


class AssessmentSubScore(BaseModel):
    """One sub-result (a dimension or test section)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    label: str = Field(description="What the sub-score measures.")
    score: Decimal | None = Field(default=None, description="The score.")
    max_score: Decimal | None = Field(default=None, description="The highest possible score.")
    status: str | None = Field(default=None, description="Vendor status of the sub-result.")


class TextAttribute(BaseModel):
    """A labelled text result (e.g. a personality type)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    label: str = Field(description="What the text describes.")
    value: str | None = Field(default=None, description="The text.")


class AssessmentOrder(CanonicalModel):
    """A request to assess a candidate with a vendor's package."""

    application_id: uuid.UUID | None = Field(default=None, description="Hub id of the Application.")
    candidate_id: uuid.UUID | None = Field(default=None, description="Hub id of the Candidate.")
    package_id: str | None = Field(default=None, description="The vendor's package id.")
    package_name: str | None = Field(default=None, description="The package's name.")
    package_type: Coded[AssessmentType] | None = Field(default=None, description="Kind of assessment.")
    status: Coded[AssessmentStatus] | None = Field(default=None, description="Where the order stands.")
    invited_at: Timestamp | None = Field(default=None, description="When the candidate was invited.")
    access_url: str | None = pii(PIIClass.RESTRICTED, description="The candidate's personal test link.")
    expires_at: Timestamp | None = Field(default=None, description="When the invitation expires.")
    language: LanguageTag | None = Field(default=None, description="Test language, BCP 47.")


class AssessmentResult(CanonicalModel):
    """The outcome of an assessment order (restricted)."""

    order_id: uuid.UUID | None = Field(default=None, description="Hub id of the AssessmentOrder.")
    status: Coded[AssessmentStatus] | None = Field(default=None, description="Status of the result.")
    completed_at: Timestamp | None = Field(default=None, description="When the candidate finished.")
    score: Decimal | None = pii(PIIClass.RESTRICTED, description="Overall score.")
    max_score: Decimal | None = pii(PIIClass.RESTRICTED, description="Highest possible overall score.")
    passed: bool | None = pii(PIIClass.RESTRICTED, description="Pass/fail verdict.")
    band: str | None = pii(PIIClass.RESTRICTED, description="Result band or grade.")
    result_url: str | None = pii(PIIClass.RESTRICTED, description="Link to the full report.")
    sub_results: list[AssessmentSubScore] = pii(
        PIIClass.RESTRICTED, default_factory=list, description="Sub-scores by dimension."
    )
    text_attributes: list[TextAttribute] = pii(
        PIIClass.RESTRICTED, default_factory=list, description="Labelled text results."
    )
    attachment_ids: list[uuid.UUID] = Field(
        default_factory=list, description="Hub ids of report Attachments."
    )
