"""A SCIM User as hub writes it: the core schema and the enterprise extension (RFC 7643 §4.1, §4.3).

:class:`ScimUser` holds the attributes hub sets and no others. It is written as a whole on
create, and as PATCH ``replace`` operations for the attributes whose value at the server
differs (:func:`changed_attributes`), so an account whose attributes are already right is not
written at all, and attributes hub does not manage are left as they are.

Checked against RFC 7643 §4.1 (``userName``, ``name{formatted, familyName, givenName}``,
``displayName``, ``title``, ``active``, ``emails``/``phoneNumbers`` ``{value, type, primary}``),
§4.3 (``employeeNumber``, ``costCenter``, ``organization``, ``division``, ``department``,
``manager{value}``) and the schemas scim2-server 0.8.3 serves (``/Schemas``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


@dataclass(frozen=True)
class MultiValue:
    """One value of a multi-valued attribute (``emails``, ``phoneNumbers``)."""

    value: str
    type: str = "work"
    primary: bool = False

    def as_dict(self) -> dict[str, Any]:
        item: dict[str, Any] = {"value": self.value, "type": self.type}
        if self.primary:
            item["primary"] = True
        return item


@dataclass(frozen=True, kw_only=True)
class ScimUser:
    """The attributes hub sets on a SCIM User; empty ones are left out (never cleared)."""

    user_name: str
    external_id: str = ""
    given_name: str = ""
    family_name: str = ""
    formatted_name: str = ""
    display_name: str = ""
    title: str = ""
    active: bool = True
    emails: tuple[MultiValue, ...] = ()
    phone_numbers: tuple[MultiValue, ...] = ()
    employee_number: str = ""
    department: str = ""
    organization: str = ""
    cost_center: str = ""
    division: str = ""
    #: the manager's SCIM ``id`` at this server
    manager_id: str = ""
    #: enterprise attributes other than the above (``{"division": ...}``), rarely needed
    extra_enterprise: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # every attribute may be personal data
        return f"ScimUser(<{len(self.attributes(enterprise=True))} attribute(s)>)"

    def core(self) -> dict[str, Any]:
        """The core schema's attributes, by name (complex ones as objects)."""
        name = {
            "formatted": self.formatted_name,
            "familyName": self.family_name,
            "givenName": self.given_name,
        }
        values: dict[str, Any] = {
            "externalId": self.external_id,
            "userName": self.user_name,
            "name": {k: v for k, v in name.items() if v},
            "displayName": self.display_name,
            "title": self.title,
            "active": self.active,
            "emails": [e.as_dict() for e in self.emails],
            "phoneNumbers": [p.as_dict() for p in self.phone_numbers],
        }
        return {k: v for k, v in values.items() if v not in ("", {}, [])}

    def enterprise(self) -> dict[str, Any]:
        """The enterprise extension's attributes, by name."""
        values: dict[str, Any] = {
            **self.extra_enterprise,
            "employeeNumber": self.employee_number,
            "department": self.department,
            "organization": self.organization,
            "costCenter": self.cost_center,
            "division": self.division,
            "manager": {"value": self.manager_id} if self.manager_id else {},
        }
        return {k: v for k, v in values.items() if v not in ("", {}, None)}

    def resource(self, *, enterprise: bool) -> dict[str, Any]:
        """The body of ``POST /Users``; the extension only where the server offers it."""
        body: dict[str, Any] = {"schemas": [CORE_USER], **self.core()}
        extension = self.enterprise() if enterprise else {}
        if extension:
            body["schemas"].append(ENTERPRISE_USER)
            body[ENTERPRISE_USER] = extension
        return body

    def attributes(self, *, enterprise: bool) -> dict[str, Any]:
        """Every attribute hub sets, by PATCH path (``userName``, ``<extension urn>:department``)."""
        paths = dict(self.core())
        if enterprise:
            paths.update({f"{ENTERPRISE_USER}:{k}": v for k, v in self.enterprise().items()})
        return paths


def value_at(resource: Mapping[str, Any], path: str) -> Any:
    """The value of a PATCH path (as :meth:`ScimUser.attributes` names them) in a resource.

    Attribute names are case-insensitive in SCIM (RFC 7643 §2.1): servers may answer
    ``username`` for ``userName``.
    """
    container: Mapping[str, Any] = resource
    attribute = path
    if path.startswith(f"{ENTERPRISE_USER}:"):
        extension = _get(resource, ENTERPRISE_USER)
        container = extension if isinstance(extension, Mapping) else {}
        attribute = path[len(ENTERPRISE_USER) + 1 :]
    return _get(container, attribute)


def _get(container: Mapping[str, Any], name: str) -> Any:
    if name in container:
        return container[name]
    lowered = name.lower()
    return next((v for k, v in container.items() if k.lower() == lowered), None)


def same_value(wanted: Any, current: Any) -> bool:
    """Whether the server's value already says what hub wants.

    Objects match when each sub-attribute hub sets is equal (the server may add ``display``
    or ``$ref``); lists match item by item, in order; text as it is (the server decides case
    sensitivity, so a userName differing only in case is written again).
    """
    if isinstance(wanted, Mapping):
        return isinstance(current, Mapping) and all(
            same_value(v, _get(current, k)) for k, v in wanted.items()
        )
    if isinstance(wanted, list):
        return (
            isinstance(current, list)
            and len(wanted) == len(current)
            and all(same_value(w, c) for w, c in zip(wanted, current, strict=True))
        )
    if isinstance(wanted, bool) and wanted is False:
        return current is False  # an absent ``active`` is not a deactivated account
    return bool(wanted == current)


def changed_attributes(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes of ``wanted`` (by PATCH path) whose value at the server differs."""
    return {path: value for path, value in wanted.items() if not same_value(value, value_at(current, path))}


def replace_operations(changes: Mapping[str, Any]) -> list[dict[str, Any]]:
    """PATCH ``replace`` operations setting ``changes`` (RFC 7644 §3.5.2.3).

    ``replace`` adds an attribute that is missing, and sending it again changes nothing: the
    operations are safe to repeat after a lost answer. A complex value (``name``) replaces the
    sub-attributes it names and leaves the others.
    """
    return [{"op": "replace", "path": path, "value": value} for path, value in changes.items()]


def merged(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """The resource with ``changes`` applied, for servers without PATCH (``PUT`` replaces it all)."""
    body = {k: v for k, v in current.items() if k != "meta"}
    schemas = list(body.get("schemas") or [CORE_USER])
    for path, value in changes.items():
        container = body
        attribute = path
        if path.startswith(f"{ENTERPRISE_USER}:"):
            container = dict(body.get(ENTERPRISE_USER) or {})
            body[ENTERPRISE_USER] = container
            attribute = path[len(ENTERPRISE_USER) + 1 :]
            if ENTERPRISE_USER not in schemas:
                schemas.append(ENTERPRISE_USER)
        existing = container.get(attribute)
        if isinstance(value, Mapping) and isinstance(existing, Mapping):
            value = {**existing, **value}
        container[attribute] = value
    body["schemas"] = schemas
    return body
