"""hub.toml: every problem at once with its TOML path, secret references, path resolution."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from airbyte_cdk.models import AirbyteCatalog, AirbyteConnectionStatus, ConnectorSpecification, Status
from airbyte_cdk.sources.source import Source

from hub.config import load_settings
from hub.connectors import Connector
from hub.engine import Sync
from hub.errors import ConfigurationError
from hub.plugins import load_plugins
from hub.project import Project, collect_connectors
from tests.conftest import files_to_sql_toml, run_cli

PLAINTEXT = "hunter2-do-not-print"


@pytest.fixture(scope="module")
def connectors() -> dict[str, Connector]:
    """The built-in connectors, as ``hub`` itself sees them."""
    return collect_connectors(load_plugins(entry_points=False))


def problems_of(config: Path, connectors: Mapping[str, Connector]) -> dict[str, str]:
    """``{toml path: message}`` of every problem in ``config`` (which must have some)."""
    with pytest.raises(ConfigurationError) as info:
        load_settings(config, connectors)
    assert info.value.source == str(config.resolve())
    return {p.path: p.message for p in info.value.problems}


def people_csv(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "people.csv"
    path.write_text("id,name\nE1,Ann\nE2,Bo\n", encoding="utf-8")
    return path


# -- 1. every problem at once -----------------------------------------------------------------

BROKEN = f"""
[hub]
database = "sqlite:///hub.db"

[connectors.x]
plugin = "nonesuch"

[connectors.src]
plugin = "files"
[connectors.src.config]
stream = "people"

[connectors.dst]
plugin = "sql"
[connectors.dst.config]
url = "sqlite:///hr.db"
password = "{PLAINTEXT}"

[pipelines.load]
source = "src"
streams = ["people"]
destinations = ["dst"]
"""


@pytest.mark.parametrize("command", [["config", "check"], ["sync", "load"]])
def test_every_problem_is_reported_once_with_its_path(write_project, command: list[str]) -> None:
    config = write_project(BROKEN)
    result = run_cli(command, config)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("configuration error") == 1
    assert str(config) in "".join(result.stderr.split())
    text = " ".join(result.stderr.split())  # rich may wrap long lines
    assert "- connectors.x.plugin: unknown connector 'nonesuch'" in text
    assert "- connectors.src.config.path: required field is missing" in text
    assert "- connectors.dst.config.password: plaintext secret refused" in text
    assert PLAINTEXT not in result.stdout + result.stderr
    assert not (config.parent / "hub.db").exists(), "nothing runs on a bad hub.toml"


def test_problems_are_collected_not_raised_one_by_one(write_project, connectors) -> None:
    found = problems_of(write_project(BROKEN), connectors)
    assert set(found) == {
        "connectors.x.plugin",
        "connectors.src.config.path",
        "connectors.dst.config.password",
    }
    assert (
        "files" in found["connectors.x.plugin"] and "sql" in found["connectors.x.plugin"]
    )  # known ones named
    assert PLAINTEXT not in "".join(found.values())


# -- 2. secret references ------------------------------------------------------------------------


def sql_dst_toml(tmp_path: Path, password: str, url: str = "sqlite:///hr.db") -> str:
    return files_to_sql_toml(people_csv(tmp_path), url).replace(
        f'url = "{url}"', f'url = "{url}"\npassword = {password}'
    )


def test_env_reference_resolves_late_and_names_its_path_when_unset(
    tmp_path: Path, write_project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HR_DB_PASSWORD", raising=False)
    config = write_project(sql_dst_toml(tmp_path, '{ env = "HR_DB_PASSWORD" }'))
    project = Project(config)  # validation does not need the value
    with pytest.raises(ConfigurationError) as info:
        project.config_of("dst")
    assert [(p.path, p.message) for p in info.value.problems] == [
        ("connectors.dst.config.password", "environment variable HR_DB_PASSWORD is not set")
    ]

    monkeypatch.setenv("HR_DB_PASSWORD", "from-the-env")
    assert project.config_of("dst")["password"] == "from-the-env"
    assert project.settings.connectors["dst"].config["password"] == {"env": "HR_DB_PASSWORD"}


def test_missing_env_var_fails_the_run_with_the_path(
    tmp_path: Path, write_project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HUB_TEST_UNSET_PASSWORD", raising=False)
    config = write_project(sql_dst_toml(tmp_path, '{ env = "HUB_TEST_UNSET_PASSWORD" }'))
    result = Sync(Project(config), "load").run()
    assert result.status == "failed"
    assert result.exit_code == 1
    assert "connectors.dst.config.password: environment variable HUB_TEST_UNSET_PASSWORD is not set" in str(
        result.error
    )


def test_stored_secret_is_encrypted_listed_by_name_and_resolved(tmp_path: Path, write_project) -> None:
    value = "Xq9-stored-secret-value"
    config = write_project(sql_dst_toml(tmp_path, '{ secret = "hr_db" }'))

    stored = run_cli(["secrets", "set", "hr_db", "--from-stdin"], config, input=value + "\n")
    assert stored.returncode == 0, stored.stderr
    listed = run_cli(["secrets", "list", "--json"], config)
    assert listed.returncode == 0, listed.stderr
    assert [row["name"] for row in json.loads(listed.stdout)] == ["hr_db"]
    for output in (stored, listed):
        assert value not in output.stdout + output.stderr

    db_files = list(tmp_path.glob("hub.db*")) + list((tmp_path / ".hub").glob("hub.db*"))
    assert db_files, "the secret went to hub's database"
    for file in db_files:
        assert value.encode() not in file.read_bytes(), f"{file.name} holds the plaintext"

    assert Project(config).config_of("dst")["password"] == value


def test_unknown_stored_secret_is_a_clear_error(tmp_path: Path, write_project) -> None:
    project = Project(write_project(sql_dst_toml(tmp_path, '{ secret = "never_set" }')))
    with pytest.raises(ConfigurationError) as info:
        project.config_of("dst")
    assert [p.path for p in info.value.problems] == ["connectors.dst.config.password"]
    assert "never_set" in info.value.problems[0].message


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ('{ env = "A", secret = "B" }', "a secret reference is"),
        ('{ vault = "x" }', "must be of type string"),
    ],
)
def test_malformed_secret_reference(
    tmp_path: Path, write_project, connectors, reference: str, message: str
) -> None:
    found = problems_of(write_project(sql_dst_toml(tmp_path, reference)), connectors)
    assert message in found["connectors.dst.config.password"]


def test_url_with_embedded_password_is_refused(tmp_path: Path, write_project, connectors) -> None:
    url = f"postgresql+psycopg://hr:{PLAINTEXT}@db.internal/hr"
    found = problems_of(write_project(files_to_sql_toml(people_csv(tmp_path), url)), connectors)
    assert "plaintext password" in found["connectors.dst.config.url"]
    assert PLAINTEXT not in "".join(found.values())


def test_database_url_with_embedded_password_is_refused(tmp_path: Path, write_project, connectors) -> None:
    body = files_to_sql_toml(
        people_csv(tmp_path), "sqlite:///hr.db", hub_db=f"mysql+pymysql://hub:{PLAINTEXT}@db/hub"
    )
    found = problems_of(write_project(body), connectors)
    assert "HUB_DATABASE_URL" in found["hub.database"]
    assert PLAINTEXT not in "".join(found.values())


class OpenSpecSource(Source):
    """A source whose spec accepts any key (as many third-party connectors' do)."""

    def spec(self, logger: logging.Logger) -> ConnectorSpecification:
        return ConnectorSpecification(connectionSpecification={"type": "object", "properties": {}})

    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        return AirbyteConnectionStatus(status=Status.SUCCEEDED)

    def discover(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteCatalog:
        return AirbyteCatalog(streams=[])

    def read(
        self, logger: logging.Logger, config: Mapping[str, Any], catalog: Any, state: Any = None
    ) -> Iterator[Any]:
        yield from ()


def test_secret_named_key_is_refused_even_when_the_spec_does_not_declare_it(
    write_project, connectors
) -> None:
    known = {**connectors, "open": Connector(name="open", category="ats", source=OpenSpecSource)}
    config = write_project(
        f"""
        [connectors.ats]
        plugin = "open"
        [connectors.ats.config]
        tenant = "acme"
        api_key = "{PLAINTEXT}"
        client_secret = {{ env = "ATS_CLIENT_SECRET" }}
        """
    )
    found = problems_of(config, known)
    assert list(found) == ["connectors.ats.config.api_key"]
    assert "plaintext secret refused" in found["connectors.ats.config.api_key"]


# -- 3. other validation -------------------------------------------------------------------------

PIPELINE = """
[connectors.src]
plugin = "files"
[connectors.src.config]
path = "people.csv"

[connectors.dst]
plugin = "sql"
[connectors.dst.config]
url = "sqlite:///hr.db"
"""


def pipeline(
    source: str = '"src"', streams: str = '["people"]', destinations: str = '["dst"]', extra: str = ""
) -> str:
    """The two connectors plus a ``[pipelines.p]`` table with these (TOML) values."""
    return (
        PIPELINE
        + f"[pipelines.p]\nsource = {source}\nstreams = {streams}\ndestinations = {destinations}\n{extra}"
    )


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        ('[hub]\ncolour = "blue"\n' + PIPELINE, "hub.colour", "unknown key"),
        ('[hub]\ntimezone = "Mars/Olympus_Mons"\n' + PIPELINE, "hub.timezone", "unknown time zone"),
        ("[hub]\nchunk_size = 0\n" + PIPELINE, "hub.chunk_size", "positive integer"),
        ('[hub]\nplugins_dir = "no_such_dir"\n' + PIPELINE, "hub.plugins_dir", "directory not found"),
        ('[hubb]\ndatabase = "x"\n' + PIPELINE, "hubb", "unknown table"),
        (pipeline(extra='shedule = "0 6 * * *"'), "pipelines.p.shedule", "unknown key"),
        (
            pipeline(destinations='["nowhere"]'),
            "pipelines.p.destinations[0]",
            "no [connectors.nowhere] table",
        ),
        (pipeline(source='"ghost"'), "pipelines.p.source", "no [connectors.ghost] table"),
        (
            pipeline(source='"dst"', destinations='["src"]'),
            "pipelines.p.destinations[0]",
            "connector 'files' cannot act as a destination",
        ),
        (pipeline(streams="[]"), "pipelines.p.streams", "non-empty list"),
        (
            pipeline(streams='[{ name = "people", sync_mode = "cdc" }]'),
            "pipelines.p.streams[0].sync_mode",
            "one of",
        ),
        (pipeline(extra='chunk_size = "big"'), "pipelines.p.chunk_size", "positive integer"),
        (pipeline(destinations="3"), "pipelines.p.destinations", "connector name or a list"),
        ('pipelines = { p = "src -> dst" }\n' + PIPELINE, "pipelines.p", "must be a table"),
        (
            '[connectors.src]\nplugin = "files"\nconfig = "a.csv"\n',
            "connectors.src.config",
            "must be a table",
        ),
        (
            '[connectors.src]\nplugin = "files"\nconfig = { path = 3 }\n',
            "connectors.src.config.path",
            "type string",
        ),
        (
            '[connectors.src]\nconfig = { path = "a.csv" }\n',
            "connectors.src.plugin",
            "required field is missing",
        ),
        (
            '[connectors.src]\nplugin = "files"\nconfig = { path = "a.csv", sheets = "x" }\n',
            "connectors.src.config",
            "'sheets' was unexpected",
        ),
    ],
)
def test_invalid_hub_toml(write_project, connectors, body: str, path: str, message: str) -> None:
    found = problems_of(write_project(body), connectors)
    assert path in found, found
    assert message in found[path]


def test_valid_hub_toml_has_no_problems(tmp_path: Path, write_project, connectors) -> None:
    (tmp_path / "plugins").mkdir()
    body = '[hub]\ntimezone = "Europe/Berlin"\nplugins_dir = "plugins"\n'
    body += pipeline(streams='[{ name = "people", primary_key = "id" }]', destinations='"dst"')
    settings = load_settings(write_project(body), connectors)
    assert settings.timezone == "Europe/Berlin"
    assert settings.plugins_dir == tmp_path / "plugins"
    assert settings.pipelines["p"].destinations == ("dst",)
    assert settings.pipelines["p"].streams[0].primary_key == ("id",)


def test_toml_syntax_error_exits_2_naming_the_file(write_project) -> None:
    config = write_project('[hub]\ntimezone = "Asia/Shanghai\n')
    result = run_cli(["config", "check"], config)
    assert result.returncode == 2
    assert "configuration error" in result.stderr
    assert str(config) in "".join(result.stderr.split())
    assert "line 2" in result.stderr


def test_relative_paths_resolve_against_hub_toml_not_the_cwd(
    tmp_path: Path, write_project, connectors, monkeypatch: pytest.MonkeyPatch
) -> None:
    project_dir = tmp_path / "project"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    people_csv(project_dir / "data")
    body = files_to_sql_toml(Path("data/people.csv"), "sqlite:///out/hr.db", hub_db="sqlite:///state/hub.db")
    (project_dir / "hub.toml").write_text(body, encoding="utf-8")
    (project_dir / "out").mkdir()

    monkeypatch.chdir(elsewhere)
    settings = load_settings(Path("../project/hub.toml"), connectors)
    assert settings.connectors["src"].config["path"] == str(project_dir / "data" / "people.csv")
    assert settings.connectors["dst"].config["url"] == f"sqlite:///{project_dir / 'out' / 'hr.db'}"
    assert settings.database == f"sqlite:///{project_dir / 'state' / 'hub.db'}"
    assert settings.keys["file"] == str(project_dir / ".hub" / "master.key")

    result = Sync(Project(Path("../project/hub.toml")), "load").run()
    assert result.status == "succeeded", result.error
    assert result.counts.inserted == 2
    assert (project_dir / "out" / "hr.db").is_file()
    assert (project_dir / "state" / "hub.db").is_file()
    assert list(elsewhere.iterdir()) == [], "nothing is written relative to the cwd"
