"""The ``sql`` connector on SQLite, PostgreSQL and MariaDB: discover, read, write, check."""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from airbyte_cdk.models import SyncMode
from hub_sql.destination import SqlDestination
from hub_sql.source import SqlSource

from hub.engine import Sync
from hub.project import Project
from hub.store.models import DeadLetter, StreamState
from tests.conftest import run_cli
from tests.datagen import person_row

LOG = logging.getLogger("tests.sql")
T0 = datetime(2024, 3, 1, 9, 0, 0)
COPY_COLUMNS = ("id", "name", "id_number", "salary", "hire_date", "level", "updated_at")


def employees_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "employees",
        metadata,
        sa.Column("id", sa.String(20), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("id_number", sa.String(18)),
        sa.Column("salary", sa.Numeric(12, 2)),
        sa.Column("hire_date", sa.Date),
        sa.Column("level", sa.Integer),
        sa.Column("department", sa.String(20)),
        sa.Column("updated_at", sa.DateTime),
    )


def employee(i: int, rng: random.Random, updated_at: datetime) -> dict[str, Any]:
    row = person_row(i, rng)
    return {
        "id": row[0],
        "name": row[1],
        "id_number": row[2],
        "salary": Decimal(row[5]),
        "hire_date": date.fromisoformat(row[6]),
        "level": i % 5,
        "department": row[7],
        "updated_at": updated_at,
    }


def create_employees(url: str, count: int) -> list[dict[str, Any]]:
    """An ``employees`` table with ``count`` rows; the last two share their ``updated_at``."""
    rng = random.Random(7)
    rows = [employee(i, rng, T0 + timedelta(hours=min(i, count - 1))) for i in range(1, count + 1)]
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    table = employees_table(metadata)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), rows)
    engine.dispose()
    return rows


def execute(url: str, *statements: Any) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(statement)
    engine.dispose()


def normalized(rows: list[Any]) -> list[tuple[str, ...]]:
    """Rows comparable across backends: numbers by value, times to the second."""
    out = []
    for r in rows:
        out.append(
            (
                str(r.id),
                str(r.name),
                str(r.id_number),
                str(Decimal(str(r.salary)).normalize()),
                str(r.hire_date)[:10],
                str(int(r.level)),
                str(r.updated_at)[:19].replace("T", " "),
            )
        )
    return out


def table_rows(url: str, table: str) -> list[tuple[str, ...]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT {', '.join(COPY_COLUMNS)} FROM {table} ORDER BY id")).all()
    engine.dispose()
    return normalized(rows)


def sql_to_sql_toml(
    url: str, *, sync_mode: str = "incremental", cursor: str | None = "config", chunk_size: int = 1000
) -> str:
    """A pipeline ``mirror``: the ``employees`` table into ``employees_copy`` of the same database.

    ``cursor`` says where ``updated_at`` is named the cursor: the source's config, the pipeline, nowhere.
    """
    cursor_line = 'cursor_fields = { employees = "updated_at" }' if cursor == "config" else ""
    stream_cursor = ', cursor_field = "updated_at"' if cursor == "pipeline" else ""
    return f"""
[hub]
chunk_size = {chunk_size}

[connectors.hr]
plugin = "sql"
[connectors.hr.config]
url = "{url}"
include = ["employees"]
{cursor_line}

[connectors.copy]
plugin = "sql"
encrypt_pii = false  # a mirror: compared value for value with its source
[connectors.copy.config]
url = "{url}"
tables = {{ employees = "employees_copy" }}

[pipelines.mirror]
source = "hr"
streams = [{{ name = "employees", sync_mode = "{sync_mode}"{stream_cursor} }}]
destinations = ["copy"]
"""


def saved_state(
    project: Project, pipeline: str = "mirror", stream: str = "employees"
) -> dict[str, Any] | None:
    with project.db.session() as session:
        row = session.get(StreamState, (pipeline, stream))
        return None if row is None else dict(row.state)


def backend(url: str) -> str:
    return sa.engine.make_url(url).get_backend_name()


# -- discover ----------------------------------------------------------------------------------


def test_discover_lists_tables_with_keys_types_and_cursors(any_db_url: str) -> None:
    create_employees(any_db_url, 3)
    execute(any_db_url, sa.text("CREATE TABLE audit_notes (note VARCHAR(200), amount FLOAT)"))
    config = {"url": any_db_url, "cursor_fields": {"employees": "updated_at"}}

    catalog = SqlSource().discover(LOG, config)

    streams = {s.name: s for s in catalog.streams}
    assert set(streams) == {"employees", "audit_notes"}
    employees = streams["employees"]
    assert employees.source_defined_primary_key == [["id"]]
    assert employees.default_cursor_field == ["updated_at"] and employees.source_defined_cursor
    assert set(employees.supported_sync_modes) == {SyncMode.full_refresh, SyncMode.incremental}
    props = employees.json_schema["properties"]
    assert list(props) == [c.name for c in employees_table(sa.MetaData()).columns]
    assert props["id"] == props["name"] == {"type": ["null", "string"]}
    assert props["level"] == {"type": ["null", "integer"]}
    assert props["salary"] == {"type": ["null", "number"]}
    assert props["hire_date"] == {"type": ["null", "string"], "format": "date"}
    assert props["updated_at"] == {"type": ["null", "string"], "format": "date-time"}

    notes = streams["audit_notes"]
    assert notes.source_defined_primary_key is None
    assert notes.default_cursor_field is None and not notes.source_defined_cursor
    assert notes.json_schema["properties"]["amount"] == {"type": ["null", "number"]}

    only = SqlSource().discover(LOG, {"url": any_db_url, "include": ["employees"]})
    assert [s.name for s in only.streams] == ["employees"]
    renamed = SqlSource().discover(LOG, {"url": any_db_url, "tables": {"staff": "employees"}})
    assert sorted(s.name for s in renamed.streams) == ["audit_notes", "staff"]


# -- sql -> sql ----------------------------------------------------------------------------------


def test_incremental_sql_to_sql_rereads_only_from_the_saved_cursor(any_db_url: str, write_project) -> None:
    create_employees(any_db_url, 20)
    project = Project(write_project(sql_to_sql_toml(any_db_url, chunk_size=7)))

    first = Sync(project, "mirror").run()
    assert first.status == "succeeded", first.error
    assert (first.counts.read, first.counts.inserted, first.counts.rejected) == (20, 20, 0)
    assert table_rows(any_db_url, "employees_copy") == table_rows(any_db_url, "employees")
    last = T0 + timedelta(hours=19)
    assert saved_state(project) == {"source": {"cursor": last.isoformat()}, "complete": True}

    # One employee changes (and gets a later cursor), one is hired.
    engine = sa.create_engine(any_db_url)
    table = sa.Table("employees", sa.MetaData(), autoload_with=engine)
    engine.dispose()
    execute(
        any_db_url,
        table.update()
        .where(table.c.id == "E0000005")
        .values(salary=Decimal("99999.00"), updated_at=last + timedelta(hours=1)),
        table.insert().values(employee(21, random.Random(21), last + timedelta(hours=2))),
    )

    second = Sync(project, "mirror").run()
    assert second.status == "succeeded", second.error
    # Read from the saved cursor on (>=): the two rows that share it come back unchanged.
    c = second.counts
    assert (c.read, c.inserted, c.updated, c.unchanged) == (4, 1, 1, 2)
    copy = table_rows(any_db_url, "employees_copy")
    assert copy == table_rows(any_db_url, "employees")
    assert len(copy) == 21
    assert next(r for r in copy if r[0] == "E0000005")[3] == "99999"
    assert saved_state(project)["source"] == {"cursor": (last + timedelta(hours=2)).isoformat()}

    third = Sync(project, "mirror").run()
    assert (third.counts.read, third.counts.unchanged, third.counts.inserted) == (1, 1, 0)


def test_a_cursor_field_set_in_the_pipeline_is_used(any_db_url: str, write_project) -> None:
    create_employees(any_db_url, 6)
    project = Project(write_project(sql_to_sql_toml(any_db_url, cursor="pipeline")))

    assert Sync(project, "mirror").run().counts.read == 6
    assert saved_state(project) == {
        "source": {"cursor": (T0 + timedelta(hours=5)).isoformat()},
        "complete": True,
    }
    assert Sync(project, "mirror").run().counts.read == 2  # the two rows sharing the last cursor


def test_copied_table_gets_a_primary_key_and_typed_columns(any_db_url: str, write_project) -> None:
    create_employees(any_db_url, 3)
    project = Project(write_project(sql_to_sql_toml(any_db_url)))
    assert Sync(project, "mirror").run().status == "succeeded"

    engine = sa.create_engine(any_db_url)
    inspector = sa.inspect(engine)
    types = {c["name"]: c["type"] for c in inspector.get_columns("employees_copy")}
    assert inspector.get_pk_constraint("employees_copy")["constrained_columns"] == ["id"]
    engine.dispose()
    assert isinstance(types["hire_date"], sa.Date) and not isinstance(types["hire_date"], sa.DateTime)
    assert isinstance(types["updated_at"], sa.DateTime)
    assert isinstance(types["level"], sa.Integer)
    assert isinstance(types["salary"], sa.Numeric)
    if backend(any_db_url) != "sqlite":
        assert str(types["hire_date"]) == "DATE"


def test_full_refresh_without_cursor_resumes_by_primary_key(any_db_url: str, write_project) -> None:
    create_employees(any_db_url, 10)
    source, config = SqlSource(), {"url": any_db_url}

    batches = list(source.read_batches(LOG, config, "employees", None, {"chunk_size": 4}))
    assert [len(b) for b in batches] == [4, 4, 2, 0]
    assert [b.state for b in batches] == [
        {"after": "E0000004", "read": 4},
        {"after": "E0000008", "read": 8},
        {"after": "E0000010", "read": 10},
        {},  # a finished pass: the next full refresh starts over
    ]
    resumed = list(source.read_batches(LOG, config, "employees", batches[1].state, {"chunk_size": 4}))
    assert resumed[0].frame["id"].tolist() == ["E0000009", "E0000010"]
    assert resumed[0].frame["_hub_position"].tolist() == ["employees#9", "employees#10"]

    # Through the engine: a full refresh interrupted after six rows goes on from there.
    project = Project(
        write_project(sql_to_sql_toml(any_db_url, sync_mode="full_refresh", cursor=None, chunk_size=4))
    )
    with project.db.session() as session:
        session.add(
            StreamState(
                pipeline="mirror",
                stream="employees",
                state={"source": {"after": "E0000006", "read": 6}, "complete": False},
            )
        )
    result = Sync(project, "mirror").run()
    assert result.status == "succeeded", result.error
    assert (result.counts.read, result.counts.inserted) == (4, 4)
    assert [r[0] for r in table_rows(any_db_url, "employees_copy")] == [f"E{i:07d}" for i in range(7, 11)]
    assert saved_state(project) == {"source": {}, "complete": True}

    again = Sync(project, "mirror").run()
    assert (again.counts.read, again.counts.inserted, again.counts.unchanged) == (10, 6, 4)


# -- the destination ------------------------------------------------------------------------------

PEOPLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": ["null", "string"]},
        "hire_date": {"type": ["null", "string"], "format": "date"},
        "level": {"type": ["null", "integer"]},
        "salary": {"type": ["null", "number"]},
        "seen_at": {"type": ["null", "string"], "format": "date-time"},
        "active": {"type": ["null", "boolean"]},
    },
}


def select_people(url: str, columns: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sa.text(f"SELECT {columns} FROM people ORDER BY id"))]
    engine.dispose()
    return rows


def test_destination_creates_table_upserts_and_adds_new_columns(any_db_url: str) -> None:
    config = {"url": any_db_url}
    destination = SqlDestination()
    first = pd.DataFrame(
        {
            "id": ["E1", "E2"],
            "name": ["Ann", "Bo"],
            "hire_date": ["2020-01-06", None],
            "level": ["3", "4"],
            "salary": ["12000.50", "9000"],
            "seen_at": ["2024-03-01 09:30:00.250000", "2024-03-02 10:00:00"],
        }
    )
    assert destination.write_batch(config, "people", first, ["id"], "k1", PEOPLE_SCHEMA).written == 2

    engine = sa.create_engine(any_db_url)
    inspector = sa.inspect(engine)
    assert inspector.get_pk_constraint("people")["constrained_columns"] == ["id"]
    types = {c["name"]: c["type"] for c in inspector.get_columns("people")}
    engine.dispose()
    assert isinstance(types["hire_date"], sa.Date) and not isinstance(types["hire_date"], sa.DateTime)
    assert isinstance(types["seen_at"], sa.DateTime)
    assert isinstance(types["level"], sa.Integer) and isinstance(types["salary"], sa.Numeric)

    # The source gained a column, E1 changed, E3 is new; same destination (and connection pool).
    second = pd.DataFrame(
        {
            "id": ["E1", "E3", "E4"],
            "name": ["Ann Li", "Cy", "Di"],
            "active": ["true", "false", "True"],
        }
    )
    result = destination.write_batch(config, "people", second, ["id"], "k2", PEOPLE_SCHEMA)
    assert (result.written, result.rejections) == (3, [])
    destination.close()
    # Sent again by a fresh destination (a replay after a crash): still one row per key.
    assert SqlDestination().write_batch(config, "people", second, ["id"], "k2", PEOPLE_SCHEMA).written == 3

    rows = select_people(any_db_url, "id, name, level, active")
    assert [(r[0], r[1]) for r in rows] == [("E1", "Ann Li"), ("E2", "Bo"), ("E3", "Cy"), ("E4", "Di")]
    assert [int(r[2]) for r in rows[:2]] == [3, 4]  # columns a write does not carry are kept
    assert [r[3] if r[3] is None else int(r[3]) for r in rows] == [1, None, 0, 1]
    seen = select_people(any_db_url, "seen_at")[0][0]
    assert str(seen).startswith("2024-03-01 09:30:00.25")  # fractional seconds survive


def bad_rows_source(tmp_path: Path) -> tuple[str, dict[str, str]]:
    """A SQLite source of 12 people: one without a name, one with an impossible date, one
    with an ID too long for the target's VARCHAR(20). Returns its URL and those rows' IDs."""
    url = f"sqlite:///{tmp_path / 'export.db'}"
    long_id = "E" + "7" * 39
    rows = [{"id": f"E{i:02d}", "name": f"person {i}", "hire_date": f"2020-01-{i:02d}"} for i in range(1, 10)]
    rows += [
        {"id": "E10", "name": None, "hire_date": "2020-01-10"},
        {"id": "E11", "name": "person 11", "hire_date": "2023-02-30"},
        {"id": long_id, "name": "person 12", "hire_date": "2020-01-12"},
    ]
    execute(
        url,
        sa.text("CREATE TABLE people (id TEXT PRIMARY KEY, name TEXT, hire_date TEXT)"),
        *[sa.text("INSERT INTO people VALUES (:id, :name, :hire_date)").bindparams(**r) for r in rows],
    )
    return url, {"null_name": "E10", "bad_date": "E11", "long_id": long_id}


def test_rows_the_database_refuses_become_dead_letters_and_the_rest_is_written(
    any_db_url: str, tmp_path: Path, write_project: Callable[..., Path]
) -> None:
    source_url, bad = bad_rows_source(tmp_path)
    execute(
        any_db_url,
        sa.text(
            "CREATE TABLE people (id VARCHAR(20) PRIMARY KEY, name VARCHAR(100) NOT NULL, hire_date DATE)"
        ),
    )
    project = Project(
        write_project(
            f"""
            [connectors.export]
            plugin = "sql"
            [connectors.export.config]
            url = "{source_url}"

            [connectors.hr]
            plugin = "sql"
            [connectors.hr.config]
            url = "{any_db_url}"

            [pipelines.load]
            source = "export"
            streams = ["people"]
            destinations = ["hr"]
            """
        )
    )
    result = Sync(project, "load").run()

    # SQLite takes any text in a DATE or VARCHAR(20) column; the servers refuse both.
    refused = {bad["null_name"]} if backend(any_db_url) == "sqlite" else set(bad.values())
    assert result.status == "partial", result.error
    assert result.counts.rejected == len(refused)
    assert result.counts.inserted == 12 - len(refused)
    written = {r[0] for r in select_people(any_db_url, "id")}
    assert (
        written == ({f"E{i:02d}" for i in range(1, 12)} | {bad["long_id"]}) - refused
    )  # bisection kept the rest

    with project.db.session() as session:
        letters = (
            session.execute(sa.select(DeadLetter).where(DeadLetter.run_id == result.run_id)).scalars().all()
        )
    assert len(letters) == len(refused)
    for letter in letters:
        assert letter.destination == "hr"
        assert re.match(r"^\w+: \S", letter.reason), letter.reason
        for value in (bad["long_id"], "2023-02-30", "person 1"):
            assert value not in letter.reason
        assert letter.payload is not None and b"person" not in letter.payload  # sealed


# -- hub connectors check ---------------------------------------------------------------------------


def test_connectors_check_exit_codes_without_leaking_the_password(
    any_db_url: str, tmp_path: Path, write_project: Callable[..., Path]
) -> None:
    (tmp_path / "a_file").write_text("not a directory\n", encoding="utf-8")
    unreachable = {
        "sqlite": f"sqlite:///{tmp_path / 'a_file' / 'hr.db'}",
        "postgresql": "postgresql+psycopg://postgres@127.0.0.1:1/test",
        "mysql": "mysql+pymysql://root@127.0.0.1:1/test",
    }[backend(any_db_url)]
    config = write_project(
        f"""
        [connectors.hr]
        plugin = "sql"
        [connectors.hr.config]
        url = "{any_db_url}"

        [connectors.gone]
        plugin = "sql"
        [connectors.gone.config]
        url = "{unreachable}"
        password = {{ env = "HUB_TEST_DB_PASSWORD" }}
        """
    )
    password = "Sup3r-s3cret-pw"
    env = {"HUB_TEST_DB_PASSWORD": password}

    ok = run_cli(["connectors", "check", "hr"], config, env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK" in ok.stdout

    failed = run_cli(["connectors", "check", "gone"], config, env=env)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "FAILED" in failed.stdout and "Traceback" not in failed.stderr
    message = failed.stdout.split("FAILED", 1)[1].strip()
    assert message, "a failed check says why"
    assert password not in failed.stdout + failed.stderr
