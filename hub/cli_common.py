"""What the ``hub`` sub-command groups share: the ``--config`` option and where it points."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import click
import typer

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        envvar="HUB_CONFIG",
        help="hub.toml to use [default: hub.toml, or hub's own --config]",
        show_default=False,
    ),
]


def config_path(explicit: Path | None = None, ctx: Any = None) -> Path:
    """The sub-command's ``--config``, else the main command's (``hub -c FILE ...``), else ./hub.toml.

    The main command's value is read from the click context when there is one, else from the
    ``state`` of the main module, whichever name it was started under (``hub``, ``python -m
    hub`` or ``python -m hub.cli``, where the module is ``__main__``).
    """
    if explicit is not None:
        return explicit
    ctx = ctx or click.get_current_context(silent=True)
    if ctx is not None:
        configured = ctx.find_root().params.get("config")
        if isinstance(configured, Path):
            return configured
    for name in ("hub.cli", "__main__"):
        state = getattr(sys.modules.get(name), "state", None)
        configured = getattr(state, "config", None)
        if isinstance(configured, Path):
            return configured
    return Path(os.environ.get("HUB_CONFIG") or "hub.toml")
