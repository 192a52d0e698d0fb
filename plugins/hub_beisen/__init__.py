"""The ``beisen`` connector: Beisen iTalent (北森) recruiting applicants, applications, jobs, offers."""

from __future__ import annotations

from hub.connectors import Connector
from hub.hookspecs import hookimpl
from hub.transforms import Transform
from hub_beisen.source import BeisenSource
from hub_beisen.transforms import TRANSFORMS


@hookimpl
def hub_register_connectors() -> list[Connector]:
    return [
        Connector(
            name="beisen",
            category="ats",
            source=BeisenSource,
            description="Beisen iTalent recruiting OpenAPI: applicants, applications, jobs, offers",
        )
    ]


@hookimpl
def hub_register_transforms() -> list[Transform]:
    return list(TRANSFORMS)
