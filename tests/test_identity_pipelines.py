"""Identity resolution through real pipelines: an ATS CSV, an assessment JSON and an HR master table."""

from __future__ import annotations

import csv
import json
import random
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa
from faker import Faker

from hub import identity_worker
from hub.engine import Sync
from hub.project import Project
from hub.store.models import IdentityReview, PersonLink, PersonRow

PEOPLE = 1000
PREFIXES = ("135", "138", "139", "150", "151", "186", "187")


def _people(rng: random.Random) -> list[dict[str, str]]:
    fake = Faker("zh_CN")
    fake.seed_instance(20261125)
    people = []
    for i in range(PEOPLE):
        people.append(
            {
                "name": fake.name(),
                "id_number": fake.ssn(),
                "phone": rng.choice(PREFIXES) + f"{rng.randint(0, 99999999):08d}",
                "email": f"person{i}@example.com",
            }
        )
    return people


def _typo(name: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(name))
    return name[:i] + "某" + name[i + 1 :]


def _mapping(path: Path, key: str, name: str, phone: str, email: str, id_number: str | None) -> None:
    identity = f"  id_number: {{from: {id_number}, transforms: [nfkc, id_number]}}\n" if id_number else ""
    path.write_text(
        textwrap.dedent(
            f"""\
            entity: Person
            key: [{key}]
            fields:
              display_name: {{from: {name}, transforms: [trim]}}
              mobile_phone: {{from: {phone}, transforms: [phone]}}
              personal_email: {{from: {email}, transforms: [email]}}
            identity:
              full_name: {{from: {name}, transforms: [nfkc, trim]}}
              phone: {{from: {phone}, transforms: [phone]}}
              email: {{from: {email}, transforms: [email]}}
            """
        )
        + identity,
        encoding="utf-8",
    )


@pytest.mark.parametrize("in_worker", [False, True], ids=["in-thread", "worker process"])
def test_three_sources_resolve_to_one_person_each(
    tmp_path: Path, write_project, monkeypatch: pytest.MonkeyPatch, in_worker: bool
) -> None:
    if in_worker:  # chunks of this size are resolved in the sync's process otherwise
        monkeypatch.setattr(identity_worker, "PARALLEL_PEOPLE", 100)
    rng = random.Random(7)
    people = _people(rng)

    ats = tmp_path / "ats.csv"
    with open(ats, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["cand_id", "name", "id_number", "mobile", "email"])
        for i in rng.sample(range(PEOPLE), PEOPLE):
            p = people[i]
            writer.writerow(
                [f"A{rng.randint(10**6, 10**7)}-{i}", p["name"], p["id_number"], p["phone"], p["email"]]
            )

    assessment = tmp_path / "assessment.json"
    records = []
    for i in rng.sample(range(PEOPLE), PEOPLE):
        p = people[i]
        name = _typo(p["name"], rng) if i % 10 == 0 else p["name"]  # typos in one source
        email = None if i == 5 else p["email"]  # one person without an e-mail here
        records.append(
            {"uid": f"T-{i * 7919 % 100003}", "candidate": {"name": name}, "phone": p["phone"], "mail": email}
        )
    # Ambiguous: person 1's phone under a different name (here); person 2's e-mail with person 3's
    # ID number (in the HR master, below). Neither may be merged.
    records.append(
        {"uid": "T-X1", "candidate": {"name": "完全不同"}, "phone": people[1]["phone"], "mail": None}
    )
    assessment.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")

    hr = tmp_path / "hr_master.db"
    engine = sa.create_engine(f"sqlite:///{hr}")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE employees (emp_no TEXT PRIMARY KEY, name TEXT, idno TEXT, tel TEXT, mail TEXT)"
            )
        )
        for i in rng.sample(range(PEOPLE), PEOPLE):
            p = people[i]
            conn.execute(
                sa.text("INSERT INTO employees VALUES (:n, :name, :idno, :tel, :mail)"),
                {
                    "n": f"E{i:05d}",
                    "name": p["name"],
                    "idno": p["id_number"],
                    "tel": p["phone"],
                    "mail": p["email"],
                },
            )
        conn.execute(
            sa.text("INSERT INTO employees VALUES ('E99999', '某人', :idno, NULL, :mail)"),
            {"idno": people[3]["id_number"], "mail": people[2]["email"]},
        )
    engine.dispose()

    _mapping(tmp_path / "ats.yaml", "cand_id", "name", "mobile", "email", "id_number")
    _mapping(tmp_path / "assessment.yaml", "uid", "name", "phone", "mail", None)
    text = (tmp_path / "assessment.yaml").read_text(encoding="utf-8")
    text = text.replace("{from: name,", '{path: "candidate.name",')  # nested JSON in this source
    (tmp_path / "assessment.yaml").write_text(text, encoding="utf-8")
    _mapping(tmp_path / "hr.yaml", "emp_no", "name", "tel", "mail", "idno")

    config = write_project(
        f"""
        [identity]
        sources = ["hr", "ats", "assessment"]

        [connectors.ats]
        plugin = "files"
        [connectors.ats.config]
        path = "{ats}"
        stream = "candidates"
        [connectors.assessment]
        plugin = "files"
        [connectors.assessment.config]
        path = "{assessment}"
        stream = "results"
        [connectors.hr]
        plugin = "sql"
        [connectors.hr.config]
        url = "sqlite:///{hr}"
        [connectors.out]
        plugin = "sql"
        [connectors.out.config]
        url = "sqlite:///{tmp_path / "out.db"}"

        [pipelines.ats]
        source = "ats"
        streams = [{{ name = "candidates", mapping = "ats.yaml", destination_stream = "ats_people" }}]
        destinations = ["out"]
        [pipelines.assessment]
        source = "assessment"
        streams = [{{ name = "results", mapping = "assessment.yaml", destination_stream = "assessed" }}]
        destinations = ["out"]
        [pipelines.hr]
        source = "hr"
        streams = [{{ name = "employees", mapping = "hr.yaml", destination_stream = "hr_people" }}]
        destinations = ["out"]
        """
    )
    project = Project(config)
    for pipeline in ("hr", "ats", "assessment"):
        result = Sync(project, pipeline).run()
        assert result.status == "succeeded", (pipeline, result.error)

    with project.db.session() as session:

        def count(model: object, *where: object) -> int:
            return session.execute(sa.select(sa.func.count()).select_from(model).where(*where)).scalar_one()

        assert count(PersonRow, PersonRow.needs_review.is_(False)) == PEOPLE
        assert count(PersonLink) == 3 * PEOPLE + 2
        assert count(IdentityReview) == 2
    # Re-running changes nothing: every record is unchanged and not resolved again.
    again = Sync(project, "assessment").run()
    assert again.counts.unchanged == PEOPLE + 1
    with project.db.session() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(PersonRow)).scalar_one() == PEOPLE + 2
