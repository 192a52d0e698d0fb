"""The Airbyte contract: hub's connectors speak it, and hub runs any Airbyte source."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from airbyte_cdk.models import (
    AirbyteMessage,
    AirbyteRecordMessage,
    AirbyteStream,
    ConfiguredAirbyteCatalog,
    ConfiguredAirbyteStream,
    ConnectorSpecification,
    DestinationSyncMode,
    Level,
    SyncMode,
    Type,
)
from hub_sql.destination import SqlDestination
from hub_sql.source import SqlSource

from hub.connectors import state_of, stream_state_message
from hub.engine import Sync
from hub.project import Project
from hub.store.models import StreamState

LOG = logging.getLogger("tests.protocol")
SYNC_PLUGINS = Path(__file__).parent / "plugins" / "sync_plugins"
PEOPLE_SCHEMA = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "name": {"type": ["null", "string"]}},
}


def people_catalog() -> ConfiguredAirbyteCatalog:
    stream = AirbyteStream(
        name="people",
        json_schema=PEOPLE_SCHEMA,
        supported_sync_modes=[SyncMode.full_refresh, SyncMode.incremental],
        source_defined_primary_key=[["id"]],
    )
    return ConfiguredAirbyteCatalog(
        streams=[
            ConfiguredAirbyteStream(
                stream=stream,
                sync_mode=SyncMode.incremental,
                destination_sync_mode=DestinationSyncMode.append_dedup,
                primary_key=[["id"]],
            )
        ]
    )


def record(data: dict[str, Any], stream: str = "people") -> AirbyteMessage:
    return AirbyteMessage(
        type=Type.RECORD, record=AirbyteRecordMessage(stream=stream, data=data, emitted_at=1_700_000_000_000)
    )


def people_in(url: str) -> list[tuple[str, str | None]]:
    engine = sa.create_engine(url)
    try:
        if not sa.inspect(engine).has_table("people"):
            return []
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text("SELECT id, name FROM people ORDER BY id"))]
    finally:
        engine.dispose()


# -- Destination.write --------------------------------------------------------------------------


def test_write_echoes_each_state_only_after_the_records_before_it_are_committed(any_db_url: str) -> None:
    consumed: list[str] = []

    def messages() -> Iterator[AirbyteMessage]:
        for message in [
            record({"id": "E1", "name": "Ann"}),
            stream_state_message("people", {"seq": 1}),
            record({"id": "E2", "name": "Bo"}),
            record({"id": "E3", "name": "Cy"}),
            record({"id": "E2", "name": "Bo Li"}),  # the same key again before a commit: last one wins
            stream_state_message("people", {"seq": 4}),
            record({"id": "E4", "name": "Di"}),
        ]:
            consumed.append(message.type.value)
            yield message

    output = iter(SqlDestination().write({"url": any_db_url}, people_catalog(), messages()))

    first = next(output)
    assert first.type == Type.STATE and state_of(first.state) == ("people", {"seq": 1})
    assert people_in(any_db_url) == [("E1", "Ann")]
    assert consumed == ["RECORD", "STATE"]  # nothing after the state was read before it went back

    second = next(output)
    assert second.type == Type.STATE and state_of(second.state) == ("people", {"seq": 4})
    assert people_in(any_db_url) == [("E1", "Ann"), ("E2", "Bo Li"), ("E3", "Cy")]

    assert list(output) == []  # no state follows E4, yet it is written when the input ends
    assert people_in(any_db_url) == [("E1", "Ann"), ("E2", "Bo Li"), ("E3", "Cy"), ("E4", "Di")]


def test_write_reports_refused_records_before_the_state_without_their_values(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hr.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE people (id TEXT PRIMARY KEY, name TEXT NOT NULL)"))
    engine.dispose()
    messages = [
        record({"id": "E1", "name": "Ann"}),
        record({"id": "E2-secret-key"}),  # no name: NOT NULL refuses it
        record({"id": "E3", "name": "Cy"}),
        stream_state_message("people", {"seq": 3}),
    ]

    output = list(SqlDestination().write({"url": url}, people_catalog(), messages))

    assert [m.type for m in output] == [Type.LOG, Type.STATE]
    assert output[0].log.level == Level.WARN
    assert "people#2" in output[0].log.message and "NOT NULL" in output[0].log.message
    assert "E2-secret-key" not in output[0].log.message
    assert people_in(url) == [("E1", "Ann"), ("E3", "Cy")]


def test_specs_are_connector_specifications_with_secret_passwords() -> None:
    for connector in (SqlSource(), SqlDestination()):
        spec = connector.spec(LOG)
        assert isinstance(spec, ConnectorSpecification)
        properties = spec.connectionSpecification["properties"]
        assert properties["password"]["airbyte_secret"] is True
        assert "url" in spec.connectionSpecification["required"]
    assert SqlSource().spec(LOG).supportsIncremental


# -- Source.read --------------------------------------------------------------------------------


def test_sql_source_read_speaks_airbyte_and_resumes_from_its_state(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hr.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE people (id TEXT PRIMARY KEY, name TEXT, changed INTEGER)"))
        for i in range(1, 6):
            conn.execute(
                sa.text("INSERT INTO people VALUES (:id, :name, :c)"),
                {"id": f"E{i}", "name": f"p{i}", "c": i},
            )
    engine.dispose()
    config = {"url": url, "cursor_fields": {"people": "changed"}}
    source = SqlSource()
    catalog = source.discover(LOG, config)
    configured = ConfiguredAirbyteCatalog(
        streams=[
            ConfiguredAirbyteStream(
                stream=catalog.streams[0],
                sync_mode=SyncMode.incremental,
                destination_sync_mode=DestinationSyncMode.append_dedup,
                cursor_field=["changed"],
            )
        ]
    )

    messages = list(source.read(LOG, config, configured))
    records = [m.record.data for m in messages if m.type == Type.RECORD]
    states = [m.state for m in messages if m.type == Type.STATE]
    assert [r["id"] for r in records] == ["E1", "E2", "E3", "E4", "E5"]
    assert records[0] == {"id": "E1", "name": "p1", "changed": "1"}  # values travel as text
    assert state_of(states[-1]) == ("people", {"cursor": 5})

    again = list(source.read(LOG, config, configured, [states[-1]]))
    assert [m.record.data["id"] for m in again if m.type == Type.RECORD] == ["E5"]


# -- a generic Airbyte source through hub -------------------------------------------------------------


def export_project(tmp_path: Path, write_project: Callable[..., Path]) -> Path:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    shutil.copy(SYNC_PLUGINS / "airbyte_export.py", plugins / "airbyte_export.py")
    return write_project(
        """
        [hub]
        plugins_dir = "plugins"

        [connectors.export]
        plugin = "airbyte_export"
        [connectors.export.config]
        path = "export.json"
        state_every = 2

        [connectors.hr]
        plugin = "sql"
        [connectors.hr.config]
        url = "sqlite:///hr.db"

        [pipelines.load]
        source = "export"
        streams = [
          { name = "people", sync_mode = "incremental" },
          { name = "teams", sync_mode = "incremental" },
        ]
        destinations = ["hr"]
        """
    )


def person(seq: int) -> dict[str, Any]:
    return {"id": f"P{seq}", "name": f"person {seq}", "seq": seq, "hired": f"2024-01-{seq:02d}"}


def write_export(path: Path, people: int, teams: int) -> None:
    data = {
        "people": [person(s) for s in range(1, people + 1)],
        "teams": [{"code": f"T{s}", "title": f"team {s}", "seq": s} for s in range(1, teams + 1)],
    }
    path.write_text(json.dumps(data), encoding="utf-8")


def states(project: Project) -> dict[str, Any]:
    with project.db.session() as session:
        return {s.stream: s.state for s in session.execute(sa.select(StreamState)).scalars()}


def test_a_generic_airbyte_source_syncs_incrementally_through_hub(
    tmp_path: Path, write_project: Callable[..., Path]
) -> None:
    project = Project(export_project(tmp_path, write_project))
    assert project.connectors["airbyte_export"].category == "generic"
    write_export(tmp_path / "export.json", people=5, teams=3)

    first = Sync(project, "load").run()
    assert first.status == "succeeded", first.error
    assert first.streams["people"].inserted == 5 and first.streams["teams"].inserted == 3
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'hr.db'}")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, name, seq, hired FROM people ORDER BY seq")).all()
        assert [tuple(r) for r in rows] == [
            (p["id"], p["name"], p["seq"], p["hired"]) for p in map(person, range(1, 6))
        ]
        assert conn.execute(sa.text("SELECT count(*) FROM teams")).scalar_one() == 3
    types = {c["name"]: c["type"] for c in sa.inspect(engine).get_columns("people")}
    engine.dispose()
    assert isinstance(types["seq"], sa.Integer) and isinstance(types["hired"], sa.Date)
    assert states(project) == {
        "people": {"source": {"seq": 5}, "complete": True},
        "teams": {"source": {"seq": 3}, "complete": True},
    }

    write_export(tmp_path / "export.json", people=7, teams=3)
    second = Sync(project, "load").run()
    assert second.status == "succeeded", second.error
    assert (second.streams["people"].read, second.streams["people"].inserted) == (2, 2)
    assert second.streams["teams"].read == 0
    reads = [json.loads(line) for line in (tmp_path / "export.reads.jsonl").read_text().splitlines()]
    assert reads == [
        {"streams": ["people"], "state": {}},
        {"streams": ["teams"], "state": {}},
        {"streams": ["people"], "state": {"people": {"seq": 5}}},  # the saved state went back to read
        {"streams": ["teams"], "state": {"teams": {"seq": 3}}},
    ]
    assert states(project)["people"] == {"source": {"seq": 7}, "complete": True}
