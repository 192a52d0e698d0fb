"""The mapping executor's fast paths give what the slow paths they replace give, value for value.

Compiled JMESPath against jmespath itself, vectorised date-time text against
``Timestamp.isoformat()``, ``apply_mapping(as_text=True)`` against ``canonical_text`` of each
mapped value, and ``hub.frames.as_text`` against its plain form. All data is synthetic.
"""

from __future__ import annotations

import json
import random
import textwrap
from pathlib import Path
from typing import Any

import jmespath
import numpy as np
import orjson
import pandas as pd
import pytest

from hub.connectors import POSITION
from hub.frames import TEXT, as_text, text_frame
from hub.mapping import apply_mapping, load_mapping
from hub.mapping.executor import _compile_node, canonical_text, compile_path, iso_texts
from hub.plugins import load_plugins
from hub.project import collect_transforms
from hub.schema import ENTITIES

TRANSFORMS = collect_transforms(load_plugins(entry_points=False))
KEYS = ["a", "b", "id", "name", "value", "question", "answer", "amount", "unit", "a-b", "type"]
#: what vendor mappings say (direct) and what they may say (jmespath's own interpreter)
DIRECT = [
    "[0].value",
    "[-1].value",
    "[].value",
    "[*].value",
    "a[][]",
    "a[*][0]",
    "a[0][1]",
    "id_number.value",
    '"a-b".id',
    "[].{question: question, answer: answer}",
    "{remote_id: to_string(id), name: name}",
    "a.value.{amount: {amount: to_string(amount), currency: unit}, pay_period: 'MONTH'}",
    "[a, b]",
    "a | [0]",
    '`{"x": 1}`',
    "to_string(@)",
    "@",
]
INTERPRETED = ["a[1:2]", "[?id==`1`].name", "value[] | length(@)", "a.* | [0]", "type != `3` && name || null"]


def random_document(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 3 or roll < 0.3:
        return rng.choice([None, 0, 1, 2.5, -7, 10**20, "", "text", "数据", True, False, "123"])
    if roll < 0.6:
        return [random_document(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {key: random_document(rng, depth + 1) for key in rng.sample(KEYS, rng.randrange(5))}


def outcome(search: Any, document: Any) -> tuple[str, str]:
    try:
        return "value", json.dumps(search(document))  # key order counts too
    except Exception as exc:  # jmespath's type errors must stay errors
        return "error", type(exc).__name__


@pytest.mark.parametrize("expression", DIRECT + INTERPRETED)
def test_compiled_paths_give_what_jmespath_gives(expression: str) -> None:
    assert (_compile_node(jmespath.compile(expression).parsed) is not None) == (expression in DIRECT)
    rng = random.Random(expression)
    parsed, compiled = jmespath.compile(expression), compile_path(expression)
    for _ in range(3000):
        document = random_document(rng)
        assert outcome(compiled, document) == outcome(parsed.search, document), (expression, document)


ZONES = [None, "UTC", "Asia/Shanghai", "America/New_York", "Australia/Lord_Howe", "America/St_Johns"]


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_iso_texts_are_timestamp_isoformat(zone: str | None, unit: str) -> None:
    rng = random.Random(f"{zone}{unit}")
    wide = zone is None and unit != "ns"  # years 1-9999 fit only these
    seconds = [
        rng.randrange(-62_135_596_800, 253_402_300_799)
        if wide and rng.random() < 0.3
        else rng.randrange(-8_500_000_000, 7_000_000_000)
        for _ in range(2000)
    ]
    fractions = [rng.choice([0, 0, 123_000_000, rng.randrange(10**9), 1_000]) for _ in seconds]
    step = {"s": 10**9, "ms": 10**6, "us": 1000, "ns": 1}[unit]
    stamps = np.array(
        [
            np.datetime64(s, "s").astype(f"datetime64[{unit}]") + np.timedelta64(f // step, unit)  # type: ignore[call-overload]
            for s, f in zip(seconds, fractions, strict=True)
        ]
        + [np.datetime64("NaT")],
        dtype=f"datetime64[{unit}]",
    )
    index = pd.DatetimeIndex(stamps)
    values = pd.Series(index.tz_localize("UTC").tz_convert(zone) if zone else index)
    keep = values.notna().to_numpy() & np.array([rng.random() < 0.9 for _ in range(len(values))])
    expected = [canonical_text(v) if k else None for v, k in zip(values.astype(object), keep, strict=True)]
    assert iso_texts(values, keep) == expected


CANDIDATE = """\
entity: Candidate
key: [id]
fields:
  current_company: {from: company, transforms: [nfkc, trim]}
  tags: {from: tags}
  urls: {path: "website_addresses[].value"}
  can_contact: {from: can_email, transforms: [boolean]}
  last_interaction_at: {from: last_activity, transforms: [datetime]}
  remote_created_at: {from: created_at, transforms: [datetime], required: true}
  remote_updated_at: {from: updated_at, transforms: [{datetime: {timezone: America/New_York}}]}
  custom_fields: {from: custom_fields}
identity:
  given_name: {from: first_name, transforms: [nfkc, trim]}
  email: {path: "email_addresses[0].value", transforms: [email]}
  phone: {path: "phone_numbers[0].value", transforms: [phone]}
"""


def candidate_rows(count: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    rows = []
    for i in range(count):
        stamp = (
            f"2024-0{rng.randrange(1, 10)}-1{rng.randrange(10)}T0{rng.randrange(10)}:1{rng.randrange(10)}:00"
        )
        rows.append(
            {
                "id": 1000 + i,
                "company": rng.choice(["  Ａcme  ", "星辰科技", None, ""]),
                "tags": rng.choice([["a", "b"], [], None]),
                "website_addresses": rng.choice(
                    [[{"value": "https://x.example", "type": "personal"}], [], None]
                ),
                "can_email": rng.choice([True, False, None, "yes"]),
                "last_activity": rng.choice([stamp + ".123Z", stamp + "Z", None, "not a date"]),
                "created_at": rng.choice([stamp + ".5Z", stamp + "+08:00", None]),
                "updated_at": rng.choice([stamp + "Z", "2024-03-10T07:30:00Z", "1900-01-01T00:00:00Z"]),
                "custom_fields": rng.choice([{"b": 1, "a": [2, 3]}, {}, None]),
                "first_name": rng.choice(["娜娜", " Li ", None]),
                "email_addresses": [{"value": f"P{i}@Example.com", "type": "personal"}],
                "phone_numbers": rng.choice([[{"value": "138 0013 8000"}], [], [{"value": "bad"}]]),
                POSITION: f"candidates#{i + 1}",
            }
        )
    return rows


def test_mapping_as_text_is_canonical_text_of_the_mapped_values(tmp_path: Path) -> None:
    path = tmp_path / "candidates.yaml"
    path.write_text(textwrap.dedent(CANDIDATE), encoding="utf-8")
    spec = load_mapping(path, TRANSFORMS, ENTITIES)
    source = text_frame(pd.DataFrame(candidate_rows(400), dtype=object))  # as the engine hands it over
    plain = apply_mapping(spec, source, TRANSFORMS)
    fast = apply_mapping(spec, source, TRANSFORMS, as_text=True)
    assert plain.rejections and [r.reason for r in fast.rejections] == [r.reason for r in plain.rejections]
    assert fast.warnings == plain.warnings
    assert fast.kept is not None and plain.kept is not None and (fast.kept == plain.kept).all()
    assert list(fast.frame.columns) == list(plain.frame.columns)
    for column in plain.frame.columns:
        if column == POSITION:
            continue
        assert fast.frame[column].dtype == TEXT
        expected = [canonical_text(v) for v in plain.frame[column].to_numpy(dtype=object)]
        assert fast.frame[column].to_numpy(dtype=object, na_value=None).tolist() == expected, column


@pytest.mark.parametrize(
    "value",
    [
        0,
        -12,
        10**20,
        True,
        False,
        2.5,
        float("nan"),
        "text",
        {"b": 1, "a": {"d": 2, "c": None}},
        [3, {"z": 1, "y": 2}],
        (1, 2),
        pd.Timestamp("2024-01-02T03:04:05.6+08:00"),
        np.int64(5),
    ],
)
def test_as_text_fast_types_match_the_general_form(value: Any) -> None:
    if isinstance(value, bool):
        expected = "true" if value else "false"
    elif isinstance(value, dict | list | tuple):
        expected = orjson.dumps(value, default=str, option=orjson.OPT_SORT_KEYS).decode()
    elif hasattr(value, "isoformat"):
        expected = str(value.isoformat())
    elif isinstance(value, float) and value != value:
        expected = ""
    else:
        expected = str(value)
    assert as_text(value) == expected


def test_columns_read_only_through_paths_map_the_same_left_decoded(tmp_path: Path) -> None:
    """The engine leaves such columns as the source decoded them: same fields, same rejections."""
    path = tmp_path / "candidates.yaml"
    path.write_text(textwrap.dedent(CANDIDATE), encoding="utf-8")
    spec = load_mapping(path, TRANSFORMS, ENTITIES)
    assert spec.path_only_columns() == {"website_addresses", "email_addresses", "phone_numbers"}
    raw = pd.DataFrame(candidate_rows(400), dtype=object)
    as_text_all = apply_mapping(spec, text_frame(raw), TRANSFORMS, as_text=True)
    decoded = apply_mapping(spec, text_frame(raw, spec.path_only_columns()), TRANSFORMS, as_text=True)
    assert [(r.position, r.reason) for r in decoded.rejections] == [
        (r.position, r.reason) for r in as_text_all.rejections
    ]
    assert decoded.warnings == as_text_all.warnings
    assert decoded.frame.equals(as_text_all.frame)


def test_a_column_also_read_whole_or_by_a_condition_is_not_path_only(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            entity: Candidate
            key: [id]
            fields:
              urls: {path: "links[].value"}
              tags: {path: "labels[]", when: {column: source, equals: ats}}
              current_title: {path: "source.title"}
              current_company: {path: "job.company"}
            custom_fields: [job]
            """
        ),
        encoding="utf-8",
    )
    spec = load_mapping(path, TRANSFORMS, ENTITIES)
    assert spec.path_only_columns() == {"links", "labels"}
