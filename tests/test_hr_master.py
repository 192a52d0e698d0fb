"""The HR master over SQL: the shipped schema, ``sql.upsert_employee``, and the hr_master mappings.

Each backend (SQLite, PostgreSQL, MariaDB) gets the shipped DDL (schemas/hr_master/*.sql); the
action writes a hire's employee and contract rows in one transaction, once (a retry, a second
attempt racing the first, a crash after the commit), personal columns sealed the way the ``sql``
destination seals a sync's (``hub.pii``), or in clear with ``encrypt_pii = false``; undo marks
the hire cancelled; ``sql.mark_contract_signed`` records the signed contract and activates the
employee, once; a sync of the HR master through the shipped mappings yields canonical records.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hub_esign.actions import FLOW_COMPLETE
from hub_esign.econtract import SIGNED_DOCUMENT, archive_signed
from hub_sql.onboarding import (
    CONTRACT_KIND,
    EMPLOYEE_KIND,
    MarkContractSigned,
    UpsertEmployee,
    derived_employee_no,
)

from hub.crypto.envelope import TEXT_PREFIX
from hub.engine import Sync
from hub.onboarding import ActionContext, ActionFailed, ExternalRef, TaskResult
from hub.onboarding.actions import OutcomeKind, UndoNotSupported
from hub.onboarding.flow import OnboardingFlow
from hub.onboarding.runner import OnboardingRunner
from hub.pii import open_destination_value
from hub.project import Project
from hub.sandbox.esign import EsignSimulator

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "schemas" / "hr_master"
T0 = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)

CASE: dict[str, Any] = {
    "name": "欧阳娜娜",
    "id_number": "11010519491231002X",
    "phone": "+8613912345678",
    "email": "nana.ouyang@example.com",
    "bank_account": "6222020200112233445",
    "salary": {"amount": {"amount": "38765.43", "currency": "CNY"}, "pay_period": {"value": "MONTH"}},
    "gender": "FEMALE",
    "start_date": "2030-04-01",
    "job_title": "Backend engineer",
    "department": "RD",
    "position_code": "P-BE",
    "manager_employee_no": "E0001",
    "employment_type": "FULL_TIME",
    "contract_type": "FIXED_TERM",
    "contract_term_months": 36,
    "probation_months": 6,
    "employee_no": "H2030001",
}
#: the case's personal data: none may be in the HR master's rows (encrypt_pii) or any message
SECRETS = ["11010519491231002X", "13912345678", "nana.ouyang@example.com", "6222020200112233445", "38765.43"]


# -- fixtures ----------------------------------------------------------------------------------


def statements(dialect: str) -> list[str]:
    """The shipped DDL of ``dialect``, statement by statement (comments dropped)."""
    name = {
        "sqlite": "sqlite.sql",
        "postgresql": "postgresql.sql",
        "mysql": "mariadb.sql",
        "mariadb": "mariadb.sql",
    }
    text = re.sub(r"--[^\n]*", "", (SCHEMAS / name[dialect]).read_text(encoding="utf-8"))
    return [s.strip() for s in text.split(";") if s.strip()]


def apply_schema(url: str) -> sa.Engine:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in statements(engine.dialect.name):
            conn.exec_driver_sql(statement)
    with engine.begin() as conn:  # the organisation the hire joins, and an existing manager
        conn.execute(sa.text("INSERT INTO departments (code, name) VALUES ('HQ', '总部')"))
        hq = conn.execute(sa.text("SELECT id FROM departments WHERE code = 'HQ'")).scalar_one()
        conn.execute(
            sa.text("INSERT INTO departments (code, name, parent_id) VALUES ('RD', '研发中心', :p)"),
            {"p": hq},
        )
        rd = conn.execute(sa.text("SELECT id FROM departments WHERE code = 'RD'")).scalar_one()
        conn.execute(
            sa.text(
                "INSERT INTO positions (code, title, department_id, job_level, headcount) "
                "VALUES ('P-BE', '后端工程师', :d, 'P6', 3), ('P-OLD', '已撤销岗位', :d, 'P5', 0)"
            ),
            {"d": rd},
        )
        conn.execute(sa.text("UPDATE positions SET active = :f WHERE code = 'P-OLD'"), {"f": False})
        conn.execute(
            sa.text(
                "INSERT INTO employees (employee_no, name, department_id, hire_date, status) "
                "VALUES ('E0001', '张伟', :d, :h, 'active')"
            ),
            {"d": rd, "h": date(2020, 1, 1)},
        )
    return engine


def make_project(tmp_path: Path, url: str, *, encrypt_pii: bool = True, extra: str = "") -> Project:
    (tmp_path / "hub.toml").write_text(
        f"""
[hub]
database = "sqlite:///{tmp_path / "hub.db"}"

[connectors.hr_master]
plugin = "sql"
{"" if encrypt_pii else "encrypt_pii = false"}
[connectors.hr_master.config]
url = "{url}"
{extra}
""",
        encoding="utf-8",
    )
    return Project(tmp_path / "hub.toml")


def context(project: Project, case: dict[str, Any] | None = None, **extra: Any) -> ActionContext:
    fields: dict[str, Any] = {
        "case_id": "0b7e5d7a-0000-4000-8000-000000000001",
        "task": "create_hr_record",
        "action": "sql.upsert_employee",
        "connector": "hr_master",
        "idempotency_key": "5b0c3f51-0000-4000-8000-000000000001",
        "case": CASE if case is None else case,
        "options": {},
        "results": {},
        "attempt": 1,
        "config_loader": lambda: project.config_of("hr_master"),
        "project": project,
        **extra,
    }
    return ActionContext(**fields)


def rows(engine: sa.Engine, table: str, *, order: str = "id", **where: Any) -> list[dict[str, Any]]:
    query = f"SELECT * FROM {table}"
    if where:
        query += " WHERE " + " AND ".join(f"{k} = :{k}" for k in where)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(f"{query} ORDER BY {order}"), where).mappings()]


def everything(engine: sa.Engine) -> str:
    """Every value of every HR master row, as text (what a reader of the database sees)."""
    return "\n".join(
        str(value)
        for table in ("employees", "contracts")
        for row in rows(engine, table)
        for value in row.values()
    )


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hr.db'}"


# -- the schema --------------------------------------------------------------------------------


def test_the_shipped_schema_applies_on_each_backend(any_db_url: str) -> None:
    engine = apply_schema(any_db_url)
    inspector = sa.inspect(engine)
    assert {"departments", "positions", "employees", "contracts"} <= set(inspector.get_table_names())
    uniques = {
        table: {tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)}
        for table in ("employees", "contracts", "departments", "positions")
    }
    assert ("employee_no",) in uniques["employees"] and ("contract_no",) in uniques["contracts"]
    assert ("employee_id", "seq_no") in uniques["contracts"] and ("code",) in uniques["departments"]
    columns = {c["name"] for c in inspector.get_columns("employees")}
    for name in (
        "id_number",
        "mobile",
        "personal_email",
        "bank_account",
        "salary",
        "source_ref",
        "manager_id",
    ):
        assert name in columns
    contract_columns = {c["name"] for c in inspector.get_columns("contracts")}
    assert {"status", "signed_at", "document_sha256", "econtract_ref"} <= contract_columns
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:  # one number, one employee
        conn.execute(sa.text("INSERT INTO employees (employee_no, name) VALUES ('E0001', 'x')"))
    with pytest.raises(sa.exc.DBAPIError), engine.begin() as conn:  # statuses are checked
        conn.execute(sa.text("INSERT INTO employees (employee_no, name, status) VALUES ('E9', 'x', 'gone')"))
    engine.dispose()


# -- sql.upsert_employee -----------------------------------------------------------------------


def test_a_hire_is_written_once_with_its_personal_data_sealed(tmp_path: Path, any_db_url: str) -> None:
    engine = apply_schema(any_db_url)
    project = make_project(tmp_path, any_db_url)
    action = UpsertEmployee()
    ctx = context(project)
    assert action.find(ctx) is None
    outcome = action.perform(ctx)
    assert outcome.kind == OutcomeKind.DONE and outcome.ref == ExternalRef("H2030001", EMPLOYEE_KIND)
    assert outcome.data["employee_no"] == "H2030001" and outcome.data["contract_no"] == "H2030001-C01"
    (employee,) = rows(engine, "employees", employee_no="H2030001")
    rd = rows(engine, "departments", code="RD")[0]["id"]
    assert (employee["department_id"], employee["position_id"]) == (
        rd,
        rows(engine, "positions", code="P-BE")[0]["id"],
    )
    assert employee["manager_id"] == rows(engine, "employees", employee_no="E0001")[0]["id"]
    assert (employee["status"], employee["source_ref"], employee["gender"]) == (
        "pre_hire",
        ctx.case_id,
        "FEMALE",
    )
    assert str(employee["hire_date"])[:10] == "2030-04-01" and employee["salary_currency"] == "CNY"
    # sealed as the sql destination seals a sync's columns: bound to (connector/employees, column, employee_no)
    keyring = project.keyring
    for column, clear in {
        "id_number": "11010519491231002X",
        "mobile": "+8613912345678",
        "personal_email": "nana.ouyang@example.com",
        "bank_account": "6222020200112233445",
        "salary": "38765.43",
    }.items():
        assert employee[column].startswith(TEXT_PREFIX)
        assert (
            open_destination_value(keyring, "hr_master", "employees", column, "H2030001", employee[column])
            == clear
        )
    assert employee["id_number_bidx"] == keyring.blind_index("11010519491231002X", "id_number")
    assert employee["mobile_bidx"] == keyring.blind_index("+8613912345678", "phone")
    assert employee["bank_account_bidx"] == keyring.blind_index("6222020200112233445", "bank_account")
    (contract,) = rows(engine, "contracts", contract_no="H2030001-C01")
    assert (contract["employee_id"], contract["contract_type"], contract["status"]) == (
        employee["id"],
        "FIXED_TERM",
        "draft",
    )
    assert (
        str(contract["end_date"])[:10] == "2033-03-31" and str(contract["probation_end"])[:10] == "2030-09-30"
    )
    assert (contract["term_months"], contract["probation_months"]) == (36, 6)

    # a retry (the answer lost, the claim lapsed) finds the row and writes it again: nothing new
    found = action.find(ctx)
    assert found == ExternalRef("H2030001", EMPLOYEE_KIND)
    again = action.recovered(ctx, found)
    assert again.kind == OutcomeKind.DONE and again.data["employee_id"] == employee["id"]
    assert len(rows(engine, "employees")) == 2 and len(rows(engine, "contracts")) == 1
    (same,) = rows(engine, "employees", employee_no="H2030001")
    assert same["id_number"] == employee["id_number"]  # unchanged values keep their ciphertext
    text = everything(engine)
    for secret in SECRETS:
        assert secret not in text, secret
    engine.dispose()
    project.db.dispose()


def test_an_hr_master_that_must_read_the_values_gets_them_in_clear(tmp_path: Path, sqlite_url: str) -> None:
    engine = apply_schema(sqlite_url)
    project = make_project(tmp_path, sqlite_url, encrypt_pii=False)
    UpsertEmployee().perform(context(project))
    (employee,) = rows(engine, "employees", employee_no="H2030001")
    assert (employee["id_number"], employee["mobile"], employee["salary"]) == (
        "11010519491231002X",
        "+8613912345678",
        "38765.43",
    )
    assert employee["id_number_bidx"] is None  # no blind index: the value itself is searchable


def test_a_case_without_an_employee_number_gets_a_stable_derived_one(tmp_path: Path, sqlite_url: str) -> None:
    engine = apply_schema(sqlite_url)
    project = make_project(tmp_path, sqlite_url)
    case = {k: v for k, v in CASE.items() if k != "employee_no"}
    ctx = context(project, case, options={"employee_no_prefix": "N"})
    first = UpsertEmployee().perform(ctx)
    number = first.data["employee_no"]
    assert re.fullmatch(r"N\d{10}", number) and number == derived_employee_no(ctx.case_id, "N")
    assert (
        UpsertEmployee().perform(context(project, case, options={"employee_no_prefix": "N"})).data
        == first.data
    )
    assert [r["employee_no"] for r in rows(engine, "employees")] == ["E0001", number]
    assert derived_employee_no("another case", "N") != number


def test_a_number_that_belongs_to_someone_else_goes_to_an_operator(tmp_path: Path, sqlite_url: str) -> None:
    engine = apply_schema(sqlite_url)
    project = make_project(tmp_path, sqlite_url)
    UpsertEmployee().perform(context(project))
    other = context(project, case_id="0b7e5d7a-0000-4000-8000-000000000002")
    for attempt in (UpsertEmployee().find, UpsertEmployee().perform):
        with pytest.raises(ActionFailed) as caught:
            attempt(other)
        assert (
            caught.value.permanent
            and "H2030001" in caught.value.reason
            and "adopt_existing" in caught.value.reason
        )
    with pytest.raises(ActionFailed):  # a row made by hand (E0001) is refused too
        UpsertEmployee().perform(context(project, {**CASE, "employee_no": "E0001"}))
    adopted = context(
        project,
        {**CASE, "employee_no": "E0001", "contract_number": "E0001-C02"},
        options={"adopt_existing": True},
    )
    assert UpsertEmployee().perform(adopted).kind == OutcomeKind.DONE
    (manager,) = rows(engine, "employees", employee_no="E0001")
    assert manager["status"] == "active" and manager["job_title"] == "Backend engineer"  # status kept
    assert len(rows(engine, "employees")) == 2


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"department": "NOPE"}, "no department 'NOPE'"),
        ({"position_code": "P-X"}, "no position 'P-X'"),
        ({"manager_employee_no": "E404"}, "no manager with employee_no 'E404'"),
        ({"probation_months": 7}, "at most 6 months of probation"),
        ({"contract_term_months": None}, "needs contract_term_months"),
        ({"contract_type": "FOREVER"}, "unknown contract_type"),
        ({"start_date": "next monday"}, "no valid start_date"),
        ({"name": None}, "no name"),
    ],
    ids=["department", "position", "manager", "probation", "term", "type", "start", "name"],
)
def test_refusals_go_to_an_operator_without_personal_data(
    tmp_path: Path, sqlite_url: str, change: dict[str, Any], expected: str
) -> None:
    engine = apply_schema(sqlite_url)
    project = make_project(tmp_path, sqlite_url)
    with pytest.raises(ActionFailed) as caught:
        UpsertEmployee().perform(context(project, {**CASE, **change}))
    assert caught.value.permanent and expected in caught.value.reason
    assert not any(secret in caught.value.reason for secret in SECRETS)
    assert len(rows(engine, "employees")) == 1  # nothing written (one transaction)


def test_undo_marks_the_hire_cancelled_and_keeps_the_rows(tmp_path: Path, any_db_url: str) -> None:
    engine = apply_schema(any_db_url)
    project = make_project(tmp_path, any_db_url)
    ctx = context(project)
    ref = UpsertEmployee().perform(ctx).ref
    undo = context(project, ref=ref)
    UpsertEmployee().undo(undo)
    UpsertEmployee().undo(undo)  # twice is harmless
    (employee,) = rows(engine, "employees", employee_no="H2030001")
    (contract,) = rows(engine, "contracts")
    assert (employee["status"], contract["status"]) == ("cancelled", "cancelled")
    # another case's undo touches nothing of ours
    UpsertEmployee().undo(context(project, case_id="someone-else", ref=ref))
    assert rows(engine, "employees", employee_no="E0001")[0]["status"] == "active"
    engine.dispose()
    project.db.dispose()


@pytest.mark.parametrize("backend", ["postgresql", "mariadb", "sqlite"])
def test_two_attempts_racing_write_one_row(
    tmp_path: Path,
    backend: str,
    request: pytest.FixtureRequest,
    sqlite_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = (
        sqlite_url
        if backend == "sqlite"
        else str(request.getfixturevalue("pg_url" if backend == "postgresql" else "mariadb_url"))
    )
    engine = apply_schema(url)
    project = make_project(tmp_path, url)
    project.keyring  # noqa: B018 - keys created up front, not by the racing threads
    caplog.set_level(logging.INFO, logger="hub.sql.onboarding")
    barrier = threading.Barrier(2)
    outcomes: list[Any] = []

    class Racing(UpsertEmployee):
        def _existing(self, conn: sa.Connection, master: Any, plan: Any, lock: bool = False) -> Any:
            found = super()._existing(conn, master, plan, lock)
            if lock and not getattr(threading.current_thread(), "raced", False):
                threading.current_thread().raced = True  # type: ignore[attr-defined]
                # both have looked (and seen nothing) before either inserts; a broken barrier means
                # the other is blocked on our row lock (FOR UPDATE) and waits for our commit
                with contextlib.suppress(threading.BrokenBarrierError):
                    barrier.wait(timeout=2)
            return found

    def attempt() -> None:
        try:
            outcomes.append(Racing().perform(context(project)))
        except BaseException as exc:  # recorded, asserted below
            outcomes.append(exc)

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(getattr(o, "kind", None) == OutcomeKind.DONE for o in outcomes), outcomes
    assert "retrying" in caplog.text  # the loser of the insert race (or deadlock) wrote again, as an update
    assert [r["employee_no"] for r in rows(engine, "employees")] == ["E0001", "H2030001"]
    assert len(rows(engine, "contracts")) == 1
    engine.dispose()
    project.db.dispose()


# -- sql.mark_contract_signed ------------------------------------------------------------------

SIGNED_PDF = b"%PDF-1.7\n% the labour contract, signed by both parties\n%%EOF\n"
FLOW_ID = "c0ffee00c0ffee00c0ffee00c0ffee00"


def signed_contract_result(
    project: Project, content: bytes = SIGNED_PDF, flow_id: str = FLOW_ID
) -> TaskResult:
    """What ``esign.send_contract`` leaves once signed: the flow and the archived signed file."""
    archived = archive_signed(
        context(project, task="send_contract"), content, "application/pdf", clause_set_version="cs-1"
    )
    return TaskResult(
        ref=ExternalRef(flow_id, "esign_sign_flow"),
        data={
            "contract_status": "SIGNED",
            "sign_flow_id": flow_id,
            "signed_sha256": archived["sha256"],
            SIGNED_DOCUMENT: archived,
        },
    )


def signing_context(project: Project, results: dict[str, TaskResult], **extra: Any) -> ActionContext:
    return context(project, task="mark_signed", action="sql.mark_contract_signed", results=results, **extra)


def hired(project: Project, **extra: Any) -> dict[str, TaskResult]:
    """The case's results once the hire is written and the contract signed."""
    written = UpsertEmployee().perform(context(project, **extra))
    return {
        "create_hr_record": TaskResult(ref=written.ref, data=written.data),
        "send_contract": signed_contract_result(project),
    }


def test_the_signed_contract_is_recorded_and_the_employee_activated_once(
    tmp_path: Path, any_db_url: str
) -> None:
    engine = apply_schema(any_db_url)
    project = make_project(tmp_path, any_db_url)
    results = hired(project)
    before_other = rows(engine, "employees", employee_no="E0001")
    action = MarkContractSigned()
    outcome = action.perform(signing_context(project, results))
    assert outcome.kind == OutcomeKind.DONE and outcome.ref == ExternalRef("H2030001-C01", CONTRACT_KIND)
    sha = hashlib.sha256(SIGNED_PDF).hexdigest()
    assert dict(outcome.data) == {
        "employee_no": "H2030001",
        "contract_no": "H2030001-C01",
        "contract_status": "signed",
        "employee_status": "active",
        "document_sha256": sha,
    }
    (contract,) = rows(engine, "contracts", contract_no="H2030001-C01")
    assert (contract["status"], contract["document_sha256"], contract["econtract_ref"]) == (
        "signed",
        sha,
        FLOW_ID,
    )
    assert contract["signed_at"] is not None
    (employee,) = rows(engine, "employees", employee_no="H2030001")
    assert employee["status"] == "active"

    # a retry (a lost commit acknowledgement, a lapsed claim) changes nothing more, updated_at neither
    again = action.perform(signing_context(project, results))
    assert again.data == outcome.data
    assert rows(engine, "contracts") == [contract] and rows(engine, "employees", employee_no="H2030001") == [
        employee
    ]
    assert rows(engine, "employees", employee_no="E0001") == before_other  # nobody else's row
    # upsert_employee retried after the signature leaves the signed contract as it is
    UpsertEmployee().perform(context(project))
    assert rows(engine, "contracts")[0]["status"] == "signed"
    assert rows(engine, "employees", employee_no="H2030001")[0]["status"] == "active"
    with pytest.raises(UndoNotSupported, match="signed"):
        action.undo(signing_context(project, results, ref=outcome.ref))
    engine.dispose()
    project.db.dispose()


def test_a_contract_signed_by_hand_gets_the_document_and_keeps_its_date(
    tmp_path: Path, sqlite_url: str
) -> None:
    engine = apply_schema(sqlite_url)
    project = make_project(tmp_path, sqlite_url)
    results = hired(project)
    by_hand = datetime(2030, 3, 20, 10, 0)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE contracts SET status = 'active', signed_at = :t"), {"t": by_hand})
    MarkContractSigned().perform(signing_context(project, results))
    (contract,) = rows(engine, "contracts")
    assert contract["status"] == "active" and str(contract["signed_at"]).startswith("2030-03-20 10:00")
    assert contract["document_sha256"] == hashlib.sha256(SIGNED_PDF).hexdigest()


def test_an_hr_master_without_the_new_columns_gets_status_and_date(tmp_path: Path, sqlite_url: str) -> None:
    engine = apply_schema(sqlite_url)
    with engine.begin() as conn:  # an HR master applied before the columns were added
        conn.exec_driver_sql("ALTER TABLE contracts DROP COLUMN document_sha256")
        conn.exec_driver_sql("ALTER TABLE contracts DROP COLUMN econtract_ref")
    project = make_project(tmp_path, sqlite_url)
    assert MarkContractSigned().perform(signing_context(project, hired(project))).kind == OutcomeKind.DONE
    (contract,) = rows(engine, "contracts")
    assert contract["status"] == "signed" and contract["signed_at"] is not None
    assert "document_sha256" not in contract


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda r, p: r.pop("create_hr_record"), "task 'create_hr_record' has no HR master record"),
        (
            lambda r, p: r.update(create_hr_record=TaskResult(data={"employee_no": "H2030001"})),
            "task 'create_hr_record' left no employee_no and contract_no",
        ),
        (lambda r, p: r.pop("send_contract"), "task 'send_contract' has no result"),
        (  # still waiting: the signing link, no signed file
            lambda r, p: r.update(send_contract=TaskResult(data={"sign_url": "https://esign.example/s/1"})),
            "the contract of task 'send_contract' is not signed",
        ),
        (
            lambda r, p: r.update(
                send_contract=TaskResult(
                    data={**r["send_contract"].data, "contract_status": "REFUSED"}, ref=r["send_contract"].ref
                )
            ),
            "the contract of task 'send_contract' is not signed",
        ),
        (  # signed, then found recorded with another file
            lambda r, p: MarkContractSigned().perform(
                signing_context(p, {**r, "send_contract": signed_contract_result(p, b"%PDF another")})
            ),
            "recorded signed with another document (document_sha256 differs)",
        ),
        (
            lambda r, p: UpsertEmployee().undo(context(p, ref=r["create_hr_record"].ref)),
            "employee 'H2030001' is cancelled",
        ),
    ],
    ids=[
        "no-hr-task",
        "no-contract-no",
        "no-contract-task",
        "waiting",
        "refused",
        "other-document",
        "cancelled",
    ],
)
def test_mark_contract_signed_refusals_name_the_task_and_write_nothing(
    tmp_path: Path, sqlite_url: str, change: Callable[[dict[str, TaskResult], Project], Any], expected: str
) -> None:
    engine = apply_schema(sqlite_url)
    project = make_project(tmp_path, sqlite_url)
    results = hired(project)
    change(results, project)
    before = (rows(engine, "employees"), rows(engine, "contracts"))
    with pytest.raises(ActionFailed) as caught:
        MarkContractSigned().perform(signing_context(project, results))
    assert caught.value.permanent and expected in caught.value.reason, caught.value.reason
    assert not any(secret in caught.value.reason for secret in SECRETS)
    assert (rows(engine, "employees"), rows(engine, "contracts")) == before


def test_mark_contract_signed_touches_only_what_this_case_wrote(tmp_path: Path, sqlite_url: str) -> None:
    engine = apply_schema(sqlite_url)
    project = make_project(tmp_path, sqlite_url)
    results = hired(project)
    with pytest.raises(ActionFailed, match="no employee 'H2030001' written by this case") as caught:
        MarkContractSigned().perform(
            signing_context(project, results, case_id="0b7e5d7a-0000-4000-8000-000000000002")
        )
    assert caught.value.permanent
    # the options name other tasks: a contract number of someone else's employee is refused too
    renamed = {
        "hr": TaskResult(data={"employee_no": "H2030001", "contract_no": "E0001-C01"}),
        "esign_contract": results["send_contract"],
    }
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO contracts (contract_no, employee_id, contract_type, start_date) "
                "SELECT 'E0001-C01', id, 'OPEN_ENDED', '2020-01-01' FROM employees WHERE employee_no = 'E0001'"
            )
        )
    with pytest.raises(ActionFailed, match="no contract 'E0001-C01' of employee 'H2030001'"):
        MarkContractSigned().perform(
            signing_context(project, renamed, options={"hr_task": "hr", "contract_task": "esign_contract"})
        )
    assert {r["contract_no"]: r["status"] for r in rows(engine, "contracts")} == {
        "H2030001-C01": "draft",
        "E0001-C01": "draft",
    }
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE contracts SET status = 'terminated' WHERE contract_no = 'H2030001-C01'"))
    with pytest.raises(ActionFailed, match="is terminated in the HR master"):
        MarkContractSigned().perform(signing_context(project, results))


def test_the_sql_plugin_registers_both_actions() -> None:
    import hub_sql

    names = {action.name for action in hub_sql.hub_register_onboarding_actions()}
    assert names == {"sql.upsert_employee", "sql.mark_contract_signed"}


# -- through the onboarding flow ---------------------------------------------------------------


class SimulatedCrash(BaseException):
    """The runner's process dies: after the HR master committed, before hub recorded it."""


def onboarding_project(tmp_path: Path, url: str) -> Project:
    return make_project(
        tmp_path,
        url,
        extra="""
[onboarding]
schedule = false
claim_ttl = "60s"
retry = { attempts = 3, base = "10s", max = "60s" }
tasks = [
  { name = "create_hr_record", action = "sql.upsert_employee", connector = "hr_master" },
  # a later step an operator must look at (a refused option), so the case is still open to cancel
  { name = "later_step", action = "sql.upsert_employee", connector = "hr_master", options = { status = "bogus" } },
]
""",
    )


def test_a_crash_after_the_commit_does_not_write_the_hire_twice(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = apply_schema(sqlite_url)
    flow = OnboardingFlow(onboarding_project(tmp_path, sqlite_url))
    case = {k: v for k, v in CASE.items() if k != "employee_no"}
    case_id, _ = flow.open_case(case, source="test", now=T0)
    real: Callable[..., Any] = UpsertEmployee.perform

    def crash_after_commit(self: UpsertEmployee, ctx: ActionContext) -> Any:
        real(self, ctx)
        raise SimulatedCrash

    monkeypatch.setattr(UpsertEmployee, "perform", crash_after_commit)
    with pytest.raises(SimulatedCrash):
        OnboardingRunner(flow).run_once(now=T0)
    monkeypatch.undo()
    assert {t.name: t.status for t in flow.show(case_id).tasks}["create_hr_record"] == "IN_PROGRESS"
    assert len(rows(engine, "employees")) == 2  # written, but hub never heard

    report = OnboardingRunner(flow).run_once(now=T0 + timedelta(seconds=61))  # the claim lapsed
    assert report.recovered == 1
    tasks = {t.name: t for t in flow.show(case_id).tasks}
    assert (tasks["create_hr_record"].status, tasks["create_hr_record"].attempts) == ("DONE", 2)
    assert tasks["later_step"].status == "NEEDS_OPERATOR"
    number = derived_employee_no(case_id)
    assert [r["employee_no"] for r in rows(engine, "employees")] == ["E0001", number]
    assert len(rows(engine, "contracts")) == 1

    flow.cancel(case_id, "offer withdrawn")
    assert rows(engine, "employees", employee_no=number)[0]["status"] == "cancelled"
    assert flow.show(case_id).status == "CANCELLED"
    shown = str(flow.show(case_id).as_dict())
    assert not any(secret in shown for secret in SECRETS)
    flow.db.dispose()
    engine.dispose()
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("*.db*"))  # hub's state and the HR master
    for secret in SECRETS:
        assert secret.encode() not in stored, secret


def test_the_contract_signed_callback_marks_the_hr_master_and_completes_the_case(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = apply_schema(sqlite_url)
    with EsignSimulator(signing_delay=3600) as esign:
        monkeypatch.setenv("ESIGN_APP_SECRET", esign.app_secret)
        project = make_project(
            tmp_path,
            sqlite_url,
            extra=f"""
[connectors.esign]
plugin = "esign"
[connectors.esign.config]
base_url = "{esign.url}"
app_id = "{esign.app_id}"
app_secret = {{ env = "ESIGN_APP_SECRET" }}
employer = "示例科技有限公司"
backoff_base_seconds = 0.01
file_poll_interval_seconds = 0

[onboarding]
schedule = false
tasks = [
  {{ name = "create_hr_record", action = "sql.upsert_employee", connector = "hr_master" }},
  {{ name = "send_contract", action = "esign.send_contract", connector = "esign" }},
  {{ name = "mark_signed", action = "sql.mark_contract_signed", connector = "hr_master" }},
]
""",
        )
        flow = OnboardingFlow(project)
        case_id, _ = flow.open_case(CASE, source="test")
        runner = OnboardingRunner(flow)
        runner.run_once()
        statuses = {t.name: t.status for t in flow.show(case_id).tasks}
        assert statuses == {"create_hr_record": "DONE", "send_contract": "WAITING", "mark_signed": "PENDING"}
        assert rows(engine, "contracts")[0]["status"] == "draft"
        (flow_id,) = esign.flows
        esign.sign(flow_id)
        payload = {"action": FLOW_COMPLETE, "sign_flow_status": 2}
        assert flow.on_callback("esign", FLOW_COMPLETE, flow_id, payload).status == "matched"
        assert flow.on_callback("esign", FLOW_COMPLETE, flow_id, payload).status == "already_handled"
        runner.run_once()
        signed = esign.signed_content(esign.flows[flow_id])
    assert flow.show(case_id).status == "COMPLETED"
    (contract,) = rows(engine, "contracts")
    assert (contract["status"], contract["econtract_ref"]) == ("signed", flow_id)
    assert contract["document_sha256"] == hashlib.sha256(signed).hexdigest()
    assert rows(engine, "employees", employee_no="H2030001")[0]["status"] == "active"
    flow.db.dispose()
    engine.dispose()


# -- reading the HR master through the shipped mappings ----------------------------------------


def test_the_shipped_mappings_read_the_hr_master_into_canonical_records(
    tmp_path: Path, sqlite_url: str
) -> None:
    engine = apply_schema(sqlite_url)
    project = make_project(tmp_path, sqlite_url)
    UpsertEmployee().perform(context(project))
    canonical = tmp_path / "canonical.db"
    mappings = ROOT / "mappings"
    config = tmp_path / "sync.toml"
    config.write_text(
        f"""
[hub]
database = "sqlite:///{tmp_path / "hub.db"}"

[connectors.hr_master]
plugin = "sql"
[connectors.hr_master.config]
url = "{sqlite_url}"
cursor_fields = {{ employees = "updated_at", contracts = "updated_at" }}

[connectors.canonical]
plugin = "sql"
encrypt_pii = false
[connectors.canonical.config]
url = "sqlite:///{canonical}"

[pipelines.hr_master_in]
source = "hr_master"
streams = [
  {{ name = "departments", mapping = "{mappings / "hr_master_departments.yaml"}", destination_stream = "org_units" }},
  {{ name = "positions", mapping = "{mappings / "hr_master_positions.yaml"}", destination_stream = "positions" }},
  {{ name = "employees", sync_mode = "incremental", mapping = "{mappings / "hr_master_employees.yaml"}", destination_stream = "employees" }},
  {{ name = "contracts", sync_mode = "incremental", mapping = "{mappings / "hr_master_contracts.yaml"}", destination_stream = "contracts" }},
]
destinations = ["canonical"]
""",
        encoding="utf-8",
    )
    result = Sync(Project(config), "hr_master_in").run()
    assert (result.status, result.counts.rejected) == ("succeeded", 0), result.error
    target = sa.create_engine(f"sqlite:///{canonical}")
    employees = {r["employee_number"]: r for r in rows(target, "employees", order="remote_id")}
    hire = employees["H2030001"]
    assert "PRE_HIRE" in hire["employment_status"] and hire["start_date"] == "2030-04-01"
    assert "FULL_TIME" in hire["employee_category"] and hire["job_title"] == "Backend engineer"
    assert "ACTIVE" in employees["E0001"]["employment_status"]
    assert not any(secret in str(hire) for secret in SECRETS)  # the sealed columns are not read
    (contract,) = rows(target, "contracts", order="remote_id")
    assert "FIXED_TERM" in contract["contract_type"] and contract["end_date"] == "2033-03-31"
    assert [str(contract[k]) for k in ("term_months", "probation_months", "sequence")] == ["36", "6", "1"]
    units = {r["code"]: r for r in rows(target, "org_units", order="remote_id")}
    assert (
        set(units) == {"HQ", "RD"}
        and units["RD"]["name"] == "研发中心"
        and units["RD"]["active"] in (1, "true")
    )
    positions = {r["code"]: r for r in rows(target, "positions", order="remote_id")}
    assert "OPEN" in positions["P-BE"]["status"] and "CLOSED" in positions["P-OLD"]["status"]
    assert str(positions["P-BE"]["headcount"]) == "3"
    target.dispose()
    engine.dispose()
