"""The ``[onboarding]`` table of hub.toml: the tasks of every case, their order, retries.

::

    [onboarding]
    tasks = [
      { name = "create_hr_record", action = "sql.upsert_employee", connector = "hr_master" },
      { name = "create_oa_account", action = "wecom.create_user", connector = "wecom" },
      { name = "enrol_payroll", action = "payroll.enrol", connector = "payroll",
        after = ["create_hr_record"], retry = { attempts = 10 } },
    ]
    retry = { attempts = 5, base = "30s", max = "1h" }   # per task too
    claim_ttl = "5m"          # a runner's claim on a task; must outlast the slowest vendor call
    schedule = "1m"           # hub scheduler runs intake + due tasks this often (false: never)
    store = "canonical"       # sql connector with the canonical tables (--offer, intake)
    intake = { entity = "Offer", statuses = ["ACCEPTED"] }

A task without ``after`` runs after the task before it in the list (the first runs first);
``after = []`` starts it at once. Structure, names, connectors and cycles are checked here
with every problem naming its key; that each action exists (a plugin registers it) and fits
its connector is checked once plugins are loaded (:func:`hub.onboarding.flow.check_actions`).
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from hub.errors import ConfigProblem

ONBOARDING_KEYS = frozenset({"tasks", "retry", "claim_ttl", "schedule", "store", "intake"})
TASK_KEYS = frozenset({"name", "action", "connector", "after", "options", "retry"})
RETRY_KEYS = frozenset({"attempts", "base", "max"})
INTAKE_KEYS = frozenset({"entity", "statuses"})
TASK_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,99}$")


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts of a task before an operator must look, and the backoff between them."""

    attempts: int = 5
    base: float = 30.0
    cap: float = 3600.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds before the attempt after ``attempt`` (1-based): the vendor's Retry-After, else
        ``base * 2 ** (attempt - 1)`` capped, the upper half jittered (runners spread out)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.cap)
        full = min(self.cap, self.base * 2.0 ** min(attempt - 1, 64))
        return full / 2 + random.uniform(0, full / 2)


@dataclass(frozen=True)
class TaskSpec:
    """One configured task (``onboarding.tasks[i]``)."""

    name: str
    action: str
    connector: str | None
    after: tuple[str, ...]
    options: Mapping[str, Any] = field(default_factory=dict)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    position: int = 0


@dataclass(frozen=True)
class IntakeSpec:
    """Which change events open cases: the entity and the statuses meaning "accepted"."""

    entity: str = "Offer"
    statuses: tuple[str, ...] = ("ACCEPTED",)


@dataclass(frozen=True)
class OnboardingConfig:
    """A validated ``[onboarding]`` table (empty: onboarding is off)."""

    tasks: tuple[TaskSpec, ...] = ()
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    claim_ttl: float = 300.0
    #: seconds between scheduler runs of ``onboarding:run``; None: not scheduled
    schedule_seconds: float | None = 60.0
    store: str | None = None
    intake: IntakeSpec = field(default_factory=IntakeSpec)

    @property
    def enabled(self) -> bool:
        return bool(self.tasks)

    def task(self, name: str) -> TaskSpec | None:
        return next((t for t in self.tasks if t.name == name), None)


def _duration(value: Any, where: str, problems: list[ConfigProblem]) -> float | None:
    from hub.config import parse_duration

    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        problems.append(ConfigProblem(where, str(exc)))
        return None
    if seconds <= 0:
        problems.append(ConfigProblem(where, "must be positive"))
        return None
    return seconds


def _retry_from(value: Any, where: str, default: RetryPolicy, problems: list[ConfigProblem]) -> RetryPolicy:
    if value is None:
        return default
    if not isinstance(value, Mapping):
        problems.append(
            ConfigProblem(where, 'must be a table, e.g. { attempts = 5, base = "30s", max = "1h" }')
        )
        return default
    for key in sorted(set(value) - RETRY_KEYS):
        problems.append(
            ConfigProblem(f"{where}.{key}", f"unknown key (known: {', '.join(sorted(RETRY_KEYS))})")
        )
    attempts = value.get("attempts", default.attempts)
    if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
        problems.append(ConfigProblem(f"{where}.attempts", "must be a positive integer"))
        attempts = default.attempts
    base = _duration(value["base"], f"{where}.base", problems) if "base" in value else default.base
    cap = _duration(value["max"], f"{where}.max", problems) if "max" in value else default.cap
    base, cap = base or default.base, cap or default.cap
    if base > cap:
        problems.append(ConfigProblem(f"{where}.base", "must not exceed max"))
    return RetryPolicy(attempts=attempts, base=base, cap=cap)


def _cycle(after: Mapping[str, tuple[str, ...]]) -> list[str] | None:
    """A dependency cycle (``[a, b, a]``), or None."""
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        stack.append(name)
        for dep in after.get(name, ()):
            if dep not in after:
                continue
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if state.get(dep) is None and (found := visit(dep)) is not None:
                return found
        stack.pop()
        state[name] = 2
        return None

    for name in after:
        if state.get(name) is None and (found := visit(name)) is not None:
            return found
    return None


def _task_from(
    i: int,
    item: Any,
    previous: str | None,
    connectors: Mapping[str, Any],
    retry: RetryPolicy,
    problems: list[ConfigProblem],
) -> TaskSpec | None:
    where = f"onboarding.tasks[{i}]"
    if not isinstance(item, Mapping):
        problems.append(ConfigProblem(where, "must be a table with name and action"))
        return None
    for key in sorted(set(item) - TASK_KEYS):
        problems.append(
            ConfigProblem(f"{where}.{key}", f"unknown key (known: {', '.join(sorted(TASK_KEYS))})")
        )
    name, action = item.get("name"), item.get("action")
    ok = True
    if not isinstance(name, str) or not TASK_NAME_RE.match(name):
        problems.append(
            ConfigProblem(
                f"{where}.name", "required: a letter, then letters, digits, '_' or '-' (at most 100)"
            )
        )
        ok = False
    if not isinstance(action, str) or not action:
        problems.append(ConfigProblem(f"{where}.action", "required: <connector plugin>.<verb>"))
        ok = False
    connector = item.get("connector")
    if connector is not None:
        if not isinstance(connector, str) or not connector:
            problems.append(ConfigProblem(f"{where}.connector", "must be a connector name"))
            connector = None
        elif connector not in connectors:
            problems.append(ConfigProblem(f"{where}.connector", f"no [connectors.{connector}] table"))
    after_raw = item.get("after", [previous] if previous else [])
    if isinstance(after_raw, str):
        after_raw = [after_raw]
    if not isinstance(after_raw, list) or not all(isinstance(a, str) for a in after_raw):
        problems.append(ConfigProblem(f"{where}.after", "must be a list of task names"))
        after_raw = []
    options = item.get("options", {})
    if not isinstance(options, Mapping):
        problems.append(ConfigProblem(f"{where}.options", "must be a table"))
        options = {}
    task_retry = _retry_from(item.get("retry"), f"{where}.retry", retry, problems)
    if not ok:
        return None
    return TaskSpec(
        name=str(name),
        action=str(action),
        connector=connector,
        after=tuple(dict.fromkeys(after_raw)),
        options=MappingProxyType(dict(options)),
        retry=task_retry,
        position=i,
    )


def onboarding_config_from(
    raw: Any, connectors: Mapping[str, Any], problems: list[ConfigProblem]
) -> OnboardingConfig:
    """Validate ``[onboarding]`` (``connectors``: the configured ``[connectors.*]`` by name)."""
    if raw is None:
        return OnboardingConfig()
    if not isinstance(raw, Mapping):
        problems.append(ConfigProblem("onboarding", "must be a table"))
        return OnboardingConfig()
    for key in sorted(set(raw) - ONBOARDING_KEYS):
        problems.append(
            ConfigProblem(f"onboarding.{key}", f"unknown key (known: {', '.join(sorted(ONBOARDING_KEYS))})")
        )
    retry = _retry_from(raw.get("retry"), "onboarding.retry", RetryPolicy(), problems)
    claim_ttl = 300.0
    if "claim_ttl" in raw:
        claim_ttl = _duration(raw["claim_ttl"], "onboarding.claim_ttl", problems) or claim_ttl
    schedule: float | None = 60.0
    if raw.get("schedule", True) is False:
        schedule = None
    elif "schedule" in raw:
        schedule = _duration(raw["schedule"], "onboarding.schedule", problems) or schedule
    store = raw.get("store")
    if store is not None and (not isinstance(store, str) or store not in connectors):
        problems.append(ConfigProblem("onboarding.store", f"no [connectors.{store}] table"))
        store = None
    intake = _intake_from(raw.get("intake"), problems)

    items = raw.get("tasks", [])
    if not isinstance(items, list):
        problems.append(ConfigProblem("onboarding.tasks", "must be a list of tables"))
        items = []
    tasks: list[TaskSpec] = []
    seen: dict[str, int] = {}
    previous: str | None = None
    for i, item in enumerate(items):
        spec = _task_from(i, item, previous, connectors, retry, problems)
        if spec is None:
            previous = None
            continue
        if spec.name in seen:
            problems.append(
                ConfigProblem(
                    f"onboarding.tasks[{i}].name",
                    f"duplicate task name {spec.name!r} (also tasks[{seen[spec.name]}])",
                )
            )
        else:
            seen[spec.name] = i
            tasks.append(spec)
        previous = spec.name
    names = {t.name for t in tasks}
    for spec in tasks:
        for dep in spec.after:
            if dep == spec.name:
                problems.append(
                    ConfigProblem(
                        f"onboarding.tasks[{spec.position}].after", "a task cannot run after itself"
                    )
                )
            elif dep not in names:
                problems.append(
                    ConfigProblem(f"onboarding.tasks[{spec.position}].after", f"unknown task {dep!r}")
                )
    cycle = _cycle({t.name: tuple(d for d in t.after if d != t.name) for t in tasks})
    if cycle is not None:
        first = next(t for t in tasks if t.name == cycle[0])
        problems.append(
            ConfigProblem(f"onboarding.tasks[{first.position}].after", f"cycle: {' -> '.join(cycle)}")
        )
    return OnboardingConfig(
        tasks=tuple(tasks),
        retry=retry,
        claim_ttl=claim_ttl,
        schedule_seconds=schedule,
        store=store,
        intake=intake,
    )


def _intake_from(value: Any, problems: list[ConfigProblem]) -> IntakeSpec:
    if value is None:
        return IntakeSpec()
    if not isinstance(value, Mapping):
        problems.append(ConfigProblem("onboarding.intake", 'must be a table, e.g. { entity = "Offer" }'))
        return IntakeSpec()
    for key in sorted(set(value) - INTAKE_KEYS):
        problems.append(
            ConfigProblem(
                f"onboarding.intake.{key}", f"unknown key (known: {', '.join(sorted(INTAKE_KEYS))})"
            )
        )
    entity = value.get("entity", "Offer")
    if not isinstance(entity, str) or not entity:
        problems.append(ConfigProblem("onboarding.intake.entity", "must be an entity name"))
        entity = "Offer"
    statuses = value.get("statuses", ["ACCEPTED"])
    if isinstance(statuses, str):
        statuses = [statuses]
    if not isinstance(statuses, list) or not statuses or not all(isinstance(s, str) for s in statuses):
        problems.append(ConfigProblem("onboarding.intake.statuses", "must be a non-empty list of statuses"))
        statuses = ["ACCEPTED"]
    return IntakeSpec(entity=entity, statuses=tuple(s.upper() for s in statuses))
