"""Employment (HRIS master) and organisation entities (canonical-model.md §8.3).

Employee is the employment relationship of a Person with a legal entity; its position history is
EmploymentRecord, its pay Compensation, its social insurance and payroll set-up
SocialInsuranceProfile and PayrollEnrollment. All links are hub ids.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub.schema.base import (
    Address,
    CanonicalModel,
    Coded,
    CountryCode,
    EmailAddress,
    Money,
    Month,
    PhoneNumber,
    PIIClass,
    RegionCode,
    check_order,
    pii,
)
from hub.schema.person import HukouType

USCC_PATTERN = r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$"


class EmploymentStatus(StrEnum):
    """Where an employee stands (Merge ACTIVE/PENDING/INACTIVE, Finch prehire/onboarding)."""

    PRE_HIRE = "PRE_HIRE"
    """待入职: offer accepted, not started."""
    ACTIVE = "ACTIVE"
    ON_LEAVE = "ON_LEAVE"
    TERMINATED = "TERMINATED"
    CANCELLED_HIRE = "CANCELLED_HIRE"
    """The hire was called off before the first day."""
    OTHER = "OTHER"


class EmployeeCategory(StrEnum):
    """Kind of working relationship (Feishu employee_type, Merge employment_type)."""

    FULL_TIME = "FULL_TIME"
    PART_TIME = "PART_TIME"
    INTERN = "INTERN"
    DISPATCHED = "DISPATCHED"
    """劳务派遣."""
    OUTSOURCED = "OUTSOURCED"
    LABOR_SERVICE = "LABOR_SERVICE"
    """劳务."""
    CONSULTANT = "CONSULTANT"
    RETIREE_REHIRE = "RETIREE_REHIRE"
    """退休返聘."""
    OTHER = "OTHER"


class OrgUnitType(StrEnum):
    """Kind of organisational unit."""

    DEPARTMENT = "DEPARTMENT"
    TEAM = "TEAM"
    COST_CENTER = "COST_CENTER"
    BUSINESS_UNIT = "BUSINESS_UNIT"
    DIVISION = "DIVISION"
    OTHER = "OTHER"


class LocationType(StrEnum):
    """Kind of work location (home addresses live on Person.home_address, encrypted)."""

    WORK = "WORK"
    """An office or site."""
    REMOTE = "REMOTE"
    OTHER = "OTHER"


class AssignmentReason(StrEnum):
    """Why a position record starts."""

    HIRE = "HIRE"
    TRANSFER = "TRANSFER"
    PROMOTION = "PROMOTION"
    DEMOTION = "DEMOTION"
    REHIRE = "REHIRE"
    REGULARIZATION = "REGULARIZATION"
    """转正."""
    OTHER = "OTHER"


class PayPeriod(StrEnum):
    """The period a pay rate is quoted for."""

    HOUR = "HOUR"
    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"
    YEAR = "YEAR"
    OTHER = "OTHER"


class PayFrequency(StrEnum):
    """How often pay is run."""

    WEEKLY = "WEEKLY"
    BIWEEKLY = "BIWEEKLY"
    SEMIMONTHLY = "SEMIMONTHLY"
    MONTHLY = "MONTHLY"
    QUARTERLY = "QUARTERLY"
    ANNUALLY = "ANNUALLY"
    OTHER = "OTHER"


class PayComponentCode(StrEnum):
    """Kind of pay component."""

    BASE = "BASE"
    ALLOWANCE = "ALLOWANCE"
    BONUS_TARGET = "BONUS_TARGET"
    COMMISSION = "COMMISSION"
    EQUITY = "EQUITY"
    OTHER = "OTHER"


class SocialInsuranceStatus(StrEnum):
    """Social insurance (社保) enrolment status."""

    PENDING = "PENDING"
    ENROLLED = "ENROLLED"
    TRANSFERRED = "TRANSFERRED"
    STOPPED = "STOPPED"
    OTHER = "OTHER"


class PayComponent(BaseModel):
    """One component of a pay package (base, allowance, bonus target)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: Coded[PayComponentCode] = Field(description="Kind of component.")
    name: str | None = Field(default=None, description="The component's name in the source.")
    amount: Money = pii(PIIClass.ENCRYPT, "money", default=..., description="Amount per pay period.")


class PayTerms(BaseModel):
    """A pay package: rate, period, frequency and components (used on Offer)."""

    model_config = ConfigDict(extra="forbid")

    amount: Money = pii(PIIClass.ENCRYPT, "money", default=..., description="Pay rate per pay period.")
    pay_period: Coded[PayPeriod] | None = Field(default=None, description="The period the rate is for.")
    pay_frequency: Coded[PayFrequency] | None = Field(default=None, description="How often pay is run.")
    components: list[PayComponent] = pii(
        PIIClass.ENCRYPT, "money", default_factory=list, description="Breakdown of the package."
    )


class LegalEntity(CanonicalModel):
    """A legal employer (合同主体 / company)."""

    name: str = Field(min_length=1, description="Registered name.")
    display_name: str | None = Field(default=None, description="Short name.")
    unified_social_credit_code: str | None = Field(
        default=None, pattern=USCC_PATTERN, description="统一社会信用代码 (GB 32100), 18 characters."
    )
    registered_address: Address | None = Field(default=None, description="Registered address.")
    country: CountryCode | None = Field(default=None, description="Country of registration.")


class OrgUnit(CanonicalModel):
    """A department, team, cost centre or other organisational unit."""

    name: str = Field(min_length=1, description="Unit name.")
    code: str | None = Field(default=None, description="Unit code in the source.")
    type: Coded[OrgUnitType] | None = Field(default=None, description="Kind of unit.")
    parent_id: uuid.UUID | None = Field(default=None, description="Hub id of the parent OrgUnit.")
    leader_employee_ids: list[uuid.UUID] = Field(default_factory=list, description="Hub ids of the leaders.")
    legal_entity_id: uuid.UUID | None = Field(default=None, description="Hub id of the LegalEntity.")
    active: bool | None = Field(default=None, description="False once the unit is dissolved.")


class Location(CanonicalModel):
    """A work location (office, site)."""

    name: str | None = Field(default=None, description="Location name.")
    type: Coded[LocationType] | None = Field(default=None, description="Kind of location.")
    street_1: str | None = Field(default=None, description="Street, number, building.")
    street_2: str | None = Field(default=None, description="Floor, room.")
    district: str | None = Field(default=None, description="District or county.")
    city: str | None = Field(default=None, description="City.")
    region: str | None = Field(default=None, description="Province or municipality.")
    postal_code: str | None = Field(default=None, description="Postal code.")
    country: CountryCode | None = Field(default=None, description="ISO 3166-1 alpha-2 country code.")
    region_code: RegionCode | None = Field(default=None, description="GB/T 2260 division code.")


class Employee(CanonicalModel):
    """A person's employment with the organisation (the HRIS master record)."""

    person_id: uuid.UUID | None = Field(default=None, description="Hub id of the Person (set once linked).")
    employee_number: str | None = Field(default=None, description="Employee number (工号).")
    work_email: EmailAddress | None = Field(default=None, description="Work e-mail address.")
    work_phone: PhoneNumber | None = Field(default=None, description="Work phone, E.164.")
    employment_status: Coded[EmploymentStatus] | None = Field(default=None, description="Employment status.")
    employee_category: Coded[EmployeeCategory] | None = Field(
        default=None, description="Kind of working relationship (员工类型)."
    )
    hire_date: date | None = Field(default=None, description="Hire date (usually the offer-signed date).")
    start_date: date | None = Field(
        default=None, description="First working day, latest if rehired (入职日期)."
    )
    planned_regularization_date: date | None = Field(
        default=None, description="Planned end of probation (计划转正日期)."
    )
    regularization_date: date | None = Field(
        default=None, description="Actual end of probation (实际转正日期)."
    )
    seniority_date: date | None = Field(default=None, description="Date seniority counts from (司龄起算日).")
    termination_date: date | None = Field(default=None, description="Last day of employment.")
    termination_reason: str | None = pii(PIIClass.RESTRICTED, description="Why the employment ended.")
    manager_id: uuid.UUID | None = Field(default=None, description="Hub id of the line manager (Employee).")
    dotted_line_manager_ids: list[uuid.UUID] = Field(
        default_factory=list, description="Hub ids of dotted-line managers (Employee)."
    )
    legal_entity_id: uuid.UUID | None = Field(
        default=None, description="Hub id of the employing LegalEntity."
    )
    primary_org_unit_id: uuid.UUID | None = Field(default=None, description="Hub id of the main OrgUnit.")
    org_unit_ids: list[uuid.UUID] = Field(default_factory=list, description="Hub ids of every OrgUnit.")
    cost_center_id: uuid.UUID | None = Field(default=None, description="Hub id of the cost-centre OrgUnit.")
    work_location_id: uuid.UUID | None = Field(default=None, description="Hub id of the work Location.")
    job_title: str | None = Field(default=None, description="Job title (职位).")
    job_level: str | None = Field(default=None, description="Job level or grade (职级).")
    job_family: str | None = Field(default=None, description="Job family (职族/序列).")
    pay_group: str | None = Field(default=None, description="Payroll pay group (薪资组).")


class EmploymentRecord(CanonicalModel):
    """One period in an employee's position history (hire, transfer, promotion)."""

    employee_id: uuid.UUID | None = Field(
        default=None, description="Hub id of the Employee (set once linked)."
    )
    effective_date: date | None = Field(default=None, description="First day the record applies.")
    end_date: date | None = Field(
        default=None, description="Last day the record applies; empty while current."
    )
    job_title: str | None = Field(default=None, description="Job title in this period.")
    job_level: str | None = Field(default=None, description="Job level in this period.")
    org_unit_id: uuid.UUID | None = Field(default=None, description="Hub id of the OrgUnit.")
    location_id: uuid.UUID | None = Field(default=None, description="Hub id of the work Location.")
    manager_id: uuid.UUID | None = Field(default=None, description="Hub id of the line manager (Employee).")
    employee_category: Coded[EmployeeCategory] | None = Field(
        default=None, description="Kind of relationship."
    )
    assignment_reason: Coded[AssignmentReason] | None = Field(
        default=None, description="Why the period starts."
    )
    fte_ratio: Decimal | None = Field(default=None, ge=0, le=1, description="Full-time equivalent, 0 to 1.")
    is_primary: bool | None = Field(default=None, description="True for the primary position.")

    @model_validator(mode="after")
    def _dates(self) -> EmploymentRecord:
        check_order(self, ("effective_date", "end_date"))
        return self


class Compensation(CanonicalModel):
    """An employee's pay from a date on."""

    employee_id: uuid.UUID | None = Field(
        default=None, description="Hub id of the Employee (set once linked)."
    )
    employment_record_id: uuid.UUID | None = Field(
        default=None, description="Hub id of the EmploymentRecord."
    )
    effective_date: date | None = Field(default=None, description="First day the pay applies.")
    end_date: date | None = Field(default=None, description="Last day the pay applies.")
    amount: Money = pii(PIIClass.ENCRYPT, "money", default=..., description="Pay rate per pay period.")
    pay_period: Coded[PayPeriod] | None = Field(default=None, description="The period the rate is for.")
    pay_frequency: Coded[PayFrequency] | None = Field(default=None, description="How often pay is run.")
    components: list[PayComponent] = pii(
        PIIClass.ENCRYPT, "money", default_factory=list, description="Breakdown of the pay."
    )
    probation_pay_ratio: Decimal | None = pii(
        PIIClass.ENCRYPT,
        "money",
        ge=0,
        le=1,
        description="Share of the pay during probation (试用期工资比例).",
    )
    source: str | None = Field(default=None, description="System the figures come from.")

    @model_validator(mode="after")
    def _dates(self) -> Compensation:
        check_order(self, ("effective_date", "end_date"))
        return self


class SocialInsuranceProfile(CanonicalModel):
    """Social insurance and housing fund (社保/公积金) set-up of an employee."""

    employee_id: uuid.UUID | None = Field(
        default=None, description="Hub id of the Employee (set once linked)."
    )
    city_region_code: RegionCode | None = Field(
        default=None, description="Insured city, GB/T 2260 (参保城市)."
    )
    si_account_no: str | None = pii(
        PIIClass.ENCRYPT_INDEX, "id_number", description="Personal social insurance number (个人社保账号)."
    )
    hf_account_no: str | None = pii(
        PIIClass.ENCRYPT_INDEX, "id_number", description="Personal housing fund number (个人公积金账号)."
    )
    hukou_residence_type: Coded[HukouType] | None = pii(
        PIIClass.ENCRYPT, "text", description="Hukou type, which decides the contribution scheme."
    )
    si_base: Money | None = pii(
        PIIClass.ENCRYPT, "money", description="Social insurance contribution base (社保基数)."
    )
    hf_base: Money | None = pii(
        PIIClass.ENCRYPT, "money", description="Housing fund contribution base (公积金基数)."
    )
    hf_rate: Decimal | None = Field(default=None, ge=0, le=1, description="Housing fund rate, e.g. 0.12.")
    start_month: Month | None = Field(
        default=None, description="First month covered (stored as its first day)."
    )
    end_month: Month | None = Field(default=None, description="Last month covered (stored as its first day).")
    status: Coded[SocialInsuranceStatus] | None = Field(default=None, description="Enrolment status.")
    vendor: str | None = Field(default=None, description="Agency paying on the employer's behalf (代缴).")

    @model_validator(mode="after")
    def _months(self) -> SocialInsuranceProfile:
        check_order(self, ("start_month", "end_month"))
        return self


class PayrollEnrollment(CanonicalModel):
    """An employee's enrolment in a payroll system."""

    employee_id: uuid.UUID | None = Field(
        default=None, description="Hub id of the Employee (set once linked)."
    )
    payroll_connector: str | None = Field(
        default=None, description="hub.toml connector of the payroll system."
    )
    pay_group: str | None = Field(default=None, description="Pay group (薪资组).")
    bank_account_id: uuid.UUID | None = Field(default=None, description="Hub id of the salary BankAccount.")
    tax_resident: bool | None = Field(default=None, description="True for a PRC tax resident.")
    tax_id: str | None = pii(
        PIIClass.ENCRYPT_INDEX, "id_number", description="Taxpayer id (the ID number for residents)."
    )
    special_deductions_declared: bool | None = pii(
        PIIClass.ENCRYPT, "text", description="专项附加扣除 declared (details stay in payroll)."
    )
    effective_date: date | None = Field(default=None, description="First pay date covered.")
    end_date: date | None = Field(default=None, description="Last pay date covered.")

    @model_validator(mode="after")
    def _dates(self) -> PayrollEnrollment:
        check_order(self, ("effective_date", "end_date"))
        return self
