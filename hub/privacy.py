"""Privacy operations: data-subject export and erasure, tombstones, reveal with audit, retention.

* :func:`collect` finds everything hub holds about one resolved person: the person (canonical
  fields, provenance, links, conflicts, reviews), dead letters and raw records whose payload is
  theirs, change events and delivery records of their source records, and audit rows about them.
  A payload is theirs when its record key is one of their links (``keyring.blind(key,
  "remote_id")`` for the pipeline's source connector) or when any of its values, normalised as
  :mod:`hub.identity` normalises identifiers, has the blind digest of one of their ID numbers,
  e-mails or phones.
* :func:`export` returns all of it decrypted (``hub privacy export`` writes it 0600);
  :func:`erase` deletes all of it and leaves *tombstones*: the keyed digests of their links and
  identifiers in ``privacy_tombstones`` (the only table that keeps them).
* :class:`TombstoneScreen` runs inside every sync (``Sync._prepare``): records whose key or
  identifiers match an active tombstone are suppressed, neither written, resolved nor
  dead-lettered, and counted in a ``privacy`` event of the sync log. A record carrying a consent
  timestamp newer than the erasure (the mapping's identity field ``consent_at``, or the column
  named by ``[privacy] consent_field`` in streams without a mapping) passes, and lifts the
  erasures it matches by record key, ID number or e-mail.
* :func:`reveal` shows one field in clear, only with a reason, and audits it.
* :func:`purge` applies ``[privacy]`` retention to raw records and dead letters.

Nothing here logs, raises or audits a personal value: audit rows carry hub ids, erasure ids,
field names, counts and the operator's reason (masked for ID number, phone and e-mail shapes).
"""

from __future__ import annotations

import re
import time
import unicodedata
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import orjson
import pandas as pd
from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from hub.crypto import DecryptionError
from hub.errors import HubError
from hub.identity import NAME_FIELDS, IdentityResolver, PersonView, normalise, remote_digest
from hub.mapping.executor import REMOTE_ID
from hub.masking import mask_text
from hub.store.models import (
    AuditEntry,
    CanonicalRecord,
    ChangeEvent,
    DeadLetter,
    IdentityConflict,
    IdentityReview,
    OnboardingCaseRow,
    OnboardingTaskRow,
    PersonIndex,
    PersonLink,
    PersonProvenance,
    PersonRow,
    PrivacyTombstone,
    RawRecord,
)

if TYPE_CHECKING:
    from hub.config import PipelineConfig
    from hub.engine import Prepared, StreamContext
    from hub.project import Project
    from hub.synclog import SyncLog

#: Identifier kinds that are tombstoned (the blind-index kinds identity resolution looks up).
IDENTIFIER_KINDS: tuple[str, ...] = ("id_number", "email", "phone")
#: Tombstone kind of a source record id (``source`` names the connector).
REMOTE = "remote"
#: Identity field (mapping ``identity:`` section) carrying the data subject's consent time.
CONSENT_FIELD = "consent_at"
#: Rows per batch when scanning or deleting.
BATCH = 500
#: Digests per ``IN (...)`` of a tombstone lookup (bind-parameter limits of every backend).
LOOKUP_SLICE = 1000
#: Longest text scanned for identifier shapes (a resume, a JSON document).
MAX_SCAN = 100_000

_ID_SHAPE = re.compile(r"(?<![0-9A-Za-z])(?:\d{17}[0-9Xx]|\d{15})(?![0-9A-Za-z])")
_PHONE_SHAPE = re.compile(r"(?<![\d+])(?:\+?86[- ]?|0086[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}(?!\d)")
_EMAIL_SHAPE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PHONE_CHARS = re.compile(r"^[+\d\s().-]+$")
_ID_CHARS = re.compile(r"^[\dXx\s]+$")


class PrivacyError(HubError):
    """A privacy operation cannot be done (unknown person, missing reason, ...)."""


# -- audit ---------------------------------------------------------------------------------------


def require_reason(reason: str | None) -> str:
    """The operator's reason, trimmed; refuses an empty one."""
    text = (reason or "").strip()
    if not text:
        raise PrivacyError("a reason is required (--reason): it goes to the audit log")
    return text


def audit_entry(action: str, target: str, reason: str | None, details: Mapping[str, Any]) -> AuditEntry:
    """An audit row; the reason is masked for ID-number, phone and e-mail shapes."""
    from hub.project import actor

    return AuditEntry(
        actor=actor(),
        action=action,
        target=target[:500],
        reason=mask_text(reason)[:2000] if reason else None,
        details=dict(details),
    )


def audit_rows(project: Project, action: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """The audit log, newest first, details masked (``hub audit list``)."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if action:
        query = query.where(AuditEntry.action.startswith(action))
    with project.db.session() as session:
        return [
            {
                "id": row.id,
                "at": _utc(row.at).isoformat(),
                "actor": row.actor,
                "action": row.action,
                "target": mask_text(row.target),
                "reason": mask_text(row.reason) if row.reason else None,
                "details": _masked(row.details or {}),
            }
            for row in session.execute(query).scalars()
        ]


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    return value


# -- small helpers -------------------------------------------------------------------------------


def _utc(value: datetime) -> datetime:
    """Aware UTC (MariaDB and SQLite return naive UTC datetimes)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _slices(items: Sequence[Any], size: int = LOOKUP_SLICE) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def parse_consent(value: Any, timezone: str = "UTC") -> datetime | None:
    """A consent timestamp: ISO date-time (naive = ``timezone``) or date; None if unreadable."""
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        text = str(value).strip()
        if not text or text.lower() in ("nat", "nan", "none", "null"):
            return None
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    return moment.astimezone(UTC)


def _leaves(value: Any, depth: int = 0) -> Iterator[str]:
    """Every text value inside a record (dicts, lists, JSON documents held as text)."""
    if value is None or depth > 6:
        return
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _leaves(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _leaves(item, depth + 1)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return
        yield text
        if text[0] in "{[" and len(text) <= MAX_SCAN:
            try:
                parsed = orjson.loads(text)
            except orjson.JSONDecodeError:
                return
            yield from _leaves(parsed, depth + 1)
    elif isinstance(value, bool):
        return
    elif isinstance(value, int | float):
        yield str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


class IdentifierDigests:
    """Blind digests of the identifiers a text holds, as :mod:`hub.identity` computes them."""

    def __init__(self, keyring: Any, region: str = "CN", kinds: Iterable[str] = IDENTIFIER_KINDS) -> None:
        self.keyring = keyring
        self.region = region
        self.kinds = frozenset(kinds)

    def of(self, kind: str, value: Any) -> str | None:
        """The digest of ``value`` as an identifier of ``kind``, or None if it is empty."""
        if value is None:
            return None
        try:
            norm = normalise(kind, value, self.region)
        except Exception:  # noqa: BLE001 - an odd value is simply not an identifier
            return None
        return self.keyring.blind(norm, kind) if norm else None

    def in_text(self, text: str) -> set[tuple[str, str]]:
        """(kind, digest) of the text as a whole value and of identifier shapes inside it."""
        found: set[tuple[str, str]] = set()
        if len(text) > MAX_SCAN:
            text = text[:MAX_SCAN]
        plain = unicodedata.normalize("NFKC", text).strip()
        candidates: list[tuple[str, str]] = []
        if "id_number" in self.kinds:
            compact = "".join(plain.split())
            if len(compact) in (15, 18) and _ID_CHARS.match(compact):
                candidates.append(("id_number", compact))
            candidates += [("id_number", m.group(0)) for m in _ID_SHAPE.finditer(plain)]
        if "email" in self.kinds and "@" in plain:
            if " " not in plain:
                candidates.append(("email", plain))
            candidates += [("email", m.group(0)) for m in _EMAIL_SHAPE.finditer(plain)]
        if "phone" in self.kinds:
            digits = sum(c.isdigit() for c in plain)
            if 7 <= digits <= 15 and _PHONE_CHARS.match(plain):
                candidates.append(("phone", plain))
            candidates += [("phone", m.group(0)) for m in _PHONE_SHAPE.finditer(plain)]
        for kind, candidate in dict.fromkeys(candidates):
            digest = self.of(kind, candidate)
            if digest is not None:
                found.add((kind, digest))
        return found


# -- what hub holds about one person -------------------------------------------------------------


@dataclass
class Findings:
    """Everything hub holds about one person (ids of rows, and what was decrypted to find them)."""

    hub_id: str
    view: PersonView
    #: (kind, digest) of their ID numbers, e-mails and phones (person_index and their fields)
    identifiers: set[tuple[str, str]]
    #: (source connector, remote digest, linked at, rehire)
    links: list[tuple[str, str, datetime, bool]]
    #: provisional persons' reviews (of other persons) that name them as a candidate
    candidate_reviews: list[dict[str, Any]] = field(default_factory=list)
    #: their own reviews, with the reviewed record decrypted
    reviews: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    raw_records: list[dict[str, Any]] = field(default_factory=list)
    change_events: list[dict[str, Any]] = field(default_factory=list)
    #: canonical_records rows of their source records (key digests known from raw records / events)
    canonical: list[dict[str, Any]] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)
    #: onboarding cases opened for them (their data decrypted: the export shows it)
    onboarding_cases: list[dict[str, Any]] = field(default_factory=list)
    #: payloads that could not be decrypted (retired key, moved row): not matched, reported
    undecryptable: int = 0

    @property
    def names(self) -> list[str]:
        fields = self.view.fields
        names = {str(fields[f]).strip() for f in NAME_FIELDS if isinstance(fields.get(f), str)}
        for extra in ("display_name", "legal_family_name", "preferred_name"):
            if isinstance(fields.get(extra), str):
                names.add(str(fields[extra]).strip())
        family, given = fields.get("family_name"), fields.get("given_name")
        if isinstance(family, str) and isinstance(given, str):
            names.add(family.strip() + given.strip())
        return sorted((n for n in names if len(n) >= 2), key=len, reverse=True)

    def counts(self) -> dict[str, int]:
        """How much of each kind was found (no values): for audit rows and confirmations."""
        return {
            "fields": len(self.view.fields),
            "links": len(self.links),
            "identifiers": len(self.identifiers),
            "conflicts": len(self.view.conflicts),
            "reviews": len(self.reviews),
            "candidate_in_reviews": len(self.candidate_reviews),
            "dead_letters": len(self.dead_letters),
            "raw_records": len(self.raw_records),
            "change_events": len(self.change_events),
            "canonical_records": len(self.canonical),
            "audit_rows": len(self.audit),
            "onboarding_cases": len(self.onboarding_cases),
        }


class _Matcher:
    """Does a decrypted payload belong to the person?"""

    def __init__(self, project: Project, findings: Findings) -> None:
        self.project = project
        self.keyring = project.keyring
        self.digests = IdentifierDigests(project.keyring, project.identity_config.phone_region)
        self.identifiers = findings.identifiers
        self.links = {(source, digest) for source, digest, _, _ in findings.links}

    def key_of(self, pipeline: str, stream: str, record: Mapping[str, Any]) -> tuple[str | None, str | None]:
        """The pipeline's source connector and the record's key text, when hub.toml says how."""
        config = self.project.settings.pipelines.get(pipeline)
        if config is None:
            return None, None
        selection = next((s for s in config.streams if s.name == stream), None)
        spec = self.project.mappings.get(selection.mapping) if selection and selection.mapping else None
        if spec is not None and REMOTE_ID in record:  # a mapped row a destination refused
            return config.source, str(record[REMOTE_ID]).strip()
        columns: list[str] = list(spec.key) if spec is not None else []
        if not columns and selection is not None:
            columns = list(selection.primary_key)
        if not columns:
            connector = self.project.settings.connectors.get(config.source)
            declared = connector.config.get("primary_key") if connector is not None else None
            if isinstance(declared, list) and all(isinstance(c, str) for c in declared):
                columns = list(declared)
        if not columns or any(record.get(c) in (None, "") for c in columns):
            return config.source, None
        return config.source, "\x1f".join(str(record[c]).strip() for c in columns)

    def remote(self, source: str | None, key: str | None) -> bool:
        if source is None or key is None:
            return False
        return (source, remote_digest(self.keyring, key)) in self.links

    def matches(self, record: Any, pipeline: str, stream: str) -> bool:
        if isinstance(record, Mapping):
            source, key = self.key_of(pipeline, stream, record)
            if self.remote(source, key):
                return True
        return any(self.digests.in_text(text) & self.identifiers for text in _leaves(record))


def _person_of(project: Project, hub_id: str) -> PersonView:
    resolver = IdentityResolver(project.db, project.keyring, project.identity_config)
    view = resolver.get_person(hub_id.strip())
    if view is None:
        raise PrivacyError(f"no person {hub_id.strip()}")
    return view


def _open_json(keyring: Any, blob: bytes | None, *context: str) -> Any:
    if blob is None:
        return None
    return orjson.loads(keyring.open(blob, *context))


def _raw_context(pipeline: str, stream: str, key_digest: str) -> tuple[str, ...]:
    try:
        from hub.pii import raw_record_context
    except ImportError:  # pragma: no cover - keep_raw not installed
        return ("raw_records", f"{pipeline}|{stream}|{key_digest}")
    return tuple(raw_record_context(pipeline, stream, key_digest))


def _open_record_id(keyring: Any, row: ChangeEvent) -> str | None:
    """A change event's sealed record id (its source key), or None if it does not open."""
    # hub.changes seals it with ("change_events", key_digest); the model's first documented form too.
    for context in (("change_events", row.key_digest), ("change_events", "record_id", row.key_digest)):
        try:
            return keyring.open(row.record_id, *context).decode()
        except (DecryptionError, UnicodeDecodeError):
            continue
    return None


def collect(project: Project, hub_id: str) -> Findings:
    """Find everything hub holds about person ``hub_id`` (decrypting what has to be matched)."""
    from hub.engine import dead_letter_context

    view = _person_of(project, hub_id)
    keyring = project.keyring
    digests = IdentifierDigests(keyring, project.identity_config.phone_region)
    with project.db.session() as session:
        identifiers = {
            (kind, digest)
            for kind, digest in session.execute(
                select(PersonIndex.kind, PersonIndex.digest).where(
                    PersonIndex.person_id == view.hub_id, PersonIndex.kind.in_(IDENTIFIER_KINDS)
                )
            ).tuples()
        }
        links = [
            (source, digest, _utc(created), bool(rehire))
            for source, digest, created, rehire in session.execute(
                select(PersonLink.source, PersonLink.remote_digest, PersonLink.created_at, PersonLink.rehire)
                .where(PersonLink.person_id == view.hub_id)
                .order_by(PersonLink.id)
            ).tuples()
        ]
    for kind in IDENTIFIER_KINDS:
        digest = digests.of(kind, view.fields.get(kind))
        if digest is not None:
            identifiers.add((kind, digest))
    found = Findings(hub_id=view.hub_id, view=view, identifiers=identifiers, links=links)
    matcher = _Matcher(project, found)
    key_digests: set[str] = set()

    with project.db.session() as session:
        for review in session.execute(
            select(IdentityReview).where(IdentityReview.person_id == view.hub_id).order_by(IdentityReview.id)
        ).scalars():
            try:
                details = _open_json(keyring, review.details_ciphertext, "identity_reviews", review.id)
            except DecryptionError:
                details, found.undecryptable = None, found.undecryptable + 1
            found.reviews.append(
                {
                    "id": review.id,
                    "source": review.source,
                    "reason": review.reason,
                    "status": review.status,
                    "created_at": _utc(review.created_at).isoformat(),
                    "candidates": list(review.candidates or []),
                    "record": details,
                }
            )
        # Reviews of other (provisional) persons that name this person as a candidate.
        for review_id, person_id, reason, status, candidates in session.execute(
            select(
                IdentityReview.id,
                IdentityReview.person_id,
                IdentityReview.reason,
                IdentityReview.status,
                IdentityReview.candidates,
            ).where(IdentityReview.person_id != view.hub_id)
        ).tuples():
            vias = [c.get("via") for c in candidates or [] if c.get("person_id") == view.hub_id]
            if vias:
                found.candidate_reviews.append(
                    {"id": review_id, "person_id": person_id, "reason": reason, "status": status, "via": vias}
                )

    for row in _scan(project, DeadLetter):
        try:
            record = _open_json(
                keyring,
                row.payload,
                "dead_letters",
                dead_letter_context(row.pipeline, row.stream, row.position),
            )
        except DecryptionError:
            found.undecryptable += 1
            continue
        if record is not None and matcher.matches(record, row.pipeline, row.stream):
            found.dead_letters.append(
                {
                    "id": row.id,
                    "run_id": row.run_id,
                    "pipeline": row.pipeline,
                    "stream": row.stream,
                    "destination": row.destination,
                    "position": row.position,
                    "reason": row.reason,
                    "status": row.status,
                    "created_at": _utc(row.created_at).isoformat(),
                    "record": record,
                }
            )

    for event in _scan(project, ChangeEvent):
        config = project.settings.pipelines.get(event.pipeline)
        record_id = _open_record_id(keyring, event)
        if record_id is None:
            found.undecryptable += 1
            continue
        if config is not None and matcher.remote(config.source, record_id):
            key_digests.add(event.key_digest)
            found.change_events.append(
                {
                    "id": event.id,
                    "run_id": event.run_id,
                    "pipeline": event.pipeline,
                    "stream": event.stream,
                    "entity": event.entity,
                    "kind": event.kind,
                    "record_id": record_id,
                    "changed_fields": list(event.changed_fields or []),
                    "created_at": _utc(event.created_at).isoformat(),
                }
            )

    for raw in _scan(project, RawRecord):
        try:
            record = _open_json(keyring, raw.payload, *_raw_context(raw.pipeline, raw.stream, raw.key_digest))
        except DecryptionError:
            found.undecryptable += 1
            continue
        if raw.key_digest in key_digests or matcher.matches(record, raw.pipeline, raw.stream):
            key_digests.add(raw.key_digest)
            found.raw_records.append(
                {
                    "id": raw.id,
                    "run_id": raw.run_id,
                    "pipeline": raw.pipeline,
                    "stream": raw.stream,
                    "position": raw.position,
                    "created_at": _utc(raw.created_at).isoformat(),
                    "record": record,
                }
            )

    _collect_onboarding_cases(project, found, digests)

    with project.db.session() as session:
        ordered = sorted(key_digests)
        for part in _slices(ordered):
            for rec in session.execute(
                select(CanonicalRecord).where(CanonicalRecord.key_digest.in_(part))
            ).scalars():
                found.canonical.append(
                    {
                        "id": rec.id,
                        "pipeline": rec.pipeline,
                        "entity": rec.entity,
                        "source_connector": rec.source_connector,
                        "source_stream": rec.source_stream,
                        "position": rec.position,
                        "updated_at": _utc(rec.updated_at).isoformat(),
                    }
                )
        for entry in session.execute(
            select(AuditEntry).where(AuditEntry.target.like(f"%{view.hub_id}%")).order_by(AuditEntry.id)
        ).scalars():
            found.audit.append(
                {
                    "id": entry.id,
                    "at": _utc(entry.at).isoformat(),
                    "actor": entry.actor,
                    "action": entry.action,
                    "target": entry.target,
                    "reason": entry.reason,
                    "details": entry.details or {},
                }
            )
    return found


def _collect_onboarding_cases(project: Project, found: Findings, digests: IdentifierDigests) -> None:
    """Cases whose sealed data is this person's: their hub id (intake records it), or one of
    their ID number, phone or e-mail (cases started from a file)."""
    keyring = project.keyring
    for row in _scan(project, OnboardingCaseRow):
        try:
            data = orjson.loads(keyring.open(row.data, "onboarding_cases", row.id))
        except DecryptionError:
            found.undecryptable += 1
            continue
        if not isinstance(data, dict):
            continue
        mine = str(data.get("person_id") or "") == found.hub_id or any(
            (kind, digest) in found.identifiers
            for kind, names in (
                ("id_number", ("id_number",)),
                ("phone", ("phone", "mobile")),
                ("email", ("email",)),
            )
            for name in names
            if (digest := digests.of(kind, data.get(name))) is not None
        )
        if mine:
            found.onboarding_cases.append(
                {
                    "id": row.id,
                    "status": row.status,
                    "source": row.source,
                    "created_at": _utc(row.created_at).isoformat(),
                    "data": data,
                }
            )


def _scan(project: Project, model: Any) -> Iterator[Any]:
    """Every row of ``model``, in id order, ``BATCH`` rows per session (bounded memory)."""
    last: int | None = None
    while True:
        with project.db.session() as session:
            query = select(model).order_by(model.id).limit(BATCH)
            if last is not None:
                query = query.where(model.id > last)
            rows = list(session.execute(query).scalars())
        if not rows:
            return
        yield from rows
        last = rows[-1].id


# -- export --------------------------------------------------------------------------------------

REMOTE_NOTE = (
    "hub stores a source's record id only as a keyed digest (HMAC-SHA256, truncated): it can match "
    "a record it is shown again, but cannot tell what the id was. Ask the source system for it."
)


def export(project: Project, hub_id: str, reason: str) -> dict[str, Any]:
    """Everything hub holds about one person, in clear, and an audit row (who, when, why)."""
    reason = require_reason(reason)
    found = collect(project, hub_id)
    view = found.view
    export_id = str(uuid.uuid4())
    data = {
        "export": {
            "id": export_id,
            "hub_id": view.hub_id,
            "generated_at": datetime.now(UTC).isoformat(),
            "reason": reason,
            "notes": [
                "This file holds personal data in clear: handle it under your data-subject request "
                "procedure and delete it once delivered.",
                REMOTE_NOTE,
                "Destinations (the systems hub writes to) keep their own copies: see downstream.",
            ],
        },
        "person": {
            "hub_id": view.hub_id,
            "created_at": view.created_at.isoformat(),
            "updated_at": view.updated_at.isoformat(),
            "needs_review": view.needs_review,
            "rehire": view.rehire,
            "rehired_at": view.rehired_at.isoformat() if view.rehired_at else None,
            "fields": dict(sorted(view.fields.items())),
        },
        "provenance": {
            name: {"source": p.source, "observed_at": p.observed_at.isoformat()}
            for name, p in sorted(view.provenance.items())
        },
        "links": [
            {
                "source": source,
                "linked_at": created.isoformat(),
                "rehire": rehire,
                "remote_id": None,
                "remote_id_digest": digest,
                "note": "the remote id is stored only as a keyed digest",
            }
            for source, digest, created, rehire in found.links
        ],
        "identifiers": sorted({kind for kind, _ in found.identifiers}),
        "conflicts": [
            {
                "id": c.id,
                "field": c.field,
                "kind": c.kind,
                "status": c.status,
                "existing_source": c.existing_source,
                "incoming_source": c.incoming_source,
                "winner_source": c.winner_source,
                "observed_at": c.observed_at.isoformat(),
                "existing": c.existing,
                "incoming": c.incoming,
            }
            for c in view.conflicts
        ],
        "reviews": found.reviews,
        "candidate_in_reviews": found.candidate_reviews,
        "dead_letters": found.dead_letters,
        "raw_records": found.raw_records,
        "change_events": found.change_events,
        "delivery_records": found.canonical,
        "downstream": downstream(project, {source for source, _, _, _ in found.links}),
        "audit": found.audit,
        "onboarding_cases": found.onboarding_cases,
        "undecryptable_payloads": found.undecryptable,
    }
    with project.db.session() as session:
        session.add(
            audit_entry("privacy.export", view.hub_id, reason, {"export_id": export_id, **found.counts()})
        )
    return data


def downstream(project: Project, sources: set[str]) -> list[dict[str, Any]]:
    """Pipelines reading the person's sources, and where they write (no values)."""
    return [
        {"pipeline": p.name, "source": p.source, "destinations": list(p.destinations)}
        for p in project.settings.pipelines.values()
        if p.source in sources
    ]


# -- erase ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Erasure:
    """What ``erase`` did (no personal data): for the CLI and the audit row."""

    erasure_id: str
    counts: dict[str, int]
    tombstones: int
    downstream: list[dict[str, Any]]


def erase(project: Project, hub_id: str, reason: str, findings: Findings | None = None) -> Erasure:
    """Delete everything hub holds about one person and tombstone their links and identifiers.

    Runs under the ``identity`` lease (no resolver runs meanwhile) and in one transaction.
    """
    from hub.leases import LeaseHolder

    reason = require_reason(reason)
    lease = LeaseHolder(project.db, "identity", ttl=120)
    deadline = time.monotonic() + 60
    while not lease.try_acquire():
        if time.monotonic() > deadline:
            raise PrivacyError("identity resolution stayed busy for a minute; try again")
        time.sleep(0.1)
    try:
        found = findings if findings is not None and findings.hub_id == hub_id.strip() else None
        found = found or collect(project, hub_id)
        return _erase(project, found, reason)
    finally:
        lease.release()


def _erase(project: Project, found: Findings, reason: str) -> Erasure:
    hub_id = found.hub_id
    erasure_id = str(uuid.uuid4())
    now = datetime.now(UTC).replace(microsecond=0)
    names = found.names
    with project.db.session() as session:
        # Read again under the lease: a record resolved since ``collect`` is tombstoned too.
        links = {(source, digest) for source, digest, _, _ in found.links} | set(
            session.execute(
                select(PersonLink.source, PersonLink.remote_digest).where(PersonLink.person_id == hub_id)
            ).tuples()
        )
        identifiers = found.identifiers | set(
            session.execute(
                select(PersonIndex.kind, PersonIndex.digest).where(
                    PersonIndex.person_id == hub_id, PersonIndex.kind.in_(IDENTIFIER_KINDS)
                )
            ).tuples()
        )
        wanted = [(REMOTE, source, digest) for source, digest in sorted(links)]
        wanted += [(kind, "", digest) for kind, digest in sorted(identifiers)]
        existing = {
            (row.kind, row.source, row.digest): row
            for part in _slices(sorted({d for _, _, d in wanted}))
            for row in session.execute(
                select(PrivacyTombstone).where(PrivacyTombstone.digest.in_(part))
            ).scalars()
        }
        for kind, source, digest in wanted:
            row = existing.get((kind, source, digest))
            if row is None:
                session.add(
                    PrivacyTombstone(
                        erasure_id=erasure_id, kind=kind, source=source, digest=digest, erased_at=now
                    )
                )
            else:  # erased before (and maybe consented again since): erased again now
                row.erasure_id, row.erased_at, row.lifted_at = erasure_id, now, None
        # Other persons' reviews stop naming this person as a candidate.
        for item in found.candidate_reviews:
            review = session.get(IdentityReview, item["id"])
            if review is not None:
                review.candidates = [c for c in review.candidates or [] if c.get("person_id") != hub_id]
        owned: tuple[tuple[Any, Any], ...] = (
            (IdentityReview, IdentityReview.person_id),
            (IdentityConflict, IdentityConflict.person_id),
            (PersonProvenance, PersonProvenance.person_id),
            (PersonLink, PersonLink.person_id),
            (PersonIndex, PersonIndex.person_id),
        )
        for model, column in owned:
            session.execute(delete(model).where(column == hub_id))
        session.execute(delete(PersonRow).where(PersonRow.hub_id == hub_id))
        matched: tuple[tuple[Any, list[dict[str, Any]]], ...] = (
            (DeadLetter, found.dead_letters),
            (RawRecord, found.raw_records),
            (ChangeEvent, found.change_events),
            (CanonicalRecord, found.canonical),
        )
        for table, rows in matched:
            for part in _slices([r["id"] for r in rows]):
                session.execute(delete(table).where(table.id.in_(part)))
        # Their onboarding cases: the tasks (sealed results) and the case (sealed data) go.
        for part in _slices([c["id"] for c in found.onboarding_cases]):
            session.execute(delete(OnboardingTaskRow).where(OnboardingTaskRow.case_id.in_(part)))
            session.execute(delete(OnboardingCaseRow).where(OnboardingCaseRow.id.in_(part)))
        # Reasons typed by operators may name the person: their names are masked in the log.
        for entry in found.audit:
            text = entry.get("reason") or ""
            scrubbed = _scrub_names(text, names)
            if scrubbed != text:
                session.execute(
                    update(AuditEntry).where(AuditEntry.id == entry["id"]).values(reason=scrubbed)
                )
        counts = found.counts()
        session.add(
            audit_entry(
                "privacy.erase",
                f"erasure:{erasure_id}",
                _scrub_names(reason, names),
                {"erasure_id": erasure_id, "tombstones": len(wanted), **counts},
            )
        )
    return Erasure(
        erasure_id=erasure_id,
        counts=counts,
        tombstones=len(wanted),
        downstream=downstream(project, {source for source, _, _, _ in found.links}),
    )


def _scrub_names(text: str, names: Sequence[str]) -> str:
    for name in names:
        text = text.replace(name, name[:1] + "*" * (len(name) - 1))
    return text


def tombstones(project: Project) -> dict[str, Any]:
    """Erasures and their tombstones, counted (``hub privacy tombstones``; no digests)."""
    with project.db.session() as session:
        rows = session.execute(
            select(
                PrivacyTombstone.erasure_id,
                PrivacyTombstone.kind,
                PrivacyTombstone.source,
                PrivacyTombstone.erased_at,
                PrivacyTombstone.lifted_at,
            ).order_by(PrivacyTombstone.erased_at, PrivacyTombstone.id)
        ).tuples()
        erasures: dict[str, dict[str, Any]] = {}
        for erasure_id, kind, source, erased_at, lifted_at in rows:
            item = erasures.setdefault(
                erasure_id,
                {
                    "erasure_id": erasure_id,
                    "erased_at": _utc(erased_at).isoformat(),
                    "lifted_at": None,
                    "kinds": {},
                    "sources": [],
                },
            )
            item["kinds"][kind] = item["kinds"].get(kind, 0) + 1
            if source and source not in item["sources"]:
                item["sources"].append(source)
            if lifted_at is not None:
                item["lifted_at"] = _utc(lifted_at).isoformat()
    listed = list(erasures.values())
    return {
        "erasures": len(listed),
        "active": sum(1 for e in listed if e["lifted_at"] is None),
        "lifted": sum(1 for e in listed if e["lifted_at"] is not None),
        "tombstones": sum(sum(e["kinds"].values()) for e in listed),
        "items": listed,
    }


# -- reveal --------------------------------------------------------------------------------------


def reveal(project: Project, hub_id: str, field_name: str, reason: str) -> Any:
    """One canonical field of a person in clear; refused without a reason; audited."""
    reason = require_reason(reason)
    view = _person_of(project, hub_id)
    if field_name not in view.fields:
        known = ", ".join(sorted(view.fields)) or "none"
        raise PrivacyError(f"person {view.hub_id} has no field {field_name!r} (fields: {known})")
    with project.db.session() as session:
        session.add(audit_entry("reveal", f"{view.hub_id}/{field_name}", reason, {"field": field_name}))
    return view.fields[field_name]


# -- retention -----------------------------------------------------------------------------------


def purge(project: Project, *, dry_run: bool = False, now: datetime | None = None) -> dict[str, Any]:
    """Delete raw records and dead letters older than ``[privacy]`` retention, in batches."""
    privacy = project.settings.privacy
    moment = now or datetime.now(UTC)
    result: dict[str, Any] = {"dry_run": dry_run, "raw_records": 0, "dead_letters": 0}
    plans = (
        ("raw_records", RawRecord, privacy.raw_records_days),
        ("dead_letters", DeadLetter, privacy.dead_letters_days),
    )
    for name, model, days in plans:
        if days is None:
            result[name] = None
            continue
        cutoff = moment - timedelta(days=days)
        result[f"{name}_before"] = cutoff.isoformat()
        if dry_run:
            with project.db.session() as session:
                result[name] = session.execute(
                    select(func.count()).select_from(model).where(model.created_at < _stored(session, cutoff))
                ).scalar_one()
            continue
        total = 0
        while True:
            with project.db.session() as session:
                ids = list(
                    session.execute(
                        select(model.id)
                        .where(model.created_at < _stored(session, cutoff))
                        .order_by(model.id)
                        .limit(BATCH)
                    ).scalars()
                )
                if ids:
                    session.execute(delete(model).where(model.id.in_(ids)))
            total += len(ids)
            if len(ids) < BATCH:
                break
        result[name] = total
    if not dry_run and (privacy.raw_records_days is not None or privacy.dead_letters_days is not None):
        with project.db.session() as session:
            session.add(
                audit_entry(
                    "privacy.purge",
                    "retention",
                    None,
                    {
                        "raw_records": result["raw_records"],
                        "dead_letters": result["dead_letters"],
                        "raw_records_days": privacy.raw_records_days,
                        "dead_letters_days": privacy.dead_letters_days,
                    },
                )
            )
    return result


def _stored(session: Session, moment: datetime) -> datetime:
    """A UTC moment as the backend compares it (MariaDB keeps naive UTC)."""
    if session.get_bind().dialect.name in ("mysql", "mariadb"):
        return moment.astimezone(UTC).replace(tzinfo=None)
    return moment


# -- during a sync -------------------------------------------------------------------------------


#: Tombstone kinds that identify the same human: new consent through them lifts the erasure.
#: A phone alone does not (numbers are recycled): such a record passes, the erasure stays.
STRONG_KINDS = frozenset({REMOTE, "id_number", "email"})


@dataclass
class _Match:
    erasures: dict[str, datetime] = field(default_factory=dict)
    #: erasures matched through a kind of :data:`STRONG_KINDS`
    strong: set[str] = field(default_factory=set)

    def add(self, kind: str, erasure_id: str, erased_at: datetime) -> None:
        self.erasures[erasure_id] = erased_at
        if kind in STRONG_KINDS:
            self.strong.add(erasure_id)


class TombstoneScreen:
    """Keeps erased persons out of one sync run (``Sync._prepare`` calls :meth:`screen`).

    The first chunk asks whether any tombstone is active (and of which kinds); with none, which
    is the common case, nothing else is ever queried or computed in the run. Otherwise each
    chunk's candidate digests are looked up in one query (per :data:`LOOKUP_SLICE` digests).
    """

    def __init__(self, project: Project, pipeline: PipelineConfig, *, dry_run: bool = False) -> None:
        self.project = project
        self.pipeline = pipeline
        self.dry_run = dry_run
        self.keyring = project.keyring
        self.consent_field = project.settings.privacy.consent_field
        self.timezone = project.settings.timezone
        self._kinds: frozenset[str] | None = None
        self._digests: IdentifierDigests | None = None
        #: erasures lifted by new consent during this run
        self.lifted: set[str] = set()
        self.suppressed = 0

    def active_kinds(self) -> frozenset[str]:
        """Kinds of the active tombstones (queried once per run)."""
        if self._kinds is None:
            with self.project.db.session() as session:
                self._kinds = frozenset(
                    session.execute(
                        select(PrivacyTombstone.kind).where(PrivacyTombstone.lifted_at.is_(None)).distinct()
                    ).scalars()
                )
            self._digests = IdentifierDigests(
                self.keyring, self.project.identity_config.phone_region, self._kinds & set(IDENTIFIER_KINDS)
            )
        return self._kinds

    def _columns(self, ctx: StreamContext, frame: pd.DataFrame) -> dict[str, list[str]]:
        """Columns of the chunk holding identifiers, per kind."""
        from hub.mapping.executor import IDENTITY_PREFIX

        kinds = self.active_kinds()
        columns: dict[str, list[str]] = {}
        if ctx.mapping is not None or ctx.selection.mapping is not None:  # mapped, or its dead letters
            for kind in IDENTIFIER_KINDS:
                if kind in kinds and IDENTITY_PREFIX + kind in frame.columns:
                    columns.setdefault(kind, []).append(IDENTITY_PREFIX + kind)
            for name, pii_kind in ctx.pii_kinds.items():
                if pii_kind in kinds and name in frame.columns and pii_kind in IDENTIFIER_KINDS:
                    columns.setdefault(str(pii_kind), []).append(name)
        else:
            connector = self.project.settings.connectors.get(self.pipeline.source)
            for name, kind in (connector.pii if connector is not None else {}).items():
                if kind in kinds and name in frame.columns and kind in IDENTIFIER_KINDS:
                    columns.setdefault(kind, []).append(name)
        return columns

    def _consent_column(self, ctx: StreamContext, frame: pd.DataFrame) -> str | None:
        from hub.mapping.executor import IDENTITY_PREFIX

        column = IDENTITY_PREFIX + CONSENT_FIELD if ctx.mapping is not None else self.consent_field or ""
        return column if column and column in frame.columns else None

    def _lookup(self, wanted: set[tuple[str, str, str]]) -> dict[tuple[str, str, str], tuple[str, datetime]]:
        """Active tombstones among ``wanted`` (kind, source, digest): one query per slice.

        Conditions are grouped by kind and source, so each uses the (kind, source, digest) index.
        """
        found: dict[tuple[str, str, str], tuple[str, datetime]] = {}
        if not wanted:
            return found
        with self.project.db.session() as session:
            for part in _slices(sorted(wanted)):
                groups: dict[tuple[str, str], list[str]] = {}
                for kind, source, digest in part:
                    groups.setdefault((kind, source), []).append(digest)
                condition = or_(
                    *(
                        and_(
                            PrivacyTombstone.kind == kind,
                            PrivacyTombstone.source == source,
                            PrivacyTombstone.digest.in_(digests),
                        )
                        for (kind, source), digests in groups.items()
                    )
                )
                for kind, source, digest, erasure_id, erased_at in session.execute(
                    select(
                        PrivacyTombstone.kind,
                        PrivacyTombstone.source,
                        PrivacyTombstone.digest,
                        PrivacyTombstone.erasure_id,
                        PrivacyTombstone.erased_at,
                    ).where(PrivacyTombstone.lifted_at.is_(None), condition)
                ).tuples():
                    found[(kind, source, digest)] = (erasure_id, _utc(erased_at))
        return found

    def screen(
        self,
        ctx: StreamContext,
        frame: pd.DataFrame,
        keys: pd.Series,
        digests: list[str],
        prepared: Prepared,
        synclog: SyncLog | None,
    ) -> tuple[pd.DataFrame, list[str], set[str]]:
        """Drop the chunk's records (and rejections) of erased persons.

        Returns the frame and key digests without them, and the key digests of records whose
        erasure new consent lifted: the caller treats those as new (delivered again everywhere).
        """
        kinds = self.active_kinds()
        if not kinds:
            return frame, digests, set()
        assert self._digests is not None
        source = self.pipeline.source

        # Candidate digests, per row of the chunk and per rejection.
        rows: list[set[tuple[str, str, str]]] = [set() for _ in range(len(frame))]
        if REMOTE in kinds:
            for i, key in enumerate(keys.tolist()):
                if key:
                    rows[i].add((REMOTE, source, remote_digest(self.keyring, str(key))))
        for kind, columns in self._columns(ctx, frame).items():
            for column in columns:
                values = frame[column].astype(object).where(frame[column].notna(), None).tolist()
                for i, value in enumerate(values):
                    digest = self._digests.of(kind, value) if value not in (None, "") else None
                    if digest is not None:
                        rows[i].add((kind, "", digest))
        matcher_rows: list[set[tuple[str, str, str]]] = []
        for rejection, _destination in prepared.rejections:
            found: set[tuple[str, str, str]] = set()
            record = rejection.record
            if isinstance(record, Mapping):
                key = self._key_of(ctx, record)
                if key is not None and REMOTE in kinds:
                    found.add((REMOTE, source, remote_digest(self.keyring, key)))
            for text in _leaves(record):
                found |= {(kind, "", digest) for kind, digest in self._digests.in_text(text)}
            matcher_rows.append(found)

        wanted = {item for row in rows for item in row} | {item for row in matcher_rows for item in row}
        hits = self._lookup(wanted)
        if not hits:
            return frame, digests, set()

        def matched(candidates: set[tuple[str, str, str]]) -> _Match:
            match = _Match()
            for item in candidates:
                hit = hits.get(item)
                if hit is not None:
                    match.add(item[0], *hit)
            return match

        row_matches = [matched(c) if c else _Match() for c in rows]
        # New consent first: a record whose consent is newer than its erasures passes, and lifts
        # the erasures it matches by record key, ID number or e-mail (the same human).
        consent_column = self._consent_column(ctx, frame)
        consented = [False] * len(row_matches)
        lifting: set[str] = set()
        if consent_column is not None:
            consents = (
                frame[consent_column].astype(object).where(frame[consent_column].notna(), None).tolist()
            )
            for i, (match, consent) in enumerate(zip(row_matches, consents, strict=True)):
                if not match.erasures or consent in (None, ""):
                    continue
                moment = parse_consent(consent, self.timezone)
                if moment is not None and moment > max(match.erasures.values()):
                    consented[i] = True
                    lifting.update(match.strong)
        lifting -= self.lifted
        if lifting:
            self._lift(lifting, synclog, ctx)
        keep: list[bool] = []
        forced: set[str] = set()
        for i, match in enumerate(row_matches):
            if not match.erasures:
                keep.append(True)
            elif consented[i] or set(match.erasures) <= self.lifted:
                keep.append(True)
                forced.add(digests[i])
            else:
                keep.append(False)
        kept_rejections = []
        dropped_rejections = 0
        for (rejection, destination), candidates in zip(prepared.rejections, matcher_rows, strict=True):
            match = matched(candidates) if candidates else _Match()
            if match.erasures and not set(match.erasures) <= self.lifted:
                dropped_rejections += 1
            else:
                kept_rejections.append((rejection, destination))
        prepared.rejections = kept_rejections

        suppressed = [d for d, k in zip(digests, keep, strict=True) if not k]
        total = len(suppressed) + dropped_rejections
        if not total:
            return frame, digests, forced
        self.suppressed += total
        prepared.fingerprint = None  # read this chunk again next time: consent may come back
        if suppressed and not self.dry_run:
            # Forget their delivery state: once consent lifts the erasure they are delivered anew.
            with self.project.db.session() as session:
                for part in _slices(suppressed):
                    session.execute(delete(CanonicalRecord).where(CanonicalRecord.key_digest.in_(part)))
        if synclog is not None:
            synclog.event(
                "info",
                "privacy",
                f"{total} record(s) of erased persons suppressed (privacy tombstones)",
                stream=ctx.selection.name,
                suppressed=total,
            )
        mask = pd.Series(keep, index=frame.index)
        return frame.loc[mask], [d for d, k in zip(digests, keep, strict=True) if k], forced

    def _key_of(self, ctx: StreamContext, record: Mapping[str, Any]) -> str | None:
        if ctx.mapping is not None and REMOTE_ID in record and REMOTE_ID not in ctx.record_key:
            value = record.get(REMOTE_ID)
            return str(value).strip() if value not in (None, "") else None
        values = [record.get(c) for c in ctx.record_key]
        if not values or any(v in (None, "") for v in values):
            return None
        return "\x1f".join(str(v).strip() for v in values)

    def _lift(self, erasures: set[str], synclog: SyncLog | None, ctx: StreamContext) -> None:
        self.lifted |= erasures
        if not self.dry_run:
            now = datetime.now(UTC)
            with self.project.db.session() as session:
                session.execute(
                    update(PrivacyTombstone)
                    .where(
                        PrivacyTombstone.erasure_id.in_(sorted(erasures)),
                        PrivacyTombstone.lifted_at.is_(None),
                    )
                    .values(lifted_at=now)
                )
                for erasure_id in sorted(erasures):
                    session.add(
                        audit_entry(
                            "privacy.consent",
                            f"erasure:{erasure_id}",
                            "a source record carries consent newer than the erasure",
                            {"pipeline": self.pipeline.name, "stream": ctx.selection.name},
                        )
                    )
        if synclog is not None:
            synclog.event(
                "info",
                "privacy",
                f"new consent lifted {len(erasures)} erasure(s); their records are processed again",
                stream=ctx.selection.name,
                lifted=len(erasures),
            )
