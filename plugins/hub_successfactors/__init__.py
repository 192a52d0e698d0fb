"""The ``successfactors`` connector: SAP SuccessFactors Employee Central over OData v2.

- :class:`hub_successfactors.client.SuccessFactorsClient`: OAuth 2.0 SAML bearer token (an
  assertion signed with the OAuth client's private key, :mod:`hub_successfactors.saml`),
  ``$filter`` queries with ``__next`` paging, upserts whose every row is checked;
- :class:`hub_successfactors.source.SuccessFactorsSource`: ``PerPerson``, ``EmpEmployment`` and
  ``EmpJob``, full refresh or incremental by ``lastModifiedDateTime``, for ``hub sync``;
- :mod:`hub_successfactors.actions`: ``successfactors.hire`` (undo: terminate the employment).

SuccessFactors sends no callbacks hub waits for, so there is no webhook verifier.
"""

from __future__ import annotations

from hub.connectors import Connector
from hub.hookspecs import hookimpl
from hub.onboarding import OnboardingAction
from hub_successfactors.actions import ACTIONS
from hub_successfactors.client import SuccessFactorsClient, SuccessFactorsSettings, UpsertEntry
from hub_successfactors.source import SuccessFactorsSource

__all__ = ["SuccessFactorsClient", "SuccessFactorsSettings", "SuccessFactorsSource", "UpsertEntry"]


@hookimpl
def hub_register_connectors() -> list[Connector]:
    return [
        Connector(
            name="successfactors",
            category="hris",
            source=SuccessFactorsSource,
            description="SAP SuccessFactors Employee Central (OData v2): PerPerson, EmpEmployment, EmpJob; hires",
        )
    ]


@hookimpl
def hub_register_onboarding_actions() -> list[OnboardingAction]:
    return list(ACTIONS)
