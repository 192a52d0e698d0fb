"""Person-level entities, shared by candidates and employees (canonical-model.md §8.1).

A Person is the human being; Candidate and Employee point at it with ``person_id``. Identity
documents, bank accounts and emergency contacts are separate entities so they can be encrypted,
access-controlled and deduplicated (on the blind index) on their own.
"""

from __future__ import annotations

import uuid
from datetime import date
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hub.schema.base import (
    Address,
    CanonicalModel,
    Coded,
    CountryCode,
    CurrencyCode,
    EmailAddress,
    PhoneNumber,
    PIIClass,
    RegionCode,
    Timestamp,
    check_order,
    pii,
)


class Gender(StrEnum):
    """Gender as recorded by HR (Merge/Finch values collapsed)."""

    MALE = "MALE"
    FEMALE = "FEMALE"
    OTHER = "OTHER"
    UNDISCLOSED = "UNDISCLOSED"


class MaritalStatus(StrEnum):
    """Marital status (婚姻状况)."""

    SINGLE = "SINGLE"
    MARRIED = "MARRIED"
    DIVORCED = "DIVORCED"
    WIDOWED = "WIDOWED"
    OTHER = "OTHER"
    UNDISCLOSED = "UNDISCLOSED"


class HukouType(StrEnum):
    """Household registration type (户籍类型), as used for social insurance."""

    LOCAL_URBAN = "LOCAL_URBAN"
    LOCAL_RURAL = "LOCAL_RURAL"
    NONLOCAL_URBAN = "NONLOCAL_URBAN"
    NONLOCAL_RURAL = "NONLOCAL_RURAL"
    OTHER = "OTHER"


class Degree(StrEnum):
    """Education level (学历), highest first."""

    DOCTORATE = "DOCTORATE"
    MASTER = "MASTER"
    BACHELOR = "BACHELOR"
    ASSOCIATE = "ASSOCIATE"
    SECONDARY_VOCATIONAL = "SECONDARY_VOCATIONAL"
    HIGH_SCHOOL = "HIGH_SCHOOL"
    JUNIOR_HIGH_OR_BELOW = "JUNIOR_HIGH_OR_BELOW"
    OTHER = "OTHER"


class IdentityDocumentType(StrEnum):
    """Kinds of identity document accepted for onboarding."""

    CN_RIC = "CN_RIC"
    """居民身份证, mainland resident identity card (GB 11643 number)."""
    CN_HMT_RESIDENCE = "CN_HMT_RESIDENCE"
    """港澳台居民居住证."""
    HK_MO_PERMIT = "HK_MO_PERMIT"
    """港澳居民来往内地通行证."""
    TW_PERMIT = "TW_PERMIT"
    """台湾居民来往大陆通行证."""
    PASSPORT = "PASSPORT"
    FOREIGNER_PR = "FOREIGNER_PR"
    """外国人永久居留身份证."""
    OTHER = "OTHER"


class BankAccountPurpose(StrEnum):
    """What an account is used for."""

    SALARY = "SALARY"
    REIMBURSEMENT = "REIMBURSEMENT"
    OTHER = "OTHER"


class BankAccountType(StrEnum):
    """Account type (most CN salary accounts are debit cards)."""

    DEBIT_CARD = "DEBIT_CARD"
    SAVINGS = "SAVINGS"
    CHECKING = "CHECKING"
    OTHER = "OTHER"


class Relationship(StrEnum):
    """Relationship of a contact to the person."""

    SPOUSE = "SPOUSE"
    PARENT = "PARENT"
    CHILD = "CHILD"
    SIBLING = "SIBLING"
    RELATIVE = "RELATIVE"
    FRIEND = "FRIEND"
    OTHER = "OTHER"


_RIC_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def gb11643_valid(number: str) -> bool:
    """True if ``number`` is an 18-character resident ID with a correct ISO 7064 MOD 11-2 check char."""
    text = number.strip().upper()
    if len(text) != 18 or not text[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(text[:17], _RIC_WEIGHTS, strict=True))
    return "10X98765432"[total % 11] == text[17]


class Hukou(BaseModel):
    """Household registration (户籍)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    residence_type: Coded[HukouType] | None = Field(default=None, description="户籍类型.")
    hukou_address: str | None = Field(default=None, description="Registered household address (户籍地址).")
    hukou_region_code: RegionCode | None = Field(default=None, description="GB/T 2260 code of the hukou.")


class Person(CanonicalModel):
    """A human being, whether candidate, employee or both."""

    legal_family_name: str | None = pii(PIIClass.RESTRICTED, description="Family name as on the ID (姓).")
    legal_given_name: str | None = pii(PIIClass.RESTRICTED, description="Given name as on the ID (名).")
    display_name: str | None = Field(default=None, description="Name shown in directories.")
    preferred_name: str | None = Field(default=None, description="Name the person goes by.")
    name_en: str | None = Field(default=None, description="English name.")
    name_pinyin: str | None = Field(default=None, description="Name in pinyin.")
    gender: Coded[Gender] | None = pii(PIIClass.RESTRICTED, description="Gender (性别).")
    date_of_birth: date | None = pii(PIIClass.ENCRYPT, "text", description="Date of birth (出生日期).")
    nationality: list[CountryCode] = pii(
        PIIClass.RESTRICTED, default_factory=list, description="Nationalities, ISO 3166-1 alpha-2 (国籍)."
    )
    ethnic_group: str | None = pii(PIIClass.ENCRYPT, "text", description="Ethnic group (民族); sensitive.")
    marital_status: Coded[MaritalStatus] | None = pii(
        PIIClass.ENCRYPT, "text", description="Marital status (婚姻状况)."
    )
    political_status: str | None = pii(
        PIIClass.ENCRYPT, "text", description="Political status (政治面貌); collect only if required."
    )
    personal_email: EmailAddress | None = pii(
        PIIClass.ENCRYPT_INDEX, "email", description="Personal e-mail address."
    )
    mobile_phone: PhoneNumber | None = pii(
        PIIClass.ENCRYPT_INDEX, "phone", description="Personal mobile number, E.164."
    )
    home_address: Address | None = pii(PIIClass.ENCRYPT, "text", description="Home address (现住址).")
    hukou: Hukou | None = pii(PIIClass.ENCRYPT, "text", description="Household registration (户籍).")
    first_work_date: date | None = Field(
        default=None, description="First day of first employment (首次参加工作时间)."
    )
    highest_education: Coded[Degree] | None = Field(
        default=None, description="Highest education level (最高学历)."
    )
    graduate_school: str | None = Field(default=None, description="School of the highest education.")
    major: str | None = Field(default=None, description="Major of the highest education.")
    graduation_date: date | None = Field(
        default=None, description="Graduation date of the highest education."
    )
    photo_attachment_id: uuid.UUID | None = Field(
        default=None, description="Hub id of the photo Attachment (the file is encrypted)."
    )


class IdentityDocument(CanonicalModel):
    """An identity document of a person (身份证, passport, permits)."""

    person_id: uuid.UUID | None = Field(default=None, description="Hub id of the Person (set once linked).")
    doc_type: Coded[IdentityDocumentType] = Field(description="Kind of document (证件类型).")
    issuing_country: CountryCode | None = Field(
        default=None, description="Issuing country, ISO 3166-1 alpha-2."
    )
    number: str = pii(
        PIIClass.ENCRYPT_INDEX,
        "id_number",
        default=...,
        min_length=1,
        description="Document number (证件号码); upper-cased, spaces removed.",
    )
    name_on_document: str | None = pii(
        PIIClass.ENCRYPT, "text", description="Name as printed on the document."
    )
    address_on_document: str | None = pii(
        PIIClass.ENCRYPT, "text", description="Address on the document (身份证地址)."
    )
    issuing_authority: str | None = pii(PIIClass.RESTRICTED, description="Issuing authority (签发机关).")
    issue_date: date | None = pii(PIIClass.RESTRICTED, description="Date of issue.")
    expiry_date: date | None = pii(PIIClass.RESTRICTED, description="Expiry date (证件有效期).")
    no_expiry: bool | None = pii(
        PIIClass.RESTRICTED, description="True for documents valid indefinitely (长期)."
    )
    checksum_valid: bool | None = Field(
        default=None,
        description="GB 11643 MOD 11-2 check result, computed for CN_RIC when not given.",
    )
    verified_by: str | None = Field(
        default=None, description="Who verified the document (e.g. e-sign real-name auth)."
    )
    verified_at: Timestamp | None = Field(default=None, description="When the document was verified.")
    front_image_attachment_id: uuid.UUID | None = Field(
        default=None, description="Hub id of the front image."
    )
    back_image_attachment_id: uuid.UUID | None = Field(default=None, description="Hub id of the back image.")

    @field_validator("number", mode="before")
    @classmethod
    def _normalise_number(cls, value: Any) -> Any:
        return "".join(value.split()).upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _checks(self) -> IdentityDocument:
        check_order(self, ("issue_date", "expiry_date"))
        if self.checksum_valid is None and self.doc_type.value is IdentityDocumentType.CN_RIC:
            self.checksum_valid = gb11643_valid(self.number)
        return self


class BankAccount(CanonicalModel):
    """A bank account of a person (salary card, 工资卡)."""

    person_id: uuid.UUID | None = Field(default=None, description="Hub id of the Person (set once linked).")
    purpose: Coded[BankAccountPurpose] | None = Field(
        default=None, description="What the account is used for."
    )
    account_holder_name: str | None = pii(PIIClass.ENCRYPT, "text", description="Account holder (户名).")
    account_number: str = pii(
        PIIClass.ENCRYPT_INDEX,
        "bank_account",
        default=...,
        min_length=1,
        description="Account or card number (银行卡号); spaces and dashes removed.",
    )
    bank_name: str | None = Field(default=None, description="Bank (开户银行).")
    branch_name: str | None = Field(default=None, description="Branch (开户行/支行).")
    bank_code: str | None = Field(default=None, description="CNAPS bank code (联行号).")
    iban: str | None = Field(default=None, description="IBAN, for non-CN accounts.")
    bic: str | None = Field(default=None, description="BIC/SWIFT code.")
    routing_number: str | None = Field(default=None, description="Routing number, for non-CN accounts.")
    account_type: Coded[BankAccountType] | None = Field(default=None, description="Account type.")
    currency: CurrencyCode | None = Field(default=None, description="ISO 4217 account currency.")
    country: CountryCode | None = Field(default=None, description="Country of the bank, ISO 3166-1 alpha-2.")
    verified_at: Timestamp | None = Field(default=None, description="When the account was verified.")

    @field_validator("account_number", mode="before")
    @classmethod
    def _normalise_number(cls, value: Any) -> Any:
        return "".join(value.replace("-", " ").split()).upper() if isinstance(value, str) else value


class EmergencyContact(CanonicalModel):
    """Someone to call in an emergency (紧急联系人)."""

    person_id: uuid.UUID | None = Field(default=None, description="Hub id of the Person (set once linked).")
    name: str = pii(PIIClass.ENCRYPT, "text", default=..., min_length=1, description="Contact's name.")
    relationship: Coded[Relationship] | None = pii(
        PIIClass.ENCRYPT, "text", description="Contact's relationship to the person."
    )
    phone: PhoneNumber | None = pii(PIIClass.ENCRYPT, "phone", description="Contact's phone, E.164.")
    priority: int | None = Field(default=None, ge=1, description="1 = call first.")


class Education(CanonicalModel):
    """One entry of a person's education history (教育经历)."""

    person_id: uuid.UUID | None = Field(default=None, description="Hub id of the Person (set once linked).")
    institution: str | None = Field(default=None, description="School or university.")
    major: str | None = Field(default=None, description="Field of study.")
    degree: Coded[Degree] | None = Field(default=None, description="Education level reached.")
    start_date: date | None = Field(default=None, description="First day.")
    end_date: date | None = Field(default=None, description="Last day or graduation date.")
    is_full_time: bool | None = Field(default=None, description="Full-time study (全日制/统招).")
    is_highest: bool | None = Field(default=None, description="True for the highest education.")
    certificate_attachment_id: uuid.UUID | None = Field(
        default=None, description="Hub id of the degree certificate Attachment."
    )

    @model_validator(mode="after")
    def _dates(self) -> Education:
        check_order(self, ("start_date", "end_date"))
        return self


class WorkExperience(CanonicalModel):
    """One entry of a person's work history before joining (工作经历)."""

    person_id: uuid.UUID | None = Field(default=None, description="Hub id of the Person (set once linked).")
    employer: str | None = Field(default=None, description="Employer's name.")
    title: str | None = Field(default=None, description="Job title held.")
    department: str | None = Field(default=None, description="Department.")
    start_date: date | None = Field(default=None, description="First day.")
    end_date: date | None = Field(default=None, description="Last day; empty while current.")
    description: str | None = Field(default=None, description="What the person did.")
    leaving_reason: str | None = pii(PIIClass.RESTRICTED, description="Why the person left.")
    certificate_attachment_id: uuid.UUID | None = Field(
        default=None, description="Hub id of the leaving certificate (离职证明) Attachment."
    )

    @model_validator(mode="after")
    def _dates(self) -> WorkExperience:
        check_order(self, ("start_date", "end_date"))
        return self
