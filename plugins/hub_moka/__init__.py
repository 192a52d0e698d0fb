"""The ``moka`` connector: Moka (MokaHR) ATS candidates, applications, jobs, interviews, offers."""

from __future__ import annotations

from hub.connectors import Connector
from hub.hookspecs import hookimpl
from hub.transforms import Transform
from hub_moka.source import MokaSource
from hub_moka.transforms import TRANSFORMS


@hookimpl
def hub_register_connectors() -> list[Connector]:
    return [
        Connector(
            name="moka",
            category="ats",
            source=MokaSource,
            description="Moka ATS OpenAPI: candidates, applications, jobs, interviews, offers, resumes",
        )
    ]


@hookimpl
def hub_register_transforms() -> list[Transform]:
    return list(TRANSFORMS)
