"""Plugin loading: built-ins, the ``hub`` entry-point group, and a project plugins directory.

A plugin that fails to import is reported and skipped, so one broken package never takes
hub down; set ``HUB_STRICT_PLUGINS=1`` to make that fatal while writing a plugin.
``HUB_DISABLE_PLUGINS`` (comma-separated names) blocks plugins by name.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from hub import hookspecs
from hub.errors import PluginError

log = logging.getLogger(__name__)

DEFAULT_PLUGINS: tuple[str, ...] = (
    "hub.default_keys",
    "hub.transforms",
    "hub_files",
    "hub_sql",
    "hub_airbyte",
    "hub_evaluation",
    "hub_greenhouse",
    "hub_greenhouse.webhook",
    "hub_moka",
    "hub_beisen",
    "hub_assessment",
    "hub_hackerrank",
    "hub_wecom",
    "hub_dingtalk",
    "hub_feishu",
    "hub_kingdee",
    "hub_scim",
    "hub_successfactors",
    "hub_esign",
    "hub_docusign",
)


@dataclass
class LoadFailure:
    """A plugin that could not be loaded, kept so ``hub plugins`` can show it."""

    name: str
    origin: str
    error: str


@dataclass
class PluginRegistry:
    """The plugin manager plus what happened while loading it."""

    pm: pluggy.PluginManager
    failures: list[LoadFailure] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)


def _strict() -> bool:
    return os.environ.get("HUB_STRICT_PLUGINS", "") not in ("", "0", "false")


def _record_failure(registry: PluginRegistry, name: str, origin: str, exc: BaseException) -> None:
    if _strict():
        raise PluginError(f"plugin {name!r} from {origin} failed to load: {exc}") from exc
    message = f"{type(exc).__name__}: {exc}"
    registry.failures.append(LoadFailure(name=name, origin=origin, error=message))
    log.warning("plugin %s from %s failed to load: %s", name, origin, message)


def _register(registry: PluginRegistry, module: Any, name: str, origin: str) -> None:
    pm = registry.pm
    if pm.is_blocked(name) or pm.is_registered(module):
        return  # blocked, or the same module reached twice (e.g. an entry point to a built-in)
    if pm.has_plugin(name):
        clash = PluginError(
            f"a plugin named {name!r} is already loaded from {registry.origins.get(name, '?')}"
        )
        _record_failure(registry, name, origin, clash)
        return
    try:
        pm.register(module, name=name)
    except (pluggy.PluginValidationError, ValueError) as exc:  # hookimpl arguments the hookspec lacks
        _record_failure(registry, name, origin, exc)
        return
    registry.origins[name] = origin


def _load_project_manifest(registry: PluginRegistry, path: Path) -> None:
    """A ``*.yaml`` Airbyte declarative manifest becomes a source connector named after the file.

    The built-in ``hub_airbyte`` plugin turns it into one; YAML that is not a manifest is left
    alone, and a broken manifest is reported like a plugin that failed to import.
    """
    airbyte = registry.pm.get_plugin("hub_airbyte")
    if airbyte is None or registry.pm.is_blocked(path.stem):
        return  # manifests need the airbyte plugin (blocked or failed: reported already)
    try:
        plugin = airbyte.project_manifest_plugin(path)
    except Exception as exc:  # noqa: BLE001 - a bad manifest is reported, the rest loads
        _record_failure(registry, path.stem, str(path), exc)
        return
    if plugin is not None:
        _register(registry, plugin, path.stem, str(path))


def _load_project_dir(registry: PluginRegistry, directory: Path) -> None:
    """Import every ``*.py`` module and package, and load every manifest, in the plugins directory."""
    if not directory.is_dir():
        return
    for path in sorted(directory.iterdir()):
        if path.name.startswith((".", "_")):
            continue
        if path.suffix in (".yaml", ".yml") and path.is_file():
            _load_project_manifest(registry, path)
            continue
        if path.suffix == ".py":
            target = path
        elif (path / "__init__.py").is_file():
            target = path / "__init__.py"
        else:
            continue
        if registry.pm.is_blocked(path.stem):
            continue  # a blocked plugin is not even imported
        name = f"hub_project_plugin_{path.stem}"
        try:
            spec = importlib.util.spec_from_file_location(
                name, target, submodule_search_locations=[str(path)] if path.is_dir() else None
            )
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot import {target}")
            module: ModuleType = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        except Exception as exc:  # noqa: BLE001 - any import error is reported, the rest loads
            sys.modules.pop(name, None)
            _record_failure(registry, path.stem, str(path), exc)
            continue
        _register(registry, module, path.stem, str(path))


def load_plugins(project_plugins_dir: Path | None = None, *, entry_points: bool = True) -> PluginRegistry:
    """Build a plugin manager with built-ins, installed plugins and project plugins."""
    pm = pluggy.PluginManager("hub")
    pm.add_hookspecs(hookspecs)
    registry = PluginRegistry(pm=pm)
    for blocked in filter(None, (n.strip() for n in os.environ.get("HUB_DISABLE_PLUGINS", "").split(","))):
        pm.set_blocked(blocked)
        registry.origins[blocked] = "blocked by HUB_DISABLE_PLUGINS"

    for module_name in DEFAULT_PLUGINS:
        if pm.is_blocked(module_name):
            continue
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # noqa: BLE001
            _record_failure(registry, module_name, "built-in", exc)
            continue
        _register(registry, module, module_name, "built-in")

    if entry_points:
        for ep in importlib.metadata.entry_points(group="hub"):
            if pm.is_blocked(ep.name):
                continue
            dist = ep.dist.name if ep.dist else "?"
            try:
                module = ep.load()
            except Exception as exc:  # noqa: BLE001
                _record_failure(registry, ep.name, f"entry point of {dist}", exc)
                continue
            _register(registry, module, ep.name, f"entry point of {dist}")

    if project_plugins_dir is not None:
        _load_project_dir(registry, project_plugins_dir)

    _check_pending(registry)
    return registry


def _check_pending(registry: PluginRegistry) -> None:
    """Refuse plugins that implement hooks hub does not have (usually a misspelt name)."""
    while True:
        try:
            registry.pm.check_pending()
            return
        except pluggy.PluginValidationError as exc:
            name = registry.pm.get_name(exc.plugin) or repr(exc.plugin)
            origin = registry.origins.pop(name, "?")
            registry.pm.unregister(exc.plugin)
            _record_failure(registry, name, origin, exc)


def collect_registrations(registry: PluginRegistry, hook: str, kind: type[Any]) -> list[tuple[str, Any]]:
    """Call a registration hook plugin by plugin and return ``(plugin name, record)`` pairs.

    A plugin whose hook raises or returns something other than a list of ``kind`` is
    reported and unregistered, like one that fails to import; the others still count.
    """
    found: list[tuple[str, Any]] = []
    for impl in reversed(getattr(registry.pm.hook, hook).get_hookimpls()):
        if impl.hookwrapper or impl.wrapper:
            continue  # wrappers around a registration hook have nothing to register
        try:
            result = impl.function()
            items = [] if result is None else list(result)
            for item in items:
                if not isinstance(item, kind):
                    raise TypeError(f"{hook} returned a {type(item).__name__}, not a {kind.__name__}")
        except Exception as exc:  # noqa: BLE001 - a broken plugin is reported, the rest loads
            origin = registry.origins.pop(impl.plugin_name, "?")
            registry.pm.unregister(name=impl.plugin_name)
            _record_failure(registry, impl.plugin_name, origin, exc)
            continue
        found.extend((impl.plugin_name, item) for item in items)
    return found
