"""Clause rules: which clauses a contract gets, chosen declaratively from the job's attributes.

``[[contracts.clauses]]`` tables in hub.toml each name a clause, its kind and parameters, and a
``when`` condition over the job/offer attributes (the *facts*)::

    [[contracts.clauses]]
    name = "confidentiality"
    when = { any = [ { core_data_access = true }, { classified_project = true } ] }
    post_employment_months = 24

The condition language is small on purpose: a field compared with ``equals`` (the shorthand
``field = value``), ``not_equals``, ``any_of`` (shorthand: a list), ``none_of``, ``truthy``,
``present``, ``gt``/``gte``/``lt``/``lte``; several fields in one table must all hold; ``any``,
``all`` and ``not`` combine tables. Rules run in file order and the first rule naming a clause
chooses it, so the outcome depends on the rules and the facts only. Every chosen clause carries
the rule that chose it, for the HR admin reading why a contract has a non-compete.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from enum import Enum
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any

from hub.contracts import law
from hub.errors import ConfigProblem, ConfigurationError

CLAUSE_KINDS = ("confidentiality", "non_compete", "service_period", "custom")
DEFAULT_TITLES = {
    "confidentiality": "保密条款",
    "non_compete": "竞业限制条款",
    "service_period": "服务期条款",
}
_KIND_KEYS: dict[str, frozenset[str]] = {
    "confidentiality": frozenset({"post_employment_months"}),
    "non_compete": frozenset({"term_months", "monthly_compensation", "compensation_ratio"}),
    "service_period": frozenset({"months", "training_cost_field", "liquidated_damages"}),
    "custom": frozenset({"text", "params"}),
}
_COMMON_KEYS = frozenset({"name", "kind", "title", "when", "template"})
CONTRACTS_KEYS = frozenset(
    {
        "clauses",
        "templates_dir",
        "pdf_font",
        "pdf_fallback_fonts",
        "non_compete_min_ratio",
        "probation_pay_min_ratio",
        "minimum_monthly_wage",
        "reminder_days",
        "vendor_fields",
    }
)
#: Fields of a generated document, for e-contract vendors filling their own templates
#: (``[contracts.vendor_fields]`` maps the vendor's field keys to these).
VENDOR_FIELD_NAMES = (
    "employer",
    "employer_address",
    "employer_representative",
    "employee_name",
    "employee_id_number",
    "employee_address",
    "job_title",
    "department",
    "work_location",
    "duties",
    "contract_number",
    "contract_type",
    "term_months",
    "start_date",
    "end_date",
    "probation_months",
    "probation_end_date",
    "monthly_salary",
    "probation_salary",
    "currency",
    "pay_day",
    "working_hours",
    "benefits",
    "clauses",
    "confidentiality_post_employment_months",
    "non_compete_term_months",
    "non_compete_monthly_compensation",
    "service_period_months",
    "training_cost",
    "liquidated_damages_cap",
    "document_date",
    "clause_set_version",
)
#: ``confidentiality.post_employment_months`` may be this instead of a number of months.
UNTIL_PUBLIC = "until_public"
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_PATH_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_FALSE_WORDS = frozenset({"", "false", "0", "no", "n", "off", "否", "无"})


# -- the condition language --------------------------------------------------------------------


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING = _Missing()


def lookup(facts: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` in nested mappings, or :data:`MISSING`."""
    if path in facts:
        return facts[path]
    current: Any = facts
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return MISSING
        current = current[part]
    return current


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def as_number(value: Any) -> Decimal | None:
    """``value`` as a Decimal if it is a number or a numeric string (``"20,000"``); else None."""
    value = _plain(value)
    if isinstance(value, bool) or value is None or value is MISSING:
        return None
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value))
    if isinstance(value, str):
        try:
            number = Decimal(value.strip().replace(",", ""))
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def is_truthy(value: Any) -> bool:
    """Truthiness as HR data means it: ``"false"``, ``"no"``, ``"否"``, ``"0"`` are false too."""
    value = _plain(value)
    if value is MISSING or value is None:
        return False
    if isinstance(value, str):
        return value.strip().lower() not in _FALSE_WORDS
    return bool(value)


def same(fact: Any, operand: Any) -> bool:
    """Equality without Python's ``True == 1``: booleans equal booleans, numbers compare as numbers."""
    fact = _plain(fact)
    if fact is MISSING:
        return False
    if isinstance(operand, bool) or isinstance(fact, bool):
        return isinstance(fact, bool) and isinstance(operand, bool) and fact is operand
    if isinstance(operand, int | float | Decimal):
        number = as_number(fact)
        return number is not None and number == Decimal(str(operand))
    return isinstance(fact, str) and fact == operand


def show(value: Any) -> str:
    """A rule's operand as written in hub.toml (``true``, ``7``, ``"P7"``, ``["a", "b"]``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


class Condition:
    """A node of a parsed ``when`` table."""

    def holds(self, facts: Mapping[str, Any]) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


def _compare(op: str) -> Callable[[Decimal, Decimal], bool]:
    return {
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
    }[op]


_OP_SYMBOLS = {
    "equals": "=",
    "not_equals": "!=",
    "any_of": "in",
    "none_of": "not in",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
}
OPERATORS = (*_OP_SYMBOLS, "truthy", "present")


@dataclass(frozen=True)
class FieldTest(Condition):
    """One field against one operator: ``level >= 7``, ``grade in ["P7", "P8"]``."""

    path: str
    op: str
    operand: Any

    def holds(self, facts: Mapping[str, Any]) -> bool:
        value = lookup(facts, self.path)
        op, operand = self.op, self.operand
        if op == "equals":
            return same(value, operand)
        if op == "not_equals":
            return not same(value, operand)
        if op == "any_of":
            return any(same(value, o) for o in operand)
        if op == "none_of":
            return not any(same(value, o) for o in operand)
        if op == "truthy":
            return is_truthy(value) is operand
        if op == "present":
            present = (
                value is not MISSING
                and value is not None
                and not (isinstance(value, str) and not value.strip())
            )
            return present is operand
        number = as_number(value)
        return number is not None and _compare(op)(number, Decimal(str(operand)))

    def describe(self) -> str:
        if self.op == "truthy":
            return self.path if self.operand else f"not {self.path}"
        if self.op == "present":
            return f"{self.path} present" if self.operand else f"{self.path} absent"
        return f"{self.path} {_OP_SYMBOLS[self.op]} {show(self.operand)}"


@dataclass(frozen=True)
class AllOf(Condition):
    items: tuple[Condition, ...]

    def holds(self, facts: Mapping[str, Any]) -> bool:
        return all(item.holds(facts) for item in self.items)

    def describe(self) -> str:
        return " and ".join(
            f"({item.describe()})" if isinstance(item, AnyOf) else item.describe() for item in self.items
        )


@dataclass(frozen=True)
class AnyOf(Condition):
    items: tuple[Condition, ...]

    def holds(self, facts: Mapping[str, Any]) -> bool:
        return any(item.holds(facts) for item in self.items)

    def describe(self) -> str:
        return " or ".join(
            f"({item.describe()})" if isinstance(item, AllOf) else item.describe() for item in self.items
        )


@dataclass(frozen=True)
class Not(Condition):
    item: Condition

    def holds(self, facts: Mapping[str, Any]) -> bool:
        return not self.item.holds(facts)

    def describe(self) -> str:
        return f"not ({self.item.describe()})"


#: Operator names people reach for that the language spells otherwise.
_OPERATOR_LOOKALIKES = frozenset(
    {
        "eq",
        "ne",
        "neq",
        "in",
        "not_in",
        "ge",
        "le",
        "greater",
        "greater_than",
        "less",
        "less_than",
        "at_least",
        "at_most",
        "contains",
        "is",
        "equal",
        "equal_to",
        "min",
        "max",
        "between",
        "any",
        "all",
    }
)


def _looks_like_operator(key: str) -> bool:
    """A misspelt operator would otherwise read as a nested field that never exists."""
    return key in _OPERATOR_LOOKALIKES or bool(difflib.get_close_matches(key, OPERATORS, n=1, cutoff=0.8))


def _scalar(value: Any) -> bool:
    return isinstance(value, str | bool | int | float) and not (isinstance(value, float) and value != value)


def _parse_operator(
    path: str, op: str, operand: Any, where: str, problems: list[ConfigProblem]
) -> Condition | None:
    if op in ("equals", "not_equals"):
        if not _scalar(operand):
            problems.append(ConfigProblem(where, "must be a string, number or true/false"))
            return None
    elif op in ("any_of", "none_of"):
        if not isinstance(operand, list) or not operand or not all(_scalar(o) for o in operand):
            problems.append(
                ConfigProblem(where, "must be a non-empty list of strings, numbers or true/false")
            )
            return None
        operand = tuple(operand)
    elif op in ("truthy", "present"):
        if not isinstance(operand, bool):
            problems.append(ConfigProblem(where, "must be true or false"))
            return None
    elif isinstance(operand, bool) or not isinstance(operand, int | float):
        problems.append(ConfigProblem(where, "must be a number"))
        return None
    return FieldTest(path, op, operand)


def _parse_field(path: str, value: Any, where: str, problems: list[ConfigProblem]) -> list[Condition]:
    if not _PATH_RE.match(path):
        problems.append(ConfigProblem(where, "is not a field name (letters, digits, '_', dotted paths)"))
        return []
    if isinstance(value, Mapping):
        ops = [k for k in value if k in OPERATORS]
        if ops and len(ops) != len(value):
            others = sorted(set(value) - set(ops))
            problems.append(
                ConfigProblem(f"{where}.{others[0]}", f"unknown operator (known: {', '.join(OPERATORS)})")
            )
            return []
        if not ops:  # a TOML dotted key: { job.level = 7 } arrives as { job = { level = 7 } }
            if not value:
                problems.append(ConfigProblem(where, "empty condition"))
            out: list[Condition] = []
            for key, inner in value.items():
                if _looks_like_operator(str(key)) and not isinstance(inner, Mapping):
                    problems.append(
                        ConfigProblem(
                            f"{where}.{key}",
                            f"unknown operator (known: {', '.join(OPERATORS)}); "
                            f'a nested field is written quoted: "{path}.{key}"',
                        )
                    )
                    continue
                out += _parse_field(f"{path}.{key}", inner, f"{where}.{key}", problems)
            return out
        tests = [_parse_operator(path, op, value[op], f"{where}.{op}", problems) for op in ops]
        return [t for t in tests if t is not None]
    if isinstance(value, list):
        test = _parse_operator(path, "any_of", value, where, problems)
    else:
        test = _parse_operator(path, "equals", value, where, problems)
    return [test] if test is not None else []


def parse_condition(value: Any, where: str, problems: list[ConfigProblem]) -> Condition | None:
    """A ``when`` table as a :class:`Condition`; problems are reported with their TOML path."""
    if not isinstance(value, Mapping) or not value:
        problems.append(
            ConfigProblem(where, "must be a non-empty table of conditions, e.g. { core_data_access = true }")
        )
        return None
    items: list[Condition] = []
    for key, operand in value.items():
        here = f"{where}.{key}"
        if key in ("any", "all"):
            if not isinstance(operand, list) or not operand:
                problems.append(ConfigProblem(here, "must be a non-empty list of condition tables"))
                continue
            parts = [parse_condition(item, f"{here}[{i}]", problems) for i, item in enumerate(operand)]
            kept = tuple(p for p in parts if p is not None)
            if len(kept) == len(parts):
                items.append(AnyOf(kept) if key == "any" else AllOf(kept))
        elif key == "not":
            inner = parse_condition(operand, here, problems)
            if inner is not None:
                items.append(Not(inner))
        else:
            items += _parse_field(str(key), operand, here, problems)
    if not items:
        return None
    return items[0] if len(items) == 1 else AllOf(tuple(items))


def condition(value: Mapping[str, Any], where: str = "when") -> Condition:
    """Parse a ``when`` table, raising :class:`ConfigurationError` on any problem (for callers and tests)."""
    problems: list[ConfigProblem] = []
    parsed = parse_condition(value, where, problems)
    if problems or parsed is None:
        raise ConfigurationError(problems or [ConfigProblem(where, "empty condition")])
    return parsed


# -- rules and the [contracts] table -----------------------------------------------------------


@dataclass(frozen=True)
class ClauseRule:
    """One ``[[contracts.clauses]]`` table, validated."""

    index: int
    name: str
    kind: str
    title: str
    template: str
    when: Condition | None
    params: Mapping[str, Any]
    #: the table as written, for the clause-set version
    raw: Mapping[str, Any]

    @property
    def where(self) -> str:
        return f"contracts.clauses[{self.index}]"

    def describe(self) -> str:
        """``contracts.clauses[0] (confidentiality): core_data_access or classified_project``."""
        return f"{self.where} ({self.name}): {self.when.describe() if self.when else 'always'}"


@dataclass(frozen=True)
class ContractsConfig:
    """The validated ``[contracts]`` table."""

    clauses: tuple[ClauseRule, ...] = ()
    #: project templates, searched before the built-in ones (same names override them)
    templates_dir: Path | None = None
    #: a TTF/OTF font with CJK glyphs: without one, documents are HTML only
    pdf_font: Path | None = None
    #: fonts for glyphs the main font lacks (Droid Sans Fallback has no Latin digits)
    pdf_fallback_fonts: tuple[Path, ...] = ()
    non_compete_min_ratio: Decimal = law.DEFAULT_NON_COMPETE_MIN_RATIO
    probation_pay_min_ratio: Decimal = law.DEFAULT_PROBATION_PAY_MIN_RATIO
    #: the local monthly minimum wage (最低工资标准), checked against probation and non-compete pay
    minimum_monthly_wage: Decimal | None = None
    #: days before a contract's end at which reminders are due, e.g. (60, 30)
    reminder_days: tuple[int, ...] = (30,)
    #: e-contract vendor template field -> hub document field
    vendor_fields: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def rules_payload(self) -> dict[str, Any]:
        """Everything that decides which clauses are chosen and how they are checked, as plain JSON.

        :meth:`rules_digest` hashes exactly this, so a recorded copy can be checked against it.
        """
        payload = {
            "clauses": [dict(rule.raw) for rule in self.clauses],
            "non_compete_min_ratio": str(self.non_compete_min_ratio),
            "probation_pay_min_ratio": str(self.probation_pay_min_ratio),
            "minimum_monthly_wage": None
            if self.minimum_monthly_wage is None
            else str(self.minimum_monthly_wage),
        }
        result: dict[str, Any] = json.loads(json.dumps(payload, ensure_ascii=False, default=str))
        return result

    def rules_digest(self) -> str:
        """SHA-256 of everything that decides which clauses are chosen and how they are checked."""
        text = json.dumps(self.rules_payload(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def _money(
    value: Any, where: str, problems: list[ConfigProblem], *, allow_zero: bool = False
) -> Decimal | None:
    number = None if isinstance(value, bool) or not isinstance(value, int | float) else Decimal(str(value))
    if number is None or number < 0 or (number == 0 and not allow_zero):
        problems.append(
            ConfigProblem(where, "must be a positive number" if not allow_zero else "must be a number >= 0")
        )
        return None
    return number


def _ratio(value: Any, where: str, problems: list[ConfigProblem]) -> Decimal | None:
    number = None if isinstance(value, bool) or not isinstance(value, int | float) else Decimal(str(value))
    if number is None or not 0 < number <= 1:
        problems.append(ConfigProblem(where, "must be a ratio above 0 and at most 1 (0.3 for 30%)"))
        return None
    return number


def _months_value(value: Any, where: str, problems: list[ConfigProblem], *, minimum: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        problems.append(ConfigProblem(where, f"must be a whole number of months >= {minimum}"))
        return None
    return value


def _template_name(value: Any, where: str, problems: list[ConfigProblem]) -> str | None:
    if not isinstance(value, str) or not value.strip():
        problems.append(ConfigProblem(where, "must be a template name, e.g. clauses/custom.html.j2"))
        return None
    path = PurePosixPath(value.strip())
    if path.is_absolute() or ".." in path.parts or "\\" in value:
        problems.append(ConfigProblem(where, "must be a relative name inside the templates folder"))
        return None
    return path.as_posix()


def _rule_params(
    kind: str, table: Mapping[str, Any], where: str, problems: list[ConfigProblem], min_ratio: Decimal
) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if kind == "confidentiality":
        term = table.get("post_employment_months")
        if term == UNTIL_PUBLIC:
            params["post_employment_months"] = UNTIL_PUBLIC
        elif term is None:
            problems.append(
                ConfigProblem(
                    f"{where}.post_employment_months",
                    f'required: months the duty lasts after employment (0 for none, or "{UNTIL_PUBLIC}")',
                )
            )
        else:
            params["post_employment_months"] = _months_value(
                term, f"{where}.post_employment_months", problems, minimum=0
            )
    elif kind == "non_compete":
        term = table.get("term_months")
        if term is None:
            problems.append(
                ConfigProblem(f"{where}.term_months", "required: the non-compete's length in months")
            )
        elif isinstance(term, bool) or not isinstance(term, int):
            problems.append(ConfigProblem(f"{where}.term_months", "must be a whole number of months"))
        else:
            try:
                law.check_non_compete_term(term)
                params["term_months"] = term
            except law.ContractRuleError as exc:
                problems.append(ConfigProblem(f"{where}.term_months", str(exc)))
        fixed, ratio = table.get("monthly_compensation"), table.get("compensation_ratio")
        if (fixed is None) == (ratio is None):
            problems.append(
                ConfigProblem(
                    f"{where}.monthly_compensation",
                    f"{law.ART_23}: a non-compete must set its monthly compensation: "
                    "monthly_compensation (an amount) or compensation_ratio (of the monthly wage), one of them",
                )
            )
        elif fixed is not None:
            params["monthly_compensation"] = _money(fixed, f"{where}.monthly_compensation", problems)
        else:
            parsed = _ratio(ratio, f"{where}.compensation_ratio", problems)
            if parsed is not None and parsed < min_ratio:
                problems.append(
                    ConfigProblem(
                        f"{where}.compensation_ratio",
                        f"{law.JUDICIAL_36}: {law.percent(parsed)} is below the floor of "
                        f"{law.percent(min_ratio)} of the average monthly wage (contracts.non_compete_min_ratio)",
                    )
                )
            params["compensation_ratio"] = parsed
    elif kind == "service_period":
        months = table.get("months")
        if months is None:
            problems.append(ConfigProblem(f"{where}.months", "required: the service period in months"))
        else:
            params["months"] = _months_value(months, f"{where}.months", problems, minimum=1)
        cost_field = table.get("training_cost_field", "training_cost")
        if not isinstance(cost_field, str) or not _PATH_RE.match(cost_field):
            problems.append(ConfigProblem(f"{where}.training_cost_field", "must be a field name"))
        params["training_cost_field"] = cost_field
        if "liquidated_damages" in table:
            params["liquidated_damages"] = _money(
                table["liquidated_damages"], f"{where}.liquidated_damages", problems, allow_zero=True
            )
    else:
        text = table.get("text", "")
        if not isinstance(text, str):
            problems.append(ConfigProblem(f"{where}.text", "must be a string"))
        extra = table.get("params", {})
        if not isinstance(extra, Mapping):
            problems.append(ConfigProblem(f"{where}.params", "must be a table"))
            extra = {}
        params["text"] = text if isinstance(text, str) else ""
        params["params"] = MappingProxyType(dict(extra))
    return params


def parse_rule(
    index: int,
    table: Any,
    problems: list[ConfigProblem],
    *,
    min_ratio: Decimal = law.DEFAULT_NON_COMPETE_MIN_RATIO,
) -> ClauseRule | None:
    """One ``[[contracts.clauses]]`` table; problems go to ``problems`` with their TOML path."""
    where = f"contracts.clauses[{index}]"
    if not isinstance(table, Mapping):
        problems.append(ConfigProblem(where, "must be a table with name, when and the clause's terms"))
        return None
    before = len(problems)
    name = table.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        problems.append(ConfigProblem(f"{where}.name", "required: a clause name (letters, digits, '_', '-')"))
        name = None
    kind = table.get("kind", name if name in CLAUSE_KINDS else "custom")
    if kind not in CLAUSE_KINDS:
        problems.append(
            ConfigProblem(f"{where}.kind", f"unknown kind {kind!r} (known: {', '.join(CLAUSE_KINDS)})")
        )
        return None
    known = _COMMON_KEYS | _KIND_KEYS[kind]
    for key in sorted(set(table) - known):
        problems.append(
            ConfigProblem(
                f"{where}.{key}", f"unknown key for a {kind} clause (known: {', '.join(sorted(known))})"
            )
        )
    title = table.get("title", DEFAULT_TITLES.get(kind, name))
    if not isinstance(title, str) or not title.strip():
        problems.append(ConfigProblem(f"{where}.title", "must be a non-empty string"))
    when = parse_condition(table["when"], f"{where}.when", problems) if "when" in table else None
    template = _template_name(table.get("template", f"clauses/{kind}.html.j2"), f"{where}.template", problems)
    params = _rule_params(kind, table, where, problems, min_ratio)
    if len(problems) > before or name is None or template is None:
        return None
    return ClauseRule(
        index=index,
        name=name,
        kind=kind,
        title=str(title).strip(),
        template=template,
        when=when,
        params=MappingProxyType(params),
        raw=MappingProxyType(dict(table)),
    )


def contracts_config_from(table: Any, base: Path, problems: list[ConfigProblem]) -> ContractsConfig:
    """The ``[contracts]`` table of hub.toml (paths relative to it), problems named by key."""
    if table is None:
        return ContractsConfig()
    if not isinstance(table, Mapping):
        problems.append(ConfigProblem("contracts", "must be a table"))
        return ContractsConfig()
    for key in sorted(set(table) - CONTRACTS_KEYS):
        problems.append(
            ConfigProblem(f"contracts.{key}", f"unknown key (known: {', '.join(sorted(CONTRACTS_KEYS))})")
        )
    settings: dict[str, Any] = {}
    for key in ("non_compete_min_ratio", "probation_pay_min_ratio"):
        if key in table:
            value = _ratio(table[key], f"contracts.{key}", problems)
            if value is not None:
                settings[key] = value
    if "minimum_monthly_wage" in table:
        settings["minimum_monthly_wage"] = _money(
            table["minimum_monthly_wage"], "contracts.minimum_monthly_wage", problems
        )
    if "templates_dir" in table:
        value = table["templates_dir"]
        folder = base / str(value) if isinstance(value, str) and value else None
        if folder is None or not folder.is_dir():
            problems.append(ConfigProblem("contracts.templates_dir", f"directory not found: {value}"))
        else:
            settings["templates_dir"] = folder
    if "pdf_font" in table:
        font = _font_path(table["pdf_font"], base, "contracts.pdf_font", problems)
        if font is not None:
            settings["pdf_font"] = font
    if "pdf_fallback_fonts" in table:
        value = table["pdf_fallback_fonts"]
        if not isinstance(value, list):
            problems.append(ConfigProblem("contracts.pdf_fallback_fonts", "must be a list of font files"))
        else:
            fonts = [
                _font_path(v, base, f"contracts.pdf_fallback_fonts[{i}]", problems)
                for i, v in enumerate(value)
            ]
            settings["pdf_fallback_fonts"] = tuple(f for f in fonts if f is not None)
    if "reminder_days" in table:
        days = table["reminder_days"]
        if isinstance(days, int) and not isinstance(days, bool):
            days = [days]
        if (
            not isinstance(days, list)
            or not days
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in days)
        ):
            problems.append(
                ConfigProblem(
                    "contracts.reminder_days", "must be a list of days before the end, e.g. [60, 30]"
                )
            )
        else:
            settings["reminder_days"] = tuple(sorted(set(days), reverse=True))
    if "vendor_fields" in table:
        settings["vendor_fields"] = _vendor_fields(table["vendor_fields"], problems)
    rules_raw = table.get("clauses", [])
    if not isinstance(rules_raw, list):
        problems.append(
            ConfigProblem("contracts.clauses", "must be an array of tables ([[contracts.clauses]])")
        )
        rules_raw = []
    min_ratio = settings.get("non_compete_min_ratio", law.DEFAULT_NON_COMPETE_MIN_RATIO)
    rules = [parse_rule(i, t, problems, min_ratio=min_ratio) for i, t in enumerate(rules_raw)]
    return ContractsConfig(clauses=tuple(r for r in rules if r is not None), **settings)


def _font_path(value: Any, base: Path, where: str, problems: list[ConfigProblem]) -> Path | None:
    if not isinstance(value, str) or not value:
        problems.append(ConfigProblem(where, "must be the path of a .ttf or .otf font file"))
        return None
    path = Path(value).expanduser()
    path = path if path.is_absolute() else base / path
    if path.suffix.lower() not in (".ttf", ".otf"):
        problems.append(
            ConfigProblem(where, "must be a .ttf or .otf font file (collections, .ttc, are not supported)")
        )
        return None
    if not path.is_file():
        problems.append(ConfigProblem(where, f"font file not found: {value}"))
        return None
    return path


def _vendor_fields(value: Any, problems: list[ConfigProblem]) -> Mapping[str, str]:
    if not isinstance(value, Mapping):
        problems.append(
            ConfigProblem("contracts.vendor_fields", "must be a table of vendor field = hub field")
        )
        return MappingProxyType({})
    out: dict[str, str] = {}
    for vendor_key, ours in value.items():
        if not isinstance(ours, str) or ours not in VENDOR_FIELD_NAMES:
            problems.append(
                ConfigProblem(
                    f"contracts.vendor_fields.{vendor_key}",
                    f"unknown document field (known: {', '.join(VENDOR_FIELD_NAMES)})",
                )
            )
            continue
        out[str(vendor_key)] = ours
    return MappingProxyType(out)


def contracts_config(table: Mapping[str, Any] | None, base: Path = Path()) -> ContractsConfig:
    """Parse a ``[contracts]`` table, raising :class:`ConfigurationError` on any problem."""
    problems: list[ConfigProblem] = []
    config = contracts_config_from(table, base, problems)
    if problems:
        raise ConfigurationError(problems, "[contracts]")
    return config


# -- selection ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChosenClause:
    """A clause chosen for a contract, with the rule that chose it."""

    name: str
    kind: str
    title: str
    template: str
    params: Mapping[str, Any]
    rule_index: int
    #: the rule, located and described: ``contracts.clauses[0] (confidentiality): core_data_access``
    rule: str
    #: later rules that matched the same clause name (the first one wins)
    also_matched: tuple[int, ...] = ()


@dataclass(frozen=True)
class ClauseSelection:
    clauses: tuple[ChosenClause, ...]
    rules_digest: str

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.clauses]

    def get(self, name: str) -> ChosenClause | None:
        return next((c for c in self.clauses if c.name == name), None)


def select_clauses(config: ContractsConfig, facts: Mapping[str, Any]) -> ClauseSelection:
    """The clauses whose rules hold for ``facts``, in rule order; the first rule per clause name wins."""
    chosen: dict[str, ChosenClause] = {}
    for rule in config.clauses:
        if rule.when is not None and not rule.when.holds(facts):
            continue
        first = chosen.get(rule.name)
        if first is not None:
            chosen[rule.name] = replace(first, also_matched=(*first.also_matched, rule.index))
            continue
        chosen[rule.name] = ChosenClause(
            name=rule.name,
            kind=rule.kind,
            title=rule.title,
            template=rule.template,
            params=rule.params,
            rule_index=rule.index,
            rule=rule.describe(),
        )
    return ClauseSelection(tuple(chosen.values()), config.rules_digest())


# -- terms of the chosen clauses, checked against the law ------------------------------------------


@dataclass(frozen=True)
class ClauseTerms:
    """A chosen clause with its amounts worked out for one person: what the template renders."""

    clause: ChosenClause
    terms: Mapping[str, Any]

    @property
    def name(self) -> str:
        return self.clause.name

    @property
    def kind(self) -> str:
        return self.clause.kind

    @property
    def title(self) -> str:
        return self.clause.title

    @property
    def template(self) -> str:
        return self.clause.template


def resolve_terms(
    selection: ClauseSelection | Sequence[ChosenClause],
    facts: Mapping[str, Any],
    *,
    monthly_salary: Decimal,
    config: ContractsConfig,
) -> list[ClauseTerms]:
    """Work out each clause's amounts for this person and check them; refuse what the law refuses.

    The non-compete compensation's reference wage is ``average_monthly_wage`` from the facts when
    given (a rehire), else the offered monthly salary. The service period's training cost comes
    from the fact its rule names (``training_cost`` by default).
    """
    clauses = selection.clauses if isinstance(selection, ClauseSelection) else tuple(selection)
    out: list[ClauseTerms] = []
    for clause in clauses:
        p = clause.params
        terms: dict[str, Any]
        if clause.kind == "non_compete":
            reference = as_number(lookup(facts, "average_monthly_wage")) or monthly_salary
            if p.get("compensation_ratio") is not None:
                compensation = (reference * p["compensation_ratio"]).quantize(Decimal("0.01"))
            else:
                compensation = p.get("monthly_compensation")
            law.check_non_compete_term(int(p["term_months"]))
            law.check_non_compete_pay(
                compensation,
                reference,
                min_ratio=config.non_compete_min_ratio,
                minimum_wage=config.minimum_monthly_wage,
            )
            terms = {
                "term_months": p["term_months"],
                "monthly_compensation": compensation,
                "compensation_ratio": p.get("compensation_ratio"),
            }
        elif clause.kind == "service_period":
            field_name = str(p["training_cost_field"])
            cost = as_number(lookup(facts, field_name))
            if cost is None or cost <= 0:
                raise law.ServicePeriodError(
                    law.ART_22,
                    "service_period.no_training_cost",
                    f"the service period needs the employer-funded training cost in attribute {field_name!r}",
                )
            damages = p.get("liquidated_damages")
            damages = cost if damages is None else damages
            months = int(p["months"])
            law.check_service_period(months, cost, damages)
            terms = {
                "months": months,
                "training_cost": cost,
                "liquidated_damages": damages,
                "monthly_amortisation": (cost / months).quantize(Decimal("0.01")),
            }
        else:
            terms = dict(p)
        out.append(ClauseTerms(clause, MappingProxyType(terms)))
    return out
