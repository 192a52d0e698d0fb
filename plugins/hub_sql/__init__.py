"""The ``sql`` connector: any SQLAlchemy database as a source and as a destination."""

from __future__ import annotations

from hub.connectors import Connector
from hub.hookspecs import hookimpl
from hub.onboarding import OnboardingAction
from hub_sql.destination import SqlDestination
from hub_sql.onboarding import ACTIONS
from hub_sql.source import SqlSource


@hookimpl(trylast=True)
def hub_register_connectors() -> list[Connector]:
    return [
        Connector(
            name="sql",
            category="hris",
            source=SqlSource,
            destination=SqlDestination,
            description="SQLite, PostgreSQL, MariaDB/MySQL and any SQLAlchemy URL (e.g. the HR master database)",
        )
    ]


@hookimpl
def hub_register_onboarding_actions() -> list[OnboardingAction]:
    """``sql.upsert_employee`` (the new hire into the HR master) and ``sql.mark_contract_signed``
    (the signed contract recorded, the employee active): hub_sql.onboarding."""
    return list(ACTIONS)
