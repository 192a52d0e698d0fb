"""Change events: a mapped sync records which canonical records it created or updated, and
which fields changed, never their values, exactly once, in the checkpoint's transaction."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from hub.changes import FIELD_HASH_CHARS, FieldHasher, open_record_id
from hub.cli_changes import changes_app
from hub.engine import Sync
from hub.identity import IdentityResolver
from hub.project import Project
from hub.records import RecordIndex
from hub.store.models import CanonicalRecord, ChangeEvent, IdentityConflict

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
NAMES = ("张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊")
ALL_FIELDS = [
    "display_name",
    "identity.email",
    "identity.full_name",
    "identity.id_number",
    "identity.phone",
    "mobile_phone",
    "personal_email",
]
MAPPING = """\
entity: Person
key: [cand_id]
fields:
  display_name: {from: name, transforms: [trim]}
  mobile_phone: {from: mobile, transforms: [phone]}
  personal_email: {from: email, transforms: [email]}
identity:
  full_name: {from: name, transforms: [nfkc, trim]}
  id_number: {from: id_number, transforms: [nfkc, id_number]}
  phone: {from: mobile, transforms: [phone]}
  email: {from: email, transforms: [email]}
"""


def id_number(i: int, seq: int = 0) -> str:
    body = f"11010519{80 + i % 20:02d}0{1 + i % 9}1{i % 9}{(10 + 2 * i + 2 * seq) % 1000:03d}"
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, WEIGHTS, strict=True)) % 11]


def people(n: int = 6) -> list[dict[str, str]]:
    return [
        {
            "cand_id": f"C{i:04d}",
            "name": NAMES[i % len(NAMES)] + ("" if i < len(NAMES) else str(i)),
            "id_number": id_number(i),
            "mobile": f"1390013{i:04d}",
            "email": f"cand{i}@example.com",
        }
        for i in range(n)
    ]


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["cand_id", "name", "id_number", "mobile", "email"])
        writer.writeheader()
        writer.writerows(rows)


def project_toml(tmp_path: Path, database: str, chunk_size: int = 1000, extra_hub: str = "") -> str:
    (tmp_path / "ats.yaml").write_text(MAPPING, encoding="utf-8")
    return f"""
    [hub]
    database = "{database}"
    chunk_size = {chunk_size}
    {extra_hub}

    [connectors.ats]
    plugin = "files"
    [connectors.ats.config]
    path = "{tmp_path / "ats.csv"}"
    stream = "candidates"

    [connectors.out]
    plugin = "sql"
    [connectors.out.config]
    url = "sqlite:///{tmp_path / "out.db"}"

    [pipelines.ats]
    source = "ats"
    streams = [{{ name = "candidates", mapping = "ats.yaml" }}]
    destinations = ["out"]
    """


def events(project: Project) -> list[ChangeEvent]:
    with project.db.session() as session:
        rows = list(session.execute(sa.select(ChangeEvent).order_by(ChangeEvent.id)).scalars())
        session.expunge_all()
        return rows


def by_record(project: Project, rows: list[ChangeEvent]) -> dict[str, tuple[str, list[str]]]:
    return {open_record_id(project.keyring, e): (e.kind, list(e.changed_fields)) for e in rows}


def assert_no_values(project: Project, records: list[dict[str, str]]) -> None:
    """No value of ``records`` (keys included) in any column of change_events."""
    with project.db.engine.connect() as conn:
        rows = list(conn.execute(sa.text("SELECT * FROM change_events")))
    assert rows
    data = b"\n".join(b"\t".join(v if isinstance(v, bytes) else str(v).encode() for v in row) for row in rows)
    for record in records:
        for value in filter(None, record.values()):
            assert value.encode() not in data, "a value is in change_events"
        if record["mobile"]:
            assert record["mobile"][-8:].encode() not in data


def sync(project: Project, **kwargs: Any) -> Any:
    result = Sync(project, "ats", **kwargs).run()
    assert result.status == "succeeded", result.error
    return result


def test_created_updated_and_unchanged(tmp_path: Path, any_db_url: str, write_project: Any) -> None:
    rows = people()
    write_csv(tmp_path / "ats.csv", rows)
    project = Project(write_project(project_toml(tmp_path, any_db_url, chunk_size=4)))

    first = sync(project)
    assert first.counts.inserted == 6
    created = events(project)
    assert by_record(project, created) == {r["cand_id"]: ("created", ALL_FIELDS) for r in rows}
    assert {(e.entity, e.pipeline, e.stream, e.run_id) for e in created} == {
        ("Person", "ats", "candidates", first.run_id)
    }
    with project.db.session() as session:
        stored = [h for (h,) in session.execute(sa.select(CanonicalRecord.field_hashes))]
    assert len(stored) == 6 and all(sorted(h) == ALL_FIELDS for h in stored)
    assert all(len(v) == FIELD_HASH_CHARS for h in stored for v in h.values())

    assert sync(project).counts.unchanged == 6  # nothing changed: no event
    assert len(events(project)) == 6

    changed = [dict(r) for r in rows]
    changed[0]["email"] = "moved0@example.com"
    changed[1]["name"] = "张伟伟"
    changed[2]["mobile"] = ""
    changed[3]["id_number"] = id_number(3, seq=1)  # only an identity field
    write_csv(tmp_path / "ats.csv", changed)
    second = sync(project)
    assert second.counts.updated == 4 and second.counts.unchanged == 2
    updates = events(project)[6:]
    assert by_record(project, updates) == {
        "C0000": ("updated", ["identity.email", "personal_email"]),
        "C0001": ("updated", ["display_name", "identity.full_name"]),
        "C0002": ("updated", ["identity.phone", "mobile_phone"]),
        "C0003": ("updated", ["identity.id_number"]),
    }
    assert {e.run_id for e in updates} == {second.run_id}
    assert_no_values(project, rows + changed)

    assert sync(project).counts.unchanged == 6
    # a full refresh re-delivers everything, but nothing changed: no event
    assert sync(project, full_refresh=True).counts.inserted == 6
    assert len(events(project)) == 10


def test_an_identity_only_change_resolves_again(tmp_path: Path, write_project: Any) -> None:
    rows = people(3)
    missing = rows[1]["id_number"]
    rows[1]["id_number"] = ""  # the ATS did not have it at first
    write_csv(tmp_path / "ats.csv", rows)
    project = Project(write_project(project_toml(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")))
    sync(project)
    resolver = IdentityResolver(project.db, project.keyring)
    person = resolver.person_of("ats", "C0001")
    assert person is not None and resolver.find("id_number", missing) == []
    assert by_record(project, events(project))["C0001"][1] == [
        f for f in ALL_FIELDS if f != "identity.id_number"
    ]

    rows[1]["id_number"] = missing  # only the identity field changes
    write_csv(tmp_path / "ats.csv", rows)
    result = sync(project)
    assert result.counts.updated == 1
    assert by_record(project, events(project)[3:]) == {"C0001": ("updated", ["identity.id_number"])}
    assert resolver.find("id_number", missing) == [person]  # resolved again: the person has it now

    rows[1]["id_number"] = id_number(1, seq=5)  # a "correction" to another valid number
    write_csv(tmp_path / "ats.csv", rows)
    sync(project)
    assert by_record(project, events(project)[4:]) == {"C0001": ("updated", ["identity.id_number"])}
    with project.db.session() as session:
        conflicts = session.execute(
            sa.select(IdentityConflict.field, IdentityConflict.status).where(
                IdentityConflict.person_id == person
            )
        ).all()
    assert [tuple(c) for c in conflicts] == [("id_number", "open")]  # never overwritten: a question


def test_a_failed_commit_is_replayed_without_duplicates(
    tmp_path: Path, write_project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = people(7)
    write_csv(tmp_path / "ats.csv", rows)
    project = Project(write_project(project_toml(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}", chunk_size=2)))
    save = RecordIndex.save
    calls = Counter[str]()

    def failing_save(error: Exception) -> Any:
        def save_then_fail(self: RecordIndex, *args: Any, **kwargs: Any) -> None:
            calls["save"] += 1
            save(self, *args, **kwargs)  # the events and the hashes are in the transaction...
            if calls["save"] == 2:
                raise error  # ...which never commits

        return save_then_fail

    # A lost connection: the run retries from the last checkpoint and replays the second chunk.
    monkeypatch.setattr(RecordIndex, "save", failing_save(ConnectionResetError("state store went away")))
    replayed = Sync(project, "ats", sleep=lambda _s: None).run()
    assert replayed.status == "succeeded" and calls["save"] > 4, replayed.error
    created = events(project)
    assert sorted(by_record(project, created)) == [r["cand_id"] for r in rows]
    assert len(created) == 7 and {e.kind for e in created} == {"created"}

    # A failure that ends the run: the next run replays the chunk.
    for i in (0, 3, 4, 6):
        rows[i]["email"] = f"new{i}@example.com"
    write_csv(tmp_path / "ats.csv", rows)
    calls.clear()
    monkeypatch.setattr(RecordIndex, "save", failing_save(RuntimeError("disk full")))
    assert Sync(project, "ats", sleep=lambda _s: None).run().status == "failed"
    assert by_record(project, events(project)[7:]) == {
        "C0000": ("updated", ["identity.email", "personal_email"])
    }
    monkeypatch.setattr(RecordIndex, "save", save)
    sync(project)
    sync(project)  # and once more, unchanged
    updates = events(project)[7:]
    assert sorted(by_record(project, updates)) == ["C0000", "C0003", "C0004", "C0006"]
    assert len(updates) == 4


def test_killed_inside_the_commit_then_rerun(tmp_path: Path, write_project: Any) -> None:
    """A hard exit (as kill -9) while the chunk's transaction is open: no event is lost or doubled."""
    rows = people(9)
    write_csv(tmp_path / "ats.csv", rows)
    config = write_project(project_toml(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}", chunk_size=3))
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from hub.engine import Sync
        from hub.project import Project
        from hub.records import RecordIndex

        save = RecordIndex.save
        calls = []

        def dying_save(self, *args, **kwargs):
            calls.append(1)
            save(self, *args, **kwargs)
            if len(calls) == 2:
                os._exit(9)

        RecordIndex.save = dying_save
        Sync(Project(Path({str(config)!r})), "ats").run()
        """
    )
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert killed.returncode == 9, killed.stderr[-2000:]
    project = Project(config)
    assert len(events(project)) == 3  # the first chunk only
    sync(project)
    created = events(project)
    assert sorted(by_record(project, created)) == [r["cand_id"] for r in rows] and len(created) == 9


def test_plugins_hear_of_changes_after_the_commit(tmp_path: Path, write_project: Any) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    log = tmp_path / "heard.jsonl"
    (plugins / "listener.py").write_text(
        textwrap.dedent(
            f"""
            import json
            import hub

            @hub.hookimpl
            def hub_records_changed(run_id, pipeline, entity, events):
                with open({str(log)!r}, "a", encoding="utf-8") as handle:
                    for e in events:
                        handle.write(json.dumps({{
                            "run": run_id, "pipeline": pipeline, "entity": entity, "id": e.id,
                            "kind": e.kind, "fields": list(e.changed_fields), "record": e.record_id,
                            "repr": repr(e),
                        }}) + "\\n")
            """
        ),
        encoding="utf-8",
    )
    rows = people(4)
    write_csv(tmp_path / "ats.csv", rows)
    toml = project_toml(
        tmp_path, f"sqlite:///{tmp_path / 'hub.db'}", chunk_size=3, extra_hub='plugins_dir = "plugins"'
    )
    project = Project(write_project(toml))
    first = sync(project)
    rows[2]["name"] = "李娜娜"
    write_csv(tmp_path / "ats.csv", rows)
    sync(project)
    heard = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    stored = events(project)
    assert [h["id"] for h in heard] == [e.id for e in stored]
    assert [(h["record"], h["kind"]) for h in heard] == [
        *[(r["cand_id"], "created") for r in rows],
        ("C0002", "updated"),
    ]
    assert (
        heard[0]["run"] == first.run_id and heard[0]["entity"] == "Person" and heard[0]["pipeline"] == "ats"
    )
    assert heard[-1]["fields"] == ["display_name", "identity.full_name"]
    assert all(h["record"] not in h["repr"] for h in heard)  # repr() never shows the record id


def test_streams_without_a_mapping_emit_no_events(tmp_path: Path, write_project: Any) -> None:
    from tests.conftest import files_to_sql_toml

    write_csv(tmp_path / "ats.csv", people(3))
    config = write_project(
        files_to_sql_toml(
            tmp_path / "ats.csv",
            f"sqlite:///{tmp_path / 'out.db'}",
            hub_db=f"sqlite:///{tmp_path / 'hub.db'}",
            primary_key="cand_id",
        )
    )
    project = Project(config)
    assert Sync(project, "load").run().counts.inserted == 3
    assert events(project) == []
    with project.db.session() as session:
        assert session.execute(sa.select(CanonicalRecord.field_hashes)).scalars().all() == [None] * 3


def test_field_hashes_are_keyed_and_per_field() -> None:
    import pandas as pd
    import pyarrow as pa

    frame = pd.DataFrame(
        {
            "a": pd.array(["x", None, "y"], dtype=pd.ArrowDtype(pa.string())),
            "b": pd.array(["x", "x", ""], dtype=pd.ArrowDtype(pa.string())),
            "_hub_identity_phone": pd.array([None, None, None], dtype=pd.ArrowDtype(pa.string())),
            "remote_id": pd.array(["1", "2", "3"], dtype=pd.ArrowDtype(pa.string())),
        }
    )
    hashes, names = FieldHasher(b"s" * 32).hash_frame(frame, "remote_id")
    parsed = [json.loads(h) for h in hashes]
    assert [json.loads(n) for n in names] == [["a", "b"], ["b"], ["a", "b"]]
    assert [sorted(p) for p in parsed] == [["a", "b"], ["b"], ["a", "b"]]
    assert parsed[0]["a"] != parsed[0]["b"]  # the same value, another field: another hash
    assert parsed[0]["b"] == parsed[1]["b"] != parsed[2]["b"]  # empty text is a value
    other, _ = FieldHasher(b"t" * 32).hash_frame(frame, "remote_id")
    assert json.loads(other[0])["a"] != parsed[0]["a"]  # keyed
    # columns of several Arrow chunks hash alike
    chunked = frame.assign(
        a=pd.Series(pd.arrays.ArrowExtensionArray(pa.chunked_array([["x", None], ["y"]])), index=frame.index)
    )
    assert FieldHasher(b"s" * 32).hash_frame(chunked, "remote_id") == (hashes, names)


def test_changes_list_cli(tmp_path: Path, write_project: Any) -> None:
    rows = people(3)
    rows[2]["cand_id"] = "13800138000"  # a key that looks like a phone number
    write_csv(tmp_path / "ats.csv", rows)
    config = write_project(project_toml(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}"))
    project = Project(config)
    sync(project)
    rows[0]["email"] = "other@example.com"
    write_csv(tmp_path / "ats.csv", rows)
    run = sync(project)
    runner = CliRunner()

    listed = runner.invoke(changes_app, ["list", "--json", "-c", str(config)])
    assert listed.exit_code == 0, listed.output
    data = json.loads(listed.stdout)
    assert [(d["kind"], d["record_id"]) for d in data] == [
        ("created", "C0000"),
        ("created", "C0001"),
        ("created", "138****8000"),
        ("updated", "C0000"),
    ]
    assert data[-1]["changed_fields"] == ["identity.email", "personal_email"]
    assert data[-1]["run_id"] == run.run_id and data[-1]["entity"] == "Person"

    after = runner.invoke(
        changes_app, ["list", "--after", str(data[1]["id"]), "--limit", "1", "--json", "-c", str(config)]
    )
    assert [d["id"] for d in json.loads(after.stdout)] == [data[2]["id"]]
    latest = runner.invoke(changes_app, ["list", "--limit", "2", "--json", "-c", str(config)])
    assert [d["id"] for d in json.loads(latest.stdout)] == [data[2]["id"], data[3]["id"]]
    none = runner.invoke(changes_app, ["list", "--entity", "Employee", "--json", "-c", str(config)])
    assert json.loads(none.stdout) == []
    other = runner.invoke(changes_app, ["list", "--pipeline", "nope", "-c", str(config)])
    assert other.exit_code == 0 and "no change events" in other.stdout

    table = runner.invoke(changes_app, ["list", "-c", str(config)])
    assert table.exit_code == 0, table.output
    assert "138****8000" in table.stdout and "13800138000" not in table.stdout
    assert "identity.email, personal_email" in table.stdout
    for row in rows:
        assert row["email"] not in table.stdout and row["name"] not in table.stdout
