"""The account and approval logic the OA clients share, above :class:`hub.vendor_http.VendorClient`.

Every OA vendor (WeCom, DingTalk, Feishu) gets the same guarantees from its client:

- a hire's account id is derived from the hire (a template over the job number, or the task's
  idempotency key), so every retry of a create names the same account;
- a member who already has the hire's mobile and name (made by hand) is adopted, not duplicated;
- :meth:`OAClient.upsert_account` creates or updates, and never makes two accounts, even when
  the vendor's answer to a create is lost;
- :meth:`OAClient.submit_once` starts an approval unless one for the same reference exists,
  and looks again after a lost answer (for vendors whose approvals have no idempotency key).

A vendor client implements the hooks (``get_user``, ``account_by_mobile``, ``create_account``,
``update_user``, ``disable_user``, ``approval_status``) with its own endpoints and names.
"""

from __future__ import annotations

import re
import threading
from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from hub.vendor_http import Code, HttpSettings, OutcomeUnknown, Unavailable, VendorClient, VendorError

#: the id of a hire without a job number (the template needs one): from the idempotency key
FALLBACK_ID_TEMPLATE = "hub{key:.20}"
#: 1 to 64 letters, digits and ``_-.@``: an account id all three vendors accept
ACCOUNT_ID_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
CHINA_OFFSET_S = 8 * 3600
DEFAULT_WELCOME = "欢迎加入！"

D = TypeVar("D", int, str)


def china_midnight(value: date) -> int:
    """Midnight of ``value`` in China time, in seconds since the epoch (a hire date at the vendor)."""
    return int(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp()) - CHINA_OFFSET_S


class FormReferences:
    """Per-process memory of hub's reference in each submitted approval form.

    Neither WeCom nor DingTalk can filter approvals by a form value, so finding the approval of
    a case reads each candidate approval's detail. A submitted form never changes: each answer is
    kept (bounded, least recently used dropped first), so a later look-up reads only approvals it
    has not seen, instead of every approval on every attempt. Keys include the API's base URL.
    """

    def __init__(self, limit: int = 50_000) -> None:
        self._known: OrderedDict[tuple[str, ...], str | None] = OrderedDict()
        self._lock = threading.Lock()
        self._limit = limit

    def reference(self, key: tuple[str, ...], read: Callable[[], str | None]) -> str | None:
        with self._lock:
            if key in self._known:
                self._known.move_to_end(key)
                return self._known[key]
        value = read()
        with self._lock:
            self._known[key] = value
            while len(self._known) > self._limit:
                self._known.popitem(last=False)
        return value


@dataclass(frozen=True, kw_only=True)
class OASettings(HttpSettings, Generic[D]):
    """What every OA connector's settings hold besides its credentials, ids and approval form."""

    #: hub's department codes -> the vendor's department ids
    department_map: Mapping[str, D]
    #: the department of a hire without a department code
    default_department: D
    #: how a hire's account id is derived (``userid_template`` or ``user_id_template`` in the config)
    id_template: str = "{job_number}"
    approval_lookback_days: int = 7
    welcome_text: str = DEFAULT_WELCOME
    page_size: int = 100

    @staticmethod
    def oa_options(
        config: Mapping[str, Any],
        *,
        id_label: str,
        department_id: Callable[[Any], D],
        default_department: D,
        page_size: int,
        backoff_base: float = 0.5,
        token_margin: float = 300.0,
    ) -> dict[str, Any]:
        """These settings (the transport's too) from a connector config, with the vendor's defaults."""
        approval = config.get("approval") or {}
        departments = config.get("department_map") or {}
        return {
            **HttpSettings.options(config, backoff_base=backoff_base, token_margin=token_margin),
            "department_map": {
                str(code): department_id(vendor_id) for code, vendor_id in departments.items()
            },
            "default_department": department_id(config.get("default_department") or default_department),
            "id_template": str(config.get(f"{id_label}_template") or "{job_number}"),
            "approval_lookback_days": int(approval.get("lookback_days") or 7),
            "welcome_text": str(config.get("welcome_text") or DEFAULT_WELCOME),
            "page_size": int(config.get("page_size") or page_size),
        }


@dataclass(frozen=True, kw_only=True)
class Hire:
    """What hub knows about a hire, in hub's terms (department codes, not the vendor's ids)."""

    name: str
    mobile: str = ""
    email: str = ""
    job_number: str = ""
    department_codes: tuple[str, ...] = ()
    title: str = ""
    hired_date: date | None = None


class ApprovalState(Protocol):
    """An approval's state as hub reads it: PENDING, APPROVED, REJECTED, CANCELED, DELETED, OTHER."""

    @property
    def status(self) -> str: ...


S = TypeVar("S", bound=OASettings[Any])
H = TypeVar("H", bound=Hire)


class OAClient(VendorClient[S], Generic[S, H]):
    """An OA vendor's client: accounts and approvals that are safe to retry."""

    #: how the vendor spells an account id ("userid", "user_id"): messages, case fields, options
    id_label: ClassVar[str] = "userid"
    #: what the vendor calls an account, in messages ("member", "user")
    account_noun: ClassVar[str] = "member"
    #: codes of a create refused because the id is taken (by an earlier attempt, most likely)
    id_taken: ClassVar[frozenset[Code]] = frozenset()
    #: look the account up before adopting it on ``id_taken`` (a code that may mean other things)
    confirm_taken: ClassVar[bool] = False
    #: a create whose answer was lost is looked up, and sent again only if nothing arrived
    #: (vendors without an idempotency token; with one, the transport retries it as it is)
    recover_lost_create: ClassVar[bool] = True

    # -- what a vendor implements -----------------------------------------------------------

    @abstractmethod
    def account_id_for(self, hire: H, idempotency_key: str = "") -> str:
        """The hire's account id (usually :meth:`derive_id` over the hire's fields)."""

    @abstractmethod
    def get_user(self, account_id: str) -> dict[str, Any] | None:
        """The account, or ``None`` when the vendor has no such id."""

    @abstractmethod
    def account_by_mobile(self, mobile: str) -> str | None:
        """The id of the account holding ``mobile``, if any."""

    @abstractmethod
    def create_account(self, hire: H, account_id: str, idempotency_key: str) -> None:
        """Create the account as it is (no look-up first)."""

    @abstractmethod
    def update_user(self, hire: H, account_id: str) -> None:
        """Bring an existing account in line with the hire (and active again)."""

    @abstractmethod
    def disable_user(self, account_id: str) -> bool:
        """Take the account away from a cancelled hire; ``False`` if there is no such account."""

    @abstractmethod
    def approval_status(self, approval_id: str) -> ApprovalState:
        """The approval's current state at the vendor."""

    @abstractmethod
    def check(self) -> None:
        """Fetch a token and read the address book, for ``hub connectors check``."""

    # -- shared logic -----------------------------------------------------------------------

    @property
    def id_template(self) -> str:
        """The configured template an account id is derived from (``{job_number}``, ``{key}``)."""
        return self.settings.id_template

    def derive_id(self, given: str, job_number: str, idempotency_key: str) -> str:
        """``given``, else the account id from :attr:`id_template` (stable across retries).

        A hire without a job number, under a template that needs one, gets ``hub`` and the first
        20 hex digits of the task's idempotency key: still the same on every attempt.
        """
        label, error = self.id_label, self.errors.error
        if given:
            account = given
        else:
            key = idempotency_key.replace("-", "")
            template = self.id_template
            if "{job_number}" in template and not job_number:
                if not key:
                    raise error("create_user", None, f"the hire has no job number to derive the {label} from")
                template = FALLBACK_ID_TEMPLATE
            try:
                account = template.format(job_number=job_number, key=key)
            except (KeyError, IndexError, ValueError):
                raise error(
                    "create_user", None, f"{label}_template is malformed (fields: job_number, key)"
                ) from None
        if not ACCOUNT_ID_RE.match(account):
            raise error("create_user", None, f"the derived {label} is not a valid {self.vendor} {label}")
        return account

    def department_ids(self, codes: Sequence[str]) -> list[Any]:
        """The vendor's department ids for hub's department codes (``department_map``)."""
        if not codes:
            return [self.settings.default_department]
        mapping = self.settings.department_map
        missing = [c for c in codes if c not in mapping]
        if missing:
            raise self.errors.error(
                "create_user", None, f"department code(s) not mapped: {', '.join(missing)}"
            )
        return [mapping[c] for c in codes]

    def same_person_by_mobile(self, hire: H) -> str | None:
        """The id of an existing account with the hire's mobile and name, if there is one.

        Someone else holding the number (another name) is not adopted: the create then fails
        with the vendor's conflict, for a person to resolve.
        """
        if not hire.mobile:
            return None
        holder = self.account_by_mobile(hire.mobile)
        if holder is None:
            return None
        found = self.get_user(holder)
        return holder if found is not None and str(found.get("name") or "") == hire.name else None

    def upsert_account(self, hire: H, idempotency_key: str = "") -> tuple[str, bool]:
        """Create the account, or update the one an earlier attempt made: (id, created), never two."""
        account = self.account_id_for(hire, idempotency_key)
        if self.get_user(account) is not None:
            self.update_user(hire, account)
            return account, False
        adopted = self.same_person_by_mobile(hire)
        if adopted is not None:  # made by hand (or under another id scheme): update, do not duplicate
            self.update_user(hire, adopted)
            return adopted, False
        lost: tuple[type[VendorError], ...] = (
            (Unavailable, OutcomeUnknown) if self.recover_lost_create else ()
        )
        try:
            self.create_account(hire, account, idempotency_key)
        except lost:
            # the create may have happened: an account under our id is ours; if there is none,
            # the request never arrived, and sending it again is safe (a race ends in id_taken)
            if self.get_user(account) is None:
                self.create_account(hire, account, idempotency_key)
            return account, True
        except VendorError as exc:
            if exc.code not in self.id_taken or (self.confirm_taken and self.get_user(account) is None):
                raise
            self.update_user(hire, account)  # a concurrent or lost attempt created it meanwhile
            return account, False
        return account, True

    def submit_once(self, find: Callable[[], str | None], submit: Callable[[], str]) -> tuple[str, bool]:
        """Submit an approval unless ``find`` sees one already: (id, created).

        For vendors whose approvals carry no idempotency key: hub's reference travels in the
        form, ``find`` looks for it, and a lost answer is looked for again before a resubmit.
        """
        existing = find()
        if existing:
            return existing, False
        try:
            return submit(), True
        except OutcomeUnknown:
            found = find()
            if found:
                return found, True
            return submit(), True

    def lookback_ms(self) -> tuple[int, int]:
        """(start, end) in epoch milliseconds of the window an earlier approval is looked for in."""
        end = int(self._clock() * 1000) + 60_000
        return end - self.settings.approval_lookback_days * 86_400_000, end
