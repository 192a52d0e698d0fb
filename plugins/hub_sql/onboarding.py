"""The onboarding actions over the HR master database: ``sql.upsert_employee`` writes the new hire
once, ``sql.mark_contract_signed`` records the signed labour contract and activates the employee.

::

    [connectors.hr_master]
    plugin = "sql"                      # encrypt_pii = true by default (see below)
    [connectors.hr_master.config]
    url = "postgresql+psycopg://hub@hr-db/hr"
    password = { env = "HR_MASTER_DB_PASSWORD" }

    [onboarding]
    tasks = [
      { name = "create_hr_record", action = "sql.upsert_employee", connector = "hr_master",
        options = { employee_no_prefix = "H" } },
    ]

It writes the hire into the HR master schema hub ships (``schemas/hr_master/*.sql``,
docs/hr_master.md): one ``employees`` row and its first ``contracts`` row, in one transaction.

**Exactly once.** The employee is keyed by ``employee_no`` (unique in the schema): the case's
``employee_no`` / ``employee_number`` / ``job_number``, or, when the case has none, one derived
from the case id: ``<employee_no_prefix><10 digits of uuid5(case id)>`` (``H4821930075``), the
same for every attempt of the case, ever. The row records the case that created it
(``source_ref``). ``find`` looks the number up before every attempt, and the write itself
selects the row ``FOR UPDATE`` and updates it when it is there, inserts it otherwise (a
concurrent insert of the same number loses on the unique key and is retried as an update):
a retry after a crash, a lost commit acknowledgement or a lapsed claim finds the row the first
attempt committed and never inserts a second. A row with that number made by someone else
(another case, an import, a rehire keeping the old number) is refused, for an operator,
unless ``options.adopt_existing = true``. The contract is keyed the same way by
``contract_no`` (the case's ``contract_number``, else ``<employee_no>-C01``).

**Personal data.** With the connector's ``encrypt_pii = true`` (the default), ``id_number``,
``mobile``, ``personal_email``, ``bank_account`` and ``salary`` are written as ``hub1.``
ciphertexts exactly as the ``sql`` destination writes a sync's personal columns
(:mod:`hub.pii`): sealed with the data key of their class, bound to ``("<connector>/employees",
column, employee_no)``, with a ``<column>_bidx`` blind index for ID numbers, phones, e-mails and
bank accounts (open one with ``hub.pii.open_destination_value(keyring, connector, "employees",
column, employee_no, value)``). A value that did not change keeps its ciphertext. With
``encrypt_pii = false`` they are written in clear, for an HR master whose own application must
read them (its database then holds them in clear: protect it accordingly).

**Undo** (``hub onboarding cancel``) sets the employee's ``status`` to ``cancelled`` and its
draft contracts' too (never deletes: the HR master keeps the record), only on the row this case
created; twice is harmless.

``options``: ``employee_no_prefix`` (``H``), ``status`` (``pre_hire``: the first status of a
new row), ``contract`` (``true``: write the contract row), ``contract_type`` (the default when
the case has none: ``FIXED_TERM``), ``department`` / ``position`` / ``manager`` (codes that
override the case's ``department``, ``position_code``, ``manager_employee_no``),
``adopt_existing``, and ``columns = { employees = { mobile = "phone" } }`` for a schema whose
columns are named differently. Tables are the connector's ``tables`` (``employees``,
``contracts``, ``departments``, ``positions``); a column the table lacks is not written.

**sql.mark_contract_signed** runs after the e-contract task (``esign.send_contract``,
``docusign.send_contract``) is done, i.e. signed. It reads the employee and contract numbers
from the ``sql.upsert_employee`` task's result (``options.hr_task``, ``create_hr_record``) and
the signed contract from the e-contract task's (``options.contract_task``, ``send_contract``:
:func:`hub_esign.econtract.archived_contract`), and in one transaction, on the rows this case
wrote only (``source_ref``): the contract becomes ``signed`` with ``signed_at``,
``document_sha256`` (the archived signed file's) and ``econtract_ref`` (the sign flow or
envelope id) where the table has those columns, and the employee goes from ``pre_hire`` to
``active``. Running it again changes nothing (a value already there is kept, ``updated_at``
too); a contract recorded signed with another document, or no longer a draft (cancelled,
terminated), and an employee cancelled meanwhile are refused for an operator. A signed contract
cannot be undone (``cancel`` lists it: end it in the HR master).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, TypeVar

from hub_esign.econtract import archived_contract
from sqlalchemy import Connection, Engine, MetaData, RowMapping, Table, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, NoSuchTableError, OperationalError

from hub.contracts.law import ContractRuleError, check_probation, term_end
from hub.crypto import CLASS_OF_KIND, INDEXED_KINDS, Keyring
from hub.crypto.keyring import DecryptionError
from hub.onboarding import ActionContext, ActionFailed, ExternalRef, OnboardingAction, Outcome, TaskResult
from hub.onboarding.actions import UndoNotSupported
from hub.pii import BIDX_SUFFIX, destination_table
from hub.retry import is_transient
from hub.schema.contract import ContractType
from hub_sql.common import engine_for, safe_error, table_name

log = logging.getLogger("hub.sql.onboarding")

T = TypeVar("T")

EMPLOYEE_KIND = "hr_master_employee"
CONTRACT_KIND = "hr_master_contract"
#: uuid5 namespace of employee numbers derived from case ids (fixed: the numbers must never change)
EMPLOYEE_NO_NAMESPACE = uuid.UUID("6f1d9a52-3c1e-5d8b-9a57-2b7c4e0f8d13")
#: case fields holding the employee number, in order of preference
EMPLOYEE_NO_FIELDS = ("employee_no", "employee_number", "job_number")
#: employees columns holding personal data, and their kind (hub.crypto CLASS_OF_KIND)
PERSONAL_COLUMNS = {
    "id_number": "id_number",
    "mobile": "phone",
    "personal_email": "email",
    "bank_account": "bank_account",
    "salary": "money",
}
STATUSES = ("pre_hire", "active", "on_leave", "terminated", "cancelled")
GENDERS = {"男": "MALE", "女": "FEMALE", "M": "MALE", "F": "FEMALE"}
#: write attempts of one perform (a lost insert race, a deadlock) before giving up
WRITE_ATTEMPTS = 3
#: contract statuses that already mean signed (the HR master may have moved it on to active)
SIGNED_STATUSES = ("signed", "active")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def derived_employee_no(case_id: str, prefix: str = "H") -> str:
    """The employee number of a case that has none: ``prefix`` + 10 digits of uuid5(case id).

    Deterministic (every attempt, every runner, every release gives the same number) and spread
    evenly; a collision with an existing number is caught by the ``source_ref`` check.
    """
    return f"{prefix}{uuid.uuid5(EMPLOYEE_NO_NAMESPACE, case_id).int % 10**10:010d}"


def _text(source: Mapping[str, Any], *names: str) -> str:
    """The first non-empty of ``names`` as text (a canonical ``Coded`` value as its code)."""
    for name in names:
        value = source.get(name)
        if isinstance(value, Mapping) and "value" in value:
            value = value["value"]
        if value not in (None, ""):
            return str(value).strip()
    return ""


def _integer(case: Mapping[str, Any], name: str) -> int | None:
    value = case.get(name)
    if value in (None, ""):
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        raise ActionFailed(f"the case's {name} is not a whole number", permanent=True) from None


def money_of(value: Any) -> tuple[str, str] | None:
    """(amount, currency) of a salary: ``38765.43``, ``{"amount": "..", "currency": ".."}``, or an
    offer's pay terms ``{"amount": {"amount", "currency"}, "pay_period": ...}``."""
    currency = "CNY"
    if isinstance(value, Mapping):
        inner = value.get("amount")
        if isinstance(inner, Mapping):
            value, currency = inner.get("amount"), str(inner.get("currency") or currency)
        else:
            value, currency = inner, str(value.get("currency") or currency)
    if value in (None, ""):
        return None
    try:
        amount = Decimal(str(value).replace(",", "").strip())
    except InvalidOperation:
        raise ActionFailed("the case's salary is not an amount", permanent=True) from None
    return format(amount, "f"), currency.upper()[:3]


@dataclass
class HirePlan:
    """What one attempt writes: the employee's columns and the contract's (personal data!)."""

    employee_no: str
    case_ref: str
    employee: dict[str, Any]
    personal: dict[str, str]
    department: str
    position: str
    manager: str
    contract_no: str
    contract: dict[str, Any] | None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # personal data: never in a log line or a traceback
        return f"HirePlan(employee_no={self.employee_no!r}, contract_no={self.contract_no!r})"


def employee_no_of(ctx: ActionContext) -> str:
    """The case's employee number, else the derived one (``employee_no_prefix``)."""
    found = _text(ctx.case, *EMPLOYEE_NO_FIELDS)
    if found:
        if len(found) > 32:
            raise ActionFailed("the case's employee number is longer than 32 characters", permanent=True)
        return found
    return derived_employee_no(ctx.case_id, str(ctx.options.get("employee_no_prefix") or "H"))


def plan_of(ctx: ActionContext) -> HirePlan:
    """Read the case into rows (``ActionFailed`` naming the field, never its value)."""
    case, options = ctx.case, ctx.options
    employee_no = employee_no_of(ctx)
    name = _text(case, "name", "full_name", "legal_name") or (
        _text(case, "legal_family_name", "family_name") + _text(case, "legal_given_name", "given_name")
    )
    if not name:
        raise ActionFailed("the case has no name for the HR master record", permanent=True)
    raw_start = _text(case, "start_date", "hire_date")
    try:
        start = date.fromisoformat(raw_start[:10])
    except ValueError:
        raise ActionFailed("the case has no valid start_date (YYYY-MM-DD)", permanent=True) from None
    status = str(options.get("status") or "pre_hire")
    if status not in STATUSES:
        raise ActionFailed(f"options.status must be one of {', '.join(STATUSES)}", permanent=True)
    gender = _text(case, "gender").upper()
    personal = {
        "id_number": _text(case, "id_number").upper(),
        "mobile": _text(case, "mobile", "phone"),
        "personal_email": _text(case, "personal_email", "email"),
        "bank_account": _text(case, "bank_account").replace(" ", ""),
    }
    salary = money_of(case.get("salary") if case.get("salary") not in (None, "") else case.get("base_salary"))
    if salary is not None:
        personal["salary"] = salary[0]
    employee = {
        "employee_no": employee_no,
        "name": name,
        "gender": GENDERS.get(gender, gender) or None,
        "work_email": _text(case, "work_email") or None,
        "bank_name": _text(case, "bank_name") or None,
        "salary_currency": salary[1] if salary else None,
        "job_title": _text(case, "job_title", "title") or None,
        "job_level": _text(case, "job_level") or None,
        "employee_category": _text(case, "employee_category", "employment_type").upper() or None,
        "hire_date": start,
        "status": status,
        "source_ref": ctx.case_id,
    }
    contract_no = _text(case, "contract_number", "contract_no") or f"{employee_no}-C01"
    contract = None
    if options.get("contract", True):
        contract = contract_of(case, options, start)
    return HirePlan(
        employee_no=employee_no,
        case_ref=ctx.case_id,
        employee=employee,
        personal={k: v for k, v in personal.items() if v},
        department=_text(options, "department") or _text(case, "department_code", "department"),
        position=_text(options, "position") or _text(case, "position_code", "position"),
        manager=_text(options, "manager") or _text(case, "manager_employee_no", "manager_no"),
        contract_no=contract_no,
        contract=contract,
        options=options,
    )


def contract_of(case: Mapping[str, Any], options: Mapping[str, Any], start: date) -> dict[str, Any]:
    """The first contract's columns, its term and probation checked against 劳动合同法 art. 19."""
    raw_type = (_text(case, "contract_type") or str(options.get("contract_type") or "FIXED_TERM")).upper()
    try:
        kind = ContractType(raw_type)
    except ValueError:
        raise ActionFailed(f"unknown contract_type {raw_type!r}", permanent=True) from None
    term = _integer(case, "contract_term_months")
    if kind is ContractType.FIXED_TERM and not term:
        raise ActionFailed("a fixed-term contract needs contract_term_months", permanent=True)
    probation = _integer(case, "probation_months")
    try:
        check_probation(kind, term, probation)
    except ContractRuleError as exc:
        raise ActionFailed(f"the contract breaks the law: {exc}", permanent=True) from None
    return {
        "contract_type": kind.value,
        "seq_no": 1,
        "start_date": start,
        "end_date": term_end(start, term) if term and kind is not ContractType.OPEN_ENDED else None,
        "term_months": term if kind is not ContractType.OPEN_ENDED else None,
        "probation_months": probation or 0,
        "probation_end": term_end(start, probation) if probation else None,
        "status": "draft",
    }


# -- the database ------------------------------------------------------------------------------


@dataclass
class HrMaster:
    """The HR master's tables as the connector names them, reflected once per attempt."""

    connector: str
    config: Mapping[str, Any]
    options: Mapping[str, Any]
    engine: Engine
    tables: dict[str, Table] = field(default_factory=dict)

    def table(self, stream: str) -> Table:
        if stream not in self.tables:
            name = table_name(self.config, stream)
            try:
                self.tables[stream] = Table(
                    name, MetaData(), autoload_with=self.engine, schema=self.config.get("schema")
                )
            except NoSuchTableError:
                raise ActionFailed(
                    f"the HR master has no table {name!r} (apply schemas/hr_master/*.sql, or map it "
                    f'with the connector\'s tables = {{ {stream} = "..." }})',
                    permanent=True,
                ) from None
        return self.tables[stream]

    def column(self, stream: str, name: str) -> str:
        """The column holding ``name`` (``options.columns`` renames it)."""
        renamed = ((self.options.get("columns") or {}).get(stream) or {}).get(name)
        return str(renamed or name)

    def has(self, stream: str, name: str) -> bool:
        return self.column(stream, name) in self.table(stream).c

    def values(self, stream: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` under their column names, without the columns the table lacks."""
        table = self.table(stream)
        return {self.column(stream, k): v for k, v in values.items() if self.column(stream, k) in table.c}

    def find_id(self, conn: Connection, stream: str, key: str, value: str, what: str) -> int:
        """The id of the row whose ``key`` is ``value`` (``ActionFailed`` for an operator if none)."""
        table = self.table(stream)
        found = conn.execute(
            select(table.c[self.column(stream, "id")]).where(table.c[self.column(stream, key)] == value)
        ).first()
        if found is None:
            raise ActionFailed(f"the HR master has no {what} {value!r}", permanent=True)
        return int(found[0])


def hr_master_of(ctx: ActionContext) -> HrMaster:
    """The task's connector as an HR master (``ActionFailed`` for an operator when misconfigured)."""
    try:
        engine = engine_for(ctx.config)
    except (KeyError, TypeError, ValueError, DBAPIError) as exc:
        raise ActionFailed(
            f"the sql connector is misconfigured ({type(exc).__name__})", permanent=True
        ) from None
    return HrMaster(ctx.connector, ctx.config, ctx.options, engine)


def _with_retries(write: Callable[[], T]) -> T:
    """Run ``write`` (one transaction); a lost insert race or a deadlock runs it again."""
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            return write()
        except IntegrityError:
            if attempt == WRITE_ATTEMPTS:
                raise
            log.info("HR master write lost an insert race; retrying as an update")
        except OperationalError as exc:
            if attempt == WRITE_ATTEMPTS or not _retry_now(exc):
                raise
            log.info("HR master write hit a deadlock or a lock; retrying")
    raise AssertionError("unreachable")


def _retry_now(exc: OperationalError) -> bool:
    text = str(exc.orig if exc.orig is not None else exc).lower()
    return any(sign in text for sign in ("deadlock", "database is locked", "lock wait timeout", "1213"))


class UpsertEmployee(OnboardingAction):
    """Write the hire (employee + first contract) into the HR master database, once."""

    name: ClassVar[str] = "sql.upsert_employee"
    description: ClassVar[str] = (
        "write the hire into the HR master (employees + contracts, one transaction, keyed by employee_no)"
    )

    # -- connector and keys -----------------------------------------------------------------------

    def master(self, ctx: ActionContext) -> HrMaster:
        return hr_master_of(ctx)

    def keyring(self, ctx: ActionContext) -> Keyring | None:
        """hub's keyring when the connector encrypts personal data (the default), else None."""
        project = ctx.project
        connector = project.settings.connectors.get(ctx.connector) if project is not None else None
        if connector is not None and not connector.encrypt_pii:
            return None
        if project is None:
            raise ActionFailed("sealing personal data needs hub's project (its keys)", permanent=True)
        return project.keyring

    # -- the action ----------------------------------------------------------------------------

    def find(self, ctx: ActionContext) -> ExternalRef | None:
        plan = plan_of(ctx)
        master = self.master(ctx)
        try:
            with master.engine.connect() as conn:
                row = self._existing(conn, master, plan)
        except DBAPIError as exc:
            raise _db_failure(exc) from None
        finally:
            master.engine.dispose()
        return ExternalRef(plan.employee_no, EMPLOYEE_KIND) if row is not None else None

    def recovered(self, ctx: ActionContext, ref: ExternalRef) -> Outcome:
        # The row is there (a crash after the commit): write again, which updates it and adds
        # nothing, so the task records the same employee and contract.
        return self.perform(ctx)

    def perform(self, ctx: ActionContext) -> Outcome:
        plan = plan_of(ctx)
        master = self.master(ctx)
        keyring = self.keyring(ctx)
        try:
            employee_id = _with_retries(lambda: self._write(master, plan, keyring))
        except DBAPIError as exc:
            raise _db_failure(exc) from None
        finally:
            master.engine.dispose()
            if keyring is not None:
                keyring.flush_counters()
        data: dict[str, Any] = {"employee_no": plan.employee_no, "employee_id": employee_id}
        if plan.contract is not None:
            data["contract_no"] = plan.contract_no
        return Outcome.done(ExternalRef(plan.employee_no, EMPLOYEE_KIND), data)

    def undo(self, ctx: ActionContext) -> None:
        """Mark the employee (and its draft contracts) cancelled; never deletes. Twice is harmless."""
        employee_no = ctx.ref.id if ctx.ref is not None else employee_no_of(ctx)
        master = self.master(ctx)
        employees = master.table("employees")
        column = master.column
        now = datetime.now(UTC).replace(tzinfo=None)
        try:
            with master.engine.begin() as conn:
                condition = employees.c[column("employees", "employee_no")] == employee_no
                if master.has("employees", "source_ref"):
                    condition = condition & (employees.c[column("employees", "source_ref")] == ctx.case_id)
                found = conn.execute(select(employees.c[column("employees", "id")]).where(condition)).first()
                if found is None:
                    return  # not written, or not by this case: nothing of ours to cancel
                conn.execute(
                    update(employees)
                    .where(employees.c[column("employees", "id")] == found[0])
                    .values(master.values("employees", {"status": "cancelled", "updated_at": now}))
                )
                if master.options.get("contract", True):
                    contracts = master.table("contracts")
                    conn.execute(
                        update(contracts)
                        .where(contracts.c[column("contracts", "employee_id")] == found[0])
                        .where(contracts.c[column("contracts", "status")] == "draft")
                        .values(master.values("contracts", {"status": "cancelled", "updated_at": now}))
                    )
        except DBAPIError as exc:
            raise _db_failure(exc) from None
        finally:
            master.engine.dispose()

    # -- writing -------------------------------------------------------------------------------

    def _existing(self, conn: Connection, master: HrMaster, plan: HirePlan, lock: bool = False) -> Any:
        """The employee row of ``plan.employee_no`` (``FOR UPDATE`` with ``lock``), refused when
        another case or a person made it (unless ``adopt_existing``)."""
        employees = master.table("employees")
        column = master.column
        query = select(employees).where(employees.c[column("employees", "employee_no")] == plan.employee_no)
        row = conn.execute(query.with_for_update() if lock else query).mappings().first()
        if row is None:
            return None
        owner = row.get(column("employees", "source_ref")) if master.has("employees", "source_ref") else None
        if owner != plan.case_ref and not plan.options.get("adopt_existing"):
            raise ActionFailed(
                f"employee_no {plan.employee_no!r} already belongs to another employee in the HR master "
                "(not created by this case); give the case its own employee_no, or set "
                "options.adopt_existing = true to update that record",
                permanent=True,
            )
        return row

    def _sealed(
        self, master: HrMaster, plan: HirePlan, keyring: Keyring | None, existing: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """The personal columns as the table receives them: sealed and blind-indexed, or clear."""
        out: dict[str, Any] = {}
        place = destination_table(master.connector, "employees")
        for name, value in plan.personal.items():
            column = master.column("employees", name)
            if not master.has("employees", name):
                continue
            kind = PERSONAL_COLUMNS[name]
            if keyring is None:
                out[column] = value
                continue
            current = existing.get(column) if existing is not None else None
            if isinstance(current, str) and _opens_to(
                keyring, current, place, column, plan.employee_no, value
            ):
                out[column] = current  # unchanged: keep the ciphertext (nonce budget)
            else:
                out[column] = keyring.seal_text(value, CLASS_OF_KIND[kind], place, column, plan.employee_no)
            index = f"{column}{BIDX_SUFFIX}"
            if kind in INDEXED_KINDS and index in master.table("employees").c:
                out[index] = keyring.blind_index(value, kind)
        return out

    def _write(self, master: HrMaster, plan: HirePlan, keyring: Keyring | None) -> int:
        """One transaction: the employee row (update or insert), then its contract row."""
        employees = master.table("employees")
        column = master.column
        now = datetime.now(UTC).replace(tzinfo=None)
        with master.engine.begin() as conn:
            links: dict[str, Any] = {}
            if plan.department:
                links["department_id"] = master.find_id(
                    conn, "departments", "code", plan.department, "department"
                )
            if plan.position:
                links["position_id"] = master.find_id(conn, "positions", "code", plan.position, "position")
            if plan.manager:
                links["manager_id"] = master.find_id(
                    conn, "employees", "employee_no", plan.manager, "manager with employee_no"
                )
            existing = self._existing(conn, master, plan, lock=True)
            values = {
                **master.values("employees", {**plan.employee, **links, "updated_at": now}),
                **self._sealed(master, plan, keyring, existing),
            }
            id_column = employees.c[column("employees", "id")]
            if existing is None:
                values.update(master.values("employees", {"created_at": now}))
                inserted = conn.execute(insert(employees).values(values)).inserted_primary_key
                employee_id = int(
                    inserted[0]
                    if inserted and inserted[0] is not None
                    else conn.execute(
                        select(id_column).where(
                            employees.c[column("employees", "employee_no")] == plan.employee_no
                        )
                    ).scalar_one()
                )
            else:
                employee_id = int(existing[column("employees", "id")])
                # the status a row already has is the HR master's (activated, on leave), and so
                # is what the case does not say (a work e-mail HR filled in): both kept
                values.pop(column("employees", "status"), None)
                values = {k: v for k, v in values.items() if v is not None}
                conn.execute(update(employees).where(id_column == employee_id).values(values))
            if plan.contract is not None:
                self._write_contract(conn, master, plan, employee_id, now)
        return employee_id

    def _write_contract(
        self, conn: Connection, master: HrMaster, plan: HirePlan, employee_id: int, now: datetime
    ) -> None:
        assert plan.contract is not None
        contracts = master.table("contracts")
        column = master.column
        row = (
            conn.execute(
                select(contracts)
                .where(contracts.c[column("contracts", "contract_no")] == plan.contract_no)
                .with_for_update()
            )
            .mappings()
            .first()
        )
        values = master.values(
            "contracts",
            {**plan.contract, "contract_no": plan.contract_no, "employee_id": employee_id, "updated_at": now},
        )
        if row is None:
            values.update(master.values("contracts", {"created_at": now}))
            conn.execute(insert(contracts).values(values))
            return
        if row[column("contracts", "employee_id")] != employee_id:
            raise ActionFailed(
                f"contract_no {plan.contract_no!r} already belongs to another employee's contract",
                permanent=True,
            )
        status_column = column("contracts", "status")
        if status_column in row and row[status_column] not in (None, "draft"):
            return  # signed (or ended) since: the contract is the HR master's now
        values.pop(status_column, None)
        conn.execute(
            update(contracts)
            .where(contracts.c[column("contracts", "id")] == row[column("contracts", "id")])
            .values(values)
        )


# -- the signed contract -------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedContract:
    """What the e-contract task left: the signed file's SHA-256, the vendor's id, when (if said)."""

    sha256: str
    vendor_ref: str
    signed_at: datetime | None = None


def _task_option(ctx: ActionContext, option: str, default: str) -> str:
    value = ctx.options.get(option)
    return str(value).strip() if value not in (None, "") else default


def hire_numbers_of(ctx: ActionContext, hr_task: str) -> tuple[str, str]:
    """(employee_no, contract_no) from the ``sql.upsert_employee`` task's result."""
    result = ctx.results.get(hr_task)
    if result is None:
        raise ActionFailed(
            f"task {hr_task!r} has no HR master record for this case (options.hr_task names the "
            "sql.upsert_employee task)",
            permanent=True,
        )
    employee_no = str(result.data.get("employee_no") or "")
    contract_no = str(result.data.get("contract_no") or "")
    if not employee_no or not contract_no:
        raise ActionFailed(
            f"task {hr_task!r} left no employee_no and contract_no (did it write a contract?)", permanent=True
        )
    return employee_no, contract_no


def _instant(value: Any) -> datetime | None:
    """An ISO timestamp as naive UTC (how the schema stores times); None when absent or malformed."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def signed_contract_of(ctx: ActionContext, contract_task: str) -> SignedContract:
    """The signed contract the e-contract task archived (``ActionFailed`` naming the task if none)."""
    result: TaskResult | None = ctx.results.get(contract_task)
    if result is None:
        raise ActionFailed(
            f"task {contract_task!r} has no result: the contract is not signed (options.contract_task "
            "names the e-contract task)",
            permanent=True,
        )
    status = str(result.data.get("contract_status") or "SIGNED").upper()
    try:
        archived = archived_contract(result) if status == "SIGNED" else None
    except (KeyError, TypeError, ValueError):
        archived = None
    if archived is None or not SHA256_RE.match(archived.sha256):
        raise ActionFailed(f"the contract of task {contract_task!r} is not signed", permanent=True)
    data = result.data
    vendor_ref = result.ref.id if result.ref is not None else ""
    vendor_ref = vendor_ref or str(data.get("sign_flow_id") or data.get("envelope_id") or "")
    return SignedContract(archived.sha256, vendor_ref[:128], _instant(data.get("signed_at")))


class MarkContractSigned(OnboardingAction):
    """Record the signed labour contract in the HR master and make the employee active."""

    name: ClassVar[str] = "sql.mark_contract_signed"
    description: ClassVar[str] = (
        "mark the hire's contract signed in the HR master (signed_at, document SHA-256, e-contract id) "
        "and the employee active"
    )

    def perform(self, ctx: ActionContext) -> Outcome:
        hr_task = _task_option(ctx, "hr_task", "create_hr_record")
        contract_task = _task_option(ctx, "contract_task", "send_contract")
        employee_no, contract_no = hire_numbers_of(ctx, hr_task)
        signed = signed_contract_of(ctx, contract_task)
        master = hr_master_of(ctx)
        try:
            data = _with_retries(lambda: self._mark(master, ctx.case_id, employee_no, contract_no, signed))
        except DBAPIError as exc:
            raise _db_failure(exc) from None
        finally:
            master.engine.dispose()
        return Outcome.done(ExternalRef(contract_no, CONTRACT_KIND), data)

    def undo(self, ctx: ActionContext) -> None:
        raise UndoNotSupported(
            "the contract is signed: hub does not unsign it (terminate or cancel it in the HR master)"
        )

    def _mark(
        self, master: HrMaster, case_ref: str, employee_no: str, contract_no: str, signed: SignedContract
    ) -> dict[str, Any]:
        """One transaction: the contract signed, the employee active; what is there already is kept."""
        employees, contracts = master.table("employees"), master.table("contracts")
        column = master.column
        now = datetime.now(UTC).replace(tzinfo=None)
        with master.engine.begin() as conn:
            employee = (
                conn.execute(
                    select(employees)
                    .where(employees.c[column("employees", "employee_no")] == employee_no)
                    .with_for_update()
                )
                .mappings()
                .first()
            )
            if employee is None or not _written_by(master, "employees", employee, case_ref):
                raise ActionFailed(
                    f"the HR master has no employee {employee_no!r} written by this case", permanent=True
                )
            contract = (
                conn.execute(
                    select(contracts)
                    .where(contracts.c[column("contracts", "contract_no")] == contract_no)
                    .with_for_update()
                )
                .mappings()
                .first()
            )
            employee_id = employee[column("employees", "id")]
            if (
                contract is None
                or contract[column("contracts", "employee_id")] != employee_id
                or not _written_by(master, "contracts", contract, case_ref)
            ):
                raise ActionFailed(
                    f"the HR master has no contract {contract_no!r} of employee {employee_no!r} "
                    "written by this case",
                    permanent=True,
                )
            employee_status = _value(master, "employees", employee, "status")
            if employee_status == "cancelled":
                raise ActionFailed(
                    f"employee {employee_no!r} is cancelled in the HR master: the signed contract is "
                    "not recorded",
                    permanent=True,
                )
            contract_changes = self._contract_changes(master, contract, contract_no, signed, now)
            if contract_changes:
                conn.execute(
                    update(contracts)
                    .where(contracts.c[column("contracts", "id")] == contract[column("contracts", "id")])
                    .values(master.values("contracts", {**contract_changes, "updated_at": now}))
                )
            if employee_status == "pre_hire":
                conn.execute(
                    update(employees)
                    .where(employees.c[column("employees", "id")] == employee_id)
                    .values(master.values("employees", {"status": "active", "updated_at": now}))
                )
                employee_status = "active"
        contract_status = contract_changes.get("status") or _value(master, "contracts", contract, "status")
        return {
            "employee_no": employee_no,
            "contract_no": contract_no,
            "contract_status": contract_status,
            "employee_status": employee_status,
            "document_sha256": signed.sha256,
        }

    def _contract_changes(
        self,
        master: HrMaster,
        contract: RowMapping,
        contract_no: str,
        signed: SignedContract,
        now: datetime,
    ) -> dict[str, Any]:
        """What the contract row lacks of the signature (by logical column name); {} when complete."""
        status = _value(master, "contracts", contract, "status")
        if status not in (None, "draft", *SIGNED_STATUSES):
            raise ActionFailed(
                f"contract {contract_no!r} is {status} in the HR master: not marked signed", permanent=True
            )
        wanted = {
            "status": "signed" if status in (None, "draft") else status,
            "signed_at": signed.signed_at or now,
            "document_sha256": signed.sha256,
            "econtract_ref": signed.vendor_ref or None,
        }
        changes: dict[str, Any] = {}
        for name, value in wanted.items():
            if not master.has("contracts", name) or value is None:
                continue
            current = _value(master, "contracts", contract, name)
            if current in (None, ""):
                changes[name] = value
            elif name in ("document_sha256", "econtract_ref") and str(current).strip() != value:
                raise ActionFailed(
                    f"contract {contract_no!r} is recorded signed with another document ({name} differs)",
                    permanent=True,
                )
            elif name == "status" and current != value:
                changes[name] = value
        return changes


def _value(master: HrMaster, stream: str, row: RowMapping, name: str) -> Any:
    """The row's value of logical column ``name`` (None when the table has no such column)."""
    return row.get(master.column(stream, name)) if master.has(stream, name) else None


def _written_by(master: HrMaster, stream: str, row: RowMapping, case_ref: str) -> bool:
    """Whether this case wrote the row: its ``source_ref`` is the case id (true without the column)."""
    return not master.has(stream, "source_ref") or _value(master, stream, row, "source_ref") == case_ref


def _opens_to(keyring: Keyring, ciphertext: str, place: str, column: str, record: str, value: str) -> bool:
    try:
        return keyring.open_text(ciphertext, place, column, record) == value
    except DecryptionError:
        return False


def _db_failure(exc: DBAPIError) -> ActionFailed:
    """A database error for the task: transient ones retried, the rest (a value the schema refuses,
    a missing column) to an operator; the text never carries a value (``safe_error``)."""
    return ActionFailed(f"HR master database: {safe_error(exc)}", permanent=not is_transient(exc))


ACTIONS: tuple[OnboardingAction, ...] = (UpsertEmployee(), MarkContractSigned())
