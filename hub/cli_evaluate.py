"""``hub evaluate`` and ``hub talent search``: scores and the talent pool, with personal data masked.

Wired into the main command as ``app.command("evaluate")(evaluate_command)`` and
``app.add_typer(talent_app, name="talent")``. Names show as ``张**``, e-mails as ``z***@example.com``,
phones as ``138****8000``; resume text, scorecard comments and summaries are never shown. Each
use reads restricted data (scores, scorecards) and is written to the audit log with counts only.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from hub.cli_common import ConfigOption, config_path
from hub.evaluation.scoring import Evaluation
from hub.evaluation.service import ProjectEvaluation
from hub.evaluation.store import ApplicationBundle, EvaluationError
from hub.masking import mask_text

talent_app = typer.Typer(no_args_is_help=True, help="Search past candidates (masked).")

out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False)

JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]
COLOURS = {"recommend": "green", "hold": "yellow", "reject": "red"}


def _emit_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")


def _service(config: Path | None) -> ProjectEvaluation:
    from hub.project import Project

    return ProjectEvaluation(Project(config_path(config)))


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _shown(service: ProjectEvaluation, evaluation: Evaluation, bundle: ApplicationBundle) -> dict[str, Any]:
    """An evaluation as output: its own data (ids, numbers, keywords) and the candidate masked."""
    data = evaluation.as_dict()
    data["candidate_contacts"] = service.contacts(bundle.candidate).masked()
    return data


def _fail(message: str) -> None:
    err.print(mask_text(message), markup=False)
    raise typer.Exit(1)


def evaluate_command(
    application: Annotated[
        str | None, typer.Argument(help="application remote id or hub id", show_default=False)
    ] = None,
    job: Annotated[
        str | None, typer.Option("--job", help="every application of a job (remote id, hub id or code)")
    ] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Score an application (or a job's applications): composite, components, recommendation, reasons."""
    if (application is None) == (job is None):
        err.print("give an APPLICATION or --job JOB (one of them)")
        raise typer.Exit(2)
    service = _service(config)
    try:
        evaluator = service.evaluator()
        results = [evaluator.application(application)] if application is not None else evaluator.job(str(job))
    except EvaluationError as exc:
        _fail(str(exc))
        return
    service.audit(
        "evaluation.view",
        application if application is not None else f"job {job}",
        {"applications": len(results), "format": "json" if as_json else "table"},
    )
    shown = [_shown(service, e, b) for e, b in results]
    if as_json:
        _emit_json(shown[0] if application is not None else shown)
        return
    if application is not None:
        out.print(_panel(results[0][0], shown[0]))
        return
    _job_table(str(job), results, shown)


def _panel(evaluation: Evaluation, shown: dict[str, Any]) -> Panel:
    contacts = shown["candidate_contacts"]
    colour = COLOURS[evaluation.recommendation]
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("application", evaluation.application_remote_id)
    head.add_row("job", f"{evaluation.job_remote_id or '?'}  {evaluation.job_title or ''}".rstrip())
    who = " ".join(v for v in (contacts["name"], contacts["email"], contacts["phone"]) if v)
    head.add_row("candidate", f"{evaluation.candidate_remote_id or '?'}  {who}".rstrip())
    head.add_row("composite", Text(_num(evaluation.composite), style="bold"))
    head.add_row("recommendation", Text(evaluation.recommendation.upper(), style=f"bold {colour}"))
    head.add_row("background check", evaluation.background_check)
    head.add_row("interviewer disagreement", "FLAGGED" if evaluation.disagreement else "no")

    components = Table("component", "score", "weight", "detail", title="Components", title_justify="left")
    components.add_row(
        "resume",
        _num(evaluation.resume.score if evaluation.resume else None),
        f"{evaluation.weights.get('resume', 0):g}%",
        _resume_detail(evaluation),
    )
    assessment = evaluation.assessment
    components.add_row(
        "assessment",
        _num(assessment.score if assessment else None),
        f"{evaluation.weights.get('assessment', 0):g}%",
        "; ".join(
            f"{i.name} {i.score:.2f}"
            + (f" ({', '.join(f'{k} {v:.0f}' for k, v in i.sub_scores.items())})" if i.sub_scores else "")
            for i in assessment.items
        )
        if assessment
        else "no result",
    )
    interview = evaluation.interview
    components.add_row(
        "interview",
        _num(interview.score if interview else None),
        f"{evaluation.weights.get('interview', 0):g}%",
        (
            f"{len(interview.interviewers)} interviewers, spread {_num(interview.spread)}, "
            f"stdev {_num(interview.stdev)}"
        )
        if interview
        else "no scorecards",
    )
    parts: list[Any] = [head, components]
    if interview is not None:
        grid = Table(
            "competency",
            "weight",
            "pooled",
            *[i.interviewer for i in interview.interviewers],
            title="Structured interview",
            title_justify="left",
        )
        for key, weight in interview.weights.items():
            grid.add_row(
                interview.names.get(key, key),
                f"{weight:g}%",
                _num(interview.competencies.get(key)),
                *[_num(i.competencies.get(key)) for i in interview.interviewers],
            )
        grid.add_row(
            "[bold]interviewer score[/bold]",
            "",
            _num(interview.score),
            *[_num(i.score) for i in interview.interviewers],
        )
        parts.append(grid)
    reasons = Text("\n").join(
        [Text(f"• {r.message}") for r in evaluation.reasons]
        + [Text(f"· {n.message}", style="dim") for n in evaluation.notes]
    )
    parts.append(Panel(reasons, title="reasons", title_align="left"))
    return Panel(
        Group(*parts), title=f"evaluation of {evaluation.application_remote_id}", border_style=colour
    )


def _resume_detail(evaluation: Evaluation) -> str:
    resume = evaluation.resume
    if resume is None:
        return "not scored (no keywords or min_years for the job, or no resume)"
    parts = []
    if resume.required:
        parts.append(f"required {sum(resume.required.values())}/{len(resume.required)}")
    if resume.preferred:
        parts.append(f"preferred {sum(resume.preferred.values())}/{len(resume.preferred)}")
    if resume.min_years:
        years = "?" if resume.years is None else f"{resume.years:g}"
        parts.append(f"{years} years (min {resume.min_years:g})")
    return ", ".join(parts)


def _job_table(
    job: str, results: list[tuple[Evaluation, ApplicationBundle]], shown: list[dict[str, Any]]
) -> None:
    table = Table(
        "application",
        "candidate",
        "name",
        "composite",
        "resume",
        "assessment",
        "interview",
        "background",
        "disagreement",
        "recommendation",
        title=f"Applications of job {job}",
    )
    for (evaluation, _), data in zip(results, shown, strict=True):
        scores = evaluation.component_scores()
        table.add_row(
            evaluation.application_remote_id,
            evaluation.candidate_remote_id or "",
            data["candidate_contacts"]["name"] or "",
            _num(evaluation.composite),
            _num(scores["resume"]),
            _num(scores["assessment"]),
            _num(scores["interview"]),
            evaluation.background_check,
            "FLAGGED" if evaluation.disagreement else "",
            Text(evaluation.recommendation, style=COLOURS[evaluation.recommendation]),
        )
    out.print(table)
    counts = {k: sum(1 for e, _ in results if e.recommendation == k) for k in COLOURS}
    out.print(", ".join(f"{v} {k}" for k, v in counts.items()))


@talent_app.command("search")
def talent_search(
    query: Annotated[str, typer.Argument(help='skills and years, e.g. "数据标注 TensorFlow 3年"')],
    limit: Annotated[int, typer.Option("--limit", min=1, help="how many candidates")] = 20,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Rank past candidates by skills, resume text, experience and track record (masked)."""
    from hub.evaluation.service import Evaluator
    from hub.talent import build_profiles, parse_query, search, vocabulary_of

    service = _service(config)
    try:
        data = service.load()
    except EvaluationError as exc:
        _fail(str(exc))
        return
    evaluator = Evaluator(data, service.config)
    profiles = build_profiles(data, evaluator)
    parsed = parse_query(query, vocabulary_of(profiles, evaluator.synonyms, service.config.keywords()))
    hits = search(profiles, parsed, evaluator.synonyms, limit=limit)
    for hit in hits:
        hit.contacts = service.contacts(hit.profile.candidate)
    service.audit("talent.search", query, {"results": len(hits), "candidates": len(profiles)})
    rows = [hit.as_dict() for hit in hits]
    if as_json:
        _emit_json(
            {
                "query": {
                    "terms": [t.text for t in parsed.terms],
                    "min_years": parsed.min_years,
                },
                "candidates": len(profiles),
                "results": rows,
            }
        )
        return
    terms = ", ".join(t.text for t in parsed.terms) or "(none)"
    years = f", at least {parsed.min_years:g} years" if parsed.min_years else ""
    table = Table(
        "#",
        "candidate",
        "name",
        "email",
        "phone",
        "score",
        "matched",
        "years",
        "best composite",
        title=f"Talent search: {terms}{years} ({len(profiles)} candidates)",
    )
    for rank, row in enumerate(rows, start=1):
        table.add_row(
            str(rank),
            row["candidate"],
            row["name"] or "",
            row["email"] or "",
            row["phone"] or "",
            f"{row['score']:.2f}",
            ", ".join(row["matched"]),
            "" if row["years"] is None else f"{row['years']:g}",
            _num(row["best_composite"]),
        )
    out.print(table)
