"""Bulk inserts into SQLite with many rows per statement.

Python's sqlite3 driver gives up the GIL for every statement it runs and must get it back
before the next one. While another thread runs Python (a sync maps the next chunk while the
one before is written), each hand-back waits up to the interpreter's switch interval (5 ms):
an ``executemany`` of 50,000 one-row inserts that takes 0.1 s alone took 107 s beside a busy
thread here, against 0.3 s for the same rows 2,000 to a statement. So writes of a chunk
(canonical rows, the record index, change events, identity rows) go through here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from itertools import chain
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

#: Bound values per statement when the driver cannot say (SQLite's limit before 3.32)
DEFAULT_VARIABLES = 999
#: At most this many per statement, whatever the build allows (longer SQL to parse, no gain)
MAX_VARIABLES = 10_000


def sqlite_variables(dbapi_connection: Any) -> int:
    """How many values one statement may bind on this SQLite connection."""
    getlimit = getattr(dbapi_connection, "getlimit", None)
    try:
        limit = int(getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)) if getlimit else DEFAULT_VARIABLES
    except (sqlite3.Error, AttributeError, TypeError):
        limit = DEFAULT_VARIABLES
    return max(1, min(limit, MAX_VARIABLES))


def values_statements(
    head: str, rows: Sequence[Sequence[Any]], *, variables: int, tail: str = ""
) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """``(statement, parameters)`` inserting ``rows`` (tuples of one width), many per statement.

    ``head`` is ``INSERT INTO t (a, b)``; ``tail`` what follows the VALUES list (an
    ``ON CONFLICT`` clause). Rows keep their order, so a key repeated among them ends as its
    last row leaves it, as with one statement per row. One statement's values at a time: no
    second copy of all the rows. Rows past the last full statement go in statements of
    power-of-two sizes: the driver caches each distinct statement it prepares (128 of them),
    and a remainder of any size would add a new one, of up to a megabyte, per chunk.
    """
    if not rows:
        return
    width = len(rows[0])
    per_statement = max(1, variables // max(1, width))
    group = "(" + ", ".join("?" * width) + ")"
    start = 0
    while start < len(rows):
        left = len(rows) - start
        size = per_statement if left >= per_statement else 1 << (left.bit_length() - 1)
        part = rows[start : start + size]
        yield f"{head} VALUES {', '.join([group] * size)}{tail}", tuple(chain.from_iterable(part))
        start += size


def insert_rows(
    executemany: Callable[[str, list[tuple[Any, ...]]], Any],
    dbapi_connection: Any,
    head: str,
    rows: Sequence[Sequence[Any]],
    tail: str = "",
) -> None:
    """Insert ``rows`` on SQLite through ``executemany`` (a cursor's, or ``exec_driver_sql``)."""
    variables = sqlite_variables(dbapi_connection)
    for statement, parameters in values_statements(head, rows, variables=variables, tail=tail):
        executemany(statement, [parameters])


def insert_all(connection: Connection, head: str, rows: Sequence[Sequence[Any]], tail: str = "") -> None:
    """Insert ``rows`` through a SQLAlchemy connection: many to a statement on SQLite, the
    driver's own ``executemany`` elsewhere (PyMySQL batches INSERTs itself, psycopg pipelines).
    """
    if not rows:
        return
    dialect = connection.dialect
    if dialect.name == "sqlite":
        insert_rows(connection.exec_driver_sql, connection.connection.dbapi_connection, head, rows, tail)
        return
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    connection.exec_driver_sql(f"{head} VALUES ({', '.join([mark] * len(rows[0]))}){tail}", list(rows))
