"""The sync log through the CLI: runs, events, dead letters, and no personal data anywhere."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import sqlalchemy as sa

from tests.conftest import files_to_sql_toml, run_cli
from tests.datagen import HEADER, write_people_csv


def _project_with_bad_rows(tmp_path: Path, write_project) -> tuple[Path, list[list[str]]]:
    source = tmp_path / "people.csv"
    data = write_people_csv(source, 300, seed=3)
    with open(source, "a", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        bad = ["E9000001", "坏日期", data[0][2], data[0][3], data[0][4], "100", "2024-13-45", "人事"]
        writer.writerow(bad)  # line 302: bad date
        writer.writerow(["E9000002", "缺列", data[1][2], data[1][3]])  # line 303: columns missing
    config = write_project(
        files_to_sql_toml(
            source,
            f"sqlite:///{tmp_path / 'hr.db'}",
            hub_db=f"sqlite:///{tmp_path / 'hub.db'}",
            columns={"hire_date": "date", "salary": "integer"},
            chunk_size=100,
        )
    )
    return config, data


def test_runs_logs_and_dead_letters_hold_no_personal_data(tmp_path: Path, write_project) -> None:
    config, data = _project_with_bad_rows(tmp_path, write_project)
    outputs = []

    first = run_cli(["sync", "load", "--json"], config)
    outputs += [first.stdout, first.stderr]
    assert first.returncode == 3, first.stderr  # finished with dead letters
    summary = json.loads(first.stdout)
    assert summary["counts"] == {"read": 302, "inserted": 300, "updated": 0, "unchanged": 0, "rejected": 2}
    run_id = summary["run_id"]

    second = run_cli(["sync", "load"], config)
    outputs += [second.stdout, second.stderr]
    assert second.returncode == 3

    runs = run_cli(["runs", "list", "--json"], config)
    outputs.append(runs.stdout)
    listed = json.loads(runs.stdout)
    assert [r["id"] for r in listed] == [run_id + 1, run_id]
    assert all(r["trigger"] == "manual" and r["status"] == "partial" for r in listed)
    assert listed[0]["counts"]["unchanged"] == 300

    shown = run_cli(["runs", "show", str(run_id), "--json"], config)
    outputs.append(shown.stdout)
    streams = json.loads(shown.stdout)["streams"]
    assert {(s["stream"], s["destination"]) for s in streams} == {("people", None), ("people", "dst")}

    logs = run_cli(["logs", str(run_id), "--level", "debug", "--json"], config)
    outputs.append(logs.stdout)
    kinds = [e["kind"] for e in json.loads(logs.stdout)]
    assert kinds[0] == "run.start" and kinds[-1] == "run.end"
    assert {"stream.start", "stream.end", "checkpoint", "rejected"} <= set(kinds)
    text_logs = run_cli(["logs", str(run_id)], config)
    outputs.append(text_logs.stdout)
    assert "people.csv:302" in text_logs.stdout

    dead = run_cli(["deadletters", "list", "--json"], config)
    outputs.append(dead.stdout)
    letters = json.loads(dead.stdout)
    assert {d["position"] for d in letters} == {"people.csv:302", "people.csv:303"}, letters
    assert len(letters) == 2  # the second run found the same rows: no duplicate dead letters
    reasons = {d["position"]: d["reason"] for d in letters}
    assert "hire_date" in reasons["people.csv:302"]
    assert "expected 8 columns" in reasons["people.csv:303"]
    for letter in letters:
        detail = run_cli(["deadletters", "show", str(letter["id"]), "--json"], config)
        outputs.append(detail.stdout)
        assert detail.returncode == 0
    record = json.loads(run_cli(["deadletters", "show", str(letters[0]["id"]), "--json"], config).stdout)[
        "record"
    ]
    assert record["id_number"].startswith(data[0][2][:3]) and "*" in record["id_number"]

    secrets = [row[i] for row in data for i in (HEADER.index("id_number"), HEADER.index("phone"))]
    secrets += [row[HEADER.index("bank_account")] for row in data]
    joined = "\n".join(outputs)
    assert not [s for s in secrets if s in joined]

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    with engine.connect() as conn:
        for table in ("runs", "run_events", "run_stats", "dead_letters", "canonical_records", "outbox"):
            dump = "\n".join(str(tuple(r)) for r in conn.execute(sa.text(f"SELECT * FROM {table}")))
            assert not [s for s in secrets if s in dump], table
    engine.dispose()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("hub.db*"))
    assert not [s for s in secrets if s.encode() in raw]


def test_runs_list_filters(tmp_path: Path, write_project) -> None:
    config, _ = _project_with_bad_rows(tmp_path, write_project)
    assert run_cli(["sync", "load", "--dry-run", "--json"], config).returncode == 3
    assert run_cli(["sync", "load"], config).returncode == 3
    by_status = json.loads(run_cli(["runs", "list", "--status", "failed", "--json"], config).stdout)
    assert by_status == []
    recent = json.loads(
        run_cli(["runs", "list", "--since", "1h", "--pipeline", "load", "--json"], config).stdout
    )
    assert len(recent) == 2 and recent[1]["dry_run"] is True
    assert json.loads(run_cli(["runs", "list", "--pipeline", "other", "--json"], config).stdout) == []


def test_dead_letter_retry_after_the_destination_is_fixed(tmp_path: Path, write_project) -> None:
    """A destination that refuses rows (NOT NULL on a column the source leaves empty) until fixed."""
    source = tmp_path / "people.csv"
    write_people_csv(source, 20, seed=5)
    rows = list(csv.reader(source.open(encoding="utf-8")))
    rows[3][HEADER.index("department")] = ""
    with open(source, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    target = tmp_path / "hr.db"
    engine = sa.create_engine(f"sqlite:///{target}")
    with engine.begin() as conn:
        cols = ", ".join(f"{c} TEXT" + (" NOT NULL" if c == "department" else "") for c in HEADER)
        conn.execute(sa.text(f"CREATE TABLE people ({cols}, PRIMARY KEY (id))"))
    config = write_project(files_to_sql_toml(source, f"sqlite:///{target}", encrypt_pii=False))

    first = run_cli(["sync", "load", "--json"], config)
    assert first.returncode == 3
    letters = json.loads(run_cli(["deadletters", "list", "--json"], config).stdout)
    assert (
        len(letters) == 1 and letters[0]["destination"] == "dst" and letters[0]["position"] == "people.csv:4"
    )
    assert "NOT NULL" in letters[0]["reason"] or "IntegrityError" in letters[0]["reason"]

    still = run_cli(["deadletters", "retry", "--json"], config)
    assert still.returncode == 3 and json.loads(still.stdout)["still_failing"] == 1

    with engine.begin() as conn:  # the HR master's admin relaxes the constraint
        conn.execute(sa.text("ALTER TABLE people RENAME TO old_people"))
        conn.execute(sa.text(f"CREATE TABLE people ({cols.replace(' NOT NULL', '')}, PRIMARY KEY (id))"))
        conn.execute(sa.text("INSERT INTO people SELECT * FROM old_people"))
    fixed = run_cli(["deadletters", "retry", "--json"], config)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert json.loads(fixed.stdout)["resolved"] == 1
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM people")).scalar_one() == 20
    engine.dispose()
    assert json.loads(run_cli(["deadletters", "list", "--json"], config).stdout) == []
