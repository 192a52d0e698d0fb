"""hub's canonical HR schema: one pydantic model per entity, grouped by domain.

For the mapping engine::

    from hub.schema import ENTITIES, get_entity, field_specs, pii_fields, validate_record

    model = get_entity("Person")                      # KeyError lists the known names
    specs = field_specs(model)                        # name, type, required, PII class, description
    record, errors = validate_record("Person", data)  # errors: [FieldError(field, message, type)]

JSON Schemas of every entity are exported to ``docs/schema/<Entity>.json`` by
:func:`export_json_schemas` (``hub schema export``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hub.schema.assessment import AssessmentOrder, AssessmentResult
from hub.schema.base import (
    CanonicalModel,
    Coded,
    FieldError,
    FieldProvenance,
    FieldSpec,
    Money,
    PIIClass,
    SourceRef,
    field_errors,
    field_specs,
    pii,
    pii_fields,
    validate_model,
)
from hub.schema.contract import EmploymentContract, SignFlow
from hub.schema.directory import DirectoryAccount
from hub.schema.employment import (
    Compensation,
    Employee,
    EmploymentRecord,
    LegalEntity,
    Location,
    OrgUnit,
    PayrollEnrollment,
    SocialInsuranceProfile,
)
from hub.schema.onboarding import OnboardingCase, OnboardingTask
from hub.schema.person import (
    BankAccount,
    Education,
    EmergencyContact,
    IdentityDocument,
    Person,
    WorkExperience,
)
from hub.schema.recruiting import Application, Attachment, Candidate, Interview, Job, Offer, Scorecard

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

_ALL: tuple[type[CanonicalModel], ...] = (
    Person,
    IdentityDocument,
    BankAccount,
    EmergencyContact,
    Education,
    WorkExperience,
    Job,
    Candidate,
    Application,
    Interview,
    Scorecard,
    Offer,
    Attachment,
    AssessmentOrder,
    AssessmentResult,
    LegalEntity,
    OrgUnit,
    Location,
    Employee,
    EmploymentRecord,
    Compensation,
    SocialInsuranceProfile,
    PayrollEnrollment,
    EmploymentContract,
    SignFlow,
    OnboardingCase,
    OnboardingTask,
    DirectoryAccount,
)

#: Every canonical entity, keyed by class name, grouped by domain.
ENTITIES: dict[str, type[CanonicalModel]] = {cls.__name__: cls for cls in _ALL}


def get_entity(name: str) -> type[CanonicalModel]:
    """The entity called ``name`` (case-insensitive); ``KeyError`` names the known entities."""
    if name in ENTITIES:
        return ENTITIES[name]
    folded = {key.lower(): cls for key, cls in ENTITIES.items()}
    if name.lower() in folded:
        return folded[name.lower()]
    raise KeyError(f"unknown entity {name!r} (known: {', '.join(sorted(ENTITIES))})")


def entity_domain(model_cls: type[CanonicalModel]) -> str:
    """The domain an entity belongs to: the name of its module (``person``, ``recruiting``…)."""
    return model_cls.__module__.rsplit(".", 1)[-1]


def validate_record(
    entity: str | type[CanonicalModel], data: Any
) -> tuple[CanonicalModel | None, list[FieldError]]:
    """Validate a dict (or JSON text) into an entity: ``(model, [])`` or ``(None, field errors)``.

    Errors carry the dotted field path, pydantic's message and error type, never the value.
    An unknown field is an error of type ``extra_forbidden`` on that field.
    """
    model_cls = get_entity(entity) if isinstance(entity, str) else entity
    return validate_model(model_cls, data)


def json_schema(name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of entity ``name``, with its domain and version."""
    model_cls = get_entity(name)
    schema = model_cls.model_json_schema()
    schema["$schema"] = JSON_SCHEMA_DIALECT
    schema["x-domain"] = entity_domain(model_cls)
    schema["x-entity-version"] = model_cls.ENTITY_VERSION
    return schema


def json_schema_text(name: str) -> str:
    """:func:`json_schema` as stable text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(json_schema(name), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def export_json_schemas(directory: Path) -> list[Path]:
    """Write ``<directory>/<Entity>.json`` for every entity; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in ENTITIES:
        path = directory / f"{name}.json"
        path.write_text(json_schema_text(name), encoding="utf-8")
        written.append(path)
    return written


__all__ = [
    "ENTITIES",
    "JSON_SCHEMA_DIALECT",
    "CanonicalModel",
    "Coded",
    "FieldError",
    "FieldProvenance",
    "FieldSpec",
    "Money",
    "PIIClass",
    "SourceRef",
    "entity_domain",
    "export_json_schemas",
    "field_errors",
    "field_specs",
    "get_entity",
    "json_schema",
    "json_schema_text",
    "pii",
    "pii_fields",
    "validate_record",
]
