"""Cases from accepted offers: the canonical store, and change events read exactly once.

``[onboarding] store`` names the ``sql`` connector the recruiting pipelines write the
canonical tables with (default: ``[evaluation] store``). :class:`OfferStore` reads an offer
from its ``offers`` table (``Offer``, or the connector's ``tables = { Offer = "..." }``), the
candidate it names (``custom_fields.candidate_remote_id``) from ``candidates``, and the
candidate's resolved Person (identity resolution) for the ID number and contacts; sealed
values are opened with the project's keys, as :mod:`hub.evaluation.store` does.

:func:`intake` reads ``change_events`` of entity ``Offer`` after a cursor kept in
``job_checkpoints`` (``onboarding:intake``) and opens a case for each offer whose status is
accepted. The cases and the new cursor commit in one transaction, and a case is keyed by its
offer (a unique digest), so each accepted offer opens exactly one case, across crashes,
repeated runs and ``hub onboarding start --offer`` of the same offer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import MetaData, Table, inspect, select

from hub.changes import open_record_id
from hub.crypto.envelope import TEXT_PREFIX
from hub.errors import ConfigProblem, ConfigurationError, HubError
from hub.evaluation.service import ProjectEvaluation, contacts_from
from hub.evaluation.store import Row, coded, decode, keyring_opener
from hub.leases import LeaseHolder
from hub.masking import mask_text
from hub.store.models import ChangeEvent, JobCheckpoint, utcnow

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from hub.onboarding.flow import OnboardingFlow
    from hub.project import Project

log = logging.getLogger("hub.onboarding")

INTAKE_CHECKPOINT = "onboarding:intake"
#: Offer columns copied into a case as they are.
OFFER_FIELDS = (
    "start_date",
    "job_title",
    "contract_term_months",
    "probation_months",
)
#: Offer columns holding a ``Coded`` enum, copied as its value.
OFFER_CODED = ("employment_type", "contract_type")
#: Offer ``custom_fields`` keys naming other records.
REFERENCES = ("application_remote_id", "candidate_remote_id", "job_remote_id")


class IntakeBusy(HubError):
    """Another process is running the intake now: this pass leaves it to that one."""


class IntakeError(HubError):
    """The canonical store cannot give what a case needs (never carries personal data)."""


class _Store(ProjectEvaluation):
    """The evaluation's canonical-store access (engine, keys, identity), on onboarding's store."""

    def __init__(self, project: Project, store: str) -> None:
        super().__init__(project)
        self._store_name = store

    @property
    def store_name(self) -> str:
        return self._store_name


def store_of(project: Project) -> str:
    """``[onboarding] store``, else ``[evaluation] store``; an error naming the key if neither."""
    store = project.settings.onboarding.store or project.settings.evaluation.store
    if not store:
        raise ConfigurationError(
            [
                ConfigProblem(
                    "onboarding.store",
                    "required to read offers: the sql connector the recruiting pipelines write the "
                    "canonical tables with",
                )
            ],
            str(project.path),
        )
    return store


class OfferStore:
    """Reads offers, their candidates and persons from the canonical store."""

    def __init__(self, project: Project, store: str | None = None) -> None:
        self.project = project
        self.name = store or store_of(project)
        self._access = _Store(project, self.name)
        config = project.settings.connectors[self.name].config
        self.schema: str | None = config.get("schema")
        self.tables: Mapping[str, str] = config.get("tables") or {}
        self.opener = keyring_opener(project.keyring, self.name)

    def _table(self, engine: Engine, entity: str, default: str) -> tuple[str | None, list[str]]:
        for stream in (entity, default):
            if stream in self.tables:
                return str(self.tables[stream]), [stream, entity, default]
        existing = set(inspect(engine).get_table_names(schema=self.schema))
        for name in (default, entity):
            if name in existing:
                return name, [name, entity, default]
        return None, [entity, default]

    def _rows(self, engine: Engine, entity: str, default: str, remote_ids: Sequence[str]) -> dict[str, Row]:
        name, streams = self._table(engine, entity, default)
        if name is None or not remote_ids:
            return {}
        table = Table(name, MetaData(), autoload_with=engine, schema=self.schema)
        if "remote_id" not in table.c:
            raise IntakeError(f"table {name!r} has no remote_id column (the canonical record key)")
        found: dict[str, Row] = {}
        streams = list(dict.fromkeys(streams))
        with engine.connect() as conn:
            for start in range(0, len(remote_ids), 500):
                query = select(table).where(table.c.remote_id.in_(list(remote_ids[start : start + 500])))
                for record in conn.execute(query).mappings():
                    remote_id = str(record["remote_id"])
                    values: dict[str, Any] = {}
                    for column, value in record.items():
                        if column.endswith("_bidx"):
                            continue
                        if isinstance(value, str) and value.startswith(TEXT_PREFIX):
                            value = self.opener(streams, str(column), remote_id, value)
                        values[str(column)] = decode(value)
                    found[remote_id] = Row(entity=entity, remote_id=remote_id, values=values)
        return found

    def offers(self, remote_ids: Iterable[str]) -> dict[str, tuple[Row, dict[str, Any]]]:
        """Each offer found, by remote id, with the case data it gives (personal data!)."""
        ids = list(dict.fromkeys(str(i) for i in remote_ids))
        engine = self._access.engine()
        try:
            offers = self._rows(engine, "Offer", "offers", ids)
            wanted = sorted({ref for o in offers.values() if (ref := o.ref("candidate"))})
            candidates = self._rows(engine, "Candidate", "candidates", wanted)
            job_ids = sorted({ref for o in offers.values() if (ref := o.ref("job"))})
            jobs = self._rows(engine, "Job", "jobs", job_ids)
        finally:
            engine.dispose()
        out: dict[str, tuple[Row, dict[str, Any]]] = {}
        for remote_id, offer in offers.items():
            candidate = candidates.get(offer.ref("candidate") or "")
            out[remote_id] = (offer, self.case_data(offer, candidate, jobs.get(offer.ref("job") or "")))
        return out

    def case_data(self, offer: Row, candidate: Row | None, job: Row | None = None) -> dict[str, Any]:
        """What a case keeps of an offer, its candidate and their Person (and the job's title and
        code when the offer does not name them: ATSs such as Greenhouse keep them on the job)."""
        data: dict[str, Any] = {}
        person_id = self._access.person_of(candidate) if candidate is not None else None
        if person_id:
            person = self._access._resolver.get_person(person_id)
            if person is not None:
                data.update(
                    {k: v for k, v in person.fields.items() if v not in (None, "") and not k.startswith("_")}
                )
                data["person_id"] = person_id
        contacts = contacts_from(candidate)
        for key, value in (("name", contacts.name), ("email", contacts.email), ("phone", contacts.phone)):
            if value and not data.get(key):
                data[key] = value
        if not data.get("name"):
            family, given = data.get("family_name"), data.get("given_name")
            name = data.get("full_name") or (f"{family}{given or ''}" if family else None)
            if name:
                data["name"] = name
        for key, value in offer.custom.items():
            if value not in (None, "") and key not in data:
                data[key] = value
        data["offer_remote_id"] = offer.remote_id
        for key in REFERENCES:
            if offer.custom.get(key):
                data[key] = str(offer.custom[key])
        for key in OFFER_FIELDS:
            if offer.get(key) not in (None, ""):
                data[key] = offer.get(key)
        for key in OFFER_CODED:
            if coded(offer.get(key)):
                data[key] = coded(offer.get(key))
        if job is not None:
            if not data.get("job_title") and job.get("title"):
                data["job_title"] = job.get("title")
            if job.get("code"):
                data.setdefault("job_code", job.get("code"))
        compensation = offer.get("compensation")
        if compensation not in (None, ""):
            data["salary"] = compensation
        return data


def offer_status(offer: Row) -> str | None:
    return coded(offer.get("status"))


@dataclass
class IntakeReport:
    """What one intake pass read and opened."""

    read: int = 0
    opened: int = 0
    existing: int = 0
    not_accepted: int = 0
    missing: int = 0
    cursor: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "read": self.read,
            "opened": self.opened,
            "existing": self.existing,
            "not_accepted": self.not_accepted,
            "missing": self.missing,
            "cursor": self.cursor,
        }


def event_entities(project: Project, entity: str) -> list[str]:
    """The names change events of ``entity`` carry: the entity's own, and the destination
    stream of every pipeline stream mapped into it (``destination_stream = "offers"``)."""
    names = {entity}
    for pipeline in project.settings.pipelines.values():
        for selection in pipeline.streams:
            if selection.mapping is None or not selection.destination_stream:
                continue
            spec = project.mappings.get(selection.mapping)
            if spec is not None and spec.entity == entity:
                names.add(selection.destination_stream)
    return sorted(names)


def intake(flow: OnboardingFlow, *, batch: int = 500, now: datetime | None = None) -> IntakeReport:
    """Open a case for every accepted offer among the change events since the last intake."""
    report = IntakeReport()
    lease = LeaseHolder(flow.db, INTAKE_CHECKPOINT, ttl=300)
    if not lease.try_acquire():
        raise IntakeBusy("another onboarding intake is running")
    try:
        store = OfferStore(flow.project, flow.config.store)
        spec = flow.config.intake
        entities = event_entities(flow.project, spec.entity)
        while True:
            with flow.db.session() as session:
                checkpoint = session.get(JobCheckpoint, INTAKE_CHECKPOINT)
                after = int((checkpoint.state if checkpoint else {}).get("after", 0))
                events = list(
                    session.execute(
                        select(ChangeEvent)
                        .where(ChangeEvent.entity.in_(entities), ChangeEvent.id > after)
                        .order_by(ChangeEvent.id)
                        .limit(batch)
                    ).scalars()
                )
            report.cursor = after
            if not events:
                break
            ids = [open_record_id(flow.keyring, e) for e in events]
            found = store.offers(ids)
            moment = now or datetime.now(UTC)
            with flow.db.session() as session:
                for remote_id in dict.fromkeys(ids):
                    report.read += 1
                    if remote_id not in found:
                        report.missing += 1
                        log.warning("intake: offer %s is not in the canonical store", mask_text(remote_id))
                        continue
                    offer, data = found[remote_id]
                    if offer_status(offer) not in spec.statuses:
                        report.not_accepted += 1
                        continue
                    _, created = flow.open_case(
                        data, source="intake", offer_remote_id=remote_id, session=session, now=moment
                    )
                    report.opened += int(created)
                    report.existing += int(not created)
                row = session.get(JobCheckpoint, INTAKE_CHECKPOINT)
                state = {"after": events[-1].id}
                if row is None:
                    session.add(JobCheckpoint(name=INTAKE_CHECKPOINT, state=state, status="running"))
                else:
                    row.state, row.updated_at = state, utcnow()
            report.cursor = events[-1].id
            flow.keyring.flush_counters()
    finally:
        lease.release()
    if report.read:
        log.info("onboarding intake: %s", report.as_dict())
    return report
