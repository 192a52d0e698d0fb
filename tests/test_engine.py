"""The sync engine end to end: files -> sql on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hub.engine import Sync
from hub.project import Project
from hub.store.models import OutboxEntry, Run, StreamState
from tests.conftest import files_to_sql_toml
from tests.datagen import write_people_csv


def target_rows(url: str, table: str = "people") -> list[tuple[str, ...]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT id, id_number, phone, salary FROM {table} ORDER BY id")).all()
    engine.dispose()
    return [tuple(str(v) for v in r) for r in rows]


@pytest.mark.slow
def test_100k_rows_sync_resync_unchanged(tmp_path: Path, any_db_url: str, write_project) -> None:
    source = tmp_path / "people.csv"
    data = write_people_csv(source, 100_000)
    config = write_project(
        files_to_sql_toml(
            source, any_db_url, columns={"hire_date": "date", "salary": "integer"}, encrypt_pii=False
        )
    )
    project = Project(config)

    first = Sync(project, "load").run()
    assert first.status == "succeeded", first.error
    assert first.counts.read == 100_000
    assert first.counts.inserted == 100_000
    rows = target_rows(any_db_url)
    assert len(rows) == 100_000
    assert len({r[0] for r in rows}) == 100_000
    # Long digit strings arrive intact, as text.
    assert rows[0][1] == data[0][2] and rows[0][2] == data[0][3]

    second = Sync(project, "load").run()
    assert second.status == "succeeded"
    assert second.counts.unchanged == 100_000
    assert second.counts.inserted == second.counts.updated == 0
    with project.db.session() as session:
        writes = session.execute(sa.select(OutboxEntry).where(OutboxEntry.run_id == second.run_id)).all()
    assert writes == []  # nothing was sent to the destination
    assert target_rows(any_db_url) == rows


def test_changed_rows_are_updated_and_only_they_are_written(tmp_path: Path, write_project) -> None:
    source = tmp_path / "people.csv"
    data = write_people_csv(source, 500)
    target = f"sqlite:///{tmp_path / 'hr.db'}"
    project = Project(write_project(files_to_sql_toml(source, target, chunk_size=100, encrypt_pii=False)))
    assert Sync(project, "load").run().counts.inserted == 500

    data[10][5] = "99999"  # salary of E0000011 changes
    data.append(["E9999999", "新人", data[0][2], data[0][3], data[0][4], "1000", "2024-01-01", "人事"])
    import csv

    with open(source, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["id", "name", "id_number", "phone", "bank_account", "salary", "hire_date", "department"]
        )
        writer.writerows(data)
    result = Sync(project, "load").run()
    assert (result.counts.inserted, result.counts.updated, result.counts.unchanged) == (1, 1, 499)
    assert ("E0000011", data[10][2], data[10][3], "99999") in target_rows(target)


def test_dry_run_writes_nothing(tmp_path: Path, write_project) -> None:
    source = tmp_path / "people.csv"
    write_people_csv(source, 50)
    target = tmp_path / "hr.db"
    project = Project(write_project(files_to_sql_toml(source, f"sqlite:///{target}")))
    result = Sync(project, "load", dry_run=True).run()
    assert result.counts.read == 50 and result.counts.inserted == 50
    assert not target.exists()
    with project.db.session() as session:
        assert session.execute(sa.select(StreamState)).all() == []


def _wait_for_checkpoint(config: Path, db_url: str, timeout: float = 120) -> None:
    engine = sa.create_engine(db_url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                with engine.connect() as conn:
                    done = conn.execute(
                        sa.text("SELECT count(*) FROM outbox WHERE status = 'committed'")
                    ).scalar_one()
                if done >= 5:
                    return
            except sa.exc.OperationalError:
                pass
            time.sleep(0.05)
    finally:
        engine.dispose()
    raise AssertionError("the sync never reached a checkpoint")


@pytest.mark.slow
def test_sigkill_midway_then_rerun_loses_and_duplicates_nothing(
    tmp_path: Path, any_db_url: str, write_project
) -> None:
    source = tmp_path / "people.csv"
    data = write_people_csv(source, 100_000, seed=7)
    hub_db = f"sqlite:///{tmp_path / 'hub.db'}"
    config = write_project(files_to_sql_toml(source, any_db_url, hub_db=hub_db, chunk_size=2000))
    Project(config).db.upgrade()  # migrate before the race starts

    env = {**os.environ, "HUB_CONFIG": str(config)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "sync", "load", "--json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_checkpoint(config, hub_db)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    partial = len(target_rows(any_db_url))
    assert 0 < partial < 100_000, "the kill should land midway"

    project = Project(config)
    result = Sync(project, "load").run()
    assert result.status == "succeeded", result.error
    assert result.counts.read < 100_000, "the rerun resumes from the checkpoint, not from the start"
    rows = target_rows(any_db_url)
    assert len(rows) == 100_000
    assert [r[0] for r in rows] == [d[0] for d in data]
    with project.db.session() as session:
        statuses = dict(session.execute(sa.select(Run.id, Run.status)).tuples().all())
    assert "crashed" in statuses.values()


def test_a_new_destination_and_a_full_refresh_get_every_record(tmp_path: Path, write_project) -> None:
    source = tmp_path / "people.csv"
    write_people_csv(source, 200)
    first_target, second_target = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    body = files_to_sql_toml(source, first_target, chunk_size=50)
    config = write_project(body)
    assert Sync(Project(config), "load").run().counts.inserted == 200

    more = body.replace('destinations = ["dst"]', 'destinations = ["dst", "dst2"]') + (
        f'\n[connectors.dst2]\nplugin = "sql"\n[connectors.dst2.config]\nurl = "{second_target}"\n'
    )
    config = write_project(more)
    result = Sync(Project(config), "load").run()
    assert result.counts.unchanged == 0 and result.counts.updated == 200
    assert len(target_rows(second_target)) == 200

    assert Sync(Project(config), "load").run().counts.unchanged == 200
    refreshed = Sync(Project(config), "load", full_refresh=True).run()
    assert refreshed.counts.inserted == 200 and refreshed.counts.unchanged == 0


def test_repeated_keys_in_a_file_keep_the_last_row_and_stay_unchanged(tmp_path: Path, write_project) -> None:
    source = tmp_path / "people.csv"
    data = write_people_csv(source, 20)
    with open(source, "a", encoding="utf-8", newline="") as handle:
        import csv

        repeat = list(data[0])
        repeat[5] = "77777"
        csv.writer(handle).writerow(repeat)  # E0000001 again, salary changed: the last row wins
    target = f"sqlite:///{tmp_path / 'hr.db'}"
    project = Project(write_project(files_to_sql_toml(source, target, encrypt_pii=False)))
    first = Sync(project, "load").run()
    assert (first.counts.read, first.counts.inserted, first.counts.updated) == (21, 20, 0)
    assert ("E0000001", data[0][2], data[0][3], "77777") in target_rows(target)
    second = Sync(project, "load").run()
    assert second.counts.unchanged == 21 and second.counts.updated == 0


def test_a_transient_failure_of_a_streams_last_chunk_is_retried_after_the_next_stream(
    tmp_path: Path, write_project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next stream starts while a stream's last chunk commits; if that commit fails on a
    transient error, the stream is read again from its checkpoint at the end of the run."""
    from hub.records import RecordIndex

    source = tmp_path / "hr.db"
    engine = sa.create_engine(f"sqlite:///{source}")
    with engine.begin() as conn:
        for table in ("first", "second"):
            conn.execute(sa.text(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, city TEXT)"))
            conn.execute(sa.text(f"INSERT INTO {table} VALUES (1, 'a'), (2, 'b'), (3, 'c')"))
    engine.dispose()
    config = write_project(
        f"""
        [hub]
        database = "sqlite:///{tmp_path / "hub.db"}"
        [connectors.hr]
        plugin = "sql"
        [connectors.hr.config]
        url = "sqlite:///{source}"
        [connectors.out]
        plugin = "sql"
        [connectors.out.config]
        url = "sqlite:///{tmp_path / "out.db"}"
        [pipelines.load]
        source = "hr"
        streams = ["first", "second"]
        destinations = ["out"]
        """
    )
    save, calls = RecordIndex.save, []

    def save_once_failing(self: RecordIndex, *args: Any, **kwargs: Any) -> None:
        calls.append(self.source_stream)
        if len(calls) == 1:  # the first stream's only chunk: its commit fails, transiently
            raise ConnectionResetError("state store went away")
        save(self, *args, **kwargs)

    monkeypatch.setattr(RecordIndex, "save", save_once_failing)
    result = Sync(Project(config), "load", sleep=lambda _s: None).run()
    assert result.status == "succeeded", result.error
    assert calls == ["first", "second", "first"]  # the second stream did not wait for the retry
    assert {name: c.inserted for name, c in result.streams.items()} == {"first": 3, "second": 3}
    out = sa.create_engine(f"sqlite:///{tmp_path / 'out.db'}")
    with out.connect() as conn:
        assert [
            conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in ("first", "second")
        ] == [3, 3]
    out.dispose()


def test_a_chunk_of_airbyte_records_keeps_the_columns_a_mapping_reads() -> None:
    from hub.connectors import POSITION
    from hub.engine import records_frame

    rows = [{"id": 10**17 + 1, "name": "a", "nested": {"x": [1]}}, {"id": 2, "wide": "w", "nested": None}]
    whole = records_frame(rows, "people", 40)
    assert whole[POSITION].tolist() == ["people#41", "people#42"]
    assert set(whole.columns) == {"id", "name", "nested", "wide", POSITION}
    picked = records_frame(rows, "people", 0, ["id", "nested", "absent", "wide"])
    assert set(picked.columns) == {"id", "nested", "wide", POSITION}  # absent from every record: absent
    assert picked["id"].tolist() == [10**17 + 1, 2]  # object: no float on the way
    assert picked["nested"].tolist() == [{"x": [1]}, None]
    assert picked["wide"].tolist() == [None, "w"]
    assert whole["wide"].isna().tolist() == picked["wide"].isna().tolist()
    assert records_frame([], "people", 0, ["id"]).empty


@pytest.mark.parametrize("complete", [True, False], ids=["every record has every column", "some lack one"])
def test_a_chunk_made_text_as_it_is_picked_equals_text_made_after(complete: bool) -> None:
    """records_frame(..., as_decoded) gives what text_frame gives of the object frame: every
    kind of value a source yields, columns of text alone or mixed, nulls only, nested kept."""
    from hub.engine import records_frame
    from hub.frames import TEXT, text_frame

    class Name(str):
        pass

    values = {
        "text": ["张三", "b", None, "", " c "],
        "mixed": ["a", 1, True, 2.5, b"raw"],
        "numbers": [10**17 + 1, 2, None, -3, 0],
        "flags": [True, False, None, True, False],
        "nan": ["x", float("nan"), None, "y", "z"],
        "nulls": [None] * 5,
        "objects": [{"b": 1, "a": [2]}, [1, "x"], None, {}, []],
        "nested": [{"x": [1]}, None, [{"value": "a@example.com"}], "text", 5],
        "subclass": [Name("n"), "m", None, Name(""), "o"],
    }
    rows: list[dict[str, Any]] = [{c: v[i] for c, v in values.items()} for i in range(5)]
    if not complete:
        del rows[1]["text"], rows[3]["nested"]
    columns = [*values, "absent"]
    made = records_frame(rows, "people", 7, columns, as_decoded={"nested"})
    after = text_frame(records_frame(rows, "people", 7, columns), {"nested"})
    assert list(made.columns) == list(after.columns)
    for column in after.columns:
        assert made[column].dtype == after[column].dtype, column
        assert made[column].tolist() == after[column].tolist(), column
    assert made["nested"].dtype == object and made["text"].dtype == TEXT


def test_a_stream_configured_for_some_fields_keeps_its_key_and_cursor_and_allows_no_others() -> None:
    from airbyte_cdk.models import AirbyteStream, ConfiguredAirbyteStream, DestinationSyncMode, SyncMode

    from hub.engine import with_fields_selected

    schema = {
        "type": "object",
        "required": ["id", "name", "updated_at"],
        "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "updated_at": {}, "bio": {}},
    }
    configured = ConfiguredAirbyteStream(
        stream=AirbyteStream(name="people", json_schema=schema, supported_sync_modes=[SyncMode.incremental]),
        sync_mode=SyncMode.incremental,
        destination_sync_mode=DestinationSyncMode.append_dedup,
        cursor_field=["updated_at"],
        primary_key=[["id"]],
    )
    narrowed = with_fields_selected(configured, {"name"})
    assert narrowed.stream.json_schema == {
        "type": "object",
        "required": ["id", "name", "updated_at"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "updated_at": {},
        },
        "additionalProperties": False,
    }
    assert narrowed.cursor_field == ["updated_at"] and narrowed.primary_key == [["id"]]
    assert configured.stream.json_schema is schema and "bio" in schema["properties"]  # a copy
    full_refresh = with_fields_selected(replace(configured, cursor_field=None, primary_key=None), {"bio"})
    assert full_refresh.stream.json_schema["properties"] == {"bio": {}}
    assert full_refresh.stream.json_schema["required"] == []
    # a field the source does not declare cannot be selected: every field is read
    assert with_fields_selected(configured, {"name", "undeclared"}) is configured


def test_a_chunk_is_written_to_the_destination_while_the_chunk_before_waits_to_commit(
    tmp_path: Path, write_project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Destinations are written on a thread of their own, ahead of the commits (which wait for
    identity resolution, say): the commit of chunk 1 can wait for chunk 2's write."""
    import threading

    from hub.records import RecordIndex

    source = tmp_path / "people.csv"
    write_people_csv(source, 300)
    target = f"sqlite:///{tmp_path / 'hr.db'}"
    project = Project(write_project(files_to_sql_toml(source, target, chunk_size=100, encrypt_pii=False)))
    writes: list[int] = []
    second_written = threading.Event()
    write_chunk, save = Sync._write_chunk, RecordIndex.save

    def counting_write(self: Sync, prepared: Any, *args: Any) -> Any:
        failed = write_chunk(self, prepared, *args)
        if prepared.to_write is not None:  # not a checkpoint alone
            writes.append(len(prepared.to_write))
        if len(writes) == 2:
            second_written.set()
        return failed

    saved_after_second: list[bool] = []

    def waiting_save(self: RecordIndex, *args: Any, **kwargs: Any) -> None:
        if not saved_after_second:  # chunk 1's commit
            saved_after_second.append(second_written.wait(timeout=30))
        save(self, *args, **kwargs)

    monkeypatch.setattr(Sync, "_write_chunk", counting_write)
    monkeypatch.setattr(RecordIndex, "save", waiting_save)
    result = Sync(project, "load").run()
    assert result.status == "succeeded", result.error
    assert saved_after_second == [True]  # chunk 2 was written while chunk 1 waited to commit
    assert writes == [100, 100, 100] and result.counts.inserted == 300
    assert len(target_rows(target)) == 300


def test_after_a_failed_destination_write_no_later_chunk_is_written_or_checkpointed(
    tmp_path: Path, write_project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "people.csv"
    write_people_csv(source, 500)
    target = f"sqlite:///{tmp_path / 'hr.db'}"
    project = Project(write_project(files_to_sql_toml(source, target, chunk_size=100, encrypt_pii=False)))
    write_chunk, writes = Sync._write_chunk, []

    def failing_second(self: Sync, prepared: Any, *args: Any) -> Any:
        if prepared.to_write is None:  # a checkpoint alone
            return write_chunk(self, prepared, *args)
        writes.append(len(prepared.to_write))
        if len(writes) == 2:
            raise ValueError("the destination refused the chunk")
        return write_chunk(self, prepared, *args)

    monkeypatch.setattr(Sync, "_write_chunk", failing_second)
    failed = Sync(project, "load").run()
    assert failed.status == "failed" and "the destination refused the chunk" in (failed.error or "")
    assert len(writes) == 2  # nothing after the failed chunk reached the destination
    assert len(target_rows(target)) == 100
    monkeypatch.setattr(Sync, "_write_chunk", write_chunk)
    again = Sync(project, "load").run()
    assert again.status == "succeeded", again.error
    assert again.counts.inserted == 400  # from the checkpoint after chunk 1
    assert len(target_rows(target)) == 500
