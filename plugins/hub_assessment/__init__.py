"""The ``assessment`` connector: results of assessment platforms without a public API.

Exports (CSV, Excel, JSON) or a customer's results REST API, turned into one convention
(:mod:`hub_assessment.convention`) that ``mappings/assessment_results_*.yaml`` map into
AssessmentOrder and AssessmentResult. :mod:`hub_assessment.http` holds what HTTP assessment
connectors share (``hackerrank`` uses it too).
"""

from __future__ import annotations

from hub.connectors import Connector
from hub.hookspecs import hookimpl
from hub_assessment.source import AssessmentSource


@hookimpl
def hub_register_connectors() -> list[Connector]:
    return [
        Connector(
            name="assessment",
            category="assessment",
            source=AssessmentSource,
            description="assessment results from exports (CSV, Excel, JSON) or a configured REST API",
        )
    ]
