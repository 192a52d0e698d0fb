"""The onboarding vendors on loopback, together: a rehearsal of the whole chain after an offer.

:class:`OnboardingVendors` starts the WeCom (accounts, onboarding approvals), Kingdee K3Cloud
(payroll) and e签宝 (labour contracts) simulators with their callbacks pointed at one
``hub serve`` (``webhook_base``), and gives hub the URLs and credentials through the
environment (:meth:`~OnboardingVendors.env`, read by ``{ env = "HUB_DEMO_..." }`` references in
hub.toml). Approvals decide themselves ``approval_delay`` seconds after they are submitted and
contracts are signed ``signing_delay`` seconds after the sign flow starts, each followed by the
vendor's signed (and, for WeCom, encrypted) callback, as in production.

:meth:`~OnboardingVendors.tally` counts what the vendors hold, for the summary table and for
the end-to-end tests' "exactly one of each per hire". :func:`accept_offers` makes offers
accepted in the Greenhouse simulator (the candidates' answers), and
:func:`apply_hr_master_schema` gives an empty database the shipped HR master tables.

The demo (``./scripts/demo``) and ``tests/test_onboarding_chain.py`` use this module; it is
a simulator like the rest of :mod:`hub.sandbox` and never talks to a vendor.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import sqlalchemy as sa

from hub.masking import mask_text
from hub.sandbox.base import Faults
from hub.sandbox.esign import EsignSimulator
from hub.sandbox.kingdee import AUDITED, BANK_FIELD, EMPLOYEE_FORM, KingdeeSimulator
from hub.sandbox.wecom import SP_APPROVED, WeComSimulator

if TYPE_CHECKING:
    from hub.sandbox.greenhouse import GreenhouseSimulator

#: WeCom members seeded before the hires arrive (colleagues, the approval's creator)
SEEDED_MEMBERS = 5
#: the shipped HR master DDL, by SQLAlchemy dialect name
SCHEMA_FILES = {"sqlite": "sqlite.sql", "postgresql": "postgresql.sql", "mysql": "mariadb.sql"}


@dataclass(frozen=True)
class VendorTally:
    """What the vendors hold after a run: made through their APIs, each counted once."""

    #: WeCom members created (and distinct mobiles among them)
    accounts: int
    distinct_accounts: int
    #: WeCom onboarding approvals submitted, approved, and distinct hires they are about
    approvals: int
    approved: int
    distinct_approvals: int
    #: Kingdee employees saved, audited (on the payroll), and distinct employee numbers
    payroll: int
    audited: int
    distinct_payroll: int
    #: e签宝 sign flows created, signed, and distinct signers among them
    contracts: int
    signed: int
    distinct_contracts: int
    #: callbacks the vendors delivered (POSTs, copies included)
    callbacks_delivered: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class OnboardingVendors:
    """WeCom, Kingdee and e签宝 simulators for one onboarding rehearsal (a context manager)."""

    def __init__(
        self,
        webhook_base: str,
        *,
        approval_delay: float = 0.5,
        signing_delay: float = 0.5,
        faults: Faults | None = None,
        seed: int = 11,
    ) -> None:
        base = webhook_base.rstrip("/")
        self.webhook_base = base
        # each vendor gets its own Faults: the counters that spread the failures are per object
        self.wecom = WeComSimulator(
            count=SEEDED_MEMBERS,
            seed=seed,
            approval_delay=approval_delay,
            callback_url=f"{base}/webhooks/wecom",
            rate_limit=None,
            faults=_copy(faults),
        )
        self.kingdee = KingdeeSimulator(count=SEEDED_MEMBERS, seed=seed, faults=_copy(faults))
        self.esign = EsignSimulator(signing_delay=signing_delay, auto_deliver=True, faults=_copy(faults))
        self._baseline = {"members": set(self.wecom.members), "employees": set()}

    def start(self) -> Self:
        for simulator in (self.wecom, self.kingdee, self.esign):
            simulator.start()
        self._baseline["employees"] = {b.number for b in self.kingdee.forms[EMPLOYEE_FORM].values()}
        return self

    def stop(self) -> None:
        for simulator in (self.esign, self.kingdee, self.wecom):
            simulator.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        """What hub.toml's ``{ env = "HUB_DEMO_..." }`` references read: URLs and credentials."""
        return {
            "HUB_DEMO_WECOM_URL": self.wecom.url,
            "HUB_DEMO_WECOM_SECRET": self.wecom.corp_secret,
            "HUB_DEMO_WECOM_TOKEN": self.wecom.callback_token,
            "HUB_DEMO_WECOM_AES_KEY": self.wecom.encoding_aes_key,
            "HUB_DEMO_KINGDEE_URL": f"{self.kingdee.url}/k3cloud",
            "HUB_DEMO_KINGDEE_SECRET": self.kingdee.app_secret,
            "HUB_DEMO_ESIGN_URL": self.esign.url,
            "HUB_DEMO_ESIGN_SECRET": self.esign.app_secret,
            "HUB_DEMO_ESIGN_NOTIFY_URL": f"{self.webhook_base}/webhooks/esign",
        }

    def set_faults(self, faults: Faults | None) -> None:
        """Inject (or, with None, stop injecting) faults into every vendor from now on."""
        for simulator in (self.wecom, self.kingdee, self.esign):
            simulator.faults = _copy(faults) or Faults()

    def tally(self) -> VendorTally:
        wecom, kingdee, esign = self.wecom, self.kingdee, self.esign
        with wecom._lock:
            created = [m for uid, m in wecom.members.items() if uid not in self._baseline["members"]]
            approvals = list(wecom.approvals.values())
            delivered = len(wecom.deliveries)
        with kingdee._lock:
            employees = [
                b
                for b in kingdee.forms[EMPLOYEE_FORM].values()
                if b.number not in self._baseline["employees"]
            ]
        with esign._lock:
            flows = list(esign.flows.values())
            delivered += len(esign.deliveries)
        return VendorTally(
            accounts=wecom.accounts,
            distinct_accounts=len({m.mobile for m in created}),
            approvals=len(approvals),
            approved=sum(1 for a in approvals if a.status == SP_APPROVED),
            distinct_approvals=len({_approval_subject(a.apply_data) for a in approvals}),
            payroll=kingdee.employees,
            audited=sum(1 for b in employees if b.status == AUDITED),
            distinct_payroll=len({b.number for b in employees}),
            contracts=esign.contracts,
            signed=esign.signed,
            distinct_contracts=len({f.account for f in flows}),
            callbacks_delivered=delivered,
        )

    def duplicates(self) -> dict[str, list[str]]:
        """Vendor objects made twice for one hire, by vendor (masked keys); empty when none."""
        wecom, kingdee, esign = self.wecom, self.kingdee, self.esign
        found: dict[str, list[str]] = {}
        with wecom._lock:
            mobiles = Counter(
                m.mobile for u, m in wecom.members.items() if u not in self._baseline["members"]
            )
            subjects = Counter(_approval_subject(a.apply_data) for a in wecom.approvals.values())
        with kingdee._lock:
            accounts = Counter(  # the payroll bank account: one per hire
                str(b.model.get(BANK_FIELD))
                for b in kingdee.forms[EMPLOYEE_FORM].values()
                if b.number not in self._baseline["employees"]
            )
        with esign._lock:
            signers = Counter(f.account for f in esign.flows.values())
        for vendor, counts in (("wecom_accounts", mobiles), ("wecom_approvals", subjects),
                               ("kingdee_employees", accounts), ("esign_flows", signers)):  # fmt: skip
            twice = [mask_text(key) for key, n in counts.items() if n > 1]
            if twice:
                found[vendor] = twice
        return found


def _copy(faults: Faults | None) -> Faults | None:
    return Faults(**asdict(faults)) if faults is not None else None


def _approval_subject(apply_data: Any) -> str:
    """The reference hub writes into the approval form (the case), to tell hires apart."""
    return re.sub(r"\s+", " ", str(apply_data))


def accepted_offers(greenhouse: GreenhouseSimulator) -> list[int]:
    """Application ids whose offer is accepted in the Greenhouse simulator (one per candidate)."""
    applications = {a["id"]: a for a in greenhouse.records("applications")}
    hired = [o["application_id"] for o in greenhouse.records("offers") if o["status"] == "accepted"]
    if len({applications[a]["candidate_id"] for a in hired}) != len(hired):
        raise ValueError("a candidate has two accepted offers")
    return hired


def accept_offers(
    greenhouse: GreenhouseSimulator, count: int, *, prefer: list[int] | None = None
) -> list[int]:
    """``count`` more candidates accept an offer in the Greenhouse simulator, one offer each.

    Chosen from ``prefer`` (application ids, e.g. the evaluation's recommendations) first, then
    the open offers and the other active applications; a candidate already hired is skipped.
    Returns the application ids accepted now.
    """
    applications = {a["id"]: a for a in greenhouse.records("applications")}
    people = {applications[a]["candidate_id"] for a in accepted_offers(greenhouse)}
    choices = [*(prefer or []), *greenhouse.applications_at_offer()]
    choices += [a for a, app in sorted(applications.items()) if app["status"] == "active"]
    accepted: list[int] = []
    for application_id in dict.fromkeys(choices):
        if len(accepted) >= count:
            break
        application = applications[application_id]
        if application["status"] != "active" or application["candidate_id"] in people:
            continue
        greenhouse.accept_offer(application_id)
        accepted.append(application_id)
        people.add(application["candidate_id"])
    if len(accepted) < count:
        raise ValueError(f"only {len(accepted)} more candidates can accept an offer: generate more")
    return accepted


def apply_hr_master_schema(url: str, schemas: Path) -> bool:
    """Create the shipped HR master tables (``schemas/hr_master/``) in an empty database.

    Returns False, changing nothing, when the database has an ``employees`` table already.
    """
    engine = sa.create_engine(url)
    try:
        if sa.inspect(engine).has_table("employees"):
            return False
        text = (schemas / SCHEMA_FILES[engine.dialect.name]).read_text(encoding="utf-8")
        statements = [s.strip() for s in re.sub(r"--[^\n]*", "", text).split(";") if s.strip()]
        with engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
        return True
    finally:
        engine.dispose()


def describe(tally: VendorTally) -> list[tuple[str, int, int]]:
    """Rows (vendor object and what "completed" means, made, completed) for a summary table."""
    return [
        ("WeCom accounts (distinct hires)", tally.accounts, tally.distinct_accounts),
        ("WeCom onboarding approvals (approved)", tally.approvals, tally.approved),
        ("Kingdee employees (audited: on the payroll)", tally.payroll, tally.audited),
        ("e签宝 labour contracts (signed)", tally.contracts, tally.signed),
    ]
