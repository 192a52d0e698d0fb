"""Identity resolution's fast paths store and return what the plain paths did.

The E.164 phone shortcut against phonenumbers, rows written through the driver against
SQLAlchemy's own INSERT (on every backend), and batches written by a thread of their own:
in order, and a batch that cannot be written stops the run. All data is synthetic.
"""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import phonenumbers
import pytest
from sqlalchemy import delete, insert, select, text

from hub.crypto import Keyring
from hub.identity import IdentityResolver, SourcePerson, _insert_rows, _Writes, normalise_phone
from hub.store import Database
from hub.store.models import PersonIndex, PersonLink, PersonRow

KEY = b"k" * 32


def phonenumbers_e164(text: str) -> str | None:
    """What normalise_phone gives without its shortcut (phonenumbers' own answer)."""
    parsed = phonenumbers.parse(text, "CN")
    assert phonenumbers.is_possible_number(parsed)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def test_e164_mobile_numbers_skip_phonenumbers_with_its_answer() -> None:
    rng = random.Random(11)
    # every mobile prefix, the carrier-selection ones (179xx, 12593...) the parser could strip
    numbers = [f"+861{second}{rng.randrange(10**9):09d}" for second in "3456789" for _ in range(3000)]
    numbers += [f"+86179{rest:02d}{rng.randrange(10**6):06d}" for rest in range(100)]
    numbers += [f"+86179{rng.randrange(100):02d}00{rng.randrange(10**4):04d}" for _ in range(500)]
    for number in numbers:
        assert normalise_phone(number) == phonenumbers_e164(number), number
    # other shapes still go through phonenumbers
    assert normalise_phone("138 0013 8000") == "+8613800138000"
    assert normalise_phone("+86 138 0013 8000") == "+8613800138000"
    assert normalise_phone("＋８６１３８００１３８０００") == "+8613800138000"  # full-width, NFKC
    assert normalise_phone("+8612345678901") == phonenumbers_e164("+8612345678901")


def stored(db: Database, table: Any, where: Any) -> list[dict[str, Any]]:
    with db.session() as session:
        rows = session.execute(
            select(table).where(where).order_by(table.c.id if "id" in table.c else table.c.hub_id)
        )
        return [{k: v for k, v in row._mapping.items() if k != "id"} for row in rows]


def test_rows_written_through_the_driver_are_what_sqlalchemy_writes(any_db_url: str) -> None:
    db = Database(any_db_url)
    now = datetime(2024, 5, 1, 8, 30, 15, tzinfo=UTC)
    persons = [
        {
            "hub_id": f"{side}-{i}",
            "created_at": now,
            "updated_at": now,
            "needs_review": i % 2 == 0,
            "rehire": False,
            "rehired_at": now if i == 3 else None,
            "fields_ciphertext": bytes([i, 0, 255]),
        }
        for side in ("fast", "plain")
        for i in range(5)
    ]
    index = [
        {
            "person_id": f"{side}-{i % 5}",
            "kind": kind,
            "digest": f"{side}{kind}{i}",
            "unique_digest": f"{side}{kind}{i}" if kind == "id_number" else None,
        }
        for side in ("fast", "plain")
        for i in range(40)
        for kind in ("id_number", "email", "phone")
    ]
    persons_table, index_table = PersonRow.__table__, PersonIndex.__table__
    with db.session() as session:
        _insert_rows(session, persons_table, [p for p in persons if str(p["hub_id"]).startswith("fast")])
        session.execute(insert(PersonRow), [p for p in persons if str(p["hub_id"]).startswith("plain")])
        _insert_rows(session, index_table, [r for r in index if str(r["person_id"]).startswith("fast")])
        session.execute(insert(PersonIndex), [r for r in index if str(r["person_id"]).startswith("plain")])

    def same(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {k: v.replace("fast", "plain") if isinstance(v, str) else v for k, v in r.items()} for r in rows
        ]

    fast = stored(db, persons_table, persons_table.c.hub_id.like("fast-%"))
    assert len(fast) == 5 and same(fast) == stored(db, persons_table, persons_table.c.hub_id.like("plain-%"))
    fast = stored(db, index_table, index_table.c.person_id.like("fast-%"))
    assert len(fast) == 120 and same(fast) == stored(db, index_table, index_table.c.person_id.like("plain-%"))
    db.dispose()


def people(count: int, start: int = 0) -> list[SourcePerson]:
    now = datetime(2024, 5, 1, tzinfo=UTC)
    return [
        SourcePerson(
            "ats",
            str(i),
            now,
            {
                "family_name": "王",
                "given_name": f"测{i}",
                "email": f"p{i}@example.com",
                "phone": f"+86139{i:08d}",
            },
        )
        for i in range(start, start + count)
    ]


def test_batches_are_written_in_order_and_a_failed_write_stops_the_run(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'state.db'}")
    resolver = IdentityResolver(db, Keyring(KEY, db=db), batch_size=7)
    resolved = resolver.resolve(people(30))
    assert [r.action for r in resolved] == ["created"] * 30
    with db.session() as session:
        links = session.execute(select(PersonLink.id, PersonLink.person_id).order_by(PersonLink.id)).all()
    # one link per record, committed batch after batch in the records' order
    assert [person_id for _, person_id in links] == [r.person_id for r in resolved]
    again = resolver.resolve(people(30))
    assert [r.action for r in again] == ["linked"] * 30
    assert [r.person_id for r in again] == [r.person_id for r in resolved]

    calls = []
    real_apply = _Writes.apply

    def apply(self: _Writes, session: Any) -> None:
        calls.append(len(self.links))
        if len(calls) == 2:
            raise RuntimeError("the database went away")
        real_apply(self, session)

    monkeypatch.setattr(_Writes, "apply", apply)
    fresh = Database(f"sqlite:///{tmp_path / 'fresh.db'}")
    with pytest.raises(RuntimeError, match="went away"):
        IdentityResolver(fresh, Keyring(KEY, db=fresh), batch_size=7).resolve(people(30))
    assert len(calls) == 2  # the batch after the failed one was resolved, never written
    with fresh.session() as session:
        assert len(session.execute(select(PersonLink.id)).all()) == 7  # the first batch stays
        assert len(session.execute(select(PersonRow.hub_id)).all()) == 7
    db.dispose()
    fresh.dispose()


def test_sqlite_writes_skip_foreign_key_checks_on_a_connection_never_reused(tmp_path: Any) -> None:
    db = Database(f"sqlite:///{tmp_path / 'state.db'}")
    resolved = IdentityResolver(db, Keyring(KEY, db=db), batch_size=7).resolve(people(20))
    # Every connection the pool hands out checks foreign keys, so deletes still cascade.
    pooled = [db.engine.connect() for _ in range(4)]
    assert [c.exec_driver_sql("PRAGMA foreign_keys").scalar_one() for c in pooled] == [1] * 4
    for connection in pooled:
        connection.close()
    with db.session() as session:
        assert len(session.execute(select(PersonLink.id)).all()) == 20
        session.execute(delete(PersonRow).where(PersonRow.hub_id == resolved[0].person_id))
    with db.session() as session:
        assert len(session.execute(select(PersonLink.id)).all()) == 19
        assert session.execute(text("PRAGMA foreign_key_check")).all() == []  # no orphan rows
    db.dispose()


def test_new_person_ids_are_version_7_uuids_that_sort_by_creation_time(tmp_path: Any) -> None:
    db = Database(f"sqlite:///{tmp_path / 'state.db'}")
    resolver = IdentityResolver(db, Keyring(KEY, db=db))
    first = [r.person_id for r in resolver.resolve(people(300))]
    time.sleep(0.002)
    later = [r.person_id for r in resolver.resolve(people(300, start=300))]
    ids = [uuid.UUID(i) for i in first + later]
    assert {(i.version, i.variant) for i in ids} == {(7, uuid.RFC_4122)}
    assert len(set(ids)) == 600
    assert max(first) < min(later)  # the person-keyed indexes grow at their right edge
    created = datetime.fromtimestamp((ids[0].int >> 80) / 1000, UTC)
    assert abs((created - datetime.now(UTC)).total_seconds()) < 60
    db.dispose()
