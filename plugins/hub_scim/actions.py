"""``scim.provision_user``: the hire's account at a SCIM 2.0 identity provider, exactly once.

::

    [onboarding]
    tasks = [
      { name = "idp_account", action = "scim.provision_user", connector = "idp",
        options = { manager_employee_number = "E0007" } },
    ]

The account's ``externalId`` is the hire's employee number (``external_id_template``,
default ``{employee_number}``), or the task's idempotency key when the case has none: the
same on every attempt. Before writing, the action looks the account up (``find``) by
``externalId``, then by ``userName`` (an account made by hand, without an externalId, is
adopted; one with another externalId is a conflict for an operator). A create refused with
409 ``uniqueness`` is looked up and adopted the same way, so a lost answer, a crash between
the server's reply and hub's commit, or two runners never leave two accounts. ``cancel``
deactivates the account (``active: false``), or deletes it with ``undo = "delete"``.

Case fields, by their canonical names: ``name`` (or ``family_name`` + ``given_name``),
``work_email`` or ``email``, ``employee_number`` (or ``job_number``), ``job_title``,
``department`` (hub's code, shown through ``department_names``) or ``department_name``,
``legal_entity`` / ``organization``, ``mobile`` / ``phone`` (sent only with
``send_phone_numbers = true``). Task options may set ``manager_id`` (the manager's SCIM id) or
``manager_employee_number`` (looked up by the enterprise ``employeeNumber``), and any of the
connector's ``user_name_template`` / ``external_id_template``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import ClassVar
from weakref import WeakKeyDictionary

from hub.oa.actions import case_text
from hub.onboarding import ActionContext, ActionFailed, ExternalRef, OnboardingAction, Outcome
from hub.vendor_http import VendorError
from hub_scim.client import ScimClient, ScimResource
from hub_scim.users import ENTERPRISE_USER, MultiValue, ScimUser

USER_KIND = "scim_user"
TEMPLATE_FIELDS = ("email", "employee_number", "key", "case_id")


@contextmanager
def scim_failures() -> Iterator[None]:
    """SCIM errors as action failures: transient ones retried, refusals to an operator."""
    try:
        yield
    except VendorError as exc:
        raise ActionFailed(str(exc), permanent=not exc.retryable, retry_after=exc.retry_after) from None


#: one client per attempt: ``find`` and then ``perform`` share its discovery documents
_clients: WeakKeyDictionary[ActionContext, ScimClient] = WeakKeyDictionary()
_clients_lock = threading.Lock()


def client_of(ctx: ActionContext) -> ScimClient:
    with _clients_lock:
        client = _clients.get(ctx)
    if client is not None:
        return client
    try:
        client = ScimClient.from_config(ctx.config)
    except (KeyError, TypeError, ValueError) as exc:
        raise ActionFailed(
            f"the SCIM connector is misconfigured ({type(exc).__name__})", permanent=True
        ) from None
    with _clients_lock:
        _clients[ctx] = client
    return client


def render(template: str, fields: Mapping[str, str], what: str) -> str:
    """``template`` filled from ``fields``; a missing value is a permanent failure (no value quoted)."""
    try:
        value = template.format_map(dict(fields))
    except (KeyError, IndexError, ValueError, AttributeError):
        raise ActionFailed(
            f"{what}_template is malformed (fields: {', '.join(TEMPLATE_FIELDS)})", permanent=True
        ) from None
    used = [name for name in TEMPLATE_FIELDS if "{" + name + "}" in template]
    missing = [name for name in used if not fields.get(name)]
    if missing:
        raise ActionFailed(f"the case has no {missing[0]} for the SCIM {what}", permanent=True)
    return value.strip()


def user_of(ctx: ActionContext, client: ScimClient) -> ScimUser:
    """The hire in ``ctx.case`` as a SCIM user (the manager looked up when named by number)."""
    case, options, settings = ctx.case, ctx.options, client.settings
    family, given = case_text(case, "family_name"), case_text(case, "given_name")
    name = case_text(case, "name", "full_name", "legal_name") or (family + given)
    if not name:
        raise ActionFailed("the case has no name for the SCIM user", permanent=True)
    email = case_text(case, "work_email", "email")
    employee_number = case_text(case, "employee_number", "job_number", "employee_no")
    fields = {
        "email": email,
        "employee_number": employee_number,
        "key": ctx.idempotency_key,
        "case_id": ctx.case_id,
    }
    user_name = render(
        str(options.get("user_name_template") or settings.user_name_template), fields, "userName"
    )
    external_template = str(options.get("external_id_template") or settings.external_id_template)
    if "{employee_number}" in external_template and not employee_number:
        external_template = "{key}"  # still the same on every attempt of this task
    external_id = render(external_template, fields, "externalId")
    department_code = case_text(case, "department_code", "department")
    department = case_text(case, "department_name") or settings.department_names.get(
        department_code, department_code
    )
    phone = case_text(case, "mobile", "phone") if settings.send_phone_numbers else ""
    return ScimUser(
        user_name=user_name,
        external_id=external_id,
        given_name=given,
        family_name=family,
        formatted_name=name,
        display_name=case_text(case, "display_name") or name,
        title=case_text(case, "job_title", "title"),
        active=True,
        emails=(MultiValue(email, "work", primary=True),) if email else (),
        phone_numbers=(MultiValue(phone, "mobile"),) if phone else (),
        employee_number=employee_number,
        department=department,
        organization=case_text(case, "legal_entity", "organization") or settings.organization,
        cost_center=case_text(case, "cost_center"),
        manager_id=manager_id(ctx, client),
    )


def manager_id(ctx: ActionContext, client: ScimClient) -> str:
    """The manager's SCIM id: given, or looked up by employee number (retried until provisioned)."""
    given = str(ctx.options.get("manager_id") or case_text(ctx.case, "manager_scim_id"))
    if given:
        return given
    number = str(ctx.options.get("manager_employee_number") or case_text(ctx.case, "manager_employee_number"))
    if not number:
        return ""
    with scim_failures():
        manager = client.find_user(f"{ENTERPRISE_USER}:employeeNumber", number)
    if manager is None:
        raise ActionFailed("the manager has no account at the SCIM server yet")
    return manager.id


class ProvisionUser(OnboardingAction):
    """Create the hire's SCIM user (or bring the one found up to date); undo deactivates it."""

    name: ClassVar[str] = "scim.provision_user"
    description: ClassVar[str] = (
        "create or update the hire's user at a SCIM 2.0 identity provider (externalId = employee number)"
    )

    def find(self, ctx: ActionContext) -> ExternalRef | None:
        client = client_of(ctx)
        with scim_failures():
            found = client.find_existing(user_of(ctx, client))
        return ExternalRef(found.id, USER_KIND) if found is not None else None

    def recovered(self, ctx: ActionContext, ref: ExternalRef) -> Outcome:
        """Found (made by a lost attempt, or by hand): set hub's attributes on it."""
        client = client_of(ctx)
        with scim_failures():
            current = client.get_user(ref.id)
            if current is None:  # deleted between find and now: provision afresh
                return self.perform(ctx)
            updated = client.update_user(current, user_of(ctx, client))
        return self.done(updated, created=False)

    def perform(self, ctx: ActionContext) -> Outcome:
        client = client_of(ctx)
        with scim_failures():
            resource, created = client.provision_user(user_of(ctx, client))
        return self.done(resource, created=created)

    @staticmethod
    def done(resource: ScimResource, *, created: bool) -> Outcome:
        return Outcome.done(ExternalRef(resource.id, USER_KIND), {"scim_id": resource.id, "created": created})

    def undo(self, ctx: ActionContext) -> None:
        """Deactivate the user (``undo = "delete"``: delete it); twice is harmless."""
        if ctx.ref is None:
            return
        client = client_of(ctx)
        with scim_failures():
            if client.settings.undo == "delete":
                client.delete_user(ctx.ref.id)
            else:
                client.deactivate_user(ctx.ref.id)


ACTIONS: tuple[OnboardingAction, ...] = (ProvisionUser(),)
