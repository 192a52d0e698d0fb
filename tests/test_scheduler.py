"""The scheduler: schedules fire, one leader per database, takeover, schedule configuration."""

from __future__ import annotations

import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from hub.config import Schedule
from hub.errors import ConfigurationError
from hub.project import Project
from hub.scheduler import HubScheduler, trigger_for
from hub.store.models import Lease, Run
from tests.conftest import files_to_sql_toml
from tests.datagen import write_people_csv

# Makes every run last a while, so that two overlapping runs could not go unnoticed.
SLOW_PLUGIN = """
import time

import hub


@hub.hookimpl
def hub_run_started(run_id: int, pipeline: str, trigger: str) -> None:
    time.sleep(0.4)
"""


HubCli = Callable[[list[str], Path], tuple[int, str, str]]


@pytest.fixture
def hub_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[HubCli]:
    """``hub ARGS`` run by ``main()`` in this process, which saves a CLI start-up (seconds) per call.

    Returns the exit code, stdout and stderr.
    """
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
        root.removeHandler(handler)  # it writes to a stream capsys closes
    root.setLevel(level)


def make_project(
    tmp_path: Path,
    write_project: Callable[..., Path],
    extra: str = "",
    *,
    slow: bool = False,
    name: str = "hub.toml",
) -> Path:
    """A files -> sql pipeline ``load`` (300 rows) with hub's database in tmp_path."""
    source = tmp_path / "people.csv"
    write_people_csv(source, 300)
    body = files_to_sql_toml(
        source, f"sqlite:///{tmp_path / 'hr.db'}", hub_db=f"sqlite:///{tmp_path / 'hub.db'}", extra=extra
    )
    if slow:
        (tmp_path / "plugins").mkdir()
        (tmp_path / "plugins" / "slow.py").write_text(SLOW_PLUGIN, encoding="utf-8")
        body = body.replace("[hub]\n", '[hub]\nplugins_dir = "plugins"\n', 1)
    return write_project(body, name=name)


def write_schedule(config: Path, name: str, body: str) -> Path:
    directory = config.parent / "schedules"
    directory.mkdir(exist_ok=True)
    path = directory / name
    path.write_text(body, encoding="utf-8")
    return path


def runs_of(project: Project) -> list[Any]:
    with project.db.session() as session:
        return list(session.execute(sa.select(Run).order_by(Run.id)).scalars())


def utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def assert_no_overlap(runs: list[Any]) -> None:
    spans = sorted((utc(r.started_at), utc(r.finished_at), r.id) for r in runs)
    for (_, end, first), (start, _, second) in itertools.pairwise(spans):
        assert end <= start, f"runs {first} and {second} overlap"


def start_scheduler(config: Path, seconds: float, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HUB_CONFIG": str(config), "HUB_LOG_LEVEL": "INFO"}
    with open(log, "wb") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "scheduler", "start", "--for", str(seconds)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=handle,
        )


def wait_for(what: str, condition: Callable[[], bool], timeout: float = 40) -> None:
    """Poll until condition() holds (generous: CLI start-up takes seconds on a busy machine)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def first_verdict(log: Path) -> str:
    """How a scheduler process started: ``lead`` or ``standby``."""
    for line in log.read_text(encoding="utf-8").splitlines():
        if "this process leads the scheduler" in line:
            return "lead"
        if "standing by" in line:
            return "standby"
    return ""


# -- schedules fire ----------------------------------------------------------------------


def test_interval_schedule_fires_and_runs_list_shows_the_runs(
    tmp_path: Path, write_project, hub_cli: HubCli
) -> None:
    config = make_project(tmp_path, write_project)
    write_schedule(config, "load.toml", 'pipeline = "load"\ninterval = "1s"\n')
    project = Project(config)
    assert [(s.pipeline, s.interval_seconds, s.origin) for s in project.settings.schedules] == [
        ("load", 1.0, "schedules/load.toml")
    ]

    started = time.monotonic()
    HubScheduler(project).run(duration=4)
    assert time.monotonic() - started < 8

    runs = runs_of(project)
    assert 2 <= len(runs) <= 6, [(r.id, r.started_at) for r in runs]
    assert {(r.pipeline, r.trigger, r.status) for r in runs} == {("load", "schedule", "succeeded")}
    assert runs[0].counts["inserted"] == 300
    assert all(r.counts["unchanged"] == 300 for r in runs[1:])
    assert_no_overlap(runs)
    with project.db.session() as session:
        assert session.get(Lease, "scheduler") is None, "the scheduler lease is released on exit"

    code, out, err = hub_cli(["runs", "list", "--json"], config)
    assert code == 0, err
    shown = json.loads(out)
    assert sorted(r["id"] for r in shown) == [r.id for r in runs]
    assert {(r["trigger"], r["status"]) for r in shown} == {("schedule", "succeeded")}


def set_stored_fire_time(project: Project, job_id: str, when: datetime) -> None:
    """Edit the job store as if no scheduler had been running when the job fell due."""
    store = SQLAlchemyJobStore(url=project.settings.database, tablename="apscheduler_jobs")
    store.start(BackgroundScheduler(), "default")
    try:
        job = store.lookup_job(job_id)
        assert job is not None
        job.next_run_time = when
        store.update_job(job)
    finally:
        store.shutdown()


@pytest.mark.parametrize(("late", "runs"), [(timedelta(minutes=5), 1), (timedelta(hours=2), 0)])
def test_fire_due_while_no_scheduler_ran_runs_at_start_within_its_misfire_grace(
    tmp_path: Path, write_project, late: timedelta, runs: int
) -> None:
    """Like the demo's nightly schedule: a scheduler back within the hour still runs the 02:00 job."""
    config = make_project(tmp_path, write_project)
    write_schedule(config, "load.toml", 'pipeline = "load"\ncron = "0 2 * * *"\nmisfire_grace = "1h"\n')
    project = Project(config)
    HubScheduler(project).run(duration=0.1)  # stores the job
    set_stored_fire_time(project, "pipeline:load", datetime.now(UTC) - late)

    HubScheduler(project).run(duration=1.5)
    assert [(r.trigger, r.status) for r in runs_of(project)] == [("schedule", "succeeded")] * runs


# -- one scheduler per database ----------------------------------------------------------


def test_two_schedulers_on_one_database_run_each_fire_once(tmp_path: Path, write_project) -> None:
    config = make_project(tmp_path, write_project, 'schedule = { interval = "1s" }', slow=True)
    project = Project(config)
    assert project.db.is_current()  # migrated before the race starts

    duration = 6
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    procs = [start_scheduler(config, duration, log) for log in logs]
    try:
        for proc in procs:
            assert proc.wait(timeout=60) == 0
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()

    texts = [log.read_text(encoding="utf-8") for log in logs]
    assert sorted(first_verdict(log) for log in logs) == ["lead", "standby"], texts
    runs = runs_of(project)
    assert 3 <= len(runs) <= duration + 2, [(r.id, r.pid, r.started_at) for r in runs]
    assert {(r.trigger, r.status) for r in runs} == {("schedule", "succeeded")}
    assert_no_overlap(runs)
    leader = procs[[first_verdict(log) for log in logs].index("lead")]
    assert runs[0].pid == leader.pid
    assert not any("already running" in text for text in texts), "no fire should meet a run in progress"


def test_standby_takes_over_at_once_when_the_leader_is_killed(tmp_path: Path, write_project) -> None:
    config = make_project(tmp_path, write_project, 'schedule = { interval = "1s" }')
    project = Project(config)
    assert project.db.is_current()

    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [start_scheduler(config, 60, log) for log in logs]
    try:
        wait_for(
            "one leader and one standby", lambda: sorted(map(first_verdict, logs)) == ["lead", "standby"]
        )
        verdicts = [first_verdict(log) for log in logs]
        leader, standby = procs[verdicts.index("lead")], procs[verdicts.index("standby")]
        wait_for("a run by the leader", lambda: any(r.pid == leader.pid for r in runs_of(project)))
        with project.db.session() as session:
            lease = session.get(Lease, "scheduler")
            assert lease is not None and f":{leader.pid}:" in lease.owner
            expires = utc(lease.expires_at)

        leader.send_signal(signal.SIGKILL)
        leader.wait()
        # The lease is still valid for several seconds; a dead holder on this host does not count.
        wait_for("a run by the standby", lambda: any(r.pid == standby.pid for r in runs_of(project)))
        taken_over = min(utc(r.started_at) for r in runs_of(project) if r.pid == standby.pid)
        assert taken_over < expires, "the standby waited for the dead leader's lease to expire"
        with project.db.session() as session:
            lease = session.get(Lease, "scheduler")
            assert lease is not None and f":{standby.pid}:" in lease.owner

        standby.send_signal(signal.SIGTERM)
        assert standby.wait(timeout=30) == 0
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()

    runs = runs_of(project)
    assert {r.pid for r in runs} == {leader.pid, standby.pid}
    assert all(r.trigger == "schedule" for r in runs)
    # A run the kill cut short is closed as crashed by the next one; every other run succeeded.
    assert {r.status for r in runs} <= {"succeeded", "crashed"}
    assert runs[-1].status == "succeeded"
    assert_no_overlap([r for r in runs if r.finished_at is not None and r.status == "succeeded"])
    assert "this process leads the scheduler" in logs[procs.index(standby)].read_text(encoding="utf-8")


# -- schedule configuration --------------------------------------------------------------


def test_schedules_list_shows_the_next_cron_fire_in_its_time_zone(
    tmp_path: Path, write_project, hub_cli: HubCli
) -> None:
    config = make_project(tmp_path, write_project)
    write_schedule(config, "load.toml", 'pipeline = "load"\ncron = "30 2 * * 0"\ntimezone = "Asia/Kolkata"\n')
    before = datetime.now(UTC)
    code, out, err = hub_cli(["schedules", "list", "--json"], config)
    assert code == 0, err
    (row,) = json.loads(out)
    assert row["pipeline"] == "load"
    assert row["schedule"] == "cron 30 2 * * 0 (Asia/Kolkata)"
    assert row["origin"] == "schedules/load.toml"
    next_fire = datetime.fromisoformat(row["next_fire"])
    assert next_fire.utcoffset() == timedelta(hours=5, minutes=30)
    # 02:30 on a Sunday (crontab's day 0), India time, within the coming week.
    assert (next_fire.strftime("%a"), next_fire.hour, next_fire.minute) == ("Sun", 2, 30)
    assert before < next_fire <= before + timedelta(days=7)


@pytest.mark.parametrize(
    ("cron", "after", "fires"),
    [
        # Monday to Friday, as in crontab: from Friday noon the next is Monday.
        ("0 2 * * 1-5", datetime(2026, 11, 27, 12), [datetime(2026, 11, 30, 2), datetime(2026, 12, 1, 2)]),
        # 0 and 7 are Sunday.
        ("0 2 * * 0", datetime(2026, 11, 25, 12), [datetime(2026, 11, 29, 2), datetime(2026, 12, 6, 2)]),
        ("0 2 * * 7", datetime(2026, 11, 25, 12), [datetime(2026, 11, 29, 2), datetime(2026, 12, 6, 2)]),
        ("0 2 * * 5-7", datetime(2026, 11, 25, 12), [datetime(2026, 11, 27, 2), datetime(2026, 11, 28, 2)]),
        # Day of month and day of week both restricted: either one fires (Mon 30th, Tue 1st).
        ("0 2 1 * 1", datetime(2026, 11, 25, 12), [datetime(2026, 11, 30, 2), datetime(2026, 12, 1, 2)]),
    ],
)
def test_cron_fires_as_crontab_does(cron: str, after: datetime, fires: list[datetime]) -> None:
    tz = ZoneInfo("Asia/Shanghai")
    trigger = trigger_for(Schedule(pipeline="load", cron=cron, timezone="Asia/Shanghai"))
    previous, now, seen = None, after.replace(tzinfo=tz), []
    for _ in fires:
        previous = trigger.get_next_fire_time(previous, now)
        assert previous is not None
        seen.append(previous)
        now = previous + timedelta(seconds=1)
    assert seen == [f.replace(tzinfo=tz) for f in fires]


BAD_SCHEDULES = {
    "invalid cron": ('pipeline = "load"\ncron = "61 * * * *"\n', "schedules/bad.toml.cron"),
    "cron that never fires": ('pipeline = "load"\ncron = "0 2 31 2 *"\n', "schedules/bad.toml.cron"),
    "unknown pipeline": ('pipeline = "payroll"\ncron = "0 2 * * *"\n', "schedules/bad.toml:pipeline"),
    "pipeline not a name": ('pipeline = ["load"]\ncron = "0 2 * * *"\n', "schedules/bad.toml:pipeline"),
    "misfire grace under 1s": (
        'pipeline = "load"\ninterval = "1h"\nmisfire_grace = "0s"\n',
        "schedules/bad.toml.misfire_grace",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_SCHEDULES))
def test_bad_schedule_file_fails_config_loading_naming_the_file(
    tmp_path: Path, write_project, case: str
) -> None:
    config = make_project(tmp_path, write_project)
    body, where = BAD_SCHEDULES[case]
    write_schedule(config, "bad.toml", body)
    with pytest.raises(ConfigurationError) as caught:
        Project(config)
    assert [p.path for p in caught.value.problems] == [where], caught.value.problems


@pytest.mark.parametrize("case", ["invalid cron", "unknown pipeline"])
def test_bad_schedule_file_exits_2_from_the_cli(
    tmp_path: Path, write_project, hub_cli: HubCli, case: str
) -> None:
    config = make_project(tmp_path, write_project)
    write_schedule(config, "bad.toml", BAD_SCHEDULES[case][0])
    code, out, err = hub_cli(["schedules", "list", "--json"], config)
    assert code == 2, err
    assert out == ""
    assert "configuration error" in err and BAD_SCHEDULES[case][1] in err


def test_a_pipeline_scheduled_inline_and_in_schedules_dir_is_a_config_error(
    tmp_path: Path, write_project
) -> None:
    config = make_project(tmp_path, write_project, 'schedule = { interval = "1h" }')
    assert len(Project(config).settings.schedules) == 1
    write_schedule(config, "load.toml", 'pipeline = "load"\ncron = "0 2 * * *"\n')
    with pytest.raises(ConfigurationError) as caught:
        Project(config)
    (problem,) = caught.value.problems
    assert problem.path == "schedules/load.toml:pipeline"
    assert "already scheduled in hub.toml" in problem.message


def test_two_schedule_files_for_one_pipeline_are_a_config_error(tmp_path: Path, write_project) -> None:
    config = make_project(tmp_path, write_project)
    write_schedule(config, "a.toml", 'pipeline = "load"\ncron = "0 2 * * *"\n')
    write_schedule(config, "b.toml", 'pipeline = "load"\ninterval = "6h"\n')
    with pytest.raises(ConfigurationError) as caught:
        Project(config)
    (problem,) = caught.value.problems
    assert problem.path == "schedules/b.toml:pipeline"
    assert "already scheduled in schedules/a.toml" in problem.message


def test_schedule_file_problems_name_the_configured_schedules_dir(tmp_path: Path, write_project) -> None:
    config = make_project(tmp_path, write_project)
    config.write_text(config.read_text().replace("[hub]\n", '[hub]\nschedules_dir = "jobs"\n', 1))
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "bad.toml").write_text(
        'pipeline = "payroll"\ncron = "0 2 * * *"\n', encoding="utf-8"
    )
    with pytest.raises(ConfigurationError) as caught:
        Project(config)
    assert [p.path for p in caught.value.problems] == ["jobs/bad.toml:pipeline"]
