"""The ``hackerrank`` connector: HackerRank for Work tests, invitations and scored results."""

from __future__ import annotations

from hub.connectors import Connector
from hub.hookspecs import hookimpl
from hub_hackerrank.source import HackerRankSource


@hookimpl
def hub_register_connectors() -> list[Connector]:
    return [
        Connector(
            name="hackerrank",
            category="assessment",
            source=HackerRankSource,
            description="HackerRank for Work API v3: tests, candidate invitations, scored results",
        )
    ]
