"""Unattended runs: APScheduler 3.11 with its job store in hub's database.

Only one scheduler process is active per database: each ``hub scheduler start`` competes
for the ``scheduler`` lease and the others stand by, taking over if the leader dies.
Each pipeline also holds its own lease while it runs, so a run never overlaps another.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
    JobEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from hub.config import Schedule, crontab_trigger
from hub.contracts.reminders import ContractRemindersConfig
from hub.errors import PipelineBusy
from hub.leases import LeaseHolder
from hub.project import Project

log = logging.getLogger("hub.scheduler")

JOB_PREFIX = "pipeline:"
#: The built-in retention job (``[privacy]`` raw_records_days / dead_letters_days).
PURGE_JOB_ID = "privacy:purge"
PURGE_MISFIRE_GRACE = 3600
#: The built-in onboarding job (``[onboarding] schedule``): intake of accepted offers, due tasks.
ONBOARDING_JOB_ID = "onboarding:run"
#: The built-in contract expiry reminder job (``[contracts.reminders] schedule``).
REMINDERS_JOB_ID = "contracts:reminders"
#: A cron fire of the reminder job missed by up to this much still runs (a run is harmless).
REMINDERS_MISFIRE_GRACE = 6 * 3600
_projects: dict[str, Project] = {}
_projects_lock = threading.Lock()


def trigger_for(schedule: Schedule) -> BaseTrigger:
    tz = ZoneInfo(schedule.timezone)
    if schedule.cron is not None:
        return crontab_trigger(schedule.cron, schedule.timezone)
    assert schedule.interval_seconds is not None
    return IntervalTrigger(seconds=schedule.interval_seconds, timezone=tz)


def describe(schedule: Schedule) -> str:
    if schedule.cron is not None:
        return f"cron {schedule.cron} ({schedule.timezone})"
    return f"every {schedule.interval_seconds:g}s"


def next_fire_times(project: Project, now: datetime | None = None) -> list[dict[str, Any]]:
    """Each configured schedule with its next fire time, without starting anything."""
    rows = []
    for schedule in project.settings.schedules:
        trigger = trigger_for(schedule)
        moment = now or datetime.now(ZoneInfo(schedule.timezone))
        rows.append(
            {
                "pipeline": schedule.pipeline,
                "schedule": describe(schedule),
                "next_fire": (trigger.get_next_fire_time(None, moment) or moment).isoformat(),
                "misfire_grace_seconds": schedule.misfire_grace_seconds,
                "coalesce": schedule.coalesce,
                "origin": schedule.origin,
            }
        )
    privacy, tz = project.settings.privacy, project.settings.timezone
    if privacy.raw_records_days is not None or privacy.dead_letters_days is not None:
        moment = now or datetime.now(ZoneInfo(tz))
        fire = crontab_trigger(privacy.schedule, tz).get_next_fire_time(None, moment) or moment
        rows.append(
            {
                "pipeline": "(privacy purge)",
                "schedule": f"cron {privacy.schedule} ({tz})",
                "next_fire": fire.isoformat(),
                "misfire_grace_seconds": PURGE_MISFIRE_GRACE,
                "coalesce": True,
                "origin": "hub.toml [privacy]",
            }
        )
    onboarding = project.settings.onboarding
    if onboarding.enabled and onboarding.schedule_seconds is not None:
        moment = now or datetime.now(ZoneInfo(tz))
        rows.append(
            {
                "pipeline": "(onboarding run)",
                "schedule": f"every {onboarding.schedule_seconds:g}s",
                "next_fire": (moment + timedelta(seconds=onboarding.schedule_seconds)).isoformat(),
                "misfire_grace_seconds": int(onboarding.schedule_seconds),
                "coalesce": True,
                "origin": "hub.toml [onboarding]",
            }
        )
    reminders = project.settings.contract_reminders
    if reminders is not None and reminders.scheduled:
        moment = now or datetime.now(ZoneInfo(tz))
        trigger = reminders_trigger(reminders, tz)
        rows.append(
            {
                "pipeline": "(contract reminders)",
                "schedule": reminders.describe_schedule(),
                "next_fire": (trigger.get_next_fire_time(None, moment) or moment).isoformat(),
                "misfire_grace_seconds": REMINDERS_MISFIRE_GRACE,
                "coalesce": True,
                "origin": "hub.toml [contracts.reminders]",
            }
        )
    return rows


def reminders_trigger(reminders: ContractRemindersConfig, timezone: str) -> BaseTrigger:
    """The reminder job's trigger: its cron in the project's time zone, or its interval."""
    if reminders.schedule_cron is not None:
        return crontab_trigger(reminders.schedule_cron, timezone)
    assert reminders.schedule_seconds is not None
    return IntervalTrigger(seconds=reminders.schedule_seconds, timezone=ZoneInfo(timezone))


def _project(config_path: str) -> Project:
    """The job's project, loaded once per scheduler process and shared by its jobs."""
    with _projects_lock:
        project = _projects.get(config_path)
        if project is None:
            project = _projects[config_path] = Project(Path(config_path))
        return project


def run_scheduled(config_path: str, pipeline: str) -> None:
    """The job every schedule fires (importable by reference: the job store pickles it)."""
    from hub.engine import Sync

    project = _project(config_path)
    try:
        result = Sync(project, pipeline, trigger="schedule").run()
    except PipelineBusy as exc:
        log.warning("skipped %s: %s", pipeline, exc)
        return
    log.info("scheduled run %s of %s: %s %s", result.run_id, pipeline, result.status, result.counts.as_dict())


def run_privacy_purge(config_path: str) -> None:
    """The retention job (importable by reference, like :func:`run_scheduled`)."""
    from hub.privacy import purge

    project = _project(config_path)
    result = purge(project)
    log.info("privacy purge: %s raw records, %s dead letters", result["raw_records"], result["dead_letters"])


def run_onboarding(config_path: str) -> None:
    """The onboarding job (importable by reference, like :func:`run_scheduled`)."""
    from hub.onboarding.runner import run_scheduled as run_onboarding_pass

    project = _project(config_path)
    run_onboarding_pass(project)


def run_contract_reminders(config_path: str) -> None:
    """The contract expiry reminder job (importable by reference, like :func:`run_scheduled`)."""
    from hub.contracts.reminders import run_contract_reminders as run_reminders

    project = _project(config_path)
    result = run_reminders(project)
    log.info("contract reminders: %s", result.summary())


class HubScheduler:
    """Runs the project's schedules while holding the scheduler lease."""

    def __init__(self, project: Project, *, lease_ttl: float = 15.0, poll: float | None = None) -> None:
        self.project = project
        self.lease = LeaseHolder(project.db, "scheduler", ttl=lease_ttl)
        self.poll = poll if poll is not None else lease_ttl / 3
        self._stop = threading.Event()
        self.scheduler: BackgroundScheduler | None = None
        with _projects_lock:
            _projects[str(project.path)] = project

    def stop(self) -> None:
        self._stop.set()

    def _build(self) -> BackgroundScheduler:
        settings = self.project.settings
        scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(url=settings.database, tablename="apscheduler_jobs")},
            executors={"default": ThreadPoolExecutor(max_workers=4)},
            timezone=ZoneInfo(settings.timezone),
        )
        scheduler.add_listener(
            self._on_event,
            EVENT_JOB_SUBMITTED
            | EVENT_JOB_EXECUTED
            | EVENT_JOB_ERROR
            | EVENT_JOB_MISSED
            | EVENT_JOB_MAX_INSTANCES,
        )
        return scheduler

    def _install_jobs(self, scheduler: BackgroundScheduler) -> None:
        wanted = set()
        stored = {job.id: job for job in scheduler.get_jobs()}
        now = datetime.now(UTC)
        for schedule in self.project.settings.schedules:
            job_id = JOB_PREFIX + schedule.pipeline
            wanted.add(job_id)
            name = f"sync {schedule.pipeline}: {describe(schedule)}"
            # An unchanged schedule keeps its stored fire time: a fire due while no scheduler
            # ran still runs now if within its misfire grace, and a restart does not postpone
            # the next one. Otherwise the trigger's next fire time from now.
            when: dict[str, Any] = {}
            old = stored.get(job_id)
            due = old.next_run_time if old is not None and old.name == name else None
            if due is not None and (now - due).total_seconds() <= schedule.misfire_grace_seconds:
                when["next_run_time"] = due
            scheduler.add_job(
                run_scheduled,
                trigger=trigger_for(schedule),
                args=[str(self.project.path), schedule.pipeline],
                id=job_id,
                name=name,
                replace_existing=True,
                coalesce=schedule.coalesce,
                max_instances=1,
                misfire_grace_time=schedule.misfire_grace_seconds,
                **when,
            )
            log.info("scheduled %s: %s (from %s)", schedule.pipeline, describe(schedule), schedule.origin)
        privacy = self.project.settings.privacy
        if privacy.raw_records_days is not None or privacy.dead_letters_days is not None:
            wanted.add(PURGE_JOB_ID)
            name = f"privacy purge: cron {privacy.schedule} ({self.project.settings.timezone})"
            old = stored.get(PURGE_JOB_ID)
            due = old.next_run_time if old is not None and old.name == name else None
            late = due is not None and (now - due).total_seconds() <= PURGE_MISFIRE_GRACE
            scheduler.add_job(
                run_privacy_purge,
                trigger=crontab_trigger(privacy.schedule, self.project.settings.timezone),
                args=[str(self.project.path)],
                id=PURGE_JOB_ID,
                name=name,
                replace_existing=True,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=PURGE_MISFIRE_GRACE,
                **({"next_run_time": due} if late else {}),
            )
            log.info("scheduled the privacy purge: cron %s", privacy.schedule)
        onboarding = self.project.settings.onboarding
        if onboarding.enabled and onboarding.schedule_seconds is not None:
            wanted.add(ONBOARDING_JOB_ID)
            scheduler.add_job(
                run_onboarding,
                trigger=IntervalTrigger(seconds=onboarding.schedule_seconds),
                args=[str(self.project.path)],
                id=ONBOARDING_JOB_ID,
                name=f"onboarding: every {onboarding.schedule_seconds:g}s",
                replace_existing=True,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=max(1, int(onboarding.schedule_seconds)),
            )
            log.info("scheduled onboarding: every %gs", onboarding.schedule_seconds)
        reminders = self.project.settings.contract_reminders
        if reminders is not None and reminders.scheduled:
            wanted.add(REMINDERS_JOB_ID)
            name = f"contract reminders: {reminders.describe_schedule()}"
            old = stored.get(REMINDERS_JOB_ID)
            due = old.next_run_time if old is not None and old.name == name else None
            if reminders.schedule_cron is not None:
                late = due is not None and (now - due).total_seconds() <= REMINDERS_MISFIRE_GRACE
                when = {"next_run_time": due} if late else {}
            else:
                # A new, changed or overdue interval runs now: a run sends each reminder once at
                # most, and a scheduler restarted more often than daily would otherwise never run it.
                when = {"next_run_time": due if due is not None and due > now else now}
            scheduler.add_job(
                run_contract_reminders,
                trigger=reminders_trigger(reminders, self.project.settings.timezone),
                args=[str(self.project.path)],
                id=REMINDERS_JOB_ID,
                name=name,
                replace_existing=True,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=REMINDERS_MISFIRE_GRACE,
                **when,
            )
            log.info("scheduled contract reminders: %s", reminders.describe_schedule())
        for job in scheduler.get_jobs():
            if job.id not in wanted:
                job.remove()
                log.info("removed schedule %s: no longer configured", job.id)

    def _on_event(self, event: JobEvent) -> None:
        name = event.job_id.removeprefix(JOB_PREFIX)
        if event.code == EVENT_JOB_SUBMITTED:
            log.info("fire: %s", name)
        elif event.code == EVENT_JOB_ERROR:
            log.error(
                "scheduled sync of %s raised %s", name, type(getattr(event, "exception", None)).__name__
            )
        elif event.code == EVENT_JOB_MISSED:
            log.warning("missed a fire of %s (past its misfire grace time)", name)
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            log.warning("skipped a fire of %s: the previous run is still going", name)

    def run(self, duration: float | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        """Stand by or lead until stopped (or for ``duration`` seconds)."""
        deadline = time.monotonic() + duration if duration is not None else None
        leading = False
        announced = False
        try:
            while not self._stop.is_set() and (deadline is None or time.monotonic() < deadline):
                if not leading:
                    if self.lease.try_acquire():
                        leading = True
                        log.info("this process leads the scheduler (%s)", self.lease.owner)
                        self.scheduler = self._build()
                        self.scheduler.start(paused=True)
                        self._install_jobs(self.scheduler)
                        self.scheduler.resume()
                    elif not announced:
                        log.info("another scheduler leads (%s); standing by", self.lease.current_owner())
                        announced = True
                elif not self.lease.renew():
                    log.warning("lost the scheduler lease; standing by")
                    self._shutdown()
                    leading, announced = False, False
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                self._stop.wait(self.poll if remaining is None else min(self.poll, remaining))
        finally:
            self._shutdown()
            if leading:
                self.lease.release()

    def _shutdown(self) -> None:
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self.scheduler = None
