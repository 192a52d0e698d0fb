"""Contract expiry reminders: due exactly once per stage, caught up after a missed day, masked."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from hub.cli import app
from hub.contracts.expiry import (
    ExpiringContract,
    MemoryReminderLedger,
    Reminder,
    ReminderKey,
    ReminderLedger,
    SqlReminderLedger,
    due_reminders,
    mask_name,
    reminder_stage,
    send_expiry_reminders,
)
from hub.schema.contract import EmploymentContract

TODAY = date(2025, 6, 1)


def contract(
    contract_id: str, days_left: int, name: str = "张三丰", number: str | None = "E001"
) -> ExpiringContract:
    return ExpiringContract(contract_id, TODAY + timedelta(days=days_left), name, number, "示例科技有限公司")


class Outbox:
    """A sink that keeps what it was given, and can be told to fail."""

    def __init__(self, fail_for: set[str] | None = None) -> None:
        self.sent: list[Reminder] = []
        self.fail_for = fail_for or set()

    def __call__(self, reminder: Reminder) -> None:
        if reminder.contract_id in self.fail_for:
            raise ConnectionError("OA is down")
        self.sent.append(reminder)


def test_a_contract_ending_in_n_days_gets_a_reminder_and_others_do_not() -> None:
    contracts = [contract("due", 30), contract("later", 31), contract("ended", -1), contract("far", 200)]
    outbox, ledger = Outbox(), MemoryReminderLedger()
    run = send_expiry_reminders(contracts, outbox, ledger, days=[30], today=TODAY, mode="exact")
    assert [r.contract_id for r in outbox.sent] == ["due"] == [r.contract_id for r in run.sent]
    reminder = outbox.sent[0]
    assert reminder.days_before == 30 and reminder.days_left == 30
    assert reminder.message == (
        "【劳动合同到期提醒】示例科技有限公司员工张**（工号 E001）的劳动合同将于2025年7月1日到期，剩余30天。"
        "请及时确认续签或终止，并按规定提前通知员工。"
    )
    assert "张三丰" not in reminder.message and reminder.masked_name == "张**"


def test_a_second_run_the_same_day_sends_nothing_more() -> None:
    contracts = [contract("a", 30), contract("b", 12)]
    outbox, ledger = Outbox(), MemoryReminderLedger()
    first = send_expiry_reminders(contracts, outbox, ledger, days=[30], today=TODAY)
    assert sorted(r.contract_id for r in first.sent) == ["a", "b"]
    second = send_expiry_reminders(contracts, outbox, ledger, days=[30], today=TODAY)
    assert second.sent == [] and len(outbox.sent) == 2
    assert sorted(k.contract_id for k in second.already_sent) == ["a", "b"]


def test_daily_runs_send_each_stage_once_on_its_day() -> None:
    end = TODAY + timedelta(days=70)
    contracts = [ExpiringContract("c1", end, "李四")]
    outbox, ledger = Outbox(), MemoryReminderLedger()
    for offset in range(75):
        day = TODAY + timedelta(days=offset)
        send_expiry_reminders(contracts, outbox, ledger, days=[60, 30, 7], today=day)
        send_expiry_reminders(contracts, outbox, ledger, days=[60, 30, 7], today=day)  # a rerun
    assert [(r.days_before, r.days_left) for r in outbox.sent] == [(60, 60), (30, 30), (7, 7)]


def test_a_missed_day_is_caught_up_once_and_skipped_stages_are_not_sent_late() -> None:
    contracts = [contract("c1", 28)]  # the 30-day run did not happen
    outbox, ledger = Outbox(), MemoryReminderLedger()
    send_expiry_reminders(contracts, outbox, ledger, days=[60, 30], today=TODAY)
    assert [(r.days_before, r.days_left) for r in outbox.sent] == [(30, 28)]
    send_expiry_reminders(contracts, outbox, ledger, days=[60, 30], today=TODAY + timedelta(days=1))
    assert len(outbox.sent) == 1  # neither the 30-day one again, nor the 60-day one late
    # exact mode does not catch up: only the day itself
    assert due_reminders(contracts, TODAY, [30], mode="exact") == []


@pytest.mark.parametrize(
    ("days_left", "days", "stage"),
    [
        (31, [30], None),
        (30, [30], 30),
        (1, [30], 30),
        (0, [30], 30),
        (-1, [30], None),
        (45, [60, 30], 60),
        (8, [30, 7], 30),
    ],
)
def test_reminder_stage(days_left: int, days: list[int], stage: int | None) -> None:
    assert reminder_stage(TODAY + timedelta(days=days_left), TODAY, days) == stage


def test_the_end_day_itself_and_a_renewal() -> None:
    outbox, ledger = Outbox(), MemoryReminderLedger()
    send_expiry_reminders([contract("c1", 0)], outbox, ledger, days=[30], today=TODAY)
    assert "今天到期" in outbox.sent[0].message
    renewed = contract("c1", 30 + 365)  # same contract id, new end date: reminded again next year
    send_expiry_reminders([renewed], outbox, ledger, days=[30], today=TODAY + timedelta(days=365))
    assert [r.end_date for r in outbox.sent] == [TODAY, TODAY + timedelta(days=395)]


def test_a_failed_send_is_released_and_retried_by_the_next_run() -> None:
    contracts = [contract("down", 10), contract("fine", 10)]
    ledger = MemoryReminderLedger()
    broken = Outbox(fail_for={"down"})
    run = send_expiry_reminders(contracts, broken, ledger, days=[30], today=TODAY)
    assert [r.contract_id for r in run.sent] == ["fine"]
    assert run.failed == [(ReminderKey("down", TODAY + timedelta(days=10), 30), "ConnectionError")]
    working = Outbox()
    retry = send_expiry_reminders(contracts, working, ledger, days=[30], today=TODAY + timedelta(days=1))
    assert [r.contract_id for r in working.sent] == ["down"] and len(retry.already_sent) == 1


def test_names_are_masked() -> None:
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳娜娜") == "欧***"
    assert mask_name("Zhang Wei") == "Z**** ***"
    assert mask_name("李") == "*"
    reminder = due_reminders([contract("c", 5, name="王五", number=None)], TODAY, [30])[0]
    assert "王五" not in reminder.message and "王*" in reminder.message and "工号" not in reminder.message


def test_from_a_canonical_contract() -> None:
    canonical = EmploymentContract.model_validate(
        {"contract_type": "FIXED_TERM", "start_date": "2022-07-01", "end_date": "2025-06-30"}
    )
    expiring = ExpiringContract.from_contract(canonical, employee_name="赵六", employee_number="E9")
    assert expiring.contract_id == str(canonical.hub_id) and expiring.end_date == date(2025, 6, 30)
    with pytest.raises(ValueError, match="open-ended"):
        ExpiringContract.from_contract(EmploymentContract(contract_type="OPEN_ENDED"), employee_name="x")  # type: ignore[arg-type]


# -- the SQL ledger, on each backend -------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], SqlReminderLedger]:
    url = (
        f"sqlite:///{tmp_path / 'ledger.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    return lambda: SqlReminderLedger(url)


def test_sql_ledger_never_doubles_across_processes_and_races(
    sql_ledger: Callable[[], SqlReminderLedger],
) -> None:
    contracts = [contract(f"c{i}", i) for i in range(20)]
    outbox = Outbox()
    first = send_expiry_reminders(contracts, outbox, sql_ledger(), days=[30], today=TODAY)
    assert len(first.sent) == 20
    # a scheduler restarted the same day: a new ledger object on the same table
    second = send_expiry_reminders(contracts, outbox, sql_ledger(), days=[30], today=TODAY)
    assert second.sent == [] and len(second.already_sent) == 20

    # two workers racing on fresh contracts claim each reminder once between them
    racing = [contract(f"r{i}", 5) for i in range(30)]
    sinks = [Outbox(), Outbox()]
    ledgers: list[ReminderLedger] = [sql_ledger(), sql_ledger()]
    barrier = threading.Barrier(2)

    def work(i: int) -> None:
        barrier.wait()
        send_expiry_reminders(racing, sinks[i], ledgers[i], days=[30], today=TODAY)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent = [r.contract_id for sink in sinks for r in sink.sent]
    assert sorted(sent) == sorted(c.contract_id for c in racing)


def test_sql_ledger_release(tmp_path: Path) -> None:
    ledger = SqlReminderLedger(f"sqlite:///{tmp_path / 'l.db'}")
    key = ReminderKey("c1", TODAY, 30)
    from datetime import UTC, datetime

    assert ledger.claim(key, at=datetime.now(UTC)) and ledger.recorded(key)
    assert not ledger.claim(key, at=datetime.now(UTC))
    ledger.release(key)
    assert not ledger.recorded(key) and ledger.claim(key, at=datetime.now(UTC))


def test_cli_reminders(write_project: Any, tmp_path: Path) -> None:
    config = write_project(
        """
        [contracts]
        reminder_days = [30]
        """
    )
    rows = [
        {
            "contract_id": "c1",
            "end_date": (TODAY + timedelta(days=30)).isoformat(),
            "employee_name": "张三丰",
            "employee_number": "E001",
        },
        {"contract_id": "c2", "end_date": (TODAY + timedelta(days=90)).isoformat(), "employee_name": "李四"},
    ]
    file = tmp_path / "contracts.json"
    file.write_bytes(orjson.dumps(rows))
    runner = CliRunner()
    args = ["--config", str(config), "contracts", "reminders", str(file), "--today", TODAY.isoformat()]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (
        "张**（工号 E001）" in result.stdout and "张三丰" not in result.stdout and "李" not in result.stdout
    )
    assert "1 sent, 0 already sent, 0 failed" in result.stdout
    again = runner.invoke(app, args)
    assert "0 sent, 1 already sent" in again.stdout and "张**" not in again.stdout
    assert (tmp_path / ".hub" / "contract_reminders.db").is_file()
