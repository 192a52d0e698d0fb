"""``hub people``: find resolved persons through the blind index and show them, masked.

Wired into the main command as ``app.add_typer(people_app, name="people")``. Every value shown
is masked (``hub.masking``; names as ``张**``); looking people up is written to the audit log
with the kind of identifier, never its value.

``hub people reviews`` lists the ambiguous records identity resolution set aside, and ``hub
people review ID`` shows one next to its candidates and decides it: ``--merge PERSON`` (a
candidate; ``--force`` for another person) or ``--separate``, each with ``--reason``; both are
audited.
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

from hub.cli_common import ConfigOption, config_path
from hub.identity import (
    IdentityResolver,
    PersonView,
    ReviewDetail,
    ReviewError,
    ReviewView,
    name_keys,
    normalise_name,
)
from hub.masking import mask_text, mask_value, pii_kind

people_app = typer.Typer(no_args_is_help=True, help="Persons resolved across sources (identity).")

out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False)

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


def _resolver(config: Path | None) -> tuple[Any, IdentityResolver]:
    from hub.project import Project

    project = Project(config_path(config))
    return project, IdentityResolver(project.db, project.keyring, project.identity_config)


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


# -- reviews ---------------------------------------------------------------------------------


def _same(name: str, a: Any, b: Any) -> bool | None:
    """Whether two values of a field agree (names compared normalised); None if one is missing."""
    if a is None or b is None:
        return None
    if name in NAME_FIELDS:
        return normalise_name(a) == normalise_name(b)
    return bool(a == b)


def review_summary(view: ReviewView, decisions: dict[str, Any]) -> dict[str, Any]:
    """One line of ``people reviews``."""
    decision = decisions.get(view.id)
    return {
        "id": view.id,
        "status": view.status,
        "source": view.source,
        "reason": mask_text(view.reason),
        "candidates": len(view.candidates),
        "person_id": view.person_id,
        "created_at": view.created_at.isoformat(),
        "resolved_at": view.resolved_at.isoformat() if view.resolved_at else None,
        "decision": decision.action if decision else None,
        "decided_by": decision.actor if decision else None,
    }


def review_details(detail: ReviewDetail) -> dict[str, Any]:
    """Everything ``people review ID`` prints, masked: the record next to each candidate."""
    review = detail.review
    names = known_names(detail.record)
    for _candidate, person in detail.candidates:
        names += known_names(person.fields) if person is not None else []
    names = sorted(set(names), key=len, reverse=True)
    record = {name: mask_field(name, value, names) for name, value in sorted(detail.record.items())}
    candidates = []
    for candidate, person in detail.candidates:
        entry: dict[str, Any] = {"person_id": candidate.person_id, "via": mask_text(candidate.via)}
        if person is None:
            entry["exists"] = False
        else:
            fields = sorted(set(detail.record) | set(person.fields))
            entry.update(
                exists=True,
                needs_review=person.needs_review,
                sources=sorted({link.source for link in person.links}),
                names_match=bool(set(name_keys(detail.record)) & set(name_keys(person.fields))),
                fields={
                    name: {
                        "value": mask_field(name, person.fields.get(name), names),
                        "same": _same(name, detail.record.get(name), person.fields.get(name)),
                    }
                    for name in fields
                },
            )
        candidates.append(entry)
    decision = detail.decision
    return {
        "id": review.id,
        "status": review.status,
        "source": review.source,
        "reason": mask_text(review.reason),
        "created_at": review.created_at.isoformat(),
        "resolved_at": review.resolved_at.isoformat() if review.resolved_at else None,
        "decision": (
            {
                "action": decision.action,
                "by": decision.actor,
                "at": decision.at.isoformat(),
                "person_id": decision.person_id,
            }
            if decision
            else None
        ),
        "person_id": review.person_id,
        "observed_at": detail.observed_at.isoformat() if detail.observed_at else None,
        "record": record,
        "candidates": candidates,
    }


@people_app.command("reviews")
def reviews(
    status: Annotated[
        str, typer.Option("--status", help="open, resolved or all", case_sensitive=False)
    ] = "open",
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ambiguous records identity resolution set aside, each with a provisional person."""
    status = status.lower()
    if status not in ("open", "resolved", "all"):
        err.print("--status is open, resolved or all")
        raise typer.Exit(2)
    _project, resolver = _resolver(config)
    views = resolver.reviews(None if status == "all" else status)
    decisions = resolver.decisions(v.id for v in views if v.status != "open")
    rows = [review_summary(v, decisions) for v in views]
    if as_json:
        _emit_json(rows)
        return
    if not rows:
        out.print(f"no {'' if status == 'all' else status + ' '}reviews")
        return
    table = Table("review", "status", "source", "reason", "candidates", "created", "resolved")
    for view, r in zip(views, rows, strict=True):
        resolved = ""
        if view.resolved_at:
            resolved = f"{_time(view.resolved_at)} {r['decision'] or ''} {r['decided_by'] or ''}".strip()
        table.add_row(
            r["id"],
            r["status"],
            r["source"],
            r["reason"],
            str(r["candidates"]),
            _time(view.created_at),
            resolved,
        )
    out.print(table)


@people_app.command("review")
def review(
    review_id: Annotated[str, typer.Argument(help="id of the review (hub people reviews)")],
    merge: Annotated[
        str | None, typer.Option("--merge", help="merge the record's provisional person into this person")
    ] = None,
    separate: Annotated[
        bool, typer.Option("--separate", help="keep the provisional person as a person of its own")
    ] = False,
    reason: Annotated[
        str | None, typer.Option("--reason", help="why (audit log; no personal data please)")
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="merge into a person that is not a candidate, or separate a record whose ID number "
            "another person holds",
        ),
    ] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a review: the record (masked) next to each candidate and how it matched; or decide it."""
    from hub.project import actor

    review_id = review_id.strip()
    if merge and separate:
        err.print("give --merge PERSON or --separate, not both")
        raise typer.Exit(2)
    project, resolver = _resolver(config)
    if merge or separate:
        if not reason or not reason.strip():
            err.print("a decision needs --reason")
            raise typer.Exit(2)
        try:
            if merge:
                outcome = resolver.merge_review(
                    review_id, merge.strip(), reason=reason, actor=actor(), force=force
                )
                result: dict[str, Any] = {
                    "review": outcome.review_id,
                    "decision": "merge",
                    "person_id": outcome.person_id,
                    "removed_person": outcome.provisional_id,
                    "links_moved": outcome.links,
                    "fields_set": list(outcome.fields_set),
                    "conflicts": [
                        {"field": c.field, "kind": c.kind, "status": c.status, "winner": c.winner_source}
                        for c in outcome.conflicts
                    ],
                    "forced": outcome.forced,
                }
            else:
                person_id = resolver.separate_review(review_id, reason=reason, actor=actor(), force=force)
                result = {"review": review_id, "decision": "separate", "person_id": person_id}
        except ReviewError as exc:
            err.print(mask_text(str(exc)), markup=False)
            raise typer.Exit(1) from None
        if as_json:
            _emit_json(result)
        elif merge:
            conflicts = ", ".join(f"{c['field']} ({c['status']})" for c in result["conflicts"]) or "none"
            out.print(
                f"review {review_id} resolved: person {result['removed_person']} merged into "
                f"{result['person_id']} ({result['links_moved']} link(s) moved; fields set: "
                f"{', '.join(result['fields_set']) or 'none'}; conflicts: {conflicts})",
                markup=False,
            )
        else:
            out.print(
                f"review {review_id} resolved: person {result['person_id']} kept as its own person",
                markup=False,
            )
        return

    detail = resolver.review(review_id)
    if detail is None:
        err.print(f"no review {review_id}")
        raise typer.Exit(1)
    _audit(project, "identity.review.show", review_id, {"candidates": len(detail.candidates)})
    data = review_details(detail)
    if as_json:
        _emit_json(data)
        return
    out.print(
        f"review {data['id']} [{data['status']}] from {data['source']}, created "
        f"{_time(detail.review.created_at)}: {data['reason']}",
        markup=False,
    )
    if data["decision"]:
        d = data["decision"]
        out.print(
            f"decided: {d['action']} by {d['by']} at {_time(detail.decision.at if detail.decision else None)}",
            markup=False,
        )
    label = "provisional person" if data["status"] == "open" else "person now"
    out.print(f"{label}: {data['person_id']}", markup=False)
    headers = ["field", "record"]
    for c in data["candidates"]:
        headers.append(f"{c['person_id']}\n{c['via']}")
    table = Table(*headers, title="The record and its candidates (= agrees, ≠ differs)")
    for name, value in data["record"].items():
        cells = [name, _shown(value)]
        for c in data["candidates"]:
            entry = c.get("fields", {}).get(name)
            if entry is None:
                cells.append("(gone)" if not c.get("exists", True) else "")
                continue
            mark = {True: " =", False: " ≠", None: ""}[entry["same"]]
            cells.append(_shown(entry["value"]) + mark)
        table.add_row(*cells)
    out.print(table)
    if not data["candidates"]:
        out.print("no candidates")
    if data["status"] == "open":
        out.print(
            f"decide: hub people review {data['id']} --merge PERSON_ID --reason TEXT, "
            "or --separate --reason TEXT"
        )


def _shown(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else orjson.dumps(value).decode()
