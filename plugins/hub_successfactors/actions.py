"""The onboarding action ``successfactors.hire``: the new hire in Employee Central, once.

::

    [onboarding]
    tasks = [
      { name = "create_hr_record", action = "sql.upsert_employee", connector = "hr_master" },
      { name = "hire_in_sf", action = "successfactors.hire", connector = "sf",
        options = { job_code = "ENG1" } },
    ]

What a hire writes, in one ``POST /odata/v2/upsert`` (rows in the documented order, each checked):
``PerPerson(personIdExternal)``, ``EmpEmployment(personIdExternal, userId, startDate)``,
``EmpJob(seqNumber=1, startDate, userId)`` with ``company``, ``eventReason`` (``HIRNEW``),
``jobCode``, ``department``, ``businessUnit``, ``location``, ``jobTitle``, ``managerId``,
``PerPersonal(personIdExternal, startDate)`` with ``firstName``/``lastName``, and
``PerEmail(emailType, personIdExternal)`` with the address. Only what these entities need goes
to SuccessFactors: no ID number, phone, bank account or salary.

The ``userId`` (= ``personIdExternal``) comes from ``[connectors.X.config.hire] user_id_template``
(``{employee_no}`` by default) over the employee number: the case's ``employee_no`` /
``employee_number`` / ``job_number``, else the one an earlier task of the case returned (the
HR master record of ``sql.upsert_employee``), else ``hub`` + 20 characters of the task's
idempotency key. Every attempt of the task therefore names the same records, which makes the
hire exactly-once without an idempotency token:

- ``find`` looks the employment up first (``EmpEmployment?$filter=personIdExternal eq .. and
  userId eq ..``): after a lost answer the hire is recovered, and upserted again to complete
  it (a hire whose EmpJob row failed is finished by the retry);
- the upsert itself is idempotent by key: sent twice it updates the records the first one
  wrote (``editStatus`` UPDATED), never a second person.

Undo (``hub onboarding cancel``) terminates the employment: an ``EmpEmploymentTermination``
upsert with ``endDate`` = the hire's start date and ``eventReason`` =
``hire.termination_event_reason`` (``TERNOSHOW`` by default; event reasons are the customer's
``FOEventReason`` codes). The termination is keyed by its end date too, so undoing twice is
harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar

from hub.onboarding import ActionContext, ActionFailed, ExternalRef, OnboardingAction, Outcome
from hub.transforms.text import split_one_name
from hub.vendor_http import VendorError
from hub_successfactors.client import (
    SuccessFactorsClient,
    SuccessFactorsSettings,
    UpsertEntry,
    odata_date,
    parse_odata_date,
    quote,
)
from hub_successfactors.saml import AssertionKeyError

log = logging.getLogger("hub.successfactors")

EMPLOYMENT_KIND = "successfactors_employment"
#: case fields holding the employee number, in order of preference
EMPLOYEE_NO_FIELDS = ("employee_no", "employee_number", "job_number")


def _text(case: Mapping[str, Any], *names: str) -> str:
    for name in names:
        value = case.get(name)
        if value not in (None, ""):
            return str(value).strip()
    return ""


@contextmanager
def vendor_failures() -> Iterator[None]:
    """A client error as the runner's outcome: transient ones retried, refusals to an operator."""
    try:
        yield
    except VendorError as exc:
        raise ActionFailed(str(exc), permanent=not exc.retryable, retry_after=exc.retry_after) from None
    except AssertionKeyError as exc:
        raise ActionFailed(f"the successfactors connector is misconfigured: {exc}", permanent=True) from None


@dataclass(frozen=True)
class NewHire:
    """The case in SuccessFactors' terms (personal data: never log it)."""

    employee_no: str
    user_id: str
    start: date
    family_name: str
    given_name: str
    email: str
    department: str
    job_code: str
    job_title: str
    manager_user_id: str


def employee_no_of(ctx: ActionContext) -> str:
    """The case's employee number, else the one an earlier task of the case returned, else ""."""
    found = _text(ctx.case, *EMPLOYEE_NO_FIELDS)
    if found:
        return found
    for result in ctx.results.values():
        value = _text(result.data, "employee_no")
        if value:
            return value
    return ""


def user_id_for(settings: SuccessFactorsSettings, employee_no: str, idempotency_key: str) -> str:
    """The hire's ``userId`` (also its ``personIdExternal``): the template over the employee number."""
    fallback = "hub" + idempotency_key.replace("-", "")[:20]
    if not employee_no and "{employee_no}" in settings.user_id_template:
        return fallback
    try:
        value = settings.user_id_template.format(employee_no=employee_no, key=idempotency_key)
    except (KeyError, IndexError, ValueError):
        raise ActionFailed("hire.user_id_template is malformed", permanent=True) from None
    if not value or len(value) > 100:
        raise ActionFailed("the derived userId is empty or longer than 100 characters", permanent=True)
    return value


def hire_of(ctx: ActionContext, settings: SuccessFactorsSettings) -> NewHire:
    """Read the case (``ActionFailed`` naming the missing field, never its value)."""
    case, options = ctx.case, ctx.options
    raw_start = _text(case, "start_date", "hire_date")
    try:
        start = date.fromisoformat(raw_start[:10])
    except ValueError:
        raise ActionFailed("the case has no valid start_date (YYYY-MM-DD)", permanent=True) from None
    family = _text(case, "legal_family_name", "family_name")
    given = _text(case, "legal_given_name", "given_name")
    if not family:
        whole = _text(case, "name", "full_name", "legal_name")
        split_family, split_given = split_one_name(whole) if whole else (None, None)
        family, given = split_family or "", given or split_given or ""
    if not family:
        raise ActionFailed("the case has no name (PerPersonal needs lastName)", permanent=True)
    department = _text(options, "department") or _text(case, "department_code", "department")
    if department and settings.department_map:
        if department not in settings.department_map:
            raise ActionFailed(
                f"department {department!r} has no SuccessFactors code in hire.department_map", permanent=True
            )
        department = settings.department_map[department]
    employee_no = employee_no_of(ctx)
    return NewHire(
        employee_no=employee_no,
        user_id=user_id_for(settings, employee_no, ctx.idempotency_key),
        start=start,
        family_name=family,
        given_name=given or family,
        email=_text(case, "work_email", "email"),
        department=department,
        job_code=_text(options, "job_code") or _text(case, "job_code") or settings.job_code,
        job_title=_text(case, "job_title", "title"),
        manager_user_id=_text(options, "manager_user_id") or _text(case, "manager_user_id"),
    )


def hire_entries(hire: NewHire, settings: SuccessFactorsSettings) -> list[UpsertEntry]:
    """The records of a hire, parents first (each row's parent must exist when it is written)."""
    start = odata_date(hire.start)
    person = hire.user_id
    job = {
        "userId": hire.user_id,
        "startDate": start,
        "seqNumber": 1,
        "eventReason": settings.hire_event_reason,
        "company": settings.company,
        "jobCode": hire.job_code,
        "department": hire.department,
        "businessUnit": settings.business_unit,
        "location": settings.location,
        "jobTitle": hire.job_title,
        "managerId": hire.manager_user_id,
    }
    entries = [
        UpsertEntry("PerPerson", {"personIdExternal": person}),
        UpsertEntry(
            "EmpEmployment", {"personIdExternal": person, "userId": hire.user_id, "startDate": start}
        ),
        UpsertEntry("EmpJob", {k: v for k, v in job.items() if v not in ("", None)}),
        UpsertEntry(
            "PerPersonal",
            {
                "personIdExternal": person,
                "startDate": start,
                "firstName": hire.given_name,
                "lastName": hire.family_name,
            },
        ),
    ]
    if hire.email:
        entries.append(
            UpsertEntry(
                "PerEmail",
                {
                    "personIdExternal": person,
                    "emailType": settings.email_type,
                    "emailAddress": hire.email,
                    "isPrimary": True,
                },
            )
        )
    return entries


class Hire(OnboardingAction):
    """Hire the case's person in Employee Central (PerPerson, EmpEmployment, EmpJob, PerPersonal,
    PerEmail), exactly once; undo terminates the employment."""

    name: ClassVar[str] = "successfactors.hire"
    description: ClassVar[str] = (
        "hire in SuccessFactors EC (one upsert, keyed by the userId from the employee number)"
    )

    def client_of(self, ctx: ActionContext) -> SuccessFactorsClient:
        try:
            return SuccessFactorsClient.from_config(ctx.config)
        except (KeyError, TypeError, ValueError) as exc:
            raise ActionFailed(
                f"the successfactors connector is misconfigured ({type(exc).__name__})", permanent=True
            ) from None

    def find(self, ctx: ActionContext) -> ExternalRef | None:
        client = self.client_of(ctx)
        hire = hire_of(ctx, client.settings)
        with vendor_failures():
            found = client.employment(hire.user_id, hire.user_id)
        return ExternalRef(hire.user_id, EMPLOYMENT_KIND) if found is not None else None

    def recovered(self, ctx: ActionContext, ref: ExternalRef) -> Outcome:
        # The employment exists (a lost answer, or a hire whose later rows failed): upsert the
        # same keys again, which completes it and changes nothing else.
        return self.perform(ctx)

    def perform(self, ctx: ActionContext) -> Outcome:
        client = self.client_of(ctx)
        hire = hire_of(ctx, client.settings)
        with vendor_failures():
            rows = client.upsert(hire_entries(hire, client.settings), operation="hire")
        log.info(
            "SuccessFactors hire upserted: %s",
            ", ".join(f"{r.entity} {r.edit_status or r.status}" for r in rows),
        )
        return Outcome.done(
            ExternalRef(hire.user_id, EMPLOYMENT_KIND),
            {
                "successfactors_user_id": hire.user_id,
                "person_id_external": hire.user_id,
                "employee_no": hire.employee_no,
            },
        )

    def undo(self, ctx: ActionContext) -> None:
        """Terminate the hire's employment on its start date (a cancelled hire, a no-show)."""
        if ctx.ref is None:
            return
        client = self.client_of(ctx)
        user_id = ctx.ref.id
        with vendor_failures():
            found = client.query("EmpEmployment", filter=f"userId eq {quote(user_id)}")
            if not found:
                return  # nothing was hired
            employment = found[0]
            start = parse_odata_date(employment.get("startDate"))
            if start is None:
                raise ActionFailed("the employment has no start date to terminate on", permanent=True)
            client.upsert(
                [
                    UpsertEntry(
                        "EmpEmploymentTermination",
                        {
                            "personIdExternal": str(employment.get("personIdExternal") or user_id),
                            "userId": user_id,
                            "endDate": odata_date(start.date()),
                            "eventReason": client.settings.termination_event_reason,
                        },
                    )
                ],
                operation="terminate",
            )


ACTIONS: tuple[OnboardingAction, ...] = (Hire(),)
