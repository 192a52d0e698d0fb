"""The onboarding actions every OA plugin offers, with the vendor's details left to hooks.

A plugin describes itself once (:class:`OAVendor`) and subclasses the actions::

    [onboarding]
    tasks = [
      { name = "oa_account", action = "wecom.create_user", connector = "wecom" },
      { name = "oa_approval", action = "wecom.start_approval", connector = "wecom" },
      { name = "oa_welcome", action = "wecom.send_welcome", connector = "wecom", after = ["oa_account", "oa_approval"] },
      # after the contract is signed: the final job facts onto the account oa_account made
      { name = "sync_final", action = "wecom.update_user", connector = "wecom",
        options = { user_task = "oa_account", hr_task = "create_hr_record" } },
    ]

The case's fields are read by their canonical names (``name``, ``mobile`` or ``phone``,
``email``, ``job_number`` or ``employee_number``, ``department`` (hub's code), ``job_title``,
``start_date``); a task's ``options`` may add the manager's id (``manager_userid``,
``manager_user_id``: the vendor's spelling), ``department_codes`` and, for the welcome, ``text``.
Every action looks before it writes (``find``), so an attempt whose answer was lost is recovered
instead of repeated; vendor errors become :class:`~hub.onboarding.ActionFailed` (transient ones
retried, refusals to an operator). ``update_user`` needs no look-up: an update sent twice leaves
the account as once.
"""

from __future__ import annotations

from abc import abstractmethod
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, ClassVar, Generic, TypeVar, cast

from hub.oa.client import Hire, OAClient
from hub.onboarding import ActionContext, ActionFailed, CallbackEvent, ExternalRef, OnboardingAction, Outcome
from hub.vendor_http import VendorError

#: approval states that end the wait without an approval
REFUSED = ("REJECTED", "CANCELED", "DELETED")


def case_text(case: Mapping[str, Any], *names: str) -> str:
    """The first non-empty of the case's ``names``, as text."""
    for name in names:
        value = case.get(name)
        if value not in (None, ""):
            return str(value).strip()
    return ""


def national_mobile(value: str) -> str:
    """``+8613800138000`` -> ``13800138000`` (how the vendors store mainland numbers); others as given."""
    digits = "".join(c for c in value if c.isdigit() or c == "+")
    if digits.startswith("+86") and len(digits) == 14:
        return digits[3:]
    return digits


def start_date(case: Mapping[str, Any]) -> date | None:
    raw = case_text(case, "start_date", "hire_date", "hired_date")
    try:
        return date.fromisoformat(raw[:10]) if raw else None
    except ValueError:
        return None


def approval_values(hire: Hire) -> dict[str, str]:
    """The approval form's values by hub field name (empty ones left out)."""
    values = {
        "name": hire.name,
        "job_number": hire.job_number,
        "department": ",".join(hire.department_codes),
        "title": hire.title,
        "start_date": hire.hired_date.isoformat() if hire.hired_date else "",
    }
    return {k: v for k, v in values.items() if v}


def failed(exc: VendorError) -> ActionFailed:
    """A client error as the runner's outcome: transient ones retried, refusals to an operator."""
    return ActionFailed(str(exc), permanent=not exc.retryable, retry_after=exc.retry_after)


@contextmanager
def vendor_failures() -> Iterator[None]:
    """Turn the vendor errors raised inside into :func:`failed` action failures."""
    try:
        yield
    except VendorError as exc:
        raise failed(exc) from None


@dataclass(frozen=True)
class OAVendor:
    """One OA plugin as its onboarding actions see it."""

    #: the plugin's name: action names, reference kinds, case fields (``wecom``)
    connector: str
    client: type[OAClient[Any, Any]]
    #: the plugin's hire class (keyword arguments: :class:`~hub.oa.client.Hire`'s fields, plus
    #: ``manager_<id label>`` and ``<id label>``)
    hire: Callable[..., Hire]
    #: the event type the vendor's approval callbacks carry
    approval_event: str
    mobile_required: bool = True

    @property
    def vendor(self) -> str:
        return self.client.errors.error.vendor

    @property
    def user_kind(self) -> str:
        return f"{self.connector}_user"

    @property
    def approval_kind(self) -> str:
        return f"{self.connector}_approval"

    @property
    def id_field(self) -> str:
        """The case field (and task result) holding the account id (``wecom_userid``)."""
        return f"{self.connector}_{self.client.id_label}"

    def hire_of(self, ctx: ActionContext, *, require_mobile: bool = True) -> Hire:
        """The hire in ``ctx.case``, in the client's terms (``ActionFailed`` without a name).

        ``require_mobile=False``: an update, which does not send the mobile, needs none.
        """
        case, options = ctx.case, ctx.options
        label = self.client.id_label
        name = case_text(case, "name", "full_name", "legal_name") or (
            case_text(case, "family_name") + case_text(case, "given_name")
        )
        if not name:
            raise ActionFailed(
                f"the case has no name for the {self.vendor} {self.client.account_noun}", permanent=True
            )
        mobile = national_mobile(case_text(case, "mobile", "phone"))
        if not mobile and self.mobile_required and require_mobile:
            raise ActionFailed(f"the case has no mobile number ({self.vendor} requires one)", permanent=True)
        codes = options.get("department_codes") or case.get("department_codes")
        if isinstance(codes, str):
            codes = [codes]
        if not codes:
            single = case_text(case, "department_code", "department")
            codes = [single] if single else []
        manager = f"manager_{label}"
        return self.hire(
            name=name,
            mobile=mobile,
            email=case_text(case, "work_email", "email"),
            job_number=case_text(case, "job_number", "employee_number", "employee_no"),
            department_codes=tuple(str(c) for c in codes),
            title=case_text(case, "job_title", "title"),
            hired_date=start_date(case),
            **{
                manager: str(options.get(manager) or case_text(case, manager)),
                label: case_text(case, self.id_field),
            },
        )


C = TypeVar("C", bound=OAClient[Any, Any])


class OAAction(OnboardingAction, Generic[C]):
    """An onboarding action of one OA plugin (``oa``)."""

    oa: ClassVar[OAVendor]

    def client_of(self, ctx: ActionContext) -> C:
        try:
            return cast(C, self.oa.client.from_config(ctx.config))
        except (KeyError, TypeError, ValueError) as exc:
            raise ActionFailed(
                f"the {self.oa.connector} connector is misconfigured ({type(exc).__name__})", permanent=True
            ) from None


class OACreateUser(OAAction[C]):
    """Create the hire's account (or bring the one made earlier up to date)."""

    def find(self, ctx: ActionContext) -> ExternalRef | None:
        client = self.client_of(ctx)
        with vendor_failures():
            account = client.account_id_for(self.oa.hire_of(ctx), ctx.idempotency_key)
            found = client.get_user(account)
        return ExternalRef(account, self.oa.user_kind) if found is not None else None

    def recovered(self, ctx: ActionContext, ref: ExternalRef) -> Outcome:
        return self.perform(ctx)  # update it: department, title and leader as the case says

    def perform(self, ctx: ActionContext) -> Outcome:
        with vendor_failures():
            account, _ = self.client_of(ctx).upsert_account(self.oa.hire_of(ctx), ctx.idempotency_key)
        return Outcome.done(ExternalRef(account, self.oa.user_kind), {self.oa.id_field: account})

    def undo(self, ctx: ActionContext) -> None:
        """Take the account from a cancelled hire (``disable_user``); twice is harmless."""
        if ctx.ref is None:
            return
        with vendor_failures():
            self.client_of(ctx).disable_user(ctx.ref.id)


class OAStartApproval(OAAction[C]):
    """Start the onboarding approval and wait for the vendor's decision (its callback)."""

    @abstractmethod
    def find_started(self, client: C, ctx: ActionContext) -> str | None:
        """The id of the approval an earlier attempt started for this task, if any."""

    @abstractmethod
    def start(self, client: C, ctx: ActionContext) -> str:
        """Start the approval (unless it exists): its id."""

    def find(self, ctx: ActionContext) -> ExternalRef | None:
        with vendor_failures():
            found = self.find_started(self.client_of(ctx), ctx)
        return ExternalRef(found, self.oa.approval_kind) if found else None

    def recovered(self, ctx: ActionContext, ref: ExternalRef) -> Outcome:
        with vendor_failures():
            status = self.client_of(ctx).approval_status(ref.id).status
        return self.outcome_of_status(ref.id, status)

    def perform(self, ctx: ActionContext) -> Outcome:
        with vendor_failures():
            approval = self.start(self.client_of(ctx), ctx)
        return self.outcome_of_status(approval, "PENDING")

    def on_callback(self, ctx: ActionContext, event: CallbackEvent) -> Outcome:
        status = str(event.payload.get("status") or "OTHER")
        if status != "APPROVED" and status not in REFUSED:
            # an interim or late (out-of-order) event: the vendor's current state decides
            with vendor_failures():
                status = self.client_of(ctx).approval_status(event.external_id).status
        return self.outcome_of_status(event.external_id, status)

    def outcome_of_status(self, approval: str, status: str) -> Outcome:
        ref = ExternalRef(approval, self.oa.approval_kind)
        if status == "APPROVED":
            return Outcome.done(ref, {"approval_status": status})
        if status in REFUSED:
            return Outcome.failed(f"the {self.oa.vendor} onboarding approval was {status.lower()}")
        return Outcome.waiting(approval, event=self.oa.approval_event, ref=ref)


class OASendWelcome(OAAction[C]):
    """Send the new account a welcome message from the app (``text``: ``{name}``, ``{start_date}``)."""

    #: the reference kind of a sent message (``wecom_message``)
    message_kind: ClassVar[str]

    @abstractmethod
    def send(self, client: C, account: str, text: str, ctx: ActionContext) -> str:
        """Send ``text`` to ``account`` (once, by the vendor's de-duplication): the message id."""

    def perform(self, ctx: ActionContext) -> Outcome:
        client = self.client_of(ctx)
        account = self.created_account(ctx, client)
        hire = self.oa.hire_of(ctx)
        template = str(ctx.options.get("text") or client.settings.welcome_text)
        fields: defaultdict[str, str] = defaultdict(
            str, name=hire.name, start_date=hire.hired_date.isoformat() if hire.hired_date else ""
        )
        try:
            text = template.format_map(fields)
        except (ValueError, IndexError, AttributeError):
            raise ActionFailed("the welcome text template is malformed", permanent=True) from None
        with vendor_failures():
            sent = self.send(client, account, text, ctx)
        return Outcome.done(ExternalRef(sent or account, self.message_kind))

    def created_account(self, ctx: ActionContext, client: C) -> str:
        """The account a ``<plugin>.create_user`` task of this case made (or would make)."""
        for result in ctx.results.values():
            if result.ref is not None and result.ref.kind == self.oa.user_kind:
                return result.ref.id
        if "{key}" in client.id_template:
            raise ActionFailed(
                f"no {self.oa.connector}.create_user task has finished for this case", permanent=True
            )
        with vendor_failures():
            return client.account_id_for(self.oa.hire_of(ctx))


def task_option(ctx: ActionContext, option: str, default: str) -> str:
    """A task name from ``ctx.options`` (another task of the case), else ``default``."""
    value = ctx.options.get(option)
    return str(value).strip() if value not in (None, "") else default


class OAUpdateUser(OAAction[C]):
    """Bring the account ``create_user`` made up to date with the final record (after signing).

    The account is the one the ``options.user_task`` task (``create_oa_account``) recorded, never
    one derived again; the job facts are the case's (title, department codes through the
    connector's ``department_map``, manager, start date) with the job number from the HR master
    task's result (``options.hr_task``, ``create_hr_record``: its ``employee_no``) when there
    is one. An update is idempotent by nature, so there is no ``find``; an account that is gone
    fails for an operator. Nothing to undo: ``create_user``'s undo takes the account away.
    """

    def perform(self, ctx: ActionContext) -> Outcome:
        client = self.client_of(ctx)
        user_task = task_option(ctx, "user_task", "create_oa_account")
        account = self.account_of(ctx, user_task)
        hire = self.final_hire(ctx)
        with vendor_failures():
            if client.get_user(account) is None:
                raise ActionFailed(
                    f"the {self.oa.vendor} {client.account_noun} task {user_task!r} created is gone "
                    f"(deleted at {self.oa.vendor}?)",
                    permanent=True,
                )
            self.update(client, hire, account, ctx)
        data = {self.oa.id_field: account}
        if hire.job_number:
            data["job_number"] = hire.job_number
        return Outcome.done(ExternalRef(account, self.oa.user_kind), data)

    def update(self, client: C, hire: Hire, account: str, ctx: ActionContext) -> None:
        """Send the update (a plugin adds what its vendor takes besides the hire)."""
        client.update_user(hire, account)

    def undo(self, ctx: ActionContext) -> None:
        """Nothing to undo: the update made nothing (``create_user``'s undo takes the account)."""

    def account_of(self, ctx: ActionContext, user_task: str) -> str:
        """The account id the ``user_task`` task recorded (``ActionFailed`` naming the task if none)."""
        result = ctx.results.get(user_task)
        if result is not None and result.ref is not None and result.ref.kind == self.oa.user_kind:
            return result.ref.id
        recorded = str(result.data.get(self.oa.id_field) or "") if result is not None else ""
        if recorded:
            return recorded
        raise ActionFailed(
            f"task {user_task!r} has no {self.oa.vendor} {self.oa.client.account_noun} for this case "
            f"(options.user_task names the {self.oa.connector}.create_user task)",
            permanent=True,
        )

    def final_hire(self, ctx: ActionContext) -> Hire:
        """The hire as the case has it now, with the HR master's employee number as job number."""
        hire = self.oa.hire_of(ctx, require_mobile=False)
        hr = ctx.results.get(task_option(ctx, "hr_task", "create_hr_record"))
        employee_no = str(hr.data.get("employee_no") or "").strip() if hr is not None else ""
        return replace(hire, job_number=employee_no) if employee_no else hire
