"""``hub onboarding``: open cases, run their tasks, and the operator's commands.

Wired into the main command as ``app.add_typer(onboarding_app, name="onboarding")``. Nothing
printed here holds personal data in clear: the person is masked, vendor ids and errors too.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from hub.cli_common import ConfigOption, config_path

if TYPE_CHECKING:
    from hub.onboarding.flow import OnboardingFlow

onboarding_app = typer.Typer(no_args_is_help=True, help="Onboarding cases: offer accepted -> every system.")

out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 200)

JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]


@onboarding_app.callback()
def onboarding() -> None:
    """Onboarding cases: each accepted offer's data pushed to the HR master, OA, payroll and
    e-contract systems exactly once, by the tasks of [onboarding] in hub.toml."""


def _flow(config: Path | None) -> OnboardingFlow:
    from hub.onboarding.flow import OnboardingFlow
    from hub.project import Project

    return OnboardingFlow(Project(config_path(config)))


def _emit(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")


def _time(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


@onboarding_app.command("start")
def start(
    offer: Annotated[
        str | None, typer.Option("--offer", help="the offer's remote id in the canonical store")
    ] = None,
    from_file: Annotated[
        Path | None, typer.Option("--from", help="a JSON object of the case's data (sealed at once)")
    ] = None,
    any_status: Annotated[
        bool, typer.Option("--any-status", help="open the case even if the offer is not accepted")
    ] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Open a case: from an offer in the canonical store, or from a JSON file of case data.

    One case per offer: starting the same offer again shows the existing case.
    """
    from hub.masking import mask_text
    from hub.onboarding.intake import OfferStore, offer_status

    if (offer is None) == (from_file is None):
        err.print("give exactly one of --offer OFFER_REMOTE_ID or --from case.json", markup=False)
        raise typer.Exit(2)
    flow = _flow(config)
    if from_file is not None:
        try:
            data = orjson.loads(from_file.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            err.print(f"cannot read {from_file}: {type(exc).__name__}", markup=False)
            raise typer.Exit(2) from exc
        if not isinstance(data, dict) or not data:
            err.print(f"{from_file} must hold a JSON object of the case's data", markup=False)
            raise typer.Exit(2)
        case_id, created = flow.open_case(data, source="file")
    else:
        assert offer is not None
        found = OfferStore(flow.project, flow.config.store).offers([offer])
        if offer not in found:
            err.print(f"offer {mask_text(offer)} is not in the canonical store", markup=False)
            raise typer.Exit(1)
        row, data = found[offer]
        status = offer_status(row)
        if status not in flow.config.intake.statuses and not any_status:
            err.print(
                f"offer {mask_text(offer)} is {status or 'without status'}, not "
                f"{' / '.join(flow.config.intake.statuses)} (--any-status to open it anyway)",
                markup=False,
            )
            raise typer.Exit(1)
        case_id, created = flow.open_case(data, source="offer", offer_remote_id=offer)
    if as_json:
        _emit({"case_id": case_id, "created": created})
        return
    out.print(f"{'opened' if created else 'already open:'} case {case_id}")
    if from_file is not None and created:
        err.print(f"note: {from_file} holds personal data in clear; the case has it sealed now", markup=False)


@onboarding_app.command("intake")
def intake_(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Open a case for each offer accepted since the last intake (change events, exactly once)."""
    from hub.onboarding.intake import intake

    report = intake(_flow(config))
    if as_json:
        _emit(report.as_dict())
        return
    out.print(
        f"{report.read} offer event(s): {report.opened} case(s) opened, {report.existing} already open, "
        f"{report.not_accepted} not accepted, {report.missing} not in the store (cursor {report.cursor})"
    )


@onboarding_app.command("run")
def run(
    once: Annotated[bool, typer.Option("--once", help="one pass over the due tasks, then exit")] = False,
    poll: Annotated[float, typer.Option("--poll", min=0.1, help="seconds between passes")] = 5.0,
    duration: Annotated[float | None, typer.Option("--for", help="stop after this many seconds")] = None,
    with_intake: Annotated[
        bool, typer.Option("--intake", help="also open cases for newly accepted offers, each pass")
    ] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Perform due tasks (dependencies, retries, callbacks' followers). Any number may run at once.

    Exit code 3 when a pass (--once) left a task waiting for an operator.
    """
    import os
    import signal

    from hub.logs import setup_logging
    from hub.onboarding.intake import intake
    from hub.onboarding.runner import OnboardingRunner

    flow = _flow(config)
    runner = OnboardingRunner(flow)
    if with_intake:
        runner.before_pass = lambda: intake(flow)
    if once:
        report = runner.run_once()
        if as_json:
            _emit(report.as_dict())
        else:
            out.print(
                f"{report.claimed} attempt(s): {report.done} done ({report.recovered} found already made), "
                f"{report.waiting} waiting for a callback, {report.retrying} to retry, "
                f"{report.needs_operator} need an operator, {report.skipped} skipped"
                + (f", {report.lost} lost their claim" if report.lost else "")
            )
        raise typer.Exit(3 if report.needs_operator else 0)
    setup_logging(os.environ.get("HUB_LOG_LEVEL", "INFO"))
    signal.signal(signal.SIGTERM, lambda *_: runner.stop())
    try:
        runner.run_forever(poll=poll, duration=duration)
    except KeyboardInterrupt:
        runner.stop()


@onboarding_app.command("list")
def list_(
    status: Annotated[
        str | None,
        typer.Option("--status", help="OPEN, NEEDS_OPERATOR, COMPLETED, CANCELLING or CANCELLED"),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="at most this many, newest first")] = 100,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cases, newest first, with where their tasks stand."""
    views = _flow(config).list_cases(status=status, limit=limit)
    if as_json:
        _emit([{k: v for k, v in view.as_dict().items() if k != "person"} for view in views])
        return
    if not views:
        out.print("no onboarding cases")
        return
    table = Table("case", "status", "source", "opened", "tasks")
    for view in views:
        counts: dict[str, int] = {}
        for task in view.tasks:
            counts[task.status] = counts.get(task.status, 0) + 1
        summary = ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()))
        table.add_row(
            view.id, view.status, f"{view.source} {view.source_ref}".strip(), _time(view.created_at), summary
        )
    out.print(table)


@onboarding_app.command("show")
def show(case: str, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """One case: its tasks (attempts, masked errors, vendor references) and its person, masked."""
    flow = _flow(config)
    view = flow.show(flow.resolve_case(case))
    if as_json:
        _emit(view.as_dict())
        return
    origin = f"{view.source} {view.source_ref}".strip()
    out.print(f"case {view.id}: {view.status} (from {origin}, opened {_time(view.created_at)})")
    if view.cancel_reason:
        out.print(f"cancelled: {view.cancel_reason}", markup=False)
    people = Table("field", "value (masked)")
    for key, value in view.person.items():
        people.add_row(str(key), str(value))
    out.print(people)
    tasks = Table(
        "task", "action", "connector", "status", "attempts", "next attempt", "reference", "last error"
    )
    for t in view.tasks:
        status = t.status + (f" ({t.waiting_for})" if t.waiting_for and t.status == "WAITING" else "")
        if t.undo_status:
            status += f", undo {t.undo_status}"
        error = t.undo_error or t.last_error or ""
        tasks.add_row(
            t.name,
            t.action,
            t.connector,
            status,
            str(t.attempts),
            _time(t.next_attempt_at),
            t.result_ref or "",
            error,
        )
    out.print(tasks)


@onboarding_app.command("retry")
def retry(
    case: str,
    task: Annotated[str | None, typer.Argument(help="only this task (a WAITING one too)")] = None,
    config: ConfigOption = None,
) -> None:
    """Queue a case's failed tasks again now, with a fresh attempt budget (audited)."""
    flow = _flow(config)
    case_id = flow.resolve_case(case)
    queued = flow.retry(case_id, task)
    if not queued:
        out.print(f"case {case_id}: no failed task to retry")
        return
    out.print(
        f"case {case_id}: queued {', '.join(queued)} (hub onboarding run, or the scheduler, performs them)"
    )


@onboarding_app.command("skip")
def skip(
    case: str,
    task: str,
    reason: Annotated[str, typer.Option("--reason", help="why (done by hand, does not apply); audited")],
    config: ConfigOption = None,
) -> None:
    """Mark a task skipped (an operator did it by hand): the tasks after it may run."""
    flow = _flow(config)
    case_id = flow.resolve_case(case)
    flow.skip(case_id, task, reason)
    out.print(f"case {case_id}: task {task} skipped")


@onboarding_app.command("cancel")
def cancel(
    case: str,
    reason: Annotated[
        str, typer.Option("--reason", help="why (the offer was withdrawn, a no-show); audited")
    ],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cancel a case: undo what its tasks did, newest first, and say what could not be undone.

    Exit code 3 when something could not be undone (it still exists at the vendor).
    """
    flow = _flow(config)
    case_id = flow.resolve_case(case)
    report = flow.cancel(case_id, reason)
    if as_json:
        _emit(report.as_dict())
    else:
        out.print(f"case {case_id}: {report.status}")
        if report.undone:
            out.print(f"  undone: {', '.join(report.undone)}")
        if report.cancelled:
            out.print(f"  not started, cancelled: {', '.join(report.cancelled)}")
        if report.not_supported:
            out.print(f"  cannot be undone (still at the vendor): {', '.join(report.not_supported)}")
        for name, error in report.failed:
            out.print(f"  undo failed: {name}: {error} (cancel again to retry)", markup=False)
        if report.still_running:
            out.print(
                f"  still running: {', '.join(report.still_running)}; undone once finished "
                "(hub onboarding run, or cancel again)"
            )
    raise typer.Exit(3 if report.not_supported or report.failed else 0)
