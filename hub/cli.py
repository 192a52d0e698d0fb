"""The ``hub`` command."""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from hub.errors import ConfigurationError, HubError, PipelineBusy, PluginError
from hub.logs import setup_logging
from hub.masking import mask_record, mask_text

app = typer.Typer(no_args_is_help=True, add_completion=False, help="hub: the HR integration hub.")
connectors_app = typer.Typer(no_args_is_help=True, help="Inspect and test connectors.")
runs_app = typer.Typer(no_args_is_help=True, help="The sync log: runs and their counts.")
dead_app = typer.Typer(no_args_is_help=True, help="Records that were rejected, and retrying them.")
db_app = typer.Typer(no_args_is_help=True, help="hub's own database.")
scheduler_app = typer.Typer(no_args_is_help=True, help="Run pipelines on their schedules.")
schedules_app = typer.Typer(no_args_is_help=True, help="Configured schedules.")
secrets_app = typer.Typer(no_args_is_help=True, help="Connector credentials, stored encrypted.")
config_app = typer.Typer(no_args_is_help=True, help="hub.toml.")
app.add_typer(connectors_app, name="connectors")
app.add_typer(runs_app, name="runs")
app.add_typer(dead_app, name="deadletters")
app.add_typer(db_app, name="db")
app.add_typer(scheduler_app, name="scheduler")
app.add_typer(schedules_app, name="schedules")
app.add_typer(secrets_app, name="secrets")
app.add_typer(config_app, name="config")


def _add_subapps() -> None:
    """Command groups that live in their own modules."""
    from hub.cli_changes import changes_app
    from hub.cli_evaluate import evaluate_command, talent_app
    from hub.cli_keys import keys_app
    from hub.cli_mapping import mapping_app
    from hub.cli_onboarding import onboarding_app
    from hub.cli_people import people_app
    from hub.cli_privacy import audit_app, privacy_app
    from hub.cli_sandbox import sandbox_app
    from hub.cli_schema import schema_app
    from hub.cli_serve import serve, webhooks_app
    from hub.contracts.cli import contracts_app, payroll_app

    app.add_typer(schema_app, name="schema", help="The canonical employee schema.")
    app.add_typer(mapping_app, name="mapping", help="Mapping files: check them, preview them.")
    app.add_typer(people_app, name="people", help="Persons resolved across systems (masked).")
    app.add_typer(changes_app, name="changes", help="Change events of canonical records (no values).")
    app.add_typer(privacy_app, name="privacy", help="Data-subject export and erasure, reveal, retention.")
    app.add_typer(audit_app, name="audit", help="The audit log: who did what, when and why.")
    app.add_typer(keys_app, name="keys", help="Encryption keys: status, rotation, re-encryption, KEK.")
    app.command("evaluate")(evaluate_command)
    app.add_typer(talent_app, name="talent", help="Search past candidates: skills, experience (masked).")
    app.command("serve")(serve)
    app.add_typer(webhooks_app, name="webhooks", help="Vendor callbacks: accepted, processed, rejected.")
    app.add_typer(
        sandbox_app, name="sandbox", help="Vendor simulators (generated data) for offline rehearsal."
    )
    app.add_typer(
        contracts_app, name="contracts", help="Labour contracts: clause rules, documents, reminders."
    )
    app.add_typer(
        payroll_app, name="payroll", help="Payroll template export (CSV / Excel), 0600, optionally sealed."
    )
    app.add_typer(onboarding_app, name="onboarding", help="Onboarding cases: offer to every system, once.")


_add_subapps()

out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 200)

ConfigOption = Annotated[
    Path,
    typer.Option("--config", "-c", envvar="HUB_CONFIG", help="hub.toml to use", show_default=True),
]
JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]


class State:
    config: Path = Path("hub.toml")


state = State()


@app.callback()
def main_options(
    config: ConfigOption = Path("hub.toml"),
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug logging")] = False,
) -> None:
    state.config = config
    setup_logging("DEBUG" if verbose else os.environ.get("HUB_LOG_LEVEL", "WARNING"))


def project() -> Any:
    from hub.project import Project

    return Project(state.config)


def emit_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")


def fmt_time(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


# -- plugins & connectors ----------------------------------------------------------------


@app.command()
def plugins(as_json: JsonOption = False) -> None:
    """List plugins, the connectors and transforms they register, and their hooks."""
    from hub.plugins import load_plugins
    from hub.project import _plugins_dir_of, collect_connectors, collect_transforms

    registry = load_plugins(_plugins_dir_of(state.config) if state.config.exists() else None)
    connectors = collect_connectors(registry)
    transforms = collect_transforms(registry)
    listing: list[dict[str, Any]] = []
    for name, plugin in registry.pm.list_name_plugin():
        hooks = sorted(h.name for h in registry.pm.get_hookcallers(plugin) or [])
        listing.append({"name": name, "origin": registry.origins.get(name, ""), "hooks": hooks})
    data: dict[str, Any] = {
        "plugins": listing,
        "connectors": [
            {
                "name": c.name,
                "category": c.category,
                "source": c.source is not None,
                "destination": c.destination is not None,
                "description": c.description,
            }
            for c in connectors.values()
        ],
        "transforms": sorted(transforms),
        "failed": [{"name": f.name, "origin": f.origin, "error": f.error} for f in registry.failures],
    }
    if as_json:
        emit_json(data)
        return
    table = Table("plugin", "origin", "hooks", title="Plugins")
    for p in listing:
        table.add_row(p["name"], p["origin"], ", ".join(p["hooks"]))
    out.print(table)
    ctable = Table("connector", "category", "source", "destination", "description", title="Connectors")
    for c in data["connectors"]:
        ctable.add_row(
            c["name"],
            c["category"],
            "yes" if c["source"] else "",
            "yes" if c["destination"] else "",
            c["description"],
        )
    out.print(ctable)
    for failure in registry.failures:
        err.print(f"[red]failed to load[/red] {failure.name} ({failure.origin}): {failure.error}")


@connectors_app.command("list")
def connectors_list(as_json: JsonOption = False) -> None:
    """Connectors configured in hub.toml."""
    p = project()
    rows = [
        {"name": c.name, "plugin": c.plugin, "category": p.connectors[c.plugin].category}
        for c in p.settings.connectors.values()
    ]
    if as_json:
        emit_json(rows)
        return
    table = Table("name", "plugin", "category")
    for r in rows:
        table.add_row(r["name"], r["plugin"], r["category"])
    out.print(table)


@connectors_app.command("check")
def connectors_check(name: str, as_json: JsonOption = False) -> None:
    """Call the connector's Airbyte ``check``."""
    from airbyte_cdk.models import Status

    p = project()
    connector = p.connector_of(name)
    impl = connector.source or connector.destination
    assert impl is not None
    checker = p.source(name) if connector.source else impl()  # a source's rotated tokens are kept
    status = checker.check(logging.getLogger("hub.connectors"), p.config_of(name))
    ok = status.status == Status.SUCCEEDED
    message = mask_text(status.message or "")
    if as_json:
        emit_json({"connector": name, "status": status.status.value, "message": message})
    else:
        out.print(f"{name}: {'[green]OK[/green]' if ok else '[red]FAILED[/red]'} {message}")
    raise typer.Exit(0 if ok else 1)


@connectors_app.command("discover")
def connectors_discover(name: str, as_json: JsonOption = False) -> None:
    """Call the source's Airbyte ``discover`` and list its streams."""
    from airbyte_cdk.models import AirbyteMessage, AirbyteMessageSerializer, Type

    p = project()
    source = p.source(name)
    catalog = source.discover(logging.getLogger("hub.connectors"), p.config_of(name))
    if as_json:
        emit_json(
            AirbyteMessageSerializer.dump(AirbyteMessage(type=Type.CATALOG, catalog=catalog))["catalog"]
        )
        return
    table = Table("stream", "columns", "primary key", "sync modes", "cursor")
    for s in catalog.streams:
        table.add_row(
            s.name,
            str(len((s.json_schema or {}).get("properties", {}))),
            ", ".join(k[0] for k in s.source_defined_primary_key or []),
            ", ".join(m.value for m in s.supported_sync_modes or []),
            ", ".join(s.default_cursor_field or []),
        )
    out.print(table)


@config_app.command("check")
def config_check() -> None:
    """Validate hub.toml (exit 2 and every problem, if any)."""
    from hub.onboarding.flow import check_onboarding_settings
    from hub.webhooks.registry import check_webhook_settings

    p = project()
    check_webhook_settings(p)
    check_onboarding_settings(p)
    out.print(
        f"{p.path}: OK ({len(p.settings.connectors)} connectors, {len(p.settings.pipelines)} pipelines, "
        f"{len(p.settings.schedules)} schedules)"
    )
    from hub.contracts.history import record_configured_rules

    clause_set = record_configured_rules(p)
    if clause_set:
        (err if clause_set.startswith("warning") else out).print(clause_set, markup=False)


# -- database ----------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply schema migrations to hub's database."""
    from hub.store import Database

    p = project()
    db = Database(p.settings.database, auto_upgrade=False)
    db.upgrade()
    out.print(f"database at revision {db.revision()}")


@db_app.command("current")
def db_current() -> None:
    """Show the database's schema revision."""
    from hub.store import Database

    p = project()
    db = Database(p.settings.database, auto_upgrade=False)
    out.print(
        f"{db.revision() or '(empty)'}{'' if db.is_current() else ' (upgrade available: hub db upgrade)'}"
    )


# -- sync --------------------------------------------------------------------------------


@app.command()
def sync(
    pipeline: str,
    as_json: JsonOption = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="read and map, write nothing")] = False,
    full_refresh: Annotated[bool, typer.Option("--full-refresh", help="ignore saved cursors")] = False,
) -> None:
    """Run a pipeline now. Exit 0 success, 1 failed, 3 finished with dead letters."""
    from hub.engine import Sync

    p = project()
    progress = None
    bar = None
    if not as_json and sys.stderr.isatty():
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn("{task.completed:,} records"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        )
        tasks: dict[str, Any] = {}

        def progress(stream: str, done: int) -> None:
            if stream not in tasks:
                tasks[stream] = bar.add_task(stream, total=None)
            bar.update(tasks[stream], completed=done)

    try:
        if bar is not None:
            with bar:
                result = Sync(
                    p, pipeline, dry_run=dry_run, full_refresh=full_refresh, progress=progress
                ).run()
        else:
            result = Sync(p, pipeline, dry_run=dry_run, full_refresh=full_refresh).run()
    except PipelineBusy as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    if as_json:
        emit_json(result.as_dict())
    else:
        print_run_summary(result.as_dict())
    raise typer.Exit(result.exit_code)


def print_run_summary(data: dict[str, Any]) -> None:
    colour = {"succeeded": "green", "partial": "yellow"}.get(data["status"], "red")
    out.print(
        f"run {data['run_id']} of {data['pipeline']}: [{colour}]{data['status']}[/{colour}] "
        f"in {data['duration_seconds']:.1f}s"
    )
    table = Table("stream", "read", "inserted", "updated", "unchanged", "rejected")
    for stream, c in data["streams"].items():
        table.add_row(
            stream, *(f"{c[k]:,}" for k in ("read", "inserted", "updated", "unchanged", "rejected"))
        )
    out.print(table)
    if data.get("error"):
        out.print(f"[red]error:[/red] {data['error']}")
    if data["counts"]["rejected"]:
        out.print(f"see rejected records: hub deadletters list --run {data['run_id']}")


# -- runs & logs -------------------------------------------------------------------------


def parse_since(value: str | None) -> datetime | None:
    if not value:
        return None
    from hub.config import parse_duration

    try:
        return datetime.now(UTC) - timedelta(seconds=parse_duration(value))
    except ValueError:
        moment = datetime.fromisoformat(value)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def run_dict(run: Any, stats: list[Any] | None = None) -> dict[str, Any]:
    data = {
        "id": run.id,
        "pipeline": run.pipeline,
        "trigger": run.trigger,
        "status": run.status,
        "dry_run": run.dry_run,
        "started_at": fmt_time(run.started_at),
        "finished_at": fmt_time(run.finished_at),
        "counts": run.counts or {},
        "error": run.error,
    }
    if stats is not None:
        data["streams"] = [
            {
                "stream": s.stream,
                "destination": s.destination or None,
                "read": s.read,
                "inserted": s.inserted,
                "updated": s.updated,
                "unchanged": s.unchanged,
                "rejected": s.rejected,
            }
            for s in stats
        ]
    return data


@runs_app.command("list")
def runs_list(
    pipeline: Annotated[str | None, typer.Option(help="only this pipeline")] = None,
    status: Annotated[str | None, typer.Option(help="running, succeeded, partial, failed, crashed")] = None,
    since: Annotated[str | None, typer.Option(help="e.g. 2h, 7d, or an ISO date")] = None,
    limit: Annotated[int, typer.Option(help="at most this many")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Recent runs, newest first."""
    from hub.store.models import Run

    p = project()
    query = select(Run).order_by(Run.id.desc()).limit(limit)
    if pipeline:
        query = query.where(Run.pipeline == pipeline)
    if status:
        query = query.where(Run.status == status)
    moment = parse_since(since)
    if moment:
        query = query.where(Run.started_at >= moment)
    with p.db.session() as session:
        runs = [run_dict(r) for r in session.execute(query).scalars()]
    if as_json:
        emit_json(runs)
        return
    table = Table(
        "run", "pipeline", "trigger", "status", "started", "finished", "read", "ins", "upd", "same", "rej"
    )
    for r in runs:
        c = r["counts"]
        table.add_row(
            str(r["id"]),
            r["pipeline"],
            r["trigger"],
            r["status"],
            r["started_at"],
            r["finished_at"],
            *(f"{c.get(k, 0):,}" for k in ("read", "inserted", "updated", "unchanged", "rejected")),
        )
    out.print(table)


@runs_app.command("show")
def runs_show(run_id: int, as_json: JsonOption = False) -> None:
    """One run: counts per stream and destination, and its error."""
    from hub.store.models import Run, RunStat

    p = project()
    with p.db.session() as session:
        run = session.get(Run, run_id)
        if run is None:
            err.print(f"no run {run_id}")
            raise typer.Exit(1)
        stats = list(
            session.execute(select(RunStat).where(RunStat.run_id == run_id).order_by(RunStat.id)).scalars()
        )
        data = run_dict(run, stats)
    if as_json:
        emit_json(data)
        return
    out.print(
        f"run {data['id']} of {data['pipeline']} ({data['trigger']}): {data['status']}\n"
        f"started {data['started_at']}, finished {data['finished_at'] or '-'}"
    )
    table = Table("stream", "destination", "read", "inserted", "updated", "unchanged", "rejected")
    for s in data["streams"]:
        table.add_row(
            s["stream"],
            s["destination"] or "(all)",
            *(f"{s[k]:,}" for k in ("read", "inserted", "updated", "unchanged", "rejected")),
        )
    out.print(table)
    if data["error"]:
        out.print(f"[red]error:[/red] {data['error']}")


@app.command()
def logs(
    run_id: int,
    level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
    as_json: JsonOption = False,
) -> None:
    """The events of one run, in order."""
    from hub.store.models import RunEvent
    from hub.synclog import LEVELS

    if level not in LEVELS:
        err.print(f"--level must be one of {', '.join(LEVELS)}")
        raise typer.Exit(2)
    p = project()
    wanted = [name for name, value in LEVELS.items() if value >= LEVELS[level]]
    with p.db.session() as session:
        events = list(
            session.execute(
                select(RunEvent)
                .where(RunEvent.run_id == run_id, RunEvent.level.in_(wanted))
                .order_by(RunEvent.id)
            ).scalars()
        )
        rows = [
            {"at": fmt_time(e.at), "level": e.level, "kind": e.kind, "stream": e.stream, "message": e.message}
            for e in events
        ]
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        stream = f" [{r['stream']}]" if r["stream"] else ""
        out.print(f"{r['at']} {r['level'].upper():7} {r['kind']}{stream}: {r['message']}", markup=False)


# -- dead letters ------------------------------------------------------------------------


@dead_app.command("list")
def deadletters_list(
    pipeline: Annotated[str | None, typer.Option()] = None,
    run: Annotated[int | None, typer.Option("--run")] = None,
    status: Annotated[str, typer.Option(help="open, resolved or all")] = "open",
    limit: Annotated[int, typer.Option()] = 100,
    as_json: JsonOption = False,
) -> None:
    """Rejected records: where they came from and why (values never shown)."""
    from hub.store.models import DeadLetter

    p = project()
    query = select(DeadLetter).order_by(DeadLetter.id).limit(limit)
    if pipeline:
        query = query.where(DeadLetter.pipeline == pipeline)
    if run:
        query = query.where(DeadLetter.run_id == run)
    if status != "all":
        query = query.where(DeadLetter.status == status)
    with p.db.session() as session:
        rows = [
            {
                "id": d.id,
                "run_id": d.run_id,
                "pipeline": d.pipeline,
                "stream": d.stream,
                "destination": d.destination,
                "position": d.position,
                "reason": d.reason,
                "status": d.status,
            }
            for d in session.execute(query).scalars()
        ]
    if as_json:
        emit_json(rows)
        return
    table = Table("id", "run", "stream", "destination", "position", "reason", "status")
    for r in rows:
        table.add_row(
            str(r["id"]),
            str(r["run_id"]),
            r["stream"],
            r["destination"] or "(source)",
            r["position"],
            r["reason"],
            r["status"],
        )
    out.print(table)


@dead_app.command("show")
def deadletters_show(dead_letter_id: int, as_json: JsonOption = False) -> None:
    """One rejected record, with personal data masked."""
    from hub.engine import dead_letter_context
    from hub.store.models import DeadLetter

    p = project()
    with p.db.session() as session:
        d = session.get(DeadLetter, dead_letter_id)
        if d is None:
            err.print(f"no dead letter {dead_letter_id}")
            raise typer.Exit(1)
        record = None
        if d.payload is not None:
            plain = p.keyring.open(
                d.payload, "dead_letters", dead_letter_context(d.pipeline, d.stream, d.position)
            )
            record = mask_record(orjson.loads(plain))
        data = {
            "id": d.id,
            "run_id": d.run_id,
            "pipeline": d.pipeline,
            "stream": d.stream,
            "destination": d.destination,
            "position": d.position,
            "reason": d.reason,
            "status": d.status,
            "record": record,
        }
    if as_json:
        emit_json(data)
        return
    for key, value in data.items():
        if key != "record":
            out.print(f"{key:12} {value}", markup=False)
    if record:
        out.print("record (masked):")
        for key, value in record.items():
            out.print(f"  {key}: {value}", markup=False)


@dead_app.command("retry")
def deadletters_retry(
    ids: Annotated[list[int] | None, typer.Argument(help="dead letter ids (default: all open ones)")] = None,
    pipeline: Annotated[str | None, typer.Option()] = None,
    as_json: JsonOption = False,
) -> None:
    """Send open dead letters through their pipeline again; fixed ones are resolved."""
    from hub.deadletters import retry_dead_letters

    p = project()
    result = retry_dead_letters(p, ids or None, pipeline)
    if as_json:
        emit_json(result)
    else:
        out.print(
            f"retried {result['retried']}: {result['resolved']} resolved, {result['still_failing']} still failing"
        )
    raise typer.Exit(0 if result["still_failing"] == 0 else 3)


# -- scheduling --------------------------------------------------------------------------


@scheduler_app.command("start")
def scheduler_start(
    duration: Annotated[float | None, typer.Option("--for", help="stop after this many seconds")] = None,
) -> None:
    """Run schedules in the foreground (one active scheduler per database; others stand by)."""
    import signal

    from hub.scheduler import HubScheduler

    setup_logging(os.environ.get("HUB_LOG_LEVEL", "INFO"))
    p = project()
    scheduler = HubScheduler(p)
    signal.signal(signal.SIGTERM, lambda *_: scheduler.stop())
    try:
        scheduler.run(duration=duration)
    except KeyboardInterrupt:
        scheduler.stop()


@schedules_app.command("list")
def schedules_list(as_json: JsonOption = False) -> None:
    """Configured schedules and their next fire times."""
    from hub.scheduler import next_fire_times

    rows = next_fire_times(project())
    if as_json:
        emit_json(rows)
        return
    table = Table("pipeline", "schedule", "next fire", "misfire grace", "origin")
    for r in rows:
        table.add_row(
            r["pipeline"], r["schedule"], r["next_fire"], f"{r['misfire_grace_seconds']}s", r["origin"]
        )
    out.print(table)


# -- secrets -----------------------------------------------------------------------------


@secrets_app.command("set")
def secrets_set(
    name: str,
    from_stdin: Annotated[
        bool, typer.Option("--from-stdin", help="read the value from standard input")
    ] = False,
) -> None:
    """Store a credential encrypted; refer to it in hub.toml as { secret = "NAME" }."""
    value = (
        sys.stdin.read().rstrip("\n") if from_stdin else typer.prompt(f"value for {name}", hide_input=True)
    )
    if not value:
        err.print("empty value refused")
        raise typer.Exit(2)
    project().set_secret(name, value)
    out.print(f"secret {name} stored")


@secrets_app.command("list")
def secrets_list(as_json: JsonOption = False) -> None:
    """Secret names and when they last changed (never their values)."""
    from hub.store.models import Secret

    p = project()
    with p.db.session() as session:
        rows = [
            {"name": s.name, "updated_at": fmt_time(s.updated_at)}
            for s in session.execute(select(Secret)).scalars()
        ]
    if as_json:
        emit_json(rows)
        return
    table = Table("name", "last changed")
    for r in rows:
        table.add_row(r["name"], r["updated_at"])
    out.print(table)


def main() -> None:
    """Entry point: configuration problems exit 2, with every problem listed."""
    try:
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except ConfigurationError as exc:
        err.print(f"[red]configuration error[/red] in {exc.source}:", markup=True)
        for problem in exc.problems:
            err.print(f"  - {problem}", markup=False)
        sys.exit(2)
    except PluginError as exc:
        err.print(f"plugin error: {exc}", markup=False)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    except HubError as exc:
        err.print(f"error: {mask_text(str(exc))}", markup=False)
        sys.exit(1)
    except Exception as exc:
        # Usage errors (unknown command, bad option) from typer's bundled click: exit 2.
        code = getattr(exc, "exit_code", None)
        if hasattr(exc, "show") and isinstance(code, int):
            exc.show()
            sys.exit(code)
        raise


if __name__ == "__main__":
    main()
