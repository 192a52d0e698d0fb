"""Identity resolution: an ATS, an assessment platform and the HR master describe 1,000 people.

The acceptance scenario is resolved once per module (``scenario``) into a SQLite store; every
test works on its own copy of that store. All data is synthetic (Faker zh_CN, seeded).
"""

from __future__ import annotations

import json
import random
import re
import shutil
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from faker import Faker
from typer.testing import CliRunner

from hub.cli_people import people_app
from hub.crypto import Keyring
from hub.errors import ConfigurationError
from hub.identity import (
    IdentityConfig,
    IdentityResolver,
    Resolution,
    SourcePerson,
    names_match,
    normalise_email,
    normalise_id_number,
    normalise_name,
    normalise_phone,
    within_edits,
)
from hub.store import Database
from hub.store.models import (
    IdentityConflict,
    IdentityReview,
    PersonIndex,
    PersonLink,
    PersonProvenance,
    PersonRow,
)

KEY = b"k" * 32  # the key tests/conftest.py puts in HUB_MASTER_KEY
IDENTITY_TABLES = (
    "persons",
    "person_index",
    "person_links",
    "person_provenance",
    "identity_conflicts",
    "identity_reviews",
)
CONFIG = IdentityConfig(
    sources=("hr_master", "ats", "assessment"),
    field_priority={"department": ("hr_master", "ats"), "resume": ("ats",)},
    rehire_sources=("ats",),
)
ATS_AT = datetime(2024, 1, 10, 9, 0, tzinfo=UTC)
ASSESSMENT_AT = datetime(2024, 2, 1, 15, 30, tzinfo=UTC)
HR_AT = datetime(2024, 6, 1, 8, 0, tzinfo=UTC)
LATER = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
DEPARTMENTS = ("研发部", "财务部", "人事部", "市场部", "销售部", "法务部")
TYPO_CHARS = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"
PEOPLE = 1000
NO_EMAIL = 7  # has no e-mail anywhere, and a typo in the assessment: found by phone + name
TYPOS = {*range(3, PEOPLE, 20), NO_EMAIL}
TERMINATED = set(range(990, 995))


@dataclass
class Human:
    family: str
    given: str
    id_number: str
    phone: str  # 11 digits
    email: str | None
    department: str
    ats_department: str
    birth_date: str
    gender: str
    assessment_name: str
    terminated: bool

    @property
    def name(self) -> str:
        return self.family + self.given


def typo(name: str, rng: random.Random, family_len: int) -> str:
    """``name`` with one character of the given name replaced."""
    pos = rng.randrange(family_len, len(name))
    new = rng.choice([c for c in TYPO_CHARS if c != name[pos]])
    return name[:pos] + new + name[pos + 1 :]


def generate(n: int, seed: int) -> list[Human]:
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    humans = []
    for i in range(n):
        family, given = fake.last_name(), fake.first_name()
        ssn = fake.unique.ssn()
        department = rng.choice(DEPARTMENTS)
        ats_department = (
            rng.choice([d for d in DEPARTMENTS if d != department]) if i % 10 == 0 else department
        )
        humans.append(
            Human(
                family=family,
                given=given,
                id_number=ssn,
                phone=fake.unique.phone_number(),
                email=None if i == NO_EMAIL else fake.unique.email(),
                department=department,
                ats_department=ats_department,
                birth_date=f"{ssn[6:10]}-{ssn[10:12]}-{ssn[12:14]}",
                gender="MALE" if int(ssn[16]) % 2 else "FEMALE",
                assessment_name=typo(family + given, rng, len(family)) if i in TYPOS else family + given,
                terminated=i in TERMINATED,
            )
        )
    return humans


def ats_record(h: Human, remote_id: str, at: datetime = ATS_AT, **extra: Any) -> SourcePerson:
    fields = {
        "family_name": h.family,
        "given_name": h.given,
        "full_name": h.name,
        "id_number": h.id_number,
        "email": h.email,
        "phone": "+86" + h.phone,
        "birth_date": h.birth_date,
        "gender": h.gender,
        "department": h.ats_department,
        "resume": f"简历：{h.name}，五年经验",
        "stage": "offer",
        **extra,
    }
    return SourcePerson("ats", remote_id, at, fields)


def build_sources(
    humans: list[Human], seed: int
) -> tuple[dict[str, list[SourcePerson]], dict[tuple[str, str], int]]:
    """The three feeds, with unrelated remote ids, and which human each record is about."""
    rng = random.Random(seed)
    n = len(humans)
    ats_ids = [f"C{x}" for x in rng.sample(range(10**7, 10**8), n)]
    hr_ids = [f"E{x:07d}" for x in rng.sample(range(1, 10**7), n)]
    feeds: dict[str, list[SourcePerson]] = {"ats": [], "assessment": [], "hr_master": []}
    origin: dict[tuple[str, str], int] = {}
    for i, h in enumerate(humans):
        ats = ats_record(h, ats_ids[i])
        assessment = SourcePerson(
            "assessment",
            str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            ASSESSMENT_AT,
            {
                "full_name": h.assessment_name,
                "email": h.email.upper() if h.email and i % 3 == 0 else h.email,
                "phone": h.phone,  # national form; the resolver makes it E.164
                "score": rng.randint(40, 100),
                "assessment": "综合能力测评",
            },
        )
        hr = SourcePerson(
            "hr_master",
            hr_ids[i],
            HR_AT,
            {
                "family_name": h.family,
                "given_name": h.given,
                "full_name": h.name,
                "id_number": h.id_number,
                "phone": "+86" + h.phone,
                "birth_date": h.birth_date,
                "gender": h.gender,
                "department": h.department,
                "employment_status": "terminated" if h.terminated else "active",
                "terminated_at": "2024-05-01" if h.terminated else None,
            },
        )
        for record in (ats, assessment, hr):
            feeds[record.source].append(record)
            origin[(record.source, record.remote_id)] = i
    rng.shuffle(feeds["assessment"])
    rng.shuffle(feeds["hr_master"])
    return feeds, origin


@dataclass
class Scenario:
    path: Path
    humans: list[Human]
    records: list[SourcePerson]
    origin: dict[tuple[str, str], int]
    results: list[Resolution]
    elapsed: float
    person_of_human: dict[int, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    path = tmp_path_factory.mktemp("identity") / "hub.db"
    humans = generate(PEOPLE, seed=20240601)
    feeds, origin = build_sources(humans, seed=7)
    records = [r for feed in feeds.values() for r in feed]
    random.Random(11).shuffle(records)  # the order of arrival must not matter
    db = Database(f"sqlite:///{path}")
    resolver = IdentityResolver(db, Keyring(KEY, db=db), CONFIG)
    started = time.perf_counter()
    results = resolver.resolve(records)
    elapsed = time.perf_counter() - started
    db.dispose()  # checkpoints the WAL into the file
    found = Scenario(path, humans, records, origin, results, elapsed)
    for record, result in zip(records, results, strict=True):
        found.person_of_human.setdefault(origin[(record.source, record.remote_id)], result.person_id)
    return found


@dataclass
class Store:
    db: Database
    resolver: IdentityResolver
    url: str

    def count(self, model: Any, *where: Any) -> int:
        with self.db.session() as session:
            return int(
                session.execute(sa.select(sa.func.count()).select_from(model).where(*where)).scalar_one()
            )

    def ciphertexts(self) -> dict[str, bytes]:
        with self.db.session() as session:
            return dict(
                session.execute(sa.select(PersonRow.hub_id, PersonRow.fields_ciphertext)).tuples().all()
            )


@pytest.fixture
def store(scenario: Scenario, tmp_path: Path) -> Iterator[Store]:
    """A private copy of the resolved scenario."""
    path = tmp_path / "hub.db"
    shutil.copyfile(scenario.path, path)
    url = f"sqlite:///{path}"
    db = Database(url)
    yield Store(db, IdentityResolver(db, Keyring(KEY, db=db), CONFIG), url)
    db.dispose()


def by_human(scenario: Scenario, results: list[Resolution] | None = None) -> dict[int, list[Resolution]]:
    grouped: dict[int, list[Resolution]] = {}
    for record, result in zip(scenario.records, results or scenario.results, strict=True):
        grouped.setdefault(scenario.origin[(record.source, record.remote_id)], []).append(result)
    return grouped


# -- the acceptance scenario ----------------------------------------------------------------------


def test_three_sources_resolve_to_exactly_one_person_each(scenario: Scenario, store: Store) -> None:
    assert len(scenario.records) == 3 * PEOPLE
    assert scenario.elapsed < 10, f"resolving 3,000 records took {scenario.elapsed:.1f}s"
    grouped = by_human(scenario)
    for i, results in grouped.items():
        assert len({r.person_id for r in results}) == 1, f"human {i} split over several persons"
    assert len({results[0].person_id for results in grouped.values()}) == PEOPLE  # nobody merged together
    assert store.count(PersonRow) == PEOPLE
    assert store.count(PersonRow, PersonRow.needs_review.is_(True)) == 0
    assert store.count(IdentityReview) == 0
    assert store.count(PersonLink) == 3 * PEOPLE
    actions = Counter(r.action for r in scenario.results)
    assert actions == {"created": PEOPLE, "matched": 2 * PEOPLE}
    assert not any(r.rehire or r.needs_review for r in scenario.results)


def test_typos_a_missing_email_and_no_id_numbers_still_match(scenario: Scenario, store: Store) -> None:
    grouped = by_human(scenario)
    # the person without an e-mail, with a typo in the assessment, is found by phone + name
    assert "phone_name" in {r.matched_by for r in grouped[NO_EMAIL]}
    assert scenario.humans[NO_EMAIL].assessment_name != scenario.humans[NO_EMAIL].name
    person = store.resolver.get_person(scenario.person_of_human[NO_EMAIL])
    assert person is not None
    assert "email" not in person.fields
    assert person.fields["full_name"] == scenario.humans[NO_EMAIL].name  # the HR master's spelling won
    # every ID number, e-mail and phone finds its person through the blind index
    for i in (0, 3, NO_EMAIL, 500, 999):
        h, hub_id = scenario.humans[i], scenario.person_of_human[i]
        assert store.resolver.find("id_number", h.id_number.lower()) == [hub_id]
        assert store.resolver.find("phone", h.phone) == [hub_id]
        if h.email:
            assert store.resolver.find("email", f"  {h.email.upper()} ") == [hub_id]


def test_provenance_and_source_priority(scenario: Scenario, store: Store) -> None:
    differing = [i for i, h in enumerate(scenario.humans) if h.department != h.ats_department]
    assert len(differing) == PEOPLE // 10
    with store.db.session() as session:
        conflicts = list(session.execute(sa.select(IdentityConflict)).scalars())
    assert {(c.status, c.kind) for c in conflicts} == {("resolved", "value")}  # nothing left open
    departments = [c for c in conflicts if c.field == "department"]
    assert len(departments) == len(differing)
    assert {c.winner_source for c in departments} == {"hr_master"}
    names = [c for c in conflicts if c.field == "full_name"]
    assert len(names) == len(TYPOS)
    assert {c.winner_source for c in names} <= {"hr_master", "ats"}  # whichever came after the typo

    for i in [*differing[:5], 3, NO_EMAIL]:
        h = scenario.humans[i]
        person = store.resolver.get_person(scenario.person_of_human[i])
        assert person is not None
        assert person.fields["department"] == h.department
        assert person.fields["full_name"] == h.name
        source_of = {name: p.source for name, p in person.provenance.items()}
        assert source_of["department"] == "hr_master"
        assert source_of["full_name"] == "hr_master"
        assert source_of["id_number"] == "hr_master"
        assert source_of["resume"] == "ats"
        assert source_of["score"] == "assessment"
        assert source_of["employment_status"] == "hr_master"
        assert person.provenance["score"].observed_at == ASSESSMENT_AT
        assert person.provenance["department"].observed_at == HR_AT
        assert set(person.provenance) == set(person.fields)
        assert sorted(link.source for link in person.links) == ["assessment", "ats", "hr_master"]
    person = store.resolver.get_person(scenario.person_of_human[differing[0]])
    assert person is not None
    (conflict,) = [c for c in person.conflicts if c.field == "department"]
    assert {conflict.existing, conflict.incoming} == {
        scenario.humans[differing[0]].department,
        scenario.humans[differing[0]].ats_department,
    }


def test_a_rerun_changes_nothing(scenario: Scenario, store: Store) -> None:
    counts = {
        m: store.count(m) for m in (PersonRow, PersonIndex, PersonLink, PersonProvenance, IdentityConflict)
    }
    before = store.ciphertexts()
    records = list(scenario.records)
    random.Random(99).shuffle(records)
    again = store.resolver.resolve(records)
    first = {(r.source, r.remote_id): r.person_id for r in scenario.results}
    assert all(first[(r.source, r.remote_id)] == r.person_id for r in again)
    assert {r.action for r in again} == {"linked"}
    assert not any(r.conflicts or r.changed_fields for r in again)
    assert {m: store.count(m) for m in counts} == counts
    assert store.ciphertexts() == before  # not even re-sealed


def test_a_terminated_person_back_from_the_ats_is_a_rehire(scenario: Scenario, store: Store) -> None:
    gone, active = 990, 5
    assert scenario.humans[gone].terminated and not scenario.humans[active].terminated
    new = [
        ats_record(scenario.humans[gone], "C-REHIRE-1", LATER, stage="applied"),
        ats_record(scenario.humans[active], "C-TRANSFER-1", LATER, stage="applied"),
    ]
    rehired, internal = store.resolver.resolve(new)
    assert (rehired.person_id, rehired.action, rehired.rehire) == (
        scenario.person_of_human[gone],
        "matched",
        True,
    )
    assert (internal.person_id, internal.rehire) == (scenario.person_of_human[active], False)
    person = store.resolver.get_person(rehired.person_id)
    assert person is not None and person.rehire and person.rehired_at == LATER
    assert [link.rehire for link in person.links if link.source == "ats"] == [False, True]
    other = store.resolver.get_person(internal.person_id)
    assert other is not None and not other.rehire
    # re-running the same records: still the rehire record, nothing new
    again = store.resolver.resolve(new)
    assert [(r.action, r.rehire) for r in again] == [("linked", True), ("linked", False)]
    assert store.count(PersonRow) == PEOPLE


def test_ambiguous_records_go_to_review_and_are_not_merged(scenario: Scenario, store: Store) -> None:
    a, b, c, d = (scenario.person_of_human[i] for i in (10, 11, 12, 13))
    ha, hb, hc, hd = (scenario.humans[i] for i in (10, 11, 12, 13))
    before = store.ciphertexts()
    odd = [
        # A's phone, a completely different name
        SourcePerson("assessment", "odd-1", LATER, {"full_name": "欧阳娜娜", "phone": ha.phone, "score": 3}),
        # B's e-mail with C's ID number
        SourcePerson(
            "ats",
            "odd-2",
            LATER,
            {"full_name": hb.name, "email": hb.email, "id_number": hc.id_number, "phone": "+8613000000001"},
        ),
        # D's name and birth date, nothing else in common
        SourcePerson(
            "hr_master",
            "odd-3",
            LATER,
            {"full_name": hd.name, "birth_date": hd.birth_date, "phone": "+8613000000002"},
        ),
    ]
    results = store.resolver.resolve(odd)
    assert [r.action for r in results] == ["review"] * 3
    assert all(r.needs_review and r.person_id not in {a, b, c, d} for r in results)
    assert [{cand.person_id for cand in r.candidates} for r in results] == [{a}, {b, c}, {d}]
    assert "name differs" in (results[0].review_reason or "")
    assert "another ID number" in (results[1].review_reason or "")
    assert "birth date" in (results[2].review_reason or "")
    assert store.ciphertexts().items() >= before.items()  # A, B, C and D untouched
    reviews = store.resolver.reviews()
    assert {(r.person_id, r.status) for r in reviews} == {(r.person_id, "open") for r in results}
    assert store.count(PersonRow, PersonRow.needs_review.is_(False)) == PEOPLE
    for result in results:
        shown = store.resolver.get_person(result.person_id)
        assert shown is not None and shown.needs_review and len(shown.reviews) == 1
    # the record with C's ID number did not take C's place in the index
    assert store.resolver.find("id_number", hc.id_number) == [c]
    assert set(store.resolver.find("phone", ha.phone)) == {a, results[0].person_id}
    # the next record about A is still A's, and a re-run opens no new review
    assert store.resolver.resolve_one(ats_record(ha, "C-A-2", LATER)).person_id == a
    again = store.resolver.resolve(odd)
    assert [r.person_id for r in again] == [r.person_id for r in results]
    assert [r.action for r in again] == ["review"] * 3
    assert again[1].review_reason == results[1].review_reason
    assert store.count(IdentityReview) == 3


def test_an_id_number_contradicting_an_email_match_goes_to_review(scenario: Scenario, store: Store) -> None:
    """Two valid, different ID numbers are two people, even when they share an e-mail."""
    h, hub_id = scenario.humans[20], scenario.person_of_human[20]
    other_id = "11010519491231002X"  # valid, and nobody's
    result = store.resolver.resolve_one(
        SourcePerson(
            "scorecards", "sc-1", LATER, {"full_name": h.name, "email": h.email, "id_number": other_id}
        )
    )
    assert result.action == "review" and result.needs_review
    assert hub_id in {c.person_id for c in result.candidates}
    assert result.review_reason is not None and "another ID number" in result.review_reason
    person = store.resolver.get_person(hub_id)
    assert person is not None and person.fields["id_number"] == h.id_number
    assert hub_id not in store.resolver.find("id_number", other_id)


def find_leaks(data: bytes, people: list[Human]) -> set[str]:
    """The ID numbers, phones, e-mails and names of ``people`` found anywhere in ``data``.

    Candidate spans (digit runs, e-mail shapes, runs of CJK characters in UTF-8) are cut out
    with regular expressions and looked up in sets: fast enough for thousands of people.
    """
    ids = {h.id_number.encode(): h.id_number for h in people}
    phones = {h.phone.encode(): h.phone for h in people}
    names = {n.encode(): n for h in people for n in (h.name, h.assessment_name)}
    emails: dict[bytes, dict[bytes, str]] = {}
    for h in people:
        if h.email:
            local, domain = h.email.lower().encode().split(b"@")
            emails.setdefault(local, {})[domain] = h.email
    found: set[str] = set()
    for run in re.findall(rb"[0-9Xx]{11,}", data):
        for size, pool in ((11, phones), (18, ids)):
            for k in range(len(run) - size + 1):
                if run[k : k + size].upper() in pool:
                    found.add(pool[run[k : k + size].upper()])
    for local, domain in re.findall(rb"([A-Za-z0-9._%+-]+)@([A-Za-z0-9.-]+)", data):
        local, domain = local.lower(), domain.lower()
        for k in range(len(local)):
            for known, email in emails.get(local[k:], {}).items():
                if domain.startswith(known):
                    found.add(email)
    sizes = {len(n) for n in names}
    for run in re.findall(rb"(?:[\xe4-\xe9][\x80-\xbf]{2}){2,}", data):
        for size in sizes:
            for k in range(0, len(run) - size + 1, 3):
                if run[k : k + size] in names:
                    found.add(names[run[k : k + size]])
    return found


def test_no_personal_data_in_clear(scenario: Scenario, store: Store) -> None:
    people = scenario.humans
    planted = f"x{people[1].id_number}y+86{people[2].phone}z{people[3].email.upper()}.{people[4].name}!"
    assert find_leaks(planted.encode(), people) >= {
        people[1].id_number,
        people[2].phone,
        people[3].email,
        people[4].name,
    }  # the scan can fail
    # fill every identity table: a review, an open ID-number conflict and a rehire besides the scenario
    store.resolver.resolve(
        [
            SourcePerson("ats", "odd", LATER, {"email": people[1].email, "id_number": people[2].id_number}),
            SourcePerson(
                "scorecards", "sc", LATER, {"email": people[5].email, "id_number": "11010519491231002X"}
            ),
            ats_record(people[991], "C-REHIRE", LATER),
        ]
    )
    inspector = sa.inspect(store.db.engine)
    tables = inspector.get_table_names()
    assert set(IDENTITY_TABLES) <= set(tables)
    with store.db.engine.connect() as conn:
        for table in tables:
            rows = list(conn.execute(sa.text(f"SELECT * FROM {table}")))
            if table in IDENTITY_TABLES:
                assert rows, f"{table} is empty: nothing was scanned"
            data = b"\n".join(
                b"\t".join(v if isinstance(v, bytes) else str(v).encode() for v in row) for row in rows
            )
            assert not find_leaks(data, people), f"{table} holds personal data in clear"
    store.db.dispose()
    for path in [
        *scenario.path.parent.glob("hub.db*"),
        *Path(store.url.removeprefix("sqlite:///")).parent.glob("hub.db*"),
    ]:
        assert not find_leaks(path.read_bytes(), people), f"{path.name} holds personal data in clear"


def test_people_find_and_show(
    scenario: Scenario, store: Store, write_project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_project(f'[hub]\ndatabase = "{store.url}"\n')
    runner = CliRunner()
    h, hub_id = scenario.humans[0], scenario.person_of_human[0]
    spaced = f" {h.id_number[:6]} {h.id_number[6:14]} {h.id_number[14:].lower()} "
    found = runner.invoke(people_app, ["find", "--id-number", spaced, "--config", str(config), "--json"])
    assert found.exit_code == 0, found.output
    (row,) = json.loads(found.stdout)
    assert row["hub_id"] == hub_id
    assert row["sources"] == ["assessment", "ats", "hr_master"]
    assert row["id_number"] == h.id_number[:3] + "*" * 11 + h.id_number[-4:]
    assert row["phone"] == h.phone[:3] + "****" + h.phone[-4:]
    assert row["name"] == h.name[0] + "*" * (len(h.name) - 1)

    table = runner.invoke(
        people_app,
        ["find", "--phone", f"+86 {h.phone[:3]} {h.phone[3:7]} {h.phone[7:]}"],
        env={"HUB_CONFIG": str(config)},
    )
    assert table.exit_code == 0, table.output
    assert hub_id in table.stdout and h.phone not in table.stdout

    i = next(i for i, x in enumerate(scenario.humans) if x.department != x.ats_department)
    shown = runner.invoke(people_app, ["show", scenario.person_of_human[i], "-c", str(config), "--json"])
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    assert data["fields"]["department"] == {
        "value": scenario.humans[i].department,
        "source": "hr_master",
        "observed_at": HR_AT.isoformat(),
    }
    assert data["fields"]["id_number"]["value"].count("*") == 11
    assert data["fields"]["birth_date"]["value"] == "***"
    assert [c["winner_source"] for c in data["conflicts"] if c["field"] == "department"] == ["hr_master"]
    assert data["needs_review"] is False and data["reviews"] == []
    human = scenario.humans[i]
    for secret in (human.id_number, human.phone, human.email or "@@", human.name, human.birth_date):
        assert secret not in shown.stdout
    text = runner.invoke(people_app, ["show", scenario.person_of_human[i], "-c", str(config)])
    assert text.exit_code == 0 and "department" in text.stdout and human.id_number not in text.stdout

    # run as ``hub -c FILE people find``: the main command's --config is used
    monkeypatch.setitem(sys.modules, "hub.cli", SimpleNamespace(state=SimpleNamespace(config=config)))
    inherited = runner.invoke(people_app, ["find", "--email", scenario.humans[1].email or "", "--json"])
    assert inherited.exit_code == 0, inherited.output
    assert [r["hub_id"] for r in json.loads(inherited.stdout)] == [scenario.person_of_human[1]]

    missing = runner.invoke(people_app, ["find", "--email", "nobody@example.invalid", "-c", str(config)])
    assert missing.exit_code == 1
    assert runner.invoke(people_app, ["find", "-c", str(config)]).exit_code == 2
    assert runner.invoke(people_app, ["show", str(uuid.uuid4()), "-c", str(config)]).exit_code == 1


# -- rules, priorities and normalisation -------------------------------------------------------------


def fresh(tmp_path: Path, config: IdentityConfig) -> IdentityResolver:
    db = Database(f"sqlite:///{tmp_path / 'fresh.db'}")
    return IdentityResolver(db, Keyring(KEY, db=db), config)


def test_normalisation() -> None:
    assert normalise_id_number(" １１０１０５ 19491231002ｘ ") == "11010519491231002X"
    assert normalise_id_number("110105491231002") == "11010519491231002X"  # 15 digits upgraded
    assert normalise_email("  Zhang.Wei@Example.COM ") == "zhang.wei@example.com"
    assert normalise_email("zhang.wei＠example.com") == "zhang.wei@example.com"
    for phone in (
        "13800138000",
        "+86 138 0013 8000",
        "008613800138000",
        "１３８００１３８０００",
        "138-0013-8000",
    ):
        assert normalise_phone(phone) == "+8613800138000"
    assert normalise_name(" 张\u3000三\u200b丰 ") == "张三丰"
    assert normalise_name("买买提•艾力") == normalise_name("买买提·艾力")
    assert within_edits("张三丰", "张三风", 1) and within_edits("张三", "张三丰", 1)
    assert not within_edits("张三丰", "李四丰", 1) and not within_edits("王小明", "欧阳娜娜", 1)
    assert names_match(["张三丰"], ["李某", "张三峰"], 1)


def test_rules_are_configurable(tmp_path: Path) -> None:
    records = [
        SourcePerson(
            "ats", "1", ATS_AT, {"full_name": "张三丰", "email": "z@example.com", "phone": "13800138000"}
        ),
        SourcePerson("assessment", "a", ATS_AT, {"full_name": "张三风", "email": "z@example.com"}),
        SourcePerson("scorecards", "s", ATS_AT, {"full_name": "张三峰", "phone": "+8613800138000"}),
    ]
    only_phone = fresh(tmp_path, IdentityConfig(rules=("phone_name",)))
    results = only_phone.resolve(records)
    assert [r.action for r in results] == ["created", "created", "matched"]
    assert results[2].matched_by == "phone_name" and results[2].person_id == results[0].person_id
    db = Database(f"sqlite:///{tmp_path / 'strict.db'}")
    strict = IdentityResolver(db, Keyring(KEY, db=db), IdentityConfig(max_name_edits=0))
    assert [r.action for r in strict.resolve(records)] == ["created", "matched", "review"]
    with pytest.raises(ConfigurationError):
        IdentityConfig(rules=("id_number", "surname"))
    loaded = IdentityConfig.from_mapping(
        {
            "sources": ["hr_master", "ats"],
            "rules": ["email", "id_number"],
            "field_priority": {"resume": ["ats"]},
        }
    )
    assert loaded.rules == ("email", "id_number") and loaded.rank("resume", "ats") == 0
    assert loaded.rank("resume", "hr_master") is None and loaded.rank("department", "ats") == 1
    with pytest.raises(ConfigurationError, match=r"identity\.colour"):
        IdentityConfig.from_mapping({"colour": "red", "rules": "email"})


def test_equal_priority_keeps_the_value_and_leaves_the_conflict_open(tmp_path: Path) -> None:
    resolver = fresh(tmp_path, IdentityConfig())  # no sources: every priority is unknown
    first = resolver.resolve_one(
        SourcePerson("ats", "1", ATS_AT, {"email": "x@example.com", "title": "工程师"})
    )
    second = resolver.resolve_one(
        SourcePerson("hris", "9", HR_AT, {"email": "x@example.com", "title": "高级工程师"})
    )
    assert second.person_id == first.person_id
    (note,) = second.conflicts
    assert (note.field, note.status, note.winner_source) == ("title", "open", None)
    # the same source, newer: an update, not a conflict
    third = resolver.resolve_one(SourcePerson("ats", "1", LATER, {"email": "x@example.com", "title": "经理"}))
    assert third.conflicts == () and third.changed_fields == ("title",)
    person = resolver.get_person(first.person_id)
    assert person is not None and person.fields["title"] == "经理"
    assert person.provenance["title"].observed_at == LATER
    # an older observation from the same source is ignored
    assert resolver.resolve_one(SourcePerson("ats", "1", ATS_AT, {"title": "工程师"})).changed_fields == ()


# -- the store on each backend -----------------------------------------------------------------------


def test_identity_store_on_each_backend(any_db_url: str) -> None:
    humans = generate(30, seed=3)
    feeds, origin = build_sources(humans, seed=4)
    records = [r for feed in feeds.values() for r in feed]
    db = Database(any_db_url)
    try:
        assert db.revision() is not None and db.revision() >= "0002"
        assert set(IDENTITY_TABLES) <= set(sa.inspect(db.engine).get_table_names())
        resolver = IdentityResolver(db, Keyring(KEY, db=db), CONFIG, batch_size=25)
        results = resolver.resolve(records)
        assert len({r.person_id for r in results}) == 30
        per_human: dict[int, set[str]] = {}
        for record, result in zip(records, results, strict=True):
            per_human.setdefault(origin[(record.source, record.remote_id)], set()).add(result.person_id)
        assert all(len(ids) == 1 for ids in per_human.values())
        again = resolver.resolve(records)
        assert [r.person_id for r in again] == [r.person_id for r in results]
        assert {r.action for r in again} == {"linked"}
        hub_id = next(iter(per_human[0]))
        assert resolver.find("id_number", humans[0].id_number) == [hub_id]
        person = resolver.get_person(hub_id)
        assert person is not None and person.fields["full_name"] == humans[0].name
        assert person.provenance["score"].observed_at == ASSESSMENT_AT
        odd = resolver.resolve_one(
            SourcePerson("ats", "odd", LATER, {"email": humans[1].email, "id_number": humans[2].id_number})
        )
        assert odd.action == "review" and len(odd.candidates) == 2
        with db.session() as session:
            assert session.execute(sa.select(sa.func.count()).select_from(IdentityReview)).scalar_one() == 1
            conflicts = session.execute(sa.select(sa.func.count()).select_from(IdentityConflict)).scalar_one()
            assert conflicts == 3 + len(TYPOS & set(range(30)))  # departments of 0, 10, 20, and the typos
        # one person per ID number, enforced by the database itself
        digest = resolver.digest("id_number", humans[0].id_number)
        with pytest.raises(sa.exc.IntegrityError), db.session() as session:
            session.add(
                PersonIndex(person_id=odd.person_id, kind="id_number", digest=digest, unique_digest=digest)
            )
        command.downgrade(db.alembic_config(), "0001")
        assert not set(IDENTITY_TABLES) & set(sa.inspect(db.engine).get_table_names())
        db.upgrade()
        assert db.revision() is not None and db.revision() >= "0002"
    finally:
        db.dispose()
