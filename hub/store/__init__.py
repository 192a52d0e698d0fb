"""hub's own database: sync log, state, canonical records, dead letters, outbox, audit."""

from hub.store.db import Database

__all__ = ["Database"]
