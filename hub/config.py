"""hub.toml: loading, validation against each connector's spec, secret references.

Every problem is collected with its TOML path and reported at once; nothing runs on a
bad file. Secrets appear only as references, ``{ env = "VAR" }`` or ``{ secret = "NAME" }``
(a secret stored with ``hub secrets set``), and are resolved as late as possible.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jsonschema
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

from hub.connectors import Connector
from hub.contracts.clauses import ContractsConfig, contracts_config_from
from hub.contracts.reminders import ContractRemindersConfig, contract_reminders_from
from hub.errors import ConfigProblem, ConfigurationError
from hub.evaluation.config import EvaluationConfig, evaluation_from
from hub.onboarding.config import OnboardingConfig, onboarding_config_from
from hub.payroll_export import PayrollExportConfig, payroll_export_config_from

SECRET_NAME_RE = re.compile(r"(password|passwd|secret|token|api_?key|private_?key|credential)", re.I)
_URL_PASSWORD_RE = re.compile(r"^[a-z0-9+]+://[^/@:]*:([^/@]+)@", re.I)
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")

HUB_KEYS = {"database", "timezone", "plugins_dir", "schedules_dir", "chunk_size", "log_level", "tenant"}
KEYS_KEYS = {"file", "env", "algorithm"}
#: masking kinds a source column can be declared as (``[connectors.NAME] pii``)
PII_KINDS = ("id_number", "phone", "email", "bank_account", "money", "text")
PRIVACY_KEYS = {"raw_records_days", "dead_letters_days", "schedule", "consent_field"}
SYNC_MODES = ("full_refresh", "incremental")
#: Records per chunk: one checkpoint each. Large enough that state-store commits stay cheap,
#: small enough to keep memory bounded (destinations write a chunk in slices).
DEFAULT_CHUNK_SIZE = 50_000


@dataclass(frozen=True)
class StreamSelection:
    """One stream a pipeline reads, with its sync mode and (optionally) primary key."""

    name: str
    sync_mode: str = "full_refresh"
    primary_key: tuple[str, ...] = ()
    cursor_field: str | None = None
    destination_stream: str | None = None
    #: mapping file into a canonical entity (the pipeline's ``mapping`` when not set here)
    mapping: Path | None = None


@dataclass(frozen=True)
class Schedule:
    """When a pipeline runs unattended."""

    pipeline: str
    cron: str | None = None
    interval_seconds: float | None = None
    timezone: str = "Asia/Shanghai"
    misfire_grace_seconds: int = 300
    coalesce: bool = True
    origin: str = "hub.toml"


@dataclass(frozen=True)
class ConnectorConfig:
    """A ``[connectors.NAME]`` table: which plugin, and its (unresolved) config."""

    name: str
    plugin: str
    config: Mapping[str, Any]
    #: source columns holding personal data -> masking kind (``pii = { id_no = "id_number" }``)
    pii: Mapping[str, str] = field(default_factory=dict)
    #: as a destination: write PII fields as hub ciphertexts (+ blind indexes), not in clear
    encrypt_pii: bool = True
    #: ``[connectors.NAME.webhook]``: the connector's callback settings (hub.webhooks); None = off
    webhook: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class PipelineConfig:
    """A ``[pipelines.NAME]`` table."""

    name: str
    source: str
    streams: tuple[StreamSelection, ...]
    destinations: tuple[str, ...]
    mapping: Path | None = None
    schedule: Schedule | None = None
    chunk_size: int | None = None
    #: keep each source record, sealed, in ``raw_records`` (purged by the retention job)
    keep_raw: bool = False


@dataclass
class Privacy:
    """The ``[privacy]`` table: retention of what hub keeps beyond the sync itself."""

    #: days to keep raw source payloads (``keep_raw`` pipelines); None keeps them
    raw_records_days: int | None = None
    #: days to keep open or resolved dead letters (rejected candidates, ...); None keeps them
    dead_letters_days: int | None = None
    #: cron expression of the built-in retention job in ``hub scheduler``
    schedule: str = "30 3 * * *"
    #: source column holding a data subject's consent time (streams without a mapping; mapped
    #: streams use the identity field ``consent_at``): newer than an erasure, it lifts the erasure
    consent_field: str | None = None


@dataclass
class Settings:
    """A validated hub.toml."""

    path: Path
    database: str
    timezone: str
    chunk_size: int
    log_level: str
    plugins_dir: Path | None
    schedules_dir: Path
    keys: dict[str, Any]
    #: the ``[identity]`` table: rules and source priority for identity resolution
    identity: dict[str, Any] = field(default_factory=dict)
    tenant: str = "default"
    privacy: Privacy = field(default_factory=Privacy)
    #: the ``[evaluation]`` table: application scoring (hub.evaluation.config)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    #: the ``[contracts]`` table: clause rules, templates, PDF font, reminders (hub.contracts)
    contracts: ContractsConfig = field(default_factory=ContractsConfig)
    #: ``[contracts.reminders]``: the expiry reminder job (hub.contracts.reminders); None = off
    contract_reminders: ContractRemindersConfig | None = None
    #: the ``[payroll_export]`` table: payroll template columns (hub.payroll_export); None = not set
    payroll_export: PayrollExportConfig | None = None
    #: the ``[onboarding]`` table: tasks of each onboarding case, retries (hub.onboarding.config)
    onboarding: OnboardingConfig = field(default_factory=OnboardingConfig)
    connectors: dict[str, ConnectorConfig] = field(default_factory=dict)
    pipelines: dict[str, PipelineConfig] = field(default_factory=dict)
    schedules: list[Schedule] = field(default_factory=list)

    @property
    def project_dir(self) -> Path:
        return self.path.parent


def parse_duration(value: Any) -> float:
    """Seconds in ``30``, ``"1.5s"``, ``"5m"``, ``"2h"``, ``"1d"``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = _DURATION_RE.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration (e.g. 30s, 5m, 1h)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _crontab_day(token: str) -> int:
    """A crontab weekday, 0 (or 7) = Sunday, as a number 0-7."""
    token = token.strip().lower()
    if token in _CRON_DAYS:
        return _CRON_DAYS.index(token)
    if token.isdigit() and int(token) <= 7:
        return int(token)
    raise ValueError(f"invalid day of week {token!r} (0-7 or sun-sat)")


def _crontab_weekdays(field_text: str) -> str:
    """A crontab day-of-week field as APScheduler day names (APScheduler 3 counts 0 as Monday)."""
    days: set[int] = set()
    for item in field_text.split(","):
        base, slash, step_text = item.partition("/")
        if slash and not (step_text.isdigit() and int(step_text) > 0):
            raise ValueError(f"invalid step in day of week {item!r}")
        step = int(step_text) if slash else 1
        if base == "*":
            first, last = 0, 6
        elif "-" in base:
            first, last = (_crontab_day(t) for t in base.split("-", 1))
            last = 7 if last == 0 and first > 0 else last
            if last < first:
                raise ValueError(f"invalid range in day of week {item!r}")
        else:
            first = _crontab_day(base)
            last = 6 if slash else first
        days.update(day % 7 for day in range(first, last + 1, step))
    return ",".join(_CRON_DAYS[day] for day in sorted(days))


def crontab_trigger(expr: str, timezone: str) -> BaseTrigger:
    """A trigger that fires as cron(8) would.

    Weekdays 0 and 7 are Sunday, and when both day of month and day of week are restricted
    (neither starts with ``*``) either one matching fires. APScheduler 3's ``from_crontab``
    counts weekdays from Monday and requires both.
    """
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"wrong number of fields; got {len(fields)}, expected 5")
    minute, hour, day, month, weekday = fields
    weekdays = "*" if weekday == "*" else _crontab_weekdays(weekday)

    def cron(day: str, day_of_week: str) -> CronTrigger:
        return CronTrigger(
            minute=minute, hour=hour, day=day, month=month, day_of_week=day_of_week, timezone=timezone
        )

    if not day.startswith("*") and not weekday.startswith("*"):
        return OrTrigger([cron(day, "*"), cron("*", weekdays)])
    return cron(day, weekdays)


def is_secret_ref(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) in ({"env"}, {"secret"})


def secret_fields(spec: Mapping[str, Any]) -> set[str]:
    """Property names that hold secrets: marked ``airbyte_secret`` or named like one."""
    props = spec.get("properties", {}) or {}
    return {
        name
        for name, schema in props.items()
        if (isinstance(schema, Mapping) and schema.get("airbyte_secret")) or SECRET_NAME_RE.search(name)
    }


def _resolve_paths(config: dict[str, Any], spec: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """Make ``x-hub-path`` values and SQLite URLs (``x-hub-url``) relative to hub.toml."""
    props = spec.get("properties", {}) or {}
    out = dict(config)
    for name, schema in props.items():
        value = out.get(name)
        if not isinstance(value, str) or not isinstance(schema, Mapping):
            continue
        if schema.get("x-hub-path") and not Path(value).is_absolute():
            out[name] = str(base / value)
        elif (
            schema.get("x-hub-url") and value.startswith("sqlite:///") and not value.startswith("sqlite:////")
        ):
            rest = value[len("sqlite:///") :]
            if rest and rest != ":memory:":
                out[name] = "sqlite:///" + str(base / rest)
    return out


def _variants(schema: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """An object schema and its ``oneOf`` / ``anyOf`` / ``allOf`` alternatives."""
    found = [schema]
    for keyword in ("oneOf", "anyOf", "allOf"):
        found += [v for v in schema.get(keyword) or [] if isinstance(v, Mapping)]
    return found


def _property_schema(schema: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """The schema of property ``key`` of an object schema (any of its alternatives)."""
    for variant in _variants(schema):
        prop = (variant.get("properties") or {}).get(key)
        if isinstance(prop, Mapping):
            return prop
    return {}


def _marked_secrets(schema: Mapping[str, Any]) -> set[str]:
    """Properties of a nested object marked ``airbyte_secret`` (in any of its alternatives)."""
    return {
        name
        for variant in _variants(schema)
        for name, prop in (variant.get("properties") or {}).items()
        if isinstance(prop, Mapping) and prop.get("airbyte_secret")
    }


def _validate_connector_config(
    path: str, config: Mapping[str, Any], spec: Mapping[str, Any], problems: list[ConfigProblem]
) -> None:
    probe = _probe(path, config, spec, problems, top=True)
    validator = jsonschema.Draft7Validator(dict(spec))
    for error in sorted(validator.iter_errors(probe), key=lambda e: list(e.absolute_path)):
        where = ".".join([path, *[str(p) for p in error.absolute_path]])
        if error.validator == "required":
            missing = re.findall(r"'([^']+)' is a required property", error.message)
            for name in missing or [error.message]:
                problems.append(ConfigProblem(f"{where}.{name}", "required field is missing"))
        elif error.validator == "additionalProperties":
            problems.append(ConfigProblem(where, error.message))
        else:
            problems.append(ConfigProblem(where, _describe(error)))


def _probe(
    path: str,
    config: Mapping[str, Any],
    spec: Mapping[str, Any],
    problems: list[ConfigProblem],
    *,
    top: bool,
) -> dict[str, Any]:
    """``config`` with secret references replaced by a placeholder, checking them on the way.

    Nested tables (``credentials = { api_key = { secret = "..." } }``) are walked too; below
    the top level, a plaintext value is refused where the spec marks it ``airbyte_secret``.
    """
    secrets = secret_fields(spec) if top else _marked_secrets(spec)
    probe: dict[str, Any] = {}
    for key, value in config.items():
        if is_secret_ref(value):
            probe[key] = _referenced_probe(key, value, spec, secrets)
            continue
        if isinstance(value, Mapping) and ("env" in value or "secret" in value):
            problems.append(
                ConfigProblem(f"{path}.{key}", 'a secret reference is { env = "VAR" } or { secret = "NAME" }')
            )
            probe[key] = "<secret>"
            continue
        if isinstance(value, Mapping):
            probe[key] = _probe(f"{path}.{key}", value, _property_schema(spec, key), problems, top=False)
            continue
        if (key in secrets or (top and SECRET_NAME_RE.search(key))) and isinstance(value, str) and value:
            problems.append(
                ConfigProblem(
                    f"{path}.{key}",
                    'plaintext secret refused; use { env = "VAR" } or { secret = "NAME" } '
                    "(hub secrets set NAME)",
                )
            )
        if isinstance(value, str) and _URL_PASSWORD_RE.match(value):
            problems.append(
                ConfigProblem(
                    f"{path}.{key}",
                    "URL holds a plaintext password; put it in a separate secret field or the environment",
                )
            )
        probe[key] = value
    return probe


def _referenced_probe(key: str, ref: Mapping[str, Any], spec: Mapping[str, Any], secrets: set[str]) -> Any:
    """What validation sees for a value given by reference.

    A secret stays a placeholder (its value is never read here). A plain setting taken from
    the environment (``base_url = { env = "VAR" }``) is validated with its value when the
    variable is set, and otherwise with the spec's default or example, so a pattern or type
    error is still reported against the key when it can be.
    """
    if key in secrets or "env" not in ref:
        return "<secret>"
    value = os.environ.get(str(ref["env"]))
    if value is not None:
        return value
    schema = _property_schema(spec, key)
    if "default" in schema:
        return schema["default"]
    examples = schema.get("examples")
    if isinstance(examples, list) and examples:
        return examples[0]
    return "<secret>"


def _connector_spec(
    connector: Connector, config: Mapping[str, Any], base: Path, where: str, problems: list[ConfigProblem]
) -> Mapping[str, Any] | None:
    """The JSON Schema to validate a connector's config with (None: a problem was recorded).

    A source class may derive its spec from the config itself with a classmethod
    ``spec_for_config(config, base) -> ConnectorSpecification`` (the ``airbyte_manifest``
    connector: the spec of the manifest its config names); it raises ConfigurationError with
    paths relative to the config when it cannot tell.
    """
    impl = connector.source or connector.destination
    for_config = getattr(impl, "spec_for_config", None)
    if not callable(for_config):
        return connector.spec().connectionSpecification
    try:
        spec = for_config(config, base)
    except ConfigurationError as exc:
        problems.extend(
            ConfigProblem(f"{where}.{p.path}" if p.path else where, p.message) for p in exc.problems
        )
        return None
    return dict(spec.connectionSpecification)


def _describe(error: jsonschema.ValidationError) -> str:
    """A jsonschema error without echoing the offending value (it may be sensitive)."""
    v = error.validator
    if v == "type":
        return f"must be of type {error.validator_value}"
    if v == "enum":
        return f"must be one of {error.validator_value}"
    if v in ("minimum", "maximum", "minLength", "maxLength", "pattern", "format"):
        return f"violates {v} {error.validator_value}"
    return f"is invalid ({v})"


def _schedule_from(
    value: Any, pipeline: str, path: str, default_tz: str, problems: list[ConfigProblem], origin: str
) -> Schedule | None:
    if isinstance(value, str):
        value = {"cron": value}
    if not isinstance(value, Mapping):
        problems.append(ConfigProblem(path, "must be a cron string or a table with cron or interval"))
        return None
    known = {"cron", "interval", "timezone", "misfire_grace", "coalesce", "pipeline"}
    for key in set(value) - known:
        problems.append(ConfigProblem(f"{path}.{key}", f"unknown key (known: {', '.join(sorted(known))})"))
    cron, interval = value.get("cron"), value.get("interval")
    if (cron is None) == (interval is None):
        problems.append(ConfigProblem(path, "needs exactly one of cron or interval"))
        return None
    tz = str(value.get("timezone", default_tz))
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(ConfigProblem(f"{path}.timezone", f"unknown time zone {tz!r}"))
        return None
    seconds: float | None = None
    if cron is not None:
        try:
            trigger = crontab_trigger(str(cron), tz)
        except ValueError as exc:
            problems.append(ConfigProblem(f"{path}.cron", f"invalid cron expression: {exc}"))
            return None
        if trigger.get_next_fire_time(None, datetime.now(ZoneInfo(tz))) is None:
            problems.append(ConfigProblem(f"{path}.cron", f"{cron!r} never fires"))
            return None
    else:
        try:
            seconds = parse_duration(interval)
            if seconds <= 0:
                raise ValueError("must be positive")
        except ValueError as exc:
            problems.append(ConfigProblem(f"{path}.interval", str(exc)))
            return None
    try:
        grace = int(parse_duration(value.get("misfire_grace", 300)))
        if grace < 1:
            raise ValueError("must be at least 1s")
    except ValueError as exc:
        problems.append(ConfigProblem(f"{path}.misfire_grace", str(exc)))
        return None
    return Schedule(
        pipeline=pipeline,
        cron=str(cron) if cron is not None else None,
        interval_seconds=seconds,
        timezone=tz,
        misfire_grace_seconds=grace,
        coalesce=bool(value.get("coalesce", True)),
        origin=origin,
    )


def _streams_from(
    value: Any, path: str, problems: list[ConfigProblem], base: Path
) -> tuple[StreamSelection, ...]:
    if not isinstance(value, list) or not value:
        problems.append(ConfigProblem(path, "must be a non-empty list of stream names or tables"))
        return ()
    streams: list[StreamSelection] = []
    for i, item in enumerate(value):
        where = f"{path}[{i}]"
        if isinstance(item, str):
            streams.append(StreamSelection(name=item))
            continue
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            problems.append(ConfigProblem(where, "must be a stream name or a table with name"))
            continue
        known = {"name", "sync_mode", "primary_key", "cursor_field", "destination_stream", "mapping"}
        for key in set(item) - known:
            problems.append(
                ConfigProblem(f"{where}.{key}", f"unknown key (known: {', '.join(sorted(known))})")
            )
        mode = item.get("sync_mode", "full_refresh")
        if mode not in SYNC_MODES:
            problems.append(ConfigProblem(f"{where}.sync_mode", f"must be one of {', '.join(SYNC_MODES)}"))
        pk = item.get("primary_key", [])
        if isinstance(pk, str):
            pk = [pk]
        mapping = None
        if "mapping" in item:
            mapping = base / str(item["mapping"])
            if not mapping.is_file():
                problems.append(ConfigProblem(f"{where}.mapping", f"file not found: {item['mapping']}"))
        streams.append(
            StreamSelection(
                name=item["name"],
                sync_mode=str(mode),
                primary_key=tuple(str(p) for p in pk),
                cursor_field=item.get("cursor_field"),
                destination_stream=item.get("destination_stream"),
                mapping=mapping,
            )
        )
    return tuple(streams)


def load_settings(path: Path, connectors: Mapping[str, Connector]) -> Settings:
    """Read and validate hub.toml against the registered connectors; raise on any problem."""
    path = path.resolve()
    problems: list[ConfigProblem] = []
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigurationError([ConfigProblem(str(path), "file not found")], str(path)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError([ConfigProblem("(syntax)", str(exc))], str(path)) from exc
    base = path.parent

    tables = {
        "hub",
        "keys",
        "connectors",
        "pipelines",
        "identity",
        "privacy",
        "evaluation",
        "contracts",
        "payroll_export",
        "onboarding",
    }
    for key in set(raw) - tables:
        problems.append(ConfigProblem(key, f"unknown table (known: {', '.join(sorted(tables))})"))
    hub_raw = raw.get("hub", {})
    for key in set(hub_raw) - HUB_KEYS:
        problems.append(ConfigProblem(f"hub.{key}", f"unknown key (known: {', '.join(sorted(HUB_KEYS))})"))
    database = str(hub_raw.get("database", "sqlite:///.hub/hub.db"))
    if database.startswith("sqlite:///") and not database.startswith("sqlite:////"):
        database = "sqlite:///" + str(base / database[len("sqlite:///") :])
    if _URL_PASSWORD_RE.match(database):
        problems.append(ConfigProblem("hub.database", "URL holds a plaintext password; set HUB_DATABASE_URL"))
    database = os.environ.get("HUB_DATABASE_URL", database)
    timezone = str(hub_raw.get("timezone", "Asia/Shanghai"))
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(ConfigProblem("hub.timezone", f"unknown time zone {timezone!r}"))
    chunk_size = hub_raw.get("chunk_size", DEFAULT_CHUNK_SIZE)
    if not isinstance(chunk_size, int) or chunk_size < 1:
        problems.append(ConfigProblem("hub.chunk_size", "must be a positive integer"))
        chunk_size = DEFAULT_CHUNK_SIZE
    plugins_dir = base / str(hub_raw["plugins_dir"]) if "plugins_dir" in hub_raw else None
    if plugins_dir is not None and not plugins_dir.is_dir():
        problems.append(ConfigProblem("hub.plugins_dir", f"directory not found: {hub_raw['plugins_dir']}"))
    keys = dict(raw.get("keys", {}))
    for key in set(keys) - KEYS_KEYS:
        problems.append(ConfigProblem(f"keys.{key}", f"unknown key (known: {', '.join(sorted(KEYS_KEYS))})"))
    keys["file"] = str(base / keys.get("file", ".hub/master.key"))
    keys.setdefault("algorithm", "aes-256-gcm")
    if keys["algorithm"] not in ("aes-256-gcm", "sm4-gcm"):
        problems.append(
            ConfigProblem("keys.algorithm", f"{keys['algorithm']!r} is not aes-256-gcm or sm4-gcm")
        )
    tenant = hub_raw.get("tenant", "default")
    if not isinstance(tenant, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", tenant):
        problems.append(ConfigProblem("hub.tenant", "must be 1-100 letters, digits, '_', '.' or '-'"))
        tenant = "default"
    privacy = _privacy_from(raw.get("privacy", {}), problems)

    settings = Settings(
        path=path,
        database=database,
        timezone=timezone,
        chunk_size=chunk_size,
        log_level=str(hub_raw.get("log_level", "INFO")),
        plugins_dir=plugins_dir,
        schedules_dir=base / str(hub_raw.get("schedules_dir", "schedules")),
        keys=keys,
        identity=dict(raw.get("identity", {})),
        tenant=tenant,
        privacy=privacy,
    )

    for name, table in (raw.get("connectors") or {}).items():
        where = f"connectors.{name}"
        if not isinstance(table, Mapping):
            problems.append(ConfigProblem(where, "must be a table"))
            continue
        for key in set(table) - {"plugin", "config", "pii", "encrypt_pii", "webhook"}:
            problems.append(
                ConfigProblem(
                    f"{where}.{key}", "unknown key (known: config, encrypt_pii, pii, plugin, webhook)"
                )
            )
        webhook = _webhook_table(table.get("webhook"), f"{where}.webhook", problems)
        pii = table.get("pii", {})
        if not isinstance(pii, Mapping):
            problems.append(ConfigProblem(f"{where}.pii", "must be a table of column = kind"))
            pii = {}
        for column, kind in pii.items():
            if kind not in PII_KINDS:
                problems.append(
                    ConfigProblem(
                        f"{where}.pii.{column}", f"unknown kind {kind!r} (known: {', '.join(PII_KINDS)})"
                    )
                )
        encrypt_pii = table.get("encrypt_pii", True)
        if not isinstance(encrypt_pii, bool):
            problems.append(ConfigProblem(f"{where}.encrypt_pii", "must be true or false"))
            encrypt_pii = True
        plugin = table.get("plugin")
        if not isinstance(plugin, str):
            problems.append(ConfigProblem(f"{where}.plugin", "required field is missing"))
            continue
        connector = connectors.get(plugin)
        config = table.get("config", {})
        if not isinstance(config, Mapping):
            problems.append(ConfigProblem(f"{where}.config", "must be a table"))
            config = {}
        config = dict(config)
        if connector is None:
            known = ", ".join(sorted(connectors)) or "none"
            problems.append(
                ConfigProblem(f"{where}.plugin", f"unknown connector {plugin!r} (known: {known})")
            )
            settings.connectors[name] = ConnectorConfig(
                name, plugin, MappingProxyType(config), MappingProxyType(dict(pii)), encrypt_pii, webhook
            )
            continue
        spec = _connector_spec(connector, config, base, f"{where}.config", problems)
        if spec is not None:
            _validate_connector_config(f"{where}.config", config, spec, problems)
            config = _resolve_paths(config, spec, base)
        settings.connectors[name] = ConnectorConfig(
            name, plugin, MappingProxyType(config), MappingProxyType(dict(pii)), encrypt_pii, webhook
        )

    for name, table in (raw.get("pipelines") or {}).items():
        where = f"pipelines.{name}"
        if not isinstance(table, Mapping):
            problems.append(ConfigProblem(where, "must be a table"))
            continue
        pipeline_keys = {"source", "streams", "destinations", "mapping", "schedule", "chunk_size", "keep_raw"}
        for key in set(table) - pipeline_keys:
            problems.append(
                ConfigProblem(f"{where}.{key}", f"unknown key (known: {', '.join(sorted(pipeline_keys))})")
            )
        pipeline_chunk = table.get("chunk_size")
        if pipeline_chunk is not None and (not isinstance(pipeline_chunk, int) or pipeline_chunk < 1):
            problems.append(ConfigProblem(f"{where}.chunk_size", "must be a positive integer"))
        keep_raw = table.get("keep_raw", False)
        if not isinstance(keep_raw, bool):
            problems.append(ConfigProblem(f"{where}.keep_raw", "must be true or false"))
            keep_raw = False
        source = table.get("source")
        if not isinstance(source, str):
            problems.append(ConfigProblem(f"{where}.source", "required field is missing"))
        else:
            _check_role(settings, connectors, source, "source", f"{where}.source", problems)
        destinations = table.get("destinations", [])
        if isinstance(destinations, str):
            destinations = [destinations]
        if not isinstance(destinations, list) or not all(isinstance(d, str) for d in destinations):
            problems.append(
                ConfigProblem(f"{where}.destinations", "must be a connector name or a list of them")
            )
            destinations = []
        elif not destinations:
            problems.append(ConfigProblem(f"{where}.destinations", "required field is missing"))
        for i, dest in enumerate(destinations):
            _check_role(settings, connectors, dest, "destination", f"{where}.destinations[{i}]", problems)
        streams = _streams_from(table.get("streams"), f"{where}.streams", problems, base)
        mapping = None
        if "mapping" in table:
            mapping = base / str(table["mapping"])
            if not mapping.is_file():
                problems.append(ConfigProblem(f"{where}.mapping", f"file not found: {table['mapping']}"))
        if mapping is not None:
            streams = tuple(replace(sel, mapping=sel.mapping or mapping) for sel in streams)
        schedule = None
        if "schedule" in table:
            schedule = _schedule_from(
                table["schedule"], name, f"{where}.schedule", timezone, problems, "hub.toml"
            )
        settings.pipelines[name] = PipelineConfig(
            name=name,
            source=str(source),
            streams=streams,
            destinations=tuple(str(d) for d in destinations),
            mapping=mapping,
            schedule=schedule,
            chunk_size=table.get("chunk_size"),
            keep_raw=keep_raw,
        )
        if schedule:
            settings.schedules.append(schedule)

    settings.evaluation = evaluation_from(raw.get("evaluation"), base, settings.connectors, problems)
    contracts_raw = raw.get("contracts")
    reminders_raw = None
    if isinstance(contracts_raw, Mapping) and "reminders" in contracts_raw:
        reminders_raw = contracts_raw["reminders"]
        contracts_raw = {k: v for k, v in contracts_raw.items() if k != "reminders"}
    settings.contracts = contracts_config_from(contracts_raw, base, problems)
    settings.contract_reminders = contract_reminders_from(
        reminders_raw, settings.connectors, timezone, problems
    )
    settings.payroll_export = payroll_export_config_from(raw.get("payroll_export"), problems)
    settings.onboarding = onboarding_config_from(raw.get("onboarding"), settings.connectors, problems)

    if settings.schedules_dir.is_dir():
        for file in sorted(settings.schedules_dir.glob("*.toml")):
            _load_schedule_file(file, settings, problems)

    if problems:
        raise ConfigurationError(problems, str(path))
    return settings


def _webhook_table(value: Any, where: str, problems: list[ConfigProblem]) -> Mapping[str, Any] | None:
    """``[connectors.NAME.webhook]``: secrets only as references, ``max_age`` a duration.

    The keys each vendor needs are checked against its webhook plugin's spec by hub.webhooks.
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        problems.append(ConfigProblem(where, 'must be a table, e.g. { secret = { secret = "NAME" } }'))
        return None
    _validate_connector_config(where, value, {"type": "object"}, problems)
    if "max_age" in value:
        try:
            if parse_duration(value["max_age"]) <= 0:
                raise ValueError("must be positive")
        except ValueError as exc:
            problems.append(ConfigProblem(f"{where}.max_age", str(exc)))
    return MappingProxyType(dict(value))


def _privacy_from(table: Any, problems: list[ConfigProblem]) -> Privacy:
    if not isinstance(table, Mapping):
        problems.append(ConfigProblem("privacy", "must be a table"))
        return Privacy()
    for key in set(table) - PRIVACY_KEYS:
        problems.append(
            ConfigProblem(f"privacy.{key}", f"unknown key (known: {', '.join(sorted(PRIVACY_KEYS))})")
        )
    privacy = Privacy()
    for key in ("raw_records_days", "dead_letters_days"):
        value = table.get(key)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            problems.append(ConfigProblem(f"privacy.{key}", "must be a positive number of days"))
            continue
        setattr(privacy, key, value)
    schedule = table.get("schedule", privacy.schedule)
    try:
        crontab_trigger(str(schedule), "UTC")  # as cron(8) reads it, like pipeline schedules
        privacy.schedule = str(schedule)
    except ValueError as exc:
        problems.append(ConfigProblem("privacy.schedule", f"not a cron expression: {exc}"))
    consent = table.get("consent_field")
    if consent is not None:
        if not isinstance(consent, str) or not consent.strip() or consent.startswith("_hub_"):
            problems.append(ConfigProblem("privacy.consent_field", "must be a source column name"))
        else:
            privacy.consent_field = consent.strip()
    return privacy


def _load_schedule_file(file: Path, settings: Settings, problems: list[ConfigProblem]) -> None:
    try:
        origin = file.relative_to(settings.project_dir).as_posix()
    except ValueError:
        origin = str(file)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        problems.append(ConfigProblem(origin, str(exc)))
        return
    pipeline = data.get("pipeline")
    if not isinstance(pipeline, str) or pipeline not in settings.pipelines:
        problems.append(ConfigProblem(f"{origin}:pipeline", f"unknown pipeline {pipeline!r}"))
        return
    schedule = _schedule_from(data, str(pipeline), origin, settings.timezone, problems, origin)
    other = next((s for s in settings.schedules if s.pipeline == pipeline), None)
    if schedule and other:
        # Both would be the one job "pipeline:NAME" of the scheduler: one would silently win.
        problems.append(
            ConfigProblem(
                f"{origin}:pipeline",
                f"pipeline {pipeline!r} is already scheduled in {other.origin}; give it one schedule",
            )
        )
    elif schedule:
        settings.schedules.append(schedule)


def _check_role(
    settings: Settings,
    connectors: Mapping[str, Connector],
    name: str,
    role: str,
    where: str,
    problems: list[ConfigProblem],
) -> None:
    configured = settings.connectors.get(name)
    if configured is None:
        problems.append(ConfigProblem(where, f"no [connectors.{name}] table"))
        return
    connector = connectors.get(configured.plugin)
    if connector is not None and getattr(connector, role) is None:
        problems.append(ConfigProblem(where, f"connector {configured.plugin!r} cannot act as a {role}"))


def resolve_secrets(
    config: Mapping[str, Any], where: str, lookup_secret: Callable[[str], str | None]
) -> dict[str, Any]:
    """Replace secret references with their values, just before a connector is built.

    Nested tables are resolved too (``credentials.refresh_token = { secret = "..." }``), and
    come back as new dicts: a connector that writes into its config changes no settings.
    """
    resolved: dict[str, Any] = {}
    problems: list[ConfigProblem] = []
    for key, value in config.items():
        if isinstance(value, Mapping) and not is_secret_ref(value):
            try:
                resolved[key] = resolve_secrets(value, f"{where}.{key}", lookup_secret)
            except ConfigurationError as exc:
                problems += exc.problems
            continue
        if is_secret_ref(value):
            if "env" in value:
                found = os.environ.get(str(value["env"]))
                if found is None:
                    problems.append(
                        ConfigProblem(f"{where}.{key}", f"environment variable {value['env']} is not set")
                    )
            else:
                found = lookup_secret(str(value["secret"]))
                if found is None:
                    problems.append(
                        ConfigProblem(
                            f"{where}.{key}", f"no secret named {value['secret']!r} (hub secrets set)"
                        )
                    )
            resolved[key] = found
        else:
            resolved[key] = value
    if problems:
        raise ConfigurationError(problems)
    return resolved
