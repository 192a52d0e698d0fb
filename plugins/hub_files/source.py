"""Read CSV and Excel exports in bounded chunks, keeping every value as text.

Long digit strings (18-digit ID numbers, bank accounts) stay text; declared date columns
accept ISO, Chinese and Excel-serial forms; a malformed row becomes a rejection with its
line number and never stops the file.
"""

from __future__ import annotations

import codecs
import hashlib
import logging
from collections.abc import Iterator, Mapping
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from airbyte_cdk.models import (
    AirbyteCatalog,
    AirbyteConnectionStatus,
    AirbyteStream,
    ConnectorSpecification,
    Status,
    SyncMode,
)
from charset_normalizer import from_bytes

from hub.connectors import POSITION, HubSource, RecordBatch, Rejection
from hub.errors import FatalSyncError
from hub.frames import as_text
from hub_files.values import parse_dates, parse_numbers

COLUMN_TYPES = ("string", "date", "integer", "number")

SPEC: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "files",
    "type": "object",
    "required": ["path"],
    "additionalProperties": False,
    "properties": {
        "path": {
            "type": "string",
            "x-hub-path": True,
            "description": "CSV or .xlsx file, relative to hub.toml",
        },
        "stream": {"type": "string", "description": "stream name (default: the file name without suffix)"},
        "format": {"enum": ["auto", "csv", "xlsx", "json", "jsonl"], "default": "auto"},
        "encoding": {"type": "string", "default": "auto", "description": "auto, utf-8, gb18030, ..."},
        "delimiter": {"type": "string", "minLength": 1, "maxLength": 1, "default": ","},
        "sheet": {"type": "string", "description": "Excel sheet (default: the first)"},
        "primary_key": {"type": "array", "items": {"type": "string"}},
        "columns": {
            "type": "object",
            "additionalProperties": {"enum": list(COLUMN_TYPES)},
            "description": "declared column types; undeclared columns are text",
        },
        "required": {"type": "array", "items": {"type": "string"}},
        "multiline": {
            "type": "boolean",
            "default": False,
            "description": "quoted values may contain line breaks (positions become record numbers)",
        },
    },
}

SNIFF_BYTES = 1 << 16

#: Guesses charset detection makes for short GB text (a header and a few names): all
#: East Asian double-byte encodings, whose byte ranges overlap GBK's.
CJK_GUESSES = frozenset(
    {"gb2312", "gbk", "gb18030", "cp936", "hz", "big5", "big5hkscs", "cp950", "cp949", "euckr", "johab"}
    | {"shiftjis", "cp932", "eucjp"}
)


def _decodes(sample: bytes, encoding: str) -> bool:
    try:
        codecs.getincrementaldecoder(encoding)().decode(sample, final=False)
    except UnicodeDecodeError:
        return False
    return True


def detect_encoding(path: Path) -> str:
    """UTF-8 (BOM or not) when the bytes decode as UTF-8, else what charset detection says.

    Any East Asian guess for bytes that are valid GB18030 is GB18030: the superset that
    every Chinese export decodes with.
    """
    with open(path, "rb") as handle:
        sample = handle.read(SNIFF_BYTES)
    if sample.startswith(codecs.BOM_UTF8) or _decodes(sample, "utf-8"):
        return "utf-8"
    best = from_bytes(sample).best()
    if best is None or (
        best.encoding.lower().replace("_", "") in CJK_GUESSES and _decodes(sample, "gb18030")
    ):
        return "gb18030"
    return str(best.encoding)  # Python's codec name, as charset detection spells it


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _cell_text(value: Any) -> str | None:
    """An Excel cell as text: integral floats without ``.0``, datetimes in ISO form."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value)
    return text if text != "" else None


class FilesSource(HubSource):
    """Airbyte source over one CSV or Excel file (one stream)."""

    def spec(self, logger: logging.Logger) -> ConnectorSpecification:
        return ConnectorSpecification(connectionSpecification=SPEC, supportsIncremental=True)

    # -- helpers -------------------------------------------------------------------------

    @staticmethod
    def _path(config: Mapping[str, Any]) -> Path:
        return Path(config["path"])

    @staticmethod
    def _stream(config: Mapping[str, Any]) -> str:
        return str(config.get("stream") or Path(config["path"]).stem)

    @staticmethod
    def _format(config: Mapping[str, Any]) -> str:
        fmt = config.get("format", "auto")
        if fmt == "auto":
            name = str(config["path"]).lower()
            if name.endswith((".xlsx", ".xlsm")):
                return "xlsx"
            if name.endswith((".jsonl", ".ndjson")):
                return "jsonl"
            return "json" if name.endswith(".json") else "csv"
        return str(fmt)

    def _encoding(self, config: Mapping[str, Any]) -> str:
        enc = str(config.get("encoding", "auto"))
        return detect_encoding(self._path(config)) if enc == "auto" else enc

    def header(self, config: Mapping[str, Any]) -> list[str]:
        path = self._path(config)
        if self._format(config) in ("json", "jsonl"):
            names: dict[str, None] = {}
            for _, record, _error in _json_records(path, self._format(config), limit=1000):
                if isinstance(record, dict):
                    names.update(dict.fromkeys(str(k) for k in record))
            return list(names)
        if self._format(config) == "xlsx":
            from openpyxl import load_workbook

            workbook = load_workbook(path, read_only=True, data_only=True)
            try:
                sheet = workbook[config["sheet"]] if config.get("sheet") else workbook.worksheets[0]
                first = next(sheet.iter_rows(max_row=1, values_only=True), ())
                return [str(c).strip() for c in first if c is not None]
            finally:
                workbook.close()
        return [name.strip() for name in reader_names(path, config, self)]

    def _check_columns(self, config: Mapping[str, Any], header: list[str]) -> list[str]:
        wanted = (
            set(config.get("primary_key", []))
            | set(config.get("required", []))
            | set(config.get("columns", {}))
        )
        return sorted(wanted - set(header))

    # -- Airbyte protocol ----------------------------------------------------------------

    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        path = self._path(config)
        if not path.is_file():
            return AirbyteConnectionStatus(status=Status.FAILED, message=f"file not found: {path}")
        try:
            header = self.header(config)
        except Exception as exc:  # noqa: BLE001 - reported as a failed check
            return AirbyteConnectionStatus(status=Status.FAILED, message=f"cannot read {path.name}: {exc}")
        missing = self._check_columns(config, header)
        if missing:
            return AirbyteConnectionStatus(
                status=Status.FAILED, message=f"{path.name} has no column(s): {', '.join(missing)}"
            )
        return AirbyteConnectionStatus(status=Status.SUCCEEDED, message=f"{path.name}: {len(header)} columns")

    def discover(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteCatalog:
        header = self.header(config)
        declared = config.get("columns", {})
        properties: dict[str, Any] = {}
        for name in header:
            kind = declared.get(name, "string")
            schema: dict[str, Any] = {"type": ["null", "string"]}
            if kind == "date":
                schema["format"] = "date"
            elif kind in ("integer", "number"):
                schema["x-hub-type"] = kind
            properties[name] = schema
        pk = [[k] for k in config.get("primary_key", [])] or None
        return AirbyteCatalog(
            streams=[
                AirbyteStream(
                    name=self._stream(config),
                    json_schema={"type": "object", "properties": properties},
                    supported_sync_modes=[SyncMode.full_refresh, SyncMode.incremental],
                    source_defined_cursor=True,
                    source_defined_primary_key=pk,
                )
            ]
        )

    # -- batches -------------------------------------------------------------------------

    def read_batches(
        self,
        logger: logging.Logger,
        config: Mapping[str, Any],
        stream: str,
        state: Mapping[str, Any] | None,
        options: Mapping[str, Any] | None = None,
    ) -> Iterator[RecordBatch]:
        path = self._path(config)
        if not path.is_file():
            raise FatalSyncError(f"file not found: {path}")
        chunk_size = int((options or {}).get("chunk_size", 20000))
        digest = file_digest(path)
        done = 0
        if state and state.get("sha256") == digest:
            if state.get("finished"):
                return  # incremental: this exact file was read to the end before
            done = int(state.get("rows_done", 0))
        elif state:
            logger.info("%s changed since the last checkpoint; reading it from the start", path.name)
        missing = self._check_columns(config, self.header(config))
        if missing:
            raise FatalSyncError(f"{path.name} has no column(s): {', '.join(missing)}")
        if self._format(config) == "xlsx":
            raw = self._xlsx_chunks(config, path, done, chunk_size)
        elif self._format(config) in ("json", "jsonl"):
            raw = self._json_chunks(config, path, done, chunk_size)
        else:
            raw = self._csv_chunks(config, path, done, chunk_size)
        last_done = done
        for frame, rejections, rows_done, fingerprint in raw:
            last_done = rows_done
            frame, more = self._normalise(config, frame)
            yield RecordBatch(
                stream=stream,
                frame=frame,
                state={"sha256": digest, "rows_done": rows_done},
                rejections=rejections + more,
                fingerprint=fingerprint,
            )
        yield RecordBatch(
            stream=stream,
            frame=pd.DataFrame(),
            state={"sha256": digest, "rows_done": last_done, "finished": True},
        )

    def _csv_chunks(
        self, config: Mapping[str, Any], path: Path, done: int, chunk_size: int
    ) -> Iterator[tuple[pd.DataFrame, list[Rejection], int, str | None]]:
        header = self.header(config)
        expected = len(header)
        bad: dict[int, tuple[str, int]] = {}  # line -> (text, values in it); blank lines have no values

        def on_invalid(row: Any) -> str:
            got = int(row.actual_columns) if row.text.strip() else 0
            bad[int(row.number) if row.number is not None else -1] = (row.text, got)
            return "skip"

        multiline = bool(config.get("multiline", False))
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(
                encoding=self._encoding(config),
                use_threads=False,
                block_size=1 << 20,  # pyarrow reads several blocks ahead: keep them small
                skip_rows_after_names=done,
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=config.get("delimiter", ","),
                invalid_row_handler=on_invalid,
                newlines_in_values=multiline,
                # Blank lines stay rows (dropped below): the parser's row numbers and
                # skip_rows_after_names then count physical lines, as positions do.
                ignore_empty_lines=False,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(reader_names(path, config, self), pa.string()),
                null_values=[""],  # only empty is null: "NA", "NULL", "N/A" are text like any other
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
        names = [n.strip() for n in reader.schema.names]
        next_line = 2 + done  # line 1 is the header
        rows_done = done

        def flush(table: pa.Table | None) -> tuple[pd.DataFrame, list[Rejection], int, str | None]:
            nonlocal next_line, rows_done
            n = table.num_rows if table is not None else 0
            first_record = rows_done + 1
            # Lines of the good rows: skip the lines the parser rejected.
            bad_here = sorted(b for b in bad if b >= next_line)
            candidates = np.arange(next_line, next_line + n + len(bad_here), dtype=np.int64)
            lines = np.setdiff1d(candidates, np.asarray(bad_here, dtype=np.int64), assume_unique=True)[:n]
            last_line = int(lines[-1]) if n else max([next_line - 1, *bad_here])
            rejections = []
            popped = [b for b in bad_here if b <= last_line]
            for number in popped:
                text, got = bad.pop(number)
                if got == 0:
                    continue  # a blank line
                missing = names[got:] if got < expected else []
                detail = f"missing {', '.join(missing)}" if missing else f"extra value(s) after {names[-1]}"
                rejections.append(
                    Rejection(
                        position=f"{path.name}:{number}",
                        reason=f"malformed row: expected {expected} columns, got {got} ({detail})",
                        record={"_raw": text},
                    )
                )
            rows_done += n + len(popped)
            next_line = last_line + 1
            if table is None or n == 0:
                return pd.DataFrame(columns=[*names, POSITION]), rejections, rows_done, None
            fingerprint = _table_digest(table, int(lines[0]))
            frame = table.to_pandas(types_mapper=pd.ArrowDtype)
            frame.columns = names
            if multiline:
                frame[POSITION] = [f"{path.name}:record {i}" for i in range(first_record, first_record + n)]
            else:
                frame[POSITION] = [f"{path.name}:{x}" for x in lines.tolist()]
            blank = frame[names].isna().all(axis=1)
            if blank.any():
                frame = frame.loc[~blank].reset_index(drop=True)  # blank lines, as blank spreadsheet rows
            return frame, rejections, rows_done, fingerprint

        pending: pa.Table | None = None
        for batch in reader:
            chunk = pa.Table.from_batches([batch])
            pending = chunk if pending is None else pa.concat_tables([pending, chunk])
            while pending.num_rows >= chunk_size:
                yield flush(pending.slice(0, chunk_size))
                pending = pending.slice(chunk_size)
        if pending is not None and pending.num_rows:
            yield flush(pending)
        if bad:  # malformed lines after the last good row
            yield flush(None)

    def _json_chunks(
        self, config: Mapping[str, Any], path: Path, done: int, chunk_size: int
    ) -> Iterator[tuple[pd.DataFrame, list[Rejection], int, str | None]]:
        """Records of a JSON array or JSON-lines file; nested values become JSON text."""
        rows: list[dict[str, Any]] = []
        rejections: list[Rejection] = []
        rows_done = done
        for position, record, error in _json_records(path, self._format(config), skip=done):
            rows_done += 1
            if error is not None or not isinstance(record, dict):
                reason = error or "not a JSON object"
                rejections.append(
                    Rejection(position=position, reason=reason, record={"_raw": str(record)[:10000]})
                )
            else:
                row = {str(k): (None if v is None else as_text(v)) for k, v in record.items()}
                row[POSITION] = position
                rows.append(row)
            if len(rows) + len(rejections) >= chunk_size:
                yield pd.DataFrame.from_records(rows), rejections, rows_done, None
                rows, rejections = [], []
        if rows or rejections:
            yield pd.DataFrame.from_records(rows), rejections, rows_done, None

    def _xlsx_chunks(
        self, config: Mapping[str, Any], path: Path, done: int, chunk_size: int
    ) -> Iterator[tuple[pd.DataFrame, list[Rejection], int, str | None]]:
        from openpyxl import load_workbook

        workbook = load_workbook(path, read_only=True, data_only=True)
        try:
            sheet = workbook[config["sheet"]] if config.get("sheet") else workbook.worksheets[0]
            rows = sheet.iter_rows(values_only=True)
            header = [
                str(c).strip() if c is not None else f"column_{i + 1}" for i, c in enumerate(next(rows, ()))
            ]
            width = len(header)
            buffer: list[list[str | None]] = []
            positions: list[str] = []
            rows_done = 0
            for number, row in enumerate(rows, start=2):
                if rows_done < done:
                    rows_done += 1
                    continue
                cells = [_cell_text(v) for v in row[:width]]
                rows_done += 1
                if all(c is None for c in cells):
                    continue  # blank spreadsheet row
                cells += [None] * (width - len(cells))
                buffer.append(cells)
                positions.append(f"{path.name}:{sheet.title}!{number}")
                if len(buffer) >= chunk_size:
                    yield self._xlsx_frame(header, buffer, positions), [], rows_done, None
                    buffer, positions = [], []
            if buffer:
                yield self._xlsx_frame(header, buffer, positions), [], rows_done, None
        finally:
            workbook.close()

    @staticmethod
    def _xlsx_frame(header: list[str], rows: list[list[str | None]], positions: list[str]) -> pd.DataFrame:
        frame = pd.DataFrame(rows, columns=header, dtype="string")
        frame[POSITION] = positions
        return frame

    def _normalise(
        self, config: Mapping[str, Any], frame: pd.DataFrame
    ) -> tuple[pd.DataFrame, list[Rejection]]:
        """Apply declared types and required columns; reject rows that fail, with reasons."""
        if frame.empty:
            return frame, []
        reasons: dict[int, list[str]] = {}
        for column, kind in (config.get("columns") or {}).items():
            if kind == "date":
                frame[column], bad = parse_dates(frame[column])
                label = "not a date"
            elif kind in ("integer", "number"):
                frame[column], bad = parse_numbers(frame[column], integer=kind == "integer")
                label = f"not an {kind}" if kind == "integer" else "not a number"
            else:
                continue
            for i in np.flatnonzero(bad):
                reasons.setdefault(int(i), []).append(f"{column}: {label}")
        for column in config.get("required", []):
            empty = frame[column].isna() | frame[column].astype("string").str.strip().eq("")
            for i in np.flatnonzero(empty.to_numpy()):
                reasons.setdefault(int(i), []).append(f"{column}: required value is missing")
        if not reasons:
            return frame, []
        positions = frame[POSITION].tolist()
        data_cols = [c for c in frame.columns if c != POSITION]
        rejections = []
        for row, why in sorted(reasons.items()):
            record = {k: v for k, v in frame.iloc[row][data_cols].items() if not pd.isna(v)}
            rejections.append(Rejection(position=str(positions[row]), reason="; ".join(why), record=record))
        keep = np.ones(len(frame), dtype=bool)
        keep[list(reasons)] = False
        return frame.loc[keep].reset_index(drop=True), rejections


def _json_records(
    path: Path, fmt: str, skip: int = 0, limit: int | None = None
) -> Iterator[tuple[str, Any, str | None]]:
    """(position, record, error) for each record of a JSON array or a JSON-lines file."""
    if fmt == "jsonl":
        count = 0
        with open(path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                count += 1
                if count <= skip:
                    continue
                if limit is not None and count - skip > limit:
                    return
                try:
                    yield f"{path.name}:{number}", orjson.loads(line), None
                except orjson.JSONDecodeError as exc:
                    yield (
                        f"{path.name}:{number}",
                        line.decode("utf-8", "replace"),
                        f"malformed JSON: {exc.msg}",
                    )
        return
    try:
        document = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise FatalSyncError(f"{path.name} is not valid JSON (line {exc.lineno}): {exc.msg}") from exc
    records = document if isinstance(document, list) else [document]
    for number, record in enumerate(records, start=1):
        if number <= skip:
            continue
        if limit is not None and number - skip > limit:
            return
        yield f"{path.name}#{number}", record, None


def reader_names(path: Path, config: Mapping[str, Any], source: FilesSource) -> list[str]:
    """Column names exactly as in the file (pyarrow keys column types by the raw name).

    Malformed rows in the first block are skipped here: they are rejected, with their line
    numbers, when the file is read.
    """
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(encoding=source._encoding(config), block_size=SNIFF_BYTES),
        parse_options=pacsv.ParseOptions(
            delimiter=config.get("delimiter", ","),
            invalid_row_handler=lambda _row: "skip",
            newlines_in_values=bool(config.get("multiline", False)),
        ),
    )
    return list(reader.schema.names)


def _table_digest(table: pa.Table, first_line: int) -> str:
    """Digest of a chunk's exact values: the same rows at the same place give the same digest."""
    digest = hashlib.sha256(f"{first_line}|{table.num_rows}|{'|'.join(table.column_names)}".encode())
    for column in table.columns:
        array = column.combine_chunks()
        if array.null_count:
            array = pc.fill_null(array, "\x00")
        _, offsets_buffer, data_buffer = array.buffers()
        offsets = np.frombuffer(offsets_buffer, dtype=np.int32)[array.offset : array.offset + len(array) + 1]
        digest.update((offsets - offsets[0]).tobytes())
        if data_buffer is not None:
            digest.update(memoryview(data_buffer)[int(offsets[0]) : int(offsets[-1])])
    return digest.hexdigest()
