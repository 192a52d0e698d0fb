"""Identity resolution: the records several sources hold about one human resolve to one Person.

The ATS, the assessment platform, interview scorecards and the HR master each describe people
under their own ids. :class:`IdentityResolver` links every source record (a
:class:`SourcePerson`) to a hub person, in hub's state store:

* **Matching** (rules configurable, in order): ``id_number`` (exact resident ID number),
  ``email`` (trimmed, lower-cased) and ``phone_name`` (E.164 phone plus a name equal after
  NFKC / whitespace normalisation, allowing ``max_name_edits`` typos). A record already linked
  (same source, same remote id) goes straight to its person, so re-runs are idempotent.
* **Ambiguity**: a record whose rules point at two different persons, or that matches only
  weakly (phone equal but the name differs by more than a typo; name and birth date equal and
  nothing else), is *not* merged. It gets its own provisional person flagged ``needs_review``
  and a row in ``identity_reviews`` with the candidates and the reason.
* **Merging**: each canonical field remembers which source set it and when
  (``person_provenance``). Disagreements are decided by source priority per field (default: the
  order of ``IdentityConfig.sources``) and recorded in ``identity_conflicts``; with equal or
  unknown priority the existing value stays and the conflict is left ``open``. An ID number is
  never overwritten: a different one is always an open conflict.
* **Reviews**: a person decides them (``hub people review``): :meth:`IdentityResolver.merge_review`
  merges the provisional person into a candidate (its fields by source priority, as a record
  would be merged; its links, index rows and conflicts moved; the provisional person deleted),
  :meth:`IdentityResolver.separate_review` keeps it as a person of its own. Either resolves the
  review and writes an audit row; the record's link now names the decided person, so later
  syncs go straight to it.
* **Rehire**: a terminated person (``employment_status == "terminated"`` or a
  ``terminated_at``) seen again from a rehire source (the ATS) after the termination is flagged.

Nothing personal is stored in clear: fields are sealed (purpose ``person``, context
``persons|<hub_id>``), identifiers are kept as keyed digests in ``person_index`` and remote ids
as digests in ``person_links``. Lookups go through the digests; only candidate persons are
decrypted. Resolution is not safe against a *concurrent* resolver on the same store (two could
create one person twice): run it under the pipeline's lease.
"""

from __future__ import annotations

import os
import re
import time
import unicodedata
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal

import orjson
import phonenumbers
from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from hub.crypto import Keyring
from hub.errors import ConfigProblem, ConfigurationError, HubError
from hub.store import Database
from hub.store.bulk import insert_rows, sqlite_variables
from hub.store.models import (
    AuditEntry,
    IdentityConflict,
    IdentityReview,
    PersonIndex,
    PersonLink,
    PersonProvenance,
    PersonRow,
    utcnow,
)

if TYPE_CHECKING:
    from hub.project import Project

#: Matching rules, in their default order.
RULES: tuple[str, ...] = ("id_number", "email", "phone_name")
#: Identifier kinds a person can be found by (``people find``).
LOOKUP_KINDS: tuple[str, ...] = ("id_number", "email", "phone")
#: Kinds of rows in ``person_index``; ``name_birth`` only feeds the weak-match review.
INDEX_KINDS: tuple[str, ...] = (*LOOKUP_KINDS, "name_birth")
#: Fields that hold a person's name (compared for ``phone_name``).
NAME_FIELDS: tuple[str, ...] = ("full_name", "name", "family_name", "given_name")
#: Fields never overwritten once set: a different value is an open conflict.
IDENTITY_FIELDS: frozenset[str] = frozenset({"id_number"})
#: Purpose (key) and context prefix of everything sealed here.
SEAL_PURPOSE = "personal"

Action = Literal["created", "matched", "linked", "review"]

_IN_CHUNK = 500
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_MIDDLE_DOTS = re.compile(r"[·•・･.．‧∙]")
_RIC_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
#: A mainland mobile number in E.164 form, ASCII digits only.
_MASK_48, _MASK_62 = (1 << 48) - 1, (1 << 62) - 1
_E164_CN_MOBILE = re.compile(r"\+861[3-9][0-9]{9}")


# -- normalisation -------------------------------------------------------------------------


def _nfkc(value: Any) -> str:
    return unicodedata.normalize("NFKC", str(value)).translate(_INVISIBLE).strip()


def normalise_id_number(value: Any) -> str | None:
    """NFKC, no spaces, upper-case check character; a 15-digit legacy number is upgraded to 18."""
    if value is None:
        return None
    text = "".join(_nfkc(value).split()).upper()
    if len(text) == 15 and text.isdigit():
        body = text[:6] + "19" + text[6:]
        text = body + "10X98765432"[sum(int(d) * w for d, w in zip(body, _RIC_WEIGHTS, strict=True)) % 11]
    return text or None


def normalise_email(value: Any) -> str | None:
    """Trimmed and lower-cased (after NFKC, so a full-width ``＠`` is ``@``); dots are kept."""
    if value is None:
        return None
    return _nfkc(value).lower() or None


def normalise_phone(value: Any, region: str = "CN") -> str | None:
    """E.164 (``+8613800138000``) when the number parses, else its digits."""
    if value is None:
        return None
    text = _nfkc(value)
    if not text:
        return None
    if _E164_CN_MOBILE.fullmatch(text):
        # Already E.164 (what the phone transform makes): phonenumbers would give it back as it
        # is, at 40x the cost. Its only CN prefix to strip here (179xx) would leave 6 digits,
        # which no CN number pattern takes, so it never strips one (tests/test_identity.py).
        return text
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is not None and phonenumbers.is_possible_number(parsed):
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    digits = re.sub(r"\D", "", text)
    if not digits:
        return None
    return "+" + digits if text.startswith("+") else digits


def normalise_name(value: Any) -> str | None:
    """NFKC, no whitespace or invisible characters, one middle dot, case-folded."""
    if value is None:
        return None
    text = _MIDDLE_DOTS.sub("·", _nfkc(value))
    return "".join(text.split()).casefold() or None


def remote_digest(keyring: Keyring, remote_id: str) -> str:
    """Keyed digest of a source record's id: how person links and privacy tombstones name it."""
    return keyring.blind(remote_id, "remote_id")


def normalise(kind: str, value: Any, region: str = "CN") -> str | None:
    """Normalise ``value`` as an identifier of ``kind`` (id_number, email or phone)."""
    if kind == "id_number":
        return normalise_id_number(value)
    if kind == "email":
        return normalise_email(value)
    if kind == "phone":
        return normalise_phone(value, region)
    raise ValueError(f"unknown identifier kind {kind!r} (known: {', '.join(LOOKUP_KINDS)})")


def within_edits(a: str, b: str, limit: int) -> bool:
    """True if the Levenshtein distance of ``a`` and ``b`` is at most ``limit``."""
    if a == b:
        return True
    if limit <= 0 or abs(len(a) - len(b)) > limit:
        return False
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
        if min(current) > limit:
            return False
        previous = current
    return previous[-1] <= limit


def name_keys(fields: Mapping[str, Any]) -> list[str]:
    """The normalised names of a record, most specific first (full name, then family + given)."""
    keys: list[str] = []
    for key in ("full_name", "name"):
        name = normalise_name(fields.get(key)) if fields.get(key) else None
        if name and name not in keys:
            keys.append(name)
    family, given = fields.get("family_name"), fields.get("given_name")
    if family or given:
        name = normalise_name(f"{family or ''}{given or ''}")
        if name and name not in keys:
            keys.append(name)
    return keys


def names_match(a: Sequence[str], b: Sequence[str], max_edits: int) -> bool:
    """True if some name of ``a`` equals some name of ``b`` but for ``max_edits`` typos."""
    return any(within_edits(x, y, max_edits) for x in a for y in b)


def _plain(value: Any) -> Any:
    """A JSON-plain, comparable form of a field value; None for empty values."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool | int):
        return value
    plain = orjson.loads(orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS))
    return None if plain in ([], {}, "") else plain


def _canon(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _utc(value: datetime) -> datetime:
    """Aware UTC, whole seconds (MariaDB keeps no fractions): comparable after a round trip."""
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return aware.replace(microsecond=0)


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return _utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        try:
            return _utc(datetime.fromisoformat(value.strip()))
        except ValueError:
            return None
    return None


def _insert_rows(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """INSERT ``rows`` (dicts with the same keys) into ``table`` in one executemany.

    A first sync inserts ten rows per person. Through SQLAlchemy, each row's parameters are
    processed one by one (more CPU than SQLite's insert itself), and the ORM's bulk insert
    also leaves None values out per row, which splits rows with and without
    ``unique_digest`` into one statement each. Here the statement is compiled once, each
    column is converted with the same bind processor SQLAlchemy would use, and the driver
    gets plain parameter rows. Anything this does not cover (a column default to compute,
    escaped parameter names) goes through SQLAlchemy.
    """
    connection = session.connection()
    dialect = connection.dialect
    keys = list(rows[0])
    compiled = insert(table).compile(dialect=dialect, column_keys=keys)
    order = list(compiled.positiontup or ()) if compiled.positional else list(compiled.binds)
    if sorted(order) != sorted(keys) or compiled.escaped_bind_names or any(list(r) != keys for r in rows):
        session.execute(insert(table), rows)
        return
    processors = {key: table.c[key].type.dialect_impl(dialect).bind_processor(dialect) for key in keys}
    parameters: list[Any] = (
        list(map(itemgetter(*order), rows)) if len(order) > 1 else [(r[order[0]],) for r in rows]
    )
    if any(processors[key] is not None for key in order):
        columns: list[Any] = list(zip(*parameters, strict=True))
        for position, key in enumerate(order):
            process = processors[key]
            if process is not None:
                # Once per object: a batch's rows share their timestamps (one datetime object).
                done: dict[int, Any] = {}
                columns[position] = [
                    done[i] if (i := id(v)) in done else done.setdefault(i, process(v))
                    for v in columns[position]
                ]
        parameters = list(zip(*columns, strict=True))
    if not compiled.positional:
        parameters = [dict(zip(order, values, strict=True)) for values in parameters]
    head, _, group = compiled.string.partition(" VALUES ")
    if dialect.name != "sqlite" or group != "(" + ", ".join("?" * len(order)) + ")":
        connection.exec_driver_sql(compiled.string, parameters)
        return
    insert_rows(connection.exec_driver_sql, connection.connection.dbapi_connection, head, parameters)


def _rows_in(session: Session, query: Any, column: Any, values: list[str]) -> Iterator[tuple[Any, ...]]:
    """The rows of ``query`` whose ``column`` is one of ``values`` (text), in chunks of values.

    On SQLite the statement is compiled once per chunk size and run on the driver with large
    chunks: SQLAlchemy renders and binds an ``IN`` list value by value (most of a first
    sync's lookups, which find nothing). Column values come back as SQLAlchemy converts them.
    """
    if not values:
        return
    connection = session.connection()
    dialect = connection.dialect
    compiled = query.where(column.in_(bindparam("values", expanding=True))).compile(dialect=dialect)
    placeholder = "(__[POSTCOMPILE_values])"
    order = list(compiled.positiontup or ())
    if (
        dialect.name != "sqlite"
        or order[-1:] != ["values"]
        or compiled.string.count(placeholder) != 1
        or any(compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in order)
    ):
        for part in _chunks(values, _IN_CHUNK):
            yield from session.execute(query.where(column.in_(part))).tuples()
        return
    processors = [
        c.type.dialect_impl(dialect).result_processor(dialect, None) for c in query.selected_columns
    ]
    fixed = [compiled.params[name] for name in order[:-1]]
    size = max(1, sqlite_variables(connection.connection.dbapi_connection) - len(fixed))
    for part in _chunks(values, size):
        statement = compiled.string.replace(placeholder, "(" + ", ".join("?" * len(part)) + ")")
        for row in connection.exec_driver_sql(statement, (*fixed, *part)):
            yield tuple(v if p is None else p(v) for v, p in zip(row, processors, strict=True))


#: Marks a connection that runs without foreign key checks: never handed back to the pool.
_NO_FOREIGN_KEYS = "hub_no_foreign_keys"


def _close_all(connections: list[Connection]) -> None:
    for connection in connections:
        if connection.info.get(_NO_FOREIGN_KEYS):
            connection.invalidate()
        connection.close()


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# -- configuration and the public records ------------------------------------------------------


@dataclass(frozen=True)
class IdentityConfig:
    """How records are matched and merged.

    ``sources``: connector names, highest priority first; the default priority of every field.
    ``rules``: matching rules switched on, in the order they are reported (subset of :data:`RULES`).
    ``field_priority``: per field, connectors highest first; connectors it does not list rank
    below those it lists and have unknown priority among themselves.
    ``rehire_sources``: connectors whose new records bring a terminated person back (the ATS).
    ``max_name_edits``: typos allowed between two names for ``phone_name`` (Levenshtein).
    ``review_name_birth``: send a record whose name and birth date match a person, with no
    other match, to review (else it becomes a new person).
    """

    sources: tuple[str, ...] = ()
    rules: tuple[str, ...] = RULES
    field_priority: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    rehire_sources: tuple[str, ...] = ("ats",)
    max_name_edits: int = 1
    review_name_birth: bool = True
    phone_region: str = "CN"

    def __post_init__(self) -> None:
        problems = [
            ConfigProblem("identity.rules", f"unknown rule {rule!r} (known: {', '.join(RULES)})")
            for rule in self.rules
            if rule not in RULES
        ]
        if len(set(self.rules)) != len(self.rules):
            problems.append(ConfigProblem("identity.rules", "a rule is listed twice"))
        if self.max_name_edits < 0:
            problems.append(ConfigProblem("identity.max_name_edits", "must be 0 or more"))
        if problems:
            raise ConfigurationError(problems)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], where: str = "identity") -> IdentityConfig:
        """Read an ``[identity]`` table (keys as the attributes of this class)."""
        known = {f.name for f in fields(cls)}
        problems = [
            ConfigProblem(f"{where}.{key}", f"unknown key (known: {', '.join(sorted(known))})")
            for key in set(raw) - known
        ]
        lists: dict[str, tuple[str, ...]] = {}
        for key in ("sources", "rules", "rehire_sources"):
            value = raw.get(key)
            if value is None:
                continue
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                problems.append(ConfigProblem(f"{where}.{key}", "must be a list of strings"))
            else:
                lists[key] = tuple(value)
        priority: dict[str, tuple[str, ...]] = {}
        raw_priority = raw.get("field_priority", {})
        if not isinstance(raw_priority, Mapping):
            problems.append(ConfigProblem(f"{where}.field_priority", "must be a table of lists"))
        else:
            for name, order in raw_priority.items():
                if not isinstance(order, list) or not all(isinstance(v, str) for v in order):
                    problems.append(
                        ConfigProblem(f"{where}.field_priority.{name}", "must be a list of strings")
                    )
                else:
                    priority[str(name)] = tuple(order)
        edits = raw.get("max_name_edits", 1)
        if not isinstance(edits, int) or isinstance(edits, bool):
            problems.append(ConfigProblem(f"{where}.max_name_edits", "must be an integer"))
            edits = 1
        review = raw.get("review_name_birth", True)
        if not isinstance(review, bool):
            problems.append(ConfigProblem(f"{where}.review_name_birth", "must be true or false"))
            review = True
        if problems:
            raise ConfigurationError(problems)
        return cls(
            sources=lists.get("sources", ()),
            rules=lists.get("rules", RULES),
            field_priority=priority,
            rehire_sources=lists.get("rehire_sources", ("ats",)),
            max_name_edits=edits,
            review_name_birth=review,
            phone_region=str(raw.get("phone_region", "CN")),
        )

    def rank(self, field_name: str, source: str | None) -> int | None:
        """Priority of ``source`` for ``field_name``: 0 is highest, None unknown."""
        order = self.field_priority.get(field_name, self.sources)
        return order.index(source) if source in order else None


@dataclass(frozen=True)
class SourcePerson:
    """One source record about a person.

    ``fields`` holds canonical person fields (``family_name``, ``given_name``, ``full_name``,
    ``id_number`` (18 characters), ``email``, ``phone`` (E.164), ``birth_date``, ``gender``,
    ``employment_status``, ``terminated_at``, ...) and any other fields; empty values are ignored.
    """

    source: str
    remote_id: str
    observed_at: datetime
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConflictNote:
    """A disagreement recorded while resolving one record (values are in the sealed row only)."""

    field: str
    kind: str  # "value" or "id_number"
    status: str  # "resolved" or "open"
    existing_source: str | None
    incoming_source: str
    winner_source: str | None


@dataclass(frozen=True)
class Candidate:
    """A person an ambiguous record could belong to, and the rule (or weak signal) that said so."""

    person_id: str
    via: str


@dataclass(frozen=True)
class Resolution:
    """What became of one :class:`SourcePerson`.

    ``action``: ``created`` (a new person), ``matched`` (linked to an existing person by
    ``matched_by``), ``linked`` (the record was linked before) or ``review`` (ambiguous: the
    person is a provisional one flagged ``needs_review``; see ``review_reason`` and ``candidates``).
    """

    source: str
    remote_id: str
    person_id: str
    action: Action
    matched_by: str | None
    needs_review: bool
    rehire: bool
    changed_fields: tuple[str, ...] = ()
    conflicts: tuple[ConflictNote, ...] = ()
    review_reason: str | None = None
    candidates: tuple[Candidate, ...] = ()


@dataclass(frozen=True)
class ProvenanceView:
    source: str
    observed_at: datetime


@dataclass(frozen=True)
class LinkView:
    source: str
    rehire: bool
    created_at: datetime


@dataclass(frozen=True)
class ConflictView:
    id: str
    field: str
    kind: str
    status: str
    existing_source: str | None
    incoming_source: str
    winner_source: str | None
    observed_at: datetime
    existing: Any
    incoming: Any


@dataclass(frozen=True)
class ReviewView:
    id: str
    person_id: str
    source: str
    reason: str
    candidates: tuple[Candidate, ...]
    status: str
    created_at: datetime
    resolved_at: datetime | None = None


@dataclass(frozen=True)
class ReviewDecision:
    """How a review was resolved, from the audit log: ``merge`` or ``separate``, by whom, when."""

    action: str
    actor: str
    at: datetime
    person_id: str | None


@dataclass(frozen=True)
class ReviewDetail:
    """A review with what a person needs to decide it (decrypted: show it only masked).

    ``record``: the ambiguous record's fields as the resolver saw them (normalised);
    ``person``: the provisional person (after a merge, the person it was merged into);
    ``candidates``: each candidate and its person (None if it no longer exists).
    """

    review: ReviewView
    record: dict[str, Any]
    observed_at: datetime | None
    person: PersonView | None
    candidates: tuple[tuple[Candidate, PersonView | None], ...]
    decision: ReviewDecision | None


@dataclass(frozen=True)
class MergeOutcome:
    """What merging a review's provisional person into a candidate did (no values)."""

    review_id: str
    provisional_id: str
    person_id: str
    links: int
    fields_set: tuple[str, ...]
    conflicts: tuple[ConflictNote, ...]
    forced: bool


class ReviewError(HubError):
    """A review decision that cannot be made (unknown, already resolved, not a candidate...)."""


#: Audit actions of review decisions.
REVIEW_MERGE, REVIEW_SEPARATE = "identity.review.merge", "identity.review.separate"


@dataclass(frozen=True)
class PersonView:
    """A person as stored, decrypted: show it only masked (``hub.masking``)."""

    hub_id: str
    created_at: datetime
    updated_at: datetime
    needs_review: bool
    rehire: bool
    rehired_at: datetime | None
    fields: dict[str, Any]
    provenance: dict[str, ProvenanceView]
    links: tuple[LinkView, ...]
    conflicts: tuple[ConflictView, ...]
    reviews: tuple[ReviewView, ...]


# -- the resolver ------------------------------------------------------------------------------


class IdentityResolver:
    """Resolves source records to hub persons in the state store ``db``."""

    def __init__(
        self,
        db: Database,
        keyring: Keyring,
        config: IdentityConfig | None = None,
        *,
        batch_size: int = 10_000,
    ) -> None:
        self.db = db
        self.keyring = keyring
        self.config = config or IdentityConfig()
        self.batch_size = batch_size
        keyring.ensure_keys()  # not later, inside a transaction (SQLite has one writer)

    @classmethod
    def for_project(cls, project: Project, config: IdentityConfig | None = None) -> IdentityResolver:
        """A resolver over the project's state store and keys."""
        return cls(project.db, project.keyring, config)

    # resolving

    def resolve(self, records: Iterable[SourcePerson]) -> list[Resolution]:
        """Resolve ``records`` in order (batches of ``batch_size``, one transaction each).

        A batch's rows are written (and committed) by a thread of their own while the next
        batch is resolved: the database's time overlaps the resolver's. The next batch needs
        nothing from the database that the batch before wrote (the run keeps it), and at most
        one batch is being written, so the batches still commit one after the other, in order;
        a batch that fails to write stops the run at the next batch. The writes of a call go
        through one connection (SQLite keeps its page cache warm between the batches).
        """
        run = _Run(self)
        results: list[Resolution] = []
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="hub-identity") as writer:
            connection: list[Connection] = []
            writing: Future[None] | None = None
            try:
                for batch in _chunks(records, self.batch_size):
                    resolved, writes = run.resolve_batch_deferred(batch)
                    if writing is not None:
                        writing.result()
                    writing = writer.submit(self._write, writes, connection)
                    results.extend(resolved)
                if writing is not None:
                    writing.result()
            finally:
                writer.submit(_close_all, connection)
        return results

    def _write(self, writes: _Writes, connection: list[Connection]) -> None:
        """Write and commit one batch, on the connection of the call (opened on first use)."""
        if not connection:
            connection.append(self.db.engine.connect())
            if connection[0].dialect.name == "sqlite":
                # Every row written references a person of the same batch or one loaded from
                # the store, and persons are deleted only under the identity lease the caller
                # holds: SQLite's per-row parent lookups (random ids, a third of the write
                # time on a first sync) check nothing here. The connection is discarded after.
                connection[0].exec_driver_sql("PRAGMA foreign_keys=OFF")
                connection[0].commit()  # ends the transaction SQLAlchemy began for the PRAGMA
                connection[0].info[_NO_FOREIGN_KEYS] = True
        with Session(bind=connection[0]) as session, session.begin():
            writes.apply(session)

    def resolve_one(self, record: SourcePerson) -> Resolution:
        return self.resolve([record])[0]

    # lookups

    def digest(self, kind: str, normalised: str) -> str:
        """The blind-index digest of an already normalised identifier."""
        return self.keyring.blind(normalised, kind)

    def find(self, kind: str, value: str) -> list[str]:
        """Hub ids of the persons with identifier ``kind`` (id_number, email, phone) = ``value``."""
        norm = normalise(kind, value, self.config.phone_region)
        if norm is None:
            return []
        digest = self.digest(kind, norm)
        with self.db.session() as session:
            rows = session.execute(
                select(PersonIndex.person_id)
                .where(PersonIndex.kind == kind, PersonIndex.digest == digest)
                .order_by(PersonIndex.id)
            ).scalars()
            return list(dict.fromkeys(rows))

    def person_of(self, source: str, remote_id: str) -> str | None:
        """Hub id of the person a source record is linked to."""
        digest = remote_digest(self.keyring, remote_id)
        with self.db.session() as session:
            return session.execute(
                select(PersonLink.person_id).where(
                    PersonLink.source == source, PersonLink.remote_digest == digest
                )
            ).scalar_one_or_none()

    def get_person(self, hub_id: str) -> PersonView | None:
        """The person, decrypted, with provenance, links, conflicts and reviews."""
        with self.db.session() as session:
            row = session.get(PersonRow, hub_id)
            if row is None:
                return None
            provenance = {
                p.field: ProvenanceView(p.source, _utc(p.observed_at))
                for p in session.execute(
                    select(PersonProvenance).where(PersonProvenance.person_id == hub_id)
                ).scalars()
            }
            links = tuple(
                LinkView(link.source, link.rehire, _utc(link.created_at))
                for link in session.execute(
                    select(PersonLink).where(PersonLink.person_id == hub_id).order_by(PersonLink.id)
                ).scalars()
            )
            conflicts = tuple(
                self._conflict_view(c)
                for c in session.execute(
                    select(IdentityConflict)
                    .where(IdentityConflict.person_id == hub_id)
                    .order_by(IdentityConflict.created_at, IdentityConflict.field)
                ).scalars()
            )
            reviews = tuple(
                _review_view(r)
                for r in session.execute(
                    select(IdentityReview)
                    .where(IdentityReview.person_id == hub_id)
                    .order_by(IdentityReview.created_at)
                ).scalars()
            )
            return PersonView(
                hub_id=row.hub_id,
                created_at=_utc(row.created_at),
                updated_at=_utc(row.updated_at),
                needs_review=row.needs_review,
                rehire=row.rehire,
                rehired_at=_utc(row.rehired_at) if row.rehired_at else None,
                fields=self._open_fields(row.hub_id, row.fields_ciphertext),
                provenance=provenance,
                links=links,
                conflicts=conflicts,
                reviews=reviews,
            )

    def reviews(self, status: str | None = "open") -> list[ReviewView]:
        """Ambiguous records waiting for a person (``status=None``: all of them)."""
        query = select(IdentityReview).order_by(IdentityReview.created_at)
        if status is not None:
            query = query.where(IdentityReview.status == status)
        with self.db.session() as session:
            return [_review_view(r) for r in session.execute(query).scalars()]

    # reviewing: a person decides what the resolver would not

    def decisions(self, review_ids: Iterable[str]) -> dict[str, ReviewDecision]:
        """Who merged or separated each of ``review_ids``, and when (from the audit log)."""
        wanted = sorted(set(review_ids))
        found: dict[str, ReviewDecision] = {}
        with self.db.session() as session:
            for part in _chunks(wanted, _IN_CHUNK):
                for row in session.execute(
                    select(AuditEntry)
                    .where(
                        AuditEntry.action.in_((REVIEW_MERGE, REVIEW_SEPARATE)), AuditEntry.target.in_(part)
                    )
                    .order_by(AuditEntry.id)
                ).scalars():
                    details = row.details or {}
                    found[row.target] = ReviewDecision(
                        action="merge" if row.action == REVIEW_MERGE else "separate",
                        actor=row.actor,
                        at=_utc(row.at),
                        person_id=details.get("into") or details.get("person_id"),
                    )
        return found

    def review(self, review_id: str) -> ReviewDetail | None:
        """A review, its record, its person and its candidates, decrypted."""
        with self.db.session() as session:
            row = session.get(IdentityReview, review_id)
            if row is None:
                return None
            view = _review_view(row)
            opened = self._open(row.details_ciphertext, f"identity_reviews|{row.id}")
        record = dict(opened.get("fields") or {}) if isinstance(opened, dict) else {}
        observed = _parse_time(opened.get("observed_at")) if isinstance(opened, dict) else None
        return ReviewDetail(
            review=view,
            record=record,
            observed_at=observed,
            person=self.get_person(view.person_id),
            candidates=tuple((c, self.get_person(c.person_id)) for c in view.candidates),
            decision=self.decisions([view.id]).get(view.id),
        )

    def merge_review(
        self, review_id: str, into: str, *, reason: str, actor: str, force: bool = False
    ) -> MergeOutcome:
        """Merge a review's provisional person into ``into``; the review is resolved.

        The provisional person's fields are merged into ``into`` as the resolver merges a
        record (by source priority, each field with the source and time it was observed;
        disagreements recorded as conflicts), then its links, index rows and conflicts move to
        ``into`` and it is deleted. ``into`` must be one of the review's candidates, unless
        ``force``; it may not be awaiting a review itself. Written to the audit log (ids, field
        names and counts; the reason masked).
        """
        reason = _decision_reason(reason)
        with self._identity_lease(), self.db.session() as session:
            row = self._open_review(session, review_id)
            provisional = row.person_id
            if into == provisional:
                raise ReviewError(
                    f"person {into} is review {review_id}'s own provisional person; to keep it, separate it"
                )
            target = session.get(PersonRow, into)
            if target is None:
                raise ReviewError(f"no person {into}")
            if target.needs_review:
                raise ReviewError(f"person {into} is itself awaiting a review: decide that one first")
            candidates = [str(c["person_id"]) for c in row.candidates or []]
            if into not in candidates and not force:
                raise ReviewError(
                    f"person {into} is not a candidate of review {review_id} "
                    f"(candidates: {', '.join(candidates) or 'none'}); --force merges anyway"
                )
            run = _Run(self)
            run.load_persons(session, {provisional, into})
            if provisional not in run.persons:
                raise ReviewError(f"the provisional person of review {review_id} no longer exists")
            source_of = run.persons[provisional]
            person = run.persons[into]
            # The provisional person's fields, grouped by the source and time that set them, oldest
            # first: merged as the records that brought them would have been.
            groups: dict[tuple[str, datetime], dict[str, Any]] = {}
            default = (row.source, _utc(row.created_at))
            for name, value in source_of.fields.items():
                groups.setdefault(source_of.provenance.get(name, default), {})[name] = value
            fields_set: list[str] = []
            notes: list[ConflictNote] = []
            for (source, at), values in sorted(groups.items(), key=lambda item: (item[0][1], item[0][0])):
                record = SourcePerson(source, "", at, values)
                prepared = _Prepared(record, at, "", dict(values), {}, [])
                changed, found = run.merge(person, prepared)
                fields_set += [name for name in changed if name not in fields_set]
                notes += found
            run.flush(session)
            links = self._move_person_rows(session, provisional, into, person)
            row.person_id, row.status, row.resolved_at = into, "resolved", _utc(utcnow())
            forced = into not in candidates
            session.add(
                AuditEntry(
                    actor=actor,
                    action=REVIEW_MERGE,
                    target=review_id,
                    reason=reason,
                    details={
                        "provisional_person": provisional,
                        "into": into,
                        "forced": forced,
                        "links_moved": links,
                        "fields_set": sorted(fields_set),
                        "conflicts": [{"field": n.field, "kind": n.kind, "status": n.status} for n in notes],
                    },
                )
            )
        return MergeOutcome(review_id, provisional, into, links, tuple(fields_set), tuple(notes), forced)

    def separate_review(self, review_id: str, *, reason: str, actor: str, force: bool = False) -> str:
        """Keep a review's provisional person as a person of its own; the review is resolved.

        Refused (unless ``force``) when the record's ID number belongs to another person: two
        persons with one ID number are a contradiction, not a decision. Returns the person's id.
        """
        reason = _decision_reason(reason)
        with self._identity_lease(), self.db.session() as session:
            row = self._open_review(session, review_id)
            person = session.get(PersonRow, row.person_id)
            if person is None:
                raise ReviewError(f"the provisional person of review {review_id} no longer exists")
            id_number = self._open_fields(person.hub_id, person.fields_ciphertext).get("id_number")
            if id_number and not force:
                digest = self.digest("id_number", str(id_number))
                holder = session.execute(
                    select(PersonIndex.person_id).where(
                        PersonIndex.kind == "id_number", PersonIndex.digest == digest
                    )
                ).scalar_one_or_none()
                if holder is not None and holder != person.hub_id:
                    raise ReviewError(
                        f"the record's ID number belongs to person {holder}: merge into that person, "
                        "or --force to keep two persons with one ID number"
                    )
            person.needs_review, person.updated_at = False, _utc(utcnow())
            row.status, row.resolved_at = "resolved", _utc(utcnow())
            session.add(
                AuditEntry(
                    actor=actor,
                    action=REVIEW_SEPARATE,
                    target=review_id,
                    reason=reason,
                    details={"person_id": person.hub_id, "forced": bool(force and id_number)},
                )
            )
            return person.hub_id

    def _open_review(self, session: Session, review_id: str) -> IdentityReview:
        row = session.get(IdentityReview, review_id)
        if row is None:
            raise ReviewError(f"no review {review_id}")
        if row.status != "open":
            raise ReviewError(f"review {review_id} is already {row.status}")
        return row

    @contextmanager
    def _identity_lease(self) -> Iterator[None]:
        """The lease identity resolution runs under (hub.engine): no sync resolves meanwhile."""
        from hub.leases import LeaseHolder

        lease = LeaseHolder(self.db, "identity", ttl=120)
        deadline = time.monotonic() + 30
        while not lease.try_acquire():
            if time.monotonic() > deadline:
                raise ReviewError("identity resolution is running (a sync); try again in a moment")
            time.sleep(0.2)
        try:
            yield
        finally:
            lease.release()

    def _move_person_rows(self, session: Session, old: str, new: str, person: _Person) -> int:
        """Move links, index rows, conflicts and reviews of person ``old`` to ``new``; delete ``old``."""
        links = len(session.execute(select(PersonLink.id).where(PersonLink.person_id == old)).all())
        session.execute(update(PersonLink).where(PersonLink.person_id == old).values(person_id=new))
        held = set(
            session.execute(select(PersonIndex.kind, PersonIndex.digest).where(PersonIndex.person_id == new))
            .tuples()
            .all()
        )
        their_id = person.fields.get("id_number")
        id_digest = self.digest("id_number", str(their_id)) if their_id else None
        for index_id, kind, digest in session.execute(
            select(PersonIndex.id, PersonIndex.kind, PersonIndex.digest).where(PersonIndex.person_id == old)
        ).all():
            # One person per ID number, and only the number the person holds.
            if (kind, digest) in held or (kind == "id_number" and digest != id_digest):
                session.execute(delete(PersonIndex).where(PersonIndex.id == index_id))
            else:
                session.execute(update(PersonIndex).where(PersonIndex.id == index_id).values(person_id=new))
                held.add((kind, digest))
        for conflict_id, name, pair in session.execute(
            select(IdentityConflict.id, IdentityConflict.field, IdentityConflict.pair_digest).where(
                IdentityConflict.person_id == old
            )
        ).all():
            if (name, pair) in person.conflict_keys:
                session.execute(delete(IdentityConflict).where(IdentityConflict.id == conflict_id))
            else:
                session.execute(
                    update(IdentityConflict).where(IdentityConflict.id == conflict_id).values(person_id=new)
                )
                person.conflict_keys.add((name, pair))
        session.execute(update(IdentityReview).where(IdentityReview.person_id == old).values(person_id=new))
        for other in session.execute(select(IdentityReview).where(IdentityReview.status == "open")).scalars():
            listed = [dict(c) for c in other.candidates or []]
            if any(c.get("person_id") == old for c in listed):
                moved: dict[str, dict[str, Any]] = {}
                for c in listed:
                    pid = new if c.get("person_id") == old else str(c.get("person_id"))
                    moved.setdefault(pid, {"person_id": pid, "via": c.get("via", "")})
                other.candidates = list(moved.values())
        session.execute(delete(PersonProvenance).where(PersonProvenance.person_id == old))
        session.execute(delete(PersonRow).where(PersonRow.hub_id == old))
        return links

    # sealing

    def _seal(self, payload: Any, context: str) -> bytes:
        table, _, row_id = context.partition("|")
        return self.keyring.seal(
            orjson.dumps(payload, option=orjson.OPT_SORT_KEYS), SEAL_PURPOSE, table, row_id
        )

    def _open(self, sealed: bytes, context: str) -> Any:
        table, _, row_id = context.partition("|")
        return orjson.loads(self.keyring.open(sealed, table, row_id))

    def _seal_fields(self, hub_id: str, fields: Mapping[str, Any]) -> bytes:
        return self._seal(dict(fields), f"persons|{hub_id}")

    def _open_fields(self, hub_id: str, sealed: bytes) -> dict[str, Any]:
        opened = self._open(sealed, f"persons|{hub_id}")
        return dict(opened) if isinstance(opened, dict) else {}

    def _conflict_view(self, row: IdentityConflict) -> ConflictView:
        details = self._open(row.details_ciphertext, f"identity_conflicts|{row.id}")
        return ConflictView(
            id=row.id,
            field=row.field,
            kind=row.kind,
            status=row.status,
            existing_source=row.existing_source,
            incoming_source=row.incoming_source,
            winner_source=row.winner_source,
            observed_at=_utc(row.observed_at),
            existing=details.get("existing"),
            incoming=details.get("incoming"),
        )


def _review_view(row: IdentityReview) -> ReviewView:
    return ReviewView(
        id=row.id,
        person_id=row.person_id,
        source=row.source,
        reason=row.reason,
        candidates=tuple(Candidate(str(c["person_id"]), str(c["via"])) for c in row.candidates or []),
        status=row.status,
        created_at=_utc(row.created_at),
        resolved_at=_utc(row.resolved_at) if row.resolved_at else None,
    )


def _decision_reason(reason: str) -> str:
    """The operator's reason for the audit log: required, ID-number / phone / e-mail shapes masked."""
    from hub.masking import mask_text

    text = " ".join(str(reason or "").split())
    if not text:
        raise ReviewError("a reason is required (--reason)")
    return mask_text(text)[:2000]


# -- one resolve() call: caches of what was read, and the rows to write ---------------------------


@dataclass
class _Person:
    hub_id: str
    fields: dict[str, Any]
    provenance: dict[str, tuple[str, datetime]]
    created_at: datetime
    needs_review: bool = False
    rehire: bool = False
    rehired_at: datetime | None = None
    new: bool = False
    dirty: bool = False
    prov_dirty: set[str] = field(default_factory=set)
    prov_stored: set[str] = field(default_factory=set)
    conflict_keys: set[tuple[str, str]] = field(default_factory=set)

    def names(self) -> list[str]:
        return name_keys(self.fields)


@dataclass
class _Link:
    person_id: str
    rehire: bool


@dataclass
class _Prepared:
    record: SourcePerson
    observed_at: datetime
    link_digest: str
    values: dict[str, Any]
    digests: dict[str, str]
    names: list[str]


class _Run:
    """State of one :meth:`IdentityResolver.resolve` call, across its batches."""

    def __init__(self, resolver: IdentityResolver) -> None:
        self.resolver = resolver
        self.keyring = resolver.keyring
        self.config = resolver.config
        self.persons: dict[str, _Person] = {}
        #: (kind, digest) -> person ids; complete for every key present
        self.index: dict[tuple[str, str], set[str]] = {}
        #: (source, remote digest) -> link, or None when known to be absent
        self.links: dict[tuple[str, str], _Link | None] = {}
        self.review_of: dict[tuple[str, str], ReviewView] = {}
        self.touched: set[str] = set()
        self.new_index: list[dict[str, Any]] = []
        self.new_links: list[dict[str, Any]] = []
        self.new_conflicts: list[dict[str, Any]] = []
        self.new_reviews: list[dict[str, Any]] = []
        #: the time rows written by the current batch are stamped with (whole seconds)
        self.now = _utc(utcnow())
        self._random_ids: list[int] = []
        self._observed: tuple[datetime, datetime] | None = None

    def new_id(self) -> str:
        """A time-ordered (version 7, RFC 9562) UUID: 48 bits of Unix milliseconds, 74 random.

        New persons' ids sort after every existing one, so the person-keyed indexes (persons,
        links, index, provenance) grow at their right edge instead of at random pages: a
        first sync writes about ten such rows per person. Randomness is drawn 256 ids at a
        time (one ``os.urandom`` call per person cost more than the rest of creating it).
        """
        if not self._random_ids:
            block = os.urandom(10 * 256)
            self._random_ids = [int.from_bytes(block[i : i + 10], "big") for i in range(0, len(block), 10)]
        random = self._random_ids.pop()
        millis = time.time_ns() // 1_000_000
        value = (
            (millis & _MASK_48) << 80
            | 0x7 << 76
            | (random >> 62 & 0xFFF) << 64
            | 0b10 << 62
            | random & _MASK_62
        )
        return str(uuid.UUID(int=value))

    def observed(self, at: datetime) -> datetime:
        """``_utc(at)``, computed once for the records of a chunk (they share one time)."""
        last = self._observed
        if last is None or last[0] is not at:
            last = self._observed = (at, _utc(at))
        return last[1]

    # preparing and prefetching

    def prepare(self, record: SourcePerson) -> _Prepared:
        values: dict[str, Any] = {}
        for key, raw in record.fields.items():
            if key in LOOKUP_KINDS:
                value: Any = normalise(key, raw, self.config.phone_region) if raw is not None else None
            else:
                value = _plain(raw)
            if value is not None:
                values[str(key)] = value
        digests = {kind: self.keyring.blind(values[kind], kind) for kind in LOOKUP_KINDS if kind in values}
        names = name_keys(values)
        birth = values.get("birth_date") or values.get("date_of_birth")
        if names and birth:
            digests["name_birth"] = self.keyring.blind(f"{names[0]}|{str(birth)[:10]}", "name_birth")
        return _Prepared(
            record=record,
            observed_at=self.observed(record.observed_at),
            link_digest=remote_digest(self.keyring, str(record.remote_id)),
            values=values,
            digests=digests,
            names=names,
        )

    def prefetch(self, session: Session, batch: list[_Prepared]) -> None:
        links, index = self.links, self.index
        wanted_links = {key for p in batch if (key := (p.record.source, p.link_digest)) not in links}
        for person_id, source, digest, rehire in _rows_in(
            session,
            select(PersonLink.person_id, PersonLink.source, PersonLink.remote_digest, PersonLink.rehire),
            PersonLink.remote_digest,
            sorted({d for _, d in wanted_links}),
        ):
            if (source, digest) in wanted_links:
                links[(source, digest)] = _Link(person_id, rehire)
        for key in wanted_links:
            links.setdefault(key, None)
        needed = {link.person_id for key in wanted_links if (link := links[key]) is not None}

        wanted_index: dict[str, set[str]] = {kind: set() for kind in INDEX_KINDS}
        for p in batch:
            for key in p.digests.items():
                if key not in index:
                    wanted_index[key[0]].add(key[1])
        for kind in INDEX_KINDS:
            digests = sorted(wanted_index[kind])
            for digest in digests:
                index[(kind, digest)] = set()
            query = select(PersonIndex.person_id, PersonIndex.digest).where(PersonIndex.kind == kind)
            for person_id, digest in _rows_in(session, query, PersonIndex.digest, digests):
                index[(kind, digest)].add(person_id)
                needed.add(person_id)
        self.load_persons(session, needed - self.persons.keys())

    def load_persons(self, session: Session, ids: set[str]) -> None:
        for chunk in _chunks(sorted(ids), _IN_CHUNK):
            for row in session.execute(select(PersonRow).where(PersonRow.hub_id.in_(chunk))).scalars():
                self.persons[row.hub_id] = _Person(
                    hub_id=row.hub_id,
                    fields=self.resolver._open_fields(row.hub_id, row.fields_ciphertext),
                    provenance={},
                    created_at=_utc(row.created_at),
                    needs_review=row.needs_review,
                    rehire=row.rehire,
                    rehired_at=_utc(row.rehired_at) if row.rehired_at else None,
                )
            for prov in session.execute(
                select(PersonProvenance).where(PersonProvenance.person_id.in_(chunk))
            ).scalars():
                person = self.persons[prov.person_id]
                person.provenance[prov.field] = (prov.source, _utc(prov.observed_at))
                person.prov_stored.add(prov.field)
            for person_id, field_name, pair in session.execute(
                select(
                    IdentityConflict.person_id, IdentityConflict.field, IdentityConflict.pair_digest
                ).where(IdentityConflict.person_id.in_(chunk))
            ):
                self.persons[person_id].conflict_keys.add((field_name, pair))
            in_review = [pid for pid in chunk if pid in self.persons and self.persons[pid].needs_review]
            if in_review:
                for review in session.execute(
                    select(IdentityReview).where(IdentityReview.person_id.in_(in_review))
                ).scalars():
                    self.review_of[(review.source, review.remote_digest)] = _review_view(review)

    # resolving

    def resolve_batch(self, records: list[SourcePerson]) -> list[Resolution]:
        results, writes = self.resolve_batch_deferred(records)
        with self.resolver.db.session() as session:
            writes.apply(session)
        return results

    def resolve_batch_deferred(self, records: list[SourcePerson]) -> tuple[list[Resolution], _Writes]:
        """Resolve a batch in memory; the rows it writes are returned, to be written in order."""
        self.now = _utc(utcnow())
        batch = [self.prepare(r) for r in records]
        with self.resolver.db.session() as session:
            self.prefetch(session, batch)
        results = [self.resolve_record(p) for p in batch]
        return results, self.take_writes()

    def resolve_record(self, p: _Prepared) -> Resolution:
        source, remote_id = p.record.source, str(p.record.remote_id)
        link = self.links.get((source, p.link_digest))
        if link is not None:
            person = self.persons[link.person_id]
            changed, notes = self.merge(person, p)
            self.add_index(person, p)
            review = self.review_of.get((source, p.link_digest))
            return Resolution(
                source=source,
                remote_id=remote_id,
                person_id=person.hub_id,
                action="review" if person.needs_review else "linked",
                matched_by="link",
                needs_review=person.needs_review,
                rehire=link.rehire,
                changed_fields=changed,
                conflicts=notes,
                review_reason=review.reason if review else None,
                candidates=review.candidates if review else (),
            )

        strong, weak = self.match(p)
        settled = [pid for pid in strong if not self.persons[pid].needs_review] or list(strong)
        if len(settled) == 1:
            person = self.persons[settled[0]]
            rehire = not person.needs_review and self.is_rehire(person, p)
            if rehire:
                person.rehire, person.rehired_at, person.dirty = True, p.observed_at, True
                self.touched.add(person.hub_id)
            self.add_link(person, p, rehire=rehire)
            changed, notes = self.merge(person, p)
            self.add_index(person, p)
            return Resolution(
                source=source,
                remote_id=remote_id,
                person_id=person.hub_id,
                action="matched",
                matched_by=strong[person.hub_id][0],
                needs_review=person.needs_review,
                rehire=rehire,
                changed_fields=changed,
                conflicts=notes,
            )

        if settled:
            rules = sorted({rule for pid in settled for rule in strong[pid]}, key=RULES.index)
            reason = f"{' and '.join(rules)} match {len(settled)} different persons"
            candidates = tuple(Candidate(pid, "+".join(strong[pid])) for pid in settled)
        elif weak:
            reason = "; ".join(dict.fromkeys(why for reasons in weak.values() for why in reasons))
            candidates = tuple(Candidate(pid, "+".join(reasons)) for pid, reasons in weak.items())
        else:
            person = self.create_person(p, needs_review=False)
            changed, notes = self.merge(person, p)
            self.add_index(person, p)
            return Resolution(
                source=source,
                remote_id=remote_id,
                person_id=person.hub_id,
                action="created",
                matched_by=None,
                needs_review=False,
                rehire=False,
                changed_fields=changed,
                conflicts=notes,
            )
        return self.send_to_review(p, reason, candidates)

    def match(self, p: _Prepared) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        """Persons the rules point at (strong) and persons only weak signals point at."""
        strong: dict[str, list[str]] = {}
        weak: dict[str, list[str]] = {}
        for rule in self.config.rules:
            kind = "phone" if rule == "phone_name" else rule
            digest = p.digests.get(kind)
            if digest is None:
                continue
            for pid in sorted(self.index.get((kind, digest), ())):
                if rule != "phone_name":
                    strong.setdefault(pid, []).append(rule)
                    continue
                theirs = self.persons[pid].names()
                if p.names and theirs and names_match(p.names, theirs, self.config.max_name_edits):
                    strong.setdefault(pid, []).append(rule)
                elif not self.persons[pid].needs_review:
                    why = (
                        "phone matches but the name differs"
                        if p.names and theirs
                        else "phone matches, no name"
                    )
                    weak.setdefault(pid, []).append(why)
        record_id = p.values.get("id_number")
        if record_id:
            # Two valid, different ID numbers are two people, whatever else they share (a family
            # e-mail, a recycled phone): such a match is a question for a person, never a merge.
            clashing = [
                pid
                for pid in strong
                if not self.persons[pid].needs_review  # provisional persons decide nothing
                and (their_id := self.persons[pid].fields.get("id_number"))
                and their_id != record_id
            ]
            if clashing:
                for pid, rules in strong.items():
                    why = (
                        f"{'+'.join(rules)} match a person with another ID number"
                        if pid in clashing
                        else f"{'+'.join(rules)} match"
                    )
                    weak.setdefault(pid, []).append(why)
                return {}, weak
        if strong:
            return strong, {}
        name_birth = p.digests.get("name_birth")
        if self.config.review_name_birth and name_birth is not None:
            for pid in sorted(self.index.get(("name_birth", name_birth), ())):
                if not self.persons[pid].needs_review:
                    weak.setdefault(pid, []).append("name and birth date match, nothing else")
        return strong, weak

    def is_rehire(self, person: _Person, p: _Prepared) -> bool:
        """A new record from a rehire source about a person terminated before it was observed."""
        if p.record.source not in self.config.rehire_sources:
            return False
        fields = person.fields
        status = str(fields.get("employment_status") or "").strip().lower()
        ended_at = fields.get("terminated_at") or fields.get("termination_date")
        if status != "terminated" and (status or not ended_at):
            return False  # an explicit status other than terminated wins over a stale end date
        since = _parse_time(ended_at) if ended_at else None
        if since is None:
            prov = person.provenance.get("employment_status") or person.provenance.get("terminated_at")
            since = prov[1] if prov else None
        return since is None or p.observed_at > since

    def create_person(self, p: _Prepared, *, needs_review: bool) -> _Person:
        person = _Person(
            hub_id=self.new_id(),
            fields={},
            provenance={},
            created_at=self.now,
            needs_review=needs_review,
            new=True,
            dirty=True,
        )
        self.persons[person.hub_id] = person
        self.touched.add(person.hub_id)
        self.add_link(person, p, rehire=False)
        return person

    def send_to_review(self, p: _Prepared, reason: str, candidates: tuple[Candidate, ...]) -> Resolution:
        person = self.create_person(p, needs_review=True)
        changed, notes = self.merge(person, p)
        self.add_index(person, p)
        review_id = str(uuid.uuid4())
        self.new_reviews.append(
            {
                "id": review_id,
                "person_id": person.hub_id,
                "source": p.record.source,
                "remote_digest": p.link_digest,
                "reason": reason,
                "candidates": [{"person_id": c.person_id, "via": c.via} for c in candidates],
                "status": "open",
                "created_at": person.created_at,
                "details_ciphertext": self.resolver._seal(
                    {"fields": p.values, "observed_at": p.observed_at.isoformat()},
                    f"identity_reviews|{review_id}",
                ),
            }
        )
        self.review_of[(p.record.source, p.link_digest)] = ReviewView(
            review_id, person.hub_id, p.record.source, reason, candidates, "open", person.created_at
        )
        return Resolution(
            source=p.record.source,
            remote_id=str(p.record.remote_id),
            person_id=person.hub_id,
            action="review",
            matched_by=None,
            needs_review=True,
            rehire=False,
            changed_fields=changed,
            conflicts=notes,
            review_reason=reason,
            candidates=candidates,
        )

    def add_link(self, person: _Person, p: _Prepared, *, rehire: bool) -> None:
        key = (p.record.source, p.link_digest)
        self.links[key] = _Link(person.hub_id, rehire)
        self.new_links.append(
            {
                "person_id": person.hub_id,
                "source": p.record.source,
                "remote_digest": p.link_digest,
                "rehire": rehire,
                "created_at": self.now,
            }
        )

    def add_index(self, person: _Person, p: _Prepared) -> None:
        for kind, digest in p.digests.items():
            holders = self.index.setdefault((kind, digest), set())
            if kind == "id_number":
                # one person per ID number, and only the number the person holds
                if holders or person.fields.get("id_number") != p.values.get("id_number"):
                    continue
            elif person.hub_id in holders:
                continue
            holders.add(person.hub_id)
            self.new_index.append(
                {
                    "person_id": person.hub_id,
                    "kind": kind,
                    "digest": digest,
                    "unique_digest": digest if kind == "id_number" else None,
                }
            )

    def merge(self, person: _Person, p: _Prepared) -> tuple[tuple[str, ...], tuple[ConflictNote, ...]]:
        """Merge the record's fields into ``person`` by source priority; record disagreements."""
        source, at = p.record.source, p.observed_at
        changed: list[str] = []
        notes: list[ConflictNote] = []

        def set_value(name: str, value: Any) -> None:
            person.fields[name] = value
            person.provenance[name] = (source, at)
            person.prov_dirty.add(name)
            person.dirty = True
            changed.append(name)

        def set_provenance(name: str) -> None:
            person.provenance[name] = (source, at)
            person.prov_dirty.add(name)

        for name, value in p.values.items():
            current = person.fields.get(name)
            prov = person.provenance.get(name)
            prov_source, prov_at = prov if prov else (None, None)
            if current is None:
                set_value(name, value)
                continue
            if current == value:
                if prov_source is None or (prov_source == source and prov_at is not None and at > prov_at):
                    set_provenance(name)
                elif prov_source != source:
                    mine, theirs = self.config.rank(name, source), self.config.rank(name, prov_source)
                    if mine is not None and (theirs is None or mine < theirs):
                        set_provenance(name)  # a higher-priority source vouches for the value
                continue
            if name in IDENTITY_FIELDS:
                note = self.conflict(
                    person, name, "id_number", "open", current, value, prov_source, source, None, at
                )
                notes.extend([note] if note else [])
                continue
            if prov_source == source:
                if prov_at is not None and at > prov_at:
                    set_value(name, value)  # the same source, newer: an update, not a conflict
                continue
            mine, theirs = self.config.rank(name, source), self.config.rank(name, prov_source)
            if mine is not None and (theirs is None or mine < theirs):
                note = self.conflict(
                    person, name, "value", "resolved", current, value, prov_source, source, source, at
                )
                set_value(name, value)
            elif theirs is not None and (mine is None or theirs < mine):
                note = self.conflict(
                    person, name, "value", "resolved", current, value, prov_source, source, prov_source, at
                )
            else:
                note = self.conflict(
                    person, name, "value", "open", current, value, prov_source, source, None, at
                )
            notes.extend([note] if note else [])
        if changed or person.prov_dirty:
            self.touched.add(person.hub_id)
        return tuple(changed), tuple(notes)

    def conflict(
        self,
        person: _Person,
        name: str,
        kind: str,
        status: str,
        existing: Any,
        incoming: Any,
        existing_source: str | None,
        incoming_source: str,
        winner: str | None,
        observed_at: datetime,
    ) -> ConflictNote | None:
        """Record a disagreement once per person, field and pair of values."""
        low, high = sorted((_canon(existing), _canon(incoming)))
        pair = self.keyring.blind(f"{name}\x00{low}\x00{high}", "identity_conflict")
        if (name, pair) in person.conflict_keys:
            return None
        person.conflict_keys.add((name, pair))
        conflict_id = str(uuid.uuid4())
        self.new_conflicts.append(
            {
                "id": conflict_id,
                "person_id": person.hub_id,
                "field": name,
                "kind": kind,
                "status": status,
                "existing_source": existing_source,
                "incoming_source": incoming_source,
                "winner_source": winner,
                "pair_digest": pair,
                "observed_at": observed_at,
                "created_at": _utc(utcnow()),
                "details_ciphertext": self.resolver._seal(
                    {"existing": existing, "incoming": incoming}, f"identity_conflicts|{conflict_id}"
                ),
            }
        )
        return ConflictNote(name, kind, status, existing_source, incoming_source, winner)

    # writing

    def flush(self, session: Session) -> None:
        self.take_writes().apply(session)

    def take_writes(self) -> _Writes:
        """The rows what was resolved since the last call writes; from now on they count as stored."""
        now = _utc(utcnow())
        writes = _Writes(
            index=self.new_index, links=self.new_links, conflicts=self.new_conflicts, reviews=self.new_reviews
        )
        for pid in sorted(self.touched):
            person = self.persons[pid]
            if person.new or person.dirty:
                row = {
                    "hub_id": pid,
                    "updated_at": now,
                    "needs_review": person.needs_review,
                    "rehire": person.rehire,
                    "rehired_at": person.rehired_at,
                    "fields_ciphertext": self.resolver._seal_fields(pid, person.fields),
                }
                if person.new:
                    writes.inserts.append({**row, "created_at": person.created_at})
                else:
                    writes.updates.append(row)
            for name in sorted(person.prov_dirty):
                prov_source, at = person.provenance[name]
                row = {"person_id": pid, "field": name, "source": prov_source, "observed_at": at}
                (writes.prov_updates if name in person.prov_stored else writes.prov_inserts).append(row)
        for pid in self.touched:
            person = self.persons[pid]
            person.prov_stored |= person.prov_dirty
            person.prov_dirty.clear()
            person.new = person.dirty = False
        self.touched.clear()
        self.new_index, self.new_links, self.new_conflicts, self.new_reviews = [], [], [], []
        return writes


@dataclass
class _Writes:
    """The rows one batch writes, taken from the run's state in one go (written maybe later)."""

    index: list[dict[str, Any]]
    links: list[dict[str, Any]]
    conflicts: list[dict[str, Any]]
    reviews: list[dict[str, Any]]
    inserts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    prov_inserts: list[dict[str, Any]] = field(default_factory=list)
    prov_updates: list[dict[str, Any]] = field(default_factory=list)

    def apply(self, session: Session) -> None:
        if self.inserts:
            _insert_rows(session, PersonRow.__table__, self.inserts)
        if self.updates:
            session.execute(update(PersonRow), self.updates)
        for model, rows in (
            (PersonIndex, self.index),
            (PersonLink, self.links),
            (PersonProvenance, self.prov_inserts),
            (IdentityConflict, self.conflicts),
            (IdentityReview, self.reviews),
        ):
            if rows:
                _insert_rows(session, model.__table__, rows)
        if self.prov_updates:
            session.execute(update(PersonProvenance), self.prov_updates)
