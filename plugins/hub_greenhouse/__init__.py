"""The ``greenhouse`` connector: Greenhouse Harvest (ATS), a low-code manifest shipped with hub.

``manifest.yaml`` (beside this file) reads candidates, applications, jobs, offers, scorecards,
scheduled interviews and resume attachments from Harvest v1 (API key) or v3 (OAuth), with
server-side incremental filters; ``components.py`` downloads attachment files. The default
mappings into the canonical recruiting entities are ``mappings/greenhouse_*.yaml``; the
``greenhouse_ratings`` transform (transforms.py) reads Greenhouse's scorecard scale. Rehearse
against the simulator: ``hub sandbox start greenhouse``.
"""

from __future__ import annotations

from pathlib import Path

from hub_airbyte import manifest_connector

from hub.connectors import Connector
from hub.hookspecs import hookimpl
from hub.transforms import Transform
from hub_greenhouse.transforms import TRANSFORMS

MANIFEST = Path(__file__).parent / "manifest.yaml"


@hookimpl
def hub_register_connectors() -> list[Connector]:
    return [
        manifest_connector(
            "greenhouse",
            "ats",
            MANIFEST,
            description="Greenhouse Harvest API v1 (API key) or v3 (OAuth): candidates, applications, "
            "jobs, offers, scorecards, interviews, resumes",
        )
    ]


@hookimpl
def hub_register_transforms() -> list[Transform]:
    return list(TRANSFORMS)
