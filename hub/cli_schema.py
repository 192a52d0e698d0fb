"""``hub schema``: list the canonical entities, show their fields and PII classes, export JSON Schemas."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

schema_app = typer.Typer(
    no_args_is_help=True, help="The canonical schema: entities, fields, PII classes, JSON Schemas."
)
out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False)

JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _emit_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def _entity(name: str) -> Any:
    from hub.schema import get_entity

    try:
        return get_entity(name)
    except KeyError as exc:
        err.print(str(exc.args[0]), markup=False)
        raise typer.Exit(2) from exc


@schema_app.command("list")
def list_entities(as_json: JsonOption = False) -> None:
    """Every entity with its domain, field count and PII field count."""
    from hub.schema import ENTITIES, entity_domain, pii_fields

    rows = [
        {
            "entity": name,
            "domain": entity_domain(cls),
            "version": cls.ENTITY_VERSION,
            "fields": len(cls.model_fields),
            "pii_fields": len(pii_fields(cls, nested=False)),
        }
        for name, cls in ENTITIES.items()
    ]
    if as_json:
        _emit_json(rows)
        return
    table = Table("entity", "domain", "version", "fields", "PII fields", title="Canonical entities")
    for r in rows:
        table.add_row(*(str(r[k]) for k in ("entity", "domain", "version", "fields", "pii_fields")))
    out.print(table)


@schema_app.command("show")
def show(
    entity: Annotated[str, typer.Argument(help="entity name, e.g. Person (see: hub schema list)")],
    as_json_schema: Annotated[bool, typer.Option("--json-schema", help="print the JSON Schema")] = False,
    as_json: JsonOption = False,
) -> None:
    """The fields of one entity: type, required, PII class and description."""
    from hub.schema import entity_domain, field_specs, json_schema_text

    model = _entity(entity)
    if as_json_schema:
        sys.stdout.write(json_schema_text(model.__name__))
        return
    specs = field_specs(model)
    if as_json:
        _emit_json(
            [
                {
                    "name": s.name,
                    "type": s.type,
                    "required": s.required,
                    "pii": s.pii.value,
                    "pii_kind": s.pii_kind,
                    "description": s.description,
                }
                for s in specs
            ]
        )
        return
    table = Table(
        "field",
        "type",
        "required",
        "PII",
        "description",
        title=f"{model.__name__} ({entity_domain(model)}, version {model.ENTITY_VERSION})",
    )
    for s in specs:
        pii = "" if s.pii.value == "none" else f"{s.pii.value} ({s.pii_kind})"
        table.add_row(Text(s.name), Text(s.type), "yes" if s.required else "", Text(pii), Text(s.description))
    out.print(table)


@schema_app.command("export")
def export(
    directory: Annotated[Path, typer.Option("--dir", help="where to write <Entity>.json")] = Path(
        "docs/schema"
    ),
    check: Annotated[
        bool, typer.Option("--check", help="write nothing; exit 1 if any file is missing or out of date")
    ] = False,
) -> None:
    """Write the JSON Schema of every entity to DIR/<Entity>.json."""
    from hub.schema import ENTITIES, export_json_schemas, json_schema_text

    if check:
        stale = [
            name
            for name in ENTITIES
            if not (directory / f"{name}.json").is_file()
            or (directory / f"{name}.json").read_text(encoding="utf-8") != json_schema_text(name)
        ]
        if stale:
            err.print(
                f"out of date in {directory}: {', '.join(stale)} (run: hub schema export)", markup=False
            )
            raise typer.Exit(1)
        out.print(f"{len(ENTITIES)} schemas in {directory} are up to date", markup=False)
        return
    written = export_json_schemas(directory)
    out.print(f"wrote {len(written)} schemas to {directory}", markup=False)
