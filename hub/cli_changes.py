"""``hub changes``: the change events syncs of mapped streams emit (hub.changes).

Wired into the main command as ``app.add_typer(changes_app, name="changes")``. Events hold
field names, never values; a record id that looks like personal data (an ID number, a phone,
an e-mail used as a key) is shown masked.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from hub.cli_common import ConfigOption, config_path

changes_app = typer.Typer(no_args_is_help=True, help="Change events of canonical records.")

out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False)


@changes_app.callback()
def changes() -> None:
    """Change events of canonical records: created or updated, which fields, never values."""


def _time(value: datetime) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


@changes_app.command("list")
def list_(
    entity: Annotated[str | None, typer.Option("--entity", help="only this entity")] = None,
    pipeline: Annotated[str | None, typer.Option("--pipeline", help="only this pipeline")] = None,
    after: Annotated[
        int | None, typer.Option("--after", help="events after this event id, oldest first (to poll)")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100000, help="at most this many")] = 100,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Change events, oldest first: the latest LIMIT, or those after --after."""
    from hub.changes import list_changes
    from hub.project import Project

    project = Project(config_path(config))
    views = list_changes(
        project.db, project.keyring, entity=entity, pipeline=pipeline, after=after, limit=limit
    )
    if as_json:
        data: Any = [v.as_dict() for v in views]
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    if not views:
        out.print("no change events")
        return
    table = Table("id", "entity", "kind", "record id", "changed fields", "run", "pipeline", "at")
    for v in views:
        table.add_row(
            str(v.id),
            v.entity,
            v.kind,
            v.record_id,
            ", ".join(v.changed_fields),
            str(v.run_id),
            v.pipeline,
            _time(v.created_at),
        )
    out.print(table)
