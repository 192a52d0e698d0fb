"""Named leases in the state store: one holder at a time, across processes and hosts.

Used for "one run at a time per pipeline" and for scheduler leadership. A lease held by a
process that died on this host is taken over at once; one held on another host is taken
over when it expires (holders renew well before that).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from hub.store import Database
from hub.store.models import Lease

HOST = socket.gethostname()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def new_owner() -> str:
    return f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _owner_is_dead(owner: str) -> bool:
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != HOST or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    # A zombie (killed, not yet reaped) is dead too.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return False


class LeaseHolder:
    """Acquire, renew in the background, and release one named lease."""

    def __init__(self, db: Database, name: str, ttl: float = 60.0, owner: str | None = None) -> None:
        self.db, self.name, self.ttl = db, name, ttl
        self.owner = owner or new_owner()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: set when a renewal found the lease taken or gone; the holder must stop writing
        self.lost = threading.Event()

    def try_acquire(self) -> bool:
        """Take the lease if it is free, expired, or held by a dead process here."""
        now = datetime.now(UTC)
        expires = now + timedelta(seconds=self.ttl)
        with self.db.session() as session:
            row = session.execute(select(Lease).where(Lease.name == self.name)).scalar_one_or_none()
            if row is None:
                session.add(Lease(name=self.name, owner=self.owner, expires_at=expires))
                try:
                    session.flush()
                except IntegrityError:
                    return False
                return True
            if row.owner != self.owner and _aware(row.expires_at) > now and not _owner_is_dead(row.owner):
                return False
            result = session.execute(
                update(Lease)
                .where(Lease.name == self.name, Lease.owner == row.owner)
                .values(owner=self.owner, expires_at=expires)
            )
            return result.rowcount == 1  # type: ignore[attr-defined]

    def current_owner(self) -> str | None:
        with self.db.session() as session:
            row = session.get(Lease, self.name)
            return row.owner if row else None

    def renew(self) -> bool:
        expires = datetime.now(UTC) + timedelta(seconds=self.ttl)
        with self.db.session() as session:
            result = session.execute(
                update(Lease)
                .where(Lease.name == self.name, Lease.owner == self.owner)
                .values(expires_at=expires)
            )
            return result.rowcount == 1  # type: ignore[attr-defined]

    def start_renewing(self) -> None:
        def loop() -> None:
            renewed = time.monotonic()
            while not self._stop.wait(self.ttl / 3):
                try:
                    if self.renew():
                        renewed = time.monotonic()
                    else:
                        self.lost.set()  # someone else holds it now
                except Exception:  # noqa: BLE001 - the next tick tries again, until the lease has lapsed
                    if time.monotonic() - renewed > self.ttl:
                        self.lost.set()

        self._thread = threading.Thread(target=loop, name=f"lease:{self.name}", daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self.db.session() as session:
            session.execute(delete(Lease).where(Lease.name == self.name, Lease.owner == self.owner))
