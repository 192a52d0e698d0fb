"""Payroll template export: new hires as the CSV or Excel file a payroll system imports.

Columns come from ``[payroll_export]`` in hub.toml::

    [payroll_export]
    format = "xlsx"
    columns = [
      { header = "工号", field = "employee_number" },
      { header = "银行卡号", field = "bank_account", type = "text", required = true },
      { header = "基本工资", field = "base_salary", type = "number" },
    ]

The file holds personal data on purpose (payroll needs the bank account), so it is written
owner-only (0600) and atomically, optionally sealed with hub's keyring (``encrypt = true``,
opened with :func:`open_export`), and nothing about its values is logged or put in an error.

Spreadsheet formula injection (OWASP "CSV Injection") is neutralised: a text cell starting with
``=``, ``+``, ``-``, ``@``, tab or carriage return (or their full-width forms) gets a leading
``'``, and xlsx cells are written with the string type and text format. Only text is touched:
a number stays a number, so a negative salary adjustment of -200 is still -200.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import re
import tempfile
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hub.errors import ConfigProblem, ConfigurationError, HubError

if TYPE_CHECKING:
    from hub.crypto import Keyring

log = logging.getLogger(__name__)

FORMATS = ("xlsx", "csv")
COLUMN_TYPES = ("auto", "text", "number", "date")
CSV_ENCODINGS = ("utf-8-sig", "utf-8", "gb18030")
PAYROLL_EXPORT_KEYS = frozenset({"columns", "format", "sheet_name", "csv_encoding", "encrypt"})
COLUMN_KEYS = frozenset({"header", "field", "type", "required"})
#: OWASP's formula triggers, plus the full-width forms a Chinese IME types.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
SEALED_MAGIC = b"HUB-SEALED-EXPORT\n"
SEALED_DATA_CLASS = "financial"
_FIELD_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
#: Characters openpyxl (and the xlsx format) cannot store.
_ILLEGAL_XLSX_RE = re.compile(r"[\000-\010\013\014\016-\037]")
_SLASH_DATE_RE = re.compile(r"^(\d{4})[/.](\d{1,2})[/.](\d{1,2})$")

Cell = str | int | float | Decimal | date | bool | None


class PayrollExportError(HubError):
    """A record cannot be exported; the message names the row and column, never the value."""


@dataclass(frozen=True)
class ExportColumn:
    header: str
    field: str
    #: auto (numbers stay numbers, text is text), text, number, or date
    type: str = "auto"
    #: refuse the export when a record has no value here (a payroll file without a bank account)
    required: bool = False


@dataclass(frozen=True)
class PayrollExportConfig:
    """The validated ``[payroll_export]`` table."""

    columns: tuple[ExportColumn, ...]
    format: str = "xlsx"
    sheet_name: str = "工资模板"
    csv_encoding: str = "utf-8-sig"
    encrypt: bool = False


def payroll_export_config_from(table: Any, problems: list[ConfigProblem]) -> PayrollExportConfig | None:
    """The ``[payroll_export]`` table, or None when absent; problems named by their TOML key."""
    if table is None:
        return None
    if not isinstance(table, Mapping):
        problems.append(ConfigProblem("payroll_export", "must be a table"))
        return None
    before = len(problems)
    for key in sorted(set(table) - PAYROLL_EXPORT_KEYS):
        problems.append(
            ConfigProblem(
                f"payroll_export.{key}", f"unknown key (known: {', '.join(sorted(PAYROLL_EXPORT_KEYS))})"
            )
        )
    fmt = table.get("format", "xlsx")
    if fmt not in FORMATS:
        problems.append(ConfigProblem("payroll_export.format", f"must be one of {', '.join(FORMATS)}"))
    sheet = table.get("sheet_name", "工资模板")
    if not isinstance(sheet, str) or not 0 < len(sheet) <= 31 or re.search(r"[\[\]:*?/\\]", sheet):
        problems.append(
            ConfigProblem(
                "payroll_export.sheet_name", "must be 1-31 characters without [ ] : * ? / \\ (Excel's rule)"
            )
        )
    encoding = table.get("csv_encoding", "utf-8-sig")
    if encoding not in CSV_ENCODINGS:
        problems.append(
            ConfigProblem("payroll_export.csv_encoding", f"must be one of {', '.join(CSV_ENCODINGS)}")
        )
    encrypt = table.get("encrypt", False)
    if not isinstance(encrypt, bool):
        problems.append(ConfigProblem("payroll_export.encrypt", "must be true or false"))
    raw_columns = table.get("columns")
    columns: list[ExportColumn] = []
    if not isinstance(raw_columns, list) or not raw_columns:
        problems.append(
            ConfigProblem(
                "payroll_export.columns", 'required: a list of { header = "工号", field = "employee_number" }'
            )
        )
        raw_columns = []
    headers: set[str] = set()
    for i, item in enumerate(raw_columns):
        where = f"payroll_export.columns[{i}]"
        if not isinstance(item, Mapping):
            problems.append(ConfigProblem(where, "must be a table with header and field"))
            continue
        for key in sorted(set(item) - COLUMN_KEYS):
            problems.append(
                ConfigProblem(f"{where}.{key}", f"unknown key (known: {', '.join(sorted(COLUMN_KEYS))})")
            )
        header, field_name = item.get("header"), item.get("field")
        if not isinstance(header, str) or not header.strip():
            problems.append(ConfigProblem(f"{where}.header", "required: the column's header text"))
        elif header in headers:
            problems.append(ConfigProblem(f"{where}.header", f"duplicate header {header!r}"))
        else:
            headers.add(header)
        if not isinstance(field_name, str) or not _FIELD_RE.match(field_name):
            problems.append(
                ConfigProblem(f"{where}.field", "required: a record field name (dotted paths allowed)")
            )
        kind = item.get("type", "auto")
        if kind not in COLUMN_TYPES:
            problems.append(ConfigProblem(f"{where}.type", f"must be one of {', '.join(COLUMN_TYPES)}"))
        required = item.get("required", False)
        if not isinstance(required, bool):
            problems.append(ConfigProblem(f"{where}.required", "must be true or false"))
        if isinstance(header, str) and isinstance(field_name, str):
            columns.append(ExportColumn(header.strip(), field_name, str(kind), bool(required)))
    if len(problems) > before:
        return None
    return PayrollExportConfig(tuple(columns), str(fmt), str(sheet), str(encoding), bool(encrypt))


def payroll_export_config(table: Mapping[str, Any]) -> PayrollExportConfig:
    """Parse a ``[payroll_export]`` table, raising :class:`ConfigurationError` on any problem."""
    problems: list[ConfigProblem] = []
    config = payroll_export_config_from(table, problems)
    if problems or config is None:
        raise ConfigurationError(problems or [ConfigProblem("payroll_export", "missing")], "[payroll_export]")
    return config


# -- cells --------------------------------------------------------------------------------------


def neutralise(text: str) -> str:
    """Prefix a formula trigger with ``'`` (OWASP CSV injection); other text is unchanged."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def _lookup(record: Mapping[str, Any], path: str) -> Any:
    if path in record:
        return record[path]
    current: Any = record
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current


def _as_text(value: Any) -> str:
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return str(value)


def _as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text)
        except ValueError:
            match = _SLASH_DATE_RE.match(text)
            if match:
                try:
                    return date(*(int(g) for g in match.groups()))
                except ValueError:
                    return None
    return None


def _as_number(value: Any) -> int | float | Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        return value if not isinstance(value, Decimal) or value.is_finite() else None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = Decimal(value.strip().replace(",", "").replace("，", ""))
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def cell_value(value: Any, column: ExportColumn, row: int) -> Cell:
    """One typed, neutralised cell. Errors name the row and header only."""

    def fail(why: str) -> PayrollExportError:
        return PayrollExportError(f"row {row}, column {column.header!r} ({column.field}): {why}")

    if value is None or (isinstance(value, str) and not value.strip()):
        if column.required:
            raise fail("required value is empty")
        return None
    kind = column.type
    if kind == "number":
        number = _as_number(value)
        if number is None:
            raise fail("is not a number")
        return number
    if kind == "date":
        day = _as_date(value)
        if day is None:
            raise fail("is not a date (YYYY-MM-DD)")
        return day
    if kind == "auto":
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float | Decimal):
            number = _as_number(value)
            if number is None:
                raise fail("is not a finite number")
            return number
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        if not isinstance(value, str | Enum):
            raise fail(f"cannot export a value of type {type(value).__name__}")
    text = _as_text(value)
    if _ILLEGAL_XLSX_RE.search(text):
        raise fail("contains control characters")
    return neutralise(text)


def export_rows(records: Iterable[Mapping[str, Any]], config: PayrollExportConfig) -> list[list[Cell]]:
    """Every record as a row of typed cells in the configured column order."""
    return [
        [cell_value(_lookup(record, column.field), column, row) for column in config.columns]
        for row, record in enumerate(records, start=1)
    ]


def _csv_text(cell: Cell) -> str:
    if cell is None:
        return ""
    if isinstance(cell, str):
        return cell
    return _as_text(cell)


def to_csv(headers: list[str], rows: list[list[Cell]], encoding: str = "utf-8-sig") -> bytes:
    """CSV (RFC 4180 quoting, CRLF lines); ``utf-8-sig`` so Excel reads UTF-8 Chinese correctly."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([neutralise(h) for h in headers])
    for row in rows:
        writer.writerow([_csv_text(cell) for cell in row])
    return buffer.getvalue().encode(encoding)


def to_xlsx(headers: list[str], rows: list[list[Cell]], sheet_name: str = "工资模板") -> bytes:
    """An xlsx workbook: text as string cells in text format (never formulas), numbers as numbers."""
    from openpyxl import Workbook
    from openpyxl.cell.cell import TYPE_STRING
    from openpyxl.styles import Font

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = sheet_name
    bold = Font(bold=True)
    for col, header in enumerate(headers, start=1):
        cell = sheet.cell(row=1, column=col, value=neutralise(header))
        cell.data_type = TYPE_STRING
        cell.font = bold
    for r, row in enumerate(rows, start=2):
        for col, value in enumerate(row, start=1):
            cell = sheet.cell(row=r, column=col)
            if value is None:
                continue
            cell.value = value
            if isinstance(value, str):
                cell.data_type = TYPE_STRING  # never 'f', whatever openpyxl guessed
                cell.number_format = "@"  # Excel keeps it text when the cell is edited
            elif isinstance(value, date):
                cell.number_format = "yyyy-mm-dd"
    for col, header in enumerate(headers, start=1):
        sheet.column_dimensions[sheet.cell(row=1, column=col).column_letter].width = max(
            10, 2 * len(header) + 4
        )
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def render_export(
    records: Iterable[Mapping[str, Any]], config: PayrollExportConfig, *, fmt: str | None = None
) -> bytes:
    """The export file's bytes (not yet written, not sealed)."""
    fmt = fmt or config.format
    if fmt not in FORMATS:
        raise PayrollExportError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    headers = [c.header for c in config.columns]
    rows = export_rows(records, config)
    if fmt == "csv":
        return to_csv(headers, rows, config.csv_encoding)
    return to_xlsx(headers, rows, config.sheet_name)


# -- files ----------------------------------------------------------------------------------------


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by the owner only (0600), atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def seal_export(keyring: Keyring, data: bytes, fmt: str) -> bytes:
    """``data`` sealed with the keyring (class ``financial``) behind a small header naming its format."""
    export_id = str(uuid.uuid4())
    header = json.dumps({"v": 1, "kind": "payroll_export", "format": fmt, "export_id": export_id}).encode()
    sealed = keyring.seal(data, SEALED_DATA_CLASS, "payroll_export", export_id, fmt)
    keyring.flush_counters()
    return SEALED_MAGIC + header + b"\n" + sealed


def open_export(keyring: Keyring, blob: bytes) -> tuple[str, bytes]:
    """The format and plaintext of a sealed export; the header is authenticated with the content."""
    if not blob.startswith(SEALED_MAGIC):
        raise PayrollExportError("not a hub-sealed export file")
    header_line, _, sealed = blob[len(SEALED_MAGIC) :].partition(b"\n")
    try:
        header = json.loads(header_line)
        fmt, export_id = str(header["format"]), str(header["export_id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise PayrollExportError("sealed export header is damaged") from exc
    return fmt, keyring.open(sealed, "payroll_export", export_id, fmt)


@dataclass(frozen=True)
class ExportResult:
    path: Path
    format: str
    rows: int
    encrypted: bool


def write_export(
    records: Iterable[Mapping[str, Any]],
    config: PayrollExportConfig,
    path: Path,
    *,
    fmt: str | None = None,
    keyring: Keyring | None = None,
    encrypt: bool | None = None,
) -> ExportResult:
    """Render and write the export (0600); sealed when ``encrypt`` (default: the config's ``encrypt``)."""
    fmt = fmt or config.format
    records = list(records)
    data = render_export(records, config, fmt=fmt)
    sealed = config.encrypt if encrypt is None else encrypt
    if sealed:
        if keyring is None:
            raise PayrollExportError("encrypting the export needs hub's keyring")
        data = seal_export(keyring, data, fmt)
    write_private(path, data)
    log.info(
        "payroll export written: %d rows, %d columns, %s%s",
        len(records),
        len(config.columns),
        fmt,
        " (sealed)" if sealed else "",
    )
    return ExportResult(path, fmt, len(records), sealed)


def decrypt_export_file(keyring: Keyring, source: Path, target: Path) -> str:
    """Open a sealed export file into ``target`` (0600); returns its format."""
    fmt, data = open_export(keyring, source.read_bytes())
    write_private(target, data)
    return fmt
