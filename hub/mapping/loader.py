"""Load and check a mapping file; every problem is reported with ``file:line``.

A mapping file is data, not code::

    entity: Person                 # canonical entity (hub schema list)
    key: [candidate_id]            # source columns that identify the record at its source
    lookups:
      departments: {file: departments.csv, key: code, value: name}
    fields:
      family_name: {from: name, transforms: [trim, {split_name: {part: family}}], required: true}
      phone: {from: mobile, transforms: [phone]}
      city: {path: "address.city"}                  # JMESPath into a JSON column
      nationality: {default: CN}
      department: {from: dept, transforms: [{lookup: {table: departments}}], when: {column: status, in: [hired]}}
    custom_fields: [source_channel]                  # copied into custom_fields as they are
"""

from __future__ import annotations

import csv
import enum
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jmespath
import jmespath.exceptions
import yaml

from hub.errors import HubError

RULE_KEYS = {"from", "path", "transforms", "default", "required", "when"}
WHEN_KEYS = {"column", "equals", "in", "not_empty"}
TOP_KEYS = {"entity", "key", "fields", "custom_fields", "lookups", "source", "description", "identity"}
#: What identity resolution reads (hub.identity.SourcePerson fields); mapped, never written.
IDENTITY_KEYS = {
    "id_number",
    "email",
    "phone",
    "family_name",
    "given_name",
    "full_name",
    "birth_date",
    "gender",
    "employment_status",
    "terminated_at",
    "consent_at",  # the data subject's consent time: newer than an erasure, it lifts it (hub.privacy)
}


@dataclass(frozen=True)
class MappingProblem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class MappingError(HubError):
    """A mapping file is wrong; raised at load, before any record is read."""

    def __init__(self, problems: list[MappingProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class Step:
    """One transform in a field's chain, with its parameters."""

    name: str
    params: Mapping[str, Any]
    line: int


@dataclass(frozen=True)
class Condition:
    column: str
    equals: Any = None
    any_of: tuple[Any, ...] | None = None
    not_empty: bool = False


@dataclass(frozen=True)
class FieldRule:
    """How one target field is made."""

    target: str
    source: str | None
    path: str | None
    steps: tuple[Step, ...]
    default: Any
    required: bool
    when: Condition | None
    line: int

    @property
    def json_column(self) -> str | None:
        """For a ``path``: the column holding the JSON the rest of the path reads."""
        return self.path.split(".", 1)[0].split("[", 1)[0] if self.path else None


@dataclass
class MappingSpec:
    """A loaded, checked mapping."""

    file: Path
    entity: str
    key: tuple[str, ...]
    fields: dict[str, FieldRule]
    custom_fields: tuple[str, ...] = ()
    lookups: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str | None = None
    #: fields for identity resolution (id_number, email, phone, names ...), mapped like fields
    identity: dict[str, FieldRule] = field(default_factory=dict)

    def source_columns(self) -> set[str]:
        """Columns of the source records this mapping reads."""
        whole, through_paths = self._columns_read()
        return whole | through_paths

    def path_only_columns(self) -> set[str]:
        """Source columns this mapping reads through JSON paths alone.

        A path picks from the value as decoded (a Greenhouse candidate's ``email_addresses``
        list), so such a column need not become text first, only to be parsed again.
        """
        whole, through_paths = self._columns_read()
        return through_paths - whole

    def _columns_read(self) -> tuple[set[str], set[str]]:
        """(columns read as values: key, custom fields, sources, conditions; columns paths start at)."""
        whole = set(self.key) | set(self.custom_fields)
        through_paths = set()
        for rule in [*self.fields.values(), *self.identity.values()]:
            if rule.source:
                whole.add(rule.source)
            if rule.json_column:
                through_paths.add(rule.json_column)
            if rule.when:
                whole.add(rule.when.column)
            for step in rule.steps:
                whole.update(
                    v for k, v in step.params.items() if k in ("birth_date", "gender") and isinstance(v, str)
                )
        return whole, through_paths


def enum_values(annotation: Any) -> set[str] | None:
    """The canonical values of an enum-typed field (plain enum or ``Coded[E]``), if it is one."""
    stack = [annotation]
    while stack:
        current = stack.pop()
        if isinstance(current, type) and issubclass(current, enum.Enum):
            return {_enum_key(str(member.value)) for member in current}
        metadata = getattr(current, "__pydantic_generic_metadata__", None)
        if metadata and metadata.get("args"):
            stack.extend(metadata["args"])
        stack.extend(typing.get_args(current))
    return None


def _enum_key(value: str) -> str:
    """Compare enum values the way the schema reads them: case, spaces and dashes ignored."""
    return value.upper().replace(" ", "").replace("-", "")


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _child(node: yaml.MappingNode, key: str) -> yaml.Node | None:
    for k, v in node.value:
        if k.value == key:
            return v
    return None


def load_mapping(
    path: Path,
    transforms: Mapping[str, Any],
    entities: Mapping[str, Any],
) -> MappingSpec:
    """Parse ``path`` and check it against the known transforms and canonical entities."""
    name = str(path)
    problems: list[MappingProblem] = []

    def problem(node: yaml.Node | None, message: str) -> None:
        problems.append(MappingProblem(name, _line(node) if node is not None else 1, message))

    try:
        text = path.read_text(encoding="utf-8")
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except FileNotFoundError as exc:
        raise MappingError([MappingProblem(name, 1, "file not found")]) from exc
    except yaml.YAMLError as exc:
        line = exc.problem_mark.line + 1 if getattr(exc, "problem_mark", None) else 1  # type: ignore[attr-defined]
        raise MappingError(
            [MappingProblem(name, line, f"not valid YAML: {getattr(exc, 'problem', exc)}")]
        ) from exc
    if not isinstance(root, yaml.MappingNode) or not isinstance(data, dict):
        raise MappingError(
            [MappingProblem(name, 1, "a mapping file is a YAML mapping (entity, key, fields)")]
        )

    for key_node, _ in root.value:
        if key_node.value not in TOP_KEYS:
            problem(key_node, f"unknown key {key_node.value!r} (known: {', '.join(sorted(TOP_KEYS))})")

    entity = data.get("entity")
    model = entities.get(entity) if isinstance(entity, str) else None
    if model is None:
        known = ", ".join(sorted(entities))
        problem(_child(root, "entity") or root, f"unknown entity {entity!r} (known: {known})")
    targets: dict[str, Any] = dict(getattr(model, "model_fields", {})) if model is not None else {}

    key = data.get("key", [])
    key = [key] if isinstance(key, str) else key
    if not key or not all(isinstance(k, str) for k in key):
        problem(_child(root, "key") or root, "key: the source column(s) that identify a record are required")
        key = []

    lookups: dict[str, dict[str, Any]] = {}
    lookups_node = _child(root, "lookups")
    for lookup_name, spec in (data.get("lookups") or {}).items():
        node = _child(lookups_node, lookup_name) if isinstance(lookups_node, yaml.MappingNode) else None
        if isinstance(spec, dict) and "file" in spec:
            table_path = (path.parent / str(spec["file"])).resolve()
            try:
                with open(table_path, encoding="utf-8-sig", newline="") as handle:
                    rows = list(csv.DictReader(handle))
                k, v = spec.get("key", "key"), spec.get("value", "value")
                lookups[lookup_name] = {row[k].strip(): row[v] for row in rows}
            except FileNotFoundError:
                problem(node, f"lookup {lookup_name}: file not found: {spec['file']}")
            except KeyError as exc:
                problem(node, f"lookup {lookup_name}: the file has no column {exc}")
        elif isinstance(spec, dict) and "values" in spec and isinstance(spec["values"], dict):
            lookups[lookup_name] = {str(k): v for k, v in spec["values"].items()}
        else:
            problem(node, f"lookup {lookup_name}: needs file (with key and value columns) or values")

    rules: dict[str, FieldRule] = {}
    fields_node = _child(root, "fields")
    if not isinstance(fields_node, yaml.MappingNode):
        problem(fields_node or root, "fields: a mapping of target field -> rule is required")
    else:
        for target_node, rule_node in fields_node.value:
            rule = _rule(target_node, rule_node, targets, model is not None, transforms, lookups, problem)
            if rule is not None:
                rules[rule.target] = rule

    identity: dict[str, FieldRule] = {}
    identity_node = _child(root, "identity")
    if identity_node is not None:
        if not isinstance(identity_node, yaml.MappingNode):
            problem(identity_node, "identity: a mapping of identity field -> rule")
        else:
            identity_targets: dict[str, Any] = dict.fromkeys(IDENTITY_KEYS)
            for target_node, rule_node in identity_node.value:
                if target_node.value not in IDENTITY_KEYS:
                    problem(
                        target_node,
                        f"identity: unknown field {target_node.value!r} (known: {', '.join(sorted(IDENTITY_KEYS))})",
                    )
                    continue
                rule = _rule(target_node, rule_node, identity_targets, False, transforms, lookups, problem)
                if rule is not None:
                    identity[rule.target] = rule

    custom = data.get("custom_fields", [])
    if not isinstance(custom, list) or not all(isinstance(c, str) for c in custom):
        problem(_child(root, "custom_fields") or root, "custom_fields: a list of source columns")
        custom = []
    if model is not None and custom and "custom_fields" not in targets:
        problem(_child(root, "custom_fields"), f"{entity} has no custom_fields")

    if problems:
        raise MappingError(problems)
    return MappingSpec(
        file=path,
        entity=str(entity),
        key=tuple(key),
        fields=rules,
        custom_fields=tuple(custom),
        lookups=lookups,
        source=data.get("source"),
        identity=identity,
    )


def _rule(
    target_node: yaml.Node,
    rule_node: yaml.Node,
    targets: Mapping[str, Any],
    check_targets: bool,
    transforms: Mapping[str, Any],
    lookups: Mapping[str, Any],
    problem: Any,
) -> FieldRule | None:
    target = str(target_node.value)
    if check_targets and target not in targets:
        problem(target_node, f"target field {target!r} does not exist on the entity")
    if isinstance(rule_node, yaml.ScalarNode):  # shorthand: target: source_column
        return FieldRule(target, str(rule_node.value), None, (), None, False, None, _line(target_node))
    if not isinstance(rule_node, yaml.MappingNode):
        problem(rule_node, f"{target}: a rule is a source column name or a mapping")
        return None
    rule = yaml.safe_load(yaml.serialize(rule_node))
    for key_node, _ in rule_node.value:
        if key_node.value not in RULE_KEYS:
            problem(
                key_node, f"{target}: unknown key {key_node.value!r} (known: {', '.join(sorted(RULE_KEYS))})"
            )
    source, path = rule.get("from"), rule.get("path")
    if source is not None and path is not None:
        problem(rule_node, f"{target}: use either from or path, not both")
    if source is None and path is None and "default" not in rule:
        problem(rule_node, f"{target}: needs from, path or default")
    if path is not None:
        try:
            jmespath.compile(str(path))
        except jmespath.exceptions.JMESPathError as exc:
            problem(_child(rule_node, "path"), f"{target}: bad path {path!r}: {exc}")
    steps: list[Step] = []
    steps_node = _child(rule_node, "transforms")
    for item, node in zip(rule.get("transforms") or [], getattr(steps_node, "value", []) or [], strict=False):
        params: dict[str, Any]
        if isinstance(item, str):
            step_name, params = item, {}
        elif isinstance(item, dict) and len(item) == 1:
            step_name, params = next(iter(item.items()))
            params = params or {}
        else:
            problem(node, f"{target}: a transform is a name or {{name: {{params}}}}")
            continue
        transform = transforms.get(step_name)
        if transform is None:
            problem(
                node, f"{target}: unknown transform {step_name!r} (known: {', '.join(sorted(transforms))})"
            )
            continue
        if not isinstance(params, dict):
            problem(node, f"{target}: parameters of {step_name} must be a mapping")
            continue
        allowed = set(getattr(transform, "params", {}) or {})
        unknown = set(params) - allowed
        if unknown:
            problem(node, f"{target}: {step_name} has no parameter(s) {', '.join(sorted(unknown))}")
        missing = set(getattr(transform, "required_params", ()) or ()) - set(params)
        if missing:
            problem(node, f"{target}: {step_name} needs parameter(s) {', '.join(sorted(missing))}")
        if step_name == "lookup" and isinstance(params.get("table"), str) and params["table"] not in lookups:
            problem(node, f"{target}: no lookup table named {params['table']!r}")
        allowed_values = enum_values(getattr(targets.get(target), "annotation", None))
        if step_name == "enum" and allowed_values is not None and isinstance(params.get("map"), dict):
            produced = [*params["map"].values(), *([params["default"]] if "default" in params else [])]
            wrong = sorted({str(v) for v in produced if _enum_key(str(v)) not in allowed_values})
            if wrong:
                problem(node, f"{target}: enum maps to value(s) the field does not have: {', '.join(wrong)}")
        steps.append(Step(step_name, params, _line(node)))
    when = None
    if "when" in rule:
        spec = rule["when"]
        when_node = _child(rule_node, "when")
        if not isinstance(spec, dict) or "column" not in spec or not set(spec) <= WHEN_KEYS or len(spec) != 2:
            problem(
                when_node,
                f"{target}: when is {{column: C, equals: V}}, {{column: C, in: [..]}} or {{column: C, not_empty: true}}",
            )
        else:
            any_of = spec.get("in")
            when = Condition(
                column=str(spec["column"]),
                equals=spec.get("equals"),
                any_of=tuple(any_of) if isinstance(any_of, list) else None,
                not_empty=bool(spec.get("not_empty", False)),
            )
    allowed_values = enum_values(getattr(targets.get(target), "annotation", None))
    default = rule.get("default")
    if allowed_values is not None and default is not None and _enum_key(str(default)) not in allowed_values:
        problem(
            _child(rule_node, "default"), f"{target}: default {default!r} is not one of the field's values"
        )
    return FieldRule(
        target=target,
        source=str(source) if source is not None else None,
        path=str(path) if path is not None else None,
        steps=tuple(steps),
        default=rule.get("default"),
        required=bool(rule.get("required", False)),
        when=when,
        line=_line(target_node),
    )
