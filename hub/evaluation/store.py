"""The canonical-store loader: recruiting tables in, one joined bundle per application out.

The recruiting pipelines map vendor records into canonical entities and write them with the
``sql`` connector named by ``[evaluation] store``. This module reads them back. The contract:

========================  ======================  =================================================
entity                    default table           columns read (others are ignored)
========================  ======================  =================================================
``Application``           ``applications``        remote_id, hub_id, candidate_id, job_id, status,
                                                  custom_fields (required table)
``Candidate``             ``candidates``          remote_id, hub_id, person_id, current_title,
                                                  current_company, tags, custom_fields
``Job``                   ``jobs``                remote_id, hub_id, code, title, custom_fields
``Scorecard``             ``scorecards``          remote_id, application_id, interview_id,
                                                  interviewer_id, overall_recommendation, ratings,
                                                  submitted_at, custom_fields
``Interview``             ``interviews``          remote_id, hub_id, application_id, custom_fields
``AssessmentOrder``       ``assessment_orders``   remote_id, hub_id, application_id, candidate_id,
                                                  package_name, package_type, status, custom_fields
``AssessmentResult``      ``assessment_results``  remote_id, order_id, status, score, max_score,
                                                  passed, sub_results, custom_fields
========================  ======================  =================================================

Every table may also have ``remote_created_at`` / ``remote_updated_at`` (the evaluation
source's incremental cursor). A table other than ``applications`` may be missing, and so may
any column: it reads as empty. Columns are the canonical field names as mapping files write
them: nested values as JSON text, ``remote_id`` the record's id at its source.

**Cross-references.** A record points at another through the canonical ``*_id`` field (the
hub id, matched against the other table's ``hub_id`` column) or, as mappings usually write
it, through a ``custom_fields`` key holding the other record's remote id:
``candidate_remote_id``, ``job_remote_id``, ``application_remote_id``, ``interview_remote_id``,
``order_remote_id``. A scorecard without an application reference reaches its application
through its interview; an assessment result through its order (``order_id``,
``order_remote_id``, else the order with the result's own remote id, as assessment exports key
both); an order or result that names only a candidate counts for each of that candidate's
applications. A scorecard's interviewer is ``interviewer_id``, ``interviewer_remote_id`` or
``interviewer`` (an id, or an object with ``id``); interviewers are shown as ``#1``, ``#2``. An order of ``package_type``
``BACKGROUND_CHECK`` is a background check, not an assessment: its result's ``passed`` says
passed or failed; without a verdict yet it is pending.

**Candidate text.** ``custom_fields`` of the candidate (and of the application) may carry
``resume_text``, ``skills`` (a list, or text separated by commas or 、), ``years_experience``
and the contacts ``name`` / ``email`` / ``phone`` (only ever shown masked).

**Table names** come from the store connector's ``tables`` (``{ Candidate = "cands" }`` or
``{ candidates = "cands" }``), else the default above, else the entity name itself (what the
``sql`` destination creates for a mapped stream without ``tables``).

**Sealed values.** A destination with ``encrypt_pii = true`` (the default) writes personal
data (``custom_fields``, ratings, scores) as ``hub1.`` ciphertexts bound to the destination,
the stream, the column and the record's remote id; the loader opens the ones it reads through
the project's keyring and never logs or prints them.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Engine, MetaData, Table, inspect, select

from hub.crypto.envelope import TEXT_PREFIX
from hub.errors import HubError
from hub.masking import mask_text

if TYPE_CHECKING:
    from hub.crypto import Keyring

#: Canonical entity -> default table name.
ENTITY_TABLES: dict[str, str] = {
    "Application": "applications",
    "Candidate": "candidates",
    "Job": "jobs",
    "Scorecard": "scorecards",
    "Interview": "interviews",
    "AssessmentOrder": "assessment_orders",
    "AssessmentResult": "assessment_results",
}
_ENVELOPE = ("remote_id", "hub_id", "remote_created_at", "remote_updated_at", "custom_fields")
#: Columns read per entity, besides the envelope.
ENTITY_COLUMNS: dict[str, tuple[str, ...]] = {
    "Application": ("candidate_id", "job_id", "status"),
    "Candidate": ("person_id", "current_title", "current_company", "tags"),
    "Job": ("code", "title"),
    "Scorecard": (
        "application_id",
        "interview_id",
        "interviewer_id",
        "overall_recommendation",
        "ratings",
        "submitted_at",
    ),
    "Interview": ("application_id",),
    "AssessmentOrder": ("application_id", "candidate_id", "package_name", "package_type", "status"),
    "AssessmentResult": ("order_id", "status", "score", "max_score", "passed", "sub_results"),
}

#: ``(stream names to try, column, record id, sealed text) -> plain text``.
Opener = Callable[[Sequence[str], str, str, str], str]


class EvaluationError(HubError):
    """The canonical store cannot be read as the contract says (never carries personal data)."""


def decode(value: Any) -> Any:
    """A column value as Python data: JSON text (objects, lists) parsed, other text stripped."""
    if isinstance(value, bytes | memoryview):
        value = bytes(value).decode("utf-8", "replace")
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("{", "["):
            try:
                return orjson.loads(text)
            except orjson.JSONDecodeError:
                return text
        return text or None
    return value


def as_float(value: Any) -> float | None:
    """A score as a float: numbers, numeric text, ``{"value": n}``; None for anything else."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | Decimal):
        return float(value)
    if isinstance(value, Mapping):
        return as_float(value.get("value"))
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return number if number == number else None  # NaN is no score


def as_bool(value: Any) -> bool | None:
    if isinstance(value, bool) or value is None:
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "t", "yes", "y", "是", "通过"):
        return True
    if text in ("false", "0", "f", "no", "n", "否", "不通过"):
        return False
    return None


def coded(value: Any) -> str | None:
    """A ``Coded`` enum value (``{"value": "PASSED", "raw": "通过"}`` or ``PASSED``), upper-cased."""
    if isinstance(value, Mapping):
        value = value.get("value")
    if value is None:
        return None
    text = str(value).strip().upper().replace("-", "_").replace(" ", "_")
    return text or None


def as_time(value: Any) -> datetime | None:
    """A timestamp column (datetime, ISO text) as an aware datetime (naive ones are UTC)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str) and value.strip():
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def text_list(value: Any) -> list[str]:
    """Tags or skills: a JSON list, or text separated by commas, semicolons, 、 or |."""
    if value is None:
        return []
    if isinstance(value, str) and value.strip().startswith("["):
        value = decode(value)  # a list that reached custom_fields as JSON text (a JSON-lines export)
    if isinstance(value, list):
        return [str(v).strip() for v in value if v is not None and str(v).strip()]
    return [part.strip() for part in re.split(r"[,，、;；|/\n]+", str(value)) if part.strip()]


@dataclass
class Row:
    """One canonical record as read from the store (sealed values opened, JSON decoded)."""

    entity: str
    remote_id: str
    values: dict[str, Any] = field(repr=False)  # opened personal data: never in a repr or traceback

    @property
    def hub_id(self) -> str | None:
        value = self.values.get("hub_id")
        return str(value) if value else None

    @property
    def custom(self) -> dict[str, Any]:
        value = self.values.get("custom_fields")
        return value if isinstance(value, dict) else {}

    def get(self, name: str) -> Any:
        return self.values.get(name)

    def ref(self, name: str) -> str | None:
        """The remote id this record names in ``custom_fields.<name>_remote_id``."""
        value = self.custom.get(f"{name}_remote_id")
        return str(value).strip() if value not in (None, "") else None

    def link(self, name: str) -> str | None:
        """The hub id in the canonical ``<name>_id`` field."""
        value = self.values.get(f"{name}_id")
        return str(value).strip() if value not in (None, "") else None

    @property
    def changed_at(self) -> datetime | None:
        times = [as_time(self.values.get(c)) for c in ("remote_updated_at", "remote_created_at")]
        found = [t for t in times if t is not None]
        return max(found) if found else None


class _Index:
    """Rows of one entity by remote id and by hub id."""

    def __init__(self, rows: Iterable[Row]) -> None:
        self.rows = list(rows)
        self.by_remote = {r.remote_id: r for r in self.rows}
        self.by_hub = {r.hub_id: r for r in self.rows if r.hub_id}

    def find(self, hub_id: str | None, remote_id: str | None) -> Row | None:
        if hub_id and hub_id in self.by_hub:
            return self.by_hub[hub_id]
        if remote_id and remote_id in self.by_remote:
            return self.by_remote[remote_id]
        return None


@dataclass
class AssessmentEvidence:
    """An assessment (or background-check) order and the results reported for it."""

    order: Row | None
    results: list[Row] = field(default_factory=list)

    @property
    def package_type(self) -> str | None:
        return coded(self.order.get("package_type")) if self.order is not None else None

    @property
    def name(self) -> str:
        if self.order is not None:
            return str(self.order.get("package_name") or self.order.remote_id)
        return self.results[0].remote_id if self.results else "assessment"


@dataclass
class ApplicationBundle:
    """Everything the store holds about one application, joined."""

    application: Row
    candidate: Row | None
    job: Row | None
    scorecards: list[Row]
    assessments: list[AssessmentEvidence]
    background_orders: list[AssessmentEvidence]

    @property
    def remote_id(self) -> str:
        return self.application.remote_id

    @property
    def candidate_remote_id(self) -> str | None:
        return self.candidate.remote_id if self.candidate else self.application.ref("candidate")

    @property
    def job_remote_id(self) -> str | None:
        return self.job.remote_id if self.job else self.application.ref("job")

    def rows(self) -> Iterable[Row]:
        yield self.application
        for row in (self.candidate, self.job):
            if row is not None:
                yield row
        yield from self.scorecards
        for evidence in (*self.assessments, *self.background_orders):
            if evidence.order is not None:
                yield evidence.order
            yield from evidence.results

    @property
    def inputs_changed_at(self) -> datetime | None:
        """The latest change of any record the evaluation reads (the incremental cursor)."""
        times = [t for t in (r.changed_at for r in self.rows()) if t is not None]
        return max(times) if times else None


@dataclass
class CanonicalData:
    """The loaded tables, with the joins the evaluation needs."""

    tables: dict[str, list[Row]]

    def __post_init__(self) -> None:
        get = self.tables.get
        self.applications = _Index(get("Application", []))
        self.candidates = _Index(get("Candidate", []))
        self.jobs = _Index(get("Job", []))
        self.interviews = _Index(get("Interview", []))
        self.orders = _Index(get("AssessmentOrder", []))
        by_app: dict[str, list[Row]] = defaultdict(list)
        for card in get("Scorecard", []):
            app = self._application_of_scorecard(card)
            if app is not None:
                by_app[app.remote_id].append(card)
        self._scorecards = by_app
        # Orders with their results; then who they belong to.
        results: dict[str, list[Row]] = defaultdict(list)
        loose: list[Row] = []
        for result in get("AssessmentResult", []):
            order = self.orders.find(result.link("order"), result.ref("order"))
            if order is None and result.link("order") is None and result.ref("order") is None:
                order = self.orders.by_remote.get(result.remote_id)  # one id for both, as vendors export them
            if order is not None:
                results[order.remote_id].append(result)
            else:
                loose.append(result)
        evidence = [AssessmentEvidence(order, results.get(order.remote_id, [])) for order in self.orders.rows]
        evidence += [AssessmentEvidence(None, [result]) for result in loose]
        #: evidence naming no application or candidate of the store (see :meth:`link_by_person`)
        self.unclaimed: list[AssessmentEvidence] = []
        self._evidence_by_app: dict[str, list[AssessmentEvidence]] = defaultdict(list)
        self._evidence_by_candidate: dict[str, list[AssessmentEvidence]] = defaultdict(list)
        for item in evidence:
            owner = item.order if item.order is not None else item.results[0]
            app = self.applications.find(owner.link("application"), owner.ref("application"))
            if app is not None:
                self._evidence_by_app[app.remote_id].append(item)
                continue
            candidate = self.candidates.find(owner.link("candidate"), owner.ref("candidate"))
            if candidate is not None:
                self._evidence_by_candidate[candidate.remote_id].append(item)
                continue
            self.unclaimed.append(item)

    def link_by_person(self, person_of: Callable[[Row], str | None]) -> int:
        """Give unclaimed assessment evidence to the candidates identity resolution says are
        the same person (an assessment platform that knows the candidate only by e-mail).

        ``person_of`` returns the hub Person a stored record is linked to. Returns how many
        pieces of evidence found a candidate; the rest stay unclaimed.
        """
        if not self.unclaimed:
            return 0
        by_person: dict[str, list[Row]] = defaultdict(list)
        for candidate in self.candidates.rows:
            person = person_of(candidate)
            if person:
                by_person[person].append(candidate)
        still: list[AssessmentEvidence] = []
        linked = 0
        for item in self.unclaimed:
            owners = ([item.order] if item.order is not None else []) + list(item.results)
            person = next((p for p in map(person_of, owners) if p), None)
            candidates = by_person.get(person, []) if person else []
            for candidate in candidates:
                self._evidence_by_candidate[candidate.remote_id].append(item)
            if candidates:
                linked += 1
            else:
                still.append(item)
        self.unclaimed = still
        return linked

    def _application_of_scorecard(self, card: Row) -> Row | None:
        app = self.applications.find(card.link("application"), card.ref("application"))
        if app is not None:
            return app
        interview = self.interviews.find(card.link("interview"), card.ref("interview"))
        if interview is None:
            return None
        return self.applications.find(interview.link("application"), interview.ref("application"))

    def candidate_of(self, app: Row) -> Row | None:
        return self.candidates.find(app.link("candidate"), app.ref("candidate"))

    def job_of(self, app: Row) -> Row | None:
        return self.jobs.find(app.link("job"), app.ref("job"))

    def find_application(self, key: str) -> Row | None:
        """An application by its remote id or its hub id."""
        return self.applications.by_remote.get(key) or self.applications.by_hub.get(key)

    def find_job(self, key: str) -> Row | None:
        """A job by remote id, hub id or code."""
        found = self.jobs.by_remote.get(key) or self.jobs.by_hub.get(key)
        if found is None:
            found = next((j for j in self.jobs.rows if str(j.get("code") or "") == key), None)
        return found

    def applications_of_job(self, job_key: str) -> list[Row]:
        """Applications whose job is ``job_key`` (remote id, hub id or code), in remote-id order."""
        job = self.find_job(job_key)
        found = []
        for app in self.applications.rows:
            linked = self.job_of(app)
            if (linked is not None and linked is job) or (linked is None and app.ref("job") == job_key):
                found.append(app)
        return sorted(found, key=lambda a: a.remote_id)

    def bundle(self, app: Row) -> ApplicationBundle:
        candidate = self.candidate_of(app)
        evidence = list(self._evidence_by_app.get(app.remote_id, []))
        if candidate is not None:
            evidence += self._evidence_by_candidate.get(candidate.remote_id, [])
        background = [e for e in evidence if e.package_type == "BACKGROUND_CHECK"]
        return ApplicationBundle(
            application=app,
            candidate=candidate,
            job=self.job_of(app),
            scorecards=sorted(
                self._scorecards.get(app.remote_id, []),
                key=lambda c: (
                    as_time(c.get("submitted_at")) or datetime.min.replace(tzinfo=UTC),
                    c.remote_id,
                ),
            ),
            assessments=[e for e in evidence if e.package_type != "BACKGROUND_CHECK"],
            background_orders=background,
        )

    def bundles(self, apps: Iterable[Row] | None = None) -> list[ApplicationBundle]:
        """Bundles of ``apps`` (every application, in remote-id order, by default)."""
        chosen = sorted(self.applications.rows, key=lambda a: a.remote_id) if apps is None else apps
        return [self.bundle(app) for app in chosen]

    def applications_of_candidate(self, candidate: Row) -> list[Row]:
        return [a for a in self.applications.rows if self.candidate_of(a) is candidate]


def keyring_opener(keyring: Keyring, destination: str) -> Opener:
    """Open values the ``destination`` connector sealed (context: destination/stream, column, remote id).

    The stream a value was sealed under is the pipeline's entity or ``destination_stream``;
    the names are tried in order and the one that worked is tried first next time.
    """
    from hub.crypto.keyring import DecryptionError
    from hub.pii import destination_table

    worked: dict[tuple[str, ...], str] = {}

    def open_value(streams: Sequence[str], column: str, record_id: str, value: str) -> str:
        key = tuple(streams)
        ordered = [worked[key], *[s for s in streams if s != worked[key]]] if key in worked else list(streams)
        for stream in ordered:
            try:
                plain = keyring.open_text(value, destination_table(destination, stream), column, record_id)
            except DecryptionError:
                continue
            worked[key] = stream
            return plain
        raise EvaluationError(
            f"cannot open the sealed {column} of record {mask_text(record_id)} in {'/'.join(streams)} "
            f"with this project's keys (written by another destination, tenant or key?)"
        )

    return open_value


class CanonicalStore:
    """Reads the recruiting tables of the canonical store (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        *,
        schema: str | None = None,
        tables: Mapping[str, str] | None = None,
        opener: Opener | None = None,
    ) -> None:
        self.engine = engine
        self.schema = schema
        self.tables = dict(tables or {})
        self.opener = opener

    def locate(self, entity: str, existing: set[str]) -> tuple[str | None, list[str]]:
        """The table of ``entity`` and the stream names its values may be sealed under."""
        default = ENTITY_TABLES[entity]
        for stream in (entity, default):
            if stream in self.tables:
                return self.tables[stream], [stream, entity, default]
        for name in (default, entity):
            if name in existing:
                return name, [name, entity, default]
        return None, [entity, default]

    def load(self, entities: Iterable[str] = tuple(ENTITY_TABLES)) -> CanonicalData:
        """Read every table of ``entities`` that exists; applications must."""
        inspector = inspect(self.engine)
        existing = set(inspector.get_table_names(schema=self.schema))
        loaded: dict[str, list[Row]] = {}
        for entity in entities:
            table, streams = self.locate(entity, existing)
            if table is None or table not in existing:
                if entity == "Application":
                    raise EvaluationError(
                        f"the canonical store has no {table or ENTITY_TABLES[entity]!r} table "
                        "(run the pipelines that map applications into it first)"
                    )
                continue
            loaded[entity] = self._read(entity, table, list(dict.fromkeys(streams)))
        return CanonicalData(loaded)

    def _read(self, entity: str, name: str, streams: list[str]) -> list[Row]:
        table = Table(name, MetaData(), autoload_with=self.engine, schema=self.schema)
        if "remote_id" not in table.c:
            raise EvaluationError(f"table {name!r} has no remote_id column (the contract's record key)")
        wanted = [c for c in (*_ENVELOPE, *ENTITY_COLUMNS[entity]) if c in table.c]
        rows: list[Row] = []
        with self.engine.connect() as conn:
            for record in conn.execute(select(*[table.c[c] for c in wanted])).mappings():
                remote_id = str(record["remote_id"])
                values = {}
                for column in wanted:
                    value = record[column]
                    if isinstance(value, str) and value.startswith(TEXT_PREFIX):
                        value = self._open(streams, column, remote_id, value)
                    values[column] = decode(value)
                rows.append(Row(entity=entity, remote_id=remote_id, values=values))
        return rows

    def _open(self, streams: list[str], column: str, record_id: str, value: str) -> str:
        if self.opener is None:
            raise EvaluationError(
                f"{'/'.join(streams)}.{column} holds sealed values; reading them needs the project's keys"
            )
        return self.opener(streams, column, record_id, value)
