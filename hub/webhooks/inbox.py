"""The webhook inbox: accepted callbacks kept sealed until processed, and rejected ones.

An accepted callback is committed here *before* hub answers the vendor 200, so an event the
vendor saw acknowledged is never lost; a crash before the commit leaves the vendor without a
200, and it redelivers. The body is sealed with the "personal" data key and bound to its
connector and event (context ``("webhook_inbox", connector, dedup_key)``), so it is never on
disk in clear and does not open anywhere else; once the event is processed the body is dropped. ``dedup_key`` (connector + the vendor's
delivery id) and ``body_digest`` (a keyed HMAC of the body, per connector) are unique: a replay
of either is refused, even by two processes at once. Rejections are recorded without the body.

Nothing here knows HTTP: the receiver (and later other callback sources) store events, the
processor consumes them.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.exc import IntegrityError

from hub.crypto import Keyring
from hub.crypto.envelope import lp
from hub.masking import mask_text
from hub.store import Database
from hub.store.models import WebhookInboxEntry
from hub.webhooks.verifier import Accepted, WebhookRejected

#: inbox statuses: waiting, done, out of attempts, refused at the door
STATUSES = ("received", "processed", "failed", "rejected")
#: rejections of one reason from one address within this window share a row (``repeats``)
REJECTION_WINDOW = timedelta(seconds=60)
_TEXT_CHARS = 200


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _clean(text: str, limit: int = _TEXT_CHARS) -> str:
    """A vendor-supplied text fit for a column and a log line: masked, printable, bounded."""
    printable = "".join(c if c.isprintable() else "?" for c in text[: limit * 2])
    return mask_text(printable)[:limit]


def inbox_context(connector: str, dedup_key: str) -> tuple[str, str, str]:
    """Associated data of a sealed inbox body: the event's connector and identity."""
    return ("webhook_inbox", connector, dedup_key)


@dataclass(frozen=True)
class InboxEvent:
    """An accepted callback as processors see it (the body stays sealed: :meth:`Inbox.open`)."""

    id: int
    connector: str
    action: str
    event_id: str
    status: str
    attempts: int
    received_at: datetime
    run_ids: tuple[int, ...] = ()

    @classmethod
    def of(cls, row: WebhookInboxEntry) -> InboxEvent:
        return cls(
            id=row.id,
            connector=row.connector,
            action=row.action,
            event_id=row.event_id,
            status=row.status,
            attempts=row.attempts,
            received_at=_aware(row.received_at),
            run_ids=tuple(row.run_ids or ()),
        )


class Inbox:
    """Stores, refuses and hands out callbacks; thread-safe (each call its own transaction)."""

    def __init__(self, db: Database, keyring: Keyring) -> None:
        self.db, self.keyring = db, keyring
        self._body_key = keyring.hmac_key("webhook-bodies")

    @staticmethod
    def dedup_key(connector: str, event_id: str) -> str:
        return hashlib.sha256(lp("webhook-event", connector, event_id)).hexdigest()

    def body_digest(self, connector: str, body: bytes) -> str:
        return hmac.new(self._body_key, lp(connector) + body, hashlib.sha256).hexdigest()

    # -- the door ----------------------------------------------------------------------------

    def store(
        self, connector: str, event: Accepted, *, remote: str = "", now: datetime | None = None
    ) -> InboxEvent:
        """Commit an accepted event; :class:`WebhookRejected` ``replayed`` if its id or body was seen."""
        if not event.event_id:
            raise WebhookRejected("missing_event_id", "the verifier found no delivery id")
        now = now or datetime.now(UTC)
        shown_id = _clean(event.event_id)
        dedup = self.dedup_key(connector, event.event_id)
        digest = self.body_digest(connector, event.body)
        sealed = self.keyring.seal(event.body, "personal", *inbox_context(connector, dedup))
        try:
            with self.db.session() as session:
                seen = session.execute(
                    select(WebhookInboxEntry.dedup_key).where(
                        or_(
                            WebhookInboxEntry.dedup_key == dedup,
                            and_(
                                WebhookInboxEntry.connector == connector,
                                WebhookInboxEntry.body_digest == digest,
                            ),
                        )
                    )
                ).first()
                if seen is not None:
                    what = "event id" if seen[0] == dedup else "signed body (under another event id)"
                    raise WebhookRejected("replayed", f"this {what} was received before", event_id=shown_id)
                row = WebhookInboxEntry(
                    connector=connector,
                    action=_clean(event.action, 100),
                    event_id=shown_id,
                    dedup_key=dedup,
                    body_digest=digest,
                    payload=sealed,
                    status="received",
                    attempts=0,
                    repeats=1,
                    remote=_clean(remote, 100),
                    received_at=now,
                    updated_at=now,
                    signed_at=event.signed_at,
                    run_ids=[],
                )
                session.add(row)
                session.flush()
                return InboxEvent.of(row)
        except IntegrityError as exc:  # the same delivery committed by another request meanwhile
            raise WebhookRejected("replayed", "this event was received before", event_id=shown_id) from exc

    def reject(
        self,
        connector: str,
        reason: str,
        detail: str = "",
        *,
        event_id: str = "",
        remote: str = "",
        now: datetime | None = None,
    ) -> int:
        """Record a refused callback (never its body); repeats within a minute share a row."""
        now = now or datetime.now(UTC)
        text = _clean(f"{reason}: {detail}" if detail else reason, 500)
        remote = _clean(remote, 100)
        with self.db.session() as session:
            row = session.execute(
                select(WebhookInboxEntry)
                .where(
                    WebhookInboxEntry.connector == connector,
                    WebhookInboxEntry.status == "rejected",
                    WebhookInboxEntry.reason == text,
                    WebhookInboxEntry.remote == remote,
                    WebhookInboxEntry.updated_at >= now - REJECTION_WINDOW,
                )
                .order_by(WebhookInboxEntry.id.desc())
                .limit(1)
            ).scalar_one_or_none()
            if row is not None:
                row.repeats, row.updated_at = row.repeats + 1, now
                return row.id
            row = WebhookInboxEntry(
                connector=connector,
                action="",
                event_id=_clean(event_id),
                status="rejected",
                reason=text,
                attempts=0,
                repeats=1,
                remote=remote,
                received_at=now,
                updated_at=now,
                run_ids=[],
            )
            session.add(row)
            session.flush()
            return row.id

    # -- processing --------------------------------------------------------------------------

    def due(self, now: datetime | None = None, limit: int = 1000) -> list[InboxEvent]:
        """Received events whose next attempt is due, oldest first."""
        now = now or datetime.now(UTC)
        with self.db.session() as session:
            rows = session.execute(
                select(WebhookInboxEntry)
                .where(
                    WebhookInboxEntry.status == "received",
                    or_(
                        WebhookInboxEntry.next_attempt_at.is_(None), WebhookInboxEntry.next_attempt_at <= now
                    ),
                )
                .order_by(WebhookInboxEntry.id)
                .limit(limit)
            ).scalars()
            return [InboxEvent.of(row) for row in rows]

    def next_attempt_at(self) -> datetime | None:
        """When the earliest postponed event is due (the worker sleeps until then at most)."""
        with self.db.session() as session:
            value = session.execute(
                select(func.min(WebhookInboxEntry.next_attempt_at)).where(
                    WebhookInboxEntry.status == "received"
                )
            ).scalar()
        return _aware(value) if value is not None else None

    def open(self, event: InboxEvent) -> bytes:
        """The event's body, decrypted (personal data: never log it)."""
        with self.db.session() as session:
            row = session.get(WebhookInboxEntry, event.id)
            if row is None or row.payload is None or row.dedup_key is None:
                raise KeyError(f"inbox event {event.id} has no stored body")
            payload, dedup = row.payload, row.dedup_key
        return self.keyring.open(payload, *inbox_context(event.connector, dedup))

    def _update(self, ids: Iterable[int], change: Callable[[WebhookInboxEntry], None]) -> int:
        """Apply ``change`` to those of ``ids`` still waiting (status received), in one transaction."""
        with self.db.session() as session:
            rows = session.execute(
                select(WebhookInboxEntry).where(
                    WebhookInboxEntry.id.in_(list(ids)), WebhookInboxEntry.status == "received"
                )
            ).scalars()
            count = 0
            for row in rows:
                change(row)
                count += 1
            return count

    def mark_processed(
        self, ids: Sequence[int], run_ids: Sequence[int], note: str | None = None, now: datetime | None = None
    ) -> int:
        """Done: keep the record (ids, runs, digests against replays), drop the sealed body."""
        now = now or datetime.now(UTC)

        def change(row: WebhookInboxEntry) -> None:
            row.status, row.processed_at, row.updated_at = "processed", now, now
            row.payload = None  # done with: personal data is not kept longer than needed
            row.run_ids = [*(row.run_ids or []), *run_ids]
            row.reason, row.next_attempt_at = (mask_text(note) if note else None), None

        return self._update(ids, change)

    def postpone(self, ids: Sequence[int], until: datetime, reason: str) -> int:
        """Try again at ``until`` without counting an attempt (the pipeline was busy)."""

        def change(row: WebhookInboxEntry) -> None:
            row.next_attempt_at, row.reason, row.updated_at = until, mask_text(reason), datetime.now(UTC)

        return self._update(ids, change)

    def record_failure(
        self,
        ids: Sequence[int],
        error: str,
        run_ids: Sequence[int],
        *,
        max_attempts: int,
        delay: Callable[[int], float],
        now: datetime | None = None,
    ) -> int:
        """Count a failed attempt; out of attempts, the event is ``failed`` (``hub webhooks retry``)."""
        now = now or datetime.now(UTC)

        def change(row: WebhookInboxEntry) -> None:
            row.attempts += 1
            row.reason, row.updated_at = mask_text(error), now
            row.run_ids = [*(row.run_ids or []), *run_ids]
            if row.attempts >= max_attempts:
                row.status, row.next_attempt_at = "failed", None
            else:
                row.next_attempt_at = now + timedelta(seconds=delay(row.attempts))

        return self._update(ids, change)

    # -- admin -------------------------------------------------------------------------------

    def retry(self, ids: Sequence[int] | None = None, connector: str | None = None) -> list[int]:
        """Put failed events back in the queue (all failed ones when ``ids`` is None)."""
        with self.db.session() as session:
            query = select(WebhookInboxEntry).where(WebhookInboxEntry.status == "failed")
            if ids is not None:
                query = query.where(WebhookInboxEntry.id.in_(list(ids)))
            if connector is not None:
                query = query.where(WebhookInboxEntry.connector == connector)
            done = []
            for row in session.execute(query).scalars():
                row.status, row.attempts, row.next_attempt_at = "received", 0, None
                row.updated_at = datetime.now(UTC)
                done.append(row.id)
            return done

    def entries(
        self,
        *,
        connector: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """The newest entries, as admins see them: no body, no digest."""
        query = select(WebhookInboxEntry).order_by(WebhookInboxEntry.id.desc()).limit(limit)
        if connector is not None:
            query = query.where(WebhookInboxEntry.connector == connector)
        if status is not None:
            query = query.where(WebhookInboxEntry.status == status)
        if since is not None:
            query = query.where(WebhookInboxEntry.updated_at >= since)
        with self.db.session() as session:
            return [
                {
                    "id": row.id,
                    "connector": row.connector,
                    "action": row.action,
                    "event_id": row.event_id,
                    "status": row.status,
                    "attempts": row.attempts,
                    "repeats": row.repeats,
                    "remote": row.remote,
                    "received_at": _aware(row.received_at),
                    "updated_at": _aware(row.updated_at),
                    "processed_at": _aware(row.processed_at) if row.processed_at else None,
                    "next_attempt_at": _aware(row.next_attempt_at) if row.next_attempt_at else None,
                    "run_ids": list(row.run_ids or []),
                    "reason": row.reason,
                }
                for row in session.execute(query).scalars()
            ]

    def purge(self, before: datetime) -> int:
        """Delete processed and rejected entries last changed before ``before`` (kept: waiting, failed).

        A purged event's id and body digest are forgotten, so a replay older than the retention
        would be accepted again: keep it well beyond any vendor's redelivery window.
        """
        with self.db.session() as session:
            result = session.execute(
                delete(WebhookInboxEntry).where(
                    WebhookInboxEntry.status.in_(("processed", "rejected")),
                    WebhookInboxEntry.updated_at < before,
                )
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def counts(self) -> dict[str, int]:
        """Entries per status (``/healthz``)."""
        with self.db.session() as session:
            rows = session.execute(
                select(WebhookInboxEntry.status, func.count()).group_by(WebhookInboxEntry.status)
            ).all()
        return {status: int(n) for status, n in rows}
