"""``hub keys``: the data keys and the KEK: status, rotation, re-encryption, retirement.

Wired into the main command as ``app.add_typer(keys_app, name="keys")``. Nothing here prints
key material: keys are shown by id, KEKs by their public fingerprint id (``file:3f9a...``).
Every command that changes keys writes a row to the audit log (``hub.crypto.maintenance``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

keys_app = typer.Typer(no_args_is_help=True, help="Encryption keys: status, rotation, re-encryption.")

out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 200)

JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]
ReasonOption = Annotated[str | None, typer.Option("--reason", help="why (written to the audit log)")]


def _project(ctx: typer.Context) -> Any:
    """The project of the main command's ``--config`` (``HUB_CONFIG``), else ./hub.toml."""
    from hub.cli_common import config_path
    from hub.project import Project

    return Project(config_path(ctx=ctx))


@contextmanager
def _refusals() -> Iterator[None]:
    """A refused key operation: its reason on stderr, exit 1 (never a traceback)."""
    from hub.crypto.keyring import DecryptionError, KeyOperationError

    try:
        yield
    except (KeyOperationError, DecryptionError) as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from exc


def _emit_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")


def _age(days: float) -> str:
    if days < 1:
        return f"{days * 24:.0f}h"
    return f"{days:.0f}d" if days < 730 else f"{days / 365:.1f}y"


def _print_status(data: dict[str, Any]) -> None:
    table = Table(
        "key", "class", "algorithm", "status", "created", "age", "kek", "values", "encryptions", title="Keys"
    )
    for k in data["keys"]:
        kek = k["kek_id"] + ("" if k["kek_current"] or data["kek_id"] is None else " (not current)")
        table.add_row(
            str(k["id"]),
            k["data_class"],
            k["algorithm"],
            k["status"],
            k["created_at"][:10],
            _age(k["age_days"]),
            kek,
            f"{k['values']:,}",
            f"{k['encryptions']:,}",
        )
    out.print(table)
    out.print(f"tenant {data['tenant']}; KEK in use: {data['kek_id'] or '(none available)'}", markup=False)
    if data["kek_id"] is not None and any(not k["kek_current"] for k in data["keys"]):
        out.print(
            "[yellow]some keys are wrapped by another KEK than the one configured: "
            "wrong key file or HUB_MASTER_KEY, or an unfinished rotate-kek[/yellow]"
        )
    if data["primaries_not_on_configured_algorithm"]:
        out.print(
            f"[yellow][keys] algorithm is {data['algorithm']} but the primary keys of "
            f"{', '.join(data['primaries_not_on_configured_algorithm'])} use another: "
            "hub keys rotate, then hub keys reencrypt[/yellow]"
        )
    if data["values_under_unknown_keys"]:
        out.print(
            f"[red]{data['values_under_unknown_keys']:,} values name a key this tenant does not have[/red]"
        )
    for location, count in data["unreadable_values"].items():
        out.print(f"[red]{location}: {count:,} values are not hub ciphertexts[/red]")
    movable = [k for k in data["keys"] if k["status"] == "active"]
    if any(k["values"] for k in movable):
        out.print("values under active (old) keys: hub keys reencrypt moves them to the primary keys")
    elif movable:
        out.print(
            f"active keys seal nothing any more: hub keys retire {' / '.join(str(k['id']) for k in movable)}"
        )


@keys_app.command("init")
def init(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Create the KEK file (if the key file is used and missing) and a primary key per class."""
    from hub.crypto import maintenance

    p = _project(ctx)
    with _refusals():
        result = maintenance.init(p)
    data = maintenance.status(p)
    if as_json:
        _emit_json(
            {
                "kek_file_created": str(result.created_file) if result.created_file else None,
                "keys_created": result.created_keys,
                "status": data,
            }
        )
        return
    if result.created_file is not None:
        out.print(
            f"created the KEK file {result.created_file} (mode 0600): back it up, offline", markup=False
        )
    if result.created_keys:
        out.print(f"created keys {', '.join(map(str, result.created_keys))}")
    else:
        out.print("every data class has its primary key already")
    _print_status(data)


@keys_app.command("status")
def status(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Keys with their class, algorithm, status, age, KEK, values they seal and encryptions so far."""
    from hub.crypto import maintenance

    data = maintenance.status(_project(ctx))
    if as_json:
        _emit_json(data)
        return
    _print_status(data)


@keys_app.command("rotate")
def rotate(
    ctx: typer.Context,
    classes: Annotated[
        list[str] | None, typer.Option("--class", help="data class to rotate (repeatable; default: all)")
    ] = None,
    reason: ReasonOption = None,
    as_json: JsonOption = False,
) -> None:
    """A new primary key per data class; the old one stays active (decrypts) until retired."""
    from hub.crypto import DATA_CLASSES, maintenance

    with _refusals():
        changed = maintenance.rotate(_project(ctx), classes or list(DATA_CLASSES), reason=reason)
    if as_json:
        _emit_json(changed)
        return
    table = Table("class", "old key (now active)", "new primary key")
    for data_class, ids in changed.items():
        table.add_row(data_class, str(ids["old"] or "-"), str(ids["new"]))
    out.print(table)
    out.print("new values are sealed with the new keys; move the old ones with: hub keys reencrypt")


@keys_app.command("reencrypt")
def reencrypt(
    ctx: typer.Context,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="values per batch and checkpoint")
    ] = 1000,
    reason: ReasonOption = None,
    as_json: JsonOption = False,
) -> None:
    """Move every value sealed under an active key to its class's primary key (resumable).

    Exit 0 when every value moved, 3 when some did not open (they are left as they are).
    """
    from hub.crypto import maintenance

    p = _project(ctx)
    if not as_json and sys.stderr.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(
            TextColumn("re-encrypting"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        )
        task = bar.add_task("reencrypt", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        with bar, _refusals():
            result = maintenance.reencrypt(p, batch_size=batch_size, progress=progress, reason=reason)
    else:
        with _refusals():
            result = maintenance.reencrypt(p, batch_size=batch_size, reason=reason)
    failed = sum(result.failed.values())
    if as_json:
        _emit_json(result.as_dict())
        raise typer.Exit(3 if failed else 0)
    if not result.from_keys:
        out.print("no active keys: nothing to re-encrypt")
        raise typer.Exit(0)
    resumed = f" (resumed; {result.moved_total:,} in all)" if result.resumed else ""
    out.print(
        f"moved {result.moved:,} values{resumed} from keys {', '.join(map(str, result.from_keys))} "
        f"to the primary keys in {result.seconds:.1f}s"
    )
    if result.changed_meanwhile:
        out.print(f"{result.changed_meanwhile:,} values were rewritten by another process meanwhile (kept)")
    for location, count in result.failed.items():
        out.print(
            f"[red]{location}: {count:,} values do not open (tampered or misplaced); left as they are[/red]"
        )
    if result.remaining:
        left = ", ".join(f"key {k}: {v:,}" for k, v in result.remaining.items())
        out.print(f"still under old keys: {left}")
    retirable = [k for k in result.from_keys if k not in result.remaining]
    if retirable:
        out.print(
            f"retire the old keys with: {' && '.join(f'hub keys retire {k}' for k in retirable)} "
            f"(from {maintenance.RETIRE_GRACE_SECONDS:.0f} s after their rotation)"
        )
    raise typer.Exit(3 if failed else 0)


@keys_app.command("retire")
def retire(ctx: typer.Context, key_id: int, reason: ReasonOption = None, as_json: JsonOption = False) -> None:
    """Stop a key from decrypting; refused while it is primary or still seals any value."""
    from hub.crypto import maintenance

    with _refusals():
        result = maintenance.retire(_project(ctx), key_id, reason=reason)
    if as_json:
        _emit_json(result)
        return
    if result["changed"]:
        out.print(f"key {key_id} ({result['data_class']}) retired: it no longer decrypts")
    else:
        out.print(f"key {key_id} was already retired")


@keys_app.command("rotate-kek")
def rotate_kek(
    ctx: typer.Context,
    new_key_file: Annotated[
        Path | None,
        typer.Option(
            "--new-key-file",
            help="rewrap under the KEK in this file (hub keys new-kek writes one) and change no file; "
            "without it, the key file of [keys] file is replaced (old one kept as a backup)",
        ),
    ] = None,
    reason: ReasonOption = None,
    as_json: JsonOption = False,
) -> None:
    """Rewrap every data key under a new KEK (values are untouched); verified before it reports."""
    from hub.crypto import maintenance

    p = _project(ctx)
    with _refusals():
        if new_key_file is not None:
            result = maintenance.rotate_kek(p, maintenance.read_kek_file(new_key_file), reason=reason)
        else:
            result = maintenance.rotate_kek_file(p, reason=reason)
    if as_json:
        _emit_json(result.as_dict())
        return
    out.print(
        f"{result.keys} data keys rewrapped and verified under KEK {result.new_kek_id} (was {result.old_kek_id})",
        markup=False,
    )
    if result.key_file is not None:
        out.print(
            f"{result.key_file} now holds the new KEK; the old one is in {result.backup}.", markup=False
        )
        out.print(
            "Keep that backup (offline) while you keep database backups from before now, then delete it. "
            "Restart every hub process."
        )
    else:
        out.print(
            f'Now make the key provider supply the new KEK: HUB_MASTER_KEY="$(cat {new_key_file})", '
            f"or move {new_key_file} to the [keys] file; then restart every hub process. Until then, "
            "hub cannot unwrap its keys. Keep the old KEK while you keep database backups from before now.",
            markup=False,
        )


@keys_app.command("new-kek")
def new_kek(path: Path) -> None:
    """Write a new random KEK to PATH (mode 0600; refuses an existing file). Prints no key."""
    from hub.crypto import maintenance
    from hub.crypto.providers import kek_fingerprint

    with _refusals():
        kek = maintenance.write_kek_file(path)
    out.print(f"wrote a new KEK to {path} (mode 0600), fingerprint {kek_fingerprint(kek)}", markup=False)
