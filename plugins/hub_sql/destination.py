"""Write chunks with the backend's bulk upsert: COPY + ON CONFLICT on PostgreSQL,
multi-row ON CONFLICT on SQLite, multi-row ON DUPLICATE KEY UPDATE on MariaDB/MySQL.

Each chunk is one transaction. A chunk the database refuses is split in halves until
the rows it refuses are found; those come back as rejections, the rest is written.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from airbyte_cdk.models import AirbyteConnectionStatus, ConnectorSpecification
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Engine,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    inspect,
    text,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.exc import DataError, IntegrityError, ProgrammingError
from sqlalchemy.sql.type_api import TypeEngine

from hub.connectors import HubDestination, WriteResult
from hub.frames import data_columns, to_arrow_table
from hub.store.bulk import insert_rows
from hub_sql.common import SPEC, check_connection, engine_for, safe_error, table_name

log = logging.getLogger(__name__)

#: A chunk on its way to the database: an Arrow table of text columns.
Rows: TypeAlias = pa.Table

ROW_ERRORS = (IntegrityError, DataError)


def sql_type(schema: Mapping[str, Any] | None, key: bool, dialect: str) -> TypeEngine[Any]:
    """The column type for a JSON Schema property (text unless the schema says otherwise)."""
    if key:
        return String(255) if dialect in ("mysql", "mariadb") else Text()
    schema = schema or {}
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    fmt = schema.get("format")
    if fmt == "date":
        return Date()
    if fmt == "date-time":
        # MariaDB/MySQL DATETIME drops fractional seconds silently unless asked to keep them.
        return mysql.DATETIME(fsp=6) if dialect in ("mysql", "mariadb") else DateTime()
    if "integer" in types or schema.get("x-hub-type") == "integer":
        return BigInteger()
    if "number" in types or schema.get("x-hub-type") == "number":
        return Numeric(38, 10)
    if "boolean" in types:
        return Boolean()
    return Text()


def _quote(engine: Engine, name: str) -> str:
    return engine.dialect.identifier_preparer.quote(name)


class SqlDestination(HubDestination):
    """Airbyte destination that upserts by primary key into SQL tables."""

    def __init__(self) -> None:
        self._engine: Engine | None = None
        self._engine_url: str | None = None
        self._tables: dict[str, Table] = {}

    def spec(self, logger: logging.Logger) -> ConnectorSpecification:
        return ConnectorSpecification(connectionSpecification=SPEC)

    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        return check_connection(config)

    def engine(self, config: Mapping[str, Any]) -> Engine:
        url = str(config["url"])
        if self._engine is None or self._engine_url != url:
            self.close()
            self._engine, self._engine_url = engine_for(config), url
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
        self._engine, self._tables = None, {}

    # -- tables --------------------------------------------------------------------------

    def _table(
        self, config: Mapping[str, Any], stream: str, columns: Sequence[str], pk: Sequence[str], schema: Any
    ) -> Table:
        engine = self.engine(config)
        name = table_name(config, stream)
        table = self._tables.get(name)
        if table is not None and all(c in table.c for c in columns):
            return table
        props = (schema or {}).get("properties", {}) if isinstance(schema, Mapping) else {}
        db_schema = config.get("schema")
        inspector = inspect(engine)
        if not inspector.has_table(name, schema=db_schema):
            if not pk:
                raise ValueError(f"cannot create table {name!r} without a primary key")
            metadata = MetaData(schema=db_schema)
            Table(
                name,
                metadata,
                *[
                    Column(c, sql_type(props.get(c), c in pk, engine.dialect.name), primary_key=c in pk)
                    for c in columns
                ],
            )
            metadata.create_all(engine)
        else:
            existing = {c["name"] for c in inspector.get_columns(name, schema=db_schema)}
            with engine.begin() as conn:
                for column in columns:
                    if column not in existing:
                        ddl_type = sql_type(props.get(column), False, engine.dialect.name).compile(
                            engine.dialect
                        )
                        qualified = (
                            f"{_quote(engine, db_schema)}.{_quote(engine, name)}"
                            if db_schema
                            else _quote(engine, name)
                        )
                        conn.execute(
                            text(f"ALTER TABLE {qualified} ADD COLUMN {_quote(engine, column)} {ddl_type}")
                        )
                        log.info("added column %s to %s", column, name)
        table = Table(name, MetaData(), autoload_with=engine, schema=db_schema)
        missing = [k for k in pk if k not in {c.name for c in table.primary_key.columns}]
        if pk and missing:
            raise ValueError(f"table {name!r} has no primary key on {', '.join(missing)}; upserts need one")
        self._tables[name] = table
        return table

    # -- writing -------------------------------------------------------------------------

    def write_batch(
        self,
        config: Mapping[str, Any],
        stream: str,
        frame: pd.DataFrame,
        primary_key: list[str],
        idempotency_key: str,
        schema: Mapping[str, Any] | None = None,
    ) -> WriteResult:
        columns = data_columns(frame)
        if frame.empty:
            return WriteResult(written=0)
        table = self._table(config, stream, columns, primary_key, schema)
        pk = [c.name for c in table.primary_key.columns] or list(primary_key)
        rows: Rows = to_arrow_table(frame, columns)
        rejections: list[tuple[int, str]] = []
        self._write_rows(config, table, columns, pk, rows, list(range(len(frame))), rejections)
        return WriteResult(written=len(frame) - len(rejections), rejections=rejections)

    def _write_rows(
        self,
        config: Mapping[str, Any],
        table: Table,
        columns: list[str],
        pk: list[str],
        rows: Rows,
        index: list[int],
        rejections: list[tuple[int, str]],
    ) -> None:
        try:
            self._upsert(config, table, columns, pk, rows)
        except ROW_ERRORS as exc:
            if len(index) == 1:
                rejections.append((index[0], safe_error(exc)))
                return
            middle = len(index) // 2
            self._write_rows(config, table, columns, pk, rows.slice(0, middle), index[:middle], rejections)
            self._write_rows(config, table, columns, pk, rows.slice(middle), index[middle:], rejections)

    def _upsert(
        self, config: Mapping[str, Any], table: Table, columns: list[str], pk: list[str], rows: Rows
    ) -> None:
        engine = self.engine(config)
        dialect = engine.dialect.name
        q = engine.dialect.identifier_preparer.quote
        target = f"{q(table.schema)}.{q(table.name)}" if table.schema else q(table.name)
        cols = ", ".join(q(c) for c in columns)
        updates = [c for c in columns if c not in pk]
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            if dialect == "postgresql":
                staging = q(f"_hub_stage_{table.name}"[:60])
                # Created per transaction: a staging table kept on a pooled connection would miss
                # the columns added to the target since.
                cursor.execute(
                    f"CREATE TEMP TABLE {staging} (LIKE {target} INCLUDING DEFAULTS) ON COMMIT DROP"
                )
                # CSV with every value quoted: an unquoted empty field is NULL, "" is empty text.
                options = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")
                with cursor.copy(f"COPY {staging} ({cols}) FROM STDIN (FORMAT csv)") as copy:
                    for part in _slices(rows):
                        buffer = pa.BufferOutputStream()
                        pacsv.write_csv(part, buffer, options)
                        copy.write(memoryview(buffer.getvalue()))
                action = (
                    "DO UPDATE SET " + ", ".join(f"{q(c)} = EXCLUDED.{q(c)}" for c in updates)
                    if updates
                    else "DO NOTHING"
                )
                cursor.execute(
                    f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {staging} "
                    f"ON CONFLICT ({', '.join(q(k) for k in pk)}) {action}"
                )
            elif dialect in ("mysql", "mariadb"):
                marks = ", ".join(["%s"] * len(columns))
                action = ", ".join(f"{q(c)} = VALUES({q(c)})" for c in (updates or pk[:1]))
                statement = f"INSERT INTO {target} ({cols}) VALUES ({marks}) ON DUPLICATE KEY UPDATE {action}"
                for part in _slices(_numeric_booleans(table, columns, rows)):
                    cursor.executemany(statement, _tuples(part))
            else:
                action = (
                    "DO UPDATE SET " + ", ".join(f"{q(c)} = excluded.{q(c)}" for c in updates)
                    if updates
                    else "DO NOTHING"
                )
                conflict = ", ".join(q(k) for k in pk)
                for part in _slices(_numeric_booleans(table, columns, rows)):
                    insert_rows(
                        cursor.executemany,
                        raw.dbapi_connection,
                        f"INSERT INTO {target} ({cols})",
                        _tuples(part),
                        f" ON CONFLICT ({conflict}) {action}",
                    )
            raw.commit()
        except Exception as exc:
            raw.rollback()
            raise _wrap(exc, engine.dialect.dbapi) from exc
        finally:
            raw.close()


def _slices(rows: Rows, size: int = 10000) -> list[Rows]:
    """Bound the Python objects alive at once: rows become tuples one slice at a time."""
    return [rows.slice(start, size) for start in range(0, rows.num_rows, size)]


def _numeric_booleans(table: Table, columns: list[str], rows: Rows) -> Rows:
    """Booleans arrive as ``true`` / ``false``; MariaDB's BOOLEAN (TINYINT(1)) refuses them and
    SQLite would keep the text (which reads back as true, even ``false``): store 1 / 0."""
    for i, name in enumerate(columns):
        kind = table.c[name].type
        if isinstance(kind, Boolean) or (isinstance(kind, mysql.TINYINT) and kind.display_width == 1):
            text = pc.utf8_lower(pc.utf8_trim_whitespace(rows.column(i)))
            fixed = pc.if_else(
                pc.equal(text, "true"), "1", pc.if_else(pc.equal(text, "false"), "0", rows.column(i))
            )
            rows = rows.set_column(i, name, fixed)
    return rows


def _tuples(rows: Rows) -> list[tuple[Any, ...]]:
    return list(zip(*(column.to_pylist() for column in rows.columns), strict=True))


#: MariaDB/MySQL errors about one row's values that PyMySQL reports as OperationalError.
MYSQL_ROW_ERRORS = {1048, 1062, 1264, 1265, 1292, 1366, 1406, 1452}


def _wrap(exc: Exception, dbapi: Any) -> Exception:
    """Give driver errors SQLAlchemy's classes, so row errors and transient ones can be told apart."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    if isinstance(exc, DBAPIError) or dbapi is None:
        return exc
    if isinstance(exc, dbapi.IntegrityError):
        return IntegrityError("upsert", None, exc)
    if isinstance(exc, dbapi.DataError):
        return DataError("upsert", None, exc)
    if isinstance(exc, dbapi.OperationalError):
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        if code in MYSQL_ROW_ERRORS:
            return DataError("upsert", None, exc)
        return OperationalError("upsert", None, exc)
    if isinstance(exc, dbapi.ProgrammingError):
        return ProgrammingError("upsert", None, exc)
    return exc
