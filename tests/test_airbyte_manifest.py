"""hub_airbyte: Airbyte declarative manifests run in hub's process, against the Lever simulator.

Real HTTP over loopback to :class:`hub.sandbox.lever.LeverSimulator`, real SQLite for the
hub project and the destination. hub ships no Lever connector: the manifests under
``tests/fixtures/manifests`` are YAML written for these tests after Airbyte's
source-lever-hiring.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from airbyte_cdk.models import (
    AirbyteStateMessageSerializer,
    ConfiguredAirbyteCatalog,
    ConfiguredAirbyteStream,
    DestinationSyncMode,
    Status,
    SyncMode,
    Type,
)
from hub_airbyte import (
    ManifestConfigError,
    ManifestError,
    ManifestSource,
    ManifestTransientError,
    load_manifest,
    manifest_connector,
)

from hub.airbyte_containment import ConfigCapture, contained
from hub.engine import Sync
from hub.errors import ConfigurationError
from hub.plugins import load_plugins
from hub.project import Project, collect_connectors
from hub.retry import is_transient
from hub.sandbox import Faults
from hub.sandbox.lever import LeverSimulator
from hub.store.models import AuditEntry, RunEvent, StreamState
from tests.conftest import run_cli

FIXTURES = Path(__file__).parent / "fixtures" / "manifests"
LEVER = FIXTURES / "lever.yaml"
LEVER_OAUTH = FIXTURES / "lever_oauth.yaml"
SHIPPED = FIXTURES / "shipped" / "manifest.yaml"
START = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 40 * 86400))
COUNT = 120

MAPPING = """\
# Lever opportunities -> canonical Candidate (names and contacts stay in custom_fields, sealed)
entity: Candidate
key: [id]
fields:
  current_title: {from: headline, transforms: [trim]}
  source: {from: origin}
  tags: {from: tags}
  remote_created_at: {from: createdAt, transforms: [datetime]}
  remote_updated_at: {from: updatedAt, transforms: [datetime]}
  last_interaction_at: {from: lastInteractionAt, transforms: [datetime]}
custom_fields: [name, emails, phones, stage]
"""


@pytest.fixture
def lever() -> Iterator[LeverSimulator]:
    with LeverSimulator(count=COUNT, seed=3) as simulator:
        yield simulator


def lever_config(sim: LeverSimulator, **extra: Any) -> dict[str, Any]:
    return {
        "base_url": f"{sim.url}/v1",
        "start_date": START,
        "credentials": {"auth_type": "Api Key", "api_key": sim.api_key},
        "backoff_factor": 0.01,
        **extra,
    }


def impatient(manifest: Path, folder: Path, max_retries: int = 0) -> Path:
    """A copy of ``manifest`` whose requests give up after ``max_retries`` retries.

    The CDK waits at least a second before any retry: tests of what happens once it gave up
    would spend most of their time waiting.
    """
    text = manifest.read_text(encoding="utf-8")
    assert "max_retries: 5" in text
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / manifest.name
    copy.write_text(text.replace("max_retries: 5", f"max_retries: {max_retries}"), encoding="utf-8")
    return copy


def lever_source(manifest: Path = LEVER) -> ManifestSource:
    source = manifest_connector("lever", "ats", manifest, "Lever (test)").source
    assert source is not None
    instance = source()
    assert isinstance(instance, ManifestSource)
    return instance


def catalog_of(source: ManifestSource, config: dict[str, Any], stream: str) -> ConfiguredAirbyteCatalog:
    found = {s.name: s for s in source.discover(logging.getLogger("test"), config).streams}[stream]
    incremental = SyncMode.incremental in (found.supported_sync_modes or [])
    return ConfiguredAirbyteCatalog(
        streams=[
            ConfiguredAirbyteStream(
                stream=found,
                sync_mode=SyncMode.incremental if incremental else SyncMode.full_refresh,
                destination_sync_mode=DestinationSyncMode.append_dedup,
                cursor_field=found.default_cursor_field if incremental else None,
                primary_key=found.source_defined_primary_key,
            )
        ]
    )


def read_stream(
    source: ManifestSource, config: dict[str, Any], stream: str = "opportunities", state: Any = None
) -> tuple[list[dict[str, Any]], Any, list[Any]]:
    """Records, the last STATE (as the engine stores it) and every message of one read."""
    catalog = catalog_of(source, config, stream)
    states = []
    if state is not None:
        states = [
            AirbyteStateMessageSerializer.load(
                {"type": "STREAM", "stream": {"stream_descriptor": {"name": stream}, "stream_state": state}}
            )
        ]
    messages = list(source.read(logging.getLogger("test"), config, catalog, states))
    records = [m.record.data for m in messages if m.type == Type.RECORD]
    last = [m for m in messages if m.type == Type.STATE][-1]
    return records, AirbyteStateMessageSerializer.dump(last.state)["stream"]["stream_state"], messages


# -- the source, on its own ------------------------------------------------------------------


def test_spec_check_and_discover(lever: LeverSimulator) -> None:
    source = lever_source()
    spec = source.spec(logging.getLogger("test")).connectionSpecification
    assert spec == load_manifest(LEVER, trusted=True).connection_specification
    assert spec["properties"]["credentials"]["properties"]["api_key"]["airbyte_secret"] is True

    assert source.check(logging.getLogger("test"), lever_config(lever)).status == Status.SUCCEEDED
    refused = source.check(
        logging.getLogger("test"),
        lever_config(lever, credentials={"auth_type": "Api Key", "api_key": "wrong-key-1234"}),
    )
    assert refused.status == Status.FAILED
    assert "wrong-key-1234" not in (refused.message or "")
    assert ("GET", "/v1/users?limit=50", 401) in lever.requests

    streams = {s.name: s for s in source.discover(logging.getLogger("test"), lever_config(lever)).streams}
    assert set(streams) == {"opportunities", "users"}
    opportunities = streams["opportunities"]
    assert opportunities.source_defined_primary_key == [["id"]]
    assert opportunities.default_cursor_field == ["updatedAt"]
    assert SyncMode.incremental in opportunities.supported_sync_modes
    assert streams["users"].supported_sync_modes == [SyncMode.full_refresh]


def test_full_read_follows_pages_then_incremental_reads_only_newer(lever: LeverSimulator) -> None:
    source = lever_source()
    config = lever_config(lever)
    records, state, _ = read_stream(source, config)
    assert len(records) == COUNT
    assert {r["id"] for r in records} == {o.id for o in lever.opportunities}
    newest = max(o.updated_at for o in lever.opportunities)
    assert state == {"updatedAt": str(newest)}
    pages = [path for method, path, status in lever.requests if "/v1/opportunities" in path]
    assert any("offset=" in path for path in pages), "the second page is asked for with the offset token"
    assert all("limit=50" in path and "updated_at_start=" in path for path in pages)

    touched = [o.id for o in lever.opportunities if o.updated_at != newest][:2]
    lever.touch(*touched)
    boundary = {o.id for o in lever.opportunities if o.updated_at == newest}
    lever.requests.clear()
    again, state_after, _ = read_stream(lever_source(), config, state=state)
    assert sorted(r["id"] for r in again) == sorted([*touched, *boundary])  # the lower bound is inclusive
    assert state_after == {"updatedAt": str(max(o.updated_at for o in lever.opportunities))}
    (first_page, *_) = [path for _, path, _ in lever.requests if "/v1/opportunities" in path]
    assert f"updated_at_start={newest}" in first_page


def test_stream_failures_become_hub_errors(lever: LeverSimulator, tmp_path: Path) -> None:
    lever.faults = Faults(errors=10**6, only="/v1/opportunities")
    with pytest.raises(ManifestTransientError) as failed:
        read_stream(lever_source(impatient(LEVER, tmp_path)), lever_config(lever))
    assert is_transient(failed.value)  # the engine retries from the last checkpoint
    assert "503" in str(failed.value) and "opportunities" in str(failed.value)

    lever.faults = Faults()
    with pytest.raises(ManifestConfigError) as refused:
        read_stream(
            lever_source(),
            lever_config(lever, credentials={"auth_type": "Api Key", "api_key": "not-the-key-987"}),
        )
    assert not is_transient(refused.value)
    assert "not-the-key-987" not in str(refused.value)


def test_components_py_runs_only_for_manifests_a_plugin_ships(
    lever: LeverSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIRBYTE_ENABLE_UNSAFE_CODE", raising=False)
    source = lever_source(SHIPPED)
    config = {"base_url": f"{lever.url}/v1", "api_key": lever.api_key}
    users, _, _ = read_stream(source, config, "users")
    assert sorted(u["handle"] for u in users) == sorted("@" + u["username"] for u in lever.users)
    assert "AIRBYTE_ENABLE_UNSAFE_CODE" not in os.environ  # nothing process-wide was switched on
    assert "components" not in sys.modules and "source_declarative_manifest.components" not in sys.modules

    project_copy = tmp_path / "shipped.yaml"  # the same manifest, not a plugin's: refused
    shutil.copy(SHIPPED, project_copy)
    shutil.copy(SHIPPED.parent / "components.py", tmp_path / "components.py")
    with pytest.raises(ManifestError, match="custom Python components"):
        load_manifest(project_copy, trusted=False)


def test_printed_control_messages_go_to_the_call_whose_config_they_are(
    capsys: pytest.CaptureFixture[str],
) -> None:
    mine = ConfigCapture(
        {"base_url": "https://a", "credentials": {"refresh_token": "r1"}}, [("credentials",)]
    )
    other = ConfigCapture(
        {"base_url": "https://b", "credentials": {"refresh_token": "r1"}}, [("credentials",)]
    )

    def cdk_worker(base_url: str) -> None:  # the CDK prints from its own threads
        config = {"base_url": base_url, "credentials": {"refresh_token": "r2", "access_token": "t"}}
        message = {
            "type": "CONTROL",
            "control": {"type": "CONNECTOR_CONFIG", "connectorConfig": {"config": config}},
        }
        print(orjson.dumps(message).decode())

    with contained(mine), contained(other):
        for base_url in ("https://b", "https://nobody"):
            worker = threading.Thread(target=cdk_worker, args=(base_url,))
            worker.start()
            worker.join()
        print("hub's own output")
    assert mine.take() == []  # not mine, though it came from a thread that is not the other's
    (update,) = other.take()
    assert update["credentials"]["refresh_token"] == "r2"
    assert type(sys.stdout).__name__ != "_RoutingStdout"  # put back once no call is running
    assert capsys.readouterr().out == "hub's own output\n"


def test_cdk_prints_and_root_handler_stay_off_stdout(
    lever: LeverSimulator, capfd: pytest.CaptureFixture[str]
) -> None:
    lever.faults = Faults(throttle=1, retry_after=1)  # the CDK prints a RATE_LIMITED status on 429
    config = lever_config(lever, oauth_endpoint=f"{lever.url}/oauth/token")
    config["credentials"] = {
        "client_id": lever.client_id,
        "client_secret": lever.client_secret,
        "refresh_token": lever.current_refresh_token(),
    }
    records, _, messages = read_stream(lever_source(LEVER_OAUTH), config)  # and CONTROL on refresh
    assert len(records) == COUNT
    controls = [m for m in messages if m.type == Type.CONTROL]
    assert controls, "the rotated config comes out of read() as a CONTROL message"
    rotated = controls[-1].control.connectorConfig.config["credentials"]["refresh_token"]
    assert rotated == lever.current_refresh_token()
    assert config["credentials"]["refresh_token"] != rotated  # the caller's config was not written to
    captured = capfd.readouterr()
    assert captured.out == ""
    assert rotated not in captured.err
    root = logging.getLogger()
    assert not [h for h in root.handlers if type(h.formatter).__name__ == "AirbyteLogFormatter"]
    assert not [h for h in root.handlers if getattr(h, "stream", None) in (sys.stdout, sys.__stdout__)]
    assert ("GET", next(p for _, p, s in lever.requests if s == 429), 429) in lever.requests


def test_a_read_closed_early_releases_stdout_and_the_cdk_workers(
    lever: LeverSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    import queue

    import airbyte_cdk.sources.declarative.concurrent_declarative_source as cds

    # A small record queue, so the CDK's workers fill it long before the stream ends and
    # would wait on it for ever once nobody reads.
    monkeypatch.setattr(cds, "Queue", lambda maxsize=0: queue.Queue(maxsize=5))
    source = lever_source()
    config = lever_config(lever, page_size=10)
    messages = source.read(logging.getLogger("test"), config, catalog_of(source, config, "opportunities"), [])
    first = next(m for m in messages if m.type == Type.RECORD)
    assert first.record.stream == "opportunities"
    assert type(sys.stdout).__name__ == "_RoutingStdout"  # taken while the CDK may print
    messages.close()  # the consumer stops (e.g. a destination failed)
    assert type(sys.stdout).__name__ != "_RoutingStdout"
    deadline = time.monotonic() + 20
    while any(t.name.startswith("workerpool") for t in threading.enumerate()):
        assert time.monotonic() < deadline, "CDK worker threads were left running"
        time.sleep(0.05)


# -- configuration ---------------------------------------------------------------------------


def test_airbyte_manifest_connector_validates_config_with_the_manifest_spec(
    lever: LeverSimulator, tmp_path: Path, write_project
) -> None:
    shutil.copy(LEVER, tmp_path / "lever.yaml")

    def toml(config: str) -> str:
        return f"""
            [connectors.ats]
            plugin = "airbyte_manifest"
            [connectors.ats.config]
            {config}
        """

    with pytest.raises(ConfigurationError) as bad:
        Project(
            write_project(
                toml(
                    f"""manifest = "lever.yaml"
            base_url = "{lever.url}/v1"
            credentials = {{ auth_type = "Api Key", api_key = "plain-text-key" }}"""
                )
            )
        )
    found = {str(p) for p in bad.value.problems}
    assert "connectors.ats.config.start_date: required field is missing" in found
    assert any(
        p.startswith("connectors.ats.config.credentials.api_key: plaintext secret refused") for p in found
    )

    with pytest.raises(ConfigurationError) as missing:
        Project(write_project(toml('manifest = "nowhere.yaml"')))
    assert [p.path for p in missing.value.problems] == ["connectors.ats.config.manifest"]

    config = write_project(
        toml(
            f"""manifest = "lever.yaml"
            base_url = "{lever.url}/v1"
            start_date = "{START}"
            credentials = {{ auth_type = "Api Key", api_key = {{ secret = "lever-key" }} }}"""
        )
    )
    project = Project(config)
    project.set_secret("lever-key", lever.api_key)
    resolved = project.config_of("ats")
    assert resolved["manifest"] == str(tmp_path / "lever.yaml")
    assert resolved["credentials"]["api_key"] == lever.api_key
    source = project.source("ats")
    assert source.check(logging.getLogger("test"), resolved).status == Status.SUCCEEDED
    assert {s.name for s in source.discover(logging.getLogger("test"), resolved).streams} == {
        "opportunities",
        "users",
    }


def test_project_plugins_folder_manifests_become_connectors(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    shutil.copy(LEVER, plugins / "lever.yaml")
    (plugins / "broken.yaml").write_text("type: DeclarativeSource\nstreams: [\n", encoding="utf-8")
    (plugins / "notes.yml").write_text("just: some settings\n", encoding="utf-8")
    (plugins / "hollow.yaml").write_text(
        "version: 6.44.0\ntype: DeclarativeSource\ncheck: {type: CheckStream, stream_names: [x]}\n"
        "streams: [{type: DeclarativeStream, name: x}]\n"
        "spec: {type: Spec, connection_specification: {type: object}}\n",
        encoding="utf-8",
    )
    (plugins / "custom.yaml").write_text(
        SHIPPED.read_text(encoding="utf-8"), encoding="utf-8"
    )  # YAML only in a project: its class_name is refused

    registry = load_plugins(plugins, entry_points=False)
    connectors = collect_connectors(registry)
    lever = connectors["lever"]
    assert (lever.category, lever.description) == (
        "ats",
        "Lever Hiring opportunities and users (a YAML-only manifest)",
    )
    assert "notes" not in connectors
    failures = {f.name: f.error for f in registry.failures}
    assert set(failures) == {"broken", "hollow", "custom"}
    assert "not valid YAML" in failures["broken"] and "broken.yaml:3" in failures["broken"]
    assert "not a valid declarative manifest" in failures["hollow"]
    assert "custom Python components" in failures["custom"]


# -- end to end: hub.toml, the engine, SQLite ------------------------------------------------


def lever_project(
    tmp_path: Path,
    sim: LeverSimulator,
    *,
    manifest: Path = LEVER,
    credentials: str = '{ auth_type = "Api Key", api_key = { secret = "lever-api-key" } }',
    extra_config: str = "",
    chunk_size: int = 1000,
    max_retries: int | None = None,
) -> Path:
    """A project whose plugins folder holds the Lever manifest: opportunities -> Candidate -> SQLite."""
    (tmp_path / "plugins").mkdir(exist_ok=True)
    if max_retries is not None:
        manifest = impatient(manifest, tmp_path / "variants", max_retries)
    shutil.copy(manifest, tmp_path / "plugins" / "lever.yaml")
    (tmp_path / "mappings").mkdir(exist_ok=True)
    (tmp_path / "mappings" / "lever_candidates.yaml").write_text(MAPPING, encoding="utf-8")
    config = tmp_path / "hub.toml"
    config.write_text(
        textwrap.dedent(
            f"""\
            [hub]
            plugins_dir = "plugins"
            chunk_size = {chunk_size}

            [connectors.lever]
            plugin = "lever"
            [connectors.lever.config]
            base_url = "{sim.url}/v1"
            start_date = "{START}"
            backoff_factor = 0.01
            credentials = {credentials}
            {extra_config}

            [connectors.hr]
            plugin = "sql"
            [connectors.hr.config]
            url = "sqlite:///hr.db"

            [pipelines.lever_to_hr]
            source = "lever"
            streams = [{{ name = "opportunities", sync_mode = "incremental", mapping = "mappings/lever_candidates.yaml" }}]
            destinations = ["hr"]
            """
        ),
        encoding="utf-8",
    )
    return config


def candidates(tmp_path: Path) -> dict[str, dict[str, Any]]:
    with sqlite3.connect(tmp_path / "hr.db") as conn:
        conn.row_factory = sqlite3.Row
        rows = [dict(r) for r in conn.execute('SELECT * FROM "Candidate"')]
    by_id = {r["remote_id"]: r for r in rows}
    assert len(by_id) == len(rows), "a remote id was written twice"
    return by_id


def test_acceptance_yaml_only_manifest_in_plugins_folder_syncs_a_new_ats(
    lever: LeverSimulator, tmp_path: Path
) -> None:
    """A manifest hub does not ship, YAML only, in the plugins folder: Lever -> Candidate -> SQLite."""
    config = lever_project(tmp_path, lever)
    Project(config).set_secret("lever-api-key", lever.api_key)

    assert Project(config).connector_of("lever").category == "ats"
    first = run_cli(["sync", "lever_to_hr", "--json"], config)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["counts"] | {"read": COUNT} == {
        "read": COUNT,
        "inserted": COUNT,
        "updated": 0,
        "unchanged": 0,
        "rejected": 0,
    }

    rows = candidates(tmp_path)
    assert set(rows) == {o.id for o in lever.opportunities}
    some = lever.opportunities[7]
    row = rows[some.id]
    assert row["current_title"] == f"{some.person.company}, {some.person.school}"
    assert row["custom_fields"].startswith("hub1.")  # names and contacts sealed, per the schema
    stored = (tmp_path / "hr.db").read_bytes()
    for opportunity in lever.opportunities:
        assert opportunity.person.email.encode() not in stored
        assert opportunity.person.name.encode() not in stored
        assert opportunity.person.phone[-8:].encode() not in stored

    project = Project(config)
    with project.db.session() as session:
        saved = session.get(StreamState, ("lever_to_hr", "opportunities"))
        assert saved is not None
    newest = max(o.updated_at for o in lever.opportunities)
    assert saved.state["source"] == {"updatedAt": str(newest)}

    touched = [o for o in lever.opportunities if o.updated_at != newest][:2]
    lever.touch(*(o.id for o in touched))
    boundary = [o for o in lever.opportunities if o.updated_at == newest]
    lever.requests.clear()
    second = Sync(project, "lever_to_hr").run()
    assert second.status == "succeeded", second.error
    assert second.counts.read == len(touched) + len(boundary)
    assert (second.counts.inserted, second.counts.updated) == (0, len(touched))
    assert second.counts.unchanged == len(boundary)  # boundary repeats write nothing
    assert any(f"updated_at_start={newest}" in path for _, path, _ in lever.requests)
    after = candidates(tmp_path)
    assert len(after) == COUNT
    for opportunity in touched:
        assert after[opportunity.id]["remote_updated_at"] != rows[opportunity.id]["remote_updated_at"]


def test_interrupted_sync_then_rerun_loses_and_duplicates_nothing(
    lever: LeverSimulator, tmp_path: Path
) -> None:
    config = lever_project(
        tmp_path, lever, extra_config="page_size = 10\nslice_days = 5", chunk_size=15, max_retries=0
    )
    project = Project(config)
    project.set_secret("lever-api-key", lever.api_key)
    lever.rate_limit = None  # the engine's retries below would spend their time in 429 waits
    lever.outage_after(pages=9)  # then 503 for good: the CDK gives up, then the engine does

    failed = Sync(project, "lever_to_hr", sleep=lambda _: None).run()
    assert failed.status == "failed"
    assert "503" in (failed.error or "") and "kept failing" in (failed.error or "")
    committed = candidates(tmp_path)
    assert 0 < len(committed) < COUNT
    with project.db.session() as session:
        retries = session.execute(
            sa.select(RunEvent).where(RunEvent.run_id == failed.run_id, RunEvent.kind == "retry")
        ).all()
        checkpoint = session.get(StreamState, ("lever_to_hr", "opportunities"))
    assert len(retries) == 4  # retried from the last checkpoint, then gave up
    assert checkpoint is not None and checkpoint.state["source"]

    lever.end_outage()
    rerun = Sync(project, "lever_to_hr").run()
    assert rerun.status == "succeeded", rerun.error
    rows = candidates(tmp_path)
    assert set(rows) == {o.id for o in lever.opportunities}  # nothing lost, no key twice
    assert failed.counts.inserted + rerun.counts.inserted == COUNT  # nothing written twice
    assert rerun.counts.updated == 0


def test_429_with_retry_after_is_honoured(lever: LeverSimulator, tmp_path: Path) -> None:
    config = lever_project(tmp_path, lever)
    project = Project(config)
    project.set_secret("lever-api-key", lever.api_key)
    lever.faults = Faults(throttle=3, retry_after=1)

    started = time.monotonic()
    result = Sync(project, "lever_to_hr").run()
    assert result.status == "succeeded", result.error
    assert len(candidates(tmp_path)) == COUNT
    statuses = [status for method, path, status in lever.requests if "/v1/opportunities" in path]
    assert statuses[:3] == [429, 429, 429] and set(statuses[3:]) == {200}
    assert time.monotonic() - started >= 1.0  # Retry-After: 1 was waited for


def test_rotated_refresh_token_is_saved_as_a_secret(lever: LeverSimulator, tmp_path: Path) -> None:
    first_token = lever.current_refresh_token()
    config = lever_project(
        tmp_path,
        lever,
        manifest=LEVER_OAUTH,
        credentials=(
            f'{{ auth_type = "Client", client_id = "{lever.client_id}", '
            'client_secret = { secret = "lever-client-secret" }, refresh_token = { secret = "lever-refresh" } }'
        ),
        extra_config=f'oauth_endpoint = "{lever.url}/oauth/token"',
    )
    project = Project(config)
    project.set_secret("lever-client-secret", lever.client_secret)
    project.set_secret("lever-refresh", first_token)

    synced = run_cli(["sync", "lever_to_hr", "--json"], config)
    assert synced.returncode == 0, synced.stderr
    assert json.loads(synced.stdout)["counts"]["inserted"] == COUNT  # stdout: only hub's summary
    rotated = lever.current_refresh_token()
    assert rotated != first_token
    for stream in (synced.stdout, synced.stderr):
        assert "CONTROL" not in stream and rotated not in stream

    project = Project(config)
    assert project.get_secret("lever-refresh") == rotated
    with project.db.session() as session:
        events = [
            e.message
            for (e,) in session.execute(sa.select(RunEvent).where(RunEvent.kind == "config.rotated"))
        ]
        audit = [
            a.action
            for (a,) in session.execute(sa.select(AuditEntry).where(AuditEntry.target == "lever-refresh"))
        ]
    assert events == ["rotated secret lever-refresh (connectors.lever.config.credentials.refresh_token)"]
    assert audit == ["secret.set", "secret.rotated"]

    lever.touch(lever.opportunities[0].id)
    again = Sync(project, "lever_to_hr").run()  # works only with the saved, rotated token
    assert again.status == "succeeded", again.error
    assert project.get_secret("lever-refresh") == lever.current_refresh_token() != rotated

    before_check = lever.current_refresh_token()  # check rotates the token too: kept as well
    checked = project.source("lever").check(logging.getLogger("test"), project.config_of("lever"))
    assert checked.status == Status.SUCCEEDED
    assert project.get_secret("lever-refresh") == lever.current_refresh_token() != before_check


def test_rotated_token_from_an_environment_variable_gets_a_warning(
    lever: LeverSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEVER_REFRESH", lever.current_refresh_token())
    monkeypatch.setenv("LEVER_CLIENT_SECRET", lever.client_secret)
    config = lever_project(
        tmp_path,
        lever,
        manifest=LEVER_OAUTH,
        credentials=(
            f'{{ auth_type = "Client", client_id = "{lever.client_id}", '
            'client_secret = { env = "LEVER_CLIENT_SECRET" }, refresh_token = { env = "LEVER_REFRESH" } }'
        ),
        extra_config=f'oauth_endpoint = "{lever.url}/oauth/token"',
    )
    project = Project(config)
    result = Sync(project, "lever_to_hr").run()
    assert result.status == "succeeded", result.error
    with project.db.session() as session:
        (event,) = session.execute(sa.select(RunEvent).where(RunEvent.kind == "config.rotated")).scalars()
    assert event.level == "warning"
    assert "LEVER_REFRESH" in event.message and "hub secrets set" in event.message
    assert lever.current_refresh_token() not in event.message
