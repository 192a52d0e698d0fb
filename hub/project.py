"""A hub project: hub.toml, its plugins, its state store and its keys, loaded once."""

from __future__ import annotations

import getpass
import logging
import os
import tomllib
from collections.abc import Iterator, Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airbyte_cdk.destinations import Destination
from airbyte_cdk.sources.source import Source

from hub.config import Settings, is_secret_ref, load_settings, resolve_secrets
from hub.connectors import Connector
from hub.crypto import Keyring
from hub.errors import ConfigProblem, ConfigurationError, PluginError
from hub.plugins import PluginRegistry, collect_registrations, load_plugins
from hub.store import Database
from hub.store.models import AuditEntry, Secret, utcnow
from hub.transforms import Transform

if TYPE_CHECKING:
    from hub.identity import IdentityConfig
    from hub.mapping.loader import MappingSpec

log = logging.getLogger(__name__)


def _collect(registry: PluginRegistry, hook: str, kind: type[Any], what: str) -> dict[str, Any]:
    """Records registered through ``hook``, by name, refusing two with one name."""
    found: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for plugin, record in collect_registrations(registry, hook, kind):
        if record.name in found:
            raise PluginError(
                f"two plugins register a {what} named {record.name!r}: {owner[record.name]} and {plugin}"
            )
        found[record.name], owner[record.name] = record, plugin
    return dict(sorted(found.items()))


def collect_connectors(registry: PluginRegistry) -> dict[str, Connector]:
    """Every connector the plugins register, refusing two with one name."""
    return _collect(registry, "hub_register_connectors", Connector, "connector")


def collect_transforms(registry: PluginRegistry) -> dict[str, Transform]:
    return _collect(registry, "hub_register_transforms", Transform, "transform")


def _plugins_dir_of(path: Path) -> Path | None:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None  # load_settings reports it with its path
    hub_table = raw.get("hub")
    plugins_dir = hub_table.get("plugins_dir") if isinstance(hub_table, dict) else None
    return path.resolve().parent / plugins_dir if isinstance(plugins_dir, str) and plugins_dir else None


class Project:
    """Everything a command needs, built lazily from one hub.toml."""

    def __init__(self, path: Path, registry: PluginRegistry | None = None) -> None:
        self.path = path.resolve()
        self.registry = registry or load_plugins(_plugins_dir_of(self.path))
        self.connectors = collect_connectors(self.registry)
        self.settings: Settings = load_settings(self.path, self.connectors)
        self.mappings: dict[Path, MappingSpec] = self._load_mappings()
        self.identity_config = self._identity_config()

    def _identity_config(self) -> IdentityConfig:
        from hub.identity import IdentityConfig

        return IdentityConfig.from_mapping(self.settings.identity)

    def _load_mappings(self) -> dict[Path, MappingSpec]:
        """Every mapping file the pipelines name, checked now: nothing runs on a bad one."""
        from hub.mapping.loader import MappingError, load_mapping
        from hub.schema import ENTITIES

        files = {sel.mapping for p in self.settings.pipelines.values() for sel in p.streams if sel.mapping}
        specs: dict[Path, MappingSpec] = {}
        problems: list[ConfigProblem] = []
        for file in sorted(files):
            try:
                specs[file] = load_mapping(file, self.transforms, ENTITIES)
            except MappingError as exc:
                problems += [ConfigProblem(f"{p.file}:{p.line}", p.message) for p in exc.problems]
        if problems:
            raise ConfigurationError(problems, str(self.path))
        return specs

    @cached_property
    def db(self) -> Database:
        return Database(self.settings.database)

    @cached_property
    def keyring(self) -> Keyring:
        provider = self.registry.pm.hook.hub_key_provider(settings=self.settings.keys)
        keyring = Keyring(
            provider.load_kek(),
            key_id=provider.key_id,
            db=self.db,
            tenant=self.settings.tenant,
            algorithm=str(self.settings.keys.get("algorithm", "aes-256-gcm")),
        )
        # Created up front, in their own transaction: sealing later happens inside other
        # transactions, where creating a key would wait on SQLite's single writer.
        keyring.ensure_keys()
        return keyring

    @cached_property
    def transforms(self) -> dict[str, Transform]:
        return collect_transforms(self.registry)

    def connector_of(self, name: str) -> Connector:
        configured = self.settings.connectors.get(name)
        if configured is None:
            raise ConfigurationError([ConfigProblem(f"connectors.{name}", "not configured in hub.toml")])
        return self.connectors[configured.plugin]

    def config_of(self, name: str) -> dict[str, Any]:
        """The connector's config with secrets resolved (never log the result)."""
        configured = self.settings.connectors[name]
        return resolve_secrets(configured.config, f"connectors.{name}.config", self.get_secret)

    def source(self, name: str) -> Source:
        connector = self.connector_of(name)
        if connector.source is None:
            raise ConfigurationError([ConfigProblem(f"connectors.{name}", "is not a source")])
        source = connector.source()
        if hasattr(source, "on_config_update"):  # credentials rotated by check / discover
            source.on_config_update = lambda config: self._log_rotation(
                self.save_rotated_config(name, config)
            )
        return source

    @staticmethod
    def _log_rotation(events: list[tuple[str, str]]) -> None:
        for level, message in events:
            log.log(logging.WARNING if level == "warning" else logging.INFO, "%s", message)

    def destination(self, name: str) -> Destination:
        connector = self.connector_of(name)
        if connector.destination is None:
            raise ConfigurationError([ConfigProblem(f"connectors.{name}", "is not a destination")])
        return connector.destination()

    # -- secrets -------------------------------------------------------------------------

    def set_secret(self, name: str, value: str, *, action: str = "secret.set") -> None:
        sealed = self.keyring.seal(value.encode(), "secret", "secrets", name)
        with self.db.session() as session:
            row = session.get(Secret, name)
            if row is None:
                session.add(Secret(name=name, ciphertext=sealed))
            else:
                row.ciphertext, row.updated_at = sealed, utcnow()
            session.add(AuditEntry(actor=actor(), action=action, target=name))
        self.keyring.flush_counters()

    def save_rotated_config(self, connector: str, new_config: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Keep the credentials a connector rotated while it ran (single-use OAuth refresh tokens).

        Every key of ``new_config`` (nested tables included) that hub.toml gives as
        ``{ secret = "NAME" }`` and whose value changed is stored under NAME; a key given as
        ``{ env = "VAR" }`` cannot be, and gets a warning. Returns ``(level, message)`` events
        for the sync log; they name keys and secrets, never values.
        """
        events: list[tuple[str, str]] = []
        declared = self.settings.connectors[connector].config
        for path, ref, value in _references(declared, new_config, ()):
            key = ".".join(path)
            if "secret" in ref:
                secret = str(ref["secret"])
                if self.get_secret(secret) == value:
                    continue
                self.set_secret(secret, value, action="secret.rotated")
                events.append(("info", f"rotated secret {secret} (connectors.{connector}.config.{key})"))
            elif os.environ.get(str(ref["env"])) != value:
                events.append(
                    (
                        "warning",
                        f"connector {connector} rotated connectors.{connector}.config.{key}, which comes from "
                        f"environment variable {ref['env']}: hub cannot save it there, and the old value may "
                        f'stop working; keep it with hub secrets set NAME and {{ secret = "NAME" }}',
                    )
                )
        return events

    def get_secret(self, name: str) -> str | None:
        with self.db.session() as session:
            row = session.get(Secret, name)
            if row is None:
                return None
            return self.keyring.open(row.ciphertext, "secrets", name).decode()


def _references(
    declared: Mapping[str, Any], new: Mapping[str, Any], prefix: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], Mapping[str, Any], str]]:
    """``(path, secret reference, new value)`` for each referenced key ``new`` has a text value for."""
    for key, ref in declared.items():
        if key not in new:
            continue
        value = new[key]
        if is_secret_ref(ref):
            if isinstance(value, str) and value:
                yield (*prefix, key), ref, value
        elif isinstance(ref, Mapping) and isinstance(value, Mapping):
            yield from _references(ref, value, (*prefix, key))


def actor() -> str:
    """Who runs this command, for the audit log."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
