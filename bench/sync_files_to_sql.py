"""Benchmark: a 1,000,000-row, 20-column CSV synced into SQLite and PostgreSQL.

For each target it times, in fresh processes (so each peak RSS is its own):
  floor      the same rows inserted with the raw driver (csv.reader + executemany on SQLite,
             COPY FROM STDIN on PostgreSQL): what no sync tool can beat;
  first      `hub sync` of the file into an empty target;
  resync     `hub sync` again, file unchanged (everything must be detected as unchanged).
It prints records/s, the ratios, and peak RSS.

    python bench/sync_files_to_sql.py [--rows 1000000] [--pg postgresql+psycopg://postgres@127.0.0.1/test]
"""

from __future__ import annotations

import argparse
import base64
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

COLUMNS = 20


def generate(path: Path, rows: int) -> None:
    rng = random.Random(42)
    depts = ["研发中心", "财务部", "人力资源部", "市场部", "客户成功部"]
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["employee_id", *[f"field_{i:02d}" for i in range(1, COLUMNS)]])
        for i in range(rows):
            writer.writerow(
                [
                    f"E{i:08d}",
                    f"1101051990{rng.randint(1, 12):02d}{rng.randint(10, 28):02d}{rng.randint(100, 999)}X",
                    f"13{rng.randint(100000000, 999999999)}",
                    f"6222{rng.randint(10**14, 10**15 - 1)}",
                    str(rng.randrange(8000, 60000, 100)),
                    f"20{rng.randint(10, 25)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                    rng.choice(depts),
                    *[f"v{rng.randint(0, 99999)}" for _ in range(COLUMNS - 7)],
                ]
            )


def floor_sqlite(csv_path: Path, db: Path) -> None:
    import sqlite3

    with open(csv_path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        conn = sqlite3.connect(db)
        conn.execute(f"CREATE TABLE people ({', '.join(header)}, PRIMARY KEY (employee_id))")
        conn.executemany(f"INSERT INTO people VALUES ({', '.join('?' * len(header))})", reader)
        conn.commit()
        conn.close()


def floor_postgres(csv_path: Path, url: str, schema: str) -> None:
    import psycopg

    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=False) as conn, conn.cursor() as cur:
        with open(csv_path, encoding="utf-8") as handle:
            header = handle.readline().strip().split(",")
        cur.execute(
            f"CREATE TABLE {schema}.people ({', '.join(f'{h} text' for h in header)}, PRIMARY KEY (employee_id))"
        )
        with (
            cur.copy(f"COPY {schema}.people FROM STDIN (FORMAT csv, HEADER true)") as copy,
            open(csv_path, "rb") as f,
        ):
            while block := f.read(1 << 20):
                copy.write(block)
        conn.commit()


def hub_sync(config: Path) -> None:
    from hub.engine import Sync
    from hub.project import Project

    result = Sync(Project(config), "bench").run()
    if result.status != "succeeded":
        raise SystemExit(f"sync {result.status}: {result.error}")
    print(json.dumps(result.counts.as_dict()), file=sys.stderr)


def child(argv: list[str], script: str = __file__) -> tuple[float, float]:
    """Run ``script``'s ``--phase`` in a fresh process; return (seconds, peak RSS in MB)."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, script, *argv])
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"phase {argv} failed")
    return elapsed, usage.ru_maxrss / 1024


def write_config(directory: Path, csv_path: Path, target: str, password_free: bool = True) -> Path:
    config = directory / f"hub-{uuid.uuid4().hex[:6]}.toml"
    config.write_text(
        textwrap.dedent(
            f"""
            [hub]
            database = "sqlite:///{directory / (config.stem + ".db")}"

            [connectors.src]
            plugin = "files"
            [connectors.src.config]
            path = "{csv_path}"
            stream = "people"
            primary_key = ["employee_id"]

            [connectors.dst]
            plugin = "sql"
            [connectors.dst.config]
            url = "{target}"

            [pipelines.bench]
            source = "src"
            streams = ["people"]
            destinations = ["dst"]
            """
        ),
        encoding="utf-8",
    )
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--pg",
        default=os.environ.get("HUB_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--phase", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase:
        kind, *rest = args.phase
        if kind == "floor-sqlite":
            floor_sqlite(Path(rest[0]), Path(rest[1]))
        elif kind == "floor-postgres":
            floor_postgres(Path(rest[0]), rest[1], rest[2])
        elif kind == "hub":
            hub_sync(Path(rest[0]))
        return

    os.environ.setdefault("HUB_MASTER_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode())
    import sqlalchemy as sa

    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        work = Path(tmp)
        csv_path = work / "people.csv"
        t = time.perf_counter()
        generate(csv_path, args.rows)
        print(
            f"generated {args.rows:,} rows x {COLUMNS} columns ({csv_path.stat().st_size / 1e6:.0f} MB) "
            f"in {time.perf_counter() - t:.1f}s"
        )
        results: list[tuple[str, str, float, float]] = []

        floor_s, floor_rss = child(["--phase", "floor-sqlite", str(csv_path), str(work / "floor.db")])
        results.append(("sqlite", "floor (csv.reader + executemany)", floor_s, floor_rss))
        config = write_config(work, csv_path, f"sqlite:///{work / 'target.db'}")
        first_s, first_rss = child(["--phase", "hub", str(config)])
        results.append(("sqlite", "hub first sync", first_s, first_rss))
        again_s, again_rss = child(["--phase", "hub", str(config)])
        results.append(("sqlite", "hub re-sync, unchanged", again_s, again_rss))

        admin = sa.create_engine(args.pg, isolation_level="AUTOCOMMIT")
        schemas = [f"bench_{uuid.uuid4().hex[:8]}" for _ in range(2)]
        with admin.connect() as conn:
            for schema in schemas:
                conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        try:
            pg_floor_s, pg_floor_rss = child(
                ["--phase", "floor-postgres", str(csv_path), args.pg, schemas[0]]
            )
            results.append(("postgresql", "floor (COPY FROM STDIN)", pg_floor_s, pg_floor_rss))
            pg_config = write_config(work, csv_path, f"{args.pg}?options=-csearch_path%3D{schemas[1]}")
            pg_first_s, pg_first_rss = child(["--phase", "hub", str(pg_config)])
            results.append(("postgresql", "hub first sync", pg_first_s, pg_first_rss))
            pg_again_s, pg_again_rss = child(["--phase", "hub", str(pg_config)])
            results.append(("postgresql", "hub re-sync, unchanged", pg_again_s, pg_again_rss))
        finally:
            with admin.connect() as conn:
                for schema in schemas:
                    conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()

    print()
    print(f"{'target':<11} {'phase':<34} {'seconds':>8} {'records/s':>11} {'peak RSS MB':>12}")
    for target, phase, seconds, rss in results:
        print(f"{target:<11} {phase:<34} {seconds:>8.2f} {args.rows / seconds:>11,.0f} {rss:>12.0f}")
    print()
    for target, floor, first, again in (
        ("sqlite", floor_s, first_s, again_s),
        ("postgresql", pg_floor_s, pg_first_s, pg_again_s),
    ):
        print(
            f"{target:<11} first sync / floor: {first / floor:.2f}x   first sync / unchanged re-sync: {first / again:.1f}x"
        )


if __name__ == "__main__":
    main()
