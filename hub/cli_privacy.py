"""``hub privacy`` (data-subject export and erasure, tombstones, reveal, retention) and ``hub audit``.

Wired into the main command as ``app.add_typer(privacy_app, name="privacy")`` and
``app.add_typer(audit_app, name="audit")``. Every command that shows or removes personal data
needs ``--reason`` and leaves a row in the audit log; nothing here prints a personal value except
``reveal`` (one field, on purpose) and ``export`` (into a 0600 file, on purpose).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hub.cli_common import ConfigOption, config_path

privacy_app = typer.Typer(
    no_args_is_help=True, help="Data-subject requests (export, erase), tombstones, reveal, retention."
)
audit_app = typer.Typer(no_args_is_help=True, help="The audit log: who did what, when and why.")

out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 200)

JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]
ReasonOption = Annotated[
    str | None, typer.Option("--reason", help="why (ticket, request id): required, goes to the audit log")
]
PersonArgument = Annotated[str, typer.Argument(help="hub id of the person (hub people find)")]


def _project(config: Path | None) -> Any:
    """The project of ``--config``, else of the main command's ``--config``."""
    from hub.project import Project

    return Project(config_path(config))


def _emit_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")


def _reason(reason: str | None) -> str:
    if not (reason or "").strip():
        err.print("a reason is required: --reason TEXT (it is written to the audit log)")
        raise typer.Exit(2)
    return str(reason).strip()


def _fail(exc: Exception) -> typer.Exit:
    from hub.masking import mask_text

    err.print(f"error: {mask_text(str(exc))}", markup=False)
    return typer.Exit(1)


@privacy_app.command("export")
def export_cmd(
    person: PersonArgument,
    reason: ReasonOption = None,
    out_file: Annotated[
        Path | None,
        typer.Option("--out", help="file to write [default: hub-export-PERSON.json]", show_default=False),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="replace an existing file")] = False,
    config: ConfigOption = None,
) -> None:
    """Everything hub holds about one person, decrypted, into a JSON file readable only by you (0600)."""
    from hub.privacy import PrivacyError, export

    why = _reason(reason)
    target = out_file or Path(f"hub-export-{person.strip()}.json")
    if target.exists() and not force:
        err.print(f"{escape(str(target))} exists; use --force to replace it")
        raise typer.Exit(2)
    project = _project(config)
    try:
        data = export(project, person, why)
    except PrivacyError as exc:
        raise _fail(exc) from exc
    payload = orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS, default=str)
    if target.exists():
        target.unlink()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, payload + b"\n")
    finally:
        os.close(fd)
    sections = {
        k: len(v) for k, v in data.items() if isinstance(v, list) and k not in ("identifiers", "downstream")
    }
    out.print(f"wrote {escape(str(target))} (mode 0600): it holds personal data in clear")
    out.print(", ".join(f"{k.replace('_', ' ')} {n}" for k, n in sections.items()))


@privacy_app.command("erase")
def erase_cmd(
    person: PersonArgument,
    reason: ReasonOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete everything hub holds about one person; tombstones keep later syncs from bringing them back."""
    from hub.privacy import PrivacyError, collect, erase

    why = _reason(reason)
    project = _project(config)
    try:
        found = collect(project, person)
    except PrivacyError as exc:
        raise _fail(exc) from exc
    if not yes:
        if not sys.stdin.isatty():
            err.print("erasing needs confirmation: run it on a terminal, or pass --yes")
            raise typer.Exit(2)
        summary = ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in found.counts().items() if n)
        out.print(f"person {found.hub_id}: {summary}")
        if not typer.confirm("erase all of it? This cannot be undone", default=False):
            raise typer.Exit(1)
    try:
        result = erase(project, found.hub_id, why, findings=found)
    except PrivacyError as exc:
        raise _fail(exc) from exc
    data = {
        "erasure_id": result.erasure_id,
        "tombstones": result.tombstones,
        "removed": result.counts,
        "downstream": result.downstream,
    }
    if as_json:
        _emit_json(data)
        return
    out.print(f"erased person {found.hub_id}: erasure {result.erasure_id}, {result.tombstones} tombstone(s)")
    out.print(", ".join(f"{k.replace('_', ' ')} {n}" for k, n in result.counts.items() if n))
    if result.downstream:
        out.print("their records were delivered by these pipelines; erase them in the destinations too:")
        for item in result.downstream:
            out.print(f"  {item['pipeline']}: {item['source']} -> {', '.join(item['destinations'])}")


@privacy_app.command("tombstones")
def tombstones_cmd(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Erasures and their tombstones: counts and dates (digests are never shown)."""
    from hub.privacy import tombstones

    data = tombstones(_project(config))
    if as_json:
        _emit_json(data)
        return
    out.print(
        f"{data['erasures']} erasure(s): {data['active']} active, {data['lifted']} lifted by new consent; "
        f"{data['tombstones']} tombstone(s)"
    )
    if data["items"]:
        table = Table("erasure", "erased", "lifted", "tombstones", "sources")
        for item in data["items"]:
            kinds = ", ".join(f"{k} {n}" for k, n in sorted(item["kinds"].items()))
            table.add_row(
                item["erasure_id"],
                item["erased_at"],
                item["lifted_at"] or "",
                kinds,
                ", ".join(item["sources"]),
            )
        out.print(table)


@privacy_app.command("reveal")
def reveal_cmd(
    person: PersonArgument,
    field: Annotated[str, typer.Argument(help="canonical field (hub people show lists them)")],
    reason: ReasonOption = None,
    config: ConfigOption = None,
) -> None:
    """Print one field of a person in clear: needs --reason, and is written to the audit log."""
    from hub.privacy import PrivacyError, reveal

    why = _reason(reason)
    try:
        value = reveal(_project(config), person, field, why)
    except PrivacyError as exc:
        raise _fail(exc) from exc
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    sys.stdout.write(f"{text}\n")


@privacy_app.command("purge")
def purge_cmd(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="count, delete nothing")] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete raw records and dead letters older than [privacy] raw_records_days / dead_letters_days."""
    from hub.privacy import purge

    project = _project(config)
    result = purge(project, dry_run=dry_run)
    if as_json:
        _emit_json(result)
        return
    verb = "would delete" if dry_run else "deleted"
    parts = []
    for name, key in (("raw records", "raw_records"), ("dead letters", "dead_letters")):
        if result[key] is None:
            parts.append(f"{name}: kept (no retention set)")
        else:
            parts.append(f"{name}: {verb} {result[key]:,} older than {result[key + '_before']}")
    out.print("; ".join(parts))


@audit_app.command("list")
def audit_list(
    action: Annotated[
        str | None, typer.Option("--action", help="only actions starting with this (reveal, privacy.)")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="at most this many")] = 50,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """The audit log, newest first (personal data masked; reasons shown)."""
    from hub.privacy import audit_rows

    rows = audit_rows(_project(config), action, limit)
    if as_json:
        _emit_json(rows)
        return
    table = Table("id", "at", "actor", "action", "target", "reason", "details")
    for r in rows:
        details = ", ".join(f"{k}={v}" for k, v in r["details"].items())
        table.add_row(
            *(escape(str(v)) for v in (r["id"], r["at"], r["actor"], r["action"], r["target"])),
            escape(r["reason"] or ""),
            escape(details[:120]),
        )
    out.print(table)
