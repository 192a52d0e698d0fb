"""The contract expiry reminder job: contracts from the HR master, reminders to HR through an OA app.

::

    [contracts]
    reminder_days = [60, 30]          # the stages (hub.contracts.expiry)

    [contracts.reminders]
    source = "hr_master"              # a sql connector on the HR master (schemas/hr_master)
    notify = "wecom"                  # a wecom, dingtalk or feishu connector
    to = ["E00001", "E00002"]         # the HR users to message: the vendor's user ids
    # text = "{message}"              # template: message, name, employee_no, contract_no, end_date, days_left, days_before
    # schedule = "1d"                 # an interval, or a cron expression ("0 9 * * *"); false: never

A run reads the HR master's ``contracts`` joined to ``employees``: contracts ``signed`` or
``active`` with an end date within the largest stage, of employees not ``terminated`` or
``cancelled``. Each due stage is sent once (:func:`hub.contracts.expiry.send_expiry_reminders`)
with its claim in a ledger in hub's own database, so the scheduler (``contracts:reminders``),
``hub contracts reminders --send`` and a scheduler on another host share one record of what was
sent. A send that fails (the OA app down) is released and sent by the next run.

The employee's name is read in clear or, when the HR master holds a hub ciphertext
(``hub1.``), opened with the project's keyring; either way only the masked name
(:func:`~hub.contracts.expiry.mask_name`) leaves hub. A name that does not open (another
project's keys) skips that contract for the run and is reported by contract number.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from hub.contracts.expiry import (
    ExpiringContract,
    Reminder,
    ReminderLedger,
    ReminderRun,
    SqlReminderLedger,
    due_reminders,
    send_expiry_reminders,
    today_in,
)
from hub.errors import ConfigProblem, HubError
from hub.masking import mask_text

if TYPE_CHECKING:
    from sqlalchemy import Engine, Table

    from hub.crypto import Keyring
    from hub.project import Project

log = logging.getLogger("hub.contracts.reminders")

REMINDERS_KEYS = frozenset({"source", "notify", "to", "text", "schedule"})
#: connector plugins whose apps can message a user, and the HR master's
OA_PLUGINS = ("wecom", "dingtalk", "feishu")
#: of those, the ones that send as an app named by the connector's ``agent_id``
APP_PLUGINS = ("wecom", "dingtalk")
SOURCE_PLUGIN = "sql"
#: contract statuses that count: in force
CONTRACT_STATUSES = ("signed", "active")
#: employee statuses whose contracts need no reminder: gone, or never started
GONE_STATUSES = ("terminated", "cancelled")
DEFAULT_TEXT = "{message}"
DEFAULT_SCHEDULE_SECONDS = 86400.0
#: fields a ``text`` template may use (the name is masked; there is no unmasked one)
TEMPLATE_FIELDS = ("message", "name", "employee_no", "contract_no", "end_date", "days_left", "days_before")
#: a user id all three vendors accept (hub.oa.client.ACCOUNT_ID_RE)
_USER_ID_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


class ReminderSourceError(HubError):
    """The HR master cannot be read as the schema says (names tables and columns, never values)."""


# -- configuration ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContractRemindersConfig:
    """A validated ``[contracts.reminders]`` table."""

    source: str
    notify: str
    #: the notify connector's plugin (``wecom``, ``dingtalk``, ``feishu``)
    notify_plugin: str
    to: tuple[str, ...]
    text: str = DEFAULT_TEXT
    #: seconds between runs of ``contracts:reminders``; None with a cron, or never
    schedule_seconds: float | None = DEFAULT_SCHEDULE_SECONDS
    #: a cron expression (the project's time zone) instead of an interval
    schedule_cron: str | None = None

    @property
    def scheduled(self) -> bool:
        return self.schedule_seconds is not None or self.schedule_cron is not None

    def describe_schedule(self) -> str:
        if self.schedule_cron is not None:
            return f"cron {self.schedule_cron}"
        return f"every {self.schedule_seconds:g}s" if self.schedule_seconds is not None else "never"


def _template_problem(text: str) -> str | None:
    """Why ``text`` is not a usable template (None: it is)."""
    probe = {name: "x" for name in TEMPLATE_FIELDS}
    try:
        text.format_map(probe)
    except KeyError as exc:
        return f"unknown field {{{exc.args[0]}}} (known: {', '.join(TEMPLATE_FIELDS)})"
    except (ValueError, IndexError, AttributeError):
        return "malformed template (write a literal brace as {{ or }})"
    return None


def _schedule_from(
    value: Any, timezone: str, problems: list[ConfigProblem]
) -> tuple[float | None, str | None]:
    """(interval seconds, cron) of ``schedule``: a duration, a cron expression, or false."""
    from hub.config import crontab_trigger, parse_duration

    where = "contracts.reminders.schedule"
    if value is False:
        return None, None
    if isinstance(value, str) and len(value.split()) == 5:
        try:
            crontab_trigger(value, timezone)
        except ValueError as exc:
            problems.append(ConfigProblem(where, f"not a cron expression: {exc}"))
            return DEFAULT_SCHEDULE_SECONDS, None
        return None, value
    if isinstance(value, bool):
        problems.append(ConfigProblem(where, 'must be a duration ("1d"), a cron expression or false'))
        return DEFAULT_SCHEDULE_SECONDS, None
    try:
        seconds = parse_duration(value)
    except ValueError:
        problems.append(
            ConfigProblem(where, 'must be a duration ("1d", "12h"), a cron expression ("0 9 * * *") or false')
        )
        return DEFAULT_SCHEDULE_SECONDS, None
    if seconds < 60:
        problems.append(ConfigProblem(where, "must be at least 1m"))
        return DEFAULT_SCHEDULE_SECONDS, None
    return seconds, None


def contract_reminders_from(
    table: Any, connectors: Mapping[str, Any], timezone: str, problems: list[ConfigProblem]
) -> ContractRemindersConfig | None:
    """Validate ``[contracts.reminders]`` (``connectors``: the configured ``[connectors.*]``)."""
    if table is None:
        return None
    where = "contracts.reminders"
    if not isinstance(table, Mapping):
        problems.append(
            ConfigProblem(where, 'must be a table, e.g. { source = "hr_master", notify = "wecom" }')
        )
        return None
    for key in sorted(set(table) - REMINDERS_KEYS):
        problems.append(
            ConfigProblem(f"{where}.{key}", f"unknown key (known: {', '.join(sorted(REMINDERS_KEYS))})")
        )
    ok = True

    def connector(key: str, plugins: Sequence[str], role: str) -> str:
        nonlocal ok
        name = table.get(key)
        if not isinstance(name, str) or not name:
            problems.append(ConfigProblem(f"{where}.{key}", f"required: the name of {role}"))
            ok = False
            return ""
        configured = connectors.get(name)
        if configured is None:
            problems.append(ConfigProblem(f"{where}.{key}", f"no [connectors.{name}] table"))
            ok = False
            return ""
        plugin = str(configured.plugin)
        if plugin not in plugins:
            problems.append(
                ConfigProblem(
                    f"{where}.{key}",
                    f"connector {name!r} (plugin {plugin!r}) is not {role} ({' / '.join(plugins)})",
                )
            )
            ok = False
        return plugin

    connector("source", (SOURCE_PLUGIN,), "an HR master database connector")
    notify_plugin = connector("notify", OA_PLUGINS, "an OA connector that sends messages")
    if notify_plugin in APP_PLUGINS and not connectors[table["notify"]].config.get("agent_id"):
        problems.append(
            ConfigProblem(
                f"{where}.notify",
                f"connector {table['notify']!r} has no agent_id: the app that sends the messages",
            )
        )
        ok = False

    to = table.get("to")
    if isinstance(to, str):
        to = [to]
    if not isinstance(to, list) or not to:
        problems.append(
            ConfigProblem(f"{where}.to", "required: a list of the HR users' ids at the OA vendor")
        )
        ok, to = False, []
    for i, user in enumerate(to):
        if not isinstance(user, str) or not _USER_ID_RE.match(user):
            problems.append(
                ConfigProblem(f"{where}.to[{i}]", "must be a user id (1-64 letters, digits, _.@-)")
            )
            ok = False

    text = table.get("text", DEFAULT_TEXT)
    if not isinstance(text, str) or not text.strip():
        problems.append(ConfigProblem(f"{where}.text", "must be a non-empty template"))
        ok, text = False, DEFAULT_TEXT
    elif (why := _template_problem(text)) is not None:
        problems.append(ConfigProblem(f"{where}.text", why))
        ok = False

    seconds, cron = _schedule_from(table.get("schedule", DEFAULT_SCHEDULE_SECONDS), timezone, problems)
    if not ok:
        return None
    return ContractRemindersConfig(
        source=str(table["source"]),
        notify=str(table["notify"]),
        notify_plugin=notify_plugin,
        to=tuple(dict.fromkeys(str(u) for u in to)),
        text=text,
        schedule_seconds=seconds,
        schedule_cron=cron,
    )


# -- the HR master ---------------------------------------------------------------------------------


#: ``(employee_no, employee row id, name column, sealed name) -> name``
NameOpener = Callable[[str, str, str, str], str | None]


def keyring_name_opener(keyring_of: Callable[[], Keyring], connector: str, table: str) -> NameOpener:
    """Open a name hub sealed into the HR master: bound to ``<connector>/employees`` (or the table's
    own name), the column, and the employee number (or row id) as the record; None if it does not."""
    from hub.crypto.keyring import DecryptionError
    from hub.pii import destination_table

    places = [destination_table(connector, s) for s in dict.fromkeys(("employees", table))]

    def open_name(employee_no: str, row_id: str, column: str, sealed: str) -> str | None:
        keyring = keyring_of()
        for place in places:
            for record in dict.fromkeys((employee_no, row_id)):
                try:
                    return keyring.open_text(sealed, place, column, record)
                except DecryptionError:
                    continue
        return None

    return open_name


@dataclass
class SourceRead:
    """What the HR master gave: the contracts to consider, and those whose name did not open."""

    contracts: list[ExpiringContract] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


def _as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value:
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _reflect(engine: Engine, config: Mapping[str, Any], stream: str) -> Table:
    from hub_sql.common import table_name
    from sqlalchemy import MetaData, Table
    from sqlalchemy.exc import NoSuchTableError

    name = table_name(config, stream)
    try:
        return Table(name, MetaData(), autoload_with=engine, schema=config.get("schema"))
    except NoSuchTableError:
        raise ReminderSourceError(
            f"the HR master has no table {name!r} (apply schemas/hr_master/*.sql, or map it with the "
            f'connector\'s tables = {{ {stream} = "..." }})'
        ) from None


def _require(table: Table, *columns: str) -> None:
    missing = [c for c in columns if c not in table.c]
    if missing:
        raise ReminderSourceError(f"the HR master's {table.name!r} table has no column {', '.join(missing)}")


def read_hr_master(
    config: Mapping[str, Any],
    *,
    connector: str,
    today: date,
    horizon_days: int,
    opener: NameOpener | None = None,
) -> SourceRead:
    """Contracts in force ending between ``today`` and ``today + horizon_days``, with their employee."""
    from hub_sql.common import engine_for, safe_error
    from sqlalchemy import or_, select
    from sqlalchemy.exc import DBAPIError

    from hub.crypto.envelope import is_text_ciphertext

    read = SourceRead()
    try:
        engine = engine_for(config)
    except (KeyError, TypeError, ValueError) as exc:
        raise ReminderSourceError(
            f"the {connector} connector is misconfigured ({type(exc).__name__})"
        ) from None
    try:
        contracts, employees = _reflect(engine, config, "contracts"), _reflect(engine, config, "employees")
        _require(contracts, "contract_no", "employee_id", "end_date", "status")
        _require(employees, "id", "employee_no", "name")
        c, e = contracts.c, employees.c
        query = (
            select(c["contract_no"], c["end_date"], e["id"], e["employee_no"], e["name"])
            .select_from(contracts.join(employees, c.employee_id == e.id))
            .where(c.status.in_(CONTRACT_STATUSES))
            .where(c.end_date.is_not(None))
            .where(c.end_date >= today, c.end_date <= today + timedelta(days=horizon_days))
            .order_by(c.end_date, c.contract_no)
        )
        if "status" in e:
            query = query.where(or_(e.status.is_(None), e.status.not_in(GONE_STATUSES)))
        with engine.connect() as conn:
            rows = conn.execute(query).all()
    except DBAPIError as exc:
        raise ReminderSourceError(f"HR master database: {safe_error(exc)}") from None
    finally:
        engine.dispose()
    for contract_no, end_raw, row_id, employee_no, name in rows:
        end = _as_date(end_raw)
        if end is None or not contract_no:
            continue
        contract_no, employee_no = str(contract_no).strip(), str(employee_no or "").strip()
        plain = str(name or "").strip()
        if is_text_ciphertext(plain):
            opened = opener(employee_no, str(row_id), "name", plain) if opener is not None else None
            if opened is None:
                read.unreadable.append(contract_no)
                continue
            plain = opened.strip()
        read.contracts.append(
            ExpiringContract(
                contract_id=contract_no,
                end_date=end,
                employee_name=plain,
                employee_number=employee_no or None,
                contract_number=contract_no,
            )
        )
    if read.unreadable:
        log.warning(
            "contract reminders: the employee name of %d contract(s) does not open with this project's "
            "keys; they are skipped",
            len(read.unreadable),
        )
    return read


# -- the OA message --------------------------------------------------------------------------------


#: ``(user ids, text, key)``: one message to the users; ``key`` de-duplicates at vendors that take one
TextSender = Callable[[Sequence[str], str, str], None]


def oa_sender(plugin: str, config: Mapping[str, Any]) -> TextSender:
    """Send text through the OA connector's client, with the call its ``send_welcome`` action uses."""
    if plugin == "wecom":
        from hub_wecom.client import WeComClient

        wecom = WeComClient.from_config(config)

        def send_wecom(to: Sequence[str], text: str, key: str) -> None:
            wecom.send_text(to, text)  # WeCom drops the same text to the same users within 4 h

        return send_wecom
    if plugin == "dingtalk":
        from hub_dingtalk.client import DingTalkClient

        dingtalk = DingTalkClient.from_config(config)

        def send_dingtalk(to: Sequence[str], text: str, key: str) -> None:
            dingtalk.send_text(to, text)  # DingTalk delivers the same text once a day per person

        return send_dingtalk
    if plugin == "feishu":
        from hub_feishu.client import FeishuClient

        feishu = FeishuClient.from_config(config)

        def send_feishu(to: Sequence[str], text: str, key: str) -> None:
            for user in to:  # one message per user; Feishu drops a repeated uuid within an hour
                digest = hashlib.sha256(f"{key}|{user}".encode()).hexdigest()[:32]
                feishu.send_text(user, text, f"hubrem-{digest}")

        return send_feishu
    raise ValueError(f"plugin {plugin!r} cannot send messages ({', '.join(OA_PLUGINS)})")


def render(template: str, reminder: Reminder) -> str:
    """The message of ``reminder`` by ``template`` (validated with the config), masked as a last guard."""
    values: defaultdict[str, str] = defaultdict(
        str,
        message=reminder.message,
        name=reminder.masked_name,
        employee_no=reminder.employee_number or "",
        contract_no=reminder.contract_number or reminder.contract_id,
        end_date=reminder.end_date.isoformat(),
        days_left=str(reminder.days_left),
        days_before=str(reminder.days_before),
    )
    return mask_text(template.format_map(values))


class OANotifier:
    """A reminder sink: the reminder, by template, to the HR users through an OA app. Raises when
    the send fails, so :func:`send_expiry_reminders` releases it for the next run."""

    def __init__(self, send: TextSender, to: Sequence[str], template: str = DEFAULT_TEXT) -> None:
        self.send = send
        self.to = tuple(to)
        self.template = template

    def __call__(self, reminder: Reminder) -> None:
        self.send(self.to, render(self.template, reminder), str(reminder.key))


# -- the job ---------------------------------------------------------------------------------------


@dataclass
class ReminderJobResult:
    """One run: what the ledger-guarded send did, how many contracts were read, which were skipped."""

    run: ReminderRun
    contracts: int
    unreadable: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.run.failed and not self.unreadable

    def summary(self) -> str:
        run = self.run
        text = (
            f"{len(run.sent)} sent, {len(run.already_sent)} already sent, {len(run.failed)} failed "
            f"({run.today.isoformat()}, {self.contracts} contract(s) ending within the stages)"
        )
        if self.unreadable:
            text += f"; {len(self.unreadable)} skipped: name does not open ({', '.join(self.unreadable)})"
        return text


def reminders_config(project: Project) -> ContractRemindersConfig:
    config = project.settings.contract_reminders
    if config is None:
        from hub.errors import ConfigurationError

        raise ConfigurationError(
            [
                ConfigProblem(
                    "contracts.reminders",
                    'not configured (source = "<sql connector>", notify = ..., to = [...])',
                )
            ],
            str(project.path),
        )
    return config


def read_source(project: Project, today: date) -> SourceRead:
    """The configured HR master's contracts that a stage may be due for on ``today``."""
    from hub_sql.common import table_name

    config = reminders_config(project)

    source = project.config_of(config.source)
    opener = keyring_name_opener(lambda: project.keyring, config.source, table_name(source, "employees"))
    return read_hr_master(
        source,
        connector=config.source,
        today=today,
        horizon_days=max(project.settings.contracts.reminder_days),
        opener=opener,
    )


def preview_contract_reminders(
    project: Project, today: date | None = None
) -> tuple[list[Reminder], SourceRead]:
    """The reminders due on ``today`` before the ledger is asked: nothing sent, nothing recorded."""
    day = today or today_in(project.settings.timezone)
    read = read_source(project, day)
    return due_reminders(read.contracts, day, project.settings.contracts.reminder_days), read


def run_contract_reminders(
    project: Project,
    *,
    today: date | None = None,
    sink: Callable[[Reminder], None] | None = None,
    ledger: ReminderLedger | None = None,
) -> ReminderJobResult:
    """Send the reminders due today through the configured OA app, each once (the job's body)."""
    config = reminders_config(project)
    day = today or today_in(project.settings.timezone)
    read = read_source(project, day)
    if sink is None:
        sink = OANotifier(
            oa_sender(config.notify_plugin, project.config_of(config.notify)), config.to, config.text
        )
    run = send_expiry_reminders(
        read.contracts,
        sink,
        ledger if ledger is not None else SqlReminderLedger(project.db.engine),
        days=project.settings.contracts.reminder_days,
        today=day,
    )
    return ReminderJobResult(run, len(read.contracts) + len(read.unreadable), read.unreadable)
