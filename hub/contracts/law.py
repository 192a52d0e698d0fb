"""Checks of the PRC Labour Contract Law (劳动合同法) that an offer or contract must pass.

Each violation is refused with a :class:`ContractRuleError` naming the article, in words an HR
admin can act on. Amounts are never part of a message (a salary is personal data): a check says
"below 80%", not the figures.

Articles checked:

* 第十九条 (art. 19): probation caps by contract term, one probation per employer and employee.
* 第二十条 (art. 20): probation pay at least 80% of the contract salary (and the local minimum).
* 第二十二条 (art. 22): service-period damages at most the training cost, and at any time at most
  the part not yet amortised over the service period.
* 第二十三条 / 第二十四条 (arts. 23, 24): a non-compete is paid monthly and lasts at most 2 years.
* 劳动争议司法解释（一）第三十六条 (Supreme People's Court judicial interpretation I, art. 36): a
  court fills in an unagreed non-compete compensation at 30% of the average monthly wage of the last
  12 months, so hub refuses agreed compensation below that ratio (configurable).
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from hub.errors import HubError
from hub.schema.contract import ContractType

ART_19 = "劳动合同法第十九条"
ART_20 = "劳动合同法第二十条"
ART_22 = "劳动合同法第二十二条"
ART_23 = "劳动合同法第二十三条"
ART_24 = "劳动合同法第二十四条"
JUDICIAL_36 = "劳动争议司法解释（一）第三十六条"

#: Art. 24: a non-compete lasts at most two years after the contract ends.
NON_COMPETE_MAX_MONTHS = 24
#: Judicial interpretation I, art. 36: the floor courts apply to non-compete compensation.
DEFAULT_NON_COMPETE_MIN_RATIO = Decimal("0.3")
#: Art. 20: probation pay at least 80% of the contract salary.
DEFAULT_PROBATION_PAY_MIN_RATIO = Decimal("0.8")

#: Contract types art. 19 speaks about; internships and service contracts are not labour contracts.
LABOUR_CONTRACT_TYPES = frozenset(
    {ContractType.FIXED_TERM, ContractType.OPEN_ENDED, ContractType.TASK_BASED, ContractType.DISPATCH}
)
CONTRACT_TYPE_LABELS = {
    ContractType.FIXED_TERM: "固定期限",
    ContractType.OPEN_ENDED: "无固定期限",
    ContractType.TASK_BASED: "以完成一定工作任务为期限",
    ContractType.DISPATCH: "劳务派遣（固定期限）",
    ContractType.INTERNSHIP: "实习协议",
    ContractType.LABOR_SERVICE: "劳务合同",
    ContractType.OTHER: "其他",
}


class ContractRuleError(HubError):
    """An offer or contract breaks a statutory rule; ``rule`` names the article, ``code`` the check."""

    def __init__(self, rule: str, code: str, message: str) -> None:
        self.rule = rule
        self.code = code
        self.detail = message
        super().__init__(f"{rule}: {message}")


class ProbationError(ContractRuleError):
    """The probation is longer than art. 19 allows for the contract's term, or not allowed at all."""


class ProbationPayError(ContractRuleError):
    """Probation pay is below art. 20's floor."""


class NonCompeteError(ContractRuleError):
    """A non-compete is too long, unpaid, or paid below the judicial floor."""


class ServicePeriodError(ContractRuleError):
    """A service-period agreement's training cost or damages break art. 22."""


# -- dates -------------------------------------------------------------------------------------


def add_months(start: date, months: int) -> date:
    """``start`` moved by ``months`` calendar months, clamped to the month's last day (1-31 + 1 = 2-28)."""
    index = start.year * 12 + start.month - 1 + months
    year, month = divmod(index, 12)
    day = min(start.day, calendar.monthrange(year, month + 1)[1])
    return date(year, month + 1, day)


def term_end(start: date, months: int) -> date:
    """Last day of a term of ``months`` starting on ``start`` (3 years from 2025-03-01: 2028-02-29)."""
    return add_months(start, months) - timedelta(days=1)


def term_months_between(start: date, end: date) -> int:
    """Whole months in the term ``start``..``end`` (both days included); a part month does not count.

    2025-03-01..2026-02-28 is 12 months; 2025-03-15..2025-06-13 is 2 (one day short of 3).
    """
    if end < start:
        raise ValueError("the contract ends before it starts")
    after = end + timedelta(days=1)
    months = (after.year - start.year) * 12 + after.month - start.month
    while months > 0 and add_months(start, months) > after:
        months -= 1
    return months


# -- art. 19: probation ------------------------------------------------------------------------


def _term_words(months: int) -> str:
    """``a 2-year contract``, ``an 18-month contract``: how art. 19's bands are named in errors."""
    text = f"{months // 12}-year" if months % 12 == 0 and months else f"{months}-month"
    article = "an" if text.startswith(("8", "11-", "18-")) else "a"
    return f"{article} {text} contract"


def _months(n: int) -> str:
    return f"{n} month" if n == 1 else f"{n} months"


def max_probation_months(contract_type: ContractType | str, term_months: int | None) -> int:
    """The longest probation art. 19 allows for a contract of this type and term (0: none)."""
    kind = ContractType(contract_type)
    if kind not in LABOUR_CONTRACT_TYPES:
        raise ProbationError(
            ART_19,
            "probation.not_a_labour_contract",
            f"probation applies to labour contracts (fixed-term, open-ended, task-based), not {kind.value}",
        )
    if kind is ContractType.OPEN_ENDED:
        return 6
    if kind is ContractType.TASK_BASED:
        return 0
    if term_months is None:
        raise ProbationError(
            ART_19, "probation.term_missing", "a fixed-term contract needs its term in months"
        )
    if term_months < 3:
        return 0
    if term_months < 12:
        return 1
    if term_months < 36:
        return 2
    return 6


def check_probation(
    contract_type: ContractType | str,
    term_months: int | None,
    probation_months: int | None,
    *,
    earlier_probation: bool = False,
) -> None:
    """Refuse a probation art. 19 does not allow.

    ``earlier_probation``: the employer already agreed a probation with this employee (a renewal or a
    rehire); art. 19 para. 2 allows only one.
    """
    probation = probation_months or 0
    if probation < 0:
        raise ProbationError(ART_19, "probation.negative", "probation cannot be negative")
    if probation == 0:
        return  # nothing to check, whatever the contract (an internship agreement has none either)
    limit = max_probation_months(contract_type, term_months)
    if earlier_probation:
        raise ProbationError(
            ART_19,
            "probation.repeated",
            "the same employer may agree a probation with the same employee only once",
        )
    if probation <= limit:
        return
    kind = ContractType(contract_type)
    if kind is ContractType.OPEN_ENDED:
        what = "an open-ended contract (无固定期限)"
    elif kind is ContractType.TASK_BASED:
        what = "a task-based contract (以完成一定工作任务为期限)"
    else:
        what = _term_words(term_months or 0)
    if limit == 0:
        raise ProbationError(ART_19, "probation.not_allowed", f"{what} allows no probation, got {probation}")
    raise ProbationError(
        ART_19, "probation.too_long", f"{what} allows at most {_months(limit)} of probation, got {probation}"
    )


# -- art. 20: probation pay --------------------------------------------------------------------


def percent(ratio: Decimal) -> str:
    """``Decimal("0.8")`` -> ``80%``."""
    value = (ratio * 100).normalize()
    return f"{value:f}%"


def check_probation_pay(
    contract_salary: Decimal,
    probation_salary: Decimal | None,
    *,
    min_ratio: Decimal = DEFAULT_PROBATION_PAY_MIN_RATIO,
    minimum_wage: Decimal | None = None,
) -> None:
    """Refuse probation pay below ``min_ratio`` of the contract salary or the local minimum wage.

    ``probation_salary`` None means the full salary is paid during probation. The message never
    carries the amounts.
    """
    if probation_salary is None:
        probation_salary = contract_salary
    if probation_salary < contract_salary * min_ratio:
        raise ProbationPayError(
            ART_20,
            "probation_pay.below_ratio",
            f"probation pay is below {percent(min_ratio)} of the contract salary",
        )
    if minimum_wage is not None and probation_salary < minimum_wage:
        raise ProbationPayError(
            ART_20, "probation_pay.below_minimum_wage", "probation pay is below the local minimum wage"
        )


# -- arts. 23, 24 and the judicial floor: non-compete ------------------------------------------


def check_non_compete_term(term_months: int) -> None:
    """Refuse a non-compete longer than art. 24's two years (or of no length at all)."""
    if term_months < 1:
        raise NonCompeteError(
            ART_24, "non_compete.term_missing", "a non-compete needs a term of at least 1 month"
        )
    if term_months > NON_COMPETE_MAX_MONTHS:
        raise NonCompeteError(
            ART_24,
            "non_compete.too_long",
            f"a non-compete lasts at most 2 years ({NON_COMPETE_MAX_MONTHS} months), got {term_months}",
        )


def check_non_compete_pay(
    monthly_compensation: Decimal | None,
    reference_monthly_wage: Decimal | None,
    *,
    min_ratio: Decimal = DEFAULT_NON_COMPETE_MIN_RATIO,
    minimum_wage: Decimal | None = None,
) -> None:
    """Refuse an unpaid non-compete, or one paid below the judicial floor.

    ``reference_monthly_wage`` is the employee's average monthly wage of the last 12 months; at
    hiring time, the best estimate is the offered monthly salary.
    """
    if monthly_compensation is None or monthly_compensation <= 0:
        raise NonCompeteError(
            ART_23,
            "non_compete.unpaid",
            "a non-compete must set its monthly compensation, paid after the contract ends",
        )
    if reference_monthly_wage is not None and monthly_compensation < reference_monthly_wage * min_ratio:
        raise NonCompeteError(
            JUDICIAL_36,
            "non_compete.below_floor",
            f"non-compete compensation is below {percent(min_ratio)} of the average monthly wage of the last 12 months",
        )
    if minimum_wage is not None and monthly_compensation < minimum_wage:
        raise NonCompeteError(
            JUDICIAL_36,
            "non_compete.below_minimum_wage",
            "non-compete compensation is below the local minimum wage",
        )


# -- art. 22: service period -------------------------------------------------------------------


def check_service_period(
    service_months: int, training_cost: Decimal | None, liquidated_damages: Decimal
) -> None:
    """Refuse a service period without funded training, or with damages above the training cost."""
    if service_months < 1:
        raise ServicePeriodError(
            ART_22, "service_period.term_missing", "a service period needs at least 1 month"
        )
    if training_cost is None or training_cost <= 0:
        raise ServicePeriodError(
            ART_22,
            "service_period.no_training_cost",
            "a service period needs the employer-funded special training cost (专项培训费用)",
        )
    if liquidated_damages > training_cost:
        raise ServicePeriodError(
            ART_22, "service_period.damages_above_cost", "liquidated damages exceed the training cost paid"
        )


def unamortised_training_cost(training_cost: Decimal, service_months: int, months_served: int) -> Decimal:
    """The cap on service-period damages after ``months_served``: the part of the cost not yet amortised.

    Art. 22 para. 2: damages may not exceed the training cost apportioned to the part of the service
    period not yet served. Amortised linearly by month, rounded to the fen.
    """
    if service_months < 1:
        raise ValueError("service_months must be at least 1")
    served = min(max(months_served, 0), service_months)
    remaining = Decimal(service_months - served) / Decimal(service_months)
    return (training_cost * remaining).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
