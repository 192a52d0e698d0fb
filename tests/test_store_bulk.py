"""Many rows per SQLite statement (hub.store.bulk): same rows stored, far fewer statements."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from hub.store.bulk import insert_rows, sqlite_variables, values_statements


def test_rows_are_split_into_full_statements_and_one_for_the_rest() -> None:
    rows = [(i, f"v{i}", None) for i in range(10)]
    statements = list(values_statements("INSERT INTO t (a, b, c)", rows, variables=12, tail=" ON X"))
    assert [s.count("(?, ?, ?)") for s, _ in statements] == [4, 4, 2]
    assert statements[0][0] == "INSERT INTO t (a, b, c) VALUES " + ", ".join(["(?, ?, ?)"] * 4) + " ON X"
    assert [len(p) for _, p in statements] == [12, 12, 6]
    # past the full statements, power-of-two sizes: few distinct statements for the driver to cache
    sizes = [
        s.count("(?)")
        for s, _ in values_statements("INSERT INTO t (a)", [(i,) for i in range(1013)], variables=100)
    ]
    assert sizes == [100] * 10 + [8, 4, 1]
    flat = [v for _, parameters in statements for v in parameters]
    assert flat == [v for row in rows for v in row]  # every value, in row order
    assert list(values_statements("INSERT INTO t (a)", [], variables=10)) == []
    assert len(list(values_statements("INSERT INTO t (a, b)", [(1, 2)], variables=1))) == 1  # one row fits


def test_an_upsert_stores_what_one_statement_per_row_stores(tmp_path: Path) -> None:
    rows = [(f"k{i % 700}", i, "x" * (i % 5) or None) for i in range(2_000)]  # keys repeated
    tail = " ON CONFLICT (k) DO UPDATE SET n = excluded.n, s = excluded.s"
    stored = []
    for name, bulk in (("one", False), ("many", True)):
        connection = sqlite3.connect(tmp_path / f"{name}.db")
        connection.execute("CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER, s TEXT)")
        calls: list[int] = []

        def executemany(
            statement: str, parameters: list[tuple[Any, ...]], db: Any = connection, calls: list[int] = calls
        ) -> None:
            calls.append(len(parameters))
            db.executemany(statement, parameters)

        if bulk:
            insert_rows(executemany, connection, "INSERT INTO t (k, n, s)", rows, tail)
            per_statement = sqlite_variables(connection) // 3
            full, rest = divmod(len(rows), per_statement)
            assert sum(calls) == full + rest.bit_count()  # statements, not rows
        else:
            connection.executemany("INSERT INTO t (k, n, s) VALUES (?, ?, ?)" + tail, rows)
        connection.commit()
        stored.append(connection.execute("SELECT k, n, s FROM t ORDER BY k").fetchall())
        connection.close()
    assert stored[0] == stored[1] and len(stored[0]) == 700


def test_the_variable_limit_is_read_from_the_connection_and_capped() -> None:
    connection = sqlite3.connect(":memory:")
    limit = connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    assert sqlite_variables(connection) == min(limit, 10_000)
    connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 50)
    assert sqlite_variables(connection) == 50
    assert sqlite_variables(object()) == 999  # a driver that cannot say
