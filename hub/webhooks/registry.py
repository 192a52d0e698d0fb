"""Which configured connectors take callbacks, and their verifiers, from hub.toml and plugins.

A connector takes callbacks when its table has a ``webhook`` sub-table::

    [connectors.greenhouse.webhook]
    secret = { secret = "GREENHOUSE_WEBHOOK" }   # the vendor's keys (its verifier's spec)
    # max_age = "5m"                            # vendors that sign a timestamp

Its plugin's :class:`~hub.webhooks.verifier.WebhookHandler` decides the keys; every problem
names its TOML path, like the rest of hub.toml.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hub.config import _validate_connector_config, parse_duration, resolve_secrets
from hub.errors import ConfigProblem, ConfigurationError, PluginError
from hub.plugins import PluginRegistry, collect_registrations
from hub.webhooks.verifier import WebhookHandler, WebhookVerifier

if TYPE_CHECKING:
    from hub.project import Project

#: keys hub itself reads in every ``[connectors.NAME.webhook]`` table
HUB_WEBHOOK_KEYS = frozenset({"max_age"})
#: how old a signed timestamp may be (vendors that sign one), unless max_age says otherwise
DEFAULT_MAX_AGE_SECONDS = 300.0


@dataclass(frozen=True)
class WebhookEndpoint:
    """``/webhooks/<name>``: a configured connector and its ready verifier."""

    name: str
    plugin: str
    verifier: WebhookVerifier
    max_age: float = DEFAULT_MAX_AGE_SECONDS


def collect_webhook_handlers(registry: PluginRegistry) -> dict[str, WebhookHandler]:
    """Every webhook handler the plugins register, by connector; two for one connector is an error."""
    found: dict[str, WebhookHandler] = {}
    owner: dict[str, str] = {}
    for plugin, handler in collect_registrations(registry, "hub_register_webhooks", WebhookHandler):
        if handler.connector in found:
            raise PluginError(
                f"two plugins register a webhook verifier for connector {handler.connector!r}: "
                f"{owner[handler.connector]} and {plugin}"
            )
        found[handler.connector], owner[handler.connector] = handler, plugin
    return dict(sorted(found.items()))


def check_webhook_settings(
    project: Project, handlers: Mapping[str, WebhookHandler] | None = None
) -> dict[str, WebhookHandler]:
    """Check every ``[connectors.NAME.webhook]`` against its verifier; configured name -> handler."""
    handlers = collect_webhook_handlers(project.registry) if handlers is None else handlers
    problems: list[ConfigProblem] = []
    chosen: dict[str, WebhookHandler] = {}
    for name, configured in project.settings.connectors.items():
        if configured.webhook is None:
            continue
        where = f"connectors.{name}.webhook"
        handler = handlers.get(configured.plugin)
        if handler is None:
            known = ", ".join(sorted(handlers)) or "none"
            problems.append(
                ConfigProblem(
                    where, f"connector {configured.plugin!r} takes no webhooks (connectors that do: {known})"
                )
            )
            continue
        problems += _settings_problems(where, handler, configured.webhook)
        chosen[name] = handler
    if problems:
        raise ConfigurationError(problems, str(project.path))
    return chosen


def _settings_problems(where: str, handler: WebhookHandler, table: Mapping[str, Any]) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    spec = handler.verifier.settings_spec
    known = set(spec.get("properties", {}) or {}) | HUB_WEBHOOK_KEYS
    for key in sorted(set(table) - known):
        problems.append(ConfigProblem(f"{where}.{key}", f"unknown key (known: {', '.join(sorted(known))})"))
    if "max_age" in table and not handler.verifier.signs_timestamp:
        problems.append(
            ConfigProblem(
                f"{where}.max_age",
                f"{handler.connector} callbacks carry no signed timestamp; max_age does not apply",
            )
        )
    vendor_keys = {k: v for k, v in table.items() if k in known - HUB_WEBHOOK_KEYS}
    _validate_connector_config(where, vendor_keys, spec, problems)
    return problems


def webhook_endpoints(project: Project) -> dict[str, WebhookEndpoint]:
    """The endpoints ``hub serve`` answers: checked, secrets resolved, verifiers built."""
    endpoints: dict[str, WebhookEndpoint] = {}
    problems: list[ConfigProblem] = []
    for name, handler in check_webhook_settings(project).items():
        table = project.settings.connectors[name].webhook or {}
        where = f"connectors.{name}.webhook"
        vendor_keys = {k: v for k, v in table.items() if k not in HUB_WEBHOOK_KEYS}
        try:
            settings = resolve_secrets(vendor_keys, where, project.get_secret)
        except ConfigurationError as exc:
            problems += exc.problems
            continue
        try:  # a verifier refuses unusable settings (a key of the wrong length) with ValueError
            verifier = handler.verifier(settings)
        except ValueError as exc:
            problems.append(ConfigProblem(where, str(exc)))
            continue
        max_age = parse_duration(table.get("max_age", DEFAULT_MAX_AGE_SECONDS))
        endpoints[name] = WebhookEndpoint(
            name=name, plugin=handler.connector, verifier=verifier, max_age=max_age
        )
    if problems:
        raise ConfigurationError(problems, str(project.path))
    return endpoints
