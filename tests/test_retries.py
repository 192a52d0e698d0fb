"""Transient failures are retried with backoff; lasting and non-transient ones fail the run."""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from hub.engine import Sync
from hub.errors import FatalSyncError, RetriableSyncError
from hub.project import Project
from hub.retry import backoff_delay, call_with_retry, is_transient, retry_after_of
from hub.store.models import OutboxEntry, RunEvent, StreamState
from tests.conftest import run_cli

SYNC_PLUGINS = Path(__file__).parent / "plugins" / "sync_plugins"


def toml_values(values: dict[str, Any]) -> str:
    return "\n".join(f"{key} = {json.dumps(value)}" for key, value in values.items())


def flaky_project(
    tmp_path: Path,
    write_project: Callable[..., Path],
    source: dict[str, Any],
    destination: dict[str, Any] | None = None,
) -> Path:
    """Pipeline ``load``: the ``flaky`` source (10 people, chunks of 4) into SQLite ``hr.db``,
    through ``flaky_sql`` when ``destination`` is given. Attempts are logged to *.log files."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    shutil.copy(SYNC_PLUGINS / "flaky.py", plugins / "flaky.py")
    source = {"log": "source.log", "rows": 10, **source}
    dest_plugin = "sql" if destination is None else "flaky_sql"
    dest = {"url": "sqlite:///hr.db", **({"log": "destination.log", **destination} if destination else {})}
    return write_project(
        f"""
[hub]
plugins_dir = "plugins"
chunk_size = 4

[connectors.src]
plugin = "flaky"
[connectors.src.config]
{toml_values(source)}

[connectors.dst]
plugin = "{dest_plugin}"
[connectors.dst.config]
{toml_values(dest)}

[pipelines.load]
source = "src"
streams = ["people"]
destinations = ["dst"]
"""
    )


def attempts(tmp_path: Path, name: str) -> list[dict[str, Any]]:
    path = tmp_path / f"{name}.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def events(project: Project, run_id: int, kind: str) -> list[str]:
    with project.db.session() as session:
        rows = session.execute(
            sa.select(RunEvent.message)
            .where(RunEvent.run_id == run_id, RunEvent.kind == kind)
            .order_by(RunEvent.id)
        )
        return list(rows.scalars())


def people_ids(tmp_path: Path) -> list[str]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'hr.db'}")
    with engine.connect() as conn:
        ids = list(conn.execute(sa.text("SELECT id FROM people ORDER BY id")).scalars())
    engine.dispose()
    return ids


ALL_IDS = [f"E{i:04d}" for i in range(1, 11)]


# -- the source --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "retry_after", "shown"),
    [
        ("retriable", 0.01, "RetriableSyncError: 429 Too Many Requests"),
        ("http503", 7, "HTTPError: 503 Server Error"),  # Retry-After: 7 in the response
    ],
)
def test_a_source_failing_twice_is_retried_from_its_checkpoint_without_duplicates(
    tmp_path: Path, write_project: Callable[..., Path], error: str, retry_after: float, shown: str
) -> None:
    # Each failing read yields one chunk first, then fails once that chunk is committed.
    config = flaky_project(
        tmp_path,
        write_project,
        {"fail_times": 2, "fail_after": 1, "pause": 0.2, "error": error, "retry_after": retry_after},
    )
    project = Project(config)
    sleeps: list[float] = []

    result = Sync(project, "load", sleep=sleeps.append).run()

    assert result.status == "succeeded", result.error
    c = result.counts
    assert (c.read, c.inserted, c.updated, c.unchanged, c.rejected) == (10, 10, 0, 0, 0)
    assert people_ids(tmp_path) == ALL_IDS
    assert sleeps == [retry_after, retry_after]  # the server's Retry-After, not our backoff
    assert [a["state"] for a in attempts(tmp_path, "source")] == [None, {"after": 4}, {"after": 8}]
    retries = events(project, result.run_id, "retry")
    assert len(retries) == 2
    assert shown in retries[0] and "retry 1/4" in retries[0] and "retry 2/4" in retries[1]
    with project.db.session() as session:
        state = session.get(StreamState, ("load", "people"))
        assert state is not None and state.state == {"source": {"after": 10}, "complete": True}


@pytest.mark.parametrize(("error", "shown"), [("value", "ValueError"), ("http400", "HTTPError: 400")])
def test_a_non_transient_source_error_fails_at_once(
    tmp_path: Path, write_project: Callable[..., Path], error: str, shown: str
) -> None:
    project = Project(flaky_project(tmp_path, write_project, {"fail_times": 1, "error": error}))
    sleeps: list[float] = []

    result = Sync(project, "load", sleep=sleeps.append).run()

    assert result.status == "failed"
    assert result.error is not None and shown in result.error
    assert len(attempts(tmp_path, "source")) == 1
    assert sleeps == [] and events(project, result.run_id, "retry") == []


def test_a_source_that_keeps_failing_fails_hub_sync_after_five_attempts(
    tmp_path: Path, write_project: Callable[..., Path]
) -> None:
    config = flaky_project(
        tmp_path, write_project, {"fail_times": 99, "error": "retriable", "retry_after": 0.01}
    )

    sync = run_cli(["sync", "load", "--json"], config)

    assert sync.returncode == 1, sync.stdout + sync.stderr
    result = json.loads(sync.stdout)
    assert result["status"] == "failed"
    assert "kept failing after 5 attempts" in result["error"]
    assert "429 Too Many Requests" in result["error"]
    assert len(attempts(tmp_path, "source")) == 5

    logs = run_cli(["logs", str(result["run_id"]), "--json"], config)
    assert logs.returncode == 0, logs.stderr
    kinds = [e["kind"] for e in json.loads(logs.stdout)]
    assert kinds.count("retry") == 4
    assert kinds[-2:] == ["run.error", "run.end"]


def test_hub_logs_shows_the_retries_of_a_run_that_recovered(
    tmp_path: Path, write_project: Callable[..., Path]
) -> None:
    config = flaky_project(
        tmp_path, write_project, {"fail_times": 2, "error": "retriable", "retry_after": 0.01}
    )

    sync = run_cli(["sync", "load", "--json"], config)

    assert sync.returncode == 0, sync.stdout + sync.stderr
    run_id = json.loads(sync.stdout)["run_id"]
    logs = json.loads(run_cli(["logs", str(run_id), "--json"], config).stdout)
    retries = [e for e in logs if e["kind"] == "retry"]
    assert [e["level"] for e in retries] == ["warning", "warning"]
    assert all("429 Too Many Requests" in e["message"] and e["stream"] == "people" for e in retries)
    assert people_ids(tmp_path) == ALL_IDS


# -- the destination ----------------------------------------------------------------------------------


def test_a_destination_failing_twice_is_retried_and_its_writes_commit(
    tmp_path: Path, write_project: Callable[..., Path]
) -> None:
    config = flaky_project(
        tmp_path, write_project, {}, {"fail_times": 2, "error": "retriable", "retry_after": 0.01}
    )
    project = Project(config)
    sleeps: list[float] = []

    result = Sync(project, "load", sleep=sleeps.append).run()

    assert result.status == "succeeded", result.error
    assert (result.counts.read, result.counts.inserted) == (10, 10)
    assert people_ids(tmp_path) == ALL_IDS
    assert sleeps == [0.01, 0.01]
    retries = events(project, result.run_id, "retry")
    assert len(retries) == 2 and all("destination dst write failed" in m for m in retries)
    writes = attempts(tmp_path, "destination")
    assert len(writes) == 5  # 2 failures, then the 3 chunks
    assert writes[0]["key"] == writes[1]["key"] == writes[2]["key"]  # a retry is the same idempotent write
    with project.db.session() as session:
        outbox = (
            session.execute(sa.select(OutboxEntry).where(OutboxEntry.run_id == result.run_id)).scalars().all()
        )
        assert len(outbox) == 3
        assert {e.status for e in outbox} == {"committed"}
        assert all(e.committed_at is not None for e in outbox)


def test_a_destination_that_keeps_failing_fails_the_run_with_its_name(
    tmp_path: Path, write_project: Callable[..., Path]
) -> None:
    config = flaky_project(
        tmp_path, write_project, {}, {"fail_times": 99, "error": "retriable", "retry_after": 0.01}
    )
    project = Project(config)

    result = Sync(project, "load", sleep=lambda s: None).run()

    assert result.status == "failed"
    assert result.error is not None
    assert "destination 'dst' kept failing after 5 attempts" in result.error
    assert len(attempts(tmp_path, "destination")) == 5
    retries = events(project, result.run_id, "retry")
    assert len(retries) == 4 and not any("source read failed" in m for m in retries)
    with project.db.session() as session:
        outbox = session.execute(sa.select(OutboxEntry)).scalars().all()
        assert [e.status for e in outbox] == ["failed"]
        assert "429 Too Many Requests" in (outbox[0].last_error or "")


# -- hub.retry ------------------------------------------------------------------------------------------


def http_error(status: int, retry_after: str | None = None) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = retry_after
    return requests.HTTPError(f"{status} Error", response=response)


def sqlite_error(tmp_path: Path, lock: bool) -> sa.exc.OperationalError:
    """A real OperationalError: a missing table, or a table another connection holds locked."""
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE IF NOT EXISTS t (x)")
    if lock:
        holder.execute("BEGIN EXCLUSIVE")
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO t VALUES (1)" if lock else "SELECT * FROM missing"))
    except sa.exc.OperationalError as exc:
        return exc
    finally:
        engine.dispose()
        holder.close()
    raise AssertionError("no error")


def pg_error(message: str) -> sa.exc.OperationalError:
    return sa.exc.OperationalError("SELECT 1", None, Exception(message))


def test_sqlite_locked_is_transient_but_a_missing_table_is_not(tmp_path: Path) -> None:
    locked = sqlite_error(tmp_path, lock=True)
    assert "database is locked" in str(locked)
    assert is_transient(locked)
    missing = sqlite_error(tmp_path, lock=False)
    assert "no such table" in str(missing)
    assert not is_transient(missing)


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        pytest.param(http_error(429), True, id="http-429"),
        pytest.param(http_error(503), True, id="http-503"),
        pytest.param(http_error(502), True, id="http-502"),
        pytest.param(http_error(408), True, id="http-408"),
        pytest.param(http_error(400), False, id="http-400"),
        pytest.param(http_error(404), False, id="http-404"),
        pytest.param(requests.HTTPError("no response"), False, id="http-error-without-response"),
        pytest.param(requests.ConnectionError("reset"), True, id="requests-connection-error"),
        pytest.param(requests.Timeout("read timed out"), True, id="requests-timeout"),
        pytest.param(RetriableSyncError("429 Too Many Requests", retry_after=1), True, id="retriable"),
        pytest.param(FatalSyncError("bad credentials"), False, id="fatal"),
        pytest.param(TimeoutError(), True, id="timeout"),
        pytest.param(ConnectionResetError(), True, id="connection-reset"),
        pytest.param(ValueError("bad value"), False, id="value-error"),
        pytest.param(KeyError("id"), False, id="key-error"),
        pytest.param(
            pg_error('connection to server at "10.0.0.5", port 5432 failed: Connection refused'),
            True,
            id="db-connection-refused",
        ),
        pytest.param(pg_error("server closed the connection unexpectedly"), True, id="db-server-closed"),
        pytest.param(pg_error("deadlock detected"), True, id="db-deadlock"),
        pytest.param(
            pg_error('connection to server at "db" failed: FATAL:  database "hr" does not exist'),
            False,
            id="db-missing-database",
        ),
        pytest.param(
            pg_error('connection to server failed: FATAL:  password authentication failed for user "hub"'),
            False,
            id="db-bad-password",
        ),
        pytest.param(
            pg_error("(1045, \"Access denied for user 'hub'@'10.0.0.2' (using password: YES)\")"),
            False,
            id="db-access-denied",
        ),
    ],
)
def test_is_transient(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


def test_an_invalidated_connection_is_transient() -> None:
    error = sa.exc.DBAPIError("SELECT 1", None, Exception("boom"), connection_invalidated=True)
    assert is_transient(error)


def test_backoff_honours_retry_after_within_the_cap() -> None:
    assert backoff_delay(1, retry_after=3) == 3
    assert backoff_delay(4, retry_after=0.01) == 0.01
    assert backoff_delay(1, retry_after=600) == 60  # capped
    assert backoff_delay(1, cap=5, retry_after=30) == 5
    assert backoff_delay(1, retry_after=-2) == 0


def test_backoff_is_full_jitter_under_an_exponential_bound() -> None:
    random.seed(1)
    for attempt in range(1, 10):
        bound = min(10.0, 0.5 * 2 ** (attempt - 1))
        samples = [backoff_delay(attempt, base=0.5, cap=10) for _ in range(300)]
        assert all(0 <= s <= bound for s in samples)
        assert max(samples) > 0.8 * bound and min(samples) < 0.2 * bound  # spread over the whole range
    assert len({backoff_delay(3) for _ in range(20)}) > 1
    assert 0 <= backoff_delay(5000, cap=60) <= 60  # a huge attempt number does not overflow


def test_retry_after_comes_from_the_error_or_the_http_header() -> None:
    assert retry_after_of(RetriableSyncError("slow down", retry_after=2.5)) == 2.5
    assert retry_after_of(RetriableSyncError("slow down")) is None
    assert retry_after_of(http_error(429, "7")) == 7.0
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= (retry_after_of(http_error(503, later)) or 0) <= 30
    earlier = format_datetime(datetime.now(UTC) - timedelta(minutes=5), usegmt=True)
    assert retry_after_of(http_error(503, earlier)) == 0
    assert retry_after_of(http_error(503, "soon")) is None
    assert retry_after_of(http_error(503)) is None
    assert retry_after_of(ValueError("x")) is None


def test_call_with_retry() -> None:
    calls: list[int] = []
    sleeps: list[float] = []
    retried: list[tuple[int, str, float]] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) <= 2:
            raise http_error(429, "0.2")
        return "ok"

    result = call_with_retry(
        flaky, on_retry=lambda n, exc, d: retried.append((n, type(exc).__name__, d)), sleep=sleeps.append
    )
    assert result == "ok" and len(calls) == 3
    assert sleeps == [0.2, 0.2]
    assert retried == [(1, "HTTPError", 0.2), (2, "HTTPError", 0.2)]

    calls.clear()

    def broken() -> None:
        calls.append(1)
        raise ValueError("not transient")

    with pytest.raises(ValueError):
        call_with_retry(broken, sleep=sleeps.append)
    assert len(calls) == 1

    calls.clear()
    sleeps.clear()

    def down() -> None:
        calls.append(1)
        raise RetriableSyncError("503", retry_after=0)

    with pytest.raises(RetriableSyncError):
        call_with_retry(down, attempts=3, sleep=sleeps.append)
    assert len(calls) == 3 and sleeps == [0, 0]
