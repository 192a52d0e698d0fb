"""The ``evaluation`` connector: hub's evaluations of applications, as a source for pipelines."""

from __future__ import annotations

from hub.connectors import Connector
from hub.hookspecs import hookimpl
from hub_evaluation.source import EvaluationSource


@hookimpl(trylast=True)
def hub_register_connectors() -> list[Connector]:
    return [
        Connector(
            name="evaluation",
            category="ats",
            source=EvaluationSource,
            description="Evaluations of applications in the canonical store (stream: evaluations)",
        )
    ]
