"""``hub contracts`` and ``hub payroll``: clause rules, documents, expiry reminders, payroll export.

Input files are JSON written by the onboarding flow (or by hand while setting rules up). What
these commands print never holds personal data: clause names and rules, file names, digests,
counts, masked reminder messages. The files they write (documents, payroll exports) do, and are
created owner-only (0600).
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from hub.cli_common import ConfigOption, config_path
from hub.contracts.clauses import ClauseSelection, select_clauses
from hub.contracts.law import ContractRuleError

contracts_app = typer.Typer(
    no_args_is_help=True, help="Labour contracts: clause rules, documents, reminders."
)
payroll_app = typer.Typer(no_args_is_help=True, help="Payroll template export (CSV / Excel).")

out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)

JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]
InputFile = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)]


def _project(config: Path | None) -> Any:
    from hub.project import Project

    return Project(config_path(config))


def _read_json(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        err.print(f"{path.name}: not valid JSON (line {exc.lineno})", markup=False)
        raise typer.Exit(2) from None


def _terms(path: Path) -> Any:
    from hub.contracts.documents import DocumentTerms, validation_problems

    try:
        return DocumentTerms.model_validate(_read_json(path))
    except ValidationError as exc:
        err.print(f"{path.name}: the terms are invalid:", markup=False)
        for line in validation_problems(exc):
            err.print(f"  - {line}", markup=False)
        raise typer.Exit(2) from None


def _refused(exc: ContractRuleError) -> typer.Exit:
    err.print(f"refused: {exc}", markup=False)
    return typer.Exit(1)


def _print_selection(selection: ClauseSelection, as_json: bool) -> None:
    if as_json:
        out.print(
            orjson.dumps(
                {
                    "rules_sha256": selection.rules_digest,
                    "clauses": [
                        {
                            "name": c.name,
                            "kind": c.kind,
                            "title": c.title,
                            "rule": c.rule,
                            "also_matched": c.also_matched,
                        }
                        for c in selection.clauses
                    ],
                }
            ).decode(),
            soft_wrap=True,
            markup=False,
        )
        return
    if not selection.clauses:
        out.print("no clause rule matches")
        return
    table = Table("clause", "kind", "title", "chosen by")
    for c in selection.clauses:
        table.add_row(c.name, c.kind, c.title, c.rule)
    out.print(table)


@contracts_app.command("clauses")
def clauses_command(
    file: InputFile,
    facts: Annotated[
        bool, typer.Option("--facts", help="FILE is a plain JSON object of job attributes")
    ] = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Which clauses the [contracts] rules choose for FILE (document terms, or --facts), and why."""
    settings = _project(config).settings.contracts
    if facts:
        data = _read_json(file)
        if not isinstance(data, dict):
            err.print("--facts needs a JSON object", markup=False)
            raise typer.Exit(2)
        selection = select_clauses(settings, data)
    else:
        selection = select_clauses(settings, _terms(file).facts())
    _print_selection(selection, as_json)


@contracts_app.command("check")
def check_command(file: InputFile, as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """Run the statutory checks on FILE's terms (probation, its pay, the chosen clauses' terms)."""
    from hub.contracts.documents import DocumentGenerator

    generator = DocumentGenerator(_project(config).settings.contracts)
    terms = _terms(file)
    try:
        generator.prepare(terms)
    except ContractRuleError as exc:
        raise _refused(exc) from None
    _print_selection(generator.select(terms), as_json)
    if not as_json:
        out.print("ok: the terms pass 劳动合同法 arts. 19, 20, 22-24 as configured")


@contracts_app.command("render")
def render_command(
    file: InputFile,
    kind: Annotated[str, typer.Option(help="offer_letter or labour_contract")] = "labour_contract",
    out_dir: Annotated[Path, typer.Option("--out", help="folder for the files (created 0600)")] = Path(),
    pdf: Annotated[
        bool | None,
        typer.Option("--pdf/--no-pdf", help="PDF too (default: when [contracts] pdf_font is set)"),
    ] = None,
    on: Annotated[
        str | None, typer.Option("--date", help="document date, YYYY-MM-DD (default: today)")
    ] = None,
    vendor_fields: Annotated[
        bool, typer.Option("--vendor-fields", help="also write the e-contract vendor template fields (JSON)")
    ] = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Render an offer letter or labour contract from FILE's terms into --out."""
    from hub.contracts.documents import TEMPLATES, DocumentError
    from hub.contracts.history import project_generator
    from hub.payroll_export import write_private

    if kind not in TEMPLATES:
        err.print(f"--kind must be one of {', '.join(TEMPLATES)}", markup=False)
        raise typer.Exit(2)
    document_date = date.fromisoformat(on) if on else None
    generator = project_generator(_project(config))
    terms = _terms(file)
    try:
        doc = generator.generate(kind, terms, document_date=document_date, pdf=pdf)
    except ContractRuleError as exc:
        raise _refused(exc) from None
    except DocumentError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    written: list[dict[str, str]] = []
    for rendered in (doc.html, doc.pdf):
        if rendered is None:
            continue
        path = out_dir / f"{kind}-{rendered.sha256[:12]}.{rendered.extension}"
        write_private(path, rendered.content)
        written.append({"path": str(path), "sha256": rendered.sha256, "media_type": rendered.media_type})
    if vendor_fields:
        fields = generator.vendor_fields(terms, document_date=doc.document_date)
        path = out_dir / f"{kind}-{doc.sha256[:12]}.fields.json"
        write_private(path, orjson.dumps(fields, option=orjson.OPT_INDENT_2))
        written.append({"path": str(path), "sha256": "", "media_type": "application/json"})
    clause_names = [c.name for c in doc.clauses]
    summary = {
        "kind": kind,
        "sha256": doc.sha256,
        "clause_set_version": doc.clause_set.id,
        "clauses": clause_names,
        "files": written,
    }
    if as_json:
        out.print(orjson.dumps(summary).decode(), soft_wrap=True, markup=False)
        return
    for item in written:
        out.print(f"wrote {item['path']}  sha256 {item['sha256'] or '-'}", markup=False)
    out.print(f"clause set {doc.clause_set.id}; clauses: {', '.join(clause_names) or 'none'}", markup=False)
    if doc.pdf is None and pdf is None:
        out.print("HTML only: set [contracts] pdf_font to a CJK .ttf/.otf for PDF (hub contracts fonts)")


@contracts_app.command("version")
def version_command(as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """The clause-set version: digest of the clause rules and of every template (recorded in the history)."""
    from hub.contracts.history import record_project_rules

    version, outcome = record_project_rules(_project(config))
    if as_json:
        out.print(orjson.dumps(version.as_dict()).decode(), soft_wrap=True, markup=False)
        return
    out.print(f"clause set {version.id}\nrules sha256 {version.rules_sha256}", markup=False)
    table = Table("template", "sha256")
    for name, digest in version.templates.items():
        table.add_row(name, digest)
    out.print(table)
    if outcome == "recorded":
        out.print("a new clause set: recorded in the clause history (hub contracts history)")


@contracts_app.command("history")
def history_command(
    version: Annotated[
        str | None, typer.Argument(help="one version (cs-…, or a unique prefix): its rules")
    ] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """The clause-set versions hub has used, newest first, each with what changed from the one before."""
    from hub.contracts.history import ClauseHistory, history_json, history_lines, version_lines

    history = ClauseHistory(_project(config).db)
    if version is None:
        versions = history.versions()
        if as_json:
            out.print(orjson.dumps(history_json(versions)).decode(), soft_wrap=True, markup=False)
            return
        lines = history_lines(versions) or ["no clause-set version recorded yet"]
        out.print("\n".join(lines), markup=False, soft_wrap=True)
        return
    found = history.get(version)
    if found is None:
        err.print(
            f"no clause-set version {version} recorded (hub contracts history lists them)", markup=False
        )
        raise typer.Exit(1)
    if as_json:
        out.print(orjson.dumps(found.as_dict()).decode(), soft_wrap=True, markup=False)
        return
    out.print("\n".join(version_lines(found)), markup=False, soft_wrap=True)


@contracts_app.command("fonts")
def fonts_command() -> None:
    """CJK fonts installed here that [contracts] pdf_font can name."""
    from hub.contracts.documents import find_cjk_fonts

    fonts = find_cjk_fonts()
    if not fonts:
        out.print(
            "no CJK .ttf/.otf font found (fc-list :lang=zh); install one, e.g. fonts-noto-cjk-extra or fonts-droid-fallback"
        )
        return
    for font in fonts:
        out.print(str(font), markup=False)


@contracts_app.command("reminders")
def reminders_command(
    file: Annotated[
        Path | None,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            help="a JSON list of contracts; without it, the source of contracts.reminders in hub.toml",
        ),
    ] = None,
    today: Annotated[str | None, typer.Option(help="the day to run for, YYYY-MM-DD (default: today)")] = None,
    ledger: Annotated[
        str | None,
        typer.Option(
            help="FILE only: SQLAlchemy URL of the sent-reminder ledger (default: .hub/contract_reminders.db)"
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what is due; record nothing")] = False,
    send: Annotated[
        bool,
        typer.Option(
            "--send", help="run the contracts.reminders job once: message HR through the OA connector"
        ),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Expiry reminders due for the contracts in FILE (printed, masked, each once), or in the HR master.

    FILE is a JSON list of {contract_id, end_date, employee_name, employee_number?, employer?}.
    Without FILE the contracts come from the source of contracts.reminders in hub.toml: shown
    (nothing sent or recorded), or with --send sent through its notify connector as the
    scheduled job does.
    """
    from hub.contracts.expiry import today_in

    project = _project(config)
    day = date.fromisoformat(today) if today else today_in(project.settings.timezone)
    if file is None:
        if ledger is not None:
            err.print("--ledger goes with FILE; the job's ledger is in hub's database", markup=False)
            raise typer.Exit(2)
        _configured_reminders(project, day, send=send and not dry_run)
        return
    if send:
        err.print("--send reads the [contracts.reminders] source: leave out FILE", markup=False)
        raise typer.Exit(2)
    _file_reminders(project, file, day, ledger, dry_run)


def _configured_reminders(project: Any, day: date, *, send: bool) -> None:
    """The [contracts.reminders] job: a preview, or one run (exit 1 when a send failed)."""
    from hub.contracts.reminders import (
        ReminderSourceError,
        preview_contract_reminders,
        render,
        run_contract_reminders,
    )
    from hub.errors import ConfigurationError
    from hub.vendor_http import VendorError

    reminders = project.settings.contract_reminders
    if reminders is None:
        err.print(
            "no [contracts.reminders] table in hub.toml (source, notify, to); or give a FILE of contracts",
            markup=False,
        )
        raise typer.Exit(2)
    try:
        if not send:
            due, read = preview_contract_reminders(project, day)
            for reminder in due:
                out.print(f"[due {reminder.days_before}d] {render(reminders.text, reminder)}", markup=False)
            skipped = f", {len(read.unreadable)} skipped (name does not open)" if read.unreadable else ""
            out.print(
                f"{len(due)} due on {day.isoformat()} (not sent: --send sends them){skipped}", markup=False
            )
            return
        result = run_contract_reminders(project, today=day)
    except (ReminderSourceError, ConfigurationError, VendorError) as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    for reminder in result.run.sent:
        out.print(
            f"sent {reminder.contract_number or reminder.contract_id} ({reminder.days_before}d)", markup=False
        )
    for key, error in result.run.failed:
        out.print(f"failed {key.contract_id} ({error}): sent by the next run", markup=False)
    out.print(result.summary(), markup=False)
    if not result.ok:
        raise typer.Exit(1)


def _file_reminders(project: Any, file: Path, day: date, ledger: str | None, dry_run: bool) -> None:
    """Reminders for the contracts in FILE, printed (masked) through the ledger at ``ledger``."""
    from hub.contracts.expiry import (
        ExpiringContract,
        Reminder,
        SqlReminderLedger,
        due_reminders,
        send_expiry_reminders,
    )

    settings = project.settings
    rows = _read_json(file)
    if not isinstance(rows, list):
        err.print("FILE must hold a JSON list of contracts", markup=False)
        raise typer.Exit(2)
    try:
        contracts = [
            ExpiringContract(
                contract_id=str(row["contract_id"]),
                end_date=date.fromisoformat(str(row["end_date"])),
                employee_name=str(row["employee_name"]),
                employee_number=None if row.get("employee_number") is None else str(row["employee_number"]),
                employer=row.get("employer"),
            )
            for row in rows
        ]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        err.print(
            f"FILE: each contract needs contract_id, end_date (YYYY-MM-DD), employee_name ({type(exc).__name__})"
        )
        raise typer.Exit(2) from None
    days = settings.contracts.reminder_days
    if dry_run:
        for reminder in due_reminders(contracts, day, days):
            out.print(f"[due {reminder.days_before}d] {reminder.message}", markup=False)
        return
    url = ledger or f"sqlite:///{settings.project_dir / '.hub' / 'contract_reminders.db'}"
    if ledger is None:
        (settings.project_dir / ".hub").mkdir(parents=True, exist_ok=True)

    def print_sink(reminder: Reminder) -> None:
        out.print(reminder.message, markup=False)

    run = send_expiry_reminders(contracts, print_sink, SqlReminderLedger(url), days=days, today=day)
    out.print(
        f"{len(run.sent)} sent, {len(run.already_sent)} already sent, {len(run.failed)} failed ({day.isoformat()})",
        markup=False,
    )


@payroll_app.command("export")
def payroll_export_command(
    file: InputFile,
    out_path: Annotated[Path, typer.Option("--out", help="file to write (0600)")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="xlsx or csv (default: [payroll_export] format)")
    ] = None,
    encrypt: Annotated[
        bool | None, typer.Option("--encrypt/--no-encrypt", help="seal the file with hub's keyring")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Write FILE's records (a JSON list of objects) as the payroll template [payroll_export] describes."""
    from hub.payroll_export import PayrollExportError, write_export

    project = _project(config)
    export_config = project.settings.payroll_export
    if export_config is None:
        err.print(
            "no [payroll_export] table in hub.toml (columns = [{ header = ..., field = ... }])", markup=False
        )
        raise typer.Exit(2)
    records = _read_json(file)
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        err.print("FILE must hold a JSON list of objects", markup=False)
        raise typer.Exit(2)
    sealed = export_config.encrypt if encrypt is None else encrypt
    try:
        result = write_export(
            records,
            export_config,
            out_path,
            fmt=fmt,
            keyring=project.keyring if sealed else None,
            encrypt=sealed,
        )
    except PayrollExportError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    out.print(
        f"wrote {result.path} ({result.format}, {result.rows} rows{', sealed' if result.encrypted else ''}, mode 0600)",
        markup=False,
    )


@payroll_app.command("decrypt")
def payroll_decrypt_command(
    file: InputFile,
    out_path: Annotated[Path, typer.Option("--out", help="file to write the plaintext to (0600)")],
    config: ConfigOption = None,
) -> None:
    """Open a sealed payroll export (written with --encrypt) into --out."""
    from hub.payroll_export import decrypt_export_file

    fmt = decrypt_export_file(_project(config).keyring, file, out_path)
    out.print(f"wrote {out_path} ({fmt}, mode 0600)", markup=False)
