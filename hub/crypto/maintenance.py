"""Key maintenance: where hub keeps ciphertexts, which keys they use, moving them, retiring keys.

:data:`SEALED` lists every column of the state store that holds ciphertexts, with what opening
a value needs (its context parts). A table that starts holding sealed values adds one line
there; ``tests/test_keys.py`` fails while a binary column is in neither :data:`SEALED` nor
:data:`NOT_SEALED`.

The jobs behind ``hub keys``:

- :func:`key_usage`: how many values each key seals, from the ciphertext headers (counted by
  the database, one ``GROUP BY`` per column: nothing is decrypted or transferred).
- :func:`reencrypt`: moves every value sealed under an *active* (no longer primary) key to its
  class's primary key, with the same context. Batches by primary key; each batch's updates and
  the job's checkpoint commit together; each row is updated only if it still holds the value
  read (``UPDATE ... SET col = :new WHERE pk = :pk AND col = :old``). Killed, it resumes from
  its checkpoint; run twice, the second run finds nothing left to move.
- :func:`retire`: a key that seals no value any more stops decrypting.
- :func:`rotate_kek` / :func:`rotate_kek_file`: rewrap the data keys under a new KEK and verify
  every one unwraps with it before reporting success; values are not touched.

No function here logs or returns key material or plaintext.
"""

from __future__ import annotations

import base64
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from hub.crypto.envelope import HEADER, HEADER_BYTES
from hub.crypto.keyring import (
    INDEX_CLASS,
    PRIMARY_TTL_SECONDS,
    DecryptionError,
    KeyOperationError,
    Keyring,
    describe_keys,
    unwrap_key,
)
from hub.crypto.providers import FileKeyProvider, KeyProvider, kek_fingerprint
from hub.engine import dead_letter_context
from hub.leases import LeaseHolder, _aware, _owner_is_dead
from hub.pii import raw_record_context
from hub.store.models import AuditEntry, Base, CryptoKey, JobCheckpoint, Lease, utcnow

if TYPE_CHECKING:
    from hub.project import Project
    from hub.store import Database

Row = sa.RowMapping


@dataclass(frozen=True)
class SealedColumn:
    """A column of the state store holding ciphertexts, and how to rebuild a value's context.

    ``context`` gets the row (its primary key and the ``needs`` columns) and returns the parts
    ``Keyring.open(value, *parts)`` needs: exactly what the writer passed to ``seal``.
    """

    table: str
    column: str
    context: Callable[[Row], tuple[str, ...]]
    needs: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"

    @property
    def sa_table(self) -> sa.Table:
        return Base.metadata.tables[self.table]

    @property
    def pk(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.sa_table.primary_key.columns)


#: Every sealed column of the state store. One line per column; keep in step with the writers.
SEALED: tuple[SealedColumn, ...] = (
    SealedColumn("secrets", "ciphertext", lambda r: ("secrets", r["name"])),
    SealedColumn(
        "dead_letters",
        "payload",
        lambda r: ("dead_letters", dead_letter_context(r["pipeline"], r["stream"], r["position"])),
        needs=("pipeline", "stream", "position"),
    ),
    SealedColumn("persons", "fields_ciphertext", lambda r: ("persons", r["hub_id"])),
    SealedColumn("identity_conflicts", "details_ciphertext", lambda r: ("identity_conflicts", r["id"])),
    SealedColumn("identity_reviews", "details_ciphertext", lambda r: ("identity_reviews", r["id"])),
    SealedColumn(
        "raw_records",
        "payload",
        lambda r: raw_record_context(r["pipeline"], r["stream"], r["key_digest"]),
        needs=("pipeline", "stream", "key_digest"),
    ),
    SealedColumn(
        "change_events", "record_id", lambda r: ("change_events", r["key_digest"]), needs=("key_digest",)
    ),
    SealedColumn("onboarding_cases", "data", lambda r: ("onboarding_cases", r["id"])),
    SealedColumn(
        "webhook_inbox",
        "payload",
        lambda r: ("webhook_inbox", r["connector"], r["dedup_key"]),
        needs=("connector", "dedup_key"),
    ),
    SealedColumn(
        "onboarding_tasks",
        "result",
        lambda r: ("onboarding_tasks", r["case_id"], r["name"]),
        needs=("case_id", "name"),
    ),
)

#: Binary columns that hold no hub ciphertext (today: never written, or a wrapped data key).
NOT_SEALED = frozenset({("crypto_keys", "wrapped"), ("outbox", "payload"), ("canonical_records", "payload")})

#: A key demoted less than this long ago may still be sealing in processes that cached it as
#: primary (``PRIMARY_TTL_SECONDS``, plus a transaction in flight): ``retire`` waits that long.
RETIRE_GRACE_SECONDS = 2 * PRIMARY_TTL_SECONDS
#: One key maintenance job at a time (re-encryption, KEK rotation).
LEASE = "keys"
ProgressCallback = Callable[[int, int], None]


def checkpoint_name(tenant: str) -> str:
    return f"keys.reencrypt:{tenant}"


def _header_expr(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """The ciphertext header (version, algorithm, key id) of each value, cut out by the database."""
    # Literal positions: the same SQL text in SELECT and GROUP BY (PostgreSQL compares them).
    return sa.func.substr(
        column, sa.literal_column("1"), sa.literal_column(str(HEADER_BYTES)), type_=column.type
    )


def _key_of_header(header: Any) -> int | None:
    """The key id in a header cut out by :func:`_header_expr`; None if it is no hub ciphertext."""
    if isinstance(header, memoryview):
        header = header.tobytes()
    if not isinstance(header, bytes) or len(header) != HEADER_BYTES:
        return None
    version, _alg_id, key_id = HEADER.unpack(header)
    return int(key_id) if version == 1 else None


# -- usage -------------------------------------------------------------------------------


@dataclass
class Usage:
    """Values per key, overall and per sealed column; ``unreadable``: values with no hub header."""

    by_key: Counter[int] = field(default_factory=Counter)
    by_location: dict[str, Counter[int]] = field(default_factory=dict)
    unreadable: dict[str, int] = field(default_factory=dict)


def scan_usage(db: Database) -> Usage:
    """Count the values each key seals, per sealed column, from the ciphertext headers."""
    usage = Usage()
    with db.engine.connect() as conn:
        for spec in SEALED:
            column = spec.sa_table.c[spec.column]
            header = _header_expr(column).label("header")
            counts: Counter[int] = Counter()
            rows = conn.execute(
                sa.select(header, sa.func.count()).where(column.is_not(None)).group_by(header)
            )
            for raw, count in rows:
                key_id = _key_of_header(raw)
                if key_id is None:
                    usage.unreadable[spec.name] = usage.unreadable.get(spec.name, 0) + int(count)
                else:
                    counts[key_id] += int(count)
            usage.by_location[spec.name] = counts
            usage.by_key.update(counts)
    return usage


def key_usage(project: Project) -> dict[int, int]:
    """``{key id: number of values sealed under it}`` over every sealed column of the state store."""
    return dict(scan_usage(project.db).by_key)


# -- re-encryption -----------------------------------------------------------------------


@dataclass
class ReencryptResult:
    """What a re-encryption run did; counts only, never values."""

    #: keys whose values were moved (active keys of this tenant when the run started)
    from_keys: list[int] = field(default_factory=list)
    moved: int = 0
    #: including the runs before this one that the checkpoint resumed
    moved_total: int = 0
    #: values changed by another process between read and update (left as that process wrote them)
    changed_meanwhile: int = 0
    #: values that did not open (tampered, wrong context): location -> count; left as they are
    failed: dict[str, int] = field(default_factory=dict)
    #: values still under a non-primary key afterwards (failed ones, or sealed meanwhile)
    remaining: dict[int, int] = field(default_factory=dict)
    resumed: bool = False
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "from_keys": self.from_keys,
            "moved": self.moved,
            "moved_total": self.moved_total,
            "changed_meanwhile": self.changed_meanwhile,
            "failed": self.failed,
            "remaining": {str(k): v for k, v in self.remaining.items()},
            "resumed": self.resumed,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class _Movable:
    """An active key: the header its values start with, and the class whose primary they move to."""

    header: bytes
    data_class: str


def _movable_keys(db: Database, tenant: str) -> dict[int, _Movable]:
    from hub.crypto.aead import ALGORITHMS

    with db.session() as session:
        rows = session.execute(
            sa.select(CryptoKey.id, CryptoKey.data_class, CryptoKey.algorithm).where(
                CryptoKey.tenant == tenant, CryptoKey.status == "active"
            )
        ).all()
    movable = {}
    for key_id, data_class, algorithm in rows:
        if data_class == INDEX_CLASS or algorithm not in ALGORITHMS:
            continue
        movable[int(key_id)] = _Movable(HEADER.pack(1, ALGORITHMS[algorithm].alg_id, key_id), data_class)
    return movable


def _acquire(db: Database, what: str) -> LeaseHolder:
    lease = LeaseHolder(db, LEASE, ttl=60)
    if not lease.try_acquire():
        raise KeyOperationError(
            f"another key maintenance job is running ({lease.current_owner()}); {what} waits for it to finish"
        )
    lease.start_renewing()
    return lease


def _json_pk(values: Sequence[Any]) -> list[Any]:
    for value in values:
        if not isinstance(value, int | str):
            raise KeyOperationError(f"cannot checkpoint a primary key of type {type(value).__name__}")
    return list(values)


def reencrypt(
    project: Project,
    *,
    batch_size: int = 1000,
    progress: ProgressCallback | None = None,
    reason: str | None = None,
) -> ReencryptResult:
    """Move every value sealed under an active key to its class's primary key (resumable)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    started = time.monotonic()
    db, keyring, tenant = project.db, project.keyring, project.settings.tenant
    keyring.forget_cache()  # a fresh view of which keys are primary
    lease = _acquire(db, "re-encryption")
    try:
        movable = _movable_keys(db, tenant)
        result = ReencryptResult(from_keys=sorted(movable))
        name = checkpoint_name(tenant)
        state = _start_state(db, name, movable)
        result.resumed = state["done"] > 0 or state["location"] is not None
        done_before = int(state["done"])
        total = done_before
        if movable:
            usage = scan_usage(db)
            total += sum(usage.by_key[k] for k in movable)
        if progress:
            progress(done_before, total)
        locations = [s.name for s in SEALED]
        start = locations.index(state["location"]) if state["location"] in locations else 0
        for spec in SEALED[start:] if movable else ():
            after = state["after"] if state["location"] == spec.name else None
            while True:
                if lease.lost.is_set():
                    raise KeyOperationError("lost the key maintenance lease (state store unreachable?)")
                last, read, updates = _next_batch(db, keyring, spec, movable, after, batch_size, result)
                if read == 0:
                    break
                # The batch's updates and the checkpoint commit together: killed, either both
                # stand or neither does (and the rows left are found again by the next run).
                with db.session() as session:
                    updated = _apply(session.connection(), spec, updates) if updates else 0
                    result.moved += updated
                    result.changed_meanwhile += len(updates) - updated
                    state.update(location=spec.name, after=last, done=done_before + result.moved)
                    _save_checkpoint(session, name, state, "running")
                keyring.flush_counters()
                after = last
                if progress:
                    progress(done_before + result.moved, max(total, done_before + result.moved))
        result.moved_total = done_before + result.moved
        state.update(location=None, after=None, done=result.moved_total, finished_at=utcnow().isoformat())
        with db.session() as session:
            _save_checkpoint(session, name, state, "finished")
            if movable or result.moved:
                session.add(
                    AuditEntry(
                        actor=_actor(),
                        action="keys.reencrypt",
                        target=",".join(str(k) for k in sorted(movable)) or "-",
                        reason=reason,
                        details={
                            "moved": result.moved,
                            "moved_total": result.moved_total,
                            "failed": sum(result.failed.values()),
                            "resumed": result.resumed,
                        },
                    )
                )
        if movable:
            after_usage = scan_usage(db)
            result.remaining = {k: after_usage.by_key[k] for k in sorted(movable) if after_usage.by_key[k]}
    finally:
        keyring.flush_counters()
        lease.release()
    result.seconds = time.monotonic() - started
    return result


def _start_state(db: Database, name: str, movable: Mapping[int, _Movable]) -> dict[str, Any]:
    """The checkpoint to resume, or a fresh one (a finished job, or new keys to move, start over)."""
    with db.session() as session:
        row = session.get(JobCheckpoint, name)
        if row is not None and row.status == "running" and set(movable) <= set(row.state.get("keys", [])):
            return dict(row.state)
        state: dict[str, Any] = {
            "keys": sorted(movable),
            "location": None,
            "after": None,
            "done": 0,
            "started_at": utcnow().isoformat(),
        }
        _save_checkpoint(session, name, state, "running")
        return state


def _save_checkpoint(session: Any, name: str, state: dict[str, Any], status: str) -> None:
    row = session.get(JobCheckpoint, name)
    if row is None:
        session.add(JobCheckpoint(name=name, state=dict(state), status=status))
    else:
        row.state, row.status, row.updated_at = dict(state), status, utcnow()


def _next_batch(
    db: Database,
    keyring: Keyring,
    spec: SealedColumn,
    movable: Mapping[int, _Movable],
    after: list[Any] | None,
    batch_size: int,
    result: ReencryptResult,
) -> tuple[list[Any] | None, int, list[dict[str, Any]]]:
    """The next rows (by primary key) under movable keys, resealed: (last pk, rows read, updates)."""
    table = spec.sa_table
    pk_cols = [table.c[k] for k in spec.pk]
    column = table.c[spec.column]
    extra = [table.c[n] for n in spec.needs if n not in spec.pk]
    query = (
        sa.select(*pk_cols, column, *extra)
        .where(_header_expr(column).in_([m.header for m in movable.values()]))
        .order_by(*pk_cols)
        .limit(batch_size)
    )
    if after is not None:
        query = query.where(
            pk_cols[0] > after[0] if len(pk_cols) == 1 else sa.tuple_(*pk_cols) > sa.tuple_(*after)
        )
    with db.engine.connect() as conn:
        rows = [r._mapping for r in conn.execute(query)]
    if not rows:
        return after, 0, []
    updates: list[dict[str, Any]] = []
    for row in rows:
        old = bytes(row[spec.column])
        key = movable.get(Keyring.key_id_of(old))
        if key is None:
            continue
        context = spec.context(row)
        try:
            plain = keyring.open(old, *context)
        except DecryptionError:
            result.failed[spec.name] = result.failed.get(spec.name, 0) + 1
            continue
        new = keyring.seal(plain, key.data_class, *context)
        params = {f"pk_{i}": row[c.name] for i, c in enumerate(pk_cols)}
        updates.append({**params, "old_value": old, "new_value": new})
    return _json_pk([rows[-1][c.name] for c in pk_cols]), len(rows), updates


def _apply(conn: sa.Connection, spec: SealedColumn, updates: list[dict[str, Any]]) -> int:
    """Optimistic updates: a row changed since it was read keeps its new value. Returns rows updated."""
    table = spec.sa_table
    column = table.c[spec.column]
    statement = (
        sa.update(table)
        .where(*(table.c[k] == sa.bindparam(f"pk_{i}") for i, k in enumerate(spec.pk)))
        .where(column == sa.bindparam("old_value", type_=column.type))
        .values({spec.column: sa.bindparam("new_value", type_=column.type)})
    )
    if conn.dialect.supports_sane_multi_rowcount:
        return int(conn.execute(statement, updates).rowcount)
    return sum(int(conn.execute(statement, params).rowcount) for params in updates)


def _actor() -> str:
    from hub.project import actor

    return actor()


# -- retiring ----------------------------------------------------------------------------


def retire(
    project: Project,
    key_id: int,
    *,
    reason: str | None = None,
    grace_seconds: float = RETIRE_GRACE_SECONDS,
) -> dict[str, Any]:
    """Stop a key from decrypting: refused while it is primary or still seals any value."""
    db, tenant = project.db, project.settings.tenant
    with db.session() as session:
        row = session.get(CryptoKey, key_id)
        if row is None or row.tenant != tenant:
            raise KeyOperationError(f"no key {key_id} (see hub keys status)")
        if row.status == "retired":
            return {"id": key_id, "data_class": row.data_class, "status": "retired", "changed": False}
        if row.data_class == INDEX_CLASS:
            raise KeyOperationError(
                f"key {key_id} is the index key: every blind index and record digest depends on it"
            )
        if row.status == "primary":
            raise KeyOperationError(
                f"key {key_id} is the primary key of {row.data_class!r} and seals new values: "
                f"rotate it first (hub keys rotate --class {row.data_class}), then hub keys reencrypt"
            )
        data_class, demoted_at = row.data_class, row.demoted_at
    in_use = key_usage(project).get(key_id, 0)
    if in_use:
        raise KeyOperationError(
            f"key {key_id} ({data_class}) still seals {in_use:,} value(s): run hub keys reencrypt first"
        )
    if demoted_at is not None:
        age = (utcnow() - _aware(demoted_at)).total_seconds()
        if age < grace_seconds:
            raise KeyOperationError(
                f"key {key_id} stopped being primary {age:.0f} s ago; processes that cached it may "
                f"still seal with it for up to {grace_seconds:.0f} s. Run hub keys reencrypt again "
                f"in {grace_seconds - age:.0f} s, then retire it"
            )
    with db.session() as session:
        # The status is checked again under the update: a concurrent rotation cannot slip in.
        changed = session.execute(
            sa.update(CryptoKey)
            .where(CryptoKey.id == key_id, CryptoKey.status == "active")
            .values(status="retired", retired_at=utcnow())
        ).rowcount  # type: ignore[attr-defined]
        if changed != 1:
            raise KeyOperationError(f"key {key_id} changed status meanwhile; see hub keys status")
        session.add(
            AuditEntry(
                actor=_actor(),
                action="keys.retire",
                target=str(key_id),
                reason=reason,
                details={"data_class": data_class},
            )
        )
    if "keyring" in project.__dict__:
        project.keyring.forget_cache()
    return {"id": key_id, "data_class": data_class, "status": "retired", "changed": True}


# -- rotation of data keys -----------------------------------------------------------------


def rotate(project: Project, data_classes: Sequence[str], *, reason: str | None = None) -> dict[str, Any]:
    """A new primary key per class; the old ones stay active until re-encrypted and retired."""
    changed = project.keyring.rotate(data_classes)
    with project.db.session() as session:
        session.add(
            AuditEntry(
                actor=_actor(),
                action="keys.rotate",
                target=",".join(changed),
                reason=reason,
                details={c: {"old": old, "new": new} for c, (old, new) in changed.items()},
            )
        )
    return {c: {"old": old, "new": new} for c, (old, new) in changed.items()}


# -- the KEK -----------------------------------------------------------------------------


def key_provider(project: Project) -> KeyProvider:
    provider: KeyProvider = project.registry.pm.hook.hub_key_provider(settings=project.settings.keys)
    return provider


def read_kek_file(path: Path) -> bytes:
    """A KEK from a key file (base64 of 32 bytes, mode 0600); never creates one."""
    if not path.is_file():
        raise KeyOperationError(f"no key file at {path}")
    try:
        return FileKeyProvider(path).load_kek()
    except ValueError as exc:  # not base64
        raise KeyOperationError(f"{path} does not hold a KEK (base64 of 32 bytes)") from exc


def write_kek_file(path: Path) -> bytes:
    """A new random KEK in a new file (mode 0600, flushed to disk); refuses an existing file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    kek = os.urandom(32)
    _write_private(path, base64.urlsafe_b64encode(kek))
    return kek


def _write_private(path: Path, content: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise KeyOperationError(f"{path} exists; refusing to overwrite a key file") from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    _sync_dir(path.parent)


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def kek_id(label: str, kek: bytes) -> str:
    return f"{label}:{kek_fingerprint(kek)}"


@dataclass
class KekRotation:
    """The outcome of a KEK rotation (public KEK ids only)."""

    keys: int
    old_kek_id: str
    new_kek_id: str
    #: the key file that now holds the new KEK (``rotate_kek_file``)
    key_file: Path | None = None
    #: where the old KEK was kept (``rotate_kek_file``): needed to restore older database backups
    backup: Path | None = None
    #: an interrupted rotation was completed
    resumed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "keys": self.keys,
            "old_kek_id": self.old_kek_id,
            "new_kek_id": self.new_kek_id,
            "key_file": str(self.key_file) if self.key_file else None,
            "backup": str(self.backup) if self.backup else None,
            "resumed": self.resumed,
        }


def _live_leases(db: Database) -> list[str]:
    """Leases held by live processes: pipelines running, the scheduler, identity resolution."""
    now = datetime.now(UTC)
    with db.session() as session:
        rows = session.execute(sa.select(Lease.name, Lease.owner, Lease.expires_at)).all()
    return [
        f"{name} ({owner})"
        for name, owner, expires in rows
        if name != LEASE and _aware(expires) > now and not _owner_is_dead(owner)
    ]


def rotate_kek(
    project: Project,
    new_kek: bytes,
    *,
    reason: str | None = None,
    current_kek: bytes | None = None,
) -> KekRotation:
    """Rewrap every data key of the tenant under ``new_kek``; verified before it returns.

    Touches no file: the operator (or :func:`rotate_kek_file`) then makes the key provider
    return ``new_kek``. Refused while another hub process holds a lease (a sync, the
    scheduler): those processes hold the old KEK and would wrap new keys with it.
    """
    if len(new_kek) != 32:
        raise KeyOperationError("the new KEK must be 32 bytes")
    provider = key_provider(project)
    label = provider.key_id
    old = current_kek if current_kek is not None else provider.load_kek()
    if kek_fingerprint(old) == kek_fingerprint(new_kek):
        raise KeyOperationError("the new KEK is the one in use")
    busy = _live_leases(project.db)
    if busy:
        raise KeyOperationError(
            "stop every other hub process before rotating the KEK (they hold the old one): " + ", ".join(busy)
        )
    db, tenant = project.db, project.settings.tenant
    lease = _acquire(db, "KEK rotation")
    try:
        keyring = Keyring(
            old, key_id=label, db=db, tenant=tenant, algorithm=project.settings.keys["algorithm"]
        )
        count = keyring.rewrap_all(new_kek, label)
        verified = verify_kek(db, tenant, new_kek)
        if verified != count:
            raise KeyOperationError(
                f"{count} data keys rewrapped but {verified} unwrap with the new KEK: run rotate-kek again"
            )
        result = KekRotation(count, kek_id(label, old), kek_id(label, new_kek))
        with db.session() as session:
            session.add(
                AuditEntry(
                    actor=_actor(),
                    action="keys.rotate_kek",
                    target=result.new_kek_id,
                    reason=reason,
                    details={"keys": count, "old_kek_id": result.old_kek_id},
                )
            )
    finally:
        lease.release()
    if "keyring" in project.__dict__:
        del project.__dict__["keyring"]  # built with the old KEK
    return result


def verify_kek(db: Database, tenant: str, kek: bytes) -> int:
    """How many of the tenant's data keys unwrap with ``kek``; raises if any does not."""
    with db.session() as session:
        rows = session.execute(sa.select(CryptoKey).where(CryptoKey.tenant == tenant)).scalars().all()
        for row in rows:
            unwrap_key(kek, row.wrapped, row.tenant, row.id, row.data_class, row.algorithm)
            if row.kek_id.rpartition(":")[2] != kek_fingerprint(kek):
                raise KeyOperationError(f"data key {row.id} is labelled with another KEK ({row.kek_id})")
        return len(rows)


def rotate_kek_file(project: Project, *, reason: str | None = None) -> KekRotation:
    """KEK rotation for the key-file provider: a new KEK replaces the file's, the old one kept.

    1. the new KEK is written to ``<file>.new`` (0600, flushed to disk) before anything else;
    2. the data keys are rewrapped in one transaction and each is verified to unwrap;
    3. the old file is copied to ``<file>.<UTC time>.old`` (0600), then ``<file>.new`` replaces
       ``<file>`` atomically (a rename), and the file is read back and checked.

    Killed at any point, running it again completes the rotation: ``<file>.new`` is reused,
    and keys already under it are kept (``Keyring.rewrap_all`` is idempotent).
    """
    provider = key_provider(project)
    if not isinstance(provider, FileKeyProvider):
        raise KeyOperationError(
            f"the KEK comes from {type(provider).__name__} ({provider.key_id}), not a key file: write a "
            "new KEK with hub keys new-kek PATH, run hub keys rotate-kek --new-key-file PATH, then "
            "make the provider return it (HUB_MASTER_KEY: its content)"
        )
    path = provider.path
    current = read_kek_file(path)
    staged = path.with_name(path.name + ".new")
    resumed = staged.exists()
    new_kek = read_kek_file(staged) if resumed else write_kek_file(staged)
    result = rotate_kek(project, new_kek, reason=reason, current_kek=current)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    backup = path.with_name(f"{path.name}.{stamp}.old")
    n = 1
    while backup.exists():  # two rotations within a microsecond's clock tick: never overwrite a backup
        backup, n = path.with_name(f"{path.name}.{stamp}-{n}.old"), n + 1
    _write_private(backup, path.read_bytes())
    staged.replace(path)  # atomic (rename)
    _sync_dir(path.parent)
    if kek_fingerprint(read_kek_file(path)) != kek_fingerprint(new_kek):
        raise KeyOperationError(
            f"{path} does not hold the new KEK after the swap (the old KEK is in {backup}): check the "
            "file system, then run hub keys rotate-kek again"
        )
    verify_kek(project.db, project.settings.tenant, read_kek_file(path))
    result.key_file, result.backup, result.resumed = path, backup, resumed
    return result


# -- init and status -----------------------------------------------------------------------


@dataclass
class InitResult:
    provider: str
    created_file: Path | None
    created_keys: list[int]


def init(project: Project) -> InitResult:
    """Create the KEK file (file provider, when missing) and a primary key per class; idempotent."""
    provider = key_provider(project)
    created_file = (
        provider.path if isinstance(provider, FileKeyProvider) and not provider.path.exists() else None
    )
    before = {k["id"] for k in describe_keys(project.db, project.settings.tenant)}
    project.keyring.ensure_keys()  # the file provider creates its file (0600) on first use
    after = describe_keys(project.db, project.settings.tenant)
    created = sorted(k["id"] for k in after if k["id"] not in before)
    if created_file is not None or created:
        with project.db.session() as session:
            session.add(
                AuditEntry(
                    actor=_actor(),
                    action="keys.init",
                    target=",".join(str(k) for k in created) or "kek",
                    details={"kek_file_created": created_file is not None, "keys": created},
                )
            )
    return InitResult(provider.key_id, created_file, created)


def current_kek_id(project: Project) -> str | None:
    """The public id of the KEK the provider supplies now; None if there is none (yet)."""
    from hub.errors import HubError

    provider = key_provider(project)
    if isinstance(provider, FileKeyProvider) and not provider.path.exists():
        return None
    try:
        return kek_id(provider.key_id, provider.load_kek())
    except HubError:
        return None


def status(project: Project) -> dict[str, Any]:
    """The tenant's keys with their use (values, encryptions); needs no KEK, changes nothing."""
    db, tenant = project.db, project.settings.tenant
    keys = describe_keys(db, tenant)
    usage = scan_usage(db)
    kek_now = current_kek_id(project)
    now = utcnow()
    rows = []
    for k in keys:
        created = _aware(k["created_at"])
        rows.append(
            {
                "id": k["id"],
                "data_class": k["data_class"],
                "algorithm": k["algorithm"],
                "status": k["status"],
                "created_at": created.isoformat(),
                "age_days": round((now - created).total_seconds() / 86400, 1),
                "kek_id": k["kek_id"],
                "kek_current": kek_now is not None
                and k["kek_id"].rpartition(":")[2] == kek_now.rpartition(":")[2],
                "values": usage.by_key.get(k["id"], 0),
                "encryptions": k["encryptions"],
                "demoted_at": _aware(k["demoted_at"]).isoformat() if k["demoted_at"] else None,
                "retired_at": _aware(k["retired_at"]).isoformat() if k["retired_at"] else None,
            }
        )
    known = {k["id"] for k in keys}
    configured = str(project.settings.keys.get("algorithm", "aes-256-gcm"))
    return {
        "tenant": tenant,
        "algorithm": configured,
        "kek_id": kek_now,
        "keys": rows,
        "values_by_location": {
            loc: {str(k): v for k, v in sorted(c.items())} for loc, c in usage.by_location.items() if c
        },
        "values_under_unknown_keys": sum(v for k, v in usage.by_key.items() if k not in known),
        "unreadable_values": usage.unreadable,
        "primaries_not_on_configured_algorithm": sorted(
            r["data_class"]
            for r in rows
            if r["status"] == "primary" and r["data_class"] != INDEX_CLASS and r["algorithm"] != configured
        ),
    }
