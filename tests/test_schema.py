"""The canonical schema: exported JSON Schemas, lossless round trips, PII tags, strictness, CLI."""

from __future__ import annotations

import json
import types
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, ClassVar, Union, get_args, get_origin

import jsonschema
import pytest
from pydantic import AwareDatetime, BaseModel, ValidationError
from typer.testing import CliRunner

from hub.cli_schema import schema_app
from hub.masking import mask_value
from hub.schema import (
    ENTITIES,
    CanonicalModel,
    Coded,
    FieldProvenance,
    Money,
    PIIClass,
    export_json_schemas,
    field_specs,
    get_entity,
    json_schema,
    json_schema_text,
    pii,
    pii_fields,
    validate_record,
)
from hub.schema.base import MASK_KINDS, TypeLabel, declared_pii
from hub.schema.onboarding import OnboardingTask, OnboardingTaskType, make_idempotency_key
from hub.schema.person import Gender, IdentityDocument, Person, gb11643_valid

DOCS_SCHEMA = Path(__file__).resolve().parent.parent / "docs" / "schema"
VALID_RIC = "11010519491231002X"

# -- a fully populated sample of any model, built from its field types -------------------

LABEL_SAMPLES: dict[str, Any] = {
    "PhoneNumber": "+8613800138000",
    "EmailAddress": "zhang.wei@example.com",
    "CountryCode": "CN",
    "RegionCode": "110105",
    "LanguageTag": "zh-CN",
    "Sha256Hex": "ab" * 32,
    "Timestamp": datetime(2024, 3, 1, 9, 30, tzinfo=UTC),
    "Month": date(2024, 3, 1),
    "CurrencyCode": "CNY",
}
FIELD_SAMPLES: dict[tuple[str, str], Any] = {
    ("IdentityDocument", "number"): VALID_RIC,
    ("LegalEntity", "unified_social_credit_code"): "91110000600037341L",
    ("Attachment", "owner_type"): "Candidate",
}


def _label(metadata: Any) -> str | None:
    return next((m.name for m in metadata if isinstance(m, TypeLabel)), None)


def sample_value(annotation: Any, metadata: Any = ()) -> Any:
    """A valid, non-empty value of ``annotation``."""
    label = _label(metadata)
    if label is not None:
        return LABEL_SAMPLES[label]
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *extras = get_args(annotation)
        return sample_value(base, extras)
    if origin in (Union, types.UnionType):
        return sample_value(next(a for a in get_args(annotation) if a is not type(None)))
    if origin is list:
        return [sample_value(get_args(annotation)[0])]
    if origin is dict:
        return {"key": sample_value(get_args(annotation)[1])}
    if annotation is Any:
        return "value"
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return sample_model(annotation)
        if issubclass(annotation, Enum):
            return next(iter(annotation))
        if annotation is AwareDatetime or issubclass(annotation, datetime):
            return datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
        simple = {
            bool: True,
            int: 1,
            Decimal: Decimal("0.5"),
            str: "text",
            date: date(2024, 3, 1),
            uuid.UUID: uuid.UUID("12345678-1234-5678-1234-567812345678"),
        }
        if annotation in simple:
            return simple[annotation]
    raise AssertionError(f"no sample for {annotation!r}")


def sample_model(model_cls: type[BaseModel]) -> BaseModel:
    """An instance of ``model_cls`` with every field set to a valid, non-empty value."""
    data: dict[str, Any] = {}
    for name, field in model_cls.model_fields.items():
        key = (model_cls.__name__, name)
        if key in FIELD_SAMPLES:
            data[name] = FIELD_SAMPLES[key]
        elif name == "provenance":
            data[name] = {"hub_id": FieldProvenance(connector="ats", at=datetime(2024, 3, 1, tzinfo=UTC))}
        else:
            data[name] = sample_value(field.annotation, field.metadata)
    return model_cls.model_validate(data)


def all_models() -> list[type[BaseModel]]:
    """Every model reachable from the entities (entities, value objects, Coded[...] variants)."""
    seen: dict[str, type[BaseModel]] = {}

    def walk(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation.__name__ not in seen:
                seen[annotation.__name__] = annotation
                for field in annotation.model_fields.values():
                    walk(field.annotation)
            return
        for arg in get_args(annotation):
            walk(arg)

    for cls in ENTITIES.values():
        walk(cls)
    return list(seen.values())


# -- JSON Schema export ------------------------------------------------------------------


def test_docs_schema_files_are_current() -> None:
    """docs/schema holds exactly one file per entity, identical to the exporter's output."""
    files = {p.stem for p in DOCS_SCHEMA.glob("*.json")}
    assert files == set(ENTITIES), "run: hub schema export"
    for name in ENTITIES:
        assert (DOCS_SCHEMA / f"{name}.json").read_text(encoding="utf-8") == json_schema_text(name), (
            f"docs/schema/{name}.json is out of date: run hub schema export"
        )


def test_export_writes_every_entity_stably(tmp_path: Path) -> None:
    written = export_json_schemas(tmp_path / "schema")
    assert sorted(p.stem for p in written) == sorted(ENTITIES)
    first = {p.name: p.read_text(encoding="utf-8") for p in written}
    export_json_schemas(tmp_path / "schema")
    assert {p.name: p.read_text(encoding="utf-8") for p in written} == first
    for text in first.values():
        assert text.endswith("}\n")
        assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("name", list(ENTITIES))
def test_json_schema_is_valid_and_closed(name: str) -> None:
    schema = json_schema(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["title"] == name
    assert schema["additionalProperties"] is False
    assert schema["x-entity-version"] == ENTITIES[name].ENTITY_VERSION
    assert schema["x-domain"] in {
        "person",
        "recruiting",
        "assessment",
        "employment",
        "contract",
        "onboarding",
        "directory",
    }


def test_every_field_is_documented() -> None:
    for model in all_models():
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"


# -- round trips -------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(ENTITIES))
def test_round_trip_is_lossless(name: str) -> None:
    """A fully populated record survives model -> JSON -> model, and its JSON fits the schema."""
    cls = ENTITIES[name]
    record = sample_model(cls)
    empty = [f for f in cls.model_fields if getattr(record, f) in (None, [], {})]
    assert not empty, f"sample of {name} leaves fields empty: {empty}"

    text = record.model_dump_json()
    again = cls.model_validate_json(text)
    assert again == record
    assert again.model_dump() == record.model_dump()
    assert cls.model_validate(record.model_dump(mode="json")) == record
    assert again.model_dump_json() == text
    jsonschema.Draft202012Validator(json_schema(name)).validate(json.loads(text))


def test_decimal_and_timestamps_keep_precision() -> None:
    money = Money(amount=Decimal("12345.6789"))
    assert Money.model_validate_json(money.model_dump_json()).amount == Decimal("12345.6789")
    at = datetime(2024, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)
    prov = FieldProvenance(connector="hris", at=at)
    assert FieldProvenance.model_validate_json(prov.model_dump_json()).at == at


# -- PII tags ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entity", "field", "expected"),
    [
        ("IdentityDocument", "number", (PIIClass.ENCRYPT_INDEX, "id_number")),
        ("BankAccount", "account_number", (PIIClass.ENCRYPT_INDEX, "bank_account")),
        ("Person", "mobile_phone", (PIIClass.ENCRYPT_INDEX, "phone")),
        ("Person", "personal_email", (PIIClass.ENCRYPT_INDEX, "email")),
        ("Person", "date_of_birth", (PIIClass.ENCRYPT, "text")),
        ("Person", "home_address", (PIIClass.ENCRYPT, "text")),
        ("Person", "ethnic_group", (PIIClass.ENCRYPT, "text")),
        ("Person", "gender", (PIIClass.RESTRICTED, "text")),
        ("Person", "nationality", (PIIClass.RESTRICTED, "text")),
        ("EmergencyContact", "name", (PIIClass.ENCRYPT, "text")),
        ("EmergencyContact", "phone", (PIIClass.ENCRYPT, "phone")),
        ("Compensation", "amount", (PIIClass.ENCRYPT, "money")),
        ("Compensation", "components", (PIIClass.ENCRYPT, "money")),
        ("Offer", "compensation", (PIIClass.ENCRYPT, "money")),
        ("SocialInsuranceProfile", "si_account_no", (PIIClass.ENCRYPT_INDEX, "id_number")),
        ("SocialInsuranceProfile", "si_base", (PIIClass.ENCRYPT, "money")),
        ("PayrollEnrollment", "tax_id", (PIIClass.ENCRYPT_INDEX, "id_number")),
        ("AssessmentResult", "score", (PIIClass.RESTRICTED, "text")),
        ("AssessmentResult", "sub_results", (PIIClass.RESTRICTED, "text")),
        ("Scorecard", "ratings", (PIIClass.RESTRICTED, "text")),
        ("Scorecard", "overall_recommendation", (PIIClass.RESTRICTED, "text")),
    ],
)
def test_pii_tags(entity: str, field: str, expected: tuple[PIIClass, str]) -> None:
    assert pii_fields(get_entity(entity))[field] == expected
    prop = json_schema(entity)["properties"][field]
    assert (prop["x-pii"], prop["x-pii-kind"]) == (expected[0].value, expected[1])


def test_non_pii_fields_are_not_tagged() -> None:
    tags = pii_fields(Person)
    for name in ("hub_id", "display_name", "first_work_date", "schema_version"):
        assert name not in tags
    assert "bank_name" not in pii_fields(get_entity("BankAccount"))


def test_nested_pii_is_reported_with_dotted_paths() -> None:
    tags = pii_fields(get_entity("SignFlow"))
    assert tags["signers.id_number"] == (PIIClass.ENCRYPT_INDEX, "id_number")
    assert tags["signers.mobile"] == (PIIClass.ENCRYPT_INDEX, "phone")
    # the container is flagged too, with the strictest class inside, for top-level-only callers
    assert tags["signers"] == (PIIClass.ENCRYPT_INDEX, "text")
    assert "signers.id_number" not in pii_fields(get_entity("SignFlow"), nested=False)
    assert pii_fields(get_entity("Offer"))["compensation.components.amount"] == (PIIClass.ENCRYPT, "money")


def test_every_masking_kind_is_known_to_hub_masking() -> None:
    for model in all_models():
        for field in model.model_fields.values():
            tag = declared_pii(field)
            if tag is not None and tag[1] is not None:
                assert tag[1] in MASK_KINDS
                mask_value(tag[1], "13800138000")  # raises KeyError for a kind masking lacks


def test_pii_helper_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown masking kind"):
        pii(PIIClass.ENCRYPT, "salary", description="x")


# -- strictness and normalisation --------------------------------------------------------


@pytest.mark.parametrize("name", list(ENTITIES))
def test_unknown_fields_are_rejected(name: str) -> None:
    data = sample_model(ENTITIES[name]).model_dump(mode="json")
    data["no_such_field"] = "x"
    record, errors = validate_record(name, data)
    assert record is None
    assert [(e.field, e.type) for e in errors] == [("no_such_field", "extra_forbidden")]


def test_unknown_nested_fields_are_rejected() -> None:
    _, errors = validate_record("Compensation", {"amount": {"amount": "1", "currency": "CNY", "tax": 1}})
    assert [(e.field, e.type) for e in errors] == [("amount.tax", "extra_forbidden")]


def test_field_errors_never_carry_values() -> None:
    record, errors = validate_record(
        "Person", {"mobile_phone": "13800", "personal_email": "zhang.wei.example.com"}
    )
    assert record is None
    assert {e.field for e in errors} == {"mobile_phone", "personal_email"}
    text = " ".join(str(e) for e in errors)
    assert "13800" not in text and "zhang.wei" not in text


def test_validate_record_accepts_json_text() -> None:
    record, errors = validate_record(Person, '{"legal_family_name": "张", "gender": "FEMALE"}')
    assert errors == [] and isinstance(record, Person)
    assert record.gender == Coded[Gender](value=Gender.FEMALE)


def test_money_defaults_to_cny_and_maps_rmb() -> None:
    assert Money(amount=Decimal("100")).currency == "CNY"
    for alias in ("RMB", "rmb", "人民币", "￥", " cny "):
        assert Money(amount=Decimal("1"), currency=alias).currency == "CNY"
    assert Money(amount=Decimal("1"), currency="usd").currency == "USD"
    for bad in ("RMBX", "US", "12A", "", "美元"):
        with pytest.raises(ValidationError):
            Money(amount=Decimal("1"), currency=bad)
    assert Money.model_validate({"amount": "8000.50"}).amount == Decimal("8000.50")


def test_coded_keeps_the_raw_value() -> None:
    coded = Coded[Gender]
    assert coded.model_validate("MALE") == coded(value=Gender.MALE)
    assert coded.model_validate("female") == coded(value=Gender.FEMALE, raw="female")
    assert coded.model_validate("男") == coded(value=Gender.OTHER, raw="男")
    with pytest.raises(ValidationError):  # the explicit form is strict
        coded.model_validate({"value": "男"})


def test_every_coded_enum_has_other() -> None:
    """Unknown vendor values land in OTHER (with raw kept) instead of failing the record."""
    for model in all_models():
        if model.__name__.startswith("Coded["):
            enum_cls = model.model_fields["value"].annotation
            assert isinstance(enum_cls, type) and "OTHER" in enum_cls.__members__, model.__name__


def test_phones_are_stored_as_e164() -> None:
    for spelling in ("13800138000", "138 0013 8000", "+86 138-0013-8000", "008613800138000"):
        assert Person(mobile_phone=spelling).mobile_phone == "+8613800138000"
    assert Person(mobile_phone="010-65529988").mobile_phone == "+861065529988"
    for bad in ("12345", "not a phone", "+86 999"):
        with pytest.raises(ValidationError):
            Person(mobile_phone=bad)


def test_resident_id_checksum() -> None:
    assert gb11643_valid(VALID_RIC)
    assert not gb11643_valid("110105194912310021")
    doc = IdentityDocument(doc_type="CN_RIC", number=" 11010519491231002x ")
    assert doc.number == VALID_RIC and doc.checksum_valid is True
    assert IdentityDocument(doc_type="CN_RIC", number="110105194912310021").checksum_valid is False
    assert IdentityDocument(doc_type="PASSPORT", number="E12345678").checksum_valid is None


def test_dates_must_be_in_order() -> None:
    _, errors = validate_record("EmploymentContract", {"start_date": "2024-03-01", "end_date": "2024-02-01"})
    assert [e.field for e in errors] == [""] and "end_date is before start_date" in errors[0].message


def test_naive_timestamps_are_refused() -> None:
    _, errors = validate_record("Person", {"remote_updated_at": "2024-03-01T09:30:00"})
    assert [e.field for e in errors] == ["remote_updated_at"]


def test_month_is_stored_as_its_first_day() -> None:
    profile = get_entity("SocialInsuranceProfile").model_validate({"start_month": "2024-03-17"})
    assert profile.start_month == date(2024, 3, 1)  # type: ignore[attr-defined]


# -- envelope ----------------------------------------------------------------------------


def test_envelope_defaults_and_tombstone() -> None:
    a, b = Person(), Person()
    assert a.hub_id != b.hub_id
    assert a.schema_version == Person.ENTITY_VERSION == 1
    assert not a.is_deleted
    assert Person(remote_deleted_at=datetime(2024, 3, 1, tzinfo=UTC)).is_deleted


def test_schema_version_follows_entity_version() -> None:
    class PersonV2(Person):
        ENTITY_VERSION: ClassVar[int] = 2

    assert PersonV2().schema_version == 2
    assert PersonV2.model_json_schema()["properties"]["schema_version"]["default"] == 2
    assert Person().schema_version == 1


def test_provenance_must_name_real_fields() -> None:
    at = datetime(2024, 3, 1, tzinfo=UTC)
    Person(provenance={"mobile_phone": FieldProvenance(connector="hris", at=at)})
    Person(provenance={"home_address.city": FieldProvenance(connector="hris", at=at)})
    _, errors = validate_record(
        "Person", {"provenance": {"phone": {"connector": "hris", "at": at.isoformat()}}}
    )
    assert len(errors) == 1 and "phone" in errors[0].message


def test_onboarding_task_idempotency_key() -> None:
    case_id = uuid.uuid4()
    task = OnboardingTask(case_id=case_id, task_type="PROVISION_OA_ACCOUNT", target_connector="feishu")
    again = OnboardingTask(case_id=case_id, task_type="PROVISION_OA_ACCOUNT", target_connector="feishu")
    other = OnboardingTask(case_id=case_id, task_type="PROVISION_OA_ACCOUNT", target_connector="dingtalk")
    assert task.idempotency_key == again.idempotency_key != other.idempotency_key
    assert task.idempotency_key == make_idempotency_key(
        case_id, OnboardingTaskType.PROVISION_OA_ACCOUNT, "feishu"
    )
    assert OnboardingTask(task_type="EQUIPMENT", idempotency_key="given").idempotency_key == "given"
    _, errors = validate_record("OnboardingTask", {"task_type": "EQUIPMENT"})
    assert [e.field for e in errors] == ["idempotency_key"]


# -- lookup and introspection ------------------------------------------------------------


def test_get_entity() -> None:
    assert get_entity("Person") is Person
    assert get_entity("identitydocument") is IdentityDocument
    with pytest.raises(KeyError, match="known: Application"):
        get_entity("Worker")
    assert all(issubclass(cls, CanonicalModel) for cls in ENTITIES.values())
    assert list(ENTITIES) == [cls.__name__ for cls in ENTITIES.values()]


def test_field_specs() -> None:
    specs = {s.name: s for s in field_specs(Person)}
    assert specs["mobile_phone"].type == "PhoneNumber | None"
    assert specs["mobile_phone"].pii is PIIClass.ENCRYPT_INDEX and not specs["mobile_phone"].required
    assert specs["gender"].type == "Coded[Gender] | None"
    assert specs["nationality"].type == "list[CountryCode]"
    doc = {s.name: s for s in field_specs(IdentityDocument)}
    assert doc["number"].required and doc["doc_type"].required
    assert doc["verified_by"].pii is PIIClass.NONE and doc["verified_by"].pii_kind is None


# -- CLI ---------------------------------------------------------------------------------

runner = CliRunner()


def test_cli_list() -> None:
    result = runner.invoke(schema_app, ["list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["entity"]: r for r in json.loads(result.stdout)}
    assert set(rows) == set(ENTITIES)
    assert rows["Person"]["domain"] == "person"
    assert rows["Person"]["fields"] == len(Person.model_fields)
    assert rows["Person"]["pii_fields"] == len(pii_fields(Person, nested=False))
    table = runner.invoke(schema_app, ["list"])
    assert table.exit_code == 0 and "SocialInsuranceProfile" in table.stdout


def test_cli_show() -> None:
    result = runner.invoke(schema_app, ["show", "Person"])
    assert result.exit_code == 0, result.output
    assert "mobile_phone" in result.stdout and "encrypt_index (phone)" in result.stdout
    assert "Coded[Gender] | None" in result.stdout
    fields = json.loads(runner.invoke(schema_app, ["show", "person", "--json"]).stdout)
    assert [f["name"] for f in fields] == list(Person.model_fields)
    doc = json.loads(runner.invoke(schema_app, ["show", "IdentityDocument", "--json"]).stdout)
    number = next(f for f in doc if f["name"] == "number")
    assert (number["pii"], number["pii_kind"], number["required"]) == ("encrypt_index", "id_number", True)
    schema = runner.invoke(schema_app, ["show", "Offer", "--json-schema"])
    assert schema.exit_code == 0 and schema.stdout == json_schema_text("Offer")


def test_cli_show_unknown_entity() -> None:
    result = runner.invoke(schema_app, ["show", "Worker"])
    assert result.exit_code == 2
    assert "unknown entity 'Worker'" in result.output


def test_cli_export(tmp_path: Path) -> None:
    target = tmp_path / "out"
    assert runner.invoke(schema_app, ["export", "--dir", str(target), "--check"]).exit_code == 1
    result = runner.invoke(schema_app, ["export", "--dir", str(target)])
    assert result.exit_code == 0, result.output
    assert sorted(p.stem for p in target.glob("*.json")) == sorted(ENTITIES)
    assert runner.invoke(schema_app, ["export", "--dir", str(target), "--check"]).exit_code == 0
    assert runner.invoke(schema_app, ["export", "--dir", str(DOCS_SCHEMA), "--check"]).exit_code == 0
