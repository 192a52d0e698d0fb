"""``hub people``: find resolved persons through the blind index and show them, masked.

Wired into the main command as ``app.add_typer(people_app, name="people")``. Every value shown
is masked (``hub.masking``; names as ``张**``); looking people up is written to the audit log
with the kind of identifier, never its value.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from hub.identity import IdentityResolver, PersonView
from hub.masking import mask_text, mask_value, pii_kind

people_app = typer.Typer(no_args_is_help=True, help="Persons resolved across sources (identity).")

out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        envvar="HUB_CONFIG",
        help="hub.toml to use [default: hub.toml, or hub's own --config]",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]

#: Fields holding a person's name: shown as the first character and stars (GB/T 35273 style).
NAME_FIELDS = frozenset(
    {
        "full_name",
        "name",
        "family_name",
        "given_name",
        "display_name",
        "preferred_name",
        "legal_family_name",
        "legal_given_name",
        "name_en",
        "name_pinyin",
    }
)


def mask_name(value: Any) -> str:
    """``张三丰`` -> ``张**``."""
    text = str(value).strip()
    return text[:1] + "*" * (len(text) - 1) if text else ""


def known_names(fields: dict[str, Any]) -> list[str]:
    """The person's own names, longest first, to hide them inside free text (a resume, a note)."""
    names = {str(fields[f]).strip() for f in NAME_FIELDS if isinstance(fields.get(f), str)}
    family, given = fields.get("family_name"), fields.get("given_name")
    if isinstance(family, str) and isinstance(given, str):
        names.add(family.strip() + given.strip())
    return sorted((n for n in names if len(n) >= 2), key=len, reverse=True)


def mask_field(name: str, value: Any, names: list[str] | None = None) -> Any:
    """A field value safe to show: names and PII kinds masked, other text scanned for PII shapes
    and for the person's own ``names``."""
    if value is None:
        return None
    if name in NAME_FIELDS:
        return mask_name(value)
    kind = pii_kind(name)
    if kind is not None:
        return mask_value(kind, value)
    if isinstance(value, dict | list):
        value = orjson.dumps(value).decode()
    if isinstance(value, str):
        for known in names or ():
            value = value.replace(known, mask_name(known))
        return mask_text(value)
    return value


def _config_path(config: Path | None) -> Path:
    """``--config`` if given, else the main command's ``--config`` (when run as ``hub people``)."""
    if config is not None:
        return config
    main = sys.modules.get("hub.cli")
    state = getattr(main, "state", None)
    configured = getattr(state, "config", None)
    return configured if isinstance(configured, Path) else Path("hub.toml")


def _resolver(config: Path | None) -> tuple[Any, IdentityResolver]:
    from hub.project import Project

    project = Project(_config_path(config))
    return project, IdentityResolver(project.db, project.keyring)


def _audit(project: Any, action: str, target: str, details: dict[str, Any]) -> None:
    from hub.project import actor
    from hub.store.models import AuditEntry

    with project.db.session() as session:
        session.add(AuditEntry(actor=actor(), action=action, target=target[:500], details=details))


def _emit_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")


def _time(value: datetime | None) -> str:
    if value is None:
        return ""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _name_of(fields: dict[str, Any]) -> str:
    full = fields.get("full_name") or fields.get("name")
    if not full and (fields.get("family_name") or fields.get("given_name")):
        full = f"{fields.get('family_name') or ''}{fields.get('given_name') or ''}"
    return mask_name(full) if full else ""


def summary(person: PersonView) -> dict[str, Any]:
    """One line of ``people find``: hub id, masked identifiers, sources."""
    fields = person.fields
    return {
        "hub_id": person.hub_id,
        "name": _name_of(fields),
        "phone": mask_value("phone", fields["phone"]) if fields.get("phone") else "",
        "id_number": mask_value("id_number", fields["id_number"]) if fields.get("id_number") else "",
        "email": mask_value("email", fields["email"]) if fields.get("email") else "",
        "sources": sorted({link.source for link in person.links}),
        "needs_review": person.needs_review,
        "rehire": person.rehire,
    }


def details(person: PersonView) -> dict[str, Any]:
    """Everything ``people show`` prints, masked."""
    names = known_names(person.fields)
    return {
        "hub_id": person.hub_id,
        "created_at": person.created_at.isoformat(),
        "updated_at": person.updated_at.isoformat(),
        "needs_review": person.needs_review,
        "rehire": person.rehire,
        "rehired_at": person.rehired_at.isoformat() if person.rehired_at else None,
        "fields": {
            name: {
                "value": mask_field(name, value, names),
                "source": person.provenance[name].source if name in person.provenance else None,
                "observed_at": (
                    person.provenance[name].observed_at.isoformat() if name in person.provenance else None
                ),
            }
            for name, value in sorted(person.fields.items())
        },
        "links": [
            {"source": link.source, "linked_at": link.created_at.isoformat(), "rehire": link.rehire}
            for link in person.links
        ],
        "conflicts": [
            {
                "id": c.id,
                "field": c.field,
                "kind": c.kind,
                "status": c.status,
                "existing_source": c.existing_source,
                "incoming_source": c.incoming_source,
                "winner_source": c.winner_source,
                "observed_at": c.observed_at.isoformat(),
                "existing": mask_field(c.field, c.existing, names),
                "incoming": mask_field(c.field, c.incoming, names),
            }
            for c in person.conflicts
        ],
        "reviews": [
            {
                "id": r.id,
                "source": r.source,
                "reason": r.reason,
                "status": r.status,
                "created_at": r.created_at.isoformat(),
                "candidates": [{"person_id": c.person_id, "via": c.via} for c in r.candidates],
            }
            for r in person.reviews
        ],
    }


@people_app.command("find")
def find(
    id_number: Annotated[str | None, typer.Option("--id-number", help="resident ID number")] = None,
    email: Annotated[str | None, typer.Option("--email", help="e-mail address")] = None,
    phone: Annotated[str | None, typer.Option("--phone", help="phone number (any common form)")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Find persons by ID number, e-mail or phone (through the blind index; exit 1 if none)."""
    given = [
        (kind, value)
        for kind, value in (("id_number", id_number), ("email", email), ("phone", phone))
        if value
    ]
    if len(given) != 1:
        err.print("give exactly one of --id-number, --email, --phone")
        raise typer.Exit(2)
    kind, value = given[0]
    project, resolver = _resolver(config)
    found = [
        p for p in (resolver.get_person(hub_id) for hub_id in resolver.find(kind, value)) if p is not None
    ]
    _audit(project, "person.find", ",".join(p.hub_id for p in found), {"by": kind, "found": len(found)})
    rows = [summary(p) for p in found]
    if as_json:
        _emit_json(rows)
    elif rows:
        table = Table("hub id", "name", "phone", "id number", "email", "sources", "review", "rehire")
        for r in rows:
            table.add_row(
                r["hub_id"],
                r["name"],
                r["phone"],
                r["id_number"],
                r["email"],
                ", ".join(r["sources"]),
                "needs review" if r["needs_review"] else "",
                "yes" if r["rehire"] else "",
            )
        out.print(table)
    if not rows:
        err.print(f"no person found by {kind.replace('_', ' ')}")
        raise typer.Exit(1)


@people_app.command("show")
def show(
    person: Annotated[str, typer.Argument(help="hub id of the person")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """A person's fields (masked) with their provenance, links, conflicts and review status."""
    project, resolver = _resolver(config)
    view = resolver.get_person(person.strip())
    if view is None:
        err.print(f"no person {person}")
        raise typer.Exit(1)
    _audit(project, "person.show", view.hub_id, {"fields": len(view.fields)})
    data = details(view)
    if as_json:
        _emit_json(data)
        return
    status = "needs review" if view.needs_review else "resolved"
    rehire = f", rehired {_time(view.rehired_at)}" if view.rehire else ""
    out.print(f"person {view.hub_id} ({status}{rehire}), created {_time(view.created_at)}")
    fields = Table("field", "value", "source", "observed", title="Fields")
    for name, entry in data["fields"].items():
        shown = entry["value"]
        fields.add_row(
            name,
            shown if isinstance(shown, str) else orjson.dumps(shown).decode(),
            entry["source"] or "",
            _time(view.provenance[name].observed_at) if name in view.provenance else "",
        )
    out.print(fields)
    links = Table("source", "linked", "rehire", title="Links")
    for link in view.links:
        links.add_row(link.source, _time(link.created_at), "yes" if link.rehire else "")
    out.print(links)
    if data["conflicts"]:
        conflicts = Table("field", "kind", "status", "existing", "incoming", "winner", title="Conflicts")
        for c in data["conflicts"]:
            conflicts.add_row(
                c["field"],
                c["kind"],
                c["status"],
                f"{c['existing']} ({c['existing_source'] or '?'})",
                f"{c['incoming']} ({c['incoming_source']})",
                c["winner_source"] or "",
            )
        out.print(conflicts)
    for r in data["reviews"]:
        candidates = ", ".join(f"{c['person_id']} ({c['via']})" for c in r["candidates"])
        out.print(
            f"review {r['id']} [{r['status']}] from {r['source']}: {r['reason']}; candidates: {candidates}"
        )
