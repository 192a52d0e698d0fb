"""``hub serve`` (the webhook receiver) and ``hub webhooks`` (its inbox, for admins).

Wired into the main command as ``app.command("serve")(serve)`` and
``app.add_typer(webhooks_app, name="webhooks")``.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from hub.cli_common import ConfigOption, config_path

webhooks_app = typer.Typer(no_args_is_help=True, help="Vendor callbacks received by hub serve.")

out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 200)

JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _time(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


def serve(
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="port to listen on")] = 8080,
    config: ConfigOption = None,
) -> None:
    """Receive vendor webhooks: verify, keep them sealed, run the pipelines they concern.

    POST /webhooks/CONNECTOR for each connector with a webhook table in hub.toml,
    GET /webhooks/CONNECTOR for vendors' URL checks, GET /healthz. Runs until interrupted.
    """
    import uvicorn

    from hub.logs import setup_logging
    from hub.onboarding.webhooks import onboarding_dispatcher
    from hub.project import Project
    from hub.webhooks.app import create_app
    from hub.webhooks.service import WebhookService

    setup_logging(os.environ.get("HUB_LOG_LEVEL", "INFO"))
    project = Project(config_path(config))
    service = WebhookService(project, dispatcher=onboarding_dispatcher(project))
    if not service.endpoints:
        err.print(
            "no connector takes webhooks: add a [connectors.NAME.webhook] table (see docs/webhooks.md)",
            markup=False,
        )
    for route in service.routes():
        pipelines = ", ".join(route["pipelines"]) or "none (events are stored, no sync runs)"
        err.print(f"{route['path']} ({route['verifier']}) -> {pipelines}", markup=False)
        if route["full_refresh_streams"]:
            err.print(
                f"  note: full-refresh streams re-read everything on each webhook run: "
                f"{', '.join(route['full_refresh_streams'])}",
                markup=False,
            )
    # log_config=None: uvicorn's loggers go through hub's handler and its PII filter
    uvicorn.run(create_app(service), host=host, port=port, log_config=None, server_header=False)


@webhooks_app.callback()
def webhooks() -> None:
    """The webhook inbox: callbacks accepted (sealed), processed, failed, or rejected at the door."""


@webhooks_app.command("list")
def list_(
    connector: Annotated[str | None, typer.Option("--connector", help="only this connector")] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="received, processed, failed or rejected")
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="e.g. 24h, 7d")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000, help="at most this many")] = 50,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """The newest inbox entries: what was accepted and what it ran, what was refused and why."""
    from hub.config import parse_duration
    from hub.project import Project
    from hub.webhooks.inbox import STATUSES, Inbox

    if status is not None and status not in STATUSES:
        err.print(f"--status must be one of {', '.join(STATUSES)}", markup=False)
        raise typer.Exit(2)
    after = None
    if since is not None:
        try:
            after = datetime.now(UTC) - timedelta(seconds=parse_duration(since))
        except ValueError as exc:
            err.print(f"--since: {exc}", markup=False)
            raise typer.Exit(2) from exc
    project = Project(config_path(config))
    rows = Inbox(project.db, project.keyring).entries(
        connector=connector,
        status=status,
        since=after,
        limit=limit,
    )
    if as_json:
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")
        return
    if not rows:
        out.print("no webhook events")
        return
    table = Table(
        "id", "connector", "action", "event id", "status", "tries", "received", "done", "runs", "reason"
    )
    for r in rows:
        tries = f"x{r['repeats']}" if r["status"] == "rejected" else str(r["attempts"])
        table.add_row(
            str(r["id"]),
            r["connector"],
            r["action"],
            r["event_id"],
            r["status"],
            tries,
            _time(r["received_at"]),
            _time(r["processed_at"]),
            ", ".join(str(i) for i in r["run_ids"]),
            r["reason"] or "",
        )
    out.print(table)


@webhooks_app.command("retry")
def retry(
    ids: Annotated[list[int] | None, typer.Argument(help="inbox ids (default: every failed event)")] = None,
    connector: Annotated[str | None, typer.Option("--connector", help="only this connector")] = None,
    config: ConfigOption = None,
) -> None:
    """Queue failed events again; a running hub serve picks them up within its poll interval."""
    from hub.project import Project, actor
    from hub.store.models import AuditEntry
    from hub.webhooks.inbox import Inbox

    project = Project(config_path(config))
    done = Inbox(project.db, project.keyring).retry(ids or None, connector)
    if done:
        with project.db.session() as session:
            session.add(
                AuditEntry(
                    actor=actor(),
                    action="webhooks.retry",
                    target=",".join(str(i) for i in done),
                    details={"count": len(done)},
                )
            )
    out.print(f"{len(done)} event(s) queued again" + (f": {', '.join(map(str, done))}" if done else ""))


@webhooks_app.command("purge")
def purge(
    older_than: Annotated[
        str,
        typer.Option("--older-than", help="processed and rejected entries unchanged this long (e.g. 90d)"),
    ],
    config: ConfigOption = None,
) -> None:
    """Delete old processed and rejected entries (waiting and failed ones are kept)."""
    from hub.config import parse_duration
    from hub.project import Project, actor
    from hub.store.models import AuditEntry
    from hub.webhooks.inbox import Inbox

    try:
        age = parse_duration(older_than)
    except ValueError as exc:
        err.print(f"--older-than: {exc}", markup=False)
        raise typer.Exit(2) from exc
    project = Project(config_path(config))
    removed = Inbox(project.db, project.keyring).purge(datetime.now(UTC) - timedelta(seconds=age))
    with project.db.session() as session:
        session.add(
            AuditEntry(actor=actor(), action="webhooks.purge", target=older_than, details={"count": removed})
        )
    out.print(f"{removed} webhook inbox entr{'y' if removed == 1 else 'ies'} deleted")
