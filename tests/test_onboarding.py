"""Onboarding: cases sealed, tasks as an outbox claimed with leases, retries, callbacks, cancel.

The vendor is tests/plugins/onboarding_plugins/onboarding_fake_vendor.py (test-only), which
keeps its objects in its own SQLite file, so every test can count what the vendor really got.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hub.changes import ChangeRecorder
from hub.config import load_settings
from hub.crypto import maintenance
from hub.errors import ConfigurationError
from hub.onboarding.actions import Outcome
from hub.onboarding.flow import CallbackStatus, OnboardingFlow, idempotency_key
from hub.onboarding.intake import intake
from hub.onboarding.models import CaseStatus
from hub.onboarding.runner import OnboardingRunner, RunReport
from hub.onboarding.webhooks import OnboardingDispatcher, onboarding_dispatcher
from hub.project import Project
from hub.store.models import AuditEntry, ChangeEvent, OnboardingCaseRow, OnboardingTaskRow
from hub.webhooks.inbox import Inbox
from hub.webhooks.processor import InboxProcessor
from hub.webhooks.verifier import Accepted

PLUGIN = Path(__file__).parent / "plugins" / "onboarding_plugins" / "onboarding_fake_vendor.py"
T0 = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)

#: A hire's personal data: none of these strings may reach hub's database in clear.
PERSON = {
    "name": "欧阳娜娜",
    "id_number": "11010519491231002X",
    "phone": "+8613912345678",
    "email": "nana.ouyang@example.com",
    "bank_account": "6222020200112233445",
    "salary": "38765.43",
    "birth_date": "1949-12-31",
    "start_date": "2030-04-01",
    "job_title": "Backend engineer",
}
SECRETS = [
    "欧阳娜娜",
    "11010519491231002X",
    "13912345678",
    "nana.ouyang@example.com",
    "6222020200112233445",
    "38765.43",
]

#: The default flow of the docs, on the fake vendor.
FULL_FLOW = """
  { name = "create_hr_record", action = "fakevendor.create_record", connector = "vendor" },
  { name = "create_oa_account", action = "fakevendor.create_account", connector = "vendor" },
  { name = "start_approval", action = "fakevendor.start_approval", connector = "vendor" },
  { name = "enrol_payroll", action = "fakevendor.step", connector = "vendor", after = ["create_hr_record"] },
  { name = "send_contract", action = "fakevendor.send_contract", connector = "vendor", after = ["start_approval", "enrol_payroll"] },
  { name = "mark_signed", action = "fakevendor.step", connector = "vendor" },
  { name = "sync_final", action = "fakevendor.step", connector = "vendor" },
"""

HubCli = Callable[[list[str], Path], tuple[int, str, str]]


def make_project(tmp_path: Path, tasks: str, *, database: str | None = None, extra: str = "") -> Project:
    plugins = tmp_path / "plugins"
    plugins.mkdir(exist_ok=True)
    shutil.copy(PLUGIN, plugins / PLUGIN.name)
    database = database or f"sqlite:///{tmp_path / 'hub.db'}"
    (tmp_path / "hub.toml").write_text(
        f"""
[hub]
database = "{database}"
plugins_dir = "plugins"

[connectors.vendor]
plugin = "fakevendor"
[connectors.vendor.config]
vendor_db = "vendor.db"

[onboarding]
schedule = false
claim_ttl = "60s"
retry = {{ attempts = 3, base = "10s", max = "60s" }}
tasks = [
{tasks}
]
{extra}
""",
        encoding="utf-8",
    )
    return Project(tmp_path / "hub.toml")


def vendor_db(project: Project) -> sqlite3.Connection:
    return sqlite3.connect(project.path.parent / "vendor.db")


def vendor_objects(project: Project, task: str | None = None) -> list[tuple[str, str, str]]:
    """(object id, task, status) of every object the vendor holds, oldest first."""
    query = "SELECT id, task, status FROM objects"
    args: tuple[str, ...] = ()
    if task is not None:
        query, args = query + " WHERE task = ?", (task,)
    with vendor_db(project) as conn:
        return [tuple(r) for r in conn.execute(query + " ORDER BY created_at", args)]


def vendor_calls(project: Project, what: str = "perform") -> list[tuple[str, str]]:
    """(case id, task) of every call of one kind the vendor saw, in order."""
    with vendor_db(project) as conn:
        return [
            tuple(r)
            for r in conn.execute("SELECT case_id, task FROM calls WHERE what = ? ORDER BY n", (what,))
        ]


def tasks_of(flow: OnboardingFlow, case_id: str) -> dict[str, OnboardingTaskRow]:
    with flow.db.session() as session:
        rows = session.execute(
            sa.select(OnboardingTaskRow).where(OnboardingTaskRow.case_id == case_id)
        ).scalars()
        return {r.name: r for r in rows}


def statuses(flow: OnboardingFlow, case_id: str) -> dict[str, str]:
    return {name: t.status for name, t in tasks_of(flow, case_id).items()}


def case_status(flow: OnboardingFlow, case_id: str) -> str:
    with flow.db.session() as session:
        row = session.get(OnboardingCaseRow, case_id)
        assert row is not None
        return row.status


def object_of(flow: OnboardingFlow, case_id: str, task: str) -> str:
    result = flow.open_result(tasks_of(flow, case_id)[task])
    assert result.ref is not None
    return result.ref.id


def crash(run: Callable[[], Any]) -> None:
    """Run, expecting the fake vendor's SimulatedCrash: a BaseException, as a kill would be."""
    try:
        run()
    except BaseException as exc:
        assert type(exc).__name__ == "SimulatedCrash", repr(exc)
        return
    pytest.fail("the vendor call did not crash")


def aware(moment: datetime | None) -> datetime:
    assert moment is not None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@pytest.fixture
def hub_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[HubCli]:
    """``hub ARGS`` run by ``main()`` in this process: exit code, stdout, stderr."""
    from hub.cli import main

    def call(args: list[str], config: Path) -> tuple[int, str, str]:
        monkeypatch.setenv("HUB_CONFIG", str(config))
        monkeypatch.setattr(sys, "argv", ["hub", *args])
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            main()
        captured = capsys.readouterr()
        return int(exited.value.code or 0), captured.out, captured.err

    root = logging.getLogger()
    level = root.level
    yield call
    for handler in [h for h in root.handlers if getattr(h, "_hub", False)]:
        root.removeHandler(handler)
    root.setLevel(level)


# -- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tasks", "where", "message"),
    [
        (
            '{ name = "a", action = "fakevendor.step", connector = "nowhere" }',
            "onboarding.tasks[0].connector",
            "no [connectors.nowhere] table",
        ),
        (
            '{ name = "a", action = "fakevendor.step", connector = "vendor" },\n'
            '{ name = "a", action = "fakevendor.step", connector = "vendor" }',
            "onboarding.tasks[1].name",
            "duplicate task name 'a' (also tasks[0])",
        ),
        (
            '{ name = "a", action = "fakevendor.step", connector = "vendor", after = ["b"] },\n'
            '{ name = "b", action = "fakevendor.step", connector = "vendor" }',
            "onboarding.tasks[0].after",
            "cycle: a -> b -> a",
        ),
        (
            '{ name = "a", action = "fakevendor.step", connector = "vendor", after = ["zz"] }',
            "onboarding.tasks[0].after",
            "unknown task 'zz'",
        ),
        (
            '{ name = "a", action = "fakevendor.step", connector = "vendor", retry = { attempts = 0 } }',
            "onboarding.tasks[0].retry.attempts",
            "positive integer",
        ),
        (
            '{ name = "a", action = "fakevendor.step", connector = "vendor", color = "red" }',
            "onboarding.tasks[0].color",
            "unknown key",
        ),
        (
            '{ name = "a", action = "fakevendor.nope", connector = "vendor" }',
            "onboarding.tasks[0].action",
            "unknown action 'fakevendor.nope' (known: ",
        ),
        (
            '{ name = "a", action = "fakevendor.step" }',
            "onboarding.tasks[0].connector",
            "required: action fakevendor.step acts on a fakevendor connector",
        ),
    ],
)
def test_configuration_problems_name_their_key(tmp_path: Path, tasks: str, where: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        OnboardingFlow(make_project(tmp_path, tasks))
    found = [str(p) for p in raised.value.problems]
    assert any(p.startswith(f"{where}: ") and message in p for p in found), found


def test_an_action_of_another_plugin_than_its_connector_is_refused_and_config_check_says_so(
    tmp_path: Path, hub_cli: HubCli
) -> None:
    make_project(
        tmp_path,
        '{ name = "a", action = "fakevendor.step", connector = "files_conn" }',
        extra='[connectors.files_conn]\nplugin = "files"\n[connectors.files_conn.config]\npath = "x.csv"\nstream = "x"\n',
    )
    code, _, err = hub_cli(["config", "check"], tmp_path / "hub.toml")
    assert code == 2
    assert (
        "onboarding.tasks[0].connector: action fakevendor.step acts on fakevendor connectors; files_conn is a files connector"
        in err
    )


def test_tasks_run_after_the_previous_one_unless_after_says_otherwise(tmp_path: Path) -> None:
    project = make_project(tmp_path, FULL_FLOW)
    settings = load_settings(project.path, project.connectors)
    after = {t.name: t.after for t in settings.onboarding.tasks}
    assert after["create_hr_record"] == ()
    assert after["create_oa_account"] == ("create_hr_record",)
    assert after["enrol_payroll"] == ("create_hr_record",)
    assert after["mark_signed"] == ("send_contract",)
    assert settings.onboarding.retry.attempts == 3 and settings.onboarding.claim_ttl == 60


# -- the flow end to end ----------------------------------------------------------------------


def test_dependencies_are_respected_and_callbacks_finish_waiting_tasks(tmp_path: Path) -> None:
    project = make_project(tmp_path, FULL_FLOW)
    flow = OnboardingFlow(project)
    case_id, created = flow.open_case(PERSON, source="file", now=T0)
    assert created
    runner = OnboardingRunner(flow)

    report = runner.run_once(now=T0)
    assert statuses(flow, case_id) == {
        "create_hr_record": "DONE",
        "create_oa_account": "DONE",
        "start_approval": "WAITING",
        "enrol_payroll": "DONE",
        "send_contract": "PENDING",  # after the approval, which waits for its callback
        "mark_signed": "PENDING",
        "sync_final": "PENDING",
    }
    assert (report.done, report.waiting) == (3, 1)
    order = [task for _, task in vendor_calls(project)]
    assert order.index("create_hr_record") < min(
        order.index("create_oa_account"), order.index("enrol_payroll")
    )
    assert order.index("create_oa_account") < order.index("start_approval")
    # a later task reads the results of earlier ones (the HR master's id)
    account = flow.open_result(tasks_of(flow, case_id)["create_oa_account"])
    assert account.data["earlier"]["create_hr_record"] == object_of(flow, case_id, "create_hr_record")
    assert tasks_of(flow, case_id)["start_approval"].waiting_for == "approval_finished"

    assert runner.run_once(now=T0).claimed == 0  # nothing due while the approval is pending
    approval = object_of(flow, case_id, "start_approval")
    assert (
        flow.on_callback("vendor", "approval_finished", "someone-else", {}).status == CallbackStatus.NO_MATCH
    )
    interim = flow.on_callback("vendor", "approval_finished", approval, {"result": "pending"})
    assert interim.status == CallbackStatus.MATCHED and statuses(flow, case_id)["start_approval"] == "WAITING"
    done = flow.on_callback("vendor", "approval_finished", approval, {"result": "approved"})
    assert done.status == CallbackStatus.MATCHED and done.tasks == (f"{case_id}/start_approval",)
    again = flow.on_callback("vendor", "approval_finished", approval, {"result": "approved"})
    assert again.status == CallbackStatus.ALREADY_HANDLED  # a redelivered callback changes nothing

    runner.run_once(now=T0)
    assert statuses(flow, case_id)["send_contract"] == "WAITING"
    assert flow.on_callback(
        "vendor", "contract_signed", object_of(flow, case_id, "send_contract"), {}
    ).status == (CallbackStatus.MATCHED)
    runner.run_once(now=T0)
    assert set(statuses(flow, case_id).values()) == {"DONE"}
    assert case_status(flow, case_id) == CaseStatus.COMPLETED
    assert len(vendor_objects(project)) == 4  # record, account, approval, contract: once each
    assert sorted(set(vendor_calls(project))) == sorted(vendor_calls(project))  # one perform per task


def test_one_case_per_offer_and_idempotency_keys_are_stable(tmp_path: Path) -> None:
    flow = OnboardingFlow(make_project(tmp_path, FULL_FLOW))
    first, created = flow.open_case({**PERSON, "offer_remote_id": "OF-1"}, source="file")
    again, created_again = flow.open_case(PERSON, source="offer", offer_remote_id="OF-1")
    other, _ = flow.open_case(PERSON, source="file")
    assert created and not created_again and again == first and other != first
    keys = {t.idempotency_key for t in tasks_of(flow, first).values()}
    assert tasks_of(flow, first)["create_hr_record"].idempotency_key == idempotency_key(
        first, "create_hr_record"
    )
    assert len(keys) == 7 and not keys & {t.idempotency_key for t in tasks_of(flow, other).values()}


def test_failures_retry_with_backoff_then_wait_for_an_operator_and_retry_resumes(
    tmp_path: Path, hub_cli: HubCli
) -> None:
    project = make_project(
        tmp_path,
        '{ name = "enrol_payroll", action = "fakevendor.step", connector = "vendor", options = { fail_times = 3 } },\n'
        '{ name = "after_payroll", action = "fakevendor.step", connector = "vendor" },\n'
        '{ name = "independent", action = "fakevendor.step", connector = "vendor", after = [] },',
    )
    flow = OnboardingFlow(project)
    case_id, _ = flow.open_case(PERSON, source="file", now=T0)
    runner = OnboardingRunner(flow)

    runner.run_once(now=T0)
    task = tasks_of(flow, case_id)["enrol_payroll"]
    assert (task.status, task.attempts) == ("FAILED", 1)
    assert "503" in (task.last_error or "")
    assert T0 + timedelta(seconds=5) <= aware(task.next_attempt_at) <= T0 + timedelta(seconds=10)
    assert runner.run_once(now=T0 + timedelta(seconds=4)).claimed == 0  # not due yet

    runner.run_once(now=T0 + timedelta(seconds=11))
    task = tasks_of(flow, case_id)["enrol_payroll"]
    moment = T0 + timedelta(seconds=11)
    assert (task.status, task.attempts) == ("FAILED", 2)
    assert moment + timedelta(seconds=10) <= aware(task.next_attempt_at) <= moment + timedelta(seconds=20)

    runner.run_once(now=T0 + timedelta(seconds=60))
    task = tasks_of(flow, case_id)["enrol_payroll"]
    assert (task.status, task.attempts) == ("NEEDS_OPERATOR", 3)
    assert "out of attempts" in (task.last_error or "")
    assert statuses(flow, case_id) == {
        "enrol_payroll": "NEEDS_OPERATOR",
        "after_payroll": "PENDING",
        "independent": "DONE",
    }
    assert case_status(flow, case_id) == CaseStatus.NEEDS_OPERATOR
    assert runner.run_once(now=T0 + timedelta(days=1)).claimed == 0  # nothing until an operator acts

    code, out, _ = hub_cli(["onboarding", "retry", case_id[:8], "enrol_payroll"], project.path)
    assert code == 0 and "queued enrol_payroll" in out
    assert case_status(flow, case_id) == CaseStatus.OPEN
    runner.run_once(now=T0 + timedelta(days=1))
    assert statuses(flow, case_id) == {
        "enrol_payroll": "DONE",
        "after_payroll": "DONE",
        "independent": "DONE",
    }
    assert case_status(flow, case_id) == CaseStatus.COMPLETED
    assert len([c for c in vendor_calls(project) if c[1] == "enrol_payroll"]) == 4
    with project.db.session() as session:
        audit = session.execute(
            sa.select(AuditEntry).where(AuditEntry.action == "onboarding.retry")
        ).scalar_one()
    assert audit.details == {"tasks": ["enrol_payroll"]}


def test_a_refusal_goes_to_an_operator_at_once_with_a_masked_reason(tmp_path: Path) -> None:
    flow = OnboardingFlow(
        make_project(
            tmp_path,
            '{ name = "a", action = "fakevendor.step", connector = "vendor", options = { permanent = true } }',
        )
    )
    case_id, _ = flow.open_case(PERSON, source="file")
    OnboardingRunner(flow).run_once()
    task = tasks_of(flow, case_id)["a"]
    assert (task.status, task.attempts) == ("NEEDS_OPERATOR", 1)
    assert "138****8000" in (task.last_error or "") and "13800138000" not in (task.last_error or "")


def test_operators_skip_a_task_and_the_tasks_after_it_run(tmp_path: Path, hub_cli: HubCli) -> None:
    project = make_project(
        tmp_path,
        '{ name = "a", action = "fakevendor.step", connector = "vendor", options = { permanent = true } },\n'
        '{ name = "b", action = "fakevendor.step", connector = "vendor" },',
    )
    flow = OnboardingFlow(project)
    case_id, _ = flow.open_case(PERSON, source="file")
    OnboardingRunner(flow).run_once()
    code, _, _ = hub_cli(["onboarding", "skip", case_id, "a", "--reason", "enrolled by hand"], project.path)
    assert code == 0
    OnboardingRunner(flow).run_once()
    assert statuses(flow, case_id) == {"a": "SKIPPED", "b": "DONE"}
    assert case_status(flow, case_id) == CaseStatus.COMPLETED


# -- crashes between the vendor's reply and hub's commit ------------------------------------


@pytest.mark.parametrize(
    ("task", "expect_status", "expect_objects"),
    [
        ('action = "fakevendor.create_record", options = { crash_times = 1 }', "DONE", 1),  # find() path
        ('action = "fakevendor.start_approval", options = { crash_times = 1 }', "WAITING", 1),  # token path
        (
            'action = "fakevendor.create_record", options = { crash_times = 1, naive = true }',
            "DONE",
            2,
        ),  # control
    ],
    ids=["find", "idempotency-key", "control-without-either"],
)
def test_a_crash_after_the_vendor_call_creates_no_duplicate(
    tmp_path: Path, task: str, expect_status: str, expect_objects: int
) -> None:
    project = make_project(tmp_path, f'{{ name = "t", connector = "vendor", {task} }}')
    flow = OnboardingFlow(project)
    case_id, _ = flow.open_case(PERSON, source="file", now=T0)
    runner = OnboardingRunner(flow)
    crash(lambda: runner.run_once(now=T0))
    row = tasks_of(flow, case_id)["t"]
    assert (row.status, row.attempts) == ("IN_PROGRESS", 1)  # the reply was never recorded
    assert len(vendor_objects(project)) == 1

    assert OnboardingRunner(flow).run_once(now=T0 + timedelta(seconds=30)).claimed == 0  # claim still live
    report = OnboardingRunner(flow).run_once(now=T0 + timedelta(seconds=61))  # the claim lapsed
    row = tasks_of(flow, case_id)["t"]
    assert (row.status, row.attempts) == (expect_status, 2)
    objects = vendor_objects(project)
    assert len(objects) == expect_objects
    if expect_objects == 1:
        assert object_of(flow, case_id, "t") == objects[0][0]  # hub knows the object the crash made
    if "create_record" in task and expect_objects == 1:
        assert report.recovered == 1 and "not created again" in (row.last_error or "")


def test_a_task_whose_attempts_all_crashed_waits_for_an_operator(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        '{ name = "t", action = "fakevendor.start_approval", connector = "vendor", options = { crash_times = 9 } }',
    )
    flow = OnboardingFlow(project)
    case_id, _ = flow.open_case(PERSON, source="file", now=T0)
    moment = T0
    for _ in range(3):
        crash(lambda at=moment: OnboardingRunner(flow).run_once(now=at))
        moment += timedelta(seconds=61)
    OnboardingRunner(flow).run_once(now=moment)
    row = tasks_of(flow, case_id)["t"]
    assert (row.status, row.attempts) == ("NEEDS_OPERATOR", 3)
    assert "did not finish" in (row.last_error or "")
    assert len(vendor_objects(project)) == 1  # three attempts, one object (the idempotency token)


# -- concurrent runners, on each backend -----------------------------------------------------


def test_a_claim_is_exclusive_on_each_backend(tmp_path: Path, any_db_url: str) -> None:
    flow = OnboardingFlow(
        make_project(
            tmp_path, '{ name = "t", action = "fakevendor.step", connector = "vendor" }', database=any_db_url
        )
    )
    case_id, _ = flow.open_case(PERSON, source="file", now=T0)
    first, second = OnboardingRunner(flow), OnboardingRunner(flow)
    seen_by_both = first.due(T0)
    assert [t.name for t in seen_by_both] == ["t"] and [t.name for t in second.due(T0)] == ["t"]
    won = first.claim(seen_by_both[0], T0)
    assert won is not None and won.claim_token is not None
    assert second.claim(seen_by_both[0], T0) is None  # the row it saw is no longer there
    assert second.due(T0 + timedelta(seconds=59)) == []  # claimed until T0 + 60s
    # a lapsed claim is taken over; the old holder cannot record its outcome any more
    stale = second.due(T0 + timedelta(seconds=61))
    taken = second.claim(stale[0], T0 + timedelta(seconds=61))
    assert taken is not None and taken.attempts == 2
    assert (
        flow.record_outcome(
            won, Outcome.done(), now=T0, guard=OnboardingTaskRow.claim_token == won.claim_token, attempts=1
        )
        is None
    )
    assert (
        flow.record_outcome(
            taken,
            Outcome.done(),
            now=T0,
            guard=OnboardingTaskRow.claim_token == taken.claim_token,
            attempts=2,
        )
        == "DONE"
    )
    assert case_status(flow, case_id) == CaseStatus.COMPLETED
    flow.db.dispose()


def test_concurrent_runners_never_perform_a_task_twice(tmp_path: Path, any_db_url: str) -> None:
    project = make_project(
        tmp_path,
        '{ name = "record", action = "fakevendor.create_record", connector = "vendor", options = { slow = 0.01, naive = true } },\n'
        '{ name = "account", action = "fakevendor.step", connector = "vendor", options = { slow = 0.01 } },\n'
        '{ name = "payroll", action = "fakevendor.step", connector = "vendor", after = ["record"], options = { slow = 0.01 } },',
        database=any_db_url,
    )
    flow = OnboardingFlow(project)
    cases = [flow.open_case({**PERSON, "n": i}, source="file")[0] for i in range(8)]
    start = threading.Barrier(3)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            start.wait()
            runner = OnboardingRunner(flow)
            while runner.run_once().claimed:
                pass
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    calls = vendor_calls(project)
    assert len(calls) == len(set(calls)) == 24  # each task of each case performed exactly once
    assert all(set(statuses(flow, c).values()) == {"DONE"} for c in cases)
    assert len(vendor_objects(project)) == 8  # naive create: a second perform would show here
    flow.db.dispose()


# -- cancel ------------------------------------------------------------------------------------


def test_cancel_undoes_in_reverse_order_and_reports_what_cannot_be_undone(
    tmp_path: Path, hub_cli: HubCli
) -> None:
    project = make_project(tmp_path, FULL_FLOW)
    flow = OnboardingFlow(project)
    case_id, _ = flow.open_case(PERSON, source="file", now=T0)
    OnboardingRunner(flow).run_once(now=T0)
    flow.on_callback(
        "vendor",
        "approval_finished",
        object_of(flow, case_id, "start_approval"),
        {},
        now=T0 + timedelta(minutes=1),
    )
    OnboardingRunner(flow).run_once(now=T0 + timedelta(minutes=2))
    assert statuses(flow, case_id)["send_contract"] == "WAITING"
    # record done at T0, account at T0, approval done at T0+1m (no undo), contract waiting (revocable)

    code, out, _ = hub_cli(["onboarding", "cancel", case_id, "--reason", "offer withdrawn"], project.path)
    assert code == 3  # something could not be undone
    assert "cannot be undone (still at the vendor): start_approval" in out
    assert "not started, cancelled: mark_signed, sync_final" in out
    undone = [task for _, task in vendor_calls(project, "undo")]
    assert undone == ["send_contract", "create_oa_account", "create_hr_record"]  # newest first
    by_task = {task: status for _, task, status in vendor_objects(project)}
    assert by_task == {
        "create_hr_record": "disabled",
        "create_oa_account": "disabled",
        "start_approval": "active",
        "send_contract": "revoked",
    }
    assert case_status(flow, case_id) == CaseStatus.CANCELLED
    rows = tasks_of(flow, case_id)
    assert (rows["start_approval"].status, rows["start_approval"].undo_status) == ("DONE", "not_supported")
    assert (rows["create_hr_record"].status, rows["create_hr_record"].undo_status) == ("CANCELLED", "undone")
    assert rows["enrol_payroll"].undo_status == "not_supported"  # a step has no undo
    assert OnboardingRunner(flow).run_once(now=T0 + timedelta(hours=1)).claimed == 0


def test_a_failed_undo_is_reported_and_a_task_mid_attempt_is_undone_once_it_finishes(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        '{ name = "record", action = "fakevendor.create_record", connector = "vendor", options = { undo_fails = true } },\n'
        '{ name = "account", action = "fakevendor.create_account", connector = "vendor" },',
    )
    flow = OnboardingFlow(project)
    case_id, _ = flow.open_case(PERSON, source="file", now=T0)
    runner = OnboardingRunner(flow)
    record = runner.claim(runner.due(T0)[0], T0)
    assert record is not None and record.name == "record"
    report = flow.cancel(case_id, "no-show", now=T0)  # the record is being created right now
    assert report.still_running == ["record"] and report.cancelled == ["account"]
    assert case_status(flow, case_id) == CaseStatus.CANCELLING
    runner._perform(record, T0, RunReport())
    assert statuses(flow, case_id)["record"] == "DONE"  # its outcome is still recorded

    finished = runner.run_once(now=T0 + timedelta(seconds=1))  # the runner finishes the cancellation
    assert finished.cancellations == 1
    row = tasks_of(flow, case_id)["record"]
    assert (row.status, row.undo_status) == ("DONE", "failed") and "503" in (row.undo_error or "")
    assert case_status(flow, case_id) == CaseStatus.CANCELLED
    assert [status for _, _, status in vendor_objects(project)] == ["active"]


# -- callbacks from the webhook inbox -------------------------------------------------------


def test_callbacks_from_the_webhook_inbox_complete_waiting_tasks_exactly_once(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        '{ name = "approval", action = "fakevendor.start_approval", connector = "vendor" },\n'
        '{ name = "contract", action = "fakevendor.send_contract", connector = "vendor" },\n'
        '{ name = "after", action = "fakevendor.step", connector = "vendor" },',
    )
    flow = OnboardingFlow(project)
    signed, _ = flow.open_case(PERSON, source="file")
    refused, _ = flow.open_case(PERSON, source="file")
    OnboardingRunner(flow).run_once()
    inbox = Inbox(project.db, project.keyring)
    dispatcher = onboarding_dispatcher(project, inbox)
    assert isinstance(dispatcher, OnboardingDispatcher)
    processor = InboxProcessor(project, inbox, dispatcher=dispatcher)

    def deliver(event_id: str, body: dict[str, Any]) -> None:
        inbox.store(
            "vendor", Accepted(event_id=event_id, action=str(body["type"]), body=json.dumps(body).encode())
        )

    deliver(
        "e1", {"type": "approval_finished", "id": object_of(flow, signed, "approval"), "result": "approved"}
    )
    deliver(
        "e2", {"type": "approval_finished", "id": object_of(flow, refused, "approval"), "result": "rejected"}
    )
    deliver("e3", {"type": "something_else", "id": "x"})
    assert processor.run_once() == 3
    assert statuses(flow, signed)["approval"] == "DONE"
    assert statuses(flow, refused)["approval"] == "NEEDS_OPERATOR"
    assert "rejected" in (tasks_of(flow, refused)["approval"].last_error or "")

    OnboardingRunner(flow).run_once()
    contract = object_of(flow, signed, "contract")
    # the inbox delivers again after a crash before its mark: the second delivery is a no-op
    assert dispatcher("vendor", inbox.due()) is not None
    deliver("e4", {"type": "contract_signed", "id": contract})
    deliver("e5", {"type": "contract_signed", "id": contract, "again": True})
    assert processor.run_once() == 2
    OnboardingRunner(flow).run_once()
    assert set(statuses(flow, signed).values()) == {"DONE"}
    assert case_status(flow, signed) == CaseStatus.COMPLETED
    assert [e["status"] for e in inbox.entries()] == ["processed"] * 5


def test_a_callback_faster_than_hubs_commit_is_postponed_not_lost(tmp_path: Path) -> None:
    project = make_project(
        tmp_path, '{ name = "approval", action = "fakevendor.start_approval", connector = "vendor" }'
    )
    flow = OnboardingFlow(project)
    flow.open_case(PERSON, source="file")
    runner = OnboardingRunner(flow)
    claimed = runner.claim(runner.due(datetime.now(UTC))[0], datetime.now(UTC))
    assert claimed is not None
    inbox = Inbox(project.db, project.keyring)
    processor = InboxProcessor(project, inbox, dispatcher=onboarding_dispatcher(project, inbox))
    # the vendor calls back about an object hub has not recorded yet (any id: hub cannot tell)
    inbox.store(
        "vendor",
        Accepted(
            event_id="early",
            action="approval_finished",
            body=b'{"type": "approval_finished", "id": "not-yet"}',
        ),
    )
    assert processor.run_once() == 0
    entry = inbox.entries()[0]
    assert (entry["status"], entry["attempts"]) == ("received", 0) and "being performed" in entry["reason"]
    assert entry["next_attempt_at"] is not None


# -- personal data -------------------------------------------------------------------------


def test_nothing_in_hubs_database_holds_the_case_personal_data_in_clear(
    tmp_path: Path, hub_cli: HubCli, caplog: pytest.LogCaptureFixture
) -> None:
    project = make_project(
        tmp_path,
        FULL_FLOW
        + '  { name = "payroll_check", action = "fakevendor.step", connector = "vendor", after = [], options = { permanent = true } },',
    )
    case_file = tmp_path / "case.json"
    case_file.write_text(json.dumps(PERSON, ensure_ascii=False), encoding="utf-8")
    caplog.set_level(logging.DEBUG)
    code, out, _ = hub_cli(["onboarding", "start", "--from", str(case_file)], project.path)
    assert code == 0
    case_id = out.split()[-1]
    code, out_run, _ = hub_cli(["onboarding", "run", "--once"], project.path)
    assert code == 3  # the refused task needs an operator
    code, shown, _ = hub_cli(["onboarding", "show", case_id], project.path)
    assert code == 0 and "欧**" in shown and "110***********002X" in shown and "139****5678" in shown
    code, shown_json, _ = hub_cli(["onboarding", "show", case_id, "--json"], project.path)
    person = json.loads(shown_json)["person"]
    assert (
        person["salary"] == "***"
        and person["bank_account"] == "**** 3445"
        and person["start_date"] == "2030-04-01"
    )
    code, listed, _ = hub_cli(["onboarding", "list", "--status", "NEEDS_OPERATOR"], project.path)
    assert case_id in listed
    project.db.dispose()
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("hub.db*"))
    text = "\n".join([out, out_run, shown, shown_json, listed, caplog.text])
    for secret in SECRETS:
        assert secret.encode() not in stored, secret
        assert secret not in text, secret
    assert OnboardingFlow(Project(project.path)).case_data(case_id)["id_number"] == PERSON["id_number"]


def test_key_rotation_moves_onboarding_ciphertexts_too(tmp_path: Path) -> None:
    project = make_project(
        tmp_path, '{ name = "record", action = "fakevendor.create_record", connector = "vendor" }'
    )
    flow = OnboardingFlow(project)
    case_id, _ = flow.open_case(PERSON, source="file")
    OnboardingRunner(flow).run_once()
    old = project.keyring.primary("personal").id
    project.keyring.rotate(["personal"])
    maintenance.reencrypt(project)
    assert maintenance.key_usage(project).get(old, 0) == 0
    assert flow.case_data(case_id)["phone"] == PERSON["phone"]
    assert flow.open_result(tasks_of(flow, case_id)["record"]).ref is not None


# -- cases from offers ---------------------------------------------------------------------


def canonical_store(path: Path, offers: list[tuple[str, str]]) -> None:
    """A canonical store as the recruiting pipelines write it (values in clear: encrypt_pii off)."""
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE IF NOT EXISTS offers (remote_id TEXT PRIMARY KEY, status TEXT, start_date TEXT, job_title TEXT, compensation TEXT, custom_fields TEXT)"
            )
        )
        conn.execute(
            sa.text("CREATE TABLE IF NOT EXISTS candidates (remote_id TEXT PRIMARY KEY, custom_fields TEXT)")
        )
        conn.execute(sa.text("DELETE FROM offers"))
        for remote_id, status in offers:
            conn.execute(
                sa.text(
                    "INSERT INTO offers VALUES (:id, :status, '2030-04-01', 'Backend engineer', :pay, :custom)"
                ),
                {
                    "id": remote_id,
                    "status": json.dumps({"value": status, "raw": status.lower()}),
                    "pay": json.dumps(
                        {"amount": {"amount": "38765.43", "currency": "CNY"}, "pay_period": "MONTH"}
                    ),
                    "custom": json.dumps(
                        {"candidate_remote_id": f"C-{remote_id}", "application_remote_id": f"A-{remote_id}"}
                    ),
                },
            )
            conn.execute(
                sa.text("INSERT OR REPLACE INTO candidates VALUES (:id, :custom)"),
                {
                    "id": f"C-{remote_id}",
                    "custom": json.dumps(
                        {"name": "欧阳娜娜", "phone": "+8613912345678", "email": "nana.ouyang@example.com"},
                        ensure_ascii=False,
                    ),
                },
            )
    engine.dispose()


def offer_event(project: Project, remote_id: str, kind: str = "created") -> None:
    """What a sync of the offers stream records in change_events (hub.changes)."""
    digest = project.keyring.blind(remote_id, "test-offers")
    sealed = ChangeRecorder(project.keyring, b"s" * 32, "greenhouse").seal_record_id(remote_id, digest)
    with project.db.session() as session:
        session.add(
            ChangeEvent(
                run_id=1,
                pipeline="greenhouse",
                stream="offers",
                entity="Offer",
                kind=kind,
                key_digest=digest,
                record_id=sealed,
                changed_fields=["status"],
            )
        )


def test_accepted_offers_open_one_case_each_from_intake_and_start(tmp_path: Path, hub_cli: HubCli) -> None:
    store = tmp_path / "canonical.db"
    canonical_store(store, [("OF-1", "ACCEPTED"), ("OF-2", "SENT")])
    project = make_project(
        tmp_path,
        '{ name = "record", action = "fakevendor.create_record", connector = "vendor" }',
        extra='store = "canonical"\n\n[connectors.canonical]\nplugin = "sql"\nencrypt_pii = false\n'
        f'[connectors.canonical.config]\nurl = "sqlite:///{store}"\n',
    )
    flow = OnboardingFlow(project)
    offer_event(project, "OF-1")
    offer_event(project, "OF-2")
    first = intake(flow)
    assert (first.read, first.opened, first.not_accepted) == (2, 1, 1)
    assert intake(flow).read == 0  # the cursor moved: each event is read once

    [case] = flow.list_cases()
    data = flow.case_data(case.id)
    assert data["offer_remote_id"] == "OF-1" and data["candidate_remote_id"] == "C-OF-1"
    assert data["phone"] == PERSON["phone"] and data["name"] == "欧阳娜娜"
    assert data["salary"]["amount"]["amount"] == "38765.43" and data["start_date"] == "2030-04-01"
    assert case.source == "intake" and case.source_ref == "OF-1"

    code, out, _ = hub_cli(["onboarding", "start", "--offer", "OF-1"], project.path)
    assert code == 0 and f"already open: case {case.id}" in out
    code, _, err = hub_cli(["onboarding", "start", "--offer", "OF-2"], project.path)
    assert code == 1 and "OF-2 is SENT, not ACCEPTED" in err
    code, _, err = hub_cli(["onboarding", "start", "--offer", "OF-9"], project.path)
    assert code == 1 and "not in the canonical store" in err

    canonical_store(store, [("OF-1", "ACCEPTED"), ("OF-2", "ACCEPTED")])  # the candidate accepted
    offer_event(project, "OF-2", "updated")
    offer_event(project, "OF-1", "updated")  # an update of an offer that has its case already
    second = intake(flow)
    assert (second.read, second.opened, second.existing) == (2, 1, 1)
    assert len(flow.list_cases()) == 2

    canonical_store(store, [("OF-1", "ACCEPTED"), ("OF-2", "ACCEPTED"), ("OF-3", "ACCEPTED")])
    offer_event(project, "OF-3")
    code, out, _ = hub_cli(["onboarding", "run", "--once", "--intake"], project.path)
    assert code == 0 and "3 attempt(s): 3 done" in out  # OF-3's case opened, every record made
    assert len(flow.list_cases()) == 3 and len(vendor_objects(project)) == 3


def test_the_scheduler_runs_onboarding(tmp_path: Path) -> None:
    from hub.scheduler import HubScheduler, next_fire_times

    project = make_project(
        tmp_path, '{ name = "record", action = "fakevendor.create_record", connector = "vendor" }'
    )
    text = project.path.read_text(encoding="utf-8").replace("schedule = false", 'schedule = "1s"')
    project.path.write_text(text, encoding="utf-8")
    project = Project(project.path)
    case_id, _ = OnboardingFlow(project).open_case(PERSON, source="file")
    assert [r["schedule"] for r in next_fire_times(project) if r["pipeline"] == "(onboarding run)"] == [
        "every 1s"
    ]
    HubScheduler(project, lease_ttl=3).run(duration=3.5)
    assert statuses(OnboardingFlow(project), case_id) == {"record": "DONE"}
