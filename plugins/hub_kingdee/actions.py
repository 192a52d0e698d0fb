"""``kingdee.enrol_payroll``: the hire as an audited Kingdee employee, exactly once.

::

    [onboarding]
    tasks = [
      { name = "create_hr_record", action = "sql.upsert_employee", connector = "hr_master" },
      { name = "enrol_payroll", action = "kingdee.enrol_payroll", connector = "kingdee",
        after = ["create_hr_record"], options = { employee_number_from = "create_hr_record" } },
    ]

The employee's number (``FNumber``) is hub's employee number: from the data of the task named
by ``employee_number_from`` (or, without it, of any earlier task), keys ``employee_number``,
``employee_no`` or ``job_number``, else the case's fields of those names, else that task's
reference id. Its name is the case's ``name``; the other fields come from the case through the
connector's ``employee.fields`` map (``department = "FDeptId.FNumber"``, ``bank_account =
"F_PAY_BankAccount"``, ``salary.amount = "F_PAY_Salary"``), since each customer's form differs.

Kingdee has no idempotency token, so the number is the key: before saving, the action looks the
number up (``ExecuteBillQuery``). A record found there is never saved again: one that is saved
but not submitted is submitted, a submitted one audited, an audited one is done. So an attempt
that died (or lost Kingdee's answer) between Save and Audit resumes where it stopped. Undo (``hub
onboarding cancel``) un-audits and deletes the employee, or with ``employee.undo = "forbid"``
disables an audited one (payroll records may already point at it).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar

import orjson

from hub.onboarding import (
    ActionContext,
    ActionFailed,
    ExternalRef,
    OnboardingAction,
    Outcome,
    UndoNotSupported,
)
from hub.vendor_http import OutcomeUnknown, VendorError
from hub_kingdee.client import (
    AUDITED,
    CREATED,
    DRAFT,
    REAUDIT,
    SUBMITTED,
    BillState,
    EmployeeForm,
    KingdeeClient,
)

EMPLOYEE_KIND = "kingdee_employee"
#: where hub's employee number may be, in a task's data and in the case
NUMBER_KEYS = ("employee_number", "employee_no", "job_number")
NAME_KEYS = ("name", "full_name", "legal_name")
#: Save, Submit, Audit and a recovery read after each: more steps than that is a loop
MAX_STEPS = 6
#: one client (one Kingdee session) per connector config, by a digest of the config (it holds
#: secrets: only in memory); Kingdee keeps a server-side context per session, so fewer is better
_CLIENTS: dict[str, KingdeeClient] = {}
_CLIENTS_LOCK = threading.Lock()


@contextmanager
def vendor_failures() -> Iterator[None]:
    """Kingdee's errors as the runner's outcome: transient ones retried, refusals to an operator."""
    try:
        yield
    except VendorError as exc:
        raise ActionFailed(str(exc), permanent=not exc.retryable, retry_after=exc.retry_after) from None


def case_value(case: Mapping[str, Any], path: str) -> Any:
    """The case's value at ``path`` (``salary.amount``: a field of a nested object), or ``None``."""
    node: Any = case
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def scalar(value: Any, hub_field: str) -> Any:
    """A case value as Kingdee takes it: text, a number, a date as ISO text."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str | int | float | bool):
        return value.strip() if isinstance(value, str) else value
    raise ActionFailed(f"the case's {hub_field} is not a single value; map one of its fields", permanent=True)


@dataclass(frozen=True)
class Hire:
    """The employee hub writes: its number, and the Save model (personal data: never log it)."""

    number: str
    model: dict[str, Any]

    def __repr__(self) -> str:
        return f"Hire(number={self.number!r}, model=<{len(self.model)} field(s)>)"


def employee_number(ctx: ActionContext) -> str:
    """hub's employee number for this hire (see the module docstring for where it is looked for)."""
    source = str(ctx.options.get("employee_number_from") or "")
    if source and source not in ctx.results:
        raise ActionFailed(f"employee_number_from names {source!r}, which has not finished", permanent=True)
    results = [ctx.results[source]] if source else list(ctx.results.values())
    for result in results:
        for key in NUMBER_KEYS:
            value = result.data.get(key)
            if value not in (None, ""):
                return str(value).strip()
    for key in NUMBER_KEYS:
        value = ctx.case.get(key)
        if value not in (None, ""):
            return str(value).strip()
    ref = ctx.results[source].ref if source else None
    if ref is not None:
        return ref.id
    raise ActionFailed("no employee number: neither an earlier task nor the case has one", permanent=True)


def case_name(ctx: ActionContext) -> str:
    """The hire's name in the case ("" if it has none)."""
    return next((str(ctx.case[k]).strip() for k in NAME_KEYS if ctx.case.get(k)), "")


def hire_of(ctx: ActionContext, form: EmployeeForm) -> Hire:
    """The Save model of this case's employee."""
    number = employee_number(ctx)
    name = case_name(ctx)
    if not name:
        raise ActionFailed("the case has no name for the Kingdee employee", permanent=True)
    values: dict[str, Any] = {}
    for hub_field in form.fields:
        value = case_value(ctx.case, hub_field)
        if value not in (None, ""):
            values[hub_field] = scalar(value, hub_field)
    missing = [f for f in form.required if f not in values]
    if missing:
        raise ActionFailed(f"the case has no {', '.join(missing)} (required for payroll)", permanent=True)
    try:
        model = form.model(number, name, values)
    except ValueError as exc:
        raise ActionFailed(f"employee.fields: {exc}", permanent=True) from None
    return Hire(number, model)


class EnrolPayroll(OnboardingAction):
    """Save the hire as a Kingdee employee, submit and audit it; resume where a lost attempt stopped."""

    name: ClassVar[str] = "kingdee.enrol_payroll"
    description: ClassVar[str] = (
        "save, submit and audit the hire's Kingdee employee (BD_Empinfo); found by number first"
    )

    def client_of(self, ctx: ActionContext) -> KingdeeClient:
        """The client for the connector's config, shared by attempts so its session is reused."""
        try:
            key = hashlib.sha256(
                orjson.dumps(dict(ctx.config), option=orjson.OPT_SORT_KEYS, default=str)
            ).hexdigest()
            with _CLIENTS_LOCK:
                client = _CLIENTS.get(key)
                if client is None:
                    client = _CLIENTS[key] = KingdeeClient.from_config(ctx.config)
            return client
        except (KeyError, TypeError, ValueError) as exc:
            raise ActionFailed(f"the kingdee connector is misconfigured ({exc})", permanent=True) from None

    def find(self, ctx: ActionContext) -> ExternalRef | None:
        client = self.client_of(ctx)
        with vendor_failures():
            state = client.find_employee(employee_number(ctx))
        return ExternalRef(str(state.id), EMPLOYEE_KIND) if state is not None else None

    def recovered(self, ctx: ActionContext, ref: ExternalRef) -> Outcome:
        """An earlier attempt (or a person) saved it: finish it (submit, audit), never save again."""
        client = self.client_of(ctx)
        form = client.settings.employee
        with vendor_failures():
            state = client.employee_by_id(int(ref.id))
        if state is None:  # deleted since find(): start over
            return self.perform(ctx)
        return self.finish(client, form, state, case_name(ctx))

    def perform(self, ctx: ActionContext) -> Outcome:
        client = self.client_of(ctx)
        form = client.settings.employee
        hire = hire_of(ctx, form)
        with vendor_failures():
            state = client.find_employee(hire.number)
            if state is None:
                state = self.save(client, hire)
        return self.finish(client, form, state, case_name(ctx))

    def save(self, client: KingdeeClient, hire: Hire) -> BillState:
        """Save the new employee; after a lost answer, whatever Kingdee holds under the number."""
        try:
            fid, _ = client.save(client.settings.employee.form_id, hire.model)
        except OutcomeUnknown:
            found = client.find_employee(hire.number)
            if found is None:  # it never arrived: the next attempt saves it
                raise ActionFailed(
                    "Kingdee's answer to Save was lost and nothing was saved; retrying"
                ) from None
            return found
        return client.employee_by_id(fid) or BillState(fid, hire.number, CREATED)

    def finish(self, client: KingdeeClient, form: EmployeeForm, state: BillState, name: str) -> Outcome:
        """Submit and audit from wherever the record stands, reading its status after each step.

        A record under the number with another name is someone else's: hub does not adopt it.
        """
        if state.name and name and state.name.strip() != name:
            return Outcome.failed(
                f"Kingdee employee {state.number} has another name than the hire: "
                "the employee number is taken; check it in Kingdee and in hub"
            )
        for _ in range(MAX_STEPS):
            if state.status == AUDITED:
                if state.forbidden:
                    return Outcome.failed(
                        f"Kingdee employee {state.number} is audited but disabled (FForbidStatus B): enable it there"
                    )
                ref = ExternalRef(str(state.id), EMPLOYEE_KIND)
                return Outcome.done(
                    ref, {"kingdee_employee_id": state.id, "kingdee_employee_number": state.number}
                )
            if state.status == DRAFT:
                return Outcome.failed(
                    f"Kingdee employee {state.number} is a draft (FDocumentStatus Z): save or delete it there"
                )
            step = (
                "Submit"
                if state.status in (CREATED, REAUDIT)
                else "Audit"
                if state.status == SUBMITTED
                else ""
            )
            if not step:
                return Outcome.failed(
                    f"Kingdee employee {state.number} has an unknown status {state.status!r}"
                )
            with vendor_failures():
                with suppress(OutcomeUnknown):  # it may have happened: the status read next says
                    client.operate(step, form.form_id, [state.id])
                current = client.employee_by_id(state.id)
            if current is None:
                raise ActionFailed(f"Kingdee employee {state.number} disappeared during {step}")
            state = current
        raise ActionFailed(f"Kingdee employee {state.number} did not reach audited (status {state.status})")

    def undo(self, ctx: ActionContext) -> None:
        """Un-audit and delete the employee (or disable it, ``employee.undo = "forbid"``); twice is harmless."""
        if ctx.ref is None:
            return
        client = self.client_of(ctx)
        form = client.settings.employee
        if form.undo == "none":
            raise UndoNotSupported(
                "kingdee.enrol_payroll: employee.undo is none; remove the employee in Kingdee"
            )
        with vendor_failures():
            state = client.employee_by_id(int(ctx.ref.id))
            if state is None:
                return
            if form.undo == "forbid" and state.status == AUDITED:
                if not state.forbidden:
                    client.execute_operation("Forbid", form.form_id, [state.id])
                return
            if state.status == AUDITED:
                client.operate("UnAudit", form.form_id, [state.id])
            elif state.status == SUBMITTED:
                client.operate("CancelAssign", form.form_id, [state.id])
            client.operate("Delete", form.form_id, [state.id])


ACTIONS: tuple[OnboardingAction, ...] = (EnrolPayroll(),)
