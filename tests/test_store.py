"""hub's own state store on SQLite, PostgreSQL and MariaDB: migrations, and a sync on each."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import sqlalchemy as sa

from hub.engine import Sync
from hub.leases import LeaseHolder
from hub.project import Project
from hub.store import Database
from hub.store.models import DeadLetter, Run, StreamState
from tests.conftest import files_to_sql_toml, run_cli
from tests.datagen import write_people_csv

TABLES = {
    "runs",
    "run_stats",
    "run_events",
    "stream_states",
    "canonical_records",
    "batch_fingerprints",
    "dead_letters",
    "outbox",
    "audit_log",
    "leases",
    "secrets",
    "alembic_version",
}


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return str(
        ScriptDirectory.from_config(
            Database("sqlite://", auto_upgrade=False).alembic_config()
        ).get_current_head()
    )


def test_migrations_create_every_table(any_db_url: str) -> None:
    db = Database(any_db_url)
    assert db.is_current()
    assert set(sa.inspect(db.engine).get_table_names()) >= TABLES
    db.upgrade()  # idempotent
    assert db.revision() == head_revision()
    db.dispose()


def test_sync_with_the_state_store_on_each_backend(tmp_path: Path, any_db_url: str, write_project) -> None:
    source = tmp_path / "people.csv"
    write_people_csv(source, 5000, seed=11)
    with open(source, "a", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerow(["E9999999", "坏", "1", "2", "3", "x", "2024-02-30", "人事"])
    target = f"sqlite:///{tmp_path / 'hr.db'}"
    config = write_project(
        files_to_sql_toml(
            source,
            target,
            hub_db=any_db_url,
            columns={"hire_date": "date", "salary": "integer"},
            chunk_size=1000,
        )
    )
    project = Project(config)
    first = Sync(project, "load").run()
    assert (first.status, first.counts.inserted, first.counts.rejected) == ("partial", 5000, 1)
    second = Sync(project, "load").run()
    assert (second.counts.unchanged, second.counts.inserted, second.counts.updated) == (5000, 0, 0)
    with project.db.session() as session:
        assert [r.status for r in session.execute(sa.select(Run).order_by(Run.id)).scalars()] == [
            "partial"
        ] * 2
        assert session.get(StreamState, ("load", "people")).state["complete"] is True
        letters = list(session.execute(sa.select(DeadLetter)).scalars())
    assert len(letters) == 1 and letters[0].position == "people.csv:5002"
    shown = run_cli(["deadletters", "show", str(letters[0].id), "--json"], config)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["record"]["salary"] == "***"
    runs = json.loads(run_cli(["runs", "list", "--json"], config).stdout)
    assert [r["counts"]["read"] for r in runs] == [5001, 5001]
    assert run_cli(["db", "current"], config).stdout.strip() == head_revision()


def test_one_lease_holder_at_a_time(any_db_url: str) -> None:
    db = Database(any_db_url)
    first, second = LeaseHolder(db, "pipeline:x", ttl=30), LeaseHolder(db, "pipeline:x", ttl=30)
    assert first.try_acquire()
    assert not second.try_acquire()
    assert second.current_owner() == first.owner
    first.release()
    assert second.try_acquire()
    second.release()
    db.dispose()


def test_a_second_sync_of_a_running_pipeline_is_refused(tmp_path: Path, write_project) -> None:
    source = tmp_path / "people.csv"
    write_people_csv(source, 10)
    config = write_project(files_to_sql_toml(source, f"sqlite:///{tmp_path / 'hr.db'}"))
    project = Project(config)
    holder = LeaseHolder(project.db, "pipeline:load", ttl=60)
    assert holder.try_acquire()
    try:
        busy = run_cli(["sync", "load"], config)
        assert busy.returncode == 1
        assert "already running" in busy.stderr
    finally:
        holder.release()
    assert run_cli(["sync", "load"], config).returncode == 0
