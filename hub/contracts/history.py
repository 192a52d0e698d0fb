"""The history of the contract clause rules: every clause-set version hub used, with its rules.

A document carries its clause-set version (``cs-…``, see :mod:`hub.contracts.documents`), but
hub.toml moves on. So whenever hub uses the rules (rendering an offer letter or contract, an
e-contract action sending one, ``hub contracts version``, ``hub config check``) the version is
recorded in hub's database, table ``contract_clause_versions``, the first time it is seen: the
rules it stands for, the template digests, when it was first and last seen, which command (or
the scheduler) recorded it and the version it replaced. A contract archived with version X can
then be traced to the exact rules, and ``hub contracts history`` shows what changed between
versions.

Recording is cheap: a process looks a version up once (again after :data:`REFRESH_SECONDS`,
to move ``last_seen_at`` on in long-running processes). It is race-safe: the version is the
table's unique key, and a process that loses the race to insert it finds the winner's row.
Clause rules are policy, not personal data; a value that looks like personal data all the same
(an ID number in a ``when`` condition) is stored masked and its path listed in ``masked``.
"""

from __future__ import annotations

import contextvars
import hashlib
import importlib
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from hub.contracts.clauses import OPERATORS, ContractsConfig, condition, show
from hub.contracts.documents import ClauseSetVersion, DocumentGenerator
from hub.errors import ConfigurationError
from hub.masking import mask_text, pii_kind
from hub.store.models import ContractClauseVersion, utcnow

if TYPE_CHECKING:
    from hub.project import Project
    from hub.store import Database

log = logging.getLogger(__name__)

#: A process looks a version it has recorded up again after this long (``last_seen_at``).
REFRESH_SECONDS = 3600.0
SCHEDULER = "scheduler"
MASK = "***"
Outcome = Literal["recorded", "seen", "cached"]

#: Kinds of :func:`hub.masking.pii_kind` whose values a condition must not name.
_PERSONAL_KINDS = frozenset({"id_number", "phone", "bank_account", "email", "text"})
_NAME_FIELDS = frozenset({"name", "employee_name", "candidate_name", "full_name", "legal_name"})
_COMBINATORS = frozenset({"any", "all", "not"})
_COMMAND_WORD = re.compile(r"^[a-z][a-z0-9-]*$")
_HUB_PROGRAMS = ("hub", "hub.exe")
_recorder: contextvars.ContextVar[str | None] = contextvars.ContextVar("clause_recorder", default=None)


# -- who records -------------------------------------------------------------------------------


@contextmanager
def recording_as(name: str) -> Iterator[None]:
    """Record clause versions as ``name`` in this context (library callers, jobs)."""
    token = _recorder.set(name)
    try:
        yield
    finally:
        _recorder.reset(token)


def _argv_command(argv: list[str]) -> str | None:
    """The first command word of a ``hub`` process's arguments (never an argument's value)."""
    if not argv:
        return None
    program = PurePath(argv[0])
    if program.name not in _HUB_PROGRAMS and program.parent.name != "hub":
        return None  # not the hub command (python -m hub.cli runs hub/cli.py)
    words = iter(argv[1:])
    for word in words:
        if word in ("-c", "--config"):
            next(words, None)
        elif not word.startswith("-"):
            return word if _COMMAND_WORD.match(word) else None
    return None


def _command_context() -> Any:
    """The running command's context: from typer's own copy of click (typer >= 0.2x), or click's."""
    for module in ("typer._click.globals", "click.globals"):
        try:
            current = importlib.import_module(module).get_current_context
        except (ImportError, AttributeError):
            continue
        ctx = current(silent=True)
        if ctx is not None:
            return ctx
    return None


def recorded_by() -> str:
    """Who is using the clause rules: the hub command running (``hub contracts render``), or
    ``scheduler`` in ``hub scheduler start`` (whose jobs run in threads without the command)."""
    named = _recorder.get()
    if named:
        return named
    ctx = _command_context()
    words: list[str] = []
    while ctx is not None and ctx.parent is not None:
        words.insert(0, str(ctx.info_name))
        ctx = ctx.parent
    if not words:
        first = _argv_command(sys.argv)
        words = [first] if first else []
    if words[:1] == [SCHEDULER]:
        return SCHEDULER
    return " ".join(["hub", *words])


# -- what is recorded --------------------------------------------------------------------------


def recordable_rules(config: ContractsConfig) -> tuple[dict[str, Any], list[str]]:
    """The normalised rules (:meth:`ContractsConfig.rules_payload`) safe to store, and the paths
    of values masked because they look like personal data.

    Masked: ID-number, phone, bank-card and e-mail shapes in any text, and every value a ``when``
    condition compares with a personal field (``id_number``, ``phone``, ``employee_name``, ...).
    """
    masked: list[str] = []

    def walk(value: Any, path: str, in_when: bool, personal: bool) -> Any:
        if isinstance(value, Mapping):
            out: dict[str, Any] = {}
            for key, inner in value.items():
                key = str(key)
                is_field = in_when and key not in OPERATORS and key not in _COMBINATORS
                field_personal = is_field and (
                    pii_kind(key) in _PERSONAL_KINDS or key.rsplit(".", 1)[-1] in _NAME_FIELDS
                )
                out[key] = walk(inner, f"{path}.{key}", in_when or key == "when", personal or field_personal)
            return out
        if isinstance(value, list):
            return [walk(item, f"{path}[{i}]", in_when, personal) for i, item in enumerate(value)]
        if value is None or isinstance(value, bool):
            return value
        if personal:
            masked.append(path)
            return MASK
        if isinstance(value, str) and mask_text(value) != value:
            masked.append(path)
            return mask_text(value)
        return value

    rules = walk(config.rules_payload(), "contracts", False, False)
    return rules, masked


def rules_sha256(rules: Mapping[str, Any]) -> str:
    """The digest :meth:`ContractsConfig.rules_digest` gives for these (stored) rules."""
    text = json.dumps(rules, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def as_utc(value: datetime) -> datetime:
    """SQLite and MariaDB hand back naive datetimes: hub stores UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class ClauseVersion:
    """One recorded clause-set version."""

    version: str
    rules_sha256: str
    rules: Mapping[str, Any]
    templates: Mapping[str, str]
    masked: tuple[str, ...]
    first_seen_at: datetime
    last_seen_at: datetime
    recorded_by: str
    previous_version: str | None

    @classmethod
    def of(cls, row: ContractClauseVersion) -> ClauseVersion:
        return cls(
            version=row.version,
            rules_sha256=row.rules_sha256,
            rules=row.rules,
            templates={str(k): str(v) for k, v in (row.templates or {}).items()},
            masked=tuple(row.masked or ()),
            first_seen_at=as_utc(row.first_seen_at),
            last_seen_at=as_utc(row.last_seen_at),
            recorded_by=row.recorded_by,
            previous_version=row.previous_version,
        )

    @property
    def rules_intact(self) -> bool:
        """The stored rules hash to ``rules_sha256`` (false when values were masked)."""
        return rules_sha256(self.rules) == self.rules_sha256

    def as_dict(self, *, rules: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "version": self.version,
            "rules_sha256": self.rules_sha256,
            "first_seen_at": self.first_seen_at.isoformat(),
            "last_seen_at": self.last_seen_at.isoformat(),
            "recorded_by": self.recorded_by,
            "previous_version": self.previous_version,
            "masked": list(self.masked),
        }
        if rules:
            data.update(
                rules=dict(self.rules), templates=dict(self.templates), rules_intact=self.rules_intact
            )
        return data


# -- recording ---------------------------------------------------------------------------------


class SeenVersions:
    """Versions this process has recorded, per database: one lookup per process per version."""

    def __init__(self, refresh_seconds: float = REFRESH_SECONDS) -> None:
        self.refresh_seconds = refresh_seconds
        self._at: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def fresh(self, database: str, version: str) -> bool:
        with self._lock:
            at = self._at.get((database, version))
        return at is not None and time.monotonic() - at < self.refresh_seconds

    def mark(self, database: str, version: str) -> None:
        with self._lock:
            self._at[(database, version)] = time.monotonic()


#: The process's cache (every :class:`ClauseHistory` shares it unless given another).
PROCESS_SEEN = SeenVersions()


class ClauseHistory:
    """The ``contract_clause_versions`` table of one hub database: record versions, read them."""

    def __init__(
        self, db: Database, *, recorded_by: str | None = None, seen: SeenVersions | None = None
    ) -> None:
        self.db = db
        self._recorded_by = recorded_by
        self.seen = seen if seen is not None else PROCESS_SEEN

    def record(
        self, version: ClauseSetVersion, config: ContractsConfig, *, now: datetime | None = None
    ) -> Outcome:
        """Record ``version`` (of ``config``'s rules) if it is new, else move its ``last_seen_at`` on.

        ``recorded`` (this call inserted it), ``seen`` (it was there: its last_seen_at moved on)
        or ``cached`` (this process recorded it lately: no database access).
        """
        if version.rules_sha256 != config.rules_digest():
            raise ValueError("the clause-set version was not computed from these rules")
        if self.seen.fresh(self.db.url, version.id):
            return "cached"
        now = now or utcnow()
        if self._touch(version.id, now):
            self.seen.mark(self.db.url, version.id)
            return "seen"
        rules, masked = recordable_rules(config)
        if masked:
            log.warning(
                "clause rules hold values that look like personal data (%s): stored masked in the clause history",
                ", ".join(masked),
            )
        try:
            with self.db.session() as session:
                previous = session.scalar(
                    select(ContractClauseVersion.version)
                    .order_by(ContractClauseVersion.last_seen_at.desc(), ContractClauseVersion.id.desc())
                    .limit(1)
                )
                session.add(
                    ContractClauseVersion(
                        version=version.id,
                        rules_sha256=version.rules_sha256,
                        rules=rules,
                        templates=dict(version.templates),
                        masked=masked,
                        first_seen_at=now,
                        last_seen_at=now,
                        recorded_by=(self._recorded_by or recorded_by())[:200],
                        previous_version=previous,
                    )
                )
        except IntegrityError:
            # Another process recorded the same version meanwhile: its row is the row.
            if not self._touch(version.id, now):
                raise
            self.seen.mark(self.db.url, version.id)
            return "seen"
        self.seen.mark(self.db.url, version.id)
        log.info("recorded clause set %s (replacing %s)", version.id, previous or "none")
        return "recorded"

    def _touch(self, version: str, now: datetime) -> bool:
        """Whether ``version`` is recorded; its last_seen_at moves on to ``now`` (never back)."""
        with self.db.session() as session:
            found = session.scalar(
                select(ContractClauseVersion.id).where(ContractClauseVersion.version == version)
            )
            if found is None:
                return False
            session.execute(
                update(ContractClauseVersion)
                .where(ContractClauseVersion.id == found, ContractClauseVersion.last_seen_at < now)
                .values(last_seen_at=now)
            )
        return True

    # -- reading ---------------------------------------------------------------------------

    def versions(self) -> list[ClauseVersion]:
        """Every recorded version, newest first."""
        with self.db.session() as session:
            rows = session.scalars(
                select(ContractClauseVersion).order_by(
                    ContractClauseVersion.first_seen_at.desc(), ContractClauseVersion.id.desc()
                )
            ).all()
            return [ClauseVersion.of(row) for row in rows]

    def get(self, version: str) -> ClauseVersion | None:
        """The version with this id, or the only one it is a prefix of (``cs-1a2b``)."""
        with self.db.session() as session:
            row = session.scalar(
                select(ContractClauseVersion).where(ContractClauseVersion.version == version)
            )
            if row is None and len(version) >= 7:
                prefixed = session.scalars(
                    select(ContractClauseVersion)
                    .where(ContractClauseVersion.version.startswith(version, autoescape=True))
                    .limit(2)
                ).all()
                row = prefixed[0] if len(prefixed) == 1 else None
            return ClauseVersion.of(row) if row is not None else None


def history_of(project: Project) -> ClauseHistory:
    return ClauseHistory(project.db)


def project_generator(project: Project) -> DocumentGenerator:
    """A document generator under the project's ``[contracts]`` rules that records its version."""
    return DocumentGenerator(project.settings.contracts, recorder=history_of(project))


def record_project_rules(project: Project) -> tuple[ClauseSetVersion, Outcome]:
    """Record the project's current clause-set version (``hub contracts version``, ``hub config check``)."""
    generator = DocumentGenerator(project.settings.contracts)
    version = generator.clause_set_version()
    return version, history_of(project).record(version, generator.config)


def record_configured_rules(project: Project) -> str | None:
    """``hub config check``: record the version of hub.toml's ``[contracts]`` rules, if it has any.

    A line to print, or None. A database that cannot be reached is a warning, not a failed check.
    """
    if project.settings.contracts == ContractsConfig():
        return None
    try:
        version, outcome = record_project_rules(project)
    except (SQLAlchemyError, OSError) as exc:
        return (
            f"warning: the clause-set version was not recorded in the clause history ({type(exc).__name__})"
        )
    return f"clause set {version.id}" + (
        " (new: recorded in the clause history)" if outcome == "recorded" else ""
    )


# -- what changed --------------------------------------------------------------------------------

_UNSET = "(unset)"


def _when_text(value: Any) -> str:
    if not isinstance(value, Mapping):
        return show(value)
    try:
        return condition(value).describe()
    except ConfigurationError:  # a masked operand no longer parses: show it as stored
        return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _value_text(value: Any) -> str:
    if value is None:
        return _UNSET
    if isinstance(value, Mapping):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return show(value)


def _clause_terms(table: Mapping[str, Any]) -> dict[str, str]:
    """A clause table as ``term -> text``: ``when`` described, nested tables (params) flattened."""
    terms: dict[str, str] = {}

    def flatten(prefix: str, value: Mapping[str, Any]) -> None:
        for key, inner in value.items():
            if isinstance(inner, Mapping) and inner:
                flatten(f"{prefix}{key}.", inner)
            else:
                terms[f"{prefix}{key}"] = _value_text(inner)

    for key, value in table.items():
        if key == "name":
            continue
        if key == "when":
            terms["when"] = _when_text(value)
        elif isinstance(value, Mapping) and value:
            flatten(f"{key}.", value)
        else:
            terms[key] = _value_text(value)
    return terms


def _clauses_by_name(rules: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Clause tables keyed by name (a second rule with the same name: ``name#2``), in rule order."""
    keyed: dict[str, dict[str, str]] = {}
    counts: dict[str, int] = {}
    for table in rules.get("clauses") or []:
        if not isinstance(table, Mapping):
            continue
        name = str(table.get("name", "?"))
        counts[name] = counts.get(name, 0) + 1
        keyed[name if counts[name] == 1 else f"{name}#{counts[name]}"] = _clause_terms(table)
    return keyed


def describe_changes(before: ClauseVersion | None, after: ClauseVersion) -> list[str]:
    """What changed from ``before`` to ``after``, one line per change, e.g.
    ``confidentiality.post_employment_months: 24 -> 36``."""
    if before is None:
        return []
    lines: list[str] = []
    old, new = _clauses_by_name(before.rules), _clauses_by_name(after.rules)
    for name, terms in new.items():
        if name not in old:
            summary = "; ".join(f"{k} = {v}" if k != "when" else f"when {v}" for k, v in terms.items())
            lines.append(f"added clause {name}" + (f" ({summary})" if summary else ""))
    for name in old:
        if name not in new:
            lines.append(f"removed clause {name}")
    for name, terms in new.items():
        if name not in old:
            continue
        was = old[name]
        for key in [*was, *(k for k in terms if k not in was)]:
            a, b = was.get(key, _UNSET), terms.get(key, _UNSET)
            if a != b:
                lines.append(f"{name}.{key}: {a} -> {b}")
    kept_old = [n for n in old if n in new]
    kept_new = [n for n in new if n in old]
    if kept_old != kept_new:
        lines.append(f"clause order: {', '.join(kept_old)} -> {', '.join(kept_new)}")
    for key in sorted(set(before.rules) | set(after.rules)):
        if key == "clauses":
            continue
        old_value, new_value = before.rules.get(key), after.rules.get(key)
        if old_value != new_value:
            lines.append(
                f"{key}: {_UNSET if old_value is None else old_value} -> {_UNSET if new_value is None else new_value}"
            )
    for name in sorted(set(before.templates) | set(after.templates)):
        old_digest, new_digest = before.templates.get(name), after.templates.get(name)
        if old_digest == new_digest:
            continue
        what = "added" if old_digest is None else "removed" if new_digest is None else "changed"
        lines.append(f"template {name} {what}")
    return lines


# -- presentation (hub contracts history) ----------------------------------------------------------


def _changes(version: ClauseVersion, by_id: Mapping[str, ClauseVersion]) -> list[str]:
    before = by_id.get(version.previous_version) if version.previous_version else None
    return describe_changes(before, version)


def _when(value: datetime) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def history_json(versions: list[ClauseVersion]) -> dict[str, Any]:
    """``hub contracts history --json``: the versions newest first, each with its changes."""
    by_id = {v.version: v for v in versions}
    return {"versions": [{**v.as_dict(rules=False), "changes": _changes(v, by_id)} for v in versions]}


def history_lines(versions: list[ClauseVersion]) -> list[str]:
    """``hub contracts history``: a paragraph per version, newest first."""
    by_id = {v.version: v for v in versions}
    lines: list[str] = []
    for v in versions:
        lines.append(
            f"{v.version}  first seen {_when(v.first_seen_at)}  last seen {_when(v.last_seen_at)}  "
            f"by {v.recorded_by}"
        )
        if v.previous_version is None:
            lines.append("  the first version recorded")
        else:
            changes = _changes(v, by_id)
            lines.append(f"  replaced {v.previous_version}" + (":" if changes else " (no change found)"))
            lines += [f"    {change}" for change in changes]
        if v.masked:
            lines.append(f"  masked (looked like personal data): {', '.join(v.masked)}")
    return lines


def version_lines(version: ClauseVersion) -> list[str]:
    """``hub contracts history VERSION``: the version's rules and template digests."""
    check = (
        "the stored rules hash to it"
        if version.rules_intact
        else f"stored with masked values: {', '.join(version.masked) or '?'}"
    )
    lines = [
        f"clause set {version.version}",
        f"rules sha256 {version.rules_sha256} ({check})",
        f"first seen {_when(version.first_seen_at)}, last seen {_when(version.last_seen_at)}, "
        f"recorded by {version.recorded_by}",
        f"replaced {version.previous_version or 'nothing (the first version recorded)'}",
        "rules ([contracts], normalised):",
        json.dumps(version.rules, ensure_ascii=False, indent=2, sort_keys=True),
        "templates (sha256):",
    ]
    lines += [f"  {name}  {digest}" for name, digest in sorted(version.templates.items())]
    return lines
