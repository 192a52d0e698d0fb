"""Value transforms: the built-ins, their registration, and bulk results equal to one-by-one results."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from faker import Faker

from hub.errors import PluginError
from hub.plugins import load_plugins
from hub.project import collect_transforms
from hub.transforms import (
    BUILTIN_TRANSFORMS,
    Outcome,
    Transform,
    TransformContext,
    TransformError,
    TransformParamError,
    per_row,
)
from hub.transforms.ids import USCC_CHARS, check_digit
from hub.transforms.phone import parse_phone

TRANSFORMS = {t.name: t for t in BUILTIN_TRANSFORMS}
NAMES = {
    "trim", "nfkc", "upper", "lower", "split_name", "email", "regex", "prefix", "strip_prefix",
    "date", "datetime", "integer", "decimal", "money", "boolean", "enum", "lookup",
    "id_number", "id_birth_date", "id_gender", "uscc", "phone",
}  # fmt: skip
SAMPLE_ID = "11010519491231002X"  # GB 11643's own example: Beijing Chaoyang, 1949-12-31, female
SAMPLE_USCC = "91350100M000100Y43"


def plain(value: Any) -> Any:
    """A result value with every kind of null as None, for comparing."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def run(
    name: str,
    values: list[Any] | pd.Series,
    params: Mapping[str, Any] | None = None,
    frame: pd.DataFrame | None = None,
    lookups: Mapping[str, Mapping[str, Any]] | None = None,
) -> Outcome:
    series = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
    ctx = TransformContext(
        frame=frame if frame is not None else pd.DataFrame(index=series.index), lookups=lookups or {}
    )
    result = TRANSFORMS[name].apply(series, params or {}, ctx)
    assert result.values.index.equals(series.index)
    for extra in (result.errors, result.warnings):
        assert extra is None or extra.index.equals(series.index)
    return result


def values_of(outcome: Outcome) -> list[Any]:
    return [plain(v) for v in outcome.values.tolist()]


def errors_of(outcome: Outcome) -> list[str | None]:
    n = len(outcome.values)
    return [None] * n if outcome.errors is None else [plain(e) for e in outcome.errors.tolist()]


def warnings_of(outcome: Outcome) -> list[str | None]:
    n = len(outcome.values)
    return [None] * n if outcome.warnings is None else [plain(w) for w in outcome.warnings.tolist()]


def accepted(name: str, value: Any, params: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
    outcome = run(name, [value], params, **kwargs)
    assert errors_of(outcome) == [None], errors_of(outcome)
    return values_of(outcome)[0]


def rejected(name: str, value: Any, params: Mapping[str, Any] | None = None) -> str:
    outcome = run(name, [value], params)
    [reason] = errors_of(outcome)
    assert reason is not None, f"{name} let a wrong value through: {values_of(outcome)}"
    assert values_of(outcome) == [None]
    return reason


@pytest.fixture(scope="module")
def faker_ids() -> list[str]:
    fake = Faker("zh_CN")
    fake.seed_instance(11643)
    return [fake.ssn() for _ in range(10_000)]


# -- resident ID numbers ------------------------------------------------------------------------


def test_id_number_accepts_faker_numbers_and_the_standard_example(faker_ids: list[str]) -> None:
    outcome = run("id_number", [*faker_ids, SAMPLE_ID, SAMPLE_ID.lower()])
    assert errors_of(outcome) == [None] * (len(faker_ids) + 2)
    assert values_of(outcome) == [*faker_ids, SAMPLE_ID, SAMPLE_ID]
    assert outcome.warnings is None  # Faker's region codes are real ones


def mutations(number: str) -> list[str]:
    """Every number that differs from ``number`` in one position by one digit (or X at the end)."""
    out = []
    for i, current in enumerate(number):
        for other in "0123456789" + ("X" if i == 17 else ""):
            if other != current:
                out.append(number[:i] + other + number[i + 1 :])
    return out


def test_id_number_rejects_every_single_digit_mutation(faker_ids: list[str]) -> None:
    originals = [SAMPLE_ID, *faker_ids[:200]]
    mutated = [m for number in originals for m in mutations(number)]
    assert len(mutated) == 201 * (17 * 9 + 10)
    outcome = run("id_number", mutated)
    errors = errors_of(outcome)
    assert all(errors), [m for m, e in zip(mutated, errors, strict=True) if not e][:5]
    assert values_of(outcome) == [None] * len(mutated)
    assert set(errors) <= {
        "id_number: check digit does not match",
        "id_number: birth date is not a real date",
    }


def test_id_number_check_digit_and_worked_examples() -> None:
    assert check_digit(SAMPLE_ID[:17]) == "X"
    assert check_digit("44052418800101001") == "4"
    assert rejected("id_number", "440524188001010014") == "id_number: birth date is before 1900"
    assert accepted("id_number", "34052419800101001X") == "34052419800101001X"
    assert rejected("id_number", "110105194912310021") == "id_number: check digit does not match"


def test_id_number_normalises_width_case_and_spaces() -> None:
    full_width = "１１０１０５１９４９１２３１００２ｘ"
    assert accepted("id_number", full_width) == SAMPLE_ID
    assert accepted("id_number", f" {SAMPLE_ID[:6]} {SAMPLE_ID[6:14]} {SAMPLE_ID[14:].lower()} ") == SAMPLE_ID


def test_id_number_upgrades_15_digit_numbers() -> None:
    assert accepted("id_number", "110105491231002") == SAMPLE_ID
    assert accepted("id_birth_date", "110105491231002") == dt.date(1949, 12, 31)


def test_id_number_shape_date_and_number_errors() -> None:
    assert rejected("id_number", "1101051949123100") == "id_number: must be 18 characters (or 15 digits)"
    assert rejected("id_number", "11010519491231002Y") == "id_number: only digits and a final X are allowed"
    body = "11010520230230001"  # 30 February
    assert rejected("id_number", body + check_digit(body)) == "id_number: birth date is not a real date"
    future = (dt.date.today() + dt.timedelta(days=400)).strftime("%Y%m%d")
    body = "110105" + future + "001"
    assert rejected("id_number", body + check_digit(body)) == "id_number: birth date is in the future"
    # a number that went through a float (Excel) has lost digits: never guess them back
    assert rejected("id_number", 1.1010519491231002e17).startswith("id_number: a number, not text")


def test_id_number_unknown_region_is_a_warning_not_an_error() -> None:
    body = "99010519491231002"
    outcome = run("id_number", [body + check_digit(body), SAMPLE_ID])
    assert errors_of(outcome) == [None, None]
    assert values_of(outcome) == [body + check_digit(body), SAMPLE_ID]
    assert warnings_of(outcome) == ["id_number: unknown region code", None]


def test_id_number_cross_checks_birth_date_and_gender_columns() -> None:
    frame = pd.DataFrame(
        {
            "dob": ["1949-12-31", "1950-01-01", "1949/12/31", None, "1949年12月31日"],
            "sex": ["女", "女", "男", "F", "female"],
        },
        index=[10, 11, 12, 13, 14],
    )
    values = pd.Series([SAMPLE_ID] * 5, index=frame.index, dtype=object)
    outcome = run("id_number", values, {"birth_date": "dob", "gender": "sex"}, frame=frame)
    assert errors_of(outcome) == [
        None,
        "id_number: birth date disagrees with column 'dob'",
        "id_number: gender disagrees with column 'sex' (sequence code odd = male, even = female)",
        None,
        None,
    ]
    assert values_of(outcome) == [SAMPLE_ID, None, None, SAMPLE_ID, SAMPLE_ID]

    soft = run(
        "id_number", values, {"birth_date": "dob", "gender": "sex", "mismatch": "warning"}, frame=frame
    )
    assert errors_of(soft) == [None] * 5
    assert values_of(soft) == [SAMPLE_ID] * 5
    assert warnings_of(soft)[1:3] == errors_of(outcome)[1:3]

    with pytest.raises(TransformParamError, match="no column 'missing'"):
        run("id_number", values, {"birth_date": "missing"}, frame=frame)


def test_id_birth_date_and_gender() -> None:
    male = "34052419800101001X"  # sequence 001: odd
    outcome = run("id_birth_date", [SAMPLE_ID, male, "110105194912310021", None])
    assert values_of(outcome) == [dt.date(1949, 12, 31), dt.date(1980, 1, 1), None, None]
    assert errors_of(outcome)[2] == "id_birth_date: check digit does not match"
    assert values_of(run("id_gender", [SAMPLE_ID, male, None])) == ["female", "male", None]


# -- unified social credit codes --------------------------------------------------------------


def test_uscc_accepts_the_sample_and_rejects_every_single_character_mutation() -> None:
    assert accepted("uscc", SAMPLE_USCC) == SAMPLE_USCC
    assert accepted("uscc", f" {SAMPLE_USCC.lower()} ") == SAMPLE_USCC
    mutated = [
        SAMPLE_USCC[:i] + c + SAMPLE_USCC[i + 1 :]
        for i in range(18)
        for c in USCC_CHARS
        if c != SAMPLE_USCC[i]
    ]
    outcome = run("uscc", mutated)
    assert set(errors_of(outcome)) == {"uscc: check character does not match"}
    assert rejected("uscc", SAMPLE_USCC[:8] + "I" + SAMPLE_USCC[9:]).startswith("uscc: contains characters")
    assert rejected("uscc", SAMPLE_USCC[:-1]) == "uscc: must be 18 characters"


# -- phone numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "+86 138-0013-8000",
        "0086 13800138000",
        "86 13800138000",
        "8613800138000",
        "13800138000",
        "１３８００１３８０００",
        "138 0013 8000",
        "(+86) 138.0013.8000",
        13800138000,
    ],
)
def test_phone_mainland_mobiles_to_e164(raw: Any) -> None:
    assert accepted("phone", raw) == "+8613800138000"


def test_phone_other_numbers_and_invalid_ones() -> None:
    assert accepted("phone", "010-12345678") == "+861012345678"
    assert accepted("phone", "+1 650-253-0000") == "+16502530000"
    assert rejected("phone", "12345678901") == "phone: not a valid number for region CN"
    assert rejected("phone", "13800") == "phone: not a valid number for region CN"
    assert rejected("phone", "无") == "phone: not a phone number"
    assert rejected("phone", "010-12345678", {"mobile_only": True}) == "phone: not a mobile number"
    assert accepted("phone", "2123 4567", {"region": "HK"}) == "+85221234567"
    outcome = run("phone", ["010-12345678 ext. 123"])
    assert values_of(outcome) == ["+861012345678"]
    assert warnings_of(outcome) == ["phone: extension dropped"]


def random_phones(count: int, seed: int) -> list[str]:
    """Mobile, fixed-line and junk numbers with every prefix and separator the fast path sees."""
    rng = np.random.default_rng(seed)

    def digits(k: int) -> str:
        return "".join(str(d) for d in rng.integers(0, 10, k))

    out = []
    for _ in range(count):
        body = str(
            rng.choice(
                [
                    "1" + str(rng.integers(0, 10)) + digits(9),  # mobile-shaped, valid or not
                    "10" + digits(8),  # Beijing
                    "2" + digits(1) + digits(8),  # 2x areas
                    str(rng.integers(3, 10)) + digits(2) + digits(int(rng.integers(7, 9))),
                    digits(int(rng.integers(4, 14))),  # anything
                ]
            )
        )
        prefix = str(rng.choice(["", "0", "+86", "+86 ", "0086", "86", "+86 0", "00", "(0", "+1 "]))
        text = prefix + body
        if rng.random() < 0.4:
            cut = int(rng.integers(1, len(text)))
            text = text[:cut] + str(rng.choice(["-", " ", ".", ") "])) + text[cut:]
        out.append(text)
    return out


@pytest.mark.parametrize("mobile_only", [False, True])
def test_phone_fast_path_agrees_with_phonenumbers(mobile_only: bool) -> None:
    numbers = random_phones(3000, seed=86)
    outcome = run("phone", numbers, {"mobile_only": mobile_only})
    expected = [parse_phone(n.strip(), "CN", mobile_only) for n in numbers]
    assert values_of(outcome) == [e[0] for e in expected]
    assert errors_of(outcome) == [e[1] for e in expected]
    assert 300 < sum(v is not None for v in values_of(outcome)) < 2700  # both paths exercised


# -- dates ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "2024-03-01",
        "2024/3/1",
        "2024/03/01",
        "2024.3.1",
        "2024年3月1日",
        "２０２４年３月１日",
        "20240301",
        "2024-03-01 10:20:30",
        "2024-03-01T10:20",
        45352,
        "45352",
        45352.75,
        1709251200,
        "1709251200",
        1709251200000,
        "1709251200000",
        dt.date(2024, 3, 1),
        dt.datetime(2024, 3, 1, 23, 59),
    ],
)
def test_date_accepts_the_usual_spellings(raw: Any) -> None:
    assert accepted("date", raw) == dt.date(2024, 3, 1)


def test_date_timezone_semantics() -> None:
    # An instant's date is taken in the timezone (default Asia/Shanghai); wall-clock text as written.
    midnight_shanghai = 1709222400  # 2024-02-29T16:00:00Z
    assert accepted("date", midnight_shanghai) == dt.date(2024, 3, 1)
    assert accepted("date", midnight_shanghai, {"timezone": "UTC"}) == dt.date(2024, 2, 29)
    assert accepted("date", "2024-02-29T16:00:00Z") == dt.date(2024, 3, 1)
    assert accepted("date", "2024-02-29 16:00:00") == dt.date(2024, 2, 29)
    assert accepted("date", "2024-02-29T23:30:00+08:00", {"timezone": "UTC"}) == dt.date(2024, 2, 29)


def test_date_errors_and_formats() -> None:
    assert rejected("date", "2024-02-30") == "date: not a real calendar date or time"
    assert rejected("date", "2023-02-29") == "date: not a real calendar date or time"
    assert rejected("date", "2024年13月1日") == "date: not a real calendar date or time"
    assert rejected("date", "20240230") == "date: not a real calendar date or time"
    assert rejected("date", "01/03/2024") == "date: not a recognised date format"
    assert rejected("date", "长期") == "date: not a recognised date format"
    assert rejected("date", "12345678901") == "date: not a recognised date format"
    assert accepted("date", "01/03/2024", {"formats": ["%d/%m/%Y"]}) == dt.date(2024, 3, 1)
    assert accepted("date", "9999-12-31") == dt.date(9999, 12, 31)  # "长期" ID expiry written out
    with pytest.raises(TransformParamError, match="unknown time zone"):
        run("date", ["2024-03-01"], {"timezone": "Mars/Olympus"})


def test_datetime_is_timezone_aware() -> None:
    shanghai = dt.timezone(dt.timedelta(hours=8))
    cases = {
        "2024-03-01 10:20:30": dt.datetime(2024, 3, 1, 10, 20, 30, tzinfo=shanghai),
        "2024年3月1日 10:20": dt.datetime(2024, 3, 1, 10, 20, tzinfo=shanghai),
        "2024-03-01T10:20:30.5Z": dt.datetime(2024, 3, 1, 18, 20, 30, 500000, tzinfo=shanghai),
        "2024-03-01T10:20:30-05:00": dt.datetime(2024, 3, 1, 23, 20, 30, tzinfo=shanghai),
        1709251200: dt.datetime(2024, 3, 1, 8, tzinfo=shanghai),
        "1709251200000": dt.datetime(2024, 3, 1, 8, tzinfo=shanghai),
        45352.5: dt.datetime(2024, 3, 1, 12, tzinfo=shanghai),
        "20240301102030": dt.datetime(2024, 3, 1, 10, 20, 30, tzinfo=shanghai),
    }
    outcome = run("datetime", list(cases))
    assert errors_of(outcome) == [None] * len(cases)
    for got, want in zip(values_of(outcome), cases.values(), strict=True):
        assert got.tzinfo is not None
        assert got == want
        assert got.utcoffset() == dt.timedelta(hours=8)
    utc = accepted("datetime", "2024-03-01 10:20", {"timezone": "UTC"})
    assert utc == dt.datetime(2024, 3, 1, 10, 20, tzinfo=dt.UTC)
    assert rejected("datetime", "2024-03-01 24:00") == "datetime: not a real calendar date or time"


# -- names, text ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "family", "given"),
    [
        ("欧阳娜娜", "欧阳", "娜娜"),
        ("张伟", "张", "伟"),
        ("诸葛亮", "诸葛", "亮"),
        ("司马相如", "司马", "相如"),
        ("上官婉儿", "上官", "婉儿"),
        ("司马", "司", "马"),  # two characters: a single surname and a given name
        ("王 小明", "王", "小明"),
        ("买买提·艾力", "艾力", "买买提"),
        ("John Smith", "Smith", "John"),
        ("Mary Ann Lee", "Lee", "Mary Ann"),
        ("Smith, John", "Smith", "John"),
        ("Madonna", "Madonna", None),
    ],
)
def test_split_name(name: str, family: str, given: str | None) -> None:
    assert accepted("split_name", f" {name} ", {"part": "family"}) == family
    assert accepted("split_name", name, {"part": "given"}) == given


def test_text_transforms() -> None:
    assert values_of(run("trim", ["  a b \u3000", "\u200bx\ufeff", "\xa0", 5])) == ["a b", "x", None, 5]
    assert values_of(run("nfkc", ["１３８", "ＡＢＣ", "Ｘ＠ｙ．ｃｎ"])) == ["138", "ABC", "X@y.cn"]
    assert values_of(run("upper", ["abc", "ß"]))[0] == "ABC"
    assert values_of(run("lower", ["ABC"])) == ["abc"]
    assert accepted("email", " Zhang.San@Example.COM ") == "Zhang.San@example.com"
    assert accepted("email", "ｌｉ＠ｑｑ．ｃｏｍ") == "li@qq.com"
    for bad in ("zhang", "a@b", "a@@b.cn", "a b@c.cn", "a@b.c", "a@-b.cn", ".a@b.cn"):
        assert rejected("email", bad) == "email: not a valid address"
    assert accepted("regex", "EMP-00123", {"pattern": r"EMP-(\d+)"}) == "00123"
    assert accepted("regex", "abc123", {"pattern": r"\d+"}) == "123"
    assert rejected("regex", "X", {"pattern": r"EMP-(\d+)"}) == "regex: no match"
    with pytest.raises(TransformParamError):
        run("regex", ["x"], {"pattern": "(a)(b)"})
    assert accepted("prefix", "123", {"value": "E"}) == "E123"
    assert values_of(run("strip_prefix", ["E123", "123", "E"], {"value": "E"})) == ["123", "123", None]


# -- numbers, money, booleans -------------------------------------------------------------------


def test_integer_and_decimal() -> None:
    outcome = run("integer", ["1,234", "+12", "-7", "12.0", "１２", 42, 3.0, "9223372036854775807"])
    assert values_of(outcome) == [1234, 12, -7, 12, 12, 42, 3, 9223372036854775807]
    assert str(outcome.values.dtype) == "Int64"
    assert rejected("integer", "12.5") == "integer: not a whole number"
    assert rejected("integer", "1,23") == "integer: not a whole number"
    assert rejected("integer", "1e3") == "integer: not a whole number"
    assert rejected("integer", "9223372036854775808") == "integer: out of range"
    assert values_of(run("decimal", ["1,234.50", "-.5", "3", 2.5])) == [
        Decimal("1234.50"),
        Decimal("-0.5"),
        Decimal("3"),
        Decimal("2.5"),
    ]
    assert accepted("decimal", "2.345", {"places": 2}) == Decimal("2.35")
    assert rejected("decimal", "1.2.3") == "decimal: not a plain decimal number"


@pytest.mark.parametrize(
    ("raw", "amount", "currency"),
    [
        ("12,345.50", "12345.50", "CNY"),
        ("¥12345", "12345", "CNY"),
        ("￥12,345", "12345", "CNY"),
        ("12345元", "12345", "CNY"),
        ("1.2万", "12000", "CNY"),
        ("1.2万元", "12000", "CNY"),
        ("１．５万", "15000", "CNY"),
        ("15k", "15000", "CNY"),
        ("1.23456万", "12345.6", "CNY"),
        ("-¥100", "-100", "CNY"),
        ("USD 100", "100", "USD"),
        ("$1,000.25", "1000.25", "USD"),
        ("100 HKD", "100", "HKD"),
        (8000, "8000", "CNY"),
    ],
)
def test_money(raw: Any, amount: str, currency: str) -> None:
    got = accepted("money", raw)
    assert got == {"amount": Decimal(amount), "currency": currency}
    assert str(got["amount"]) == amount


def test_money_currency_parameter_and_errors() -> None:
    assert accepted("money", "100", {"currency": "USD"}) == {"amount": Decimal("100"), "currency": "USD"}
    assert accepted("money", "¥100", {"currency": "USD"})["currency"] == "CNY"  # the text says so
    assert rejected("money", "$5元") == "money: conflicting currency marks"
    assert rejected("money", "五千") == "money: not an amount"
    assert rejected("money", "1.2.3万") == "money: not an amount"
    assert rejected("money", "100 @@") == "money: unknown currency mark"
    with pytest.raises(TransformParamError):
        run("money", ["1"], {"currency": "yuan"})


def test_boolean() -> None:
    truthy = ["是", "有", "Y", "yes", "TRUE", "1", "√", " ｙ ", True, 1]
    falsy = ["否", "无", "n", "No", "false", "0", "×", False, 0]
    assert values_of(run("boolean", truthy)) == [True] * len(truthy)
    assert values_of(run("boolean", falsy)) == [False] * len(falsy)
    assert rejected("boolean", "maybe") == "boolean: not a yes/no value"
    assert rejected("boolean", "2") == "boolean: not a yes/no value"
    assert accepted("boolean", "已婚", {"true": ["已婚"], "false": "未婚"}) is True


def test_enum_and_lookup() -> None:
    gender = {"男": "MALE", "女": "FEMALE", "M": "MALE", "f": "FEMALE"}
    outcome = run("enum", ["男", " Ｆ ", "m", "x", None], {"map": gender})
    assert values_of(outcome) == ["MALE", "FEMALE", "MALE", None, None]
    assert errors_of(outcome) == [None, None, None, "enum: value not in the map", None]
    with_default = run("enum", ["x", "女"], {"map": gender, "default": "OTHER"})
    assert values_of(with_default) == ["OTHER", "FEMALE"]
    assert with_default.errors is None
    departments = {"D01": "研发部", "D02": "人事部"}
    outcome = run("lookup", ["D01", " D02 ", "D03", None], {"table": "dept"}, lookups={"dept": departments})
    assert values_of(outcome) == ["研发部", "人事部", None, None]
    assert errors_of(outcome) == [None, None, "lookup: key not in table 'dept'", None]
    fallback = run("lookup", ["D03"], {"table": "dept", "default": "未知"}, lookups={"dept": departments})
    assert values_of(fallback) == ["未知"]
    with pytest.raises(TransformParamError, match="no lookup table"):
        run("lookup", ["D01"], {"table": "nope"})


# -- every transform --------------------------------------------------------------------------

FRAME = pd.DataFrame(
    {
        "dob": ["1949-12-31", "1950-01-01", None, "1949/12/31", "x", None, "1980-01-01", None],
        "sex": ["女", "男", "女", None, "男", "f", "m", "F"],
    },
    index=[7, 3, 9, 1, 100, 42, 5, 6],
)
LOOKUPS = {"dept": {"D1": "研发部", "D2": "人事部"}}
PARAMS: dict[str, dict[str, Any]] = {
    "split_name": {"part": "given"},
    "regex": {"pattern": r"(\d+)"},
    "prefix": {"value": "E"},
    "strip_prefix": {"value": "E"},
    "enum": {"map": {"男": "MALE", "女": "FEMALE", "y": "YES"}},
    "lookup": {"table": "dept"},
    "id_number": {"birth_date": "dob", "gender": "sex"},
}
MIXED: list[Any] = [
    SAMPLE_ID,
    "34052419800101001X",
    "110105491231002",
    "99010519491231002" + check_digit("99010519491231002"),
    "110105194912310021",
    "+86 138-0013-8000",
    "010-12345678",
    "12345678901",
    "2024年3月1日",
    "2024-02-30",
    "2024-03-01T10:00:00+08:00",
    45352,
    1709251200,
    "1709251200000",
    "1.2万",
    "¥12,345.50",
    "12,345.50",
    "$5元",
    "是",
    "否",
    "maybe",
    "欧阳娜娜",
    "John Smith",
    " Ｚhang@Example.COM ",
    "not an email",
    "１３８",
    SAMPLE_USCC,
    "D1",
    "E123",
    "男",
    True,
    3.5,
    None,
    np.nan,
    pd.NA,
    "",
    "  ",
    "\u3000",
]


@pytest.mark.parametrize("name", sorted(NAMES))
def test_whole_column_equals_value_by_value(name: str) -> None:
    """The vectorised path gives each row what it would get alone (no fast path differs from
    its fallback, no row leaks into another), and reasons never quote the value."""
    index = pd.RangeIndex(len(MIXED)) * 3 + 10
    frame = pd.concat([FRAME] * (len(MIXED) // len(FRAME) + 1)).iloc[: len(MIXED)].set_axis(index)
    series = pd.Series(MIXED, index=index, dtype=object)
    params = PARAMS.get(name, {})
    whole = run(name, series, params, frame=frame, lookups=LOOKUPS)
    one_by_one = [
        run(name, series.iloc[[i]], params, frame=frame.iloc[[i]], lookups=LOOKUPS)
        for i in range(len(series))
    ]
    assert values_of(whole) == [values_of(o)[0] for o in one_by_one]
    assert errors_of(whole) == [errors_of(o)[0] for o in one_by_one]
    assert warnings_of(whole) == [warnings_of(o)[0] for o in one_by_one]
    for raw, reason in zip(MIXED, errors_of(whole), strict=True):
        if reason is not None:
            assert reason.startswith(f"{name}: ")
            if isinstance(raw, str) and len(raw.strip()) >= 3:
                assert raw.strip() not in reason
    # nulls: no value, no error, whatever the transform
    assert values_of(whole)[-6:] == [None] * 6
    assert errors_of(whole)[-6:] == [None] * 6


@pytest.mark.parametrize("name", sorted(NAMES))
def test_arrow_strings_give_the_same_result(name: str) -> None:
    texts = [v if isinstance(v, str) else None for v in MIXED]
    frame = pd.concat([FRAME] * (len(MIXED) // len(FRAME) + 1)).iloc[: len(MIXED)].reset_index(drop=True)
    as_objects = run(name, pd.Series(texts, dtype=object), PARAMS.get(name, {}), frame=frame, lookups=LOOKUPS)
    arrow = pd.Series(pd.arrays.ArrowExtensionArray(pa.array(texts, type=pa.string())))
    as_arrow = run(name, arrow, PARAMS.get(name, {}), frame=frame, lookups=LOOKUPS)
    assert values_of(as_arrow) == values_of(as_objects)
    assert errors_of(as_arrow) == errors_of(as_objects)


@pytest.mark.parametrize("name", sorted(NAMES))
def test_empty_column(name: str) -> None:
    outcome = run(
        name, pd.Series([], dtype=object), PARAMS.get(name, {}), frame=FRAME.iloc[:0], lookups=LOOKUPS
    )
    assert len(outcome.values) == 0


def test_chained_steps_take_each_others_output() -> None:
    values = pd.Series(["  ｅｍｐ-００７ "], dtype=object)
    ctx = TransformContext(frame=pd.DataFrame(index=values.index))
    for name, params in (("trim", {}), ("nfkc", {}), ("upper", {}), ("strip_prefix", {"value": "EMP-"})):
        values = TRANSFORMS[name].apply(values, params, ctx).values
    assert values.tolist() == ["007"]
    assert TRANSFORMS["integer"].apply(values, {}, ctx).values.tolist() == [7]


# -- per_row, context, registration -----------------------------------------------------------


def test_per_row_wraps_a_scalar_function() -> None:
    def employee_no(value: Any, params: Mapping[str, Any]) -> str:
        text = str(value).strip()
        if not text.startswith("E"):
            raise TransformError("employee_no: must start with E")
        return text + params.get("suffix", "")

    apply = per_row(employee_no)
    values = pd.Series(["E1", "X2", None, " ", np.nan], index=[5, 6, 7, 8, 9], dtype=object)
    outcome = apply(values, {"suffix": "-cn"}, TransformContext(frame=pd.DataFrame(index=values.index)))
    assert outcome.values.tolist() == ["E1-cn", None, None, None, None]
    assert outcome.errors is not None
    assert outcome.errors.tolist() == [None, "employee_no: must start with E", None, None, None]
    assert list(outcome.values.index) == [5, 6, 7, 8, 9]


def test_context_column() -> None:
    ctx = TransformContext(frame=FRAME)
    assert ctx.column("dob").tolist() == FRAME["dob"].tolist()
    with pytest.raises(KeyError):
        ctx.column("nope")


def test_every_builtin_is_described_and_documents_its_params() -> None:
    assert set(TRANSFORMS) == NAMES
    for transform in BUILTIN_TRANSFORMS:
        assert transform.description
        assert transform.required_params <= set(transform.params)


def test_hub_plugins_lists_the_transforms(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hub.cli", "plugins", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data["transforms"]) >= NAMES
    assert data["failed"] == []


def test_a_plugin_adds_a_transform_and_cannot_take_a_builtin_name(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "badge.py").write_text(
        "import hub\nfrom hub.transforms import per_row\n\n\n"
        "@hub.hookimpl\ndef hub_register_transforms():\n"
        "    return [hub.Transform('badge', per_row(lambda value, params: 'B-' + str(value)))]\n",
        encoding="utf-8",
    )
    transforms = collect_transforms(load_plugins(plugins, entry_points=False))
    assert NAMES | {"badge"} <= set(transforms)
    assert isinstance(transforms["badge"], Transform)
    ctx = TransformContext(frame=pd.DataFrame(index=[0]))
    assert transforms["badge"].apply(pd.Series(["7"]), {}, ctx).values.tolist() == ["B-7"]

    (plugins / "mytrim.py").write_text(
        "import hub\nfrom hub.transforms import per_row\n\n\n"
        "@hub.hookimpl\ndef hub_register_transforms():\n"
        "    return [hub.Transform('trim', per_row(lambda value, params: value))]\n",
        encoding="utf-8",
    )
    with pytest.raises(PluginError, match="two plugins register a transform named 'trim'"):
        collect_transforms(load_plugins(plugins, entry_points=False))
