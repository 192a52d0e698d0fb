"""The ``kingdee`` connector: Kingdee 金蝶云星空 (K3Cloud) WebAPI, the finance and payroll system.

- :class:`hub_kingdee.source.KingdeeSource`: employees and departments, for ``hub sync``;
- :class:`hub_kingdee.client.KingdeeClient`: session login (or v8 signed headers), forms
  (Save, Submit, Audit, UnAudit, Delete), ``ExecuteBillQuery``, typed errors;
- :mod:`hub_kingdee.actions`: ``kingdee.enrol_payroll`` (the hire as an audited employee).

Kingdee does not call back: there is no webhook verifier.
"""

from __future__ import annotations

from hub.connectors import Connector
from hub.hookspecs import hookimpl
from hub.onboarding import OnboardingAction
from hub_kingdee.actions import ACTIONS, EnrolPayroll
from hub_kingdee.client import EmployeeForm, KingdeeClient, KingdeeSettings
from hub_kingdee.source import KingdeeSource

__all__ = ["EmployeeForm", "EnrolPayroll", "KingdeeClient", "KingdeeSettings", "KingdeeSource"]


@hookimpl
def hub_register_connectors() -> list[Connector]:
    return [
        Connector(
            name="kingdee",
            category="finance",
            source=KingdeeSource,
            description="Kingdee 金蝶云星空 (K3Cloud WebAPI): employees, departments; payroll enrolment",
        )
    ]


@hookimpl
def hub_register_onboarding_actions() -> list[OnboardingAction]:
    return list(ACTIONS)
