"""What ``hub evaluate``, ``hub talent`` and the ``evaluation`` source share: a project's evaluator.

It opens the canonical store named by ``[evaluation] store`` (with that connector's URL,
password reference, schema and ``tables``), opens sealed values with the project's keyring,
evaluates bundles with each job's rules, and finds the contacts it may show, masked. Reading
scores and scorecards (restricted data) is written to the audit log: who, what, how many.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from hub.errors import ConfigProblem, ConfigurationError
from hub.evaluation.config import EvaluationConfig, JobRules
from hub.evaluation.scoring import Evaluation, evaluate
from hub.evaluation.store import (
    ApplicationBundle,
    CanonicalData,
    CanonicalStore,
    EvaluationError,
    Row,
    keyring_opener,
)
from hub.evaluation.text import Synonyms
from hub.masking import mask_value

if TYPE_CHECKING:
    from hub.project import Project


def mask_name(value: Any) -> str:
    """``张三丰`` -> ``张**``, ``Zhang Wei`` -> ``Z********`` (the first character, then stars)."""
    text = str(value or "").strip()
    return text[:1] + "*" * (len(text) - 1) if text else ""


@dataclass(frozen=True)
class Contacts:
    """A candidate's name and contacts in clear: only ever shown through :meth:`masked`."""

    name: str | None = None
    email: str | None = None
    phone: str | None = None

    def masked(self) -> dict[str, str | None]:
        return {
            "name": mask_name(self.name) if self.name else None,
            "email": mask_value("email", self.email) if self.email else None,
            "phone": mask_value("phone", self.phone) if self.phone else None,
        }

    def __repr__(self) -> str:  # never in clear, even in a traceback
        return f"Contacts({self.masked()})"


def contacts_from(row: Row | None) -> Contacts:
    """``custom_fields`` ``name`` / ``full_name``, ``email``, ``phone`` / ``mobile`` of a candidate."""
    if row is None:
        return Contacts()
    custom = row.custom

    def first(*keys: str) -> str | None:
        for key in keys:
            value = custom.get(key)
            if value not in (None, ""):
                return str(value)
        return None

    return Contacts(
        name=first("name", "full_name"),
        email=first("email", "personal_email"),
        phone=first("phone", "mobile", "mobile_phone"),
    )


class Evaluator:
    """Evaluations over one loaded canonical store, with a project's ``[evaluation]`` rules."""

    def __init__(
        self,
        data: CanonicalData,
        config: EvaluationConfig,
        *,
        now: datetime | None = None,
    ) -> None:
        self.data = data
        self.config = config
        self.now = now or datetime.now(UTC)
        self.synonyms = Synonyms.build(config.synonyms, builtin=config.builtin_synonyms)
        self._rules: dict[tuple[str | None, ...], JobRules] = {}

    def rules_for(self, bundle: ApplicationBundle) -> JobRules:
        """The job's rules (by its remote id, then its code), built once per job."""
        job = bundle.job
        ids = (
            (job.remote_id, str(job.get("code") or "") or None)
            if job is not None
            else (bundle.job_remote_id,)
        )
        if ids not in self._rules:
            self._rules[ids] = self.config.rules(*ids)
        return self._rules[ids]

    def evaluate(self, bundle: ApplicationBundle) -> Evaluation:
        return evaluate(bundle, self.rules_for(bundle), self.synonyms, now=self.now)

    def application(self, key: str) -> tuple[Evaluation, ApplicationBundle]:
        """One application, by remote id or hub id; :class:`EvaluationError` when unknown."""
        app = self.data.find_application(key)
        if app is None:
            raise EvaluationError(f"no application {key!r} in the canonical store (remote id or hub id)")
        bundle = self.data.bundle(app)
        return self.evaluate(bundle), bundle

    def job(self, key: str) -> list[tuple[Evaluation, ApplicationBundle]]:
        """Every application of a job (remote id, hub id or code); :class:`EvaluationError` when none."""
        apps = self.data.applications_of_job(key)
        if not apps:
            raise EvaluationError(f"no applications for job {key!r} in the canonical store")
        return [(self.evaluate(b), b) for b in self.data.bundles(apps)]

    def all(self, apps: Iterable[Row] | None = None) -> list[tuple[Evaluation, ApplicationBundle]]:
        return [(self.evaluate(b), b) for b in self.data.bundles(apps)]


class ProjectEvaluation:
    """The evaluator of a hub project: its store, keys, rules, identity store and audit log."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.config: EvaluationConfig = project.settings.evaluation

    @property
    def store_name(self) -> str:
        if not self.config.store:
            raise ConfigurationError(
                [
                    ConfigProblem(
                        "evaluation.store",
                        "required to evaluate: the sql connector the recruiting pipelines write the "
                        "canonical tables with",
                    )
                ],
                str(self.project.path),
            )
        return self.config.store

    def engine(self) -> Engine:
        from hub.store.db import make_engine

        config = self.project.config_of(self.store_name)
        url = make_url(str(config["url"]))
        if config.get("password"):
            url = url.set(password=str(config["password"]))
        return make_engine(url.render_as_string(hide_password=False))

    def store(self, engine: Engine) -> CanonicalStore:
        config = self.project.settings.connectors[self.store_name].config
        return CanonicalStore(
            engine,
            schema=config.get("schema"),
            tables=config.get("tables") or {},
            opener=keyring_opener(self.project.keyring, self.store_name),
        )

    def load(self) -> CanonicalData:
        engine = self.engine()
        try:
            data = self.store(engine).load()
        finally:
            engine.dispose()
        data.link_by_person(self.person_of)  # results that know the candidate only by e-mail
        return data

    def evaluator(self, *, now: datetime | None = None) -> Evaluator:
        return Evaluator(self.load(), self.config, now=now)

    @cached_property
    def _resolver(self) -> Any:
        from hub.identity import IdentityResolver

        return IdentityResolver(self.project.db, self.project.keyring, self.project.identity_config)

    def person_of(self, candidate: Row) -> str | None:
        """The hub Person of a candidate: ``person_id``, else identity resolution's link from the
        connector that read the candidate (each configured connector is tried, in hub.toml order)."""
        person_id = candidate.link("person")
        if person_id:
            return person_id
        for connector in self.project.settings.connectors:
            found: str | None = self._resolver.person_of(connector, candidate.remote_id)
            if found:
                return found
        return None

    def contacts(self, candidate: Row | None) -> Contacts:
        """The candidate's name and contacts: its ``custom_fields``, else its resolved Person."""
        found = contacts_from(candidate)
        if candidate is None or (found.name and found.email and found.phone):
            return found
        person_id = self.person_of(candidate)
        if person_id:
            person = self._resolver.get_person(person_id)
            if person is not None:
                fields = person.fields
                family, given = fields.get("family_name"), fields.get("given_name")
                name = fields.get("full_name") or fields.get("name")
                if not name and family:
                    name = f"{family}{given or ''}"
                found = Contacts(
                    name=found.name or (str(name) if name else None),
                    email=found.email or fields.get("email"),
                    phone=found.phone or fields.get("phone"),
                )
        return found

    def audit(self, action: str, target: str, details: dict[str, Any]) -> None:
        """Restricted data was read: who, what, how many (never a value)."""
        from hub.masking import mask_text
        from hub.project import actor
        from hub.store.models import AuditEntry

        with self.project.db.session() as session:
            session.add(
                AuditEntry(actor=actor(), action=action, target=mask_text(target)[:500], details=details)
            )
