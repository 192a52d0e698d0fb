"""Personal data at rest: what the demo pipelines leave in the state store, the destination and logs.

The demo's hub.toml (declared ``pii`` on ``ats_export``, ``keep_raw`` on ``ats_people``) runs
against each backend with the state store and the destination on that backend, on sample data
from scripts/make_sample_data.py. Then every row of every table, the SQLite files and the
captured log output are scanned for the source's ID numbers, phones (as written and in E.164),
bank accounts and salaries in clear. The same scan, with ``encrypt_pii = false`` on the
destination, must find them: it can fail.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import random
import re
import socket
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
import sqlalchemy as sa
from hub_sql.destination import SqlDestination
from typer.testing import CliRunner

import hub.engine
import hub.pii
from hub.cli_people import people_app
from hub.crypto import INDEXED_KINDS, DecryptionError
from hub.engine import Sync
from hub.pii import BIDX_SUFFIX, detect_pii, open_destination_value, raw_record_context
from hub.project import Project
from hub.store.models import RawRecord, RunEvent
from tests.conftest import MARIADB_ADMIN_URL, PG_ADMIN_URL, _server_engine, run_cli
from tests.datagen import id_number, phone

REPO = Path(__file__).resolve().parent.parent
ROWS = 240
#: what the demo's hub.toml declares on ats_export (asserted below, so a change is noticed)
DECLARED = {
    "name": "text",
    "id_number": "id_number",
    "birth_date": "text",
    "phone": "phone",
    "email": "email",
    "offer_salary": "money",
    "bank_account": "bank_account",
}
#: a salary as a number of its own: not inside a longer token, a ciphertext or a hex digest
SALARY_TOKEN = re.compile(rb"(?<![0-9A-Za-z_.\-])([0-9]{5,})(?![0-9A-Za-z_\-])")
DIGIT_RUN = re.compile(rb"\+?[0-9]{11,}[Xx]?")


# -- sample data and projects ------------------------------------------------------------------------


@dataclass
class Sample:
    path: Path
    rows: list[dict[str, str]]  # well-formed rows (the broken ones go to dead letters)

    @property
    def id_numbers(self) -> set[str]:
        return {r["id_number"] for r in self.rows if r.get("id_number")}

    @property
    def phones(self) -> set[str]:
        return {r["phone"] for r in self.rows if r.get("phone")}

    @property
    def bank_accounts(self) -> set[str]:
        return {r["bank_account"] for r in self.rows if r.get("bank_account")}

    @property
    def salaries(self) -> set[str]:
        """Salaries of 5 digits or more, minus numbers this machine puts in the store anyway."""
        noise = set(re.findall(r"\d+", f"{socket.gethostname()} {os.getpid()}"))
        return {r["offer_salary"] for r in self.rows if len(r.get("offer_salary") or "") >= 5} - noise

    def needles(self) -> dict[str, set[bytes]]:
        """What must never be found in clear, by category."""
        return {
            "id_number": {v.encode() for v in self.id_numbers}
            | {v.lower().encode() for v in self.id_numbers},
            "phone": {v.encode() for v in self.phones} | {f"+86{v}".encode() for v in self.phones},
            "bank_account": {v.encode() for v in self.bank_accounts},
        }


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    path = tmp_path_factory.mktemp("ats") / "candidates.csv"
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_sample_data.py"), str(path), "--rows", str(ROWS)],
        check=True,
        capture_output=True,
    )
    with open(path, encoding="utf-8", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if None not in r.values() and r["start_date"] != "下周一"]
    assert len(rows) == ROWS - 2
    # the needles are long enough not to occur by chance, and there are salaries to look for
    assert min(len(p) for p in (r["phone"] for r in rows)) == 11
    assert min(len(b) for b in (r["bank_account"] for r in rows)) >= 13
    return Sample(path, rows)


def _fresh_pg() -> Iterator[str]:
    engine = _server_engine(PG_ADMIN_URL, "PostgreSQL")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    yield f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    with engine.connect() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


def _fresh_mariadb() -> Iterator[str]:
    engine = _server_engine(MARIADB_ADMIN_URL, "MariaDB")
    name = f"t_{uuid.uuid4().hex[:12]}"
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
    yield MARIADB_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}?charset=utf8mb4"
    with engine.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE {name}"))
    engine.dispose()


@dataclass
class Backend:
    name: str
    hub_url: str
    dest_url: str


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """The state store and the destination on one backend, each on a fresh database or schema."""
    if request.param == "sqlite":
        yield Backend("sqlite", f"sqlite:///{tmp_path / 'hub.db'}", f"sqlite:///{tmp_path / 'hr_master.db'}")
        return
    if request.param == "postgresql":
        hub_url = str(request.getfixturevalue("pg_url"))
        fresh = _fresh_pg()
    else:
        hub_url = str(request.getfixturevalue("mariadb_url"))
        fresh = _fresh_mariadb()
    dest_url = next(fresh)
    yield Backend(request.param, hub_url, dest_url)
    next(fresh, None)


def _replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"the demo hub.toml changed: {old!r} not found once"
    return text.replace(old, new)


def demo_project(tmp_path: Path, sample: Sample, backend: Backend, *, encrypt: bool = True) -> Path:
    """The repository's hub.toml, pointed at this test's data and databases."""
    text = (REPO / "hub.toml").read_text(encoding="utf-8")
    text = _replace_once(text, 'database = "sqlite:///.hub/hub.db"', f'database = "{backend.hub_url}"')
    text = _replace_once(text, 'path = "demo/data/candidates.csv"', f'path = "{sample.path}"')
    text = _replace_once(text, 'url = "sqlite:///demo/hr_master.db"', f'url = "{backend.dest_url}"')
    text = _replace_once(
        text, '"mappings/ats_candidates_person.yaml"', f'"{REPO / "mappings" / "ats_candidates_person.yaml"}"'
    )
    text = text.replace(
        'mapping = "mappings/', f'mapping = "{REPO / "mappings"}/'
    )  # the recruiting pipelines
    if not encrypt:
        text = _replace_once(
            text,
            '[connectors.hr_master]\nplugin = "sql"\n',
            '[connectors.hr_master]\nplugin = "sql"\nencrypt_pii = false\n',
        )
    path = tmp_path / "hub.toml"
    path.write_text(text, encoding="utf-8")
    return path


def run_demo(config: Path, pipelines: tuple[str, ...] = ("ats_to_hr_master", "ats_people")) -> Project:
    project = Project(config)
    assert dict(project.settings.connectors["ats_export"].pii) == DECLARED
    assert project.settings.pipelines["ats_people"].keep_raw
    for pipeline in pipelines:
        result = Sync(project, pipeline).run()
        assert result.status == "partial", (pipeline, result.error)  # the sample's broken rows
        assert result.counts.inserted > ROWS * 0.9
    return project


# -- scanning ---------------------------------------------------------------------------------------


def _as_bytes(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, dict | list):
        return orjson.dumps(value, default=str)
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return str(int(value)).encode()
    return str(value).encode()


def find_in(data: bytes, needles: dict[str, set[bytes]], salaries: set[str]) -> dict[str, set[str]]:
    """Which needles occur in ``data``, by category (salaries only as numbers of their own)."""
    runs = set(DIGIT_RUN.findall(data))
    found = {
        kind: {n.decode() for n in wanted if any(n in run for run in runs)}
        for kind, wanted in needles.items()
    }
    found["salary"] = {t.decode() for t in SALARY_TOKEN.findall(data)} & salaries
    return {k: v for k, v in found.items() if v}


def scan_database(url: str, sample: Sample) -> dict[str, dict[str, set[str]]]:
    """Every row of every table, each value as str/bytes: what is found in clear, per table."""
    engine = sa.create_engine(url)
    leaks: dict[str, dict[str, set[str]]] = {}
    try:
        tables = sa.inspect(engine).get_table_names()
        assert tables
        with engine.connect() as conn:
            for table in tables:
                quoted = engine.dialect.identifier_preparer.quote(table)
                rows = conn.execute(sa.text(f"SELECT * FROM {quoted}")).all()
                data = b"\n".join(b"\t".join(_as_bytes(v) for v in row) for row in rows)
                found = find_in(data, sample.needles(), sample.salaries)
                if found:
                    leaks[table] = found
    finally:
        engine.dispose()
    return leaks


def scan_files(directory: Path, sample: Sample) -> dict[str, dict[str, set[str]]]:
    """The SQLite files byte for byte, write-ahead logs included."""
    leaks = {}
    files = sorted(p for p in directory.iterdir() if p.name.endswith((".db", ".db-wal", ".db-journal")))
    assert any(p.name == "hub.db" for p in files) and any(p.name == "hr_master.db" for p in files)
    for path in files:
        found = find_in(path.read_bytes(), sample.needles(), sample.salaries)
        if found:
            leaks[path.name] = found
    return leaks


def _planted_and_found(url: str, sample: Sample) -> set[str]:
    """Plant one phone and one salary in a table of their own; what does the scan find there?"""
    engine = sa.create_engine(url)
    row = sample.rows[1]
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE planted (note VARCHAR(200))"))
            conn.execute(
                sa.text("INSERT INTO planted VALUES (:v)"),
                {"v": f"call {row['phone']}, pay {max(sample.salaries)}"},
            )
        found = scan_database(url, sample).get("planted", {})
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE planted"))
        engine.dispose()
    return set(found)


def test_the_scan_can_fail(sample: Sample) -> None:
    row = sample.rows[0]
    planted = (
        f'x{row["id_number"]}y,+86{row["phone"]},{row["bank_account"]}z,"offer_salary":{max(sample.salaries)}'
    ).encode()
    assert set(find_in(planted, sample.needles(), sample.salaries)) == {
        "id_number",
        "phone",
        "bank_account",
        "salary",
    }
    # ciphertexts, digests and counts are not salaries
    assert not find_in(b"hub1.AQEA23500x-12345_ab 23500abcdef 0.23500 C0023500", {}, {"23500", "12345"})


# -- the demo, encrypted ----------------------------------------------------------------------------


def _destination_rows(url: str, table: str) -> list[dict[str, Any]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            quoted = engine.dialect.identifier_preparer.quote(table)
            return [dict(r._mapping) for r in conn.execute(sa.text(f"SELECT * FROM {quoted}"))]
    finally:
        engine.dispose()


def _iso_date(text: str) -> str:
    parts = [int(p) for p in re.findall(r"\d+", text)]
    return date(*parts[:3]).isoformat()


def test_demo_leaves_no_personal_data_in_clear(
    tmp_path: Path,
    sample: Sample,
    backend: Backend,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    handed: list[pd.DataFrame] = []  # what the destination plugin is given, before it writes
    write_batch = SqlDestination.write_batch

    def recording(self: SqlDestination, config: Any, stream: str, frame: pd.DataFrame, *args: Any) -> Any:
        handed.append(frame)
        return write_batch(self, config, stream, frame, *args)

    monkeypatch.setattr(SqlDestination, "write_batch", recording)
    project = run_demo(demo_project(tmp_path, sample, backend))
    # Identity-only columns (the mapping's identity: section, with the raw ID number) never reach
    # a destination plugin, and nothing it is handed holds personal data in clear.
    assert len(handed) == 2 and all(not c.startswith("_hub_identity_") for f in handed for c in f.columns)
    assert not find_in(
        b"\n".join(orjson.dumps(f.to_dict("records")) for f in handed), sample.needles(), set()
    )
    keyring = project.keyring
    by_id = {r["candidate_id"]: r for r in sample.rows}

    # The raw stream: every declared column decrypts to the source value; blind indexes match.
    candidates = _destination_rows(backend.dest_url, "onboarding_candidates")
    assert len(candidates) == len(sample.rows)
    for row in candidates:
        source = by_id[row["candidate_id"]]
        for column, kind in DECLARED.items():
            stored = row[column]
            assert stored.startswith("hub1."), column
            plain = open_destination_value(
                keyring, "hr_master", "candidates", column, row["candidate_id"], stored
            )
            expected = _iso_date(source[column]) if column == "birth_date" else source[column]
            assert plain == expected, column
            if kind in INDEXED_KINDS:
                assert row[column + BIDX_SUFFIX] == keyring.blind_index(source[column], kind)
            else:
                assert column + BIDX_SUFFIX not in row
        assert row["city"] == source["city"]  # not personal data: as it was
    first = candidates[0]
    with pytest.raises(DecryptionError):  # bound to its row and column
        open_destination_value(
            keyring, "hr_master", "candidates", "phone", first["candidate_id"], first["email"]
        )
    with pytest.raises(DecryptionError):
        open_destination_value(keyring, "hr_master", "candidates", "phone", "C9999999", first["phone"])

    # The mapped stream: canonical PII fields sealed; identity-only columns never written.
    persons = _destination_rows(backend.dest_url, "persons")
    assert persons and not [c for c in persons[0] if c.startswith("_hub")]
    for row in persons:
        source = by_id[row["remote_id"]]
        phone = open_destination_value(
            keyring, "hr_master", "persons", "mobile_phone", row["remote_id"], row["mobile_phone"]
        )
        assert phone == f"+86{source['phone']}"
        assert row["mobile_phone_bidx"] == keyring.blind_index(phone, "phone")
        assert row["legal_family_name"].startswith("hub1.") and row["date_of_birth"].startswith("hub1.")

    # keep_raw: each delivered source record, sealed, in the chunk's transaction.
    with project.db.session() as session:
        raws = session.execute(sa.select(RawRecord)).scalars().all()
        assert {r.pipeline for r in raws} == {"ats_people"}
        assert len(raws) == len(persons)
        record = json.loads(
            keyring.open(raws[0].payload, *raw_record_context("ats_people", "candidates", raws[0].key_digest))
        )
        source = by_id[record["candidate_id"]]
        for column in ("name", "id_number", "phone", "email", "bank_account", "offer_salary"):
            assert record[column] == source[column]

    # Nothing in clear: the state store, the destination, the SQLite files, the logs.
    assert scan_database(backend.hub_url, sample) == {}
    assert scan_database(backend.dest_url, sample) == {}
    project.db.dispose()
    if backend.name == "sqlite":
        assert scan_files(tmp_path, sample) == {}
    logged = (caplog.text + "".join(capsys.readouterr())).encode()
    assert "identity:" in caplog.text  # the capture saw the runs
    assert find_in(logged, sample.needles(), sample.salaries) == {}
    for url in (backend.hub_url, backend.dest_url):  # and the scan sees what is there
        assert _planted_and_found(url, sample) == {"phone", "salary"}

    # People are found by ID number through the blind index (persons/person_index were scanned above).
    someone = sample.rows[5]
    found = CliRunner().invoke(
        people_app, ["find", "--id-number", someone["id_number"], "--config", str(project.path), "--json"]
    )
    assert found.exit_code == 0, found.output
    (person,) = json.loads(found.stdout)
    assert someone["id_number"] not in found.stdout and person["id_number"].endswith(
        someone["id_number"][-4:]
    )


def _count_column_seals(project: Project, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Values sealed for destination columns (dead letters are sealed too, each run)."""
    sealed: list[int] = []
    count_sealed = project.keyring.count_sealed

    def counting(key_id: int, n: int) -> None:
        sealed.append(n)
        count_sealed(key_id, n)

    monkeypatch.setattr(project.keyring, "count_sealed", counting)
    return sealed


def test_only_changed_records_are_encrypted_again(
    tmp_path: Path, sample: Sample, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = Backend("sqlite", f"sqlite:///{tmp_path / 'hub.db'}", f"sqlite:///{tmp_path / 'hr_master.db'}")
    copy = tmp_path / "candidates.csv"  # changed in place below (another path is another pipeline)
    copy.write_bytes(sample.path.read_bytes())
    sample = Sample(copy, sample.rows)
    project = run_demo(demo_project(tmp_path, sample, backend), ("ats_to_hr_master",))
    sealed = _count_column_seals(project, monkeypatch)
    again = Sync(project, "ats_to_hr_master").run()
    assert again.counts.unchanged == len(sample.rows) and again.counts.inserted == again.counts.updated == 0
    assert sum(sealed) == 0  # no nonce spent on unchanged records

    text = copy.read_text(encoding="utf-8")
    row = sample.rows[0]
    copy.write_text(text.replace(row["email"], "changed@example.com", 1), encoding="utf-8")
    sealed = _count_column_seals(project, monkeypatch)
    result = Sync(project, "ats_to_hr_master").run()
    assert result.counts.updated == 1 and result.counts.unchanged == len(sample.rows) - 1
    assert sealed == [1] * len(DECLARED)  # one record: one sealed value per declared column
    (stored,) = [
        r
        for r in _destination_rows(backend.dest_url, "onboarding_candidates")
        if r["candidate_id"] == row["candidate_id"]
    ]
    assert (
        open_destination_value(
            project.keyring, "hr_master", "candidates", "email", row["candidate_id"], stored["email"]
        )
        == "changed@example.com"
    )
    assert stored["email_bidx"] == project.keyring.blind_index("changed@example.com", "email")


def test_the_scan_finds_them_when_encryption_is_off(tmp_path: Path, sample: Sample) -> None:
    """The control: the same scans, with ``encrypt_pii = false`` on the HR master."""
    backend = Backend("sqlite", f"sqlite:///{tmp_path / 'hub.db'}", f"sqlite:///{tmp_path / 'hr_master.db'}")
    project = run_demo(demo_project(tmp_path, sample, backend, encrypt=False))
    everything = {"id_number", "phone", "bank_account", "salary"}
    leaks = scan_database(backend.dest_url, sample)
    assert set(leaks["onboarding_candidates"]) == everything
    assert leaks["onboarding_candidates"]["salary"] == sample.salaries
    delivered = {r["remote_id"] for r in _destination_rows(backend.dest_url, "persons")}
    e164 = {p for p in leaks["persons"]["phone"] if p.startswith("+86")}
    assert e164 == {f"+86{r['phone']}" for r in sample.rows if r["candidate_id"] in delivered}
    assert scan_database(backend.hub_url, sample) == {}  # hub's own store stays sealed either way
    project.db.dispose()
    files = scan_files(tmp_path, sample)
    # SQLite keeps the integer salary column in binary, so in the file only the text columns show
    assert set(files["hr_master.db"]) >= {"id_number", "phone", "bank_account"}
    assert "hub.db" not in files
    columns = _destination_rows(backend.dest_url, "onboarding_candidates")[0]
    assert not [c for c in columns if c.endswith(BIDX_SUFFIX)]


# -- the safety net, keys, logging ------------------------------------------------------------------


def _luhn(body: str) -> str:
    total = 0
    for i, d in enumerate(reversed(body)):
        n = int(d) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return body + str((10 - total % 10) % 10)


def _undeclared_csv(path: Path, rows: int = 60) -> list[list[str]]:
    rng = random.Random(5)
    data = [
        [
            f"E{i:04d}",
            id_number(rng),
            phone(rng),
            _luhn(f"6222{rng.randint(0, 10**14 - 1):014d}"),
            f"note {i}",
        ]
        for i in range(rows)
    ]
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["emp", "idno", "mobile", "card", "note"])
        writer.writerows(data)
    return data


def test_undeclared_personal_data_is_found_and_encrypted(
    tmp_path: Path, write_project: Callable[..., Path]
) -> None:
    data = _undeclared_csv(tmp_path / "people.csv")
    config = write_project(
        f"""
        [hub]
        database = "sqlite:///{tmp_path / "hub.db"}"
        [connectors.src]
        plugin = "files"
        [connectors.src.config]
        path = "{tmp_path / "people.csv"}"
        stream = "people"
        primary_key = ["emp"]
        [connectors.dst]
        plugin = "sql"
        [connectors.dst.config]
        url = "sqlite:///{tmp_path / "out.db"}"
        [pipelines.load]
        source = "src"
        streams = ["people"]
        destinations = ["dst"]
        """
    )
    project = Project(config)
    result = Sync(project, "load").run()
    assert result.status == "succeeded", result.error
    rows = {r["emp"]: r for r in _destination_rows(f"sqlite:///{tmp_path / 'out.db'}", "people")}
    for emp, idno, mobile, card, note in data:
        row = rows[emp]
        assert row["note"] == note
        for column, value, kind in (
            ("idno", idno, "id_number"),
            ("mobile", mobile, "phone"),
            ("card", card, "bank_account"),
        ):
            assert open_destination_value(project.keyring, "dst", "people", column, emp, row[column]) == value
            assert row[column + BIDX_SUFFIX] == project.keyring.blind_index(value, kind)
    with project.db.session() as session:
        events = session.execute(sa.select(RunEvent).where(RunEvent.kind == "pii.undeclared")).scalars().all()
        messages = "\n".join(e.message for e in events)
    assert len(events) == 3
    for column in ("idno", "mobile", "card"):
        assert f"column {column!r}" in messages
    assert "connectors.src.pii" in messages
    assert not find_in(messages.encode(), {"all": {v.encode() for row in data for v in row[1:4]}}, set())


def test_detect_pii_shapes() -> None:
    from hub.frames import text_frame

    card = _luhn("622202020011223344")
    frame = text_frame(
        pd.DataFrame(
            {
                "idno": ["11010519491231002X", "110105 19491231 002x", None, ""],
                "bad_check": ["110105194912310021", "110105194912310021", None, None],
                "mobile": ["+86 138-0013-8000", "13800138000", "008613912345678", None],
                "landline": ["010-12345678", "021-87654321", None, None],
                "card": [card, "4111 1111 1111 1111", None, None],
                "not_luhn": [card[:-1] + str((int(card[-1]) + 1) % 10), "4111111111111112", None, None],
                "mixed": ["13800138000", "hello", "world", "again"],
                "text": ["a", "b", "c", "d"],
            }
        )
    )
    assert detect_pii(frame, list(frame.columns)) == {
        "idno": "id_number",
        "mobile": "phone",
        "card": "bank_account",
    }


def test_personal_data_in_a_record_key_is_refused(tmp_path: Path, write_project: Callable[..., Path]) -> None:
    data = _undeclared_csv(tmp_path / "people.csv", rows=5)
    config = write_project(
        f"""
        [hub]
        database = "sqlite:///{tmp_path / "hub.db"}"
        [connectors.src]
        plugin = "files"
        pii = {{ idno = "id_number" }}
        [connectors.src.config]
        path = "{tmp_path / "people.csv"}"
        stream = "people"
        primary_key = ["idno"]
        [connectors.dst]
        plugin = "sql"
        [connectors.dst.config]
        url = "sqlite:///{tmp_path / "out.db"}"
        [pipelines.load]
        source = "src"
        streams = ["people"]
        destinations = ["dst"]
        """
    )
    result = Sync(Project(config), "load").run()
    assert result.status == "failed"
    assert result.error is not None and "idno" in result.error and "encrypt_pii = false" in result.error
    assert not any(row[1] in result.error for row in data)


def test_plugin_logging_personal_data_is_masked_by_the_cli(
    tmp_path: Path, write_project: Callable[..., Path]
) -> None:
    """A plugin that logs a raw ID number and phone: ``hub``'s logging setup masks the line."""
    id_no, mobile, card = "11010519491231002X", "13800138000", _luhn("622202020011223344")
    plugins = tmp_path / "hub_plugins"
    plugins.mkdir()
    (plugins / "chatty.py").write_text(
        textwrap.dedent(
            f"""
            import logging

            import hub

            log = logging.getLogger("acme.chatty")


            @hub.hookimpl
            def hub_run_started(run_id, pipeline, trigger):
                log.warning("candidate %s called from %s", "{id_no}", "+86 {mobile}")
                log.error("bank card {card} on file")
            """
        ),
        encoding="utf-8",
    )
    (tmp_path / "in.csv").write_text("id,city\n1,北京\n", encoding="utf-8")
    config = write_project(
        f"""
        [hub]
        database = "sqlite:///{tmp_path / "hub.db"}"
        plugins_dir = "hub_plugins"
        [connectors.src]
        plugin = "files"
        [connectors.src.config]
        path = "{tmp_path / "in.csv"}"
        stream = "rows"
        primary_key = ["id"]
        [connectors.dst]
        plugin = "sql"
        [connectors.dst.config]
        url = "sqlite:///{tmp_path / "out.db"}"
        [pipelines.load]
        source = "src"
        streams = ["rows"]
        destinations = ["dst"]
        """
    )
    done = run_cli(["sync", "load"], config)
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert "acme.chatty" in output  # the lines were logged
    assert "110***********002X" in output and "138****8000" in output and f"**** {card[-4:]}" in output
    for secret in (id_no, mobile, card):
        assert secret not in output


def test_an_airbyte_logging_setup_after_hubs_does_not_unmask_the_log() -> None:
    """airbyte-cdk's ``init_logger`` replaces the root logger's handlers (hub's masking one too)."""
    import io

    from airbyte_cdk.logger import init_logger

    from hub.logs import setup_logging

    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    stream = io.StringIO()
    try:
        setup_logging("INFO", stream)
        init_logger("airbyte")  # as a CDK entry point does, in the middle of a run
        hub._contain_airbyte_logging()  # what every CDK call hub makes ends with
        logging.getLogger("acme.plugin").warning("candidate %s", "11010519491231002X")
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in before:
            root.addHandler(handler)
        root.setLevel(level)
        hub._handler = None
    assert "candidate 110***********002X" in stream.getvalue()
    assert "11010519491231002X" not in stream.getvalue()


def test_remote_id_is_the_same_column() -> None:
    assert hub.pii.REMOTE_ID == hub.engine.REMOTE_ID


def test_large_chunks_are_sealed_in_worker_processes_with_the_same_result() -> None:
    """Chunks of PARALLEL_ROWS or more go to the sealing workers; what comes back opens the same."""
    from hub.crypto import Keyring

    keyring = Keyring(os.urandom(32))
    rows = hub.pii.PARALLEL_ROWS
    frame = pd.DataFrame(
        {
            "id": [f"C{i:06d}" for i in range(rows)],
            "id_number": [f"1101051949123{i:05d}" if i % 7 else None for i in range(rows)],
            "offer_salary": [str(10_000 + i) for i in range(rows)],
        }
    ).astype("string")
    kinds = {"id_number": "id_number", "offer_salary": "money"}
    ids = frame["id"].tolist()
    sealer = hub.pii.ColumnSealer()
    try:
        pool = sealer.pool(rows)
        assert pool is not None and sealer.pool(rows - 1) is None
        parallel = hub.pii.encrypt_columns(frame, kinds, keyring, "dst/people", ids, pool, workers=2)
    finally:
        sealer.close()
    local = hub.pii.encrypt_columns(frame, kinds, keyring, "dst/people", ids)
    assert list(parallel.columns) == list(local.columns)
    assert parallel["id_number_bidx"].equals(local["id_number_bidx"])
    for column in kinds:
        for i in (0, 1, 7, rows // 2 - 1, rows // 2, rows - 1):  # both row ranges, and their seam
            value, expected = parallel[column].iat[i], frame[column].iat[i]
            if pd.isna(expected):
                assert pd.isna(value)
                continue
            assert value != expected and value != local[column].iat[i]  # fresh nonces
            assert keyring.open_text(value, "dst/people", column, ids[i]) == expected
    assert keyring.encryptions[keyring.primary("identity").id] == 2 * sum(
        frame["id_number"].notna()
    )  # both runs


def test_text_array_keeps_nulls_empties_and_non_ascii_text() -> None:
    import pyarrow as pa

    from hub.crypto.keyring import text_array

    values = ["a", None, "", "张三", None, "hub1.AAAA"] * 3
    array = text_array(values)
    assert array.type == pa.string()
    assert array.to_pylist() == values
    assert array.null_count == 6
    assert text_array([]).to_pylist() == []
    assert text_array(["x", "y"]).null_count == 0


def test_sealing_a_chunk_in_a_fresh_process_does_not_import_pandas() -> None:
    """A sealing worker's own work (Arrow in, Arrow out) needs neither pandas nor airbyte-cdk."""
    script = """
import os, sys
from hub.crypto import Keyring
from hub.crypto.keyring import seal_text_columns, text_array
keyring = Keyring(os.urandom(32))
task = keyring.column_task("identity", "dst/people", "id_number")
blind = keyring.blind_key("id_number")
out = seal_text_columns([(task, blind)], [text_array(["110105194912310021", None])], text_array(["C1", "C2"]))
assert out[0][0].to_pylist()[1] is None and out[0][1].to_pylist()[1] is None
assert keyring.open_text(out[0][0].to_pylist()[0], "dst/people", "id_number", "C1") == "110105194912310021"
print(sorted(m for m in ("pandas", "airbyte_cdk") if m in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
