"""Plugins: built-ins, the ``hub`` entry-point group, a project plugins directory, and the hooks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hub.errors import PluginError
from hub.plugins import PluginRegistry, load_plugins
from hub.project import Project, collect_connectors, collect_transforms
from tests.conftest import files_to_sql_toml, run_cli

FIXTURES = Path(__file__).parent / "plugins"
PROJECT_PLUGINS = FIXTURES / "project_plugins"
BUILT_INS = {"hub.default_keys", "hub.transforms", "hub_files", "hub_sql"}


def builtin_connectors() -> set[str]:
    """The connectors hub ships (built-in plugins only)."""
    return set(collect_connectors(load_plugins(None, entry_points=False)))


def plugins_dir(tmp_path: Path, *names: str) -> Path:
    """A project plugins directory holding copies of the named fixture plugins."""
    directory = tmp_path / "plugins"
    directory.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(PROJECT_PLUGINS / f"{name}.py", directory / f"{name}.py")
    return directory


def failures(registry: PluginRegistry) -> dict[str, str]:
    return {f.name: f.error for f in registry.failures}


def plugins_json(config: Path, **kwargs: Any) -> dict[str, Any]:
    result = run_cli(["plugins", "--json"], config, **kwargs)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def files_to_sql_project(tmp_path: Path, *plugins: str, rows: list[str] | None = None) -> Path:
    """A project with a files -> sql pipeline ``load`` and the named project plugins."""
    plugins_dir(tmp_path, *plugins)
    csv = tmp_path / "people.csv"
    csv.write_text("id,name\n" + "\n".join(rows or ["E1,Ann", "E2,Bo"]) + "\n", encoding="utf-8")
    body = files_to_sql_toml(csv, "sqlite:///hr.db", required=["name"])
    config = tmp_path / "hub.toml"
    config.write_text(body.replace("[hub]\n", '[hub]\nplugins_dir = "plugins"\n', 1), encoding="utf-8")
    return config


def target_ids(tmp_path: Path) -> list[str]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'hr.db'}")
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(sa.text("SELECT id FROM people ORDER BY id"))]
    engine.dispose()
    return ids


# -- 4. built-ins -------------------------------------------------------------------------------


def test_plugins_json_lists_builtin_connectors_with_categories(tmp_path: Path) -> None:
    data = plugins_json(tmp_path / "hub.toml")  # no hub.toml: built-ins only
    connectors = {c["name"]: c for c in data["connectors"]}
    assert connectors["files"]["category"] == "generic"
    assert (connectors["files"]["source"], connectors["files"]["destination"]) == (True, False)
    assert connectors["sql"]["category"] == "hris"
    assert (connectors["sql"]["source"], connectors["sql"]["destination"]) == (True, True)
    origins = {p["name"]: p["origin"] for p in data["plugins"]}
    assert {name: origins[name] for name in BUILT_INS} == dict.fromkeys(BUILT_INS, "built-in")
    assert {"trim", "nfkc"} <= set(data["transforms"])
    assert data["failed"] == []


# -- 5. an installed package, through the ``hub`` entry-point group -------------------------------


@pytest.fixture(scope="module")
def example_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/plugins/hub_example_plugin, pip-installed into a directory of its own."""
    root = tmp_path_factory.mktemp("example_plugin")
    source = shutil.copytree(FIXTURES / "hub_example_plugin", root / "src")
    target = root / "site"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert (target / "hub_example_plugin" / "__init__.py").is_file()
    return target


@pytest.fixture
def example_on_path(example_site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The example package importable (and its entry points visible) in this process."""
    monkeypatch.syspath_prepend(str(example_site))
    yield
    for name in [m for m in sys.modules if m.split(".")[0] == "hub_example_plugin"]:
        del sys.modules[name]


def test_entry_point_plugin_is_listed_with_its_origin(tmp_path: Path, example_site: Path) -> None:
    path = os.pathsep.join(filter(None, [str(example_site), os.environ.get("PYTHONPATH")]))
    data = plugins_json(tmp_path / "hub.toml", env={"PYTHONPATH": path})
    plugins = {p["name"]: p for p in data["plugins"]}
    assert plugins["example"]["origin"] == "entry point of hub-example-plugin"
    assert plugins["example"]["hooks"] == ["hub_register_connectors"]
    connectors = {c["name"]: c for c in data["connectors"]}
    assert connectors["example"]["category"] == "ats"
    assert connectors["example"]["source"] is True
    assert {"files", "sql"} <= set(connectors)
    # The package's second entry point fails to import: reported, and the rest loads.
    assert data["failed"] == [
        {
            "name": "example_broken",
            "origin": "entry point of hub-example-plugin",
            "error": "ImportError: example_broken needs the 'nonexistent_sdk' package",
        }
    ]


def test_entry_point_plugins_can_be_disabled(example_on_path: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "example" in collect_connectors(load_plugins())
    monkeypatch.setenv("HUB_DISABLE_PLUGINS", "example, example_broken")
    registry = load_plugins()
    assert "example" not in collect_connectors(registry)
    assert registry.failures == []


def test_broken_entry_point_is_fatal_when_strict(
    example_on_path: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUB_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="plugin 'example_broken' from entry point of hub-example-plugin"):
        load_plugins()
    monkeypatch.setenv("HUB_DISABLE_PLUGINS", "example_broken")
    assert "example" in collect_connectors(load_plugins())


# -- 6. a plugin that raises on import ------------------------------------------------------------


def test_broken_project_plugin_is_reported_and_the_rest_loads(tmp_path: Path) -> None:
    directory = plugins_dir(tmp_path, "broken", "extra")
    registry = load_plugins(directory, entry_points=False)
    assert failures(registry) == {"broken": "RuntimeError: broken plugin: cannot reach the licence server"}
    assert registry.failures[0].origin == str(directory / "broken.py")
    assert registry.origins["extra"] == str(directory / "extra.py")
    assert set(collect_connectors(registry)) == {"extra", *builtin_connectors()}
    assert "hub_project_plugin_broken" not in sys.modules


def test_broken_project_plugin_does_not_stop_a_sync(tmp_path: Path) -> None:
    config = files_to_sql_project(tmp_path, "broken")
    data = plugins_json(config)
    assert [(f["name"], f["error"]) for f in data["failed"]] == [
        ("broken", "RuntimeError: broken plugin: cannot reach the licence server")
    ]
    assert {"files", "sql"} <= {c["name"] for c in data["connectors"]}

    result = run_cli(["sync", "load", "--json"], config)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "succeeded"
    assert target_ids(tmp_path) == ["E1", "E2"]


def test_strict_plugins_make_a_broken_plugin_fatal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = files_to_sql_project(tmp_path, "broken")
    result = run_cli(["sync", "load"], config, env={"HUB_STRICT_PLUGINS": "1"})
    assert result.returncode == 2
    assert "plugin 'broken'" in result.stderr
    assert "licence server" in result.stderr
    assert not (tmp_path / "hr.db").exists()

    monkeypatch.setenv("HUB_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match=r"plugin 'broken' from .*broken\.py failed to load"):
        load_plugins(tmp_path / "plugins", entry_points=False)


# -- 7. misspelt hooks, invalid hookimpls, disabling -----------------------------------------------


def test_misspelt_hook_is_refused_and_the_rest_loads(tmp_path: Path) -> None:
    registry = load_plugins(plugins_dir(tmp_path, "misspelt", "extra"), entry_points=False)
    errors = failures(registry)
    assert list(errors) == ["misspelt"]
    assert errors["misspelt"].startswith("PluginValidationError: ")
    assert "hub_register_conectors" in errors["misspelt"]
    assert not registry.pm.has_plugin("misspelt")
    assert "misspelt" not in registry.origins
    assert set(collect_connectors(registry)) == {"extra", *builtin_connectors()}


def test_hookimpl_with_arguments_the_hookspec_lacks_is_refused(tmp_path: Path) -> None:
    registry = load_plugins(plugins_dir(tmp_path, "badargs", "extra"), entry_points=False)
    errors = failures(registry)
    assert list(errors) == ["badargs"]
    assert "channel" in errors["badargs"]
    assert not registry.pm.has_plugin("badargs")
    assert "extra" in collect_connectors(registry)


def test_registration_hook_that_raises_is_reported_and_unregistered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = plugins_dir(tmp_path, "badcategory", "extra")
    registry = load_plugins(directory, entry_points=False)
    assert set(collect_connectors(registry)) == {"extra", *builtin_connectors()}
    assert failures(registry) == {
        "badcategory": "ValueError: connector 'workday': unknown category 'payroll'"
    }
    assert registry.failures[0].origin == str(directory / "badcategory.py")
    assert not registry.pm.has_plugin("badcategory")
    assert {"trim", "nfkc"} <= set(collect_transforms(registry))

    monkeypatch.setenv("HUB_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="badcategory"):
        collect_connectors(load_plugins(directory, entry_points=False))


def test_registration_hook_returning_the_wrong_thing_is_reported(tmp_path: Path) -> None:
    directory = plugins_dir(tmp_path)
    (directory / "sloppy.py").write_text(
        "import hub\n\n\n@hub.hookimpl\ndef hub_register_transforms():\n    return ['upper']\n",
        encoding="utf-8",
    )
    registry = load_plugins(directory, entry_points=False)
    assert {"trim", "nfkc"} <= set(collect_transforms(registry))
    assert failures(registry) == {
        "sloppy": "TypeError: hub_register_transforms returned a str, not a Transform"
    }


def test_project_plugin_cannot_take_a_loaded_plugins_name(tmp_path: Path) -> None:
    directory = plugins_dir(tmp_path)
    shutil.copy(PROJECT_PLUGINS / "extra.py", directory / "hub_sql.py")
    registry = load_plugins(directory, entry_points=False)
    assert failures(registry) == {
        "hub_sql": "PluginError: a plugin named 'hub_sql' is already loaded from built-in"
    }
    assert registry.origins["hub_sql"] == "built-in"
    assert "extra" not in collect_connectors(registry)


def test_disabled_plugins_are_not_imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = plugins_dir(tmp_path, "broken", "extra", "lifecycle")
    monkeypatch.setenv("HUB_DISABLE_PLUGINS", "broken,extra,hub_sql")
    registry = load_plugins(directory, entry_points=False)
    assert registry.failures == []  # broken.py was never imported, so it could not fail
    assert set(collect_connectors(registry)) == builtin_connectors() - {"sql"}
    assert registry.pm.has_plugin("lifecycle")
    for name in ("broken", "extra", "hub_sql"):
        assert registry.pm.is_blocked(name)
        assert registry.origins[name] == "blocked by HUB_DISABLE_PLUGINS"


# -- 8. duplicate names -------------------------------------------------------------------------


def test_duplicate_connector_names_are_a_plugin_error(tmp_path: Path) -> None:
    registry = load_plugins(plugins_dir(tmp_path, "dup_one", "dup_two"), entry_points=False)
    with pytest.raises(
        PluginError, match=r"two plugins register a connector named 'workday': dup_\w+ and dup_\w+"
    ):
        collect_connectors(registry)


def test_connector_named_like_a_builtin_is_a_plugin_error(tmp_path: Path) -> None:
    directory = plugins_dir(tmp_path)
    (directory / "myfiles.py").write_text(
        (PROJECT_PLUGINS / "extra.py").read_text(encoding="utf-8").replace('name="extra"', 'name="files"'),
        encoding="utf-8",
    )
    with pytest.raises(PluginError, match="connector named 'files'"):
        collect_connectors(load_plugins(directory, entry_points=False))


def test_duplicate_connector_names_exit_2(tmp_path: Path) -> None:
    config = files_to_sql_project(tmp_path, "dup_one", "dup_two")
    result = run_cli(["config", "check"], config)
    assert result.returncode == 2, result.stderr
    assert "plugin error: two plugins register a connector named 'workday'" in result.stderr


# -- 9. lifecycle hooks -------------------------------------------------------------------------


def test_lifecycle_hooks_fire_with_run_id_and_counts(tmp_path: Path) -> None:
    config = files_to_sql_project(tmp_path, "lifecycle", rows=["E1,Ann", "E2,", "E3,Cy"])
    result = run_cli(["sync", "load", "--json"], config)
    assert result.returncode == 3, result.stderr  # finished with dead letters
    run = json.loads(result.stdout)
    assert run["status"] == "partial"

    calls = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [c["hook"] for c in calls] == ["hub_run_started", "hub_record_rejected", "hub_run_finished"]
    started, rejected, finished = calls
    assert started == {
        "hook": "hub_run_started",
        "run_id": run["run_id"],
        "pipeline": "load",
        "trigger": "manual",
    }
    assert rejected == {
        "hook": "hub_record_rejected",
        "run_id": run["run_id"],
        "pipeline": "load",
        "stream": "people",
        "position": "people.csv:3",
        "reason": "name: required value is missing",
    }
    assert finished["run_id"] == run["run_id"]
    assert finished["status"] == "partial"
    assert finished["counts"] == run["counts"]
    assert finished["counts"]["rejected"] == 1
    assert finished["counts"]["inserted"] == 2
    assert target_ids(tmp_path) == ["E1", "E3"]


def test_lifecycle_hooks_fire_in_process(tmp_path: Path) -> None:
    from hub.engine import Sync

    project = Project(files_to_sql_project(tmp_path, "lifecycle"))
    result = Sync(project, "load", trigger="schedule").run()
    assert result.status == "succeeded", result.error
    calls = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(c["hook"], c["run_id"]) for c in calls] == [
        ("hub_run_started", result.run_id),
        ("hub_run_finished", result.run_id),
    ]
    assert calls[0]["trigger"] == "schedule"
    assert calls[1]["counts"] == {"read": 2, "inserted": 2, "updated": 0, "unchanged": 0, "rejected": 0}
