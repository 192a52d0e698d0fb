"""CLI commands not covered elsewhere: connectors list / discover, db upgrade, help."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import files_to_sql_toml, run_cli
from tests.datagen import HEADER, write_people_csv


def test_connectors_list_and_discover(tmp_path: Path, write_project) -> None:
    source = tmp_path / "people.csv"
    write_people_csv(source, 5)
    config = write_project(
        files_to_sql_toml(source, f"sqlite:///{tmp_path / 'hr.db'}", columns={"hire_date": "date"})
    )
    listed = json.loads(run_cli(["connectors", "list", "--json"], config).stdout)
    assert {(c["name"], c["plugin"]) for c in listed} == {("src", "files"), ("dst", "sql")}

    found = run_cli(["connectors", "discover", "src", "--json"], config)
    assert found.returncode == 0, found.stderr
    catalog = json.loads(found.stdout)
    (stream,) = catalog["streams"]
    assert stream["name"] == "people"
    assert list(stream["json_schema"]["properties"]) == HEADER
    assert stream["json_schema"]["properties"]["hire_date"]["format"] == "date"
    assert stream["source_defined_primary_key"] == [["id"]]

    table = run_cli(["connectors", "discover", "src"], config)
    assert "people" in table.stdout and "full_refresh, incremental" in table.stdout
    assert run_cli(["connectors", "check", "src"], config).returncode == 0


def test_db_upgrade_and_help(tmp_path: Path, write_project) -> None:
    source = tmp_path / "people.csv"
    write_people_csv(source, 1)
    config = write_project(files_to_sql_toml(source, f"sqlite:///{tmp_path / 'hr.db'}"))
    upgraded = run_cli(["db", "upgrade"], config)
    assert upgraded.returncode == 0 and "database at revision" in upgraded.stdout
    helped = run_cli(["--help"], config)
    assert helped.returncode == 0
    for command in ("sync", "runs", "logs", "deadletters", "scheduler", "schedules", "plugins", "secrets"):
        assert command in helped.stdout
    assert run_cli(["no-such-command"], config).returncode == 2
