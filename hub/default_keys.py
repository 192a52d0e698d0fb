"""Built-in key providers: an environment variable, else a key file beside hub.toml."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hub.crypto import EnvKeyProvider, FileKeyProvider, KeyProvider
from hub.hookspecs import hookimpl


@hookimpl(trylast=True)
def hub_key_provider(settings: dict[str, Any]) -> KeyProvider | None:
    variable = str(settings.get("env", "HUB_MASTER_KEY"))
    if os.environ.get(variable):
        return EnvKeyProvider(variable=variable)
    return FileKeyProvider(path=Path(settings["file"]))
