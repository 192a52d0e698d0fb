"""Key management: rotation, re-encryption (resumable, killed midway), retirement, KEK rotation.

The values are seeded the way hub's writers seal them (``Keyring.seal`` with each table's
documented context), straight into the state store: fast enough for 100,000 on SQLite.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import LargeBinary
from typer.testing import CliRunner

from hub.cli import app
from hub.crypto import DATA_CLASSES, DecryptionError, Keyring, maintenance
from hub.crypto import keyring as keyring_module
from hub.crypto.keyring import KeyOperationError, unwrap_key
from hub.engine import Sync, dead_letter_context
from hub.leases import LeaseHolder
from hub.pii import raw_record_context
from hub.project import Project
from hub.store.models import AuditEntry, Base, CryptoKey, DeadLetter, JobCheckpoint, RawRecord, Run, utcnow
from tests.conftest import files_to_sql_toml, run_cli
from tests.datagen import write_people_csv

TEST_KEK = b"k" * 32  # conftest's HUB_MASTER_KEY
WriteProject = Callable[..., Path]


# -- helpers -------------------------------------------------------------------------------


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def keys_cli(config: Path, *args: str) -> Ran:
    """``hub --config CONFIG keys ARGS`` in this process: the real command without the 5 s start-up."""
    result = CliRunner().invoke(app, ["--config", str(config), "keys", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Ran(result.exit_code, result.stdout, result.stderr)


def make_project(
    write_project: WriteProject, database: str, keys: str = "", name: str = "hub.toml"
) -> Project:
    body = f'[hub]\ndatabase = "{database}"\n'
    if keys:
        body += f"\n[keys]\n{keys}\n"
    return Project(write_project(body, name=name))


def payload(i: int) -> bytes:
    return f'{{"id": "R{i:07d}", "note": "record {i}"}}'.encode()


def digest(i: int) -> str:
    return f"{i:032x}"


def seed_raw_records(project: Project, count: int, start: int = 0, batch: int = 20_000) -> None:
    """``count`` raw records sealed as hub.pii seals them ("personal" key, documented context)."""
    keyring, now = project.keyring, utcnow()
    table = RawRecord.__table__
    for first in range(start, start + count, batch):
        rows = [
            {
                "id": i + 1,
                "run_id": 1,
                "pipeline": "p",
                "stream": "s",
                "key_digest": digest(i),
                "position": "",
                "payload": keyring.seal(payload(i), "personal", *raw_record_context("p", "s", digest(i))),
                "created_at": now,
            }
            for i in range(first, min(first + batch, start + count))
        ]
        with project.db.engine.begin() as conn:
            conn.execute(table.insert(), rows)
    keyring.flush_counters()


def seed_dead_letters(project: Project, count: int) -> None:
    """Dead letters sealed as the engine seals them."""
    keyring = project.keyring
    with project.db.session() as session:
        run = Run(pipeline="p", trigger="manual", status="partial")
        session.add(run)
        session.flush()
        for i in range(count):
            position = f"s#{i}"
            sealed = keyring.seal(
                payload(i), "personal", "dead_letters", dead_letter_context("p", "s", position)
            )
            session.add(
                DeadLetter(
                    run_id=run.id, pipeline="p", stream="s", position=position, reason="bad", payload=sealed
                )
            )
    keyring.flush_counters()


def open_everything(project: Project, keyring: Keyring | None = None) -> dict[str, int]:
    """Open every sealed value of the state store (through the registry); count them per column."""
    keyring = keyring or project.keyring
    opened: dict[str, int] = {}
    with project.db.engine.connect() as conn:
        for spec in maintenance.SEALED:
            table = spec.sa_table
            column = table.c[spec.column]
            rows = conn.execute(sa.select(table).where(column.is_not(None)))
            n = 0
            for row in rows:
                mapping = row._mapping
                plain = keyring.open(bytes(mapping[spec.column]), *spec.context(mapping))
                if spec.table == "raw_records":
                    assert plain == payload(int(mapping["key_digest"], 16))
                n += 1
            opened[spec.name] = n
    return opened


def key_ids(project: Project, column: Any) -> set[int]:
    """The key ids named by the headers of a column's values."""
    with project.db.engine.connect() as conn:
        return {
            Keyring.key_id_of(bytes(v)) for v in conn.execute(sa.select(column)).scalars() if v is not None
        }


def backdate_demotion(project: Project, *ids: int) -> None:
    """As if the keys had been rotated out an hour ago (past retire's grace period)."""
    with project.db.session() as session:
        session.execute(
            sa.update(CryptoKey).where(CryptoKey.id.in_(ids)).values(demoted_at=utcnow() - timedelta(hours=1))
        )


def status_of(project: Project) -> dict[int, dict[str, Any]]:
    return {k["id"]: k for k in maintenance.status(project)["keys"]}


def audit_actions(project: Project) -> list[str]:
    with project.db.session() as session:
        return list(session.execute(sa.select(AuditEntry.action).order_by(AuditEntry.id)).scalars())


# -- the registry --------------------------------------------------------------------------


def test_every_binary_column_is_registered_as_sealed_or_not() -> None:
    """A new table that stores ciphertexts must be added to maintenance.SEALED (one line)."""
    binary = {
        (table.name, column.name)
        for table in Base.metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, LargeBinary)
    }
    sealed = {(s.table, s.column) for s in maintenance.SEALED}
    assert sealed <= binary
    assert binary - sealed == maintenance.NOT_SEALED
    for spec in maintenance.SEALED:
        table = spec.sa_table
        assert spec.pk and all(n in table.c for n in (*spec.pk, *spec.needs))


# -- (a) rotate, re-encrypt 100,000 values, retire -------------------------------------------


def test_rotate_reencrypt_retire_100k(tmp_path: Path, write_project: WriteProject) -> None:
    n = 100_000
    project = make_project(write_project, f"sqlite:///{tmp_path / 'hub.db'}")
    started = time.monotonic()
    seed_raw_records(project, n)
    seed_dead_letters(project, 25)
    project.set_secret("hr-db", "s3cret-value")
    old_personal = project.keyring.primary("personal").id
    old_secret = project.keyring.primary("secret").id
    assert maintenance.key_usage(project) == {old_personal: n + 25, old_secret: 1}

    changed = maintenance.rotate(project, list(DATA_CLASSES))
    new_personal = changed["personal"]["new"]
    assert changed["personal"]["old"] == old_personal and new_personal != old_personal
    assert Keyring.key_id_of(project.keyring.seal(b"x", "personal", "t", "1")) == new_personal

    seen: list[tuple[int, int]] = []
    result = maintenance.reencrypt(project, batch_size=1000, progress=lambda d, t: seen.append((d, t)))
    assert result.moved == result.moved_total == n + 26 and not result.failed and not result.remaining
    assert not result.resumed and result.changed_meanwhile == 0
    assert seen[0] == (0, n + 26) and seen[-1] == (n + 26, n + 26)
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(seen))
    with project.db.session() as session:
        checkpoint = session.get(JobCheckpoint, maintenance.checkpoint_name("default"))
        assert checkpoint is not None and checkpoint.status == "finished"

    keys = status_of(project)
    assert keys[old_personal]["values"] == 0 and keys[old_secret]["values"] == 0
    assert keys[new_personal]["values"] == n + 25
    assert keys[changed["secret"]["new"]]["values"] == 1
    assert keys[new_personal]["encryptions"] >= n + 25  # the re-encryption's seals were counted
    assert key_ids(project, RawRecord.__table__.c.payload) == {new_personal}

    # A second run finds nothing to move.
    again = maintenance.reencrypt(project)
    assert again.moved == 0 and again.from_keys == sorted(c["old"] for c in changed.values())

    # Retire every old key: allowed now that they seal nothing.
    old_ids = [c["old"] for c in changed.values()]
    backdate_demotion(project, *old_ids)
    for key_id in old_ids:
        assert maintenance.retire(project, key_id, reason="test")["changed"]
    keys = status_of(project)
    assert all(keys[k]["status"] == "retired" and keys[k]["retired_at"] for k in old_ids)

    # Every value still opens (they are all on the new keys), in this process and a fresh one.
    expected = {"raw_records.payload": n, "dead_letters.payload": 25, "secrets.ciphertext": 1}
    assert {k: v for k, v in open_everything(project).items() if v} == expected
    fresh = make_project(write_project, f"sqlite:///{tmp_path / 'hub.db'}", name="again.toml")
    assert {k: v for k, v in open_everything(fresh).items() if v} == expected
    assert fresh.get_secret("hr-db") == "s3cret-value"

    # A value still under the retired key (put back artificially) does not open.
    with project.db.engine.connect() as conn:
        first = conn.execute(sa.select(RawRecord.__table__).where(RawRecord.id == 1)).one()._mapping
    old_blob = _old_blob_for(project, old_personal, first)
    with project.db.engine.begin() as conn:
        conn.execute(sa.update(RawRecord.__table__).where(RawRecord.id == 1).values(payload=old_blob))
    with pytest.raises(DecryptionError, match="retired"):
        project.keyring.open(old_blob, *raw_record_context("p", "s", first["key_digest"]))
    with pytest.raises(DecryptionError, match="retired"):
        open_everything(fresh)
    assert maintenance.key_usage(project)[old_personal] == 1
    actions = audit_actions(project)
    assert actions.count("keys.rotate") == 1 and actions.count("keys.retire") == len(old_ids)
    assert "keys.reencrypt" in actions
    print(f"100k: rotate, re-encrypt, retire and open all in {time.monotonic() - started:.1f}s")


def _old_blob_for(project: Project, key_id: int, row: Any) -> bytes:
    """A value sealed under (now retired) ``key_id``, as if a stale copy had been restored."""
    material = project.keyring.key(key_id, refresh=True).material
    from hub.crypto import aead
    from hub.crypto.envelope import HEADER, lp

    header = HEADER.pack(1, aead.AES_256_GCM.alg_id, key_id)
    nonce = os.urandom(12)
    context = raw_record_context(row["pipeline"], row["stream"], row["key_digest"])
    body = aead.encrypt(aead.AES_256_GCM, material, nonce, b"stale", header + lp("default", *context))
    return header + nonce + body


# -- (b) killed midway, run again ------------------------------------------------------------


def test_reencrypt_killed_midway_resumes(tmp_path: Path, write_project: WriteProject) -> None:
    n = 12_000
    db_path = tmp_path / "hub.db"
    project = make_project(write_project, f"sqlite:///{db_path}")
    seed_raw_records(project, n)
    old = project.keyring.primary("personal").id
    new = maintenance.rotate(project, ["personal"])["personal"]["new"]
    project.db.dispose()

    env = {**os.environ, "HUB_CONFIG": str(project.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "keys", "reencrypt", "--batch-size", "50"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    done_at_kill = 0
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            done_at_kill = _checkpoint_done(db_path)
            if done_at_kill >= 500:
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.005)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the job finished before it could be killed"
    done_at_kill = _checkpoint_done(db_path)  # batches committed before the kill landed
    assert 0 < done_at_kill < n

    # What the checkpoint says moved has moved; the rest is still under the old key.
    usage = maintenance.key_usage(project)
    assert usage == {new: done_at_kill, old: n - done_at_kill}

    second = keys_cli(project.path, "reencrypt", "--batch-size", "500", "--json")
    assert second.returncode == 0, second.stderr
    summary = json.loads(second.stdout)
    assert summary["resumed"] is True
    assert summary["moved"] == n - done_at_kill  # nothing moved twice
    assert summary["moved_total"] == n and summary["failed"] == {} and summary["remaining"] == {}
    assert maintenance.key_usage(project) == {new: n}
    assert open_everything(project)["raw_records.payload"] == n

    text = keys_cli(project.path, "reencrypt")  # nothing left: a fresh job, 0 moved
    assert text.returncode == 0 and "moved 0 values" in text.stdout


def _checkpoint_done(db_path: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
        try:
            row = conn.execute(
                "SELECT state FROM job_checkpoints WHERE name = ?", (maintenance.checkpoint_name("default"),)
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return 0
    return int(json.loads(row[0])["done"]) if row else 0


# -- (c) PostgreSQL and MariaDB --------------------------------------------------------------


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_reencrypt_and_retire_on_servers(
    backend: str, request: pytest.FixtureRequest, write_project: WriteProject
) -> None:
    url = str(request.getfixturevalue("pg_url" if backend == "postgresql" else "mariadb_url"))
    project = make_project(write_project, url)
    try:
        n = 3000
        seed_raw_records(project, n, batch=1000)
        seed_dead_letters(project, 10)
        project.set_secret("api-token", "t0ken")
        changed = maintenance.rotate(project, ["personal", "secret"])
        old_ids = [c["old"] for c in changed.values()]
        result = maintenance.reencrypt(project, batch_size=400)
        assert result.moved == n + 11 and not result.failed and not result.remaining
        usage = maintenance.key_usage(project)
        assert usage == {changed["personal"]["new"]: n + 10, changed["secret"]["new"]: 1}
        with pytest.raises(KeyOperationError, match="stopped being primary"):
            maintenance.retire(project, old_ids[0])
        backdate_demotion(project, *old_ids)
        for key_id in old_ids:
            maintenance.retire(project, key_id)
        opened = open_everything(project)
        assert opened["raw_records.payload"] == n and opened["dead_letters.payload"] == 10
        assert project.get_secret("api-token") == "t0ken"
        assert {k["id"] for k in maintenance.status(project)["keys"] if k["status"] == "retired"} == set(
            old_ids
        )
    finally:
        project.db.dispose()


# -- (d) KEK rotation --------------------------------------------------------------------------


def test_rotate_kek_with_a_new_key_file(
    tmp_path: Path, write_project: WriteProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HUB_MASTER_KEY in use: the new KEK comes in a file; hub changes no file and no value."""
    project = make_project(write_project, f"sqlite:///{tmp_path / 'hub.db'}")
    seed_raw_records(project, 500)
    project.set_secret("pw", "hunter2")
    maintenance.rotate(project, ["personal"])  # an active key too
    before = open_everything(project)
    with project.db.engine.connect() as conn:
        values_before = conn.execute(sa.select(RawRecord.__table__.c.payload)).scalars().all()
    project.db.dispose()

    new_file = tmp_path / "next.key"
    made = keys_cli(project.path, "new-kek", str(new_file))
    assert made.returncode == 0, made.stderr
    assert stat.S_IMODE(new_file.stat().st_mode) == 0o600
    new_kek = base64.urlsafe_b64decode(new_file.read_bytes().strip())
    assert len(new_kek) == 32
    assert new_file.read_text().strip() not in made.stdout + made.stderr
    assert keys_cli(project.path, "new-kek", str(new_file)).returncode == 1  # no overwrite

    rotated = keys_cli(project.path, "rotate-kek", "--new-key-file", str(new_file), "--reason", "yearly")
    assert rotated.returncode == 0, rotated.stderr
    assert "rewrapped and verified" in rotated.stdout
    assert new_file.read_text().strip() not in rotated.stdout + rotated.stderr
    assert not list(tmp_path.glob("*.old"))  # writes nothing else

    # The old KEK no longer unwraps any data key.
    with project.db.session() as session:
        rows = session.execute(sa.select(CryptoKey)).scalars().all()
    for row in rows:
        with pytest.raises(DecryptionError, match="does not unwrap"):
            unwrap_key(TEST_KEK, row.wrapped, row.tenant, row.id, row.data_class, row.algorithm)
        unwrap_key(new_kek, row.wrapped, row.tenant, row.id, row.data_class, row.algorithm)
    still_old = make_project(write_project, f"sqlite:///{tmp_path / 'hub.db'}", name="old.toml")
    with pytest.raises(DecryptionError, match="does not unwrap"):
        still_old.keyring  # noqa: B018 - building it unwraps the keys

    # A project using the new KEK opens every old value; the ciphertexts did not change.
    monkeypatch.setenv("HUB_MASTER_KEY", new_file.read_text().strip())
    after = make_project(write_project, f"sqlite:///{tmp_path / 'hub.db'}", name="new.toml")
    assert open_everything(after) == before
    assert after.get_secret("pw") == "hunter2"
    with after.db.engine.connect() as conn:
        assert conn.execute(sa.select(RawRecord.__table__.c.payload)).scalars().all() == values_before
    data = maintenance.status(after)
    assert data["kek_id"] and all(k["kek_current"] for k in data["keys"])
    with after.db.session() as session:
        entry = session.execute(
            sa.select(AuditEntry).where(AuditEntry.action == "keys.rotate_kek")
        ).scalar_one()
        assert entry.reason == "yearly" and entry.details["keys"] == len(rows)


def test_rotate_kek_replaces_the_key_file_and_resumes(
    tmp_path: Path, write_project: WriteProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HUB_MASTER_KEY")
    config = write_project('[hub]\ndatabase = "sqlite:///.hub/hub.db"\n')
    key_file = tmp_path / ".hub" / "master.key"
    init = keys_cli(config, "init")
    assert init.returncode == 0, init.stderr
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    first_kek = key_file.read_bytes()
    project = Project(config)
    seed_raw_records(project, 300)
    before = open_everything(project)

    rotated = keys_cli(config, "rotate-kek", "--json")
    assert rotated.returncode == 0, rotated.stderr
    result = json.loads(rotated.stdout)
    assert result["keys"] == len(DATA_CLASSES) + 1 and result["resumed"] is False
    backup = Path(result["backup"])
    assert backup.read_bytes() == first_kek and stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert key_file.read_bytes() != first_kek and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert not key_file.with_name("master.key.new").exists()
    assert first_kek.decode().strip() not in rotated.stdout
    assert open_everything(Project(config)) == before

    # Killed after the database commit, before the file swap: running it again completes it.
    current = maintenance.read_kek_file(key_file)
    staged = key_file.with_name("master.key.new")
    staged_kek = maintenance.write_kek_file(staged)
    maintenance.rotate_kek(Project(config), staged_kek, current_kek=current)
    broken = keys_cli(config, "status")  # status needs no KEK: it shows the mismatch
    assert broken.returncode == 0 and "another KEK" in broken.stdout
    resumed = keys_cli(config, "rotate-kek", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["resumed"] is True
    assert maintenance.read_kek_file(key_file) == staged_kek
    assert open_everything(Project(config)) == before
    # The env provider needs the new key given explicitly.
    monkeypatch.setenv("HUB_MASTER_KEY", base64.urlsafe_b64encode(staged_kek).decode())
    refused = keys_cli(config, "rotate-kek")
    assert refused.returncode == 1 and "--new-key-file" in refused.stderr


def test_rotate_kek_refused_while_hub_processes_run(tmp_path: Path, write_project: WriteProject) -> None:
    project = make_project(write_project, f"sqlite:///{tmp_path / 'hub.db'}")
    project.keyring.ensure_keys()
    lease = LeaseHolder(project.db, "scheduler")
    assert lease.try_acquire()
    with pytest.raises(KeyOperationError, match="stop every other hub process"):
        maintenance.rotate_kek(project, os.urandom(32))
    lease.release()
    with pytest.raises(KeyOperationError, match="the one in use"):
        maintenance.rotate_kek(project, TEST_KEK)
    assert maintenance.rotate_kek(project, os.urandom(32)).keys == len(DATA_CLASSES) + 1


# -- (e) retire refusals ---------------------------------------------------------------------


def test_retire_refuses_primary_used_index_and_recent_keys(
    tmp_path: Path, write_project: WriteProject
) -> None:
    project = make_project(write_project, f"sqlite:///{tmp_path / 'hub.db'}")
    seed_raw_records(project, 10)
    primary = project.keyring.primary("personal").id
    index = project.keyring.primary("index").id

    refused = keys_cli(project.path, "retire", str(primary))
    assert refused.returncode == 1
    assert f"key {primary} is the primary key of 'personal'" in refused.stderr
    assert "hub keys rotate --class personal" in refused.stderr

    maintenance.rotate(project, ["personal"])
    backdate_demotion(project, primary)
    refused = keys_cli(project.path, "retire", str(primary))
    assert refused.returncode == 1
    assert f"key {primary} (personal) still seals 10 value(s): run hub keys reencrypt first" in refused.stderr

    with pytest.raises(KeyOperationError, match="index key"):
        maintenance.retire(project, index)
    with pytest.raises(KeyOperationError, match="no key 999"):
        maintenance.retire(project, 999)

    maintenance.rotate(project, ["contact"])  # just demoted, never used
    contact_old = min(k for k, v in status_of(project).items() if v["data_class"] == "contact")
    with pytest.raises(KeyOperationError, match="stopped being primary"):
        maintenance.retire(project, contact_old)
    assert maintenance.retire(project, contact_old, grace_seconds=0)["changed"]

    maintenance.reencrypt(project)
    done = keys_cli(project.path, "retire", str(primary), "--reason", "rotated")
    assert done.returncode == 0, done.stderr
    assert "retired" in done.stdout
    again = keys_cli(project.path, "retire", str(primary))
    assert again.returncode == 0 and "already retired" in again.stdout
    assert status_of(project)[primary]["status"] == "retired"


def test_a_retired_key_stops_opening_in_long_lived_processes(
    tmp_path: Path, write_project: WriteProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(write_project, f"sqlite:///{tmp_path / 'hub.db'}")
    blob = project.keyring.seal(b"v", "contact", "t", "1")
    other = make_project(write_project, f"sqlite:///{tmp_path / 'hub.db'}", name="other.toml")
    assert other.keyring.open(blob, "t", "1") == b"v"  # cached by the "scheduler"
    maintenance.rotate(project, ["contact"])
    maintenance.retire(project, Keyring.key_id_of(blob), grace_seconds=0)
    with pytest.raises(DecryptionError, match="retired"):
        project.keyring.open(blob, "t", "1")  # the process that retired it: at once
    monkeypatch.setattr(keyring_module, "PRIMARY_TTL_SECONDS", 0.0)
    with pytest.raises(DecryptionError, match="retired"):
        other.keyring.open(blob, "t", "1")  # another one: once its cached status is stale


def test_optimistic_update_keeps_a_value_rewritten_meanwhile(
    tmp_path: Path, write_project: WriteProject
) -> None:
    project = make_project(write_project, f"sqlite:///{tmp_path / 'hub.db'}")
    seed_raw_records(project, 2)
    spec = next(s for s in maintenance.SEALED if s.table == "raw_records")
    with project.db.engine.connect() as conn:
        current = conn.execute(sa.select(RawRecord.payload).where(RawRecord.id == 1)).scalar_one()
    with project.db.engine.begin() as conn:
        stale = [{"pk_0": 1, "old_value": b"not what is stored", "new_value": b"x"}]
        assert maintenance._apply(conn, spec, stale) == 0
        fresh = [{"pk_0": 1, "old_value": current, "new_value": current + b""}]
        assert maintenance._apply(conn, spec, fresh) == 1


# -- (f) status, counters, SM4 ---------------------------------------------------------------


def test_status_shows_counts_and_no_key_material(tmp_path: Path, write_project: WriteProject) -> None:
    source = tmp_path / "people.csv"
    write_people_csv(source, 200, seed=5)
    with open(source, "a", encoding="utf-8") as handle:
        handle.write("E9999999,坏,1,2,3,x,2024-02-30,人事\n")  # an impossible date: a dead letter
    config = write_project(
        files_to_sql_toml(
            source,
            f"sqlite:///{tmp_path / 'hr.db'}",
            hub_db=f"sqlite:///{tmp_path / 'hub.db'}",
            columns={"hire_date": "date"},
        )
    )
    project = Project(config)
    result = Sync(project, "load").run()
    assert result.counts.rejected == 1
    seed_raw_records(project, 40)
    personal = project.keyring.primary("personal").id
    # The run flushed its encryption counts (the dead letter; PII columns sealed for the destination).
    with project.db.session() as session:
        encryptions = dict(session.execute(sa.select(CryptoKey.id, CryptoKey.encryptions)).all())
    assert encryptions[personal] >= 41

    shown = keys_cli(config, "status", "--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    by_id = {k["id"]: k for k in data["keys"]}
    assert by_id[personal]["values"] == 41  # 40 raw records + 1 dead letter
    assert by_id[personal]["encryptions"] == encryptions[personal]
    assert sum(k["values"] for k in data["keys"]) == 41
    assert {k["data_class"] for k in data["keys"]} == {*DATA_CLASSES, "index"}
    assert data["values_by_location"] == {
        "dead_letters.payload": {str(personal): 1},
        "raw_records.payload": {str(personal): 40},
    }
    table = run_cli(["keys", "status"], config)  # the real command, its real output
    assert table.returncode == 0 and "encryptions" in table.stdout and "personal" in table.stdout

    secrets = [base64.urlsafe_b64encode(TEST_KEK).decode().rstrip("="), TEST_KEK.hex()]
    with project.db.session() as session:
        for row in session.execute(sa.select(CryptoKey)).scalars():
            material = project.keyring.key(row.id).material
            for blob in (material, row.wrapped):
                secrets += [
                    blob.hex(),
                    base64.b64encode(blob).decode().rstrip("="),
                    base64.urlsafe_b64encode(blob).decode().rstrip("="),
                ]
    for output in (shown.stdout, table.stdout, shown.stderr, table.stderr):
        for secret in secrets:
            assert secret[:16] not in output


def test_sm4_keys_then_back_to_aes(tmp_path: Path, write_project: WriteProject) -> None:
    database = f"sqlite:///{tmp_path / 'hub.db'}"
    sm4 = make_project(write_project, database, keys='algorithm = "sm4-gcm"')
    seed_raw_records(sm4, 200)
    seed_dead_letters(sm4, 5)
    sm4.set_secret("pw", "hunter2")
    with sm4.db.engine.connect() as conn:
        blobs = conn.execute(sa.select(RawRecord.payload)).scalars().all()
    assert {bytes(b)[1] for b in blobs} == {2}  # header: algorithm id 2, SM4-GCM
    sm4_keys = {k["id"] for k in maintenance.status(sm4)["keys"] if k["algorithm"] == "sm4-gcm"}
    assert len(sm4_keys) == len(DATA_CLASSES)
    sm4.db.dispose()

    # The configuration goes back to AES-256-GCM: status says the primaries are on the other one.
    config = write_project(f'[hub]\ndatabase = "{database}"\n\n[keys]\nalgorithm = "aes-256-gcm"\n')
    aes = Project(config)
    assert sorted(maintenance.status(aes)["primaries_not_on_configured_algorithm"]) == sorted(DATA_CLASSES)
    rotated = keys_cli(config, "rotate")
    assert rotated.returncode == 0, rotated.stderr
    moved = keys_cli(config, "reencrypt", "--json")
    assert moved.returncode == 0, moved.stderr
    assert json.loads(moved.stdout)["moved"] == 206
    data = maintenance.status(aes)
    assert data["primaries_not_on_configured_algorithm"] == []
    for key in data["keys"]:
        if key["id"] in sm4_keys:
            assert key["values"] == 0 and key["status"] == "active"
        elif key["values"]:
            assert key["algorithm"] == "aes-256-gcm"
    with aes.db.engine.connect() as conn:
        blobs = conn.execute(sa.select(RawRecord.payload)).scalars().all()
    assert {bytes(b)[1] for b in blobs} == {1}
    assert open_everything(aes)["raw_records.payload"] == 200
    assert aes.get_secret("pw") == "hunter2"
