"""Connection handling and error hygiene shared by the SQL source and destination."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from hub.masking import mask_text
from hub.store.db import make_engine

SPEC: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "sql",
    "type": "object",
    "required": ["url"],
    "additionalProperties": False,
    "properties": {
        "url": {
            "type": "string",
            "x-hub-url": True,
            "description": "SQLAlchemy URL without the password, e.g. postgresql+psycopg://hr@db/hr",
        },
        "password": {
            "type": "string",
            "airbyte_secret": True,
            "description": "database password (a reference)",
        },
        "schema": {"type": "string", "description": "database schema (PostgreSQL) to read or write"},
        "tables": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "stream -> table name, where they differ",
        },
        "include": {
            "type": "array",
            "items": {"type": "string"},
            "description": "tables to expose (default: all)",
        },
        "cursor_fields": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "stream -> cursor column for incremental reads",
        },
    },
}

_QUOTED = re.compile(r"(\"[^\"]*\"|'[^']*'|\(([^()]*)\)=\([^()]*\))")


def engine_for(config: Mapping[str, Any]) -> Engine:
    url = make_url(str(config["url"]))
    if config.get("password"):
        url = url.set(password=str(config["password"]))
    return make_engine(url.render_as_string(hide_password=False))


def table_name(config: Mapping[str, Any], stream: str) -> str:
    return str((config.get("tables") or {}).get(stream, stream))


def safe_error(exc: BaseException) -> str:
    """A database error as one line, with quoted values and key values taken out."""
    text = str(getattr(exc, "orig", None) or exc).splitlines()[0] if str(exc) else type(exc).__name__
    text = _QUOTED.sub("<value>", text)
    return mask_text(f"{type(getattr(exc, 'orig', None) or exc).__name__}: {text}")[:500]
