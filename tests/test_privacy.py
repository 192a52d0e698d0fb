"""Privacy operations: export and erasure of one person, tombstones in later syncs, new consent,
reveal with a reason, the audit log, and retention of raw records and dead letters.

End to end: an ATS export (CSV, keep_raw) and an HR master table resolve to persons; one person is
erased through the real CLI; then every table of the state store is scanned for their personal
data and their blind digests, on SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

import csv
import json
import logging
import random
import stat
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from hub.config import load_settings
from hub.engine import Sync, dead_letter_context
from hub.errors import ConfigurationError
from hub.identity import IdentityResolver, normalise
from hub.pii import raw_record_context
from hub.project import Project
from hub.scheduler import PURGE_JOB_ID, HubScheduler, next_fire_times
from hub.store.models import (
    AuditEntry,
    DeadLetter,
    PersonIndex,
    PersonLink,
    PrivacyTombstone,
    RawRecord,
    Run,
    RunEvent,
)
from tests.conftest import files_to_sql_toml, run_cli
from tests.datagen import id_number, write_people_csv

HubCli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def hub_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[HubCli]:
    """``hub ARGS`` run by ``main()`` in this process (a CLI start-up costs seconds)."""
    from hub.cli import main

    def call(args: list[str], config: Path, stdin: str | None = None) -> tuple[int, str, str]:
        monkeypatch.setenv("HUB_CONFIG", str(config))
        monkeypatch.setattr(sys, "argv", ["hub", *args])
        if stdin is not None:
            import io

            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
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


# -- the scenario ------------------------------------------------------------------------------


@dataclass
class Scenario:
    config: Path
    ats_csv: Path
    out_url: str
    people: list[dict[str, str]]

    @property
    def x(self) -> dict[str, str]:
        """The person who asks to be erased."""
        return self.people[0]


ATS_HEADER = ["cand_id", "name", "id_number", "mobile", "email", "consent_at"]


def _people(n: int) -> list[dict[str, str]]:
    rng = random.Random(11)
    family = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
    given = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英"
    people = []
    for i in range(n):
        people.append(
            {
                "name": rng.choice(family) + rng.choice(given) + rng.choice(given),
                "id_number": id_number(rng),
                "phone": rng.choice(("135", "138", "139", "150", "186")) + f"{rng.randint(0, 99999999):08d}",
                "email": f"cand{i}.{rng.randint(1000, 9999)}@example.com",
                "cand_id": f"A{i:05d}",
                "emp_no": f"E{i:05d}",
            }
        )
    return people


def write_ats(path: Path, people: list[dict[str, str]], consent: dict[int, str] | None = None) -> None:
    """The ATS export; person 0 also has a second, broken row (a bad e-mail: a dead letter)."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(ATS_HEADER)
        for i, p in enumerate(people):
            writer.writerow(
                [p["cand_id"], p["name"], p["id_number"], p["phone"], p["email"], (consent or {}).get(i, "")]
            )
        x = people[0]
        writer.writerow(["A99999", x["name"], x["id_number"], x["phone"], "not-an-email", ""])


def typo(name: str) -> str:
    return name[0] + "某" + name[2:]


def make_scenario(tmp_path: Path, write_project: Callable[..., Path], db_url: str, n: int) -> Scenario:
    people = _people(n)
    ats = tmp_path / "ats.csv"
    write_ats(ats, people)
    hr = tmp_path / "hr_master.db"
    engine = sa.create_engine(f"sqlite:///{hr}")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE employees (emp_no TEXT PRIMARY KEY, name TEXT, idno TEXT, tel TEXT, mail TEXT)"
            )
        )
        for i, p in enumerate(people):
            conn.execute(
                sa.text("INSERT INTO employees VALUES (:n, :name, :idno, :tel, :mail)"),
                {
                    "n": p["emp_no"],
                    "name": typo(p["name"]) if i == 0 else p["name"],  # a conflict on full_name
                    "idno": p["id_number"],
                    "tel": p["phone"],
                    "mail": p["email"],
                },
            )
    engine.dispose()
    mapping = textwrap.dedent(
        """\
        entity: Person
        key: [{key}]
        fields:
          display_name: {{from: {name}, transforms: [trim]}}
          mobile_phone: {{from: {phone}, transforms: [phone]}}
          personal_email: {{from: {email}, transforms: [email]}}
        identity:
          full_name: {{from: {name}, transforms: [nfkc, trim]}}
          id_number: {{from: {idno}, transforms: [nfkc, id_number]}}
          phone: {{from: {phone}, transforms: [phone]}}
          email: {{from: {email}, transforms: [email]}}
        """
    )
    (tmp_path / "ats.yaml").write_text(
        mapping.format(key="cand_id", name="name", phone="mobile", email="email", idno="id_number")
        + "  consent_at: {from: consent_at, transforms: [datetime]}\n",
        encoding="utf-8",
    )
    (tmp_path / "hr.yaml").write_text(
        mapping.format(key="emp_no", name="name", phone="tel", email="mail", idno="idno"), encoding="utf-8"
    )
    out_url = f"sqlite:///{tmp_path / 'out.db'}"
    config = write_project(
        f"""
        [hub]
        database = "{db_url}"

        [identity]
        sources = ["hr", "ats"]

        [connectors.ats]
        plugin = "files"
        [connectors.ats.config]
        path = "{ats}"
        stream = "candidates"
        [connectors.hr]
        plugin = "sql"
        [connectors.hr.config]
        url = "sqlite:///{hr}"
        [connectors.out]
        plugin = "sql"
        [connectors.out.config]
        url = "{out_url}"

        [pipelines.ats]
        source = "ats"
        keep_raw = true
        streams = [{{ name = "candidates", mapping = "ats.yaml", destination_stream = "ats_people" }}]
        destinations = ["out"]
        [pipelines.hr]
        source = "hr"
        streams = [{{ name = "employees", mapping = "hr.yaml", destination_stream = "hr_people" }}]
        destinations = ["out"]
        """
    )
    return Scenario(config=config, ats_csv=ats, out_url=out_url, people=people)


def sync(project: Project, pipeline: str) -> tuple[Any, int]:
    """Run a pipeline; returns the result and the records its sync log says were suppressed."""
    result = Sync(project, pipeline).run()
    assert result.status in ("succeeded", "partial"), (pipeline, result.error)
    with project.db.session() as session:
        events = session.execute(
            sa.select(RunEvent).where(RunEvent.run_id == result.run_id, RunEvent.kind == "privacy")
        ).scalars()
        suppressed = sum(int(e.details.get("suppressed", 0)) for e in events)
    return result, suppressed


def person_ids(project: Project, x: dict[str, str]) -> set[str]:
    resolver = IdentityResolver(project.db, project.keyring)
    found = set()
    for kind in ("id_number", "email", "phone"):
        found |= set(resolver.find(kind, x[kind]))
    return found


def destination_rows(scenario: Scenario, table: str, remote_ids: list[str]) -> int:
    engine = sa.create_engine(scenario.out_url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sa.text(f"SELECT count(*) FROM {table} WHERE remote_id IN :ids").bindparams(
                        sa.bindparam("ids", expanding=True)
                    ),
                    {"ids": remote_ids},
                ).scalar_one()
            )
    finally:
        engine.dispose()


def delete_destination_rows(scenario: Scenario, remote_ids: list[str]) -> None:
    """What the operator does downstream after an erasure (hub does not touch destinations)."""
    engine = sa.create_engine(scenario.out_url)
    with engine.begin() as conn:
        for table in ("ats_people", "hr_people"):
            conn.execute(
                sa.text(f"DELETE FROM {table} WHERE remote_id IN :ids").bindparams(
                    sa.bindparam("ids", expanding=True)
                ),
                {"ids": remote_ids},
            )
    engine.dispose()


def needles_of(x: dict[str, str]) -> list[str]:
    return [x["id_number"], x["phone"], "+86" + x["phone"], x["email"], x["name"], typo(x["name"])]


def digests_of(project: Project, hub_id: str) -> set[str]:
    """The person's blind digests: identifiers (person_index) and links (remote ids)."""
    with project.db.session() as session:
        index = set(
            session.execute(sa.select(PersonIndex.digest).where(PersonIndex.person_id == hub_id)).scalars()
        )
        links = set(
            session.execute(
                sa.select(PersonLink.remote_digest).where(PersonLink.person_id == hub_id)
            ).scalars()
        )
    assert index and links
    return index | links


def scan_state_store(url: str, needles: list[str], digests: set[str]) -> list[str]:
    """Every row of every table (all columns, text and bytes): where a needle or digest shows up."""
    hits = []
    engine = sa.create_engine(url)
    try:
        meta = sa.MetaData()
        meta.reflect(engine)
        assert {"persons", "dead_letters", "raw_records", "privacy_tombstones", "audit_log"} <= set(
            meta.tables
        )
        with engine.connect() as conn:
            for table in meta.sorted_tables:
                for row in conn.execute(sa.select(table)):
                    for column, value in zip(table.columns, row, strict=True):
                        if value is None:
                            continue
                        if isinstance(value, bytes | memoryview | bytearray):
                            blob = bytes(value)
                            texts = [blob.decode("utf-8", "replace")]
                            found = [n for n in needles if n.encode() in blob]
                        else:
                            text = (
                                json.dumps(value, ensure_ascii=False)
                                if isinstance(value, dict | list)
                                else str(value)
                            )
                            texts = [text]
                            found = [n for n in needles if n in text]
                        if table.name != "privacy_tombstones":
                            found += [d for d in digests if any(d in t for t in texts)]
                        hits += [f"{table.name}.{column.name}: {what[:3]}..." for what in found]
    finally:
        engine.dispose()
    return hits


def decrypted_leftovers(project: Project, needles: list[str]) -> list[str]:
    """Dead letters and raw records still stored, decrypted: none may hold the needles."""
    hits = []
    with project.db.session() as session:
        for d in session.execute(sa.select(DeadLetter)).scalars():
            if d.payload is not None:
                plain = project.keyring.open(
                    d.payload, "dead_letters", dead_letter_context(d.pipeline, d.stream, d.position)
                ).decode()
                hits += [f"dead letter {d.id}" for n in needles if n in plain]
        for r in session.execute(sa.select(RawRecord)).scalars():
            plain = project.keyring.open(
                r.payload, *raw_record_context(r.pipeline, r.stream, r.key_digest)
            ).decode()
            hits += [f"raw record {r.id}" for n in needles if n in plain]
    return hits


# -- (a) erase, scan, no resurrection, new consent: on every backend ------------------------------


@pytest.mark.parametrize(("backend", "n"), [("sqlite", 80), ("postgresql", 24), ("mariadb", 24)])
def test_erase_removes_every_trace_and_tombstones_keep_them_out_until_new_consent(
    backend: str, n: int, tmp_path: Path, write_project, request: pytest.FixtureRequest, hub_cli: HubCli
) -> None:
    if backend == "sqlite":
        db_url = f"sqlite:///{tmp_path / 'hub.db'}"
    else:
        db_url = request.getfixturevalue("pg_url" if backend == "postgresql" else "mariadb_url")
    s = make_scenario(tmp_path, write_project, db_url, n)
    x = s.x
    project = Project(s.config)
    hr_result, _ = sync(project, "hr")
    assert hr_result.status == "succeeded"
    ats_result, suppressed = sync(project, "ats")
    assert (ats_result.status, ats_result.counts.rejected, suppressed) == ("partial", 1, 0)

    (hub_id,) = person_ids(project, x)
    digests = digests_of(project, hub_id)
    needles = needles_of(x)
    with project.db.session() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(DeadLetter)).scalar_one() == 1
        assert session.execute(sa.select(sa.func.count()).select_from(RawRecord)).scalar_one() == n
    assert destination_rows(s, "ats_people", [x["cand_id"]]) == 1

    # (b) in passing: the export holds it all (the dedicated test checks the file itself)
    code, out, err = hub_cli(
        ["privacy", "export", hub_id, "--out", str(tmp_path / "x.json"), "--reason", "DSR-1 access"], s.config
    )
    assert code == 0, err
    exported = json.loads((tmp_path / "x.json").read_text(encoding="utf-8"))
    assert exported["person"]["fields"]["id_number"] == x["id_number"]
    assert len(exported["dead_letters"]) == 1 and len(exported["raw_records"]) == 1
    assert {c["field"] for c in exported["conflicts"]} == {"full_name"}

    # Erase through the real CLI, as an operator would.
    args = ["privacy", "erase", hub_id, "--reason", "DSR-2 erasure request", "--yes", "--json"]
    if backend == "sqlite":  # a subprocess, as an operator runs it (start-up costs seconds: once)
        erased = run_cli(args, s.config)
        code, stdout, stderr = erased.returncode, erased.stdout, erased.stderr
    else:  # the same entry point, in this process
        code, stdout, stderr = hub_cli(args, s.config)
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["tombstones"] == 2 + 3  # two links, three identifiers
    assert report["removed"]["dead_letters"] == 1 and report["removed"]["raw_records"] == 1
    for needle in needles:
        assert needle not in stdout + stderr

    project = Project(s.config)
    assert person_ids(project, x) == set()
    assert scan_state_store(db_url, needles, digests) == []
    assert decrypted_leftovers(project, needles) == []
    with project.db.session() as session:
        tombstones = list(session.execute(sa.select(PrivacyTombstone)).scalars())
        assert {t.kind for t in tombstones} == {"remote", "id_number", "email", "phone"}
        assert {t.source for t in tombstones if t.kind == "remote"} == {"ats", "hr"}
        assert {t.erasure_id for t in tombstones} == {report["erasure_id"]}
        erase_audit = session.execute(
            sa.select(AuditEntry).where(AuditEntry.action == "privacy.erase")
        ).scalar_one()
        assert erase_audit.reason == "DSR-2 erasure request"
        assert erase_audit.details["erasure_id"] == report["erasure_id"]
        # the other people are untouched
        assert session.execute(sa.select(sa.func.count()).select_from(RawRecord)).scalar_one() == n - 1

    # Downstream erasure is the operator's; hub must not write them back.
    delete_destination_rows(s, [x["cand_id"], "A99999", x["emp_no"]])
    ats_again, suppressed = sync(project, "ats")
    assert suppressed == 2  # their record and their broken row (not dead-lettered again)
    assert ats_again.counts.rejected == 0
    _, suppressed = sync(project, "hr")
    assert suppressed == 1
    assert person_ids(project, x) == set()
    assert destination_rows(s, "ats_people", [x["cand_id"]]) == 0
    assert destination_rows(s, "hr_people", [x["emp_no"]]) == 0
    assert scan_state_store(db_url, needles, digests) == []
    assert decrypted_leftovers(project, needles) == []

    # New consent, newer than the erasure, brings them back (and lifts the whole erasure).
    # Whole seconds, as a source would write it: the next second is surely after the erasure.
    given = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    consent = given.astimezone(ZoneInfo("Asia/Shanghai")).isoformat(timespec="seconds")
    write_ats(s.ats_csv, s.people, consent={0: consent})
    back, suppressed = sync(project, "ats")
    assert suppressed == 0
    assert back.counts.inserted == 1
    (new_id,) = person_ids(project, x)
    assert destination_rows(s, "ats_people", [x["cand_id"]]) == 1
    hr_back, suppressed = sync(project, "hr")
    assert (suppressed, hr_back.counts.inserted) == (0, 1)
    assert destination_rows(s, "hr_people", [x["emp_no"]]) == 1
    with project.db.session() as session:
        links = session.execute(sa.select(PersonLink.source).where(PersonLink.person_id == new_id)).scalars()
        assert sorted(links) == ["ats", "hr"]
        lifted = session.execute(sa.select(PrivacyTombstone.lifted_at)).scalars().all()
        assert lifted and all(t is not None for t in lifted)
    code, out, _ = hub_cli(["privacy", "tombstones", "--json"], s.config)
    listed = json.loads(out)
    assert (listed["erasures"], listed["active"], listed["lifted"]) == (1, 0, 1)
    assert report["erasure_id"] in out and not any(d in out for d in digests)


# -- (b) export, (c) reveal and the audit log ----------------------------------------------------


def synced_scenario(tmp_path: Path, write_project: Callable[..., Path], n: int = 8) -> tuple[Scenario, str]:
    s = make_scenario(tmp_path, write_project, f"sqlite:///{tmp_path / 'hub.db'}", n)
    project = Project(s.config)
    sync(project, "hr")
    sync(project, "ats")
    (hub_id,) = person_ids(project, s.x)
    return s, hub_id


def audit_of(project: Project, action: str) -> list[AuditEntry]:
    with project.db.session() as session:
        return list(
            session.execute(
                sa.select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
            ).scalars()
        )


def test_export_writes_everything_about_the_person_0600_and_audits_it(
    tmp_path: Path, write_project, hub_cli: HubCli
) -> None:
    s, hub_id = synced_scenario(tmp_path, write_project)
    x = s.x
    target = tmp_path / "export.json"
    code, _, err = hub_cli(["people", "show", hub_id], s.config)  # an audit row about them
    assert code == 0, err

    code, out, err = hub_cli(["privacy", "export", hub_id, "--out", str(target)], s.config)
    assert code == 2 and "reason" in err and not target.exists()
    code, out, err = hub_cli(["privacy", "export", hub_id, "--out", str(target), "--reason", " "], s.config)
    assert code == 2 and not target.exists()

    code, out, err = hub_cli(
        ["privacy", "export", hub_id, "--out", str(target), "--reason", "DSR-7 access request"], s.config
    )
    assert code == 0, err
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    for needle in needles_of(x):
        assert needle not in out + err
    data = json.loads(target.read_text(encoding="utf-8"))
    fields = data["person"]["fields"]
    assert (fields["id_number"], fields["email"], fields["phone"]) == (
        x["id_number"],
        x["email"],
        "+86" + x["phone"],
    )
    assert fields["full_name"] == typo(x["name"])  # the HR master ranks first
    assert data["provenance"]["id_number"]["source"] == "hr"
    assert sorted(link["source"] for link in data["links"]) == ["ats", "hr"]
    assert all(link["remote_id"] is None and len(link["remote_id_digest"]) == 32 for link in data["links"])
    assert "keyed digest" in data["export"]["notes"][1]
    (conflict,) = data["conflicts"]
    assert {conflict["existing"], conflict["incoming"]} == {x["name"], typo(x["name"])}
    (dead,) = data["dead_letters"]
    assert dead["record"]["id_number"] == x["id_number"] and dead["record"]["email"] == "not-an-email"
    (raw,) = data["raw_records"]
    assert raw["record"]["cand_id"] == x["cand_id"]
    assert sorted(e["record_id"] for e in data["change_events"]) == sorted([x["cand_id"], x["emp_no"]])
    assert len(data["delivery_records"]) == 2
    assert {d["pipeline"] for d in data["downstream"]} == {"ats", "hr"}
    assert [a["action"] for a in data["audit"]] == ["person.show"]

    project = Project(s.config)
    (entry,) = audit_of(project, "privacy.export")
    assert (entry.target, entry.reason) == (hub_id, "DSR-7 access request")
    assert entry.details["dead_letters"] == 1 and entry.details["links"] == 2
    assert not any(n in json.dumps(entry.details, ensure_ascii=False) for n in needles_of(x))

    code, _, err = hub_cli(["privacy", "export", hub_id, "--out", str(target), "--reason", "again"], s.config)
    assert code == 2 and "--force" in err
    code, _, err = hub_cli(
        ["privacy", "export", "no-such-person", "--out", str(tmp_path / "n.json"), "--reason", "r"], s.config
    )
    assert code == 1 and "no person" in err


def test_reveal_needs_a_reason_and_is_audited(tmp_path: Path, write_project, hub_cli: HubCli) -> None:
    s, hub_id = synced_scenario(tmp_path, write_project, n=4)
    x = s.x
    project = Project(s.config)
    for reason in ([], ["--reason", ""], ["--reason", "   "]):
        code, out, err = hub_cli(["privacy", "reveal", hub_id, "id_number", *reason], s.config)
        assert code == 2 and x["id_number"] not in out + err and "reason" in err
    assert audit_of(project, "reveal") == []

    why = f"payroll setup, ticket HR-42 (caller gave {x['phone']})"
    code, out, err = hub_cli(["privacy", "reveal", hub_id, "id_number", "--reason", why], s.config)
    assert code == 0, err
    assert out.strip() == x["id_number"]
    (entry,) = audit_of(project, "reveal")
    assert entry.target == f"{hub_id}/id_number" and entry.details == {"field": "id_number"}
    assert entry.reason is not None and "ticket HR-42" in entry.reason
    assert x["phone"] not in entry.reason  # a number typed into a reason is masked
    assert entry.actor

    code, out, err = hub_cli(["privacy", "erase", hub_id, "--reason", "r"], s.config, stdin="y\n")
    assert code == 2 and "--yes" in err  # not a terminal: no silent confirmation
    assert person_ids(project, x) == {hub_id}

    code, out, err = hub_cli(["privacy", "reveal", hub_id, "salary", "--reason", "r"], s.config)
    assert code == 1 and "no field 'salary'" in err

    code, out, err = hub_cli(["audit", "list", "--action", "reveal", "--json"], s.config)
    assert code == 0, err
    (row,) = json.loads(out)
    assert row["action"] == "reveal" and "ticket HR-42" in row["reason"]
    code, out, err = hub_cli(["audit", "list", "--limit", "5"], s.config)
    assert code == 0 and "reveal" in out and x["id_number"] not in out and x["phone"] not in out


# -- the screen in a sync without a mapping: remote tombstones, consent_field, one query a chunk ---


def _people_csv(path: Path, rows: list[list[str]], consent: dict[int, str] | None = None) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "name", "id_number", "phone", "consent"])
        for i, row in enumerate(rows):
            writer.writerow([row[0], row[1], row[2], row[3], (consent or {}).get(i, "")])


def test_tombstones_in_a_stream_without_mapping_cost_one_query_a_chunk_and_none_when_empty(
    tmp_path: Path, write_project
) -> None:
    rows = [r[:4] for r in write_people_csv(tmp_path / "seed.csv", 300)]
    source = tmp_path / "people.csv"
    _people_csv(source, rows)
    body = files_to_sql_toml(
        source,
        f"sqlite:///{tmp_path / 'hr.db'}",
        hub_db=f"sqlite:///{tmp_path / 'hub.db'}",
        chunk_size=100,
        extra='\n[privacy]\nconsent_field = "consent"\n',
    )
    body = body.replace(
        '[connectors.src]\nplugin = "files"',
        '[connectors.src]\nplugin = "files"\npii = { id_number = "id_number", phone = "phone" }',
    )
    config = write_project(body)
    project = Project(config)
    statements: list[str] = []
    sa.event.listen(
        project.db.engine,
        "before_cursor_execute",
        lambda _conn, _cursor, statement, *_: statements.append(statement),
    )

    def tombstone_queries() -> int:
        return sum("privacy_tombstones" in q for q in statements)

    assert Sync(project, "load").run().counts.inserted == 300
    assert tombstone_queries() == 1  # the empty table is asked once per run, never per chunk

    # Erased: row 0 by its record key, row 1 by its ID number, row 2 by its phone (pii columns).
    erased_at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    with project.db.session() as session:
        for kind, src, digest in (
            ("remote", "src", project.keyring.blind(rows[0][0], "remote_id")),
            ("id_number", "", project.keyring.blind(rows[1][2], "id_number")),
            ("phone", "", project.keyring.blind(str(normalise("phone", rows[2][3])), "phone")),
        ):
            session.add(
                PrivacyTombstone(
                    erasure_id=f"e-{kind}", kind=kind, source=src, digest=digest, erased_at=erased_at
                )
            )
    hr = sa.create_engine(f"sqlite:///{tmp_path / 'hr.db'}")
    with hr.begin() as conn:
        conn.execute(
            sa.text("DELETE FROM people WHERE id IN (:a, :b, :c)"),
            {"a": rows[0][0], "b": rows[1][0], "c": rows[2][0]},
        )
    statements.clear()
    result = Sync(project, "load", full_refresh=True).run()
    assert tombstone_queries() == 1 + 3  # the kinds once, then one lookup per chunk
    with project.db.session() as session:
        events = session.execute(
            sa.select(RunEvent).where(RunEvent.run_id == result.run_id, RunEvent.kind == "privacy")
        ).scalars()
        assert sum(e.details["suppressed"] for e in events) == 3
    with hr.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM people")).scalar_one() == 297

    # Consent older than the erasure changes nothing; newer lets the record through, and lifts
    # the erasure if it matched by key, ID number or e-mail (not by a phone: numbers are recycled).
    now = datetime.now(UTC).isoformat()
    _people_csv(source, rows, consent={0: "2000-01-01 00:00:00", 1: now, 2: now})
    result = Sync(project, "load").run()
    with hr.connect() as conn:
        ids = set(conn.execute(sa.text("SELECT id FROM people")).scalars())
    assert rows[1][0] in ids and rows[2][0] in ids and rows[0][0] not in ids
    with project.db.session() as session:
        rows_now = session.execute(sa.select(PrivacyTombstone.erasure_id, PrivacyTombstone.lifted_at)).all()
        lifted = {erasure: at for erasure, at in rows_now}
    assert lifted["e-id_number"] is not None and lifted["e-remote"] is None and lifted["e-phone"] is None
    assert [e.target for e in audit_of(project, "privacy.consent")] == ["erasure:e-id_number"]
    hr.dispose()


# -- (d) retention, and its job in the scheduler --------------------------------------------------


def test_purge_deletes_old_raw_records_and_dead_letters_and_the_scheduler_runs_it(
    tmp_path: Path, write_project, hub_cli: HubCli
) -> None:
    source = tmp_path / "people.csv"
    write_people_csv(source, 3)
    body = files_to_sql_toml(
        source, f"sqlite:///{tmp_path / 'hr.db'}", hub_db=f"sqlite:///{tmp_path / 'hub.db'}"
    )
    config = write_project(
        body + '\n[privacy]\nraw_records_days = 30\ndead_letters_days = 7\nschedule = "30 3 * * 0"\n'
    )
    project = Project(config)
    now = datetime.now(UTC)
    with project.db.session() as session:
        run = Run(pipeline="load", trigger="manual", status="succeeded", counts={})
        session.add(run)
        session.flush()
        for i, age in enumerate((1, 10, 40, 400)):
            at = now - timedelta(days=age)
            session.add(
                RawRecord(
                    run_id=run.id,
                    pipeline="load",
                    stream="people",
                    key_digest=f"k{i}",
                    payload=b"x",
                    created_at=at,
                )
            )
            session.add(
                DeadLetter(
                    run_id=run.id,
                    pipeline="load",
                    stream="people",
                    position=f"people#{i}",
                    reason="r",
                    status="resolved" if i % 2 else "open",
                    created_at=at,
                )
            )

    def ages(model: Any) -> list[int]:
        with project.db.session() as session:
            stamps = session.execute(sa.select(model.created_at).order_by(model.id)).scalars()
            return [
                round((now - (t if t.tzinfo else t.replace(tzinfo=UTC))).total_seconds() / 86400)
                for t in stamps
            ]

    code, out, err = hub_cli(["privacy", "purge", "--dry-run", "--json"], config)
    assert code == 0, err
    dry = json.loads(out)
    assert (dry["raw_records"], dry["dead_letters"]) == (2, 3)
    assert ages(RawRecord) == [1, 10, 40, 400] and audit_of(project, "privacy.purge") == []

    code, out, err = hub_cli(["privacy", "purge"], config)
    assert code == 0, err
    assert "deleted 2" in out and "deleted 3" in out
    assert ages(RawRecord) == [1, 10]
    assert ages(DeadLetter) == [1]
    (entry,) = audit_of(project, "privacy.purge")
    assert (entry.details["raw_records"], entry.details["dead_letters"]) == (2, 3)

    # The scheduler registers the purge on [privacy] schedule, read as cron(8) does (0 = Sunday).
    scheduler = HubScheduler(project)._build()
    scheduler.start(paused=True)
    try:
        HubScheduler(project)._install_jobs(scheduler)
        job = scheduler.get_job(PURGE_JOB_ID)
        assert job is not None and job.max_instances == 1
        monday = datetime(2026, 11, 30, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
        assert job.trigger.get_next_fire_time(None, monday) == datetime(
            2026, 12, 6, 3, 30, tzinfo=ZoneInfo("Asia/Shanghai")
        )
        job.func(*job.args)  # what a fire does: runs the purge (nothing left to delete)
        (listed,) = [r for r in next_fire_times(project, monday) if r["pipeline"] == "(privacy purge)"]
        assert listed["next_fire"] == "2026-12-06T03:30:00+08:00"
        assert len(audit_of(project, "privacy.purge")) == 2

        without = write_project(body, name="plain.toml")
        HubScheduler(Project(without))._install_jobs(scheduler)
        assert scheduler.get_job(PURGE_JOB_ID) is None  # no retention configured: no job
    finally:
        scheduler.shutdown(wait=False)


def test_privacy_table_is_validated(tmp_path: Path, write_project) -> None:
    from hub.plugins import load_plugins
    from hub.project import collect_connectors

    connectors = collect_connectors(load_plugins(None))
    good = write_project(
        '[privacy]\nschedule = "0 4 * * 7"\nconsent_field = "consented_at"\n', name="good.toml"
    )
    privacy = load_settings(good, connectors).privacy
    assert (privacy.schedule, privacy.consent_field) == ("0 4 * * 7", "consented_at")
    bad = write_project(
        '[privacy]\nschedule = "61 * * * *"\nconsent_field = ""\nraw_records_days = 0\nkeep = 1\n',
        name="bad.toml",
    )
    with pytest.raises(ConfigurationError) as caught:
        load_settings(bad, connectors)
    paths = sorted(p.path for p in caught.value.problems)
    assert paths == [
        "privacy.consent_field",
        "privacy.keep",
        "privacy.raw_records_days",
        "privacy.schedule",
    ]


def test_identifiers_are_found_in_values_free_text_and_nested_json() -> None:
    from hub.crypto import Keyring
    from hub.privacy import IdentifierDigests, _leaves, parse_consent

    keyring = Keyring(b"k" * 32)
    digests = IdentifierDigests(keyring)
    person = {
        ("id_number", keyring.blind("11010519491231002X", "id_number")),
        ("email", keyring.blind("zhang.wei@example.com", "email")),
        ("phone", keyring.blind("+8613800138000", "phone")),
    }
    record = {
        "idno": "11010519491231002x",  # lower-case check character
        "resume": "联系方式：Zhang.Wei@Example.com，电话 138-0013-8000",
        "payload": '{"contact": {"mobile": "+86 138 0013 8000"}, "ids": ["110105194912310"]}',
        "mobile_float": 13800138000.0,
    }
    found = set().union(*(digests.in_text(text) for text in _leaves(record)))
    assert person <= found
    assert not digests.in_text("a note without identifiers, 2024-03-01, 42")
    tz = "Asia/Shanghai"
    assert parse_consent("2026-11-27 08:00:00", tz) == datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
    assert parse_consent("2026-11-27T08:00:00+00:00", tz) == datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    assert parse_consent("2026-11-27", "UTC") == datetime(2026, 11, 27, tzinfo=UTC)
    assert parse_consent("NaT") is None and parse_consent("yesterday") is None and parse_consent(None) is None


def test_export_and_erase_cover_the_persons_onboarding_cases(tmp_path: Path, write_project) -> None:
    from hub import privacy
    from hub.onboarding.flow import OnboardingFlow

    s, hub_id = synced_scenario(tmp_path, write_project)
    with s.config.open("a", encoding="utf-8") as toml:
        toml.write(
            '\n[onboarding]\nschedule = false\ntasks = [{ name = "hr", action = "sql.upsert_employee", '
            'connector = "out" }]\n'
        )
    project = Project(s.config)
    flow = OnboardingFlow(project)
    x, other = s.x, next(p for p in s.people if p["id_number"] != s.x["id_number"])
    by_id_number, _ = flow.open_case(
        {"name": x["name"], "id_number": x["id_number"], "salary": 30000}, source="test"
    )
    by_person, _ = flow.open_case({"name": x["name"], "person_id": hub_id}, source="test")
    theirs, _ = flow.open_case({"name": other["name"], "id_number": other["id_number"]}, source="test")

    data = privacy.export(project, hub_id, "DSR-9")
    assert sorted(c["id"] for c in data["onboarding_cases"]) == sorted([by_id_number, by_person])
    assert {c["data"].get("salary") for c in data["onboarding_cases"]} == {30000, None}

    erased = privacy.erase(project, hub_id, "DSR-9 erasure")
    assert erased.counts["onboarding_cases"] == 2
    assert [view.id for view in flow.list_cases()] == [theirs]
    with project.db.session() as session:
        tasks = session.execute(sa.text("SELECT DISTINCT case_id FROM onboarding_tasks")).scalars().all()
    assert tasks == [theirs]
