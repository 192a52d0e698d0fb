"""What the HTTP assessment connectors share (``assessment`` REST mode, ``hackerrank``).

* :class:`HighWater`: an incremental cursor that re-reads its boundary (inclusive, so nothing
  updated in the same second is lost) without emitting the records it already emitted there;
* :class:`PageCheckpoints`: when a connector that pages by itself commits its progress;
* time parsing for the timestamp shapes vendors use, and numbers as plain text.

What any vendor's HTTP connector shares (error handling, ``Retry-After``, failures as hub
errors) is in :mod:`hub.http_source`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo


class PageCheckpoints:
    """Checkpoint after every page that emitted records, and at least every ``quiet_pages`` pages.

    Records before a STATE are committed with it, so a rerun resumes on the page it was on.
    """

    def __init__(self, quiet_pages: int = 10) -> None:
        self.quiet_pages = quiet_pages
        self._emitted = self._quiet = 0

    def emitted(self) -> None:
        self._emitted += 1

    def page_done(self) -> bool:
        """Whether to checkpoint now that another page was read."""
        self._quiet += 1
        if self._emitted or self._quiet >= self.quiet_pages:
            self._emitted = self._quiet = 0
            return True
        return False


# -- times -----------------------------------------------------------------------------------------


def parse_instant(value: Any, timezone: str = "Asia/Shanghai") -> datetime | None:
    """An aware datetime from ISO 8601 text (``Z``, ``+08:00``, ``+0000``), ``YYYY-MM-DD HH:MM:SS``
    (in ``timezone``), or epoch seconds / milliseconds; None when empty or unreadable."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().isdigit()):
        number = float(value)
        return datetime.fromtimestamp(number / 1000 if number > 1e11 else number, UTC)
    try:
        moment = datetime.fromisoformat(str(value).strip().upper())  # a "z" suffix too
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(timezone))).astimezone(UTC)


def iso(moment: datetime) -> str:
    """UTC ISO 8601 with milliseconds and ``Z`` (sorts as text, parses back with :func:`parse_instant`)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class HighWater:
    """The newest update time seen, and the ids of the records updated at exactly that time.

    :meth:`admits` is inclusive at the boundary, so a record updated in the same second as the
    last one read (after that read) is still picked up, and skips the ids already emitted
    there, so a re-read boundary is not emitted twice.
    """

    at: datetime | None = None
    ids: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, value: Mapping[str, Any] | None) -> HighWater:
        if not value:
            return cls()
        return cls(parse_instant(value.get("at")), {str(i) for i in value.get("ids") or ()})

    def dump(self) -> dict[str, Any] | None:
        if self.at is None:
            return None
        return {"at": iso(self.at), "ids": sorted(self.ids)}

    def admits(self, moment: datetime | None, record_id: str) -> bool:
        if self.at is None or moment is None:
            return True  # no cursor yet, or a record without a time: read it (at least once)
        return moment > self.at or (moment == self.at and record_id not in self.ids)

    def observe(self, moment: datetime | None, record_id: str) -> bool:
        """Take a record's update time into account; True when the high water moved."""
        if moment is None:
            return False
        if self.at is None or moment > self.at:
            self.at, self.ids = moment, {record_id}
            return True
        if moment == self.at and record_id not in self.ids:
            self.ids.add(record_id)
            return True
        return False

    def merged(self, other: HighWater) -> HighWater:
        if other.at is None:
            return HighWater(self.at, set(self.ids))
        if self.at is None or other.at > self.at:
            return HighWater(other.at, set(other.ids))
        if other.at == self.at:
            return HighWater(self.at, self.ids | other.ids)
        return HighWater(self.at, set(self.ids))

    def widened(self, window: timedelta, now: datetime | None = None) -> HighWater:
        """A gate that also admits whatever was updated within ``window`` before ``now``."""
        if self.at is None or not window:
            return HighWater(self.at, set(self.ids))
        start = (now or datetime.now(UTC)) - window
        if start >= self.at:
            return HighWater(self.at, set(self.ids))
        return HighWater(start, set())


def plain_number(value: Any) -> str | None:
    """A number as text without float noise or exponent (``85``, ``87.5``); None when not a number."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    if not number.is_finite():
        return None
    text = format(number.normalize(), "f")
    return text
