"""Identity resolution beside a sync: chunks handed to a worker process, resolved in order."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from hub import identity_worker
from hub.identity_worker import IdentityResolution
from hub.mapping.executor import IDENTITY_PREFIX, REMOTE_ID
from hub.project import Project
from hub.store.models import CryptoKey, PersonLink, PersonRow


def _chunk(ids: range, phone_offset: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            REMOTE_ID: [f"c{i}" for i in ids],
            f"{IDENTITY_PREFIX}full_name": [f"测试{i}" for i in ids],
            f"{IDENTITY_PREFIX}email": [f"p{i}@example.com" for i in ids],
            f"{IDENTITY_PREFIX}phone": [f"+86139{i + phone_offset:08d}" for i in ids],
        }
    )


def _project(write_project, url: str) -> Project:
    return Project(write_project(f'[hub]\ndatabase = "{url}"\n'))


def _counts(project: Project) -> tuple[int, int]:
    with project.db.session() as session:
        persons = session.execute(select(func.count()).select_from(PersonRow)).scalar_one()
        links = session.execute(select(func.count()).select_from(PersonLink)).scalar_one()
    return persons, links


@pytest.mark.parametrize("in_worker", [True, False], ids=["worker process", "in-thread"])
def test_chunks_resolve_in_order_the_same_in_a_worker_as_in_thread(
    any_db_url: str, write_project, monkeypatch: pytest.MonkeyPatch, in_worker: bool
) -> None:
    monkeypatch.setattr(identity_worker, "PARALLEL_PEOPLE", 500 if in_worker else 10**9)
    project = _project(write_project, any_db_url)
    resolution = IdentityResolution(project)
    try:
        first = resolution.submit("ats", _chunk(range(1000)), REMOTE_ID, IDENTITY_PREFIX)
        # Half of the second chunk are the first chunk's records again, with a new phone: they
        # can only be linked if the first chunk was resolved (and written) before them.
        second = resolution.submit(
            "ats", _chunk(range(500, 1500), phone_offset=10**6), REMOTE_ID, IDENTITY_PREFIX
        )
        assert (resolution._pool is not None) is in_worker
        assert first.result() == {"created": 1000}
        assert second.result() == {"linked": 500, "created": 500}
    finally:
        resolution.close()
    assert _counts(project) == (1500, 1500)
    resolver = resolution.resolver()
    [person] = resolver.find("phone", "13901000500")  # the newer phone, merged from the same source
    assert person == resolver.person_of("ats", "c500")
    project.keyring.flush_counters()  # as a sync does at its end; the worker flushes its own
    with project.db.session() as session:  # what either sealed counts in the nonce budget
        assert session.execute(select(func.sum(CryptoKey.encryptions))).scalar_one() >= 1500
    project.db.dispose()


def test_a_failure_in_the_worker_reaches_the_commit_that_waits(
    tmp_path: Path, write_project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(identity_worker, "PARALLEL_PEOPLE", 10)
    project = _project(write_project, f"sqlite:///{tmp_path / 'state.db'}")
    resolution = IdentityResolution(project)
    try:
        broken = _chunk(range(20)).drop(columns=[REMOTE_ID])  # no remote id: the worker fails
        with pytest.raises(KeyError):
            resolution.submit("ats", broken, REMOTE_ID, IDENTITY_PREFIX).result()
        assert resolution.submit("ats", _chunk(range(20)), REMOTE_ID, IDENTITY_PREFIX).result() == {
            "created": 20
        }
    finally:
        resolution.close()
    assert _counts(project) == (20, 20)


@pytest.mark.parametrize("as_text", [True, False])
def test_the_people_of_a_chunk_leave_out_empty_fields(as_text: bool) -> None:
    frame = pd.DataFrame(
        {
            REMOTE_ID: ["40000001", "40000002", "40000003"],
            IDENTITY_PREFIX + "email": ["a@example.com", None, ""],
            IDENTITY_PREFIX + "family_name": ["张", "李", None],
            "current_title": ["x", "y", "z"],  # not an identity column
        }
    )
    if as_text:
        from hub.frames import text_frame

        frame = text_frame(frame)
    people = identity_worker.source_people("greenhouse", frame, REMOTE_ID, IDENTITY_PREFIX)
    assert [(p.source, p.remote_id, p.fields) for p in people] == [
        ("greenhouse", "40000001", {"email": "a@example.com", "family_name": "张"}),
        ("greenhouse", "40000002", {"family_name": "李"}),
        ("greenhouse", "40000003", {}),
    ]
    assert len({p.observed_at for p in people}) == 1
