"""Building blocks of the canonical schema: PII tags, value types and the common envelope.

Every canonical entity subclasses :class:`CanonicalModel`, which carries the envelope shared by
all synced records (hub id, source references, remote timestamps and tombstone, custom fields,
per-field provenance, schema version) and forbids unknown fields, so a mapping that targets a
field the entity does not have is an error rather than a silent drop.

Personal data is tagged per field with :func:`pii`, which stores the PII class and the masking
kind (see :mod:`hub.masking`) in the field's JSON Schema as ``x-pii`` / ``x-pii-kind``;
:func:`pii_fields` reads the tags back. Phones are E.164 strings, dates ``datetime.date``, events
timezone-aware ``datetime``, money :class:`Money`, and vendor enums :class:`Coded` (the
normalised value plus the vendor's raw value).
"""

from __future__ import annotations

import re
import types
import uuid
from collections.abc import Callable, Iterator
from copy import copy
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import Enum, StrEnum
from typing import Annotated, Any, ClassVar, Generic, TypeVar, Union, get_args, get_origin

import phonenumbers
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic.fields import FieldInfo


class PIIClass(StrEnum):
    """How a field's value is protected at rest (canonical-model.md §8 legend)."""

    NONE = "none"
    """Not personal data."""
    RESTRICTED = "restricted"
    """[R]: role-gated and access-audited, not necessarily encrypted."""
    ENCRYPT = "encrypt"
    """[E]: encrypted at rest, field-level."""
    ENCRYPT_INDEX = "encrypt_index"
    """[E+H]: encrypted, plus a keyed blind index for exact-match lookup and dedupe."""


#: Strictness order, used to derive the class of a field that only contains PII.
_PII_RANK = {PIIClass.NONE: 0, PIIClass.RESTRICTED: 1, PIIClass.ENCRYPT: 2, PIIClass.ENCRYPT_INDEX: 3}

#: Masking kinds understood by :func:`hub.masking.mask_value`.
MASK_KINDS = frozenset({"id_number", "phone", "bank_account", "email", "money", "text"})

PII_KEY = "x-pii"
PII_KIND_KEY = "x-pii-kind"


def pii(
    pii_class: PIIClass,
    kind: str | None = None,
    *,
    description: str,
    default: Any = None,
    default_factory: Callable[[], Any] | None = None,
    **kwargs: Any,
) -> Any:
    """A pydantic ``Field`` tagged with its PII class and masking kind.

    ``kind`` is one of :data:`MASK_KINDS`; it defaults to ``"text"`` (hidden entirely) for any
    class other than ``NONE``. Pass ``default=...`` for a required field. Other keyword
    arguments go to ``Field`` unchanged.
    """
    if kind is None and pii_class is not PIIClass.NONE:
        kind = "text"
    if kind is not None and kind not in MASK_KINDS:
        raise ValueError(f"unknown masking kind {kind!r} (known: {', '.join(sorted(MASK_KINDS))})")
    extra: dict[str, Any] = {PII_KEY: pii_class.value}
    if kind is not None:
        extra[PII_KIND_KEY] = kind
    if default_factory is not None:
        return Field(
            default_factory=default_factory, description=description, json_schema_extra=extra, **kwargs
        )
    return Field(default, description=description, json_schema_extra=extra, **kwargs)


def declared_pii(field: FieldInfo) -> tuple[PIIClass, str | None] | None:
    """The PII class and masking kind declared on ``field`` with :func:`pii`, or None."""
    extra = field.json_schema_extra
    if not isinstance(extra, dict) or PII_KEY not in extra:
        return None
    kind = extra.get(PII_KIND_KEY)
    return PIIClass(str(extra[PII_KEY])), str(kind) if kind is not None else None


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    """Pydantic models named anywhere in a type (``X | None``, ``list[X]``, ``dict[str, X]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    origin = get_origin(annotation)
    if origin is Annotated:
        yield from _models_in(get_args(annotation)[0])
        return
    for arg in get_args(annotation):
        yield from _models_in(arg)


def pii_fields(
    model_cls: type[BaseModel], *, nested: bool = True, _seen: frozenset[type] = frozenset()
) -> dict[str, tuple[PIIClass, str | None]]:
    """Fields of ``model_cls`` that hold personal data: ``{name: (PII class, masking kind)}``.

    Top-level names always come first. A field without its own tag that contains tagged fields
    (a list of e-sign signers, say) is reported with the strictest class found inside and kind
    ``"text"``, so callers that only look at top-level fields never miss personal data. With
    ``nested``, tagged fields of nested models follow as dotted paths (``signers.id_number``;
    list items have no index in the path).
    """
    top: dict[str, tuple[PIIClass, str | None]] = {}
    inner: dict[str, tuple[PIIClass, str | None]] = {}
    for name, field in model_cls.model_fields.items():
        declared = declared_pii(field)
        contained: dict[str, tuple[PIIClass, str | None]] = {}
        for sub in _models_in(field.annotation):
            if sub in _seen or sub is model_cls:
                continue
            for path, tag in pii_fields(sub, nested=True, _seen=_seen | {model_cls}).items():
                contained.setdefault(f"{name}.{path}", tag)
        if declared is not None and declared[0] is not PIIClass.NONE:
            top[name] = declared
        elif contained and (declared is None):
            strictest = max((c for c, _ in contained.values()), key=_PII_RANK.__getitem__)
            top[name] = (strictest, "text")
        if nested:
            inner.update(contained)
    return top | inner


# -- value types -------------------------------------------------------------------------


@dataclass(frozen=True)
class TypeLabel:
    """Marks an ``Annotated`` type with the name shown for it (``PhoneNumber``, not ``str``)."""

    name: str


def _upper_strip(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _e164(value: Any) -> Any:
    """Any phone spelling (``138 0013 8000``, ``+86-138…``, ``010-6552 9988``) -> E.164."""
    if not isinstance(value, str | int):
        return value
    text = str(value).strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException as exc:
        raise ValueError("not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _email(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    local, at, domain = value.strip().rpartition("@")
    return f"{local}{at}{domain.lower()}" if at else value.strip()


PhoneNumber = Annotated[
    str,
    BeforeValidator(_e164),
    StringConstraints(pattern=r"^\+[1-9]\d{4,14}$"),
    TypeLabel("PhoneNumber"),
]
"""A phone number in E.164 (``+8613800138000``); national CN spellings are accepted and converted."""

EmailAddress = Annotated[
    str,
    BeforeValidator(_email),
    StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254),
    TypeLabel("EmailAddress"),
]
"""An e-mail address (domain lower-cased)."""

CountryCode = Annotated[
    str, BeforeValidator(_upper_strip), StringConstraints(pattern=r"^[A-Z]{2}$"), TypeLabel("CountryCode")
]
"""ISO 3166-1 alpha-2 country code (``CN``)."""

RegionCode = Annotated[str, StringConstraints(pattern=r"^\d{6}$"), TypeLabel("RegionCode")]
"""GB/T 2260 administrative division code (行政区划代码), six digits (``110105``)."""

LanguageTag = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$"), TypeLabel("LanguageTag")
]
"""BCP 47 language tag (``zh-CN``, ``en``)."""

Sha256Hex = Annotated[
    str,
    BeforeValidator(lambda v: v.strip().lower() if isinstance(v, str) else v),
    StringConstraints(pattern=r"^[0-9a-f]{64}$"),
    TypeLabel("Sha256Hex"),
]
"""SHA-256 digest as 64 lower-case hex characters."""

Timestamp = Annotated[AwareDatetime, TypeLabel("Timestamp")]
"""A timezone-aware date and time (events; naive values are refused as ambiguous)."""


def _first_of_month(value: date) -> date:
    return value.replace(day=1)


Month = Annotated[date, AfterValidator(_first_of_month), TypeLabel("Month")]
"""A calendar month, stored as its first day (any day of the month is accepted)."""


#: Vendor spellings of ISO 4217 codes, mapped on input (Chinese systems often write RMB).
CURRENCY_ALIASES: dict[str, str] = {"RMB": "CNY", "人民币": "CNY", "元": "CNY", "¥": "CNY", "￥": "CNY"}


def _currency(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip()
    return CURRENCY_ALIASES.get(text, CURRENCY_ALIASES.get(text.upper(), text.upper()))


CurrencyCode = Annotated[
    str, BeforeValidator(_currency), StringConstraints(pattern=r"^[A-Z]{3}$"), TypeLabel("CurrencyCode")
]
"""ISO 4217 currency code; case is ignored and RMB / 人民币 / ¥ are read as CNY."""


class Money(BaseModel):
    """An amount with its ISO 4217 currency (``RMB``/``人民币`` are read as ``CNY``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    amount: Decimal = Field(description="The amount, in major units (yuan, not fen).")
    currency: CurrencyCode = Field(
        default="CNY", description="ISO 4217 currency code; RMB and 人民币 are accepted as CNY."
    )


class Address(BaseModel):
    """A postal address (mainland China first: region code and district are first-class)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    street_1: str | None = Field(default=None, description="Street, number, building.")
    street_2: str | None = Field(default=None, description="Unit, floor, room.")
    district: str | None = Field(default=None, description="District or county (区/县).")
    city: str | None = Field(default=None, description="City (市).")
    region: str | None = Field(default=None, description="Province, autonomous region or municipality (省).")
    postal_code: str | None = Field(default=None, description="Postal code.")
    country: CountryCode | None = Field(default=None, description="ISO 3166-1 alpha-2 country code.")
    region_code: RegionCode | None = Field(default=None, description="GB/T 2260 division code, if known.")
    formatted: str | None = Field(
        default=None, description="The address as one line, as the source wrote it."
    )


E = TypeVar("E", bound=StrEnum)


class Coded(BaseModel, Generic[E]):
    """A normalised enum value, with the vendor's original value kept in ``raw``.

    Besides ``{"value": ..., "raw": ...}``, a bare string is accepted: a canonical value
    (case, spaces and dashes ignored) becomes ``value``; anything else becomes ``OTHER`` with
    the string kept in ``raw``, for enums that have ``OTHER``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: E = Field(description="The normalised value.")
    raw: str | None = Field(default=None, description="The value as the source system spelt it.")

    @model_validator(mode="before")
    @classmethod
    def _from_scalar(cls, data: Any) -> Any:
        if data is None or isinstance(data, dict | BaseModel):
            return data
        enum_cls = cls.model_fields["value"].annotation
        if not (isinstance(enum_cls, type) and issubclass(enum_cls, Enum)):
            return data  # unparametrised Coded: nothing to normalise against
        if isinstance(data, enum_cls):
            return {"value": data}
        text = str(data.value if isinstance(data, Enum) else data).strip()
        if text in enum_cls.__members__.values():
            return {"value": text}
        key = re.sub(r"[\s-]+", "_", text).upper()
        if key in enum_cls.__members__:
            return {"value": enum_cls.__members__[key], "raw": text}
        if "OTHER" in enum_cls.__members__:
            return {"value": enum_cls.__members__["OTHER"], "raw": text}
        return {"value": text}  # fails with the enum's own message (allowed values only)


class SourceRef(BaseModel):
    """Where a canonical record comes from in one source system (one record may have many)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    connector: str = Field(description="The hub.toml connector the record was read through.")
    system: str | None = Field(
        default=None, description="The vendor system, e.g. feishu, dingtalk, wecom, moka, esign."
    )
    stream: str | None = Field(default=None, description="The connector stream the record came from.")
    remote_id: str = Field(description="The record's id in the source system.")
    remote_id_scheme: str | None = Field(
        default=None, description="Which id the remote id is, e.g. feishu.open_id, dingtalk.userid."
    )
    remote_url: str | None = Field(default=None, description="Deep link to the record in the source's UI.")
    remote_updated_at: Timestamp | None = Field(
        default=None, description="When the source last changed the record."
    )


class FieldProvenance(BaseModel):
    """Which connector last set a field, and when (for source-priority conflict resolution)."""

    model_config = ConfigDict(extra="forbid")

    connector: str = Field(description="The hub.toml connector that set the value.")
    stream: str | None = Field(default=None, description="The stream the value came from.")
    at: Timestamp = Field(description="When the value was set.")


class CanonicalModel(BaseModel):
    """The envelope shared by every canonical entity.

    Unknown fields are refused. ``schema_version`` defaults to the class's ``ENTITY_VERSION``,
    which is bumped whenever the entity changes incompatibly.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    ENTITY_VERSION: ClassVar[int] = 1

    hub_id: uuid.UUID = Field(default_factory=uuid.uuid4, description="The record's id in hub.")
    source_refs: list[SourceRef] = Field(
        default_factory=list, description="The record's ids in every source system that holds it."
    )
    remote_created_at: Timestamp | None = Field(
        default=None, description="When the system of record created the record."
    )
    remote_updated_at: Timestamp | None = Field(
        default=None, description="When the system of record last changed the record."
    )
    remote_deleted_at: Timestamp | None = Field(
        default=None, description="Tombstone: when the record was deleted at its source."
    )
    custom_fields: dict[str, Any] = pii(
        PIIClass.ENCRYPT,
        "text",
        default_factory=dict,
        description="Vendor custom fields, keyed by the vendor's field id or name (content unknown: encrypted).",
    )
    provenance: dict[str, FieldProvenance] = Field(
        default_factory=dict, description="Per field: the connector that last set it, and when."
    )
    schema_version: int = Field(default=1, ge=1, description="Version of the entity's canonical model.")

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        field = cls.__pydantic_fields__["schema_version"]
        if field.default != cls.ENTITY_VERSION:
            field = copy(field)
            field.default = cls.ENTITY_VERSION
            cls.__pydantic_fields__["schema_version"] = field
            cls.model_rebuild(force=True)

    @property
    def is_deleted(self) -> bool:
        """True once the source has deleted the record (``remote_deleted_at`` is set)."""
        return self.remote_deleted_at is not None

    @model_validator(mode="after")
    def _provenance_names_fields(self) -> CanonicalModel:
        fields = type(self).model_fields
        unknown = sorted(k for k in self.provenance if k.split(".", 1)[0] not in fields)
        if unknown:
            raise ValueError(f"provenance names fields the entity does not have: {', '.join(unknown)}")
        return self


def check_order(model: BaseModel, *pairs: tuple[str, str]) -> None:
    """Raise ``ValueError`` when a ``(start, end)`` pair of set fields is the wrong way round."""
    for start, end in pairs:
        first, last = getattr(model, start), getattr(model, end)
        if first is not None and last is not None and last < first:
            raise ValueError(f"{end} is before {start}")


# -- introspection -----------------------------------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    """One field of an entity, as the mapping engine and ``hub schema show`` see it."""

    name: str
    type: str
    required: bool
    pii: PIIClass
    pii_kind: str | None
    description: str
    annotation: Any


def type_label(annotation: Any, metadata: list[Any] | None = None) -> str:
    """A short, readable name for a field type: ``Coded[Gender] | None``, ``list[UUID]``."""
    for item in metadata or ():
        if isinstance(item, TypeLabel):
            return item.name
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *extras = get_args(annotation)
        return type_label(base, list(extras))
    if origin in (Union, types.UnionType):
        members = get_args(annotation)
        parts = [type_label(a) for a in members if a is not type(None)]
        return " | ".join(parts + (["None"] if type(None) in members else []))
    if origin is not None:
        inner = ", ".join(type_label(a) for a in get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if annotation is Any:
        return "Any"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation)


def field_specs(model_cls: type[BaseModel]) -> list[FieldSpec]:
    """Every top-level field of ``model_cls``, in declaration order."""
    tags = pii_fields(model_cls, nested=False)
    specs = []
    for name, field in model_cls.model_fields.items():
        pii_class, kind = tags.get(name, (PIIClass.NONE, None))
        specs.append(
            FieldSpec(
                name=name,
                type=type_label(field.annotation, list(field.metadata)),
                required=field.is_required(),
                pii=pii_class,
                pii_kind=kind,
                description=field.description or "",
                annotation=field.annotation,
            )
        )
    return specs


@dataclass(frozen=True)
class FieldError:
    """One reason a record does not fit its entity; never carries the offending value."""

    field: str
    message: str
    type: str

    def __str__(self) -> str:
        return f"{self.field or '(record)'}: {self.message}"


def field_errors(exc: ValidationError) -> list[FieldError]:
    """The errors of a pydantic ``ValidationError`` by dotted field path, without input values."""
    return [
        FieldError(".".join(str(part) for part in error["loc"]), error["msg"], error["type"])
        for error in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


M = TypeVar("M", bound=BaseModel)


def validate_model(model_cls: type[M], data: Any) -> tuple[M | None, list[FieldError]]:
    """Validate ``data`` (a dict, or JSON text/bytes) into ``model_cls``: ``(model, [])`` or ``(None, errors)``."""
    try:
        if isinstance(data, str | bytes):
            return model_cls.model_validate_json(data), []
        return model_cls.model_validate(data), []
    except ValidationError as exc:
        return None, field_errors(exc)
