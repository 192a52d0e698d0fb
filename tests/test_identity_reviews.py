"""Deciding identity reviews: merge a provisional person into a candidate, or keep it separate."""

from __future__ import annotations

import csv
import json
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from hub.cli_people import people_app
from hub.crypto import Keyring
from hub.engine import Sync
from hub.identity import IdentityConfig, IdentityResolver, ReviewError, SourcePerson
from hub.project import Project
from hub.store import Database
from hub.store.models import (
    AuditEntry,
    IdentityConflict,
    IdentityReview,
    PersonIndex,
    PersonLink,
    PersonProvenance,
    PersonRow,
)

KEY = b"k" * 32
CONFIG = IdentityConfig(sources=("hr_master", "ats", "assessment"))
ATS_AT = datetime(2024, 1, 10, 9, 0, tzinfo=UTC)
HR_AT = datetime(2024, 6, 1, 8, 0, tzinfo=UTC)
LATER = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
ZHANG = {
    "full_name": "张三丰",
    "id_number": "11010519491231002X",
    "phone": "+8613800138000",
    "email": "zsf@example.com",
    "department": "研发部",
}
LI = {"full_name": "李小龙", "id_number": "110105194012270016", "email": "lxl@example.com"}
SECRETS = (
    "张三丰",
    "李小龙",
    "欧阳娜娜",
    "13800138000",
    "11010519491231002X",
    "110105194012270016",
    "zsf@",
    "lxl@",
)


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.url = f"sqlite:///{tmp_path / 'hub.db'}"
        self.db = Database(self.url)
        self.resolver = IdentityResolver(self.db, Keyring(KEY, db=self.db), CONFIG)
        self.zhang = self.resolver.resolve_one(SourcePerson("ats", "C1", ATS_AT, ZHANG)).person_id
        self.li = self.resolver.resolve_one(SourcePerson("hr_master", "E1", HR_AT, LI)).person_id
        # Zhang's phone under another name: a weak match, sent to review with Zhang as candidate
        self.odd = SourcePerson(
            "assessment",
            "T1",
            LATER,
            {"full_name": "欧阳娜娜", "phone": "13800138000", "score": 88, "department": "财务部"},
        )
        result = self.resolver.resolve_one(self.odd)
        assert result.action == "review" and [c.person_id for c in result.candidates] == [self.zhang]
        self.provisional = result.person_id
        (review,) = self.resolver.reviews()
        self.review = review.id

    def count(self, model: Any, *where: Any) -> int:
        with self.db.session() as session:
            return int(
                session.execute(sa.select(sa.func.count()).select_from(model).where(*where)).scalar_one()
            )

    def audit(self) -> list[AuditEntry]:
        with self.db.session() as session:
            rows = list(session.execute(sa.select(AuditEntry).order_by(AuditEntry.id)).scalars())
            session.expunge_all()
            return rows


@pytest.fixture
def world(tmp_path: Path) -> Any:
    w = World(tmp_path)
    yield w
    w.db.dispose()


def test_merge_moves_everything_into_the_candidate(world: World) -> None:
    r = world.resolver
    outcome = r.merge_review(
        world.review, world.zhang, reason="same person, new name in 测评", actor="hr-admin"
    )
    assert outcome.person_id == world.zhang and outcome.provisional_id == world.provisional
    assert outcome.links == 1 and not outcome.forced
    assert set(outcome.fields_set) == {"score"}  # the other fields: Zhang's, by source priority
    assert {(c.field, c.status, c.winner_source) for c in outcome.conflicts} == {
        ("full_name", "resolved", "ats"),
        ("department", "resolved", "ats"),
    }
    # the provisional person is gone; its link, index rows and conflicts now belong to Zhang
    assert world.count(PersonRow, PersonRow.hub_id == world.provisional) == 0
    for model in (PersonLink, PersonIndex, PersonProvenance, IdentityConflict):
        assert world.count(model, model.person_id == world.provisional) == 0
    assert r.person_of("assessment", "T1") == world.zhang
    assert r.find("phone", "13800138000") == [world.zhang]
    person = r.get_person(world.zhang)
    assert person is not None and not person.needs_review
    assert person.fields["full_name"] == "张三丰" and person.fields["department"] == "研发部"
    assert person.fields["score"] == 88 and person.provenance["score"].source == "assessment"
    assert {link.source for link in person.links} == {"ats", "assessment"}
    (review,) = r.reviews(None)
    assert (review.status, review.person_id) == ("resolved", world.zhang) and review.resolved_at
    assert r.reviews() == []
    decision = r.decisions([world.review])[world.review]
    assert (decision.action, decision.actor, decision.person_id) == ("merge", "hr-admin", world.zhang)
    (entry,) = world.audit()
    assert (entry.action, entry.target, entry.actor) == ("identity.review.merge", world.review, "hr-admin")
    assert entry.details["into"] == world.zhang and entry.details["fields_set"] == ["score"]

    # the same record again, changed: straight to Zhang, no new review, no new person
    again = r.resolve_one(
        SourcePerson("assessment", "T1", datetime(2025, 4, 1, tzinfo=UTC), {**world.odd.fields, "score": 91})
    )
    assert (again.action, again.person_id) == ("linked", world.zhang)
    assert world.count(IdentityReview) == 1 and world.count(PersonRow) == 2
    assert r.get_person(world.zhang).fields["score"] == 91  # type: ignore[union-attr]
    # deciding it twice is refused
    with pytest.raises(ReviewError, match="already resolved"):
        r.merge_review(world.review, world.zhang, reason="again", actor="x")


def test_separate_keeps_the_provisional_person(world: World) -> None:
    r = world.resolver
    assert r.separate_review(world.review, reason="different people", actor="hr-admin") == world.provisional
    person = r.get_person(world.provisional)
    assert person is not None and not person.needs_review and person.fields["full_name"] == "欧阳娜娜"
    (review,) = r.reviews("resolved")
    assert review.person_id == world.provisional
    assert [e.action for e in world.audit()] == ["identity.review.separate"]
    again = r.resolve_one(world.odd)
    assert (again.action, again.person_id) == ("linked", world.provisional)
    assert world.count(IdentityReview) == 1 and world.count(PersonRow) == 3


def test_refused_decisions(world: World) -> None:
    r = world.resolver
    with pytest.raises(ReviewError, match="not a candidate"):
        r.merge_review(world.review, world.li, reason="typo", actor="x")
    with pytest.raises(ReviewError, match="own provisional person"):
        r.merge_review(world.review, world.provisional, reason="typo", actor="x")
    with pytest.raises(ReviewError, match="no person"):
        r.merge_review(world.review, "nobody", reason="typo", actor="x")
    with pytest.raises(ReviewError, match="reason is required"):
        r.merge_review(world.review, world.zhang, reason="  ", actor="x")
    with pytest.raises(ReviewError, match="no review"):
        r.separate_review("nope", reason="x", actor="x")
    assert world.audit() == [] and r.reviews()[0].status == "open"
    # --force merges into a person who is not a candidate; the audit row says so
    outcome = r.merge_review(
        world.review, world.li, reason="checked by phone 13800138000", actor="x", force=True
    )
    assert outcome.forced and r.person_of("assessment", "T1") == world.li
    (entry,) = world.audit()
    assert entry.details["forced"] is True and "13800138000" not in (entry.reason or "")
    assert "138****8000" in (entry.reason or "")


def test_separating_a_record_with_another_persons_id_number_needs_force(world: World) -> None:
    r = world.resolver
    # Zhang's e-mail with Li's ID number: two candidates, and the ID number is Li's
    result = r.resolve_one(
        SourcePerson("scorecards", "S1", LATER, {"email": ZHANG["email"], "id_number": LI["id_number"]})
    )
    assert result.action == "review"
    review = next(v.id for v in r.reviews() if v.person_id == result.person_id)
    with pytest.raises(ReviewError, match=f"belongs to person {world.li}"):
        r.separate_review(review, reason="x", actor="x")
    assert r.separate_review(review, reason="x", actor="x", force=True) == result.person_id
    assert r.find("id_number", LI["id_number"]) == [world.li]  # still one person per ID number


def test_merging_into_li_keeps_lis_id_number(world: World) -> None:
    r = world.resolver
    result = r.resolve_one(
        SourcePerson("scorecards", "S2", LATER, {"email": ZHANG["email"], "id_number": LI["id_number"]})
    )
    review = next(v.id for v in r.reviews() if v.person_id == result.person_id)
    outcome = r.merge_review(review, world.li, reason="the e-mail was a typo", actor="x")
    assert outcome.person_id == world.li
    assert r.find("id_number", LI["id_number"]) == [world.li]
    # the e-mail came along: Li is now found by it too (next to Zhang, who holds it as well)
    assert set(r.find("email", ZHANG["email"])) == {world.zhang, world.li}
    # the other open review lists the merged person no more
    assert all(result.person_id not in {c.person_id for c in v.candidates} for v in r.reviews(None))


def test_no_personal_data_in_audit_rows(world: World) -> None:
    r = world.resolver
    r.merge_review(world.review, world.zhang, reason="张三丰 is 13800138000, zsf@example.com", actor="x")
    data = json.dumps([(e.target, e.reason, e.details) for e in world.audit()], ensure_ascii=False)
    for secret in ("13800138000", "zsf@example.com", "11010519491231002X", "欧阳娜娜", "财务部"):
        assert secret not in data


def test_review_cli(world: World, write_project: Any) -> None:
    config = write_project(
        f"""
        [hub]
        database = "{world.url}"
        [identity]
        sources = ["hr_master", "ats", "assessment"]
        """
    )
    runner = CliRunner()
    listed = runner.invoke(people_app, ["reviews", "--json", "-c", str(config)])
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.stdout)
    assert row["id"] == world.review and row["status"] == "open" and row["candidates"] == 1
    assert "phone matches" in row["reason"]
    table = runner.invoke(people_app, ["reviews", "-c", str(config)])
    assert table.exit_code == 0 and world.review in table.stdout

    shown = runner.invoke(people_app, ["review", world.review, "--json", "-c", str(config)])
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    assert data["record"]["full_name"] == "欧***" and data["record"]["phone"] == "138****8000"
    (candidate,) = data["candidates"]
    assert candidate["person_id"] == world.zhang and "phone matches" in candidate["via"]
    assert candidate["fields"]["phone"] == {"value": "138****8000", "same": True}
    assert candidate["fields"]["full_name"] == {"value": "张**", "same": False}
    assert candidate["fields"]["score"]["same"] is None
    text = runner.invoke(people_app, ["review", world.review, "-c", str(config)])
    assert text.exit_code == 0 and "--merge PERSON_ID" in text.stdout
    for output in (listed.stdout, table.stdout, shown.stdout, text.stdout):
        for secret in SECRETS:
            assert secret not in output

    assert (
        runner.invoke(
            people_app, ["review", world.review, "--merge", world.zhang, "-c", str(config)]
        ).exit_code
        == 2
    )
    both = ["review", world.review, "--merge", world.zhang, "--separate", "--reason", "x", "-c", str(config)]
    assert runner.invoke(people_app, both).exit_code == 2
    refused = runner.invoke(
        people_app, ["review", world.review, "--merge", world.li, "--reason", "x", "-c", str(config)]
    )
    assert refused.exit_code == 1 and "not a candidate" in refused.output
    merged = runner.invoke(
        people_app,
        [
            "review",
            world.review,
            "--merge",
            world.zhang,
            "--reason",
            "same phone",
            "--json",
            "-c",
            str(config),
        ],
    )
    assert merged.exit_code == 0, merged.output
    assert json.loads(merged.stdout)["person_id"] == world.zhang
    resolved = runner.invoke(people_app, ["reviews", "--status", "resolved", "--json", "-c", str(config)])
    (row,) = json.loads(resolved.stdout)
    assert (row["status"], row["decision"], row["person_id"]) == ("resolved", "merge", world.zhang)
    assert json.loads(runner.invoke(people_app, ["reviews", "--json", "-c", str(config)]).stdout) == []
    assert runner.invoke(people_app, ["reviews", "--status", "closed", "-c", str(config)]).exit_code == 2
    audit = [(e.action, e.target) for e in world.audit()]
    assert ("identity.review.show", world.review) in audit and (
        "identity.review.merge",
        world.review,
    ) in audit


def test_a_merged_review_stays_merged_through_syncs(tmp_path: Path, write_project: Any) -> None:
    """HR master and ATS pipelines: the ATS record is ambiguous; merged, later syncs keep it merged."""
    mapping = textwrap.dedent(
        """\
        entity: Person
        key: [{key}]
        fields:
          display_name: {{from: name, transforms: [trim]}}
          mobile_phone: {{from: mobile, transforms: [phone]}}
        identity:
          full_name: {{from: name, transforms: [nfkc, trim]}}
          phone: {{from: mobile, transforms: [phone]}}
          email: {{from: email, transforms: [email]}}
        """
    )
    (tmp_path / "hr.yaml").write_text(mapping.format(key="emp_no"), encoding="utf-8")
    (tmp_path / "ats.yaml").write_text(mapping.format(key="cand_id"), encoding="utf-8")

    def write(path: Path, header: list[str], rows: list[list[str]]) -> None:
        with open(path, "w", encoding="utf-8", newline="") as handle:
            csv.writer(handle).writerows([header, *rows])

    write(
        tmp_path / "hr.csv",
        ["emp_no", "name", "mobile", "email"],
        [["E1", "张三丰", "13800138000", "z@example.com"]],
    )
    ats_rows = [["C9", "张三峰峰", "13800138000", ""]]  # Zhang's phone, a name two edits away
    write(tmp_path / "ats.csv", ["cand_id", "name", "mobile", "email"], ats_rows)
    config = write_project(
        f"""
        [hub]
        database = "sqlite:///{tmp_path / "hub.db"}"
        [identity]
        sources = ["hr", "ats"]
        [connectors.hr]
        plugin = "files"
        [connectors.hr.config]
        path = "{tmp_path / "hr.csv"}"
        stream = "employees"
        [connectors.ats]
        plugin = "files"
        [connectors.ats.config]
        path = "{tmp_path / "ats.csv"}"
        stream = "candidates"
        [connectors.out]
        plugin = "sql"
        [connectors.out.config]
        url = "sqlite:///{tmp_path / "out.db"}"
        [pipelines.hr]
        source = "hr"
        streams = [{{ name = "employees", mapping = "hr.yaml", destination_stream = "hr_people" }}]
        destinations = ["out"]
        [pipelines.ats]
        source = "ats"
        streams = [{{ name = "candidates", mapping = "ats.yaml", destination_stream = "ats_people" }}]
        destinations = ["out"]
        """
    )
    project = Project(config)
    assert Sync(project, "hr").run().status == "succeeded"
    assert Sync(project, "ats").run().status == "succeeded"
    resolver = IdentityResolver(project.db, project.keyring, project.identity_config)
    (review,) = resolver.reviews()
    zhang = resolver.person_of("hr", "E1")
    assert zhang is not None and [c.person_id for c in review.candidates] == [zhang]
    resolver.merge_review(review.id, zhang, reason="confirmed with the candidate", actor="x")

    ats_rows[0][3] = "z@example.com"  # the ATS record changes: synced and resolved again
    write(tmp_path / "ats.csv", ["cand_id", "name", "mobile", "email"], ats_rows)
    again = Sync(project, "ats").run()
    assert again.status == "succeeded" and again.counts.updated == 1
    assert resolver.person_of("ats", "C9") == zhang
    assert [r.status for r in resolver.reviews(None)] == ["resolved"]
    with project.db.session() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(PersonRow)).scalar_one() == 1
    assert resolver.find("email", "z@example.com") == [zhang]
