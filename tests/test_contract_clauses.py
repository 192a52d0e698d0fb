"""Clause rules ([contracts]) and the statutory checks of the Labour Contract Law (hub.contracts.law)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hub.config import load_settings
from hub.contracts import law
from hub.contracts.clauses import (
    ContractsConfig,
    condition,
    contracts_config,
    resolve_terms,
    select_clauses,
)
from hub.errors import ConfigurationError
from hub.schema.contract import ContractType

CONFIDENTIALITY: dict[str, Any] = {
    "name": "confidentiality",
    "when": {"any": [{"core_data_access": True}, {"classified_project": True}]},
    "post_employment_months": 24,
}


def problems_of(table: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ConfigurationError) as info:
        contracts_config(table)
    return {p.path: p.message for p in info.value.problems}


# -- art. 19: probation, at every boundary ------------------------------------------------------

PROBATION_CASES = [
    # (contract type, term months, longest allowed probation)
    (ContractType.FIXED_TERM, 1, 0),
    (ContractType.FIXED_TERM, 2, 0),
    (ContractType.FIXED_TERM, 3, 1),  # exactly 3 months: the first band
    (ContractType.FIXED_TERM, 11, 1),
    (ContractType.FIXED_TERM, 12, 2),  # exactly 1 year
    (ContractType.FIXED_TERM, 35, 2),
    (ContractType.FIXED_TERM, 36, 6),  # exactly 3 years
    (ContractType.FIXED_TERM, 60, 6),
    (ContractType.DISPATCH, 24, 2),
    (ContractType.OPEN_ENDED, None, 6),
    (ContractType.TASK_BASED, None, 0),
    (ContractType.TASK_BASED, 48, 0),
]


@pytest.mark.parametrize(("kind", "term", "limit"), PROBATION_CASES)
def test_probation_limits_of_article_19(kind: ContractType, term: int | None, limit: int) -> None:
    assert law.max_probation_months(kind, term) == limit
    law.check_probation(kind, term, limit)  # the cap itself is allowed
    law.check_probation(kind, term, 0)  # no probation is always allowed
    with pytest.raises(law.ProbationError) as info:
        law.check_probation(kind, term, limit + 1)
    assert info.value.rule == "劳动合同法第十九条"
    assert str(info.value).startswith("劳动合同法第十九条: ")
    assert info.value.code == ("probation.not_allowed" if limit == 0 else "probation.too_long")


@pytest.mark.parametrize(
    ("kind", "term", "probation", "message"),
    [
        (
            ContractType.FIXED_TERM,
            24,
            3,
            "劳动合同法第十九条: a 2-year contract allows at most 2 months of probation, got 3",
        ),
        (
            ContractType.FIXED_TERM,
            6,
            2,
            "劳动合同法第十九条: a 6-month contract allows at most 1 month of probation, got 2",
        ),
        (
            ContractType.FIXED_TERM,
            18,
            3,
            "劳动合同法第十九条: an 18-month contract allows at most 2 months of probation, got 3",
        ),
        (ContractType.FIXED_TERM, 2, 1, "劳动合同法第十九条: a 2-month contract allows no probation, got 1"),
        (
            ContractType.OPEN_ENDED,
            None,
            7,
            "劳动合同法第十九条: an open-ended contract (无固定期限) allows at most 6 months of probation, got 7",
        ),
        (
            ContractType.TASK_BASED,
            None,
            1,
            "劳动合同法第十九条: a task-based contract (以完成一定工作任务为期限) allows no probation, got 1",
        ),
    ],
)
def test_probation_errors_name_the_rule_and_the_band(
    kind: ContractType, term: int | None, probation: int, message: str
) -> None:
    with pytest.raises(law.ProbationError) as info:
        law.check_probation(kind, term, probation)
    assert str(info.value) == message


def test_one_probation_per_employer_and_employee() -> None:
    law.check_probation(ContractType.FIXED_TERM, 36, 0, earlier_probation=True)
    with pytest.raises(law.ProbationError) as info:
        law.check_probation(ContractType.FIXED_TERM, 36, 1, earlier_probation=True)
    assert info.value.code == "probation.repeated"


def test_probation_needs_a_labour_contract_and_a_term() -> None:
    with pytest.raises(law.ProbationError, match="not INTERNSHIP"):
        law.check_probation(ContractType.INTERNSHIP, 6, 1)
    with pytest.raises(law.ProbationError, match="needs its term"):
        law.check_probation(ContractType.FIXED_TERM, None, 1)
    law.check_probation(ContractType.INTERNSHIP, 6, 0)  # no probation: nothing to refuse


@pytest.mark.parametrize(
    ("start", "end", "months"),
    [
        (date(2025, 3, 1), date(2026, 2, 28), 12),
        (date(2025, 3, 1), date(2028, 2, 29), 36),
        (date(2025, 3, 15), date(2025, 6, 14), 3),
        (date(2025, 3, 15), date(2025, 6, 13), 2),  # a day short of 3 months
        (date(2025, 1, 31), date(2025, 2, 26), 0),
        (date(2025, 1, 31), date(2025, 2, 27), 1),  # no 31 February: the month ends with February
        (date(2025, 1, 31), date(2025, 2, 28), 1),
    ],
)
def test_term_in_whole_months(start: date, end: date, months: int) -> None:
    assert law.term_months_between(start, end) == months
    if months:
        assert law.term_end(start, months) <= end


def test_probation_pay_at_least_80_percent_and_never_printed() -> None:
    law.check_probation_pay(Decimal("20000"), Decimal("16000"))
    law.check_probation_pay(Decimal("20000"), None)
    with pytest.raises(law.ProbationPayError) as info:
        law.check_probation_pay(Decimal("20000"), Decimal("15999.99"))
    assert str(info.value) == "劳动合同法第二十条: probation pay is below 80% of the contract salary"
    assert "20000" not in str(info.value) and "15999" not in str(info.value)
    with pytest.raises(law.ProbationPayError, match="minimum wage"):
        law.check_probation_pay(Decimal("2000"), Decimal("1800"), minimum_wage=Decimal("2690"))


# -- the condition language ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "facts", "holds"),
    [
        ({"core_data_access": True}, {"core_data_access": True}, True),
        ({"core_data_access": True}, {"core_data_access": False}, False),
        ({"core_data_access": True}, {}, False),
        ({"core_data_access": True}, {"core_data_access": 1}, False),  # no True == 1
        ({"level": 7}, {"level": "7"}, True),  # numeric text from a CSV compares as a number
        ({"grade": ["P7", "P8"]}, {"grade": "P8"}, True),
        ({"grade": {"any_of": ["P7", "P8"]}}, {"grade": "P6"}, False),
        ({"grade": {"none_of": ["P7"]}}, {}, True),
        ({"grade": {"not_equals": "P7"}}, {"grade": "P6"}, True),
        ({"level": {"gte": 7}}, {"level": 7}, True),
        ({"level": {"gt": 7}}, {"level": 7}, False),
        ({"level": {"lt": 7, "gte": 3}}, {"level": 5}, True),
        ({"level": {"lte": 7}}, {"level": "unknown"}, False),
        ({"level": {"gte": 7}}, {}, False),
        ({"training_funded": {"truthy": True}}, {"training_funded": "是"}, True),
        ({"training_funded": {"truthy": True}}, {"training_funded": "否"}, False),
        ({"training_funded": {"truthy": False}}, {"training_funded": "false"}, True),
        ({"manager": {"present": True}}, {"manager": " "}, False),
        ({"job.level": {"gte": 7}}, {"job": {"level": 9}}, True),
        ({"job": {"level": {"gte": 7}}}, {"job": {"level": 6}}, False),  # TOML dotted key
        ({"any": [{"a": True}, {"b": True}]}, {"b": True}, True),
        ({"all": [{"a": True}, {"b": True}]}, {"b": True}, False),
        ({"not": {"a": True}}, {"a": False}, True),
        ({"a": True, "level": {"gte": 7}}, {"a": True, "level": 6}, False),  # fields in one table: all
    ],
)
def test_condition_language(when: dict[str, Any], facts: dict[str, Any], holds: bool) -> None:
    assert condition(when).holds(facts) is holds


def test_condition_descriptions_read_like_the_rule() -> None:
    assert (
        condition(CONFIDENTIALITY["when"]).describe()
        == "core_data_access = true or classified_project = true"
    )
    assert (
        condition({"level": {"gte": 7}, "grade": ["P7", "P8"]}).describe()
        == 'level >= 7 and grade in ["P7", "P8"]'
    )
    assert condition({"not": {"training_funded": {"truthy": True}}}).describe() == "not (training_funded)"


@pytest.mark.parametrize(
    ("when", "path", "fragment"),
    [
        ({"level": {"greater": 7}}, "contracts.clauses[0].when.level.greater", "unknown operator"),
        ({"level": {"gtee": 7}}, "contracts.clauses[0].when.level.gtee", "unknown operator"),
        ({"level": {"gte": 7, "max": 9}}, "contracts.clauses[0].when.level.max", "unknown operator"),
        ({"level": {"gte": "seven"}}, "contracts.clauses[0].when.level.gte", "must be a number"),
        ({"level": {"gte": True}}, "contracts.clauses[0].when.level.gte", "must be a number"),
        ({"grade": {"any_of": []}}, "contracts.clauses[0].when.grade.any_of", "non-empty list"),
        ({"flag": {"truthy": "yes"}}, "contracts.clauses[0].when.flag.truthy", "true or false"),
        ({"any": {"a": True}}, "contracts.clauses[0].when.any", "non-empty list"),
        ({"bad-name": True}, "contracts.clauses[0].when.bad-name", "not a field name"),
        ({}, "contracts.clauses[0].when", "non-empty table"),
    ],
)
def test_bad_conditions_are_refused_with_their_key(when: Any, path: str, fragment: str) -> None:
    problems = problems_of({"clauses": [{"name": "x", "text": "...", "when": when}]})
    assert path in problems, problems
    assert fragment in problems[path]


# -- rules and selection ------------------------------------------------------------------------


def test_core_data_access_gets_the_confidentiality_clause_and_others_do_not() -> None:
    config = contracts_config({"clauses": [CONFIDENTIALITY]})
    chosen = select_clauses(config, {"core_data_access": True})
    assert chosen.names == ["confidentiality"]
    clause = chosen.clauses[0]
    assert (
        clause.rule
        == "contracts.clauses[0] (confidentiality): core_data_access = true or classified_project = true"
    )
    assert clause.params["post_employment_months"] == 24
    assert select_clauses(config, {"classified_project": True}).names == ["confidentiality"]
    assert select_clauses(config, {"core_data_access": False}).names == []
    assert select_clauses(config, {}).names == []


def test_rules_run_in_order_and_the_first_rule_per_clause_wins() -> None:
    config = contracts_config(
        {
            "clauses": [
                {
                    "name": "confidentiality",
                    "when": {"classified_project": True},
                    "post_employment_months": "until_public",
                },
                CONFIDENTIALITY,
                {
                    "name": "non_compete",
                    "when": {"level": {"gte": 7}},
                    "term_months": 12,
                    "compensation_ratio": 0.5,
                },
                {"name": "handbook", "title": "员工手册", "text": "乙方已阅读员工手册。"},  # no when: always
            ]
        }
    )
    facts = {"classified_project": True, "core_data_access": True, "level": 8}
    first = select_clauses(config, facts)
    assert first.names == ["confidentiality", "non_compete", "handbook"]
    confidentiality = first.get("confidentiality")
    assert confidentiality is not None
    assert confidentiality.rule_index == 0 and confidentiality.also_matched == (1,)
    assert confidentiality.params["post_employment_months"] == "until_public"
    # deterministic: same rules and facts, same outcome and digest; facts in another order too
    again = select_clauses(config, dict(reversed(list(facts.items()))))
    assert again == first
    assert select_clauses(config, {"core_data_access": True}).get("confidentiality").rule_index == 1  # type: ignore[union-attr]


def test_rules_digest_follows_the_rules() -> None:
    one = contracts_config({"clauses": [CONFIDENTIALITY]})
    same = contracts_config({"clauses": [dict(CONFIDENTIALITY)]})
    longer = contracts_config({"clauses": [{**CONFIDENTIALITY, "post_employment_months": 36}]})
    assert one.rules_digest() == same.rules_digest() != longer.rules_digest()
    assert ContractsConfig().rules_digest() != one.rules_digest()


@pytest.mark.parametrize(
    ("rule", "path", "fragment"),
    [
        (
            {"name": "non_compete", "term_months": 36, "monthly_compensation": 5000},
            "term_months",
            "劳动合同法第二十四条",
        ),
        ({"name": "non_compete", "term_months": 12}, "monthly_compensation", "劳动合同法第二十三条"),
        (
            {
                "name": "non_compete",
                "term_months": 12,
                "monthly_compensation": 5000,
                "compensation_ratio": 0.3,
            },
            "monthly_compensation",
            "one of them",
        ),
        (
            {"name": "non_compete", "term_months": 12, "compensation_ratio": 0.2},
            "compensation_ratio",
            "below the floor of 30%",
        ),
        ({"name": "non_compete", "monthly_compensation": 5000}, "term_months", "required"),
        ({"name": "confidentiality"}, "post_employment_months", "required"),
        ({"name": "confidentiality", "post_employment_months": -1}, "post_employment_months", ">= 0"),
        ({"name": "service_period"}, "months", "required"),
        ({"name": "service_period", "months": 24, "liquidated_damages": -5}, "liquidated_damages", ">= 0"),
        (
            {"name": "service_period", "months": 24, "bonus": 1},
            "bonus",
            "unknown key for a service_period clause",
        ),
        ({"name": "x", "kind": "golden_parachute"}, "kind", "unknown kind"),
        ({"name": "x", "template": "../../etc/passwd"}, "template", "relative name"),
        ({"name": "9lives"}, "name", "clause name"),
    ],
)
def test_bad_rules_are_refused_with_their_key(rule: dict[str, Any], path: str, fragment: str) -> None:
    problems = problems_of({"clauses": [{"name": "ok", "text": "fine"}, rule]})
    key = f"contracts.clauses[1].{path}"
    assert key in problems, problems
    assert fragment in problems[key]


def test_top_level_keys_are_validated() -> None:
    problems = problems_of(
        {
            "non_compete_min_ratio": 1.5,
            "probation_pay_min_ratio": 0,
            "reminder_days": [30, -1],
            "templates_dir": "no/such/folder",
            "pdf_font": "fonts/simsun.ttc",
            "vendor_fields": {"乙方姓名": "employee_nickname"},
            "colour": "blue",
        }
    )
    assert set(problems) == {
        "contracts.non_compete_min_ratio",
        "contracts.probation_pay_min_ratio",
        "contracts.reminder_days",
        "contracts.templates_dir",
        "contracts.pdf_font",
        "contracts.vendor_fields.乙方姓名",
        "contracts.colour",
    }
    assert ".ttc" in problems["contracts.pdf_font"] and "not supported" in problems["contracts.pdf_font"]


def test_hub_toml_carries_the_contracts_table(write_project: Any, tmp_path: Path) -> None:
    (tmp_path / "my_templates").mkdir()
    path = write_project(
        """
        [contracts]
        templates_dir = "my_templates"
        reminder_days = [30, 60]
        non_compete_min_ratio = 0.4

        [[contracts.clauses]]
        name = "confidentiality"
        when = { any = [ { core_data_access = true }, { classified_project = true } ] }
        post_employment_months = 24

        [[contracts.clauses]]
        name = "non_compete"
        when = { job.level = { gte = 7 } }
        term_months = 24
        compensation_ratio = 0.4
        """
    )
    settings = load_settings(path, {})
    contracts = settings.contracts
    assert contracts.templates_dir == tmp_path / "my_templates"
    assert contracts.reminder_days == (60, 30)
    assert contracts.non_compete_min_ratio == Decimal("0.4")
    assert [r.name for r in contracts.clauses] == ["confidentiality", "non_compete"]
    assert select_clauses(contracts, {"job": {"level": 7}}).names == ["non_compete"]


def test_hub_toml_problems_name_the_key(write_project: Any) -> None:
    path = write_project(
        """
        [[contracts.clauses]]
        name = "non_compete"
        when = { job_level = { gte = 7 } }
        term_months = 30
        compensation_ratio = 0.3
        """
    )
    with pytest.raises(ConfigurationError) as info:
        load_settings(path, {})
    [problem] = info.value.problems
    assert problem.path == "contracts.clauses[0].term_months"
    assert problem.message == (
        "劳动合同法第二十四条: a non-compete lasts at most 2 years (24 months), got 30"
    )


# -- the chosen clauses' terms ---------------------------------------------------------------------


def test_non_compete_compensation_from_a_ratio_and_the_judicial_floor() -> None:
    config = contracts_config(
        {
            "clauses": [
                {"name": "non_compete", "term_months": 24, "compensation_ratio": 0.3},
            ]
        }
    )
    selection = select_clauses(config, {})
    [terms] = resolve_terms(selection, {}, monthly_salary=Decimal("30000"), config=config)
    assert terms.terms["monthly_compensation"] == Decimal("9000.00")
    # a rehire: the reference is the average wage of the last 12 months, when known
    [terms] = resolve_terms(
        selection, {"average_monthly_wage": "40,000"}, monthly_salary=Decimal("30000"), config=config
    )
    assert terms.terms["monthly_compensation"] == Decimal("12000.00")


def test_a_fixed_non_compete_compensation_below_the_floor_is_refused() -> None:
    config = contracts_config(
        {"clauses": [{"name": "non_compete", "term_months": 12, "monthly_compensation": 5000}]}
    )
    selection = select_clauses(config, {})
    resolve_terms(selection, {}, monthly_salary=Decimal("16000"), config=config)
    with pytest.raises(law.NonCompeteError) as info:
        resolve_terms(selection, {}, monthly_salary=Decimal("20000"), config=config)
    assert info.value.rule == law.JUDICIAL_36
    assert "below 30% of the average monthly wage" in str(info.value)
    assert "5000" not in str(info.value) and "20000" not in str(info.value)
    strict = contracts_config(
        {
            "minimum_monthly_wage": 2690,
            "clauses": [{"name": "non_compete", "term_months": 12, "monthly_compensation": 2000}],
        }
    )
    with pytest.raises(law.NonCompeteError, match="minimum wage"):
        resolve_terms(select_clauses(strict, {}), {}, monthly_salary=Decimal("5000"), config=strict)


def test_service_period_damages_are_capped_by_the_training_cost() -> None:
    config = contracts_config(
        {
            "clauses": [
                {
                    "name": "service_period",
                    "when": {"training_funded": True},
                    "months": 36,
                    "training_cost_field": "training.cost",
                }
            ]
        }
    )
    facts = {"training_funded": True, "training": {"cost": 36000}}
    selection = select_clauses(config, facts)
    [terms] = resolve_terms(selection, facts, monthly_salary=Decimal("20000"), config=config)
    assert terms.terms["liquidated_damages"] == Decimal("36000")
    assert terms.terms["monthly_amortisation"] == Decimal("1000.00")
    with pytest.raises(law.ServicePeriodError, match=r"'training\.cost'"):
        resolve_terms(selection, {"training_funded": True}, monthly_salary=Decimal("20000"), config=config)
    greedy = contracts_config(
        {"clauses": [{"name": "service_period", "months": 12, "liquidated_damages": 50000}]}
    )
    with pytest.raises(law.ServicePeriodError) as info:
        resolve_terms(
            select_clauses(greedy, {}), {"training_cost": 20000}, monthly_salary=Decimal("1"), config=greedy
        )
    assert info.value.rule == "劳动合同法第二十二条"


@pytest.mark.parametrize(
    ("served", "cap"),
    [(0, "36000.00"), (12, "24000.00"), (35, "1000.00"), (36, "0.00"), (40, "0.00"), (7, "29000.00")],
)
def test_unamortised_training_cost(served: int, cap: str) -> None:
    assert law.unamortised_training_cost(Decimal("36000"), 36, served) == Decimal(cap)
