"""Mapping files: loading with file:line problems, the executor, the CLI, and mapped syncs."""

from __future__ import annotations

import json
import textwrap
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from hub.connectors import POSITION
from hub.engine import Sync
from hub.mapping import apply_mapping, load_mapping
from hub.mapping.loader import MappingError
from hub.plugins import load_plugins
from hub.project import Project, collect_transforms
from hub.schema import ENTITIES
from tests.conftest import run_cli

TRANSFORMS = collect_transforms(load_plugins(entry_points=False))

PERSON = """\
entity: Person
key: [cid]
lookups:
  channels: {values: {boss: Boss直聘, lp: 猎聘}}
fields:
  legal_family_name: {from: name, transforms: [nfkc, trim, {split_name: {part: family}}], required: true}
  legal_given_name: {from: name, transforms: [nfkc, trim, {split_name: {part: given}}]}
  gender: {from: sex, transforms: [{enum: {map: {男: MALE, 女: FEMALE}}}]}
  date_of_birth: {from: born, transforms: [date]}
  mobile_phone: {from: mobile, transforms: [nfkc, phone]}
  personal_email: {path: "contact.email"}
  preferred_name: {from: nick, when: {column: status, in: [hired]}}
  name_en: {default: "n/a"}
  nationality: {default: [CN]}
custom_fields: [channel]
"""


def write(tmp_path: Path, text: str, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    df = pd.DataFrame.from_records(rows)
    df[POSITION] = [f"src.csv:{i + 2}" for i in range(len(df))]
    return df


ROWS = [
    {
        "cid": "1",
        "name": "欧阳娜娜",
        "sex": "女",
        "born": "2000年3月1日",
        "mobile": "+86 138-0013-8000",
        "contact": '{"email": "nana@example.com"}',
        "nick": "娜娜",
        "status": "hired",
        "channel": "boss",
    },
    {
        "cid": "2",
        "name": "张伟",
        "sex": "男",
        "born": "45352",
        "mobile": "００８６ １３８００１３８０００",
        "contact": '{"email": null}',
        "nick": "伟",
        "status": "offer",
        "channel": "lp",
    },
    {
        "cid": "3",
        "name": "李四",
        "sex": "男",
        "born": "2024-02-30",
        "mobile": "12345",
        "contact": "{}",
        "nick": None,
        "status": "hired",
        "channel": None,
    },
    {
        "cid": "4",
        "name": "  ",
        "sex": "女",
        "born": "",
        "mobile": "",
        "contact": "{}",
        "nick": None,
        "status": "hired",
        "channel": None,
    },
]


def test_maps_a_chunk_into_canonical_values(tmp_path: Path) -> None:
    spec = load_mapping(write(tmp_path, PERSON), TRANSFORMS, ENTITIES)
    result = apply_mapping(spec, frame(ROWS), TRANSFORMS, {"mobile_phone": "phone", "date_of_birth": "text"})
    out = result.frame.to_dict("records")
    assert len(out) == 2
    first, second = out
    assert (first["legal_family_name"], first["legal_given_name"]) == ("欧阳", "娜娜")
    assert first["date_of_birth"] == date(2000, 3, 1) and second["date_of_birth"] == date(2024, 3, 1)
    assert first["mobile_phone"] == second["mobile_phone"] == "+8613800138000"
    assert first["personal_email"] == "nana@example.com" and second["personal_email"] is None
    assert first["preferred_name"] == "娜娜" and second["preferred_name"] is None  # when: status in [hired]
    assert first["name_en"] == "n/a" and first["nationality"] == ["CN"]
    assert first["custom_fields"] == {"channel": "boss"}
    # Every field-level reason at once, personal data masked, the rule named.
    reasons = {r.position: r.reason for r in result.rejections}
    assert set(reasons) == {"src.csv:4", "src.csv:5"}
    assert "date_of_birth (***)" in reasons["src.csv:4"] and "mobile_phone (" in reasons["src.csv:4"]
    assert "2024-02-30" not in reasons["src.csv:4"] and "12345" not in reasons["src.csv:4"]
    assert reasons["src.csv:5"] == "legal_family_name: required value is missing"
    # What was mapped validates as the canonical entity.
    model = ENTITIES["Person"].model_validate(
        {k: v for k, v in first.items() if k != POSITION and v is not None}
    )
    assert model.legal_family_name == "欧阳"


def test_one_record_and_a_chunk_give_identical_results(tmp_path: Path) -> None:
    spec = load_mapping(write(tmp_path, PERSON), TRANSFORMS, ENTITIES)
    whole = apply_mapping(spec, frame(ROWS), TRANSFORMS)
    singles = [apply_mapping(spec, frame([row]), TRANSFORMS) for row in ROWS]
    mapped = [r.frame.drop(columns=[POSITION]).to_dict("records") for r in singles]
    assert [m for part in mapped for m in part] == whole.frame.drop(columns=[POSITION]).to_dict("records")
    assert [r.reason for s in singles for r in s.rejections] == [r.reason for r in whole.rejections]


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        (
            "entity: Person\nkey: [id]\nfields:\n  legal_family_name: {from: n, transforms: [nope]}\n",
            4,
            "unknown transform 'nope'",
        ),
        (
            "entity: Person\nkey: [id]\nfields:\n  display_name: n\n  shoe_size: {from: s}\n",
            5,
            "target field 'shoe_size' does not exist",
        ),
        ("entity: Person\nkey: [id]\nfields:\n  display_name:\n    path: 'a..b'\n", 5, "bad path"),
        ("entity: Persn\nkey: [id]\nfields:\n  display_name: n\n", 1, "unknown entity 'Persn'"),
        (
            "entity: Person\nkey: [id]\nfields:\n  gender: {from: g, transforms: [{enum: {mapp: {}}}]}\n",
            4,
            "enum has no parameter(s) mapp",
        ),
        (
            "entity: Person\nkey: [id]\nfields:\n  display_name: {from: n, transforms: [{lookup: {table: x}}]}\n",
            4,
            "no lookup table named 'x'",
        ),
        ("entity: Person\nfields:\n  display_name: n\n", 1, "key:"),
        ("entity: Person\nkey: [id]\nfields: [\n", 4, "not valid YAML"),
        (
            "entity: Person\nkey: [id]\nfields:\n  gender: {from: g, transforms: [{enum: {map: {男: MAN}}}]}\n",
            4,
            "enum maps to value(s) the field does not have: MAN",
        ),
        (
            "entity: IdentityDocument\nkey: [id]\nfields:\n  doc_type:\n    default: CN_RESIDENT_ID\n",
            5,
            "default 'CN_RESIDENT_ID' is not one of the field's values",
        ),
    ],
)
def test_mapping_problems_name_file_and_line(tmp_path: Path, body: str, line: int, message: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(MappingError) as caught:
        load_mapping(path, TRANSFORMS, ENTITIES)
    problems = caught.value.problems
    assert any(p.line == line and message in p.message for p in problems), problems
    assert str(problems[0]).startswith(f"{path}:")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    body = "entity: Person\nkey: [id]\nfields:\n  a: x\n  display_name: {from: n, transforms: [nope]}\n"
    with pytest.raises(MappingError) as caught:
        load_mapping(write(tmp_path, body), TRANSFORMS, ENTITIES)
    assert [p.line for p in caught.value.problems] == [4, 5]


def test_cli_check_and_preview_write_nothing(tmp_path: Path, write_project) -> None:
    good = write(tmp_path, PERSON, "person.yaml")
    bad = write(
        tmp_path,
        "entity: Person\nkey: [id]\nfields:\n  display_name: {from: n, transforms: [nope]}\n",
        "bad.yaml",
    )
    config = write_project('[hub]\ndatabase = "sqlite:///hub.db"\n')
    checked = run_cli(["mapping", "check", str(good), str(bad)], config)
    assert checked.returncode == 2
    assert f"{good}: OK (Person" in checked.stdout
    assert f"{bad}:4: display_name: unknown transform 'nope'" in checked.stdout

    sample = tmp_path / "sample.json"
    sample.write_text(json.dumps([{k: v for k, v in row.items()} for row in ROWS]), encoding="utf-8")
    shown = run_cli(["mapping", "preview", str(good), "--sample", str(sample), "--json"], config)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert len(data["mapped"]) == 2 and len(data["rejected"]) == 2
    assert (
        data["mapped"][0]["canonical"]["mobile_phone"] == "+86****8000"
        or "*" in data["mapped"][0]["canonical"]["mobile_phone"]
    )
    table = run_cli(["mapping", "preview", str(good), "--sample", str(sample)], config)
    assert "nothing was written" in table.stdout
    assert "13800138000" not in table.stdout + shown.stdout
    assert not (tmp_path / "hub.db").exists() and not (tmp_path / ".hub").exists()


def test_a_mapped_pipeline_syncs_canonical_records(tmp_path: Path, write_project) -> None:
    source = tmp_path / "people.csv"
    pd.DataFrame.from_records(ROWS).to_csv(source, index=False)
    mapping = write(tmp_path, PERSON, "person.yaml")
    target = tmp_path / "hr.db"
    config = write_project(
        f"""
        [connectors.src]
        plugin = "files"
        [connectors.src.config]
        path = "{source}"
        stream = "people"
        [connectors.dst]
        plugin = "sql"
        encrypt_pii = false
        [connectors.dst.config]
        url = "sqlite:///{target}"
        [pipelines.people]
        source = "src"
        streams = [{{ name = "people", mapping = "{mapping.name}", destination_stream = "persons" }}]
        destinations = ["dst"]
        """
    )
    project = Project(config)
    first = Sync(project, "people").run()
    assert (first.status, first.counts.inserted, first.counts.rejected) == ("partial", 2, 2)
    engine = sa.create_engine(f"sqlite:///{target}")
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT remote_id, legal_family_name, mobile_phone, date_of_birth FROM persons ORDER BY remote_id"
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("1", "欧阳", "+8613800138000", "2000-03-01"),
        ("2", "张", "+8613800138000", "2024-03-01"),
    ]
    assert Sync(project, "people").run().counts.unchanged == 2

    mapping.write_text(PERSON.replace('{default: "n/a"}', '{default: "none"}'), encoding="utf-8")
    changed = Sync(Project(config), "people").run()
    assert changed.counts.updated == 2  # a changed mapping changes what was delivered
    with engine.connect() as conn:
        assert {r[0] for r in conn.execute(sa.text("SELECT name_en FROM persons"))} == {"none"}
    engine.dispose()


def test_a_bad_mapping_stops_the_pipeline_before_anything_runs(tmp_path: Path, write_project) -> None:
    bad = write(tmp_path, "entity: Person\nkey: [id]\nfields:\n  shoe_size: {from: s}\n", "bad.yaml")
    config = write_project(
        f"""
        [connectors.src]
        plugin = "files"
        [connectors.src.config]
        path = "x.csv"
        [connectors.dst]
        plugin = "sql"
        [connectors.dst.config]
        url = "sqlite:///hr.db"
        [pipelines.people]
        source = "src"
        streams = ["x"]
        mapping = "{bad.name}"
        destinations = ["dst"]
        """
    )
    result = run_cli(["config", "check"], config)
    assert result.returncode == 2
    assert f"{bad}:4: target field 'shoe_size' does not exist" in result.stderr


def test_shipped_mappings_load() -> None:
    shipped = sorted((Path(__file__).parent.parent / "mappings").glob("*.yaml"))
    assert len(shipped) >= 3
    for path in shipped:
        spec = load_mapping(path, TRANSFORMS, ENTITIES)
        assert spec.fields and spec.key
