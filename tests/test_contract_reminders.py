"""The contract expiry reminder job: the HR master (shipped schema) -> WeCom, each reminder once.

The HR master is a real database with ``schemas/hr_master``'s DDL (SQLite, and PostgreSQL for
the source query); the messages go over loopback HTTP to the WeCom simulator; the ledger is in
hub's own database.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from hub.cli import app
from hub.config import load_settings
from hub.contracts.expiry import ExpiringContract, MemoryReminderLedger, send_expiry_reminders, today_in
from hub.contracts.reminders import (
    OANotifier,
    ReminderSourceError,
    oa_sender,
    preview_contract_reminders,
    run_contract_reminders,
)
from hub.errors import ConfigurationError
from hub.pii import destination_table
from hub.plugins import load_plugins
from hub.project import Project, collect_connectors
from hub.sandbox import Faults
from hub.sandbox.dingtalk import DingTalkSimulator
from hub.sandbox.feishu import FeishuSimulator
from hub.sandbox.wecom import WeComSimulator
from hub.scheduler import REMINDERS_JOB_ID, HubScheduler, next_fire_times

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas" / "hr_master"
TODAY = date(2030, 6, 1)
HR_USER = "E00001"
#: employee_no, name, employee status, contract_no, contract status, days to the end (None: open-ended)
PEOPLE = [
    ("H001", "欧阳娜娜", "active", "HT-2027-001", "signed", 30),  # due: the only reminder
    ("H002", "李四光", "active", "HT-2027-002", "signed", 31),  # a day early
    ("H003", "王小明", "active", "HT-2027-003", "signed", 200),  # far off
    ("H004", "赵六", "pre_hire", "HT-2027-004", "draft", 30),  # not signed
    ("H005", "孙七", "terminated", "HT-2027-005", "active", 30),  # the employee has left
    ("H006", "周八", "active", "HT-2027-006", "signed", None),  # open-ended: no end
]
NAMES = [p[1] for p in PEOPLE]


def statements(dialect: str) -> list[str]:
    """The shipped DDL of ``dialect``, statement by statement (comments dropped)."""
    name = {"sqlite": "sqlite.sql", "postgresql": "postgresql.sql"}[dialect]
    text = re.sub(r"--[^\n]*", "", (SCHEMAS / name).read_text(encoding="utf-8"))
    return [s.strip() for s in text.split(";") if s.strip()]


def hr_master(url: str, today: date) -> sa.Engine:
    """The shipped schema with :data:`PEOPLE` and their contracts, ends counted from ``today``."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in statements(engine.dialect.name):
            conn.exec_driver_sql(statement)
    start = today - timedelta(days=3 * 365)
    with engine.begin() as conn:
        for employee_no, name, status, contract_no, contract_status, days in PEOPLE:
            conn.execute(
                sa.text(
                    "INSERT INTO employees (employee_no, name, hire_date, status) VALUES (:no, :name, :h, :s)"
                ),
                {"no": employee_no, "name": name, "h": start, "s": status},
            )
            employee_id = conn.execute(
                sa.text("SELECT id FROM employees WHERE employee_no = :no"), {"no": employee_no}
            ).scalar_one()
            conn.execute(
                sa.text(
                    "INSERT INTO contracts (contract_no, employee_id, contract_type, start_date, end_date, status) "
                    "VALUES (:no, :e, :t, :start, :end, :s)"
                ),
                {
                    "no": contract_no,
                    "e": employee_id,
                    "t": "FIXED_TERM" if days is not None else "OPEN_ENDED",
                    "start": start,
                    "end": today + timedelta(days=days) if days is not None else None,
                    "s": contract_status,
                },
            )
    return engine


@pytest.fixture
def sim() -> Iterator[WeComSimulator]:
    with WeComSimulator(count=3, seed=4, approval_delay=0.0) as simulator:
        yield simulator


def project_toml(sim: WeComSimulator, tmp_path: Path, url: str, reminders: str = "") -> str:
    return f"""
[hub]
database = "sqlite:///{tmp_path / "hub.db"}"

[connectors.hr_master]
plugin = "sql"
[connectors.hr_master.config]
url = "{url}"

[connectors.wecom]
plugin = "wecom"
[connectors.wecom.config]
base_url = "{sim.url}"
corp_id = "{sim.corp_id}"
corp_secret = {{ env = "WECOM_SECRET" }}
agent_id = {sim.agent_id}
backoff_base_seconds = 0.01
max_attempts = 2

[contracts]
reminder_days = [30]

[contracts.reminders]
source = "hr_master"
notify = "wecom"
to = ["{HR_USER}"]
{reminders}
"""


def make_project(
    sim: WeComSimulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    url: str | None = None,
    *,
    today: date = TODAY,
    reminders: str = "",
) -> Project:
    monkeypatch.setenv("WECOM_SECRET", sim.corp_secret)
    url = url or f"sqlite:///{tmp_path / 'hr.db'}"
    hr_master(url, today).dispose()
    path = tmp_path / "hub.toml"
    path.write_text(project_toml(sim, tmp_path, url, reminders), encoding="utf-8")
    return Project(path)


def sends(sim: WeComSimulator) -> list[int]:
    """Statuses of the simulator's answers to message/send requests (each attempt)."""
    return [status for _, path, status in sim.requests if "/message/send" in path]


def assert_the_one_reminder(sim: WeComSimulator) -> None:
    (message,) = sim.sent_messages
    assert message["touser"] == [HR_USER]
    content = message["content"]
    assert "欧***" in content and "（工号 H001）" in content
    assert "合同编号 HT-2027-001" in content and "2030年7月1日到期，剩余30天" in content
    assert not any(name in content for name in NAMES)
    assert not any(f"HT-2027-00{i}" in content for i in range(2, 7))


# -- the job -----------------------------------------------------------------------------------


def test_one_message_for_the_contract_due_and_none_the_second_run(
    sim: WeComSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(sim, tmp_path, monkeypatch)
    first = run_contract_reminders(project, today=TODAY)
    assert [r.contract_id for r in first.run.sent] == ["HT-2027-001"]
    assert first.contracts == 1 and first.ok  # read: those ending within the largest stage
    assert_the_one_reminder(sim)
    assert sends(sim) == [200]

    second = run_contract_reminders(project, today=TODAY)  # the same day: nothing more is sent
    assert second.run.sent == [] and [k.contract_id for k in second.run.already_sent] == ["HT-2027-001"]
    assert sends(sim) == [200] and len(sim.sent_messages) == 1

    # a scheduler on another process or host shares the ledger: it is in hub's database
    again = run_contract_reminders(Project(project.path), today=TODAY)
    assert again.run.sent == [] and sends(sim) == [200]
    with project.db.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT contract_id, days_before FROM contract_reminder_ledger")).all()
    assert [tuple(r) for r in rows] == [("HT-2027-001", 30)]

    # the next day H002's contract is 30 days from its end: its own reminder, once
    later = run_contract_reminders(project, today=TODAY + timedelta(days=1))
    assert [r.contract_id for r in later.run.sent] == ["HT-2027-002"] and len(sim.sent_messages) == 2
    assert [k.contract_id for k in later.run.already_sent] == ["HT-2027-001"]


def test_a_wecom_outage_leaves_the_reminder_for_the_next_run(
    sim: WeComSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(sim, tmp_path, monkeypatch)
    sim.faults = Faults(errors=10, error_status=503, only="/message/send")
    down = run_contract_reminders(project, today=TODAY)
    assert down.run.sent == [] and [k.contract_id for k, _ in down.run.failed] == ["HT-2027-001"]
    assert not down.ok and sim.sent_messages == [] and sends(sim) == [503, 503]  # max_attempts = 2

    sim.faults = Faults()
    back = run_contract_reminders(project, today=TODAY + timedelta(days=1))  # the next daily run
    assert [r.contract_id for r in back.run.sent] == ["HT-2027-001", "HT-2027-002"]
    assert sim.sent_messages[0]["content"].count("剩余29天") == 1  # caught up, a day later
    assert run_contract_reminders(project, today=TODAY + timedelta(days=1)).run.sent == []


def test_a_sealed_name_is_opened_with_the_project_keys_and_never_sent_in_clear(
    sim: WeComSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(sim, tmp_path, monkeypatch)
    keyring = project.keyring
    sealed = keyring.seal_text(
        "欧阳娜娜", "personal", destination_table("hr_master", "employees"), "name", "H001"
    )
    foreign = keyring.seal_text(
        "李四光", "personal", destination_table("elsewhere", "employees"), "name", "H002"
    )
    hr = sa.create_engine(f"sqlite:///{tmp_path / 'hr.db'}")
    with hr.begin() as conn:
        for number, value in (("H001", sealed), ("H002", foreign)):
            conn.execute(
                sa.text("UPDATE employees SET name = :v WHERE employee_no = :n"), {"v": value, "n": number}
            )
    hr.dispose()

    result = run_contract_reminders(project, today=TODAY + timedelta(days=1))
    assert [r.contract_id for r in result.run.sent] == ["HT-2027-001"]
    assert "欧***" in sim.sent_messages[0]["content"] and "hub1." not in sim.sent_messages[0]["content"]
    # H002's name was sealed for another connector: skipped and reported, not sent garbled
    assert result.unreadable == ["HT-2027-002"] and not result.ok


def test_only_contracts_in_force_count_and_active_ones_do(
    sim: WeComSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(sim, tmp_path, monkeypatch)
    hr = sa.create_engine(f"sqlite:///{tmp_path / 'hr.db'}")
    with hr.begin() as conn:  # HR moved H003's contract to active and brought its end forward
        conn.execute(
            sa.text(
                "UPDATE contracts SET status = 'active', end_date = :d WHERE contract_no = 'HT-2027-003'"
            ),
            {"d": TODAY + timedelta(days=10)},
        )
    hr.dispose()
    due, read = preview_contract_reminders(project, TODAY)
    assert [r.contract_id for r in due] == ["HT-2027-003", "HT-2027-001"]
    assert sorted(c.contract_id for c in read.contracts) == ["HT-2027-001", "HT-2027-003"]
    assert sim.sent_messages == [] and sends(sim) == []  # a preview sends nothing


def test_the_source_query_on_postgresql(
    sim: WeComSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_url: str
) -> None:
    project = make_project(sim, tmp_path, monkeypatch, pg_url)
    result = run_contract_reminders(project, today=TODAY)
    assert [r.contract_id for r in result.run.sent] == ["HT-2027-001"] and result.contracts == 1
    assert_the_one_reminder(sim)
    assert run_contract_reminders(project, today=TODAY).run.sent == []


def test_an_hr_master_without_the_tables_is_named_in_the_error(
    sim: WeComSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(sim, tmp_path, monkeypatch)
    text = project.path.read_text(encoding="utf-8").replace(
        "[connectors.hr_master.config]\n",
        '[connectors.hr_master.config]\ntables = { contracts = "hr_contract" }\n',
    )
    project.path.write_text(text, encoding="utf-8")
    with pytest.raises(ReminderSourceError, match="no table 'hr_contract'"):
        run_contract_reminders(Project(project.path), today=TODAY, ledger=MemoryReminderLedger())
    assert sends(sim) == []


# -- the CLI and the scheduler -----------------------------------------------------------------


def test_cli_previews_by_default_and_sends_with_send(
    sim: WeComSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(sim, tmp_path, monkeypatch)
    runner = CliRunner()
    base = ["--config", str(project.path), "contracts", "reminders", "--today", TODAY.isoformat()]

    preview = runner.invoke(app, base)
    assert preview.exit_code == 0, preview.output
    assert "[due 30d]" in preview.stdout and "欧***" in preview.stdout and "HT-2027-001" in preview.stdout
    assert "1 due on 2030-06-01" in preview.stdout and sends(sim) == []
    assert not any(name in preview.stdout for name in NAMES)

    sent = runner.invoke(app, [*base, "--send"])
    assert sent.exit_code == 0, sent.output
    assert "sent HT-2027-001 (30d)" in sent.stdout and "1 sent, 0 already sent, 0 failed" in sent.stdout
    assert_the_one_reminder(sim)
    again = runner.invoke(app, [*base, "--send"])
    assert again.exit_code == 0 and "0 sent, 1 already sent, 0 failed" in again.stdout

    sim.faults = Faults(errors=10, only="/message/send")  # the next day, H002's reminder fails
    failed = runner.invoke(app, [*base[:-1], "2030-06-02", "--send"])
    assert failed.exit_code == 1 and "failed HT-2027-002 (WeComUnavailable)" in failed.stdout

    both = runner.invoke(app, [*base, "--send", str(project.path)])
    assert both.exit_code == 2


def test_the_scheduler_registers_and_runs_the_job(
    sim: WeComSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    today = today_in("Asia/Shanghai")
    project = make_project(sim, tmp_path, monkeypatch, today=today)
    (listed,) = [r for r in next_fire_times(project) if r["pipeline"] == "(contract reminders)"]
    assert listed["schedule"] == "every 86400s"
    scheduler = HubScheduler(project)._build()
    scheduler.start(paused=True)
    try:
        HubScheduler(project)._install_jobs(scheduler)
        job = scheduler.get_job(REMINDERS_JOB_ID)
        assert job is not None and job.max_instances == 1
        assert job.trigger.interval == timedelta(days=1)
        # a new daily job runs at once (a run is harmless), not a day after each restart
        assert job.next_run_time <= datetime.now(UTC) + timedelta(seconds=5)
        job.func(*job.args)  # what a fire does
        assert len(sim.sent_messages) == 1 and "欧***" in sim.sent_messages[0]["content"]
        job.func(*job.args)
        assert sends(sim) == [200]

        never = tmp_path / "never.toml"
        never.write_text(project.path.read_text(encoding="utf-8") + "schedule = false\n", encoding="utf-8")
        HubScheduler(Project(never))._install_jobs(scheduler)
        assert scheduler.get_job(REMINDERS_JOB_ID) is None
        cron = tmp_path / "cron.toml"
        cron.write_text(
            project.path.read_text(encoding="utf-8") + 'schedule = "0 9 * * *"\n', encoding="utf-8"
        )
        HubScheduler(Project(cron))._install_jobs(scheduler)
        job = scheduler.get_job(REMINDERS_JOB_ID)
        assert job is not None and job.next_run_time.hour == 9 and job.next_run_time.minute == 0
    finally:
        scheduler.shutdown(wait=False)


# -- configuration -----------------------------------------------------------------------------


def test_the_table_is_validated_with_each_problem_named(tmp_path: Path, write_project: Any) -> None:
    connectors = collect_connectors(load_plugins(None))
    body = """
[connectors.hr_master]
plugin = "sql"
[connectors.hr_master.config]
url = "sqlite:///hr.db"
[connectors.appless]
plugin = "wecom"
[connectors.appless.config]
corp_id = "ww1"
corp_secret = { env = "X" }

[contracts.reminders]
source = "appless"
notify = "hr_master"
to = ["ok", "not a user id"]
text = "{message} {salary}"
schedule = "soon"
cc = ["E1"]
"""
    with pytest.raises(ConfigurationError) as caught:
        load_settings(write_project(body), connectors)
    problems = {p.path: p.message for p in caught.value.problems}
    assert sorted(problems) == [
        "contracts.reminders.cc",
        "contracts.reminders.notify",
        "contracts.reminders.schedule",
        "contracts.reminders.source",
        "contracts.reminders.text",
        "contracts.reminders.to[1]",
    ]
    assert "is not an OA connector" in problems["contracts.reminders.notify"]
    assert "{salary}" in problems["contracts.reminders.text"]

    missing = body.replace('source = "appless"', 'source = "nowhere"').replace(
        'notify = "hr_master"', 'notify = "appless"'
    )
    with pytest.raises(ConfigurationError) as caught:
        load_settings(write_project(missing, name="missing.toml"), connectors)
    problems = {p.path: p.message for p in caught.value.problems}
    assert problems["contracts.reminders.source"] == "no [connectors.nowhere] table"
    assert "no agent_id" in problems["contracts.reminders.notify"]

    good = write_project(
        body.replace('source = "appless"', 'source = "hr_master"')
        .replace('notify = "hr_master"', 'notify = "appless"')
        .replace('corp_id = "ww1"', 'corp_id = "ww1"\nagent_id = 1000002')
        .replace('["ok", "not a user id"]', '"HR01"')
        .replace("{message} {salary}", "{name} {contract_no} {end_date}")
        .replace('"soon"', "false")
        .replace('cc = ["E1"]', ""),
        name="good.toml",
    )
    settings = load_settings(good, connectors)
    reminders = settings.contract_reminders
    assert reminders is not None and reminders.to == ("HR01",) and not reminders.scheduled
    assert settings.contracts.reminder_days == (30,)  # [contracts] itself is untouched by the sub-table


# -- the other OA vendors ----------------------------------------------------------------------


def due_contracts() -> list[ExpiringContract]:
    return [
        ExpiringContract("HT-1", TODAY + timedelta(days=30), "欧阳娜娜", "H001", contract_number="HT-1"),
        ExpiringContract("HT-2", TODAY + timedelta(days=45), "李四光", "H002", contract_number="HT-2"),
    ]


def test_dingtalk_sends_one_work_notice_per_reminder_to_every_hr_user() -> None:
    with DingTalkSimulator(count=3, seed=4, approval_delay=0.0, rate_limit=None) as ding:
        config = {
            "base_url": ding.url,
            "api_base_url": ding.url,
            "app_key": ding.app_key,
            "app_secret": ding.app_secret,
            "agent_id": ding.agent_id,
            "backoff_base_seconds": 0.01,
        }
        notifier = OANotifier(
            oa_sender("dingtalk", config), ["D00001", "D00002"], "{name} {contract_no} {end_date}"
        )
        run = send_expiry_reminders(due_contracts(), notifier, MemoryReminderLedger(), days=[30], today=TODAY)
        assert [r.contract_id for r in run.sent] == ["HT-1"]
        assert sorted((n.userid, n.content) for n in ding.notices) == [
            ("D00001", "欧*** HT-1 2030-07-01"),
            ("D00002", "欧*** HT-1 2030-07-01"),
        ]


def test_feishu_sends_one_message_per_hr_user_and_a_resend_is_dropped() -> None:
    with FeishuSimulator(count=3, seed=5, approval_delay=0.0, rate_limit=None) as feishu:
        config = {
            "base_url": feishu.url,
            "app_id": feishu.app_id,
            "app_secret": feishu.app_secret,
            "backoff_base_seconds": 0.01,
        }
        notifier = OANotifier(oa_sender("feishu", config), ["F00001", "F00002"])
        ledger = MemoryReminderLedger()
        run = send_expiry_reminders(due_contracts(), notifier, ledger, days=[30], today=TODAY)
        (reminder,) = run.sent
        notifier(reminder)  # sent again (a lost answer retried): the same uuid per user, dropped
        assert sorted(m["receive_id"] for m in feishu.sent_messages) == ["F00001", "F00002"]
        assert all("欧***" in m["text"] and "欧阳" not in m["text"] for m in feishu.sent_messages)
        assert len({m["uuid"] for m in feishu.sent_messages}) == 2
