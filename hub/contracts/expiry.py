"""Contract expiry reminders that a daily job sends exactly once per contract and stage.

A contract is due a reminder at each configured number of days before its end date
(``[contracts] reminder_days = [60, 30]``). Run on any day, :func:`send_expiry_reminders`
sends the most urgent stage whose day has come and that the ledger has not recorded, so:

* a run every day sends each stage on its day;
* a day the job did not run is caught up on the next run (the stage's window lasts until the
  next stage or the end date), never skipped;
* a second run the same day, or two schedulers racing, send nothing more: the ledger's
  :meth:`~ReminderLedger.claim` is atomic, and a renewed contract (new end date) starts afresh.

A send that fails is released from the ledger and retried by the next run. Messages carry the
employee's name masked (``张*``); the sink gets a :class:`Reminder`. The scheduled job that reads
the HR master and messages HR through an OA app is :mod:`hub.contracts.reminders`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError

from hub.masking import mask_text

log = logging.getLogger(__name__)

Mode = Literal["window", "exact"]
DEFAULT_TIMEZONE = "Asia/Shanghai"


def mask_name(name: str) -> str:
    """``张三`` -> ``张*``, ``欧阳娜娜`` -> ``欧***``, ``Zhang Wei`` -> ``Z**** ***``: first character kept."""
    name = name.strip()
    if len(name) <= 1:
        return "*" * len(name)
    return name[0] + "".join(" " if c.isspace() else "*" for c in name[1:])


@dataclass(frozen=True)
class ExpiringContract:
    """A contract's end as the reminder job needs it. ``employee_name`` is personal data."""

    contract_id: str
    end_date: date
    employee_name: str
    employee_number: str | None = None
    employer: str | None = None
    #: the contract number HR knows it by (shown in the message); None: not shown
    contract_number: str | None = None

    @classmethod
    def from_contract(
        cls, contract: Any, *, employee_name: str, employee_number: str | None = None
    ) -> ExpiringContract:
        """From a canonical :class:`~hub.schema.contract.EmploymentContract` (open-ended ones have no end)."""
        if contract.end_date is None:
            raise ValueError("an open-ended contract does not expire")
        return cls(str(contract.hub_id), contract.end_date, employee_name, employee_number)


@dataclass(frozen=True)
class ReminderKey:
    """One reminder: a contract's end date and the stage (days before it). Renewal changes the key."""

    contract_id: str
    end_date: date
    days_before: int

    def __str__(self) -> str:
        return f"{self.contract_id}@{self.end_date.isoformat()}/{self.days_before}"


@dataclass(frozen=True)
class Reminder:
    """A reminder to send: the masked message and what a sink needs to route it."""

    contract_id: str
    end_date: date
    days_before: int
    days_left: int
    employee_number: str | None
    masked_name: str
    message: str
    contract_number: str | None = None

    @property
    def key(self) -> ReminderKey:
        return ReminderKey(self.contract_id, self.end_date, self.days_before)


def _cn_date(value: date) -> str:
    return f"{value.year}年{value.month}月{value.day}日"


def reminder_stage(end_date: date, today: date, days: Sequence[int], mode: Mode = "window") -> int | None:
    """The stage (days before the end) due on ``today``, or None.

    ``window``: the smallest configured day count not below the days left, until the end date
    itself. ``exact``: only on the very day a stage names.
    """
    left = (end_date - today).days
    if left < 0:
        return None
    if mode == "exact":
        return left if left in days else None
    due = [d for d in days if d >= left]
    return min(due) if due else None


def reminder_message(contract: ExpiringContract, days_left: int) -> str:
    """The reminder text, the name masked, passed through :func:`mask_text` as a last guard."""
    who = f"{contract.employer}员工" if contract.employer else "员工"
    number = f"（工号 {contract.employee_number}）" if contract.employee_number else ""
    document = f"劳动合同（合同编号 {contract.contract_number}）" if contract.contract_number else "劳动合同"
    when = "今天到期" if days_left == 0 else f"将于{_cn_date(contract.end_date)}到期，剩余{days_left}天"
    text = (
        f"【劳动合同到期提醒】{who}{mask_name(contract.employee_name)}{number}的{document}{when}。"
        "请及时确认续签或终止，并按规定提前通知员工。"
    )
    return mask_text(text)


def due_reminders(
    contracts: Iterable[ExpiringContract], today: date, days: Sequence[int], *, mode: Mode = "window"
) -> list[Reminder]:
    """Reminders due on ``today`` before the ledger is asked, in end-date order."""
    out: list[Reminder] = []
    for contract in sorted(contracts, key=lambda c: (c.end_date, c.contract_id)):
        stage = reminder_stage(contract.end_date, today, days, mode)
        if stage is None:
            continue
        left = (contract.end_date - today).days
        out.append(
            Reminder(
                contract_id=contract.contract_id,
                end_date=contract.end_date,
                days_before=stage,
                days_left=left,
                employee_number=contract.employee_number,
                masked_name=mask_name(contract.employee_name),
                message=reminder_message(contract, left),
                contract_number=contract.contract_number,
            )
        )
    return out


# -- the ledger -----------------------------------------------------------------------------------


class ReminderLedger(Protocol):
    """Which reminders were sent. ``claim`` must be atomic: two runs never both get True."""

    def claim(self, key: ReminderKey, *, at: datetime) -> bool:
        """Record ``key`` as sent unless it is already; True when this call recorded it."""
        ...

    def release(self, key: ReminderKey) -> None:
        """Forget a claim whose send failed, so the next run sends it."""
        ...

    def recorded(self, key: ReminderKey) -> bool: ...


class MemoryReminderLedger:
    """A ledger in memory, for tests and one-shot previews."""

    def __init__(self) -> None:
        self._sent: dict[ReminderKey, datetime] = {}
        self._lock = threading.Lock()

    def claim(self, key: ReminderKey, *, at: datetime) -> bool:
        with self._lock:
            if key in self._sent:
                return False
            self._sent[key] = at
            return True

    def release(self, key: ReminderKey) -> None:
        with self._lock:
            self._sent.pop(key, None)

    def recorded(self, key: ReminderKey) -> bool:
        return key in self._sent


class SqlReminderLedger:
    """A ledger table in any SQLAlchemy database; its primary key makes ``claim`` atomic.

    The table (``contract_reminder_ledger`` by default) is created if missing. Point it at a
    database of the flow's own, or add it to hub's state store with a migration.
    """

    def __init__(self, engine: sa.Engine | str, table: str = "contract_reminder_ledger") -> None:
        self.engine = sa.create_engine(engine) if isinstance(engine, str) else engine
        metadata = sa.MetaData()
        self.table = sa.Table(
            table,
            metadata,
            sa.Column("contract_id", sa.String(128), primary_key=True),
            sa.Column("end_date", sa.Date, primary_key=True),
            sa.Column("days_before", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        )
        try:
            metadata.create_all(self.engine, checkfirst=True)
        except DBAPIError:
            # two processes creating it at once (the scheduler and the CLI): the loser finds it
            if not sa.inspect(self.engine).has_table(table):
                raise

    def _where(self, key: ReminderKey) -> sa.ColumnElement[bool]:
        c = self.table.c
        return sa.and_(
            c.contract_id == key.contract_id, c.end_date == key.end_date, c.days_before == key.days_before
        )

    def claim(self, key: ReminderKey, *, at: datetime) -> bool:
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    self.table.insert().values(
                        contract_id=key.contract_id,
                        end_date=key.end_date,
                        days_before=key.days_before,
                        sent_at=at,
                    )
                )
        except IntegrityError:
            return False
        return True

    def release(self, key: ReminderKey) -> None:
        with self.engine.begin() as conn:
            conn.execute(self.table.delete().where(self._where(key)))

    def recorded(self, key: ReminderKey) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.literal(1)).where(self._where(key))).first() is not None


# -- the run --------------------------------------------------------------------------------------


@dataclass
class ReminderRun:
    """What one run did: sent, already sent (by an earlier run), failed (released for the next)."""

    today: date
    sent: list[Reminder] = field(default_factory=list)
    already_sent: list[ReminderKey] = field(default_factory=list)
    failed: list[tuple[ReminderKey, str]] = field(default_factory=list)


def today_in(timezone: str = DEFAULT_TIMEZONE) -> date:
    """The calendar day in the company's time zone (a run at 00:30 Beijing is not 'yesterday')."""
    return datetime.now(ZoneInfo(timezone)).date()


def send_expiry_reminders(
    contracts: Iterable[ExpiringContract],
    sink: Callable[[Reminder], None],
    ledger: ReminderLedger,
    *,
    days: Sequence[int] = (30,),
    today: date | None = None,
    mode: Mode = "window",
    timezone: str = DEFAULT_TIMEZONE,
) -> ReminderRun:
    """Send each due reminder through ``sink`` once: claimed in the ledger first, released on failure."""
    if not days or any(d < 0 for d in days):
        raise ValueError("days must be a non-empty list of days >= 0 before the end date")
    run = ReminderRun(today or today_in(timezone))
    for reminder in due_reminders(contracts, run.today, days, mode=mode):
        key = reminder.key
        if not ledger.claim(key, at=datetime.now(UTC)):
            run.already_sent.append(key)
            continue
        try:
            sink(reminder)
        except Exception as exc:  # noqa: BLE001 - one failed send must not stop the others
            ledger.release(key)
            run.failed.append((key, type(exc).__name__))
            log.warning(
                "expiry reminder for contract %s failed (%s); will retry", key.contract_id, type(exc).__name__
            )
            continue
        run.sent.append(reminder)
    log.info(
        "expiry reminders %s: %d sent, %d already sent, %d failed",
        run.today.isoformat(),
        len(run.sent),
        len(run.already_sent),
        len(run.failed),
    )
    return run
