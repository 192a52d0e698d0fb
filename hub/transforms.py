"""Value transforms that mapping files name, registered through ``hub_register_transforms``."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hub.hookspecs import hookimpl


@dataclass(frozen=True)
class Transform:
    """A named value transform: ``func`` maps one value, raising ``ValueError`` to reject it."""

    name: str
    func: Callable[[Any], Any]
    description: str = ""


def _trim(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _nfkc(value: Any) -> Any:
    """Full-width to half-width (NFKC), e.g. ``１３８`` to ``138``."""
    return unicodedata.normalize("NFKC", value) if isinstance(value, str) else value


@hookimpl(trylast=True)
def hub_register_transforms() -> list[Transform]:
    return [
        Transform("trim", _trim, "strip surrounding whitespace"),
        Transform("nfkc", _nfkc, "normalise full-width characters to half-width (NFKC)"),
    ]
