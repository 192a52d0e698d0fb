"""What the recruiting connectors' tests share: one Airbyte read, hub.toml projects, table rows,
a ``hub sync`` killed midway, and the ATS export the demo uses.

Each connector's test module keeps what is its vendor's (configs, simulators, assertions).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import sqlalchemy as sa
from airbyte_cdk.models import (
    AirbyteStateMessageSerializer,
    ConfiguredAirbyteCatalog,
    ConfiguredAirbyteStream,
    DestinationSyncMode,
    SyncMode,
    Type,
)
from airbyte_cdk.sources import AbstractSource
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from hub.engine import Sync
from hub.pii import open_destination_value
from hub.project import Project
from hub.sandbox.people import Person, people
from hub.store.models import PersonRow, Run

REPO = Path(__file__).resolve().parents[1]
MAPPINGS = REPO / "mappings"
LOG = logging.getLogger("test.ats")


# -- one Airbyte read ----------------------------------------------------------------------------


class Read(NamedTuple):
    """What one Airbyte read of one stream produced."""

    records: list[dict[str, Any]]
    #: the stream's STATE blobs, in order
    states: list[dict[str, Any]]
    #: the messages of the stream's error traces
    errors: list[str]


def read_stream(
    source: AbstractSource,
    config: Mapping[str, Any],
    stream: str,
    mode: SyncMode = SyncMode.incremental,
    state: Mapping[str, Any] | None = None,
) -> Read:
    """Read ``stream`` from ``source`` as the engine would, starting from ``state``.

    A read that fails must say why in an error trace (the engine shows it); the failure itself
    is then not raised, so a test can check the message.
    """
    airbyte_stream = next(s for s in source.discover(LOG, config).streams if s.name == stream)
    catalog = ConfiguredAirbyteCatalog(
        streams=[
            ConfiguredAirbyteStream(
                stream=airbyte_stream, sync_mode=mode, destination_sync_mode=DestinationSyncMode.append_dedup
            )
        ]
    )
    states = []
    if state:
        blob = {"stream_descriptor": {"name": stream}, "stream_state": dict(state)}
        states = [AirbyteStateMessageSerializer.load({"type": "STREAM", "stream": blob})]
    out = Read([], [], [])
    try:
        for message in source.read(LOG, dict(config), catalog, states):
            if message.type == Type.RECORD and message.record is not None:
                out.records.append(dict(message.record.data))
            elif message.type == Type.STATE and message.state is not None:
                out.states.append(AirbyteStateMessageSerializer.dump(message.state)["stream"]["stream_state"])
            elif message.type == Type.TRACE and message.trace is not None and message.trace.error is not None:
                out.errors.append(str(message.trace.error.message))
    except AirbyteTracedException:
        assert out.errors, "a failed read reports why"
    return out


def reader(source: Callable[[], AbstractSource]) -> Callable[..., Read]:
    """:func:`read_stream` from a new ``source()`` each time: ``read(config, stream, mode, state)``."""

    def read(
        config: Mapping[str, Any],
        stream: str,
        mode: SyncMode = SyncMode.incremental,
        state: Mapping[str, Any] | None = None,
    ) -> Read:
        return read_stream(source(), config, stream, mode, state)

    return read


# -- projects --------------------------------------------------------------------------------------


def toml_value(value: Any) -> str:
    """A TOML value: an inline table for a mapping (``{ env = "X" }``), else JSON's spelling."""
    if isinstance(value, Mapping):
        return (
            "{ "
            + ", ".join(
                f"{json.dumps(str(k), ensure_ascii=False)} = {toml_value(v)}" for k, v in value.items()
            )
            + " }"
        )
    return json.dumps(value, ensure_ascii=False)


def stream_entry(name: str, destination: str, *, mapping: Path | None = None, sync_mode: str = "") -> str:
    """One entry of a pipeline's ``streams`` list."""
    entry = {
        "name": name,
        "sync_mode": sync_mode,
        "mapping": str(mapping or ""),
        "destination_stream": destination,
    }
    return "  " + toml_value({k: v for k, v in entry.items() if v}) + ","


def write_hub_toml(
    tmp_path: Path,
    *,
    connector: str,
    settings: Mapping[str, Any],
    streams: Sequence[str],
    secrets: Mapping[str, str] | None = None,
    plugin: str = "",
    pipeline: str = "",
    chunk_size: int = 50,
    identity: Sequence[str] = (),
    extra: str = "",
) -> Path:
    """A project syncing connector ``connector`` (plugin ``plugin``, default the same name) into
    SQLite (``out.db``) through pipeline ``pipeline`` (default the connector's name).

    ``secrets`` maps settings to the environment variables they are read from (never in clear).
    """
    values = {**settings, **{name: {"env": env} for name, env in (secrets or {}).items()}}
    config = "\n".join(f"{k} = {toml_value(v)}" for k, v in values.items())
    sources = f"[identity]\nsources = {toml_value(list(identity))}" if identity else ""
    path = tmp_path / "hub.toml"
    path.write_text(
        f"""
[hub]
database = "sqlite:///{tmp_path / "hub.db"}"
chunk_size = {chunk_size}

{sources}

[connectors.{connector}]
plugin = "{plugin or connector}"
[connectors.{connector}.config]
{config}

[connectors.out]
plugin = "sql"
[connectors.out.config]
url = "sqlite:///{tmp_path / "out.db"}"

[pipelines.{pipeline or connector}]
source = "{connector}"
destinations = ["out"]
streams = [
{chr(10).join(streams)}
]
{extra}
""",
        encoding="utf-8",
    )
    return path


def mapped_streams(
    vendor: str, streams: Sequence[str], entities: Mapping[str, str] | None = None
) -> list[str]:
    """Incremental entries mapping each stream with ``mappings/<vendor>_<stream>.yaml``."""
    return [
        stream_entry(
            s, (entities or {}).get(s, s), mapping=MAPPINGS / f"{vendor}_{s}.yaml", sync_mode="incremental"
        )
        for s in streams
    ]


def mapped_project(
    tmp_path: Path,
    vendor: str,
    streams: Sequence[str],
    settings: Mapping[str, Any],
    secrets: Mapping[str, str],
) -> Path:
    """A project mapping each of ``vendor``'s ``streams`` into its canonical table, identity on."""
    entries = mapped_streams(vendor, streams)
    return write_hub_toml(
        tmp_path, connector=vendor, settings=settings, secrets=secrets, streams=entries, identity=[vendor]
    )


def unmapped_project(
    tmp_path: Path,
    vendor: str,
    stream: str,
    settings: Mapping[str, Any],
    secrets: Mapping[str, str],
    chunk_size: int,
) -> Path:
    """A project copying ``stream`` as it is into table ``<vendor>_<stream>``, incrementally."""
    entry = stream_entry(stream, f"{vendor}_{stream}", sync_mode="incremental")
    return write_hub_toml(
        tmp_path, connector=vendor, settings=settings, secrets=secrets, streams=[entry], chunk_size=chunk_size
    )


def check_mappings(vendor: str, count: int) -> None:
    """``hub mapping check`` passes on the vendor's ``count`` shipped mappings."""
    mappings = sorted(str(p) for p in MAPPINGS.glob(f"{vendor}_*.yaml"))
    assert len(mappings) == count
    done = subprocess.run(
        [sys.executable, "-m", "hub.cli", "mapping", "check", *mappings],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stdout + done.stderr


# -- what a sync wrote -----------------------------------------------------------------------------


def rows(db: Path, table: str) -> list[dict[str, Any]]:
    """Every row of ``table`` in the SQLite file ``db``."""
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.text(f"SELECT * FROM {table}"))]
    finally:
        engine.dispose()


def out_rows(tmp_path: Path, table: str) -> list[dict[str, Any]]:
    """Every row of ``table`` in the project's destination (``out.db``)."""
    return rows(tmp_path / "out.db", table)


def written(tmp_path: Path, table: str) -> int:
    """How many rows ``table`` holds now (0 before it exists, or while the writer locks it)."""
    try:
        return len(out_rows(tmp_path, table))
    except sa.exc.OperationalError:
        return 0


def kill_sync_midway(config: Path, pipeline: str, progress: Callable[[], int], at_least: int) -> None:
    """Run ``hub sync pipeline`` and SIGKILL it once ``progress()`` reached ``at_least``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "sync", pipeline, "--json"],
        env={**os.environ, "HUB_CONFIG": str(config)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and progress() < at_least:
            assert proc.poll() is None, "the sync finished before it could be killed"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def unsealed(project: Project, table: str, row: Mapping[str, Any], column: str) -> str:
    """A sealed destination value in clear (``hub1.`` ciphertext at rest)."""
    return open_destination_value(project.keyring, "out", table, column, row["remote_id"], row[column])


def assert_nothing_in_clear(tmp_path: Path, persons: Iterable[Person], also: Iterable[str] = ()) -> None:
    """No ID number, phone or e-mail of ``persons`` (nor ``also``) anywhere hub keeps data."""
    stored = (tmp_path / "out.db").read_bytes() + (tmp_path / "hub.db").read_bytes()
    for person in persons:
        for secret in (person.id_number, person.phone, person.email):
            assert secret.encode() not in stored
    for secret in also:
        assert secret.encode() not in stored


def persons_linked(project: Project) -> int:
    """How many persons identity resolution keeps."""
    with project.db.session() as session:
        return int(session.execute(sa.select(sa.func.count()).select_from(PersonRow)).scalar_one())


def assert_killed_sync_resumes(
    config: Path,
    pipeline: str,
    *,
    stream: str,
    table: str,
    key: Callable[[dict[str, Any]], Any],
    expected: Sequence[Any],
    at_least: int = 20,
) -> Project:
    """SIGKILL ``hub sync pipeline`` once ``table`` holds ``at_least`` rows: the rerun resumes from
    the last checkpoint and ``table`` ends with every ``expected`` key once."""
    tmp_path = config.parent
    Project(config).db.upgrade()
    kill_sync_midway(config, pipeline, lambda: written(tmp_path, table), at_least)
    assert 0 < written(tmp_path, table) < len(expected), "the kill should land midway"

    project = Project(config)
    result = Sync(project, pipeline).run()
    assert result.status == "succeeded", result.error
    assert result.streams[stream].read < len(expected), "the rerun resumes from the checkpoint"
    assert sorted(key(r) for r in out_rows(tmp_path, table)) == sorted(expected)
    with project.db.session() as session:
        assert "crashed" in set(session.execute(sa.select(Run.status)).scalars())
    return project


# -- what a simulator saw --------------------------------------------------------------------------

#: a simulator's timeline: (monotonic time, method, path, status) per request
Timeline = Sequence[tuple[float, str, str, int]]


def assert_waited_out_429s(timeline: Timeline, count: int, retry_after: float = 1.0) -> None:
    """``count`` requests were answered 429, and each next one came after ``Retry-After`` had passed."""
    throttled = [i for i, (*_, status) in enumerate(timeline) if status == 429]
    assert len(throttled) == count
    for i in throttled:
        assert timeline[i + 1][0] - timeline[i][0] >= retry_after


def assert_token_refetched(timeline: Timeline, refused: Callable[[str, int], bool], token_path: str) -> None:
    """One call was refused for its dead token (``refused(path, status)``): a new token was
    fetched at once, and the same call then succeeded."""
    statuses = [(path, status) for _, _, path, status in timeline]
    rejected = [i for i, (path, status) in enumerate(statuses) if refused(path, status)]
    assert len(rejected) == 1
    assert statuses[rejected[0] + 1] == (token_path, 200)
    assert statuses[rejected[0] + 2] == (statuses[rejected[0]][0], 200)


# -- the ATS side ----------------------------------------------------------------------------------


def write_ats_csv(path: Path, count: int, seed: int, phone_prefix: str = "138") -> list[dict[str, str]]:
    """The ATS export the demo uses (same columns, read with mappings/ats_candidates_person.yaml)
    for the people a simulator generates with ``seed``; phones are valid in CN (the generator's
    are not all)."""
    out = []
    for person in people(count, seed=seed):
        birth = person.id_number[6:14]
        out.append(
            {
                "candidate_id": f"C{person.index:05d}",
                "name": person.name,
                "gender": "男" if int(person.id_number[16]) % 2 else "女",
                "birth_date": f"{birth[:4]}-{birth[4:6]}-{birth[6:]}",
                "phone": f"{phone_prefix}{person.index:08d}",
                "email": person.email,
                "id_number": person.id_number,
                "source_channel": "campus",
                "status": "assessment",
            }
        )
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(out[0]))
        writer.writeheader()
        writer.writerows(out)
    return out


def ats_export_toml(csv_path: Path) -> str:
    """hub.toml lines for the ATS export: connector ``ats_export`` and pipeline ``ats`` into ``people``."""
    return f"""
[connectors.ats_export]
plugin = "files"
[connectors.ats_export.config]
path = "{csv_path}"
stream = "candidates"

[pipelines.ats]
source = "ats_export"
destinations = ["out"]
streams = [{{ name = "candidates", mapping = "{MAPPINGS / "ats_candidates_person.yaml"}", destination_stream = "people" }}]
"""
