"""The ``files`` connector: encodings, long digit strings, Excel, dates, rejections with their
line numbers, the Airbyte protocol and resume; connector by connector and end to end into SQLite.
"""

from __future__ import annotations

import csv
import json
import logging
import random
import sqlite3
from contextlib import closing
from datetime import date, datetime
from pathlib import Path
from typing import Any

import hub_files.source as files_source
import pandas as pd
import pytest
from airbyte_cdk.models import (
    AirbyteStateType,
    ConfiguredAirbyteCatalog,
    ConfiguredAirbyteStream,
    DestinationSyncMode,
    Status,
    SyncMode,
    Type,
)
from hub_files.source import FilesSource, detect_encoding, file_digest
from hub_files.values import parse_dates
from openpyxl import Workbook

from hub.connectors import POSITION, Rejection, stream_state_message
from hub.engine import Sync
from hub.project import Project
from tests.conftest import files_to_sql_toml, run_cli
from tests.datagen import HEADER, id_number, person_row

LOG = logging.getLogger("tests.files")

CN_HEADER = ["工号", "姓名", "身份证号", "手机", "银行账号", "薪资", "入职日期", "部门"]


# -- helpers ---------------------------------------------------------------------------------


def people(rows: int, seed: int = 11) -> list[list[str]]:
    """Synthetic people with the awkward values every export has somewhere."""
    rng = random.Random(seed)
    data = [person_row(i, rng) for i in range(1, rows + 1)]
    data[0][2] = "0012345"  # leading zeros
    x_ids = [n for n in (id_number(rng) for _ in range(500)) if n.endswith("X")]
    data[1][2], data[2][2] = x_ids[0], x_ids[1]  # 18 digits ending in X
    data[3][4] = "0001234567890123456"  # a 19-digit account with leading zeros
    data[4][1] = "龚䶮"  # CJK extension A: a four-byte sequence in GB18030
    data[5][1] = "𠮷野"  # outside the BMP
    data[6][7] = "NA"  # text that pyarrow would take for null by default
    data[7][7] = "NULL"
    data[8][7] = "研发,北京"  # quoted: holds the delimiter
    return data


def write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str) -> None:
    with open(path, "w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def read_all(
    config: dict[str, Any], state: dict[str, Any] | None = None, chunk_size: int = 20000
) -> tuple[pd.DataFrame, list[Rejection], list[dict[str, Any]]]:
    """Every batch of a read: the records (with positions), the rejections and the states."""
    frames, rejections, states = [], [], []
    for batch in FilesSource().read_batches(LOG, config, "people", state, {"chunk_size": chunk_size}):
        if len(batch.frame):
            frames.append(batch.frame)
        rejections += batch.rejections
        assert batch.state is not None
        states.append(batch.state)
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[POSITION])
    return frame, rejections, states


def values(frame: pd.DataFrame, header: list[str]) -> list[list[str | None]]:
    if frame.empty:
        return []
    return [[None if pd.isna(v) else str(v) for v in row] for row in frame[header].itertuples(index=False)]


def pipeline_toml(
    source: Path,
    target: Path,
    hub_db: Path,
    *,
    primary_key: str,
    columns: dict[str, str] | None = None,
    required: list[str] | None = None,
    chunk_size: int = 20000,
    encoding: str | None = None,
) -> str:
    """hub.toml for files -> sql; keys are quoted (JSON strings are TOML basic strings)."""

    def q(text: str) -> str:
        return json.dumps(text, ensure_ascii=False)

    cols = ", ".join(f"{q(k)} = {q(v)}" for k, v in (columns or {}).items())
    return f"""
[hub]
database = {q(f"sqlite:///{hub_db}")}
chunk_size = {chunk_size}

[connectors.src]
plugin = "files"
[connectors.src.config]
path = {q(str(source))}
stream = "people"
primary_key = [{q(primary_key)}]
columns = {{ {cols} }}
required = [{", ".join(q(r) for r in required or [])}]
{f"encoding = {q(encoding)}" if encoding else ""}

[connectors.dst]
plugin = "sql"
encrypt_pii = false  # these tests read ID numbers back as the file had them
[connectors.dst.config]
url = {q(f"sqlite:///{target}")}

[pipelines.load]
source = "src"
streams = ["people"]
destinations = ["dst"]
"""


def table_rows(db: Path, columns: list[str], table: str = "people") -> list[list[str | None]]:
    cols = ", ".join(f'"{c}"' for c in columns)
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute(f'SELECT {cols} FROM "{table}" ORDER BY "{columns[0]}"').fetchall()
    return [[None if v is None else str(v) for v in row] for row in rows]


def sqlite_types(db: Path, column: str, table: str = "people") -> set[str]:
    with closing(sqlite3.connect(db)) as conn:
        return {t for (t,) in conn.execute(f'SELECT DISTINCT typeof("{column}") FROM "{table}"')}


def dead_letters(hub_db: Path) -> dict[str, str]:
    """Open dead letters of the last run: position -> reason."""
    with closing(sqlite3.connect(hub_db)) as conn:
        rows = conn.execute(
            "SELECT position, reason, destination FROM dead_letters "
            "WHERE run_id = (SELECT max(id) FROM runs) AND status = 'open'"
        ).fetchall()
    assert all(destination is None for _, _, destination in rows)  # rejected by the source
    return {position: reason for position, reason, _ in rows}


def configured(config: dict[str, Any]) -> ConfiguredAirbyteCatalog:
    stream = FilesSource().discover(LOG, config).streams[0]
    return ConfiguredAirbyteCatalog(
        streams=[
            ConfiguredAirbyteStream(
                stream=stream,
                sync_mode=SyncMode.incremental,
                destination_sync_mode=DestinationSyncMode.append_dedup,
            )
        ]
    )


# -- 1. GB18030 ------------------------------------------------------------------------------


def test_gb18030_is_detected_and_every_value_arrives_as_written(tmp_path: Path) -> None:
    source = tmp_path / "people.csv"
    data = people(120)
    write_csv(source, CN_HEADER, data, "gb18030")
    assert not source.read_bytes().startswith(b"\xef\xbb\xbf")
    assert detect_encoding(source) == "gb18030"

    config = {"path": str(source), "primary_key": ["工号"], "columns": {"入职日期": "date"}}
    frame, rejections, _ = read_all(config, chunk_size=50)
    assert rejections == []
    assert list(frame.columns) == [*CN_HEADER, POSITION]
    assert values(frame, CN_HEADER) == data
    ids = frame["身份证号"].tolist()
    assert ids[:3] == ["0012345", data[1][2], data[2][2]] and ids[1].endswith("X")
    assert all(len(v) == 19 and v.isdigit() for v in frame["银行账号"])
    assert frame[POSITION].tolist() == [f"people.csv:{line}" for line in range(2, 122)]


def test_gb18030_end_to_end_into_sqlite_keeps_ids_as_text(tmp_path: Path, write_project) -> None:
    source, target, hub_db = tmp_path / "people.csv", tmp_path / "hr.db", tmp_path / "hub.db"
    data = people(200)
    write_csv(source, CN_HEADER, data, "gb18030")
    config = write_project(
        pipeline_toml(
            source,
            target,
            hub_db,
            primary_key="工号",
            columns={"入职日期": "date"},
            required=["姓名", "身份证号"],
            chunk_size=50,
        )
    )
    result = Sync(Project(config), "load").run()
    assert result.status == "succeeded", result.error
    assert (result.counts.read, result.counts.inserted, result.counts.rejected) == (200, 200, 0)

    assert table_rows(target, CN_HEADER) == sorted(data)
    for column in ("身份证号", "银行账号", "手机"):
        assert sqlite_types(target, column) == {"text"}
    with closing(sqlite3.connect(target)) as conn:
        stored = dict(conn.execute('SELECT "工号", "身份证号" FROM people').fetchall())
    assert stored[data[0][0]] == "0012345"
    assert stored[data[1][0]] == data[1][2] and stored[data[1][0]].endswith("X")


def test_a_short_gb18030_file_is_not_taken_for_korean(tmp_path: Path) -> None:
    source = tmp_path / "tiny.csv"
    source.write_bytes("工号,姓名\nE1,Tom\n".encode("gb18030"))  # charset detection alone says cp949
    assert detect_encoding(source) == "gb18030"
    frame, _, _ = read_all({"path": str(source)})
    assert values(frame, ["工号", "姓名"]) == [["E1", "Tom"]]


def test_detected_single_byte_encodings_are_usable_codec_names(tmp_path: Path) -> None:
    source = tmp_path / "ru.csv"
    rows = [
        ["1", "Съешь же ещё этих мягких французских булок", "Москва"],
        ["2", "да выпей чаю", "Санкт-Петербург"],
    ]
    write_csv(source, ["id", "name", "city"], rows, "koi8_r")
    assert detect_encoding(source) == "koi8_r"  # not "koi8r", which no codec answers to
    frame, _, _ = read_all({"path": str(source)})
    assert values(frame, ["id", "name", "city"]) == rows


# -- 2. BOM and the encoding override -------------------------------------------------------


def test_utf8_bom_is_not_part_of_the_first_column_name(tmp_path: Path, write_project) -> None:
    source = tmp_path / "people.csv"
    data = people(30)
    write_csv(source, HEADER, data, "utf-8-sig")
    assert source.read_bytes().startswith(b"\xef\xbb\xbf")
    assert detect_encoding(source) == "utf-8"

    config = {"path": str(source), "primary_key": ["id"]}
    assert FilesSource().header(config)[0] == "id"
    assert FilesSource().check(LOG, config).status == Status.SUCCEEDED
    frame, _, _ = read_all(config)
    assert frame.columns[0] == "id"
    assert values(frame, HEADER) == data

    target, hub_db = tmp_path / "hr.db", tmp_path / "hub.db"
    result = Sync(
        Project(write_project(pipeline_toml(source, target, hub_db, primary_key="id"))), "load"
    ).run()
    assert result.status == "succeeded", result.error
    with closing(sqlite3.connect(target)) as conn:
        names = [row[1] for row in conn.execute("PRAGMA table_info(people)")]
    assert names == HEADER
    assert table_rows(target, HEADER) == data


def test_configured_encoding_overrides_detection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write_project
) -> None:
    source, target, hub_db = tmp_path / "people.csv", tmp_path / "hr.db", tmp_path / "hub.db"
    data = people(20)
    write_csv(source, CN_HEADER, data, "gb18030")

    def wrong_guess(path: Path) -> str:
        return "utf-8"

    monkeypatch.setattr(files_source, "detect_encoding", wrong_guess)
    with pytest.raises(Exception, match=r"(?i)utf-?8"):
        read_all({"path": str(source)})  # the (wrong) detection is what auto uses

    config = {"path": str(source), "encoding": "gb18030", "primary_key": ["工号"]}
    assert FilesSource().check(LOG, config).status == Status.SUCCEEDED
    frame, rejections, _ = read_all(config)
    assert rejections == []
    assert values(frame, CN_HEADER) == data

    toml = pipeline_toml(source, target, hub_db, primary_key="工号", encoding="gb18030")
    result = Sync(Project(write_project(toml)), "load").run()
    assert result.status == "succeeded", result.error
    assert table_rows(target, CN_HEADER) == sorted(data)


# -- 3. Excel --------------------------------------------------------------------------------


def write_xlsx(path: Path) -> list[tuple[str, str, str]]:
    """A sheet with text ID numbers and every way a date reaches a cell; returns (id, id_number, date)."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "员工"
    sheet.append(["id", "name", "id_number", "bank_account", "hire_date"])
    cells: list[tuple[str, str, Any, str]] = [
        ("E1", "0012345", 45352, "2024-03-01"),  # serial day number (int)
        ("E2", "11010519900307002X", 45352.0, "2024-03-01"),  # serial as float
        ("E3", "110105199003070033", datetime(2024, 3, 1), "2024-03-01"),
        ("E4", "310104198812120026", datetime(2023, 12, 31, 9, 30), "2023-12-31"),
        ("E5", "440305200001010018", datetime(2024, 2, 29, 17, 5, 30, 250000), "2024-02-29"),  # with ms
        ("E6", "330106197001010019", date(2020, 1, 2), "2020-01-02"),
        ("E7", "510107199912310017", "2024/3/1", "2024-03-01"),
        ("E8", "420111200502280012", "45352", "2024-03-01"),  # serial typed as text
    ]
    for i, (key, number, hired, _) in enumerate(cells):
        sheet.append([key, f"员工{i}", number, f"62220{i:014d}", hired])
        sheet.cell(row=sheet.max_row, column=3).number_format = "@"
    sheet.append([None, None, None, None, None])  # a blank row (line 10)
    sheet.append(["E9", "下周", "110105199003070033", "6222000000000000099", "下周一"])  # line 11
    workbook.save(path)
    return [(key, number, iso) for key, number, _, iso in cells]


def test_xlsx_text_ids_and_dates_arrive_as_iso_dates(tmp_path: Path, write_project) -> None:
    source, target, hub_db = tmp_path / "people.xlsx", tmp_path / "hr.db", tmp_path / "hub.db"
    expected = write_xlsx(source)
    config = {"path": str(source), "primary_key": ["id"], "columns": {"hire_date": "date"}}

    frame, rejections, _ = read_all(config, chunk_size=3)
    assert [tuple(r) for r in values(frame, ["id", "id_number", "hire_date"])] == expected
    assert frame[POSITION].tolist() == [f"people.xlsx:员工!{n}" for n in range(2, 10)]
    assert [(r.position, r.reason) for r in rejections] == [("people.xlsx:员工!11", "hire_date: not a date")]

    project = Project(
        write_project(pipeline_toml(source, target, hub_db, primary_key="id", columns={"hire_date": "date"}))
    )
    result = Sync(project, "load").run()
    assert result.status == "partial"
    assert (result.counts.inserted, result.counts.rejected) == (8, 1)
    assert [tuple(r) for r in table_rows(target, ["id", "id_number", "hire_date"])] == expected
    assert sqlite_types(target, "id_number") == {"text"}
    assert dead_letters(hub_db) == {"people.xlsx:员工!11": "hire_date: not a date"}


# -- 4. rejections and their line numbers -----------------------------------------------------


def test_bad_rows_become_dead_letters_with_their_line_numbers(tmp_path: Path) -> None:
    source, target, hub_db = tmp_path / "people.csv", tmp_path / "hr.db", tmp_path / "hub.db"
    data = people(300)
    lines = [",".join(HEADER)] + [",".join(f'"{v}"' if "," in v else v for v in row) for row in data]
    good = {i: row for i, row in enumerate(data, start=2)}  # physical line -> row

    def spoil(line: int, text: str) -> None:
        lines[line - 1] = text
        del good[line]

    spoil(7, lines[6] + ",surplus")  # an extra column
    spoil(10, ",".join(data[8][:5]))  # missing columns
    spoil(61, lines[60].replace(data[59][6], "2024-13-45"))
    spoil(128, lines[127].replace(data[126][6], "下周一"))
    spoil(175, lines[174].replace(f",{data[173][1]},", ",,"))  # the required name is empty
    spoil(263, ",".join(data[261][:3]))  # missing columns, in a later chunk
    lines.insert(140, "")  # a blank line: every line after it moves down one
    good = {(n + 1 if n > 140 else n): row for n, row in good.items()}
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    expected = {
        "people.csv:7": "department",
        "people.csv:10": "salary, hire_date, department",
        "people.csv:61": "hire_date: not a date",
        "people.csv:128": "hire_date: not a date",
        "people.csv:176": "name: required value is missing",
        "people.csv:264": "phone, bank_account, salary, hire_date, department",
    }
    # The same six lines at the connector level, across chunks of 50.
    config = {
        "path": str(source),
        "primary_key": ["id"],
        "columns": {"hire_date": "date"},
        "required": ["name"],
    }
    frame, rejections, _ = read_all(config, chunk_size=50)
    assert sorted(r.position for r in rejections) == sorted(expected)
    assert frame[POSITION].tolist() == [f"people.csv:{n}" for n in good]
    assert values(frame, HEADER) == list(good.values())

    config_path = tmp_path / "hub.toml"
    config_path.write_text(
        files_to_sql_toml(
            source,
            f"sqlite:///{target}",
            hub_db=f"sqlite:///{hub_db}",
            columns={"hire_date": "date"},
            required=["name"],
            chunk_size=50,
            encrypt_pii=False,
        ),
        encoding="utf-8",
    )
    done = run_cli(["sync", "load", "--json"], config_path)
    assert done.returncode == 3, done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "partial"
    assert report["counts"]["rejected"] == 6
    assert report["counts"]["inserted"] == 294

    letters = dead_letters(hub_db)
    assert sorted(letters) == sorted(expected)
    for position, names in expected.items():
        assert names in letters[position], (position, letters[position])
    assert "expected 8 columns, got 9" in letters["people.csv:7"]
    assert "expected 8 columns, got 5" in letters["people.csv:10"]
    assert table_rows(target, HEADER) == sorted(good.values())
    for column in ("id_number", "bank_account"):
        assert sqlite_types(target, column) == {"text"}


def test_early_malformed_row_does_not_break_check_or_discover(tmp_path: Path) -> None:
    source = tmp_path / "people.csv"
    source.write_text("id,name\n1,a,b\n2,b\n", encoding="utf-8")
    config = {"path": str(source), "primary_key": ["id"]}
    assert FilesSource().check(LOG, config).status == Status.SUCCEEDED
    assert set(FilesSource().discover(LOG, config).streams[0].json_schema["properties"]) == {"id", "name"}
    frame, rejections, _ = read_all(config)
    assert values(frame, ["id", "name"]) == [["2", "b"]]
    assert [r.position for r in rejections] == ["people.csv:2"]


# -- 5. date forms ---------------------------------------------------------------------------

DATE_FORMS = [
    "2024-03-01",
    "2024/3/1",
    "2024年3月1日",
    "20240301",
    "45352",
    "2024/03/01",
    "2024-03-01 08:00:00",
]


def test_date_forms_all_mean_the_same_day(tmp_path: Path) -> None:
    parsed, bad = parse_dates(pd.Series([*DATE_FORMS, None, ""], dtype="string"))
    assert parsed.tolist()[: len(DATE_FORMS)] == ["2024-03-01"] * len(DATE_FORMS)
    assert parsed.isna().tolist()[len(DATE_FORMS) :] == [True, True]
    assert not bad.any()

    _, bad = parse_dates(pd.Series(["2024-13-45", "下周一", "2024-02-30", "soon"], dtype="string"))
    assert bad.all()

    source = tmp_path / "dates.csv"
    write_csv(source, ["id", "hired"], [[str(i), form] for i, form in enumerate(DATE_FORMS)], "utf-8")
    frame, rejections, _ = read_all({"path": str(source), "columns": {"hired": "date"}})
    assert rejections == []
    assert frame["hired"].tolist() == ["2024-03-01"] * len(DATE_FORMS)


# -- 6. the Airbyte protocol -----------------------------------------------------------------


def test_airbyte_spec_check_discover(tmp_path: Path) -> None:
    source = tmp_path / "people.csv"
    write_csv(source, HEADER, people(10), "utf-8")
    files = FilesSource()
    config = {
        "path": str(source),
        "primary_key": ["id"],
        "columns": {"hire_date": "date", "salary": "integer"},
    }

    spec = files.spec(LOG)
    assert spec.connectionSpecification["required"] == ["path"]
    assert set(spec.connectionSpecification["properties"]) >= {"path", "encoding", "columns", "required"}

    ok = files.check(LOG, config)
    assert ok.status == Status.SUCCEEDED and ok.message == "people.csv: 8 columns"
    missing_file = files.check(LOG, {**config, "path": str(tmp_path / "nope.csv")})
    assert missing_file.status == Status.FAILED and "file not found" in (missing_file.message or "")
    missing_column = files.check(LOG, {**config, "columns": {"start_date": "date"}, "required": ["mobile"]})
    assert missing_column.status == Status.FAILED
    assert missing_column.message == "people.csv has no column(s): mobile, start_date"

    (stream,) = files.discover(LOG, config).streams
    assert stream.name == "people"
    assert stream.source_defined_primary_key == [["id"]]
    assert SyncMode.incremental in stream.supported_sync_modes
    props = stream.json_schema["properties"]
    assert list(props) == HEADER
    assert props["hire_date"]["format"] == "date"
    assert props["salary"]["x-hub-type"] == "integer"
    assert props["id_number"] == {"type": ["null", "string"]}


def test_airbyte_read_yields_records_and_stream_states(tmp_path: Path) -> None:
    source = tmp_path / "people.csv"
    data = people(25)
    data[3][6] = "下周一"
    write_csv(source, HEADER, data, "utf-8")
    config = {"path": str(source), "primary_key": ["id"], "columns": {"hire_date": "date"}}

    messages = list(FilesSource().read(LOG, config, configured(config), None))
    records = [m.record for m in messages if m.type == Type.RECORD]
    states = [m.state for m in messages if m.type == Type.STATE]
    logs = [m.log for m in messages if m.type == Type.LOG]
    assert all(r is not None and r.stream == "people" for r in records)
    assert [[r.data[c] for c in HEADER] for r in records if r] == [
        row for i, row in enumerate(data) if i != 3
    ]
    assert all(POSITION not in r.data for r in records if r)
    assert len(logs) == 1 and logs[0] is not None and "people.csv:5" in logs[0].message
    assert states and all(s is not None and s.type == AirbyteStateType.STREAM for s in states)
    last = states[-1]
    assert last is not None and last.stream is not None
    assert last.stream.stream_descriptor.name == "people"
    blob = last.stream.stream_state
    assert blob is not None
    assert blob.sha256 == file_digest(source) and blob.rows_done == 25 and blob.finished is True
    assert messages[-1].type == Type.STATE


def test_airbyte_check_fails_cleanly_on_an_unreadable_file(tmp_path: Path) -> None:
    source = tmp_path / "people.csv"
    source.write_bytes(b"")
    status = FilesSource().check(LOG, {"path": str(source)})
    assert status.status == Status.FAILED and (status.message or "").startswith("cannot read people.csv")


# -- 7. resume -------------------------------------------------------------------------------


def test_resume_from_an_intermediate_state_reads_only_what_follows(tmp_path: Path) -> None:
    source = tmp_path / "people.csv"
    data = people(230)
    lines = [",".join(HEADER)] + [",".join(f'"{v}"' if "," in v else v for v in row) for row in data]
    lines[40] = "broken,row"  # line 41: rejected, still counted as done
    lines.insert(100, "")  # a blank line
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = {"path": str(source), "primary_key": ["id"], "columns": {"hire_date": "date"}}

    full, rejections, states = read_all(config, chunk_size=50)
    assert [r.position for r in rejections] == ["people.csv:41"]
    assert len(full) == 229 and states[-1]["finished"] is True
    positions = full[POSITION].tolist()
    for state in states[:-1]:
        assert set(state) == {"sha256", "rows_done"}
        tail, more, _ = read_all(config, state=state, chunk_size=50)
        after = [int(p.rsplit(":", 1)[1]) > state["rows_done"] + 1 for p in positions]
        assert tail[POSITION].tolist() == [p for p, a in zip(positions, after, strict=True) if a]
        assert values(tail, HEADER) == values(full.loc[after], HEADER)
        assert more == (rejections if state["rows_done"] < 40 else [])

    # Through the Airbyte protocol: the state message from a batch resumes after it.
    middle = states[2]
    messages = list(
        FilesSource().read(LOG, config, configured(config), [stream_state_message("people", middle).state])
    )
    ids = [m.record.data["id"] for m in messages if m.type == Type.RECORD and m.record]
    assert ids == full["id"].tolist()[-len(ids) :] and len(ids) == len(full) - 149

    # A finished pass over this very file reads nothing more (incremental).
    nothing, _, last = read_all(config, state=states[-1])
    assert nothing.empty and last == []


def test_a_replaced_file_is_read_from_the_top(tmp_path: Path) -> None:
    source = tmp_path / "people.csv"
    write_csv(source, HEADER, people(120), "utf-8")
    config = {"path": str(source), "primary_key": ["id"]}
    _, _, states = read_all(config, chunk_size=50)
    stale = states[1]
    assert stale["rows_done"] == 100

    replaced = people(60, seed=99)
    write_csv(source, HEADER, replaced, "utf-8")
    assert file_digest(source) != stale["sha256"]
    frame, _, new_states = read_all(config, state=stale, chunk_size=50)
    assert values(frame, HEADER) == replaced
    assert frame[POSITION].iloc[0] == "people.csv:2"
    assert new_states[-1] == {"sha256": file_digest(source), "rows_done": 60, "finished": True}

    # The same for a finished state: a new file is a new pass.
    frame, _, _ = read_all(config, state={**stale, "finished": True})
    assert len(frame) == 60


def test_xlsx_resume_skips_the_rows_done(tmp_path: Path) -> None:
    source = tmp_path / "people.xlsx"
    expected = write_xlsx(source)
    config = {"path": str(source), "columns": {"hire_date": "date"}}
    _, _, states = read_all(config, chunk_size=3)
    tail, rejections, _ = read_all(config, state=states[0], chunk_size=3)
    assert tail["id"].tolist() == [key for key, _, _ in expected[3:]]
    assert [r.position for r in rejections] == ["people.xlsx:员工!11"]


def test_json_and_json_lines_files(tmp_path: Path) -> None:
    """Assessment platforms export JSON: arrays and JSON lines, nested values kept as JSON text."""
    records = [
        {"candidate": "C1", "email": "a@example.com", "scores": {"logic": 81, "coding": 90}, "passed": True},
        {"candidate": "C2", "email": "b@example.com", "scores": {"logic": 55}, "passed": False, "extra": "x"},
    ]
    array = tmp_path / "results.json"
    array.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    lines = tmp_path / "results.jsonl"
    lines.write_text(
        json.dumps(records[0]) + "\n\n{not json\n" + json.dumps(records[1]) + "\n" + "[1, 2]\n",
        encoding="utf-8",
    )
    source = FilesSource()
    log = logging.getLogger("test")
    assert source.header({"path": str(array)}) == ["candidate", "email", "scores", "passed", "extra"]

    (batch, *_rest) = [
        b for b in source.read_batches(log, {"path": str(array)}, "results", None) if len(b.frame)
    ]
    rows = batch.frame.to_dict("records")
    assert rows[0]["scores"] == '{"coding":90,"logic":81}' and rows[0]["passed"] == "true"
    assert rows[1]["_hub_position"] == "results.json#2"

    batches = list(source.read_batches(log, {"path": str(lines)}, "results", None))
    good = pd.concat([b.frame for b in batches if len(b.frame)])
    bad = [r for b in batches for r in b.rejections]
    assert list(good["candidate"]) == ["C1", "C2"]
    assert [(r.position, r.reason.split(":")[0]) for r in bad] == [
        ("results.jsonl:3", "malformed JSON"),
        ("results.jsonl:5", "not a JSON object"),
    ]
    first, *_ = source.read_batches(log, {"path": str(lines)}, "results", None, {"chunk_size": 2})
    assert list(first.frame["candidate"]) == ["C1"] and first.state["rows_done"] == 2
    resumed = list(source.read_batches(log, {"path": str(lines)}, "results", first.state, {"chunk_size": 2}))
    assert [c for b in resumed if len(b.frame) for c in b.frame["candidate"]] == ["C2"]
    assert [r.position for b in resumed for r in b.rejections] == ["results.jsonl:5"]
