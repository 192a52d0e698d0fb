"""Payroll template export: formula injection neutralised, numbers kept, 0600 files, sealing."""

from __future__ import annotations

import csv
import io
import logging
import os
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from hub.cli import app
from hub.config import load_settings
from hub.crypto import DecryptionError, Keyring
from hub.errors import ConfigurationError
from hub.payroll_export import (
    PayrollExportError,
    decrypt_export_file,
    neutralise,
    open_export,
    payroll_export_config,
    render_export,
    write_export,
)

BANK_ACCOUNT = "6222020200112233445"
COLUMNS = [
    {"header": "工号", "field": "employee_number", "type": "text"},
    {"header": "姓名", "field": "name"},
    {"header": "银行卡号", "field": "bank.account", "type": "text", "required": True},
    {"header": "基本工资", "field": "base_salary", "type": "number"},
    {"header": "调整", "field": "adjustment"},
    {"header": "备注", "field": "note"},
    {"header": "入职日期", "field": "start_date", "type": "date"},
]
INJECTIONS = ["=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\t=1+1", "\r=1+1", "＝1+1"]


def config(**extra: Any) -> Any:
    return payroll_export_config({"columns": COLUMNS, **extra})


def records() -> list[dict[str, Any]]:
    rows = [
        {
            "employee_number": "E001",
            "name": "张三",
            "bank": {"account": BANK_ACCOUNT},
            "base_salary": 30000,
            "adjustment": -200,
            "note": "普通备注",
            "start_date": "2025-03-01",
        },
        {
            "employee_number": "00042",  # leading zeros survive: text
            "name": "李四",
            "bank": {"account": BANK_ACCOUNT},
            "base_salary": "25,000.50",  # numeric text in a number column becomes a number
            "adjustment": Decimal("-150.25"),
            "note": None,
            "start_date": date(2025, 4, 1),
        },
    ]
    for i, payload in enumerate(INJECTIONS):
        rows.append(
            {
                "employee_number": f"X{i}",
                "name": payload,
                "bank": {"account": BANK_ACCOUNT},
                "base_salary": 10000,
                "adjustment": -1,
                "note": payload,
                "start_date": "2025/5/1",
            }
        )
    return rows


@pytest.mark.parametrize(
    ("text", "safe"),
    [
        ("=1+1", "'=1+1"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("＝1+1", "'＝1+1"),
        ("张三", "张三"),
        ("1+1", "1+1"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_neutralise(text: str, safe: str) -> None:
    assert neutralise(text) == safe


def test_csv_neutralises_text_and_keeps_numbers() -> None:
    data = render_export(records(), config(), fmt="csv")
    assert data.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads the UTF-8 Chinese headers
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows[0] == ["工号", "姓名", "银行卡号", "基本工资", "调整", "备注", "入职日期"]
    assert rows[1] == ["E001", "张三", BANK_ACCOUNT, "30000", "-200", "普通备注", "2025-03-01"]
    assert rows[2] == ["00042", "李四", BANK_ACCOUNT, "25000.50", "-150.25", "", "2025-04-01"]
    for row, payload in zip(rows[3:], INJECTIONS, strict=True):
        assert row[1] == row[5] == "'" + payload
        assert row[4] == "-1"  # a negative number is a number, not neutralised text
        assert row[6] == "2025-05-01"
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), cell
            assert not cell.startswith("-") or cell.lstrip("-").replace(".", "").isdigit(), cell


def test_xlsx_read_back_with_openpyxl() -> None:
    data = render_export(records(), config(sheet_name="工资模板"), fmt="xlsx")
    workbook = load_workbook(io.BytesIO(data))
    sheet = workbook["工资模板"]
    rows = list(sheet.iter_rows())
    assert [c.value for c in rows[0]] == ["工号", "姓名", "银行卡号", "基本工资", "调整", "备注", "入职日期"]
    first = rows[1]
    assert first[0].value == "E001" and first[0].data_type == "s"
    assert first[2].value == BANK_ACCOUNT and first[2].data_type == "s" and first[2].number_format == "@"
    assert first[3].value == 30000 and first[3].data_type == "n"
    assert first[4].value == -200 and first[4].data_type == "n"  # negative adjustment stays numeric
    assert first[6].value.date() == date(2025, 3, 1) and first[6].is_date
    second = rows[2]
    assert second[0].value == "00042" and second[3].value == pytest.approx(25000.5)
    assert second[4].value == pytest.approx(-150.25) and second[4].data_type == "n"
    assert second[5].value is None
    for row, payload in zip(rows[3:], INJECTIONS, strict=True):
        for cell in (row[1], row[5]):
            assert cell.value == ("'" + payload).replace("\r", "\n")  # XML stores CR as LF
            assert cell.data_type == "s"  # never "f": no formula is stored
        assert row[4].value == -1 and row[4].data_type == "n"
    for row in sheet.iter_rows():
        assert all(c.data_type != "f" for c in row)


def test_the_raw_xlsx_holds_no_formula() -> None:
    import zipfile

    data = render_export(records(), config(), fmt="xlsx")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        sheet_xml = archive.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet_xml and "<f " not in sheet_xml


def test_bad_values_are_refused_without_showing_them() -> None:
    bad = records()[:1]
    bad[0]["base_salary"] = "三万"
    with pytest.raises(PayrollExportError) as info:
        render_export(bad, config())
    assert str(info.value) == "row 1, column '基本工资' (base_salary): is not a number"
    missing = records()[:2]
    missing[1]["bank"] = {"account": " "}
    with pytest.raises(PayrollExportError) as info:
        render_export(missing, config())
    assert str(info.value) == "row 2, column '银行卡号' (bank.account): required value is empty"
    control = records()[:1]
    control[0]["note"] = "a\x07b"
    with pytest.raises(PayrollExportError, match="control characters"):
        render_export(control, config())
    with pytest.raises(PayrollExportError, match="finite"):
        render_export([{**records()[0], "adjustment": float("nan")}], config())


def test_export_file_is_0600_and_nothing_personal_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    target = tmp_path / "out" / "payroll.xlsx"
    target.parent.mkdir()
    target.write_bytes(b"old")
    target.chmod(0o644)
    with caplog.at_level(logging.DEBUG):
        result = write_export(records(), config(), target)
    assert result.rows == len(records()) and result.format == "xlsx" and not result.encrypted
    assert (target.stat().st_mode & 0o777) == 0o600
    assert load_workbook(target)["工资模板"]["C2"].value == BANK_ACCOUNT
    assert [p.name for p in target.parent.iterdir()] == ["payroll.xlsx"]  # no temp file left
    logged = caplog.text
    assert BANK_ACCOUNT not in logged and "张三" not in logged and "30000" not in logged
    assert "9 rows" in logged


def test_encrypted_export_round_trip(tmp_path: Path) -> None:
    keyring = Keyring(os.urandom(32))
    target = tmp_path / "payroll.csv.sealed"
    result = write_export(records(), config(), target, fmt="csv", keyring=keyring, encrypt=True)
    assert result.encrypted and (target.stat().st_mode & 0o777) == 0o600
    blob = target.read_bytes()
    assert BANK_ACCOUNT.encode() not in blob and "张三".encode() not in blob
    fmt, plain = open_export(keyring, blob)
    assert fmt == "csv" and plain == render_export(records(), config(), fmt="csv")
    opened = tmp_path / "payroll.csv"
    assert decrypt_export_file(keyring, target, opened) == "csv"
    assert opened.read_bytes() == plain and (opened.stat().st_mode & 0o777) == 0o600
    with pytest.raises(DecryptionError):
        open_export(Keyring(os.urandom(32)), blob)
    tampered = blob.replace(b'"format": "csv"', b'"format": "xlsx"')
    with pytest.raises(DecryptionError):
        open_export(keyring, tampered)
    with pytest.raises(PayrollExportError, match="needs hub's keyring"):
        write_export(records(), config(encrypt=True), tmp_path / "x.sealed")


@pytest.mark.parametrize(
    ("table", "path", "fragment"),
    [
        ({}, "payroll_export.columns", "required"),
        ({"columns": [{"header": "工号"}]}, "payroll_export.columns[0].field", "required"),
        ({"columns": [{"field": "x"}]}, "payroll_export.columns[0].header", "required"),
        (
            {"columns": [{"header": "a", "field": "x", "type": "money"}]},
            "payroll_export.columns[0].type",
            "one of",
        ),
        (
            {"columns": [{"header": "a", "field": "x"}, {"header": "a", "field": "y"}]},
            "payroll_export.columns[1].header",
            "duplicate",
        ),
        (
            {"columns": [{"header": "a", "field": "x", "width": 3}]},
            "payroll_export.columns[0].width",
            "unknown key",
        ),
        ({"columns": [{"header": "a", "field": "x"}], "format": "ods"}, "payroll_export.format", "one of"),
        (
            {"columns": [{"header": "a", "field": "x"}], "sheet_name": "a/b"},
            "payroll_export.sheet_name",
            "Excel",
        ),
        (
            {"columns": [{"header": "a", "field": "x"}], "csv_encoding": "latin-1"},
            "payroll_export.csv_encoding",
            "one of",
        ),
        (
            {"columns": [{"header": "a", "field": "x"}], "encrypt": "yes"},
            "payroll_export.encrypt",
            "true or false",
        ),
    ],
)
def test_config_problems_name_the_key(table: dict[str, Any], path: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        payroll_export_config(table)
    problems = {p.path: p.message for p in info.value.problems}
    assert path in problems, problems
    assert fragment in problems[path]


def test_hub_toml_and_cli(write_project: Any, tmp_path: Path) -> None:
    project = write_project(
        """
        [payroll_export]
        format = "xlsx"
        columns = [
          { header = "工号", field = "employee_number", type = "text" },
          { header = "银行卡号", field = "bank.account", type = "text", required = true },
          { header = "调整", field = "adjustment" },
          { header = "备注", field = "note" },
        ]
        """
    )
    settings = load_settings(project, {})
    assert settings.payroll_export is not None
    assert [c.header for c in settings.payroll_export.columns] == ["工号", "银行卡号", "调整", "备注"]

    source = tmp_path / "hires.json"
    source.write_bytes(orjson.dumps(records(), default=str))
    runner = CliRunner()
    target = tmp_path / "payroll.xlsx"
    result = runner.invoke(
        app, ["--config", str(project), "payroll", "export", str(source), "--out", str(target)]
    )
    assert result.exit_code == 0, result.output
    assert BANK_ACCOUNT not in result.output and "张三" not in result.output
    assert (target.stat().st_mode & 0o777) == 0o600
    sheet = load_workbook(target).active
    assert sheet is not None and sheet["D4"].value == "'=1+1" and sheet["C2"].value == -200

    sealed = tmp_path / "payroll.xlsx.sealed"
    result = runner.invoke(
        app, ["--config", str(project), "payroll", "export", str(source), "--out", str(sealed), "--encrypt"]
    )
    assert result.exit_code == 0, result.output and "sealed" in result.output
    assert BANK_ACCOUNT.encode() not in sealed.read_bytes()
    opened = tmp_path / "opened.xlsx"
    result = runner.invoke(
        app, ["--config", str(project), "payroll", "decrypt", str(sealed), "--out", str(opened)]
    )
    assert result.exit_code == 0, result.output
    assert load_workbook(opened).active["B2"].value == BANK_ACCOUNT

    bad = tmp_path / "bad.json"
    bad.write_bytes(orjson.dumps([{"employee_number": "E1", "bank": {"account": ""}}]))
    result = runner.invoke(
        app, ["--config", str(project), "payroll", "export", str(bad), "--out", str(tmp_path / "b.xlsx")]
    )
    assert result.exit_code == 1 and "required value is empty" in result.output
