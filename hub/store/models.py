"""SQLAlchemy models of hub's state store. Changes here need an Alembic migration.

No column holds personal data in clear: record keys are stored as keyed digests and
payloads (dead letters, outbox, secrets) as AES-GCM ciphertexts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


class Run(Base):
    """One execution of a pipeline: the head of the sync log."""

    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pipeline: Mapped[str] = mapped_column(String(200), index=True)
    trigger: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), index=True)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    host: Mapped[str] = mapped_column(String(255), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class RunStat(Base):
    """Counts of one run per stream and destination (destination '' = the stream's totals)."""

    __tablename__ = "run_stats"
    __table_args__ = (UniqueConstraint("run_id", "stream", "destination"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    stream: Mapped[str] = mapped_column(String(200))
    destination: Mapped[str] = mapped_column(String(200), default="")
    read: Mapped[int] = mapped_column(BigInteger, default=0)
    inserted: Mapped[int] = mapped_column(BigInteger, default=0)
    updated: Mapped[int] = mapped_column(BigInteger, default=0)
    unchanged: Mapped[int] = mapped_column(BigInteger, default=0)
    rejected: Mapped[int] = mapped_column(BigInteger, default=0)


class RunEvent(Base):
    """A line of the sync log: stream start/end, checkpoint, retry, rejection, error."""

    __tablename__ = "run_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    level: Mapped[str] = mapped_column(String(10))
    kind: Mapped[str] = mapped_column(String(40))
    stream: Mapped[str | None] = mapped_column(String(200), nullable=True)
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class StreamState(Base):
    """The committed checkpoint (Airbyte per-stream state) of one pipeline stream."""

    __tablename__ = "stream_states"
    pipeline: Mapped[str] = mapped_column(String(200), primary_key=True)
    stream: Mapped[str] = mapped_column(String(200), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CanonicalRecord(Base):
    """A record hub delivered: its source reference (keyed digest) and content hash."""

    __tablename__ = "canonical_records"
    __table_args__ = (Index("ix_canonical_records_pipeline_entity", "pipeline", "entity"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    pipeline: Mapped[str] = mapped_column(String(200))
    entity: Mapped[str] = mapped_column(String(200))
    #: keyed digest of (pipeline, entity, record key): unique, and never the key itself
    key_digest: Mapped[str] = mapped_column(String(32), unique=True)
    content_hash: Mapped[str] = mapped_column(String(32))
    source_connector: Mapped[str] = mapped_column(String(200))
    source_stream: Mapped[str] = mapped_column(String(200))
    position: Mapped[str] = mapped_column(String(500), default="")
    run_id: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    payload: Mapped[bytes | None] = mapped_column(LargeBinary(length=2**24), nullable=True)
    #: keyed hash per field (mapped entities): which fields an update changed
    field_hashes: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class BatchFingerprint(Base):
    """Digest of a committed source batch: the same bytes again hold no change."""

    __tablename__ = "batch_fingerprints"
    pipeline: Mapped[str] = mapped_column(String(200), primary_key=True)
    stream: Mapped[str] = mapped_column(String(200), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    rows: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeadLetter(Base):
    """A rejected record: where it came from, why, and the record itself (encrypted)."""

    __tablename__ = "dead_letters"
    __table_args__ = (Index("ix_dead_letters_pipeline_status", "pipeline", "status"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    pipeline: Mapped[str] = mapped_column(String(200))
    stream: Mapped[str] = mapped_column(String(200))
    destination: Mapped[str | None] = mapped_column(String(200), nullable=True)
    position: Mapped[str] = mapped_column(String(500))
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes | None] = mapped_column(LargeBinary(length=2**24), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="open")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(nullable=True)


class OutboxEntry(Base):
    """A destination write, keyed for idempotency: pending until the destination commits."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    run_id: Mapped[int] = mapped_column(Integer, index=True)
    pipeline: Mapped[str] = mapped_column(String(200))
    destination: Mapped[str] = mapped_column(String(200))
    stream: Mapped[str] = mapped_column(String(200))
    rows: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    payload: Mapped[bytes | None] = mapped_column(LargeBinary(length=2**24), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    committed_at: Mapped[datetime | None] = mapped_column(nullable=True)


class AuditEntry(Base):
    """Who did what to which object, when and why (admin actions, reveals, retries)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(500))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Lease(Base):
    """A named lease (scheduler leadership): held by one owner until it expires."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column()


class Secret(Base):
    """A connector credential, encrypted; hub.toml refers to it by name."""

    __tablename__ = "secrets"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary(length=2**24))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


# -- identity resolution (hub.identity) ---------------------------------------------------
# One row per Person; every identifier lives only as a keyed digest (person_index,
# person_links) and the canonical fields only sealed (persons.fields_ciphertext).


class PersonRow(Base):
    """A resolved person: canonical fields sealed with purpose "person", context "persons|<hub_id>"."""

    __tablename__ = "persons"
    hub_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: provisional person of an ambiguous record: see identity_reviews
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    rehire: Mapped[bool] = mapped_column(Boolean, default=False)
    rehired_at: Mapped[datetime | None] = mapped_column(nullable=True)
    fields_ciphertext: Mapped[bytes] = mapped_column(LargeBinary(length=2**24))


class PersonIndex(Base):
    """Blind index of a person's identifiers: kind (id_number, email, phone, name_birth) + digest.

    ``unique_digest`` repeats the digest for kind ``id_number`` only (NULL otherwise), so an ID
    number belongs to one person on every backend (MariaDB has no partial unique indexes).
    """

    __tablename__ = "person_index"
    __table_args__ = (Index("ix_person_index_kind_digest", "kind", "digest"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.hub_id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    digest: Mapped[str] = mapped_column(String(32))
    unique_digest: Mapped[str | None] = mapped_column(String(32), unique=True, nullable=True)


class PersonLink(Base):
    """A source record resolved to a person: the connector and the keyed digest of its remote id."""

    __tablename__ = "person_links"
    __table_args__ = (UniqueConstraint("source", "remote_digest"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.hub_id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(200))
    remote_digest: Mapped[str] = mapped_column(String(32))
    #: this record brought a terminated person back (a rehire)
    rehire: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PersonProvenance(Base):
    """Which source set a canonical field of a person, and when it observed the value."""

    __tablename__ = "person_provenance"
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.hub_id", ondelete="CASCADE"), primary_key=True)
    field: Mapped[str] = mapped_column(String(100), primary_key=True)
    source: Mapped[str] = mapped_column(String(200))
    observed_at: Mapped[datetime] = mapped_column()


class IdentityConflict(Base):
    """Two sources disagreeing on a field of a person; the values themselves are sealed."""

    __tablename__ = "identity_conflicts"
    __table_args__ = (UniqueConstraint("person_id", "field", "pair_digest"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.hub_id", ondelete="CASCADE"), index=True)
    field: Mapped[str] = mapped_column(String(100))
    #: "value" (sources disagree) or "id_number" (an ID number contradicts the matched person)
    kind: Mapped[str] = mapped_column(String(20))
    #: "resolved" (source priority decided) or "open" (kept the existing value; needs a person)
    status: Mapped[str] = mapped_column(String(20), index=True)
    existing_source: Mapped[str | None] = mapped_column(String(200), nullable=True)
    incoming_source: Mapped[str] = mapped_column(String(200))
    winner_source: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: keyed digest of the two values: the same disagreement is recorded once
    pair_digest: Mapped[str] = mapped_column(String(32))
    observed_at: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: {"existing": ..., "incoming": ...}, sealed with context "identity_conflicts|<id>"
    details_ciphertext: Mapped[bytes] = mapped_column(LargeBinary(length=2**24))


class IdentityReview(Base):
    """An ambiguous source record, not merged: its provisional person, candidates and reason."""

    __tablename__ = "identity_reviews"
    __table_args__ = (UniqueConstraint("source", "remote_digest"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.hub_id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(200))
    remote_digest: Mapped[str] = mapped_column(String(32))
    #: why it is ambiguous, in words without personal data
    reason: Mapped[str] = mapped_column(String(500))
    #: [{"person_id": ..., "via": rule}, ...]
    candidates: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default="open", index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(nullable=True)
    #: the record's fields, sealed with context "identity_reviews|<id>"
    details_ciphertext: Mapped[bytes] = mapped_column(LargeBinary(length=2**24))


# -- encryption keys (hub.crypto.keyring) -------------------------------------------------


class CryptoKey(Base):
    """A data key, wrapped by the key-encryption key; its id is written into every ciphertext.

    ``status``: ``primary`` (seals new values; one per tenant and data class), ``active``
    (still decrypts) or ``retired`` (refuses to decrypt). ``primary_of`` repeats
    "tenant/data_class" for the primary key only (NULL otherwise): one primary per class on
    every backend, even when two processes create keys at once.
    """

    __tablename__ = "crypto_keys"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(100))
    data_class: Mapped[str] = mapped_column(String(40))
    algorithm: Mapped[str] = mapped_column(String(20))
    wrapped: Mapped[bytes] = mapped_column(LargeBinary(length=2**16))
    kek_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), index=True)
    primary_of: Mapped[str | None] = mapped_column(String(150), unique=True, nullable=True)
    #: values sealed under this key so far (flushed by each process; the nonce budget)
    encryptions: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    demoted_at: Mapped[datetime | None] = mapped_column(nullable=True)
    retired_at: Mapped[datetime | None] = mapped_column(nullable=True)


class JobCheckpoint(Base):
    """Progress of a resumable maintenance job (key re-encryption, retention purge)."""

    __tablename__ = "job_checkpoints"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="running")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# -- privacy operations (hub.privacy) -----------------------------------------------------


class PrivacyTombstone(Base):
    """An erased person's identifiers, as keyed digests: a later sync must not bring them back.

    ``kind`` is ``remote`` (a source's record id; ``source`` names the connector) or a blind
    index kind (``id_number``, ``email``, ``phone``). ``lifted_at`` is set when new consent
    lets the person be processed again.
    """

    __tablename__ = "privacy_tombstones"
    __table_args__ = (UniqueConstraint("kind", "source", "digest"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    erasure_id: Mapped[str] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(200), default="")
    digest: Mapped[str] = mapped_column(String(32))
    erased_at: Mapped[datetime] = mapped_column(default=utcnow)
    lifted_at: Mapped[datetime | None] = mapped_column(nullable=True)


class RawRecord(Base):
    """A source record as the vendor sent it, kept for debugging (sealed; purged by retention).

    Written by ``keep_raw = true`` pipelines for each inserted or updated record, in the same
    transaction as the chunk's checkpoint. ``payload`` is the record as JSON, sealed under the
    "personal" data key with context ``("raw_records", f"{pipeline}|{stream}|{key_digest}")``.
    """

    __tablename__ = "raw_records"
    __table_args__ = (Index("ix_raw_records_pipeline_created", "pipeline", "created_at"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    run_id: Mapped[int] = mapped_column(Integer, index=True)
    pipeline: Mapped[str] = mapped_column(String(200))
    stream: Mapped[str] = mapped_column(String(200))
    #: keyed digest of the record key (as in canonical_records)
    key_digest: Mapped[str] = mapped_column(String(32), index=True)
    position: Mapped[str] = mapped_column(String(500), default="")
    #: the record, sealed with context ("raw_records", f"{pipeline}|{stream}|{key_digest}")
    payload: Mapped[bytes] = mapped_column(LargeBinary(length=2**24))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# -- change events (hub.changes) ----------------------------------------------------------


class ChangeEvent(Base):
    """A canonical record was created or updated: which fields changed, never their values.

    Written by syncs of mapped streams in the transaction of the chunk's checkpoint (hub.changes);
    ``changed_fields`` lists field names, identity fields as ``identity.<name>``.
    """

    __tablename__ = "change_events"
    __table_args__ = (Index("ix_change_events_entity_id", "entity", "id"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    run_id: Mapped[int] = mapped_column(Integer, index=True)
    pipeline: Mapped[str] = mapped_column(String(200))
    stream: Mapped[str] = mapped_column(String(200))
    entity: Mapped[str] = mapped_column(String(200))
    #: "created" or "updated"
    kind: Mapped[str] = mapped_column(String(20))
    key_digest: Mapped[str] = mapped_column(String(32))
    #: the record's id (its key), sealed ("personal" key) with context ("change_events", key_digest)
    record_id: Mapped[bytes] = mapped_column(LargeBinary(length=2**16))
    changed_fields: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# -- webhooks (hub.webhooks) --------------------------------------------------------------


class WebhookInboxEntry(Base):
    """A vendor callback: accepted (sealed, waiting or processed) or rejected (why, never the body).

    Accepted: ``status`` ``received`` -> ``processed`` (or ``failed`` after its attempts);
    ``payload`` is the verified body sealed ("personal" key) with context
    ``("webhook_inbox", connector, event_id)``. ``dedup_key`` (connector + vendor event id) and
    ``body_digest`` (keyed HMAC of the body, per connector) are unique: a replay is refused.
    Rejected: ``status`` ``rejected``, ``reason`` says why; repeats from one address within a
    minute are counted in ``repeats`` on one row. Neither kind holds personal data in clear.
    """

    __tablename__ = "webhook_inbox"
    __table_args__ = (
        UniqueConstraint("connector", "body_digest"),
        Index("ix_webhook_inbox_status_next", "status", "next_attempt_at"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    connector: Mapped[str] = mapped_column(String(200), index=True)
    #: the vendor's event type (``update_candidate``), as the verified body names it
    action: Mapped[str] = mapped_column(String(100), default="")
    #: the vendor's delivery id (``Greenhouse-Event-ID``), truncated and masked
    event_id: Mapped[str] = mapped_column(String(200), default="")
    dedup_key: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    body_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    payload: Mapped[bytes | None] = mapped_column(LargeBinary(length=2**24), nullable=True)
    status: Mapped[str] = mapped_column(String(20))
    #: rejected: why; failed: the last processing error (masked)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    repeats: Mapped[int] = mapped_column(Integer, default=1)
    remote: Mapped[str] = mapped_column(String(100), default="")
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: the vendor's signed timestamp, when it sends one
    signed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(nullable=True)
    processed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    #: sync runs (``runs.id``) the event triggered
    run_ids: Mapped[list[int]] = mapped_column(JSON, default=list)


# -- onboarding (hub.onboarding) ----------------------------------------------------------


class OnboardingCaseRow(Base):
    """One hire's onboarding: its personal data sealed, its tasks in ``onboarding_tasks``.

    ``data`` is the case's data (name, ID number, phone, salary, bank account, start date ...)
    as JSON sealed ("personal" key) with context ``("onboarding_cases", id)``. ``source_digest``
    is a keyed digest of where the case came from (an offer's remote id): one case per offer,
    even when two processes open it at once. ``source_ref`` is that reference, masked.
    """

    __tablename__ = "onboarding_cases"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    #: OPEN, NEEDS_OPERATOR, COMPLETED, CANCELLING or CANCELLED
    status: Mapped[str] = mapped_column(String(20), index=True)
    #: "offer" (the canonical store), "file" (a JSON file), "intake" (an accepted-offer event)
    source: Mapped[str] = mapped_column(String(20))
    source_ref: Mapped[str] = mapped_column(String(200), default="")
    source_digest: Mapped[str | None] = mapped_column(String(32), unique=True, nullable=True)
    data: Mapped[bytes] = mapped_column(LargeBinary(length=2**24))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    #: why it was cancelled (masked)
    cancel_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class OnboardingTaskRow(Base):
    """One step of a case, an outbox entry: claimed with a lease, performed once, recorded.

    A runner claims a due task with a conditional UPDATE (status and claim as read) that sets
    ``claim_token`` and ``claimed_until``; only the holder of the token records the outcome.
    ``idempotency_key`` (uuid5 of case id and task name) goes to the vendor with every attempt.
    ``result`` (the external reference and data later tasks read) is sealed ("personal") with
    context ``("onboarding_tasks", case_id, name)``; ``result_ref`` is the reference, masked.
    ``correlation_digest`` is a keyed digest of (connector, vendor id) a WAITING task's callback
    will name.
    """

    __tablename__ = "onboarding_tasks"
    __table_args__ = (
        UniqueConstraint("case_id", "name"),
        Index("ix_onboarding_tasks_status_next", "status", "next_attempt_at"),
        Index("ix_onboarding_tasks_correlation", "connector", "correlation_digest"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("onboarding_cases.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(200))
    connector: Mapped[str] = mapped_column(String(200), default="")
    position: Mapped[int] = mapped_column(Integer)
    #: names of the tasks this one runs after (as configured when the case opened)
    after: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: the task's ``options`` table from hub.toml, as configured when the case opened
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: PENDING, IN_PROGRESS, WAITING, DONE, FAILED, NEEDS_OPERATOR, CANCELLED or SKIPPED
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(nullable=True)
    claim_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(nullable=True)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    #: the last failure, masked
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    result_ref: Mapped[str | None] = mapped_column(String(200), nullable=True)
    result: Mapped[bytes | None] = mapped_column(LargeBinary(length=2**24), nullable=True)
    correlation_digest: Mapped[str | None] = mapped_column(String(32), nullable=True)
    #: the callback event a WAITING task expects (the vendor's event type), if the action said
    waiting_for: Mapped[str | None] = mapped_column(String(100), nullable=True)
    #: after a cancel: "undone", "not_supported" or "failed" (with ``undo_error``)
    undo_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    undo_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(nullable=True)


# -- contract clause history (hub.contracts.history) --------------------------------------


class ContractClauseVersion(Base):
    """A clause-rule set hub used, by its clause-set version: an archived contract's exact rules.

    ``version`` is the ``cs-…`` id documents carry (rules and template digests together);
    ``rules`` is ``ContractsConfig.rules_payload()``, whose digest is ``rules_sha256``; values in
    it that look like personal data are stored masked and listed in ``masked``. One row per
    version, even when two processes record it at once.
    """

    __tablename__ = "contract_clause_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version: Mapped[str] = mapped_column(String(40), unique=True)
    rules_sha256: Mapped[str] = mapped_column(String(64))
    rules: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: template name -> SHA-256 of its source
    templates: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: paths in ``rules`` whose values were masked
    masked: Mapped[list[str]] = mapped_column(JSON, default=list)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: the hub command that first used it (``hub contracts render``) or ``scheduler``
    recorded_by: Mapped[str] = mapped_column(String(200))
    #: the version in use before this one appeared (None for the first)
    previous_version: Mapped[str | None] = mapped_column(String(40), nullable=True)
