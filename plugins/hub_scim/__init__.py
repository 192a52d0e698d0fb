"""The ``scim`` connector: any SCIM 2.0 (RFC 7643 / RFC 7644) identity provider.

- :class:`hub_scim.source.ScimSource`: ``users`` and ``groups``, for ``hub sync``;
- :class:`hub_scim.client.ScimClient`: discovery, Users (create, look-up by filter, PATCH,
  deactivate, delete) with ETags, typed errors without personal data;
- :mod:`hub_scim.actions`: ``scim.provision_user`` for onboarding.

See docs/scim.md.
"""

from __future__ import annotations

from hub.connectors import Connector
from hub.hookspecs import hookimpl
from hub.onboarding import OnboardingAction
from hub_scim.actions import ACTIONS, ProvisionUser
from hub_scim.client import ScimClient, ScimSettings
from hub_scim.source import ScimSource
from hub_scim.users import MultiValue, ScimUser

__all__ = ["MultiValue", "ProvisionUser", "ScimClient", "ScimSettings", "ScimSource", "ScimUser"]


@hookimpl
def hub_register_connectors() -> list[Connector]:
    return [
        Connector(
            name="scim",
            category="oa",
            source=ScimSource,
            description="SCIM 2.0 identity provider: users and groups; onboarding provisions users",
        )
    ]


@hookimpl
def hub_register_onboarding_actions() -> list[OnboardingAction]:
    return list(ACTIONS)
