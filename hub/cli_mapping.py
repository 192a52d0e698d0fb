"""``hub mapping``: check a mapping file, and preview it on sample records without writing anything."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

mapping_app = typer.Typer(no_args_is_help=True, help="Mapping files: check them, preview them.")
out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def _context(config: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Transforms (from plugins) and canonical entities; no database is opened."""
    from hub.plugins import load_plugins
    from hub.project import _plugins_dir_of, collect_transforms
    from hub.schema import ENTITIES

    registry = load_plugins(_plugins_dir_of(config) if config.exists() else None)
    return collect_transforms(registry), dict(ENTITIES)


def _read_sample(path: Path, limit: int) -> pd.DataFrame:
    """Sample records: CSV / Excel (through the files connector), JSON array or JSON lines."""
    from hub.connectors import POSITION

    if path.suffix.lower() in (".json", ".jsonl", ".ndjson"):
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".json":
            records = orjson.loads(text)
            records = records if isinstance(records, list) else [records]
        else:
            records = [orjson.loads(line) for line in text.splitlines() if line.strip()]
        rows = [
            {k: (orjson.dumps(v).decode() if isinstance(v, dict | list) else v) for k, v in r.items()}
            for r in records[:limit]
        ]
        frame = pd.DataFrame.from_records(rows)
        frame[POSITION] = [f"{path.name}#{i}" for i in range(1, len(frame) + 1)]
        return frame
    from hub_files.source import FilesSource

    source = FilesSource()
    frames = []
    for batch in source.read_batches(logging.getLogger("hub.preview"), {"path": str(path)}, "sample", None):
        frames.append(batch.frame)
        if sum(len(f) for f in frames) >= limit:
            break
    frame = pd.concat(frames) if frames else pd.DataFrame()
    return frame.head(limit).reset_index(drop=True)


@mapping_app.command("check")
def check(
    files: Annotated[list[Path], typer.Argument(help="mapping files")],
    config: Annotated[Path, typer.Option("--config", "-c", envvar="HUB_CONFIG")] = Path("hub.toml"),
) -> None:
    """Load each mapping file and report every problem with file:line (exit 2 on any)."""
    from hub.mapping.loader import MappingError, load_mapping

    transforms, entities = _context(config)
    failed = False
    for file in files:
        try:
            spec = load_mapping(file, transforms, entities)
        except MappingError as exc:
            failed = True
            for problem in exc.problems:
                out.print(str(problem), markup=False)
            continue
        out.print(f"{file}: OK ({spec.entity}, {len(spec.fields)} fields)", markup=False)
    raise typer.Exit(2 if failed else 0)


@mapping_app.command("preview")
def preview(
    file: Annotated[Path, typer.Argument(help="mapping file")],
    sample: Annotated[Path, typer.Option("--sample", help="CSV, .xlsx, .json or .jsonl records")],
    limit: Annotated[int, typer.Option(help="records to show")] = 10,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    config: Annotated[Path, typer.Option("--config", "-c", envvar="HUB_CONFIG")] = Path("hub.toml"),
) -> None:
    """Show source -> canonical side by side, with rejections. Writes nothing anywhere."""
    from hub.connectors import POSITION
    from hub.mapping.executor import apply_mapping, canonical_text, pii_kinds
    from hub.mapping.loader import MappingError, load_mapping
    from hub.masking import mask_record, mask_value

    transforms, entities = _context(config)
    try:
        spec = load_mapping(file, transforms, entities)
    except MappingError as exc:
        for problem in exc.problems:
            out.print(str(problem), markup=False)
        raise typer.Exit(2) from exc
    frame = _read_sample(sample, limit)
    kinds = pii_kinds(entities[spec.entity])
    result = apply_mapping(spec, frame, transforms, kinds)
    mapped = []
    for position, row in zip(
        result.frame[POSITION].astype(str), result.frame.to_dict("records"), strict=True
    ):
        shown = {
            k: (
                mask_value(kinds[k] or "text", canonical_text(v))
                if k in kinds and v is not None
                else canonical_text(v)
            )
            for k, v in row.items()
            if k != POSITION
        }
        mapped.append({"position": position, "canonical": shown})
    rejected = [{"position": r.position, "reason": r.reason} for r in result.rejections]
    warned = [{"position": p, "warning": w} for p, w in result.warnings]
    if as_json:
        sys.stdout.write(
            orjson.dumps({"mapped": mapped, "rejected": rejected, "warnings": warned}).decode() + "\n"
        )
        return
    sources = (
        {
            r[POSITION]: mask_record({k: v for k, v in r.items() if k != POSITION})
            for r in frame.astype(object).where(frame.notna(), None).to_dict("records")
        }
        if POSITION in frame
        else {}
    )
    for item in mapped:
        table = Table("source field", "value", "canonical field", "value", title=item["position"])
        src = list(sources.get(item["position"], {}).items())
        dst = list(item["canonical"].items())
        for i in range(max(len(src), len(dst))):
            s = src[i] if i < len(src) else ("", "")
            d = dst[i] if i < len(dst) else ("", "")
            table.add_row(str(s[0]), str(s[1] or ""), str(d[0]), str(d[1] or ""))
        out.print(table)
    for item in rejected:
        out.print(f"[red]rejected[/red] {item['position']}: {item['reason']}")
    for item in warned:
        out.print(f"[yellow]warning[/yellow] {item['position']}: {item['warning']}")
    out.print(f"{len(mapped)} mapped, {len(rejected)} rejected (nothing was written)")
