"""Connection handling and error hygiene shared by the SQL source and destination."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from airbyte_cdk.models import AirbyteConnectionStatus, Status
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

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
    orig = getattr(exc, "orig", None) or exc
    name = type(orig).__name__
    args: tuple[Any, ...] = getattr(orig, "args", ())
    if len(args) >= 2 and isinstance(args[0], int) and isinstance(args[1], str):
        # PyMySQL: (code, "message"); its classes are coarse (bad dates are OperationalError).
        text = f"({args[0]}) {args[1]}"
        name = type(exc).__name__ if isinstance(exc, DBAPIError) else name
    else:
        text = str(orig)
    lines = text.splitlines()
    text = _QUOTED.sub("<value>", lines[0]) if lines else ""
    return mask_text(f"{name}: {text}" if text else name)[:500]


def check_connection(config: Mapping[str, Any]) -> AirbyteConnectionStatus:
    """Connect and run ``SELECT 1``; a failure (even to build the engine) says why, without secrets."""
    engine: Engine | None = None
    try:
        engine = engine_for(config)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return AirbyteConnectionStatus(status=Status.SUCCEEDED, message=f"connected to {engine.dialect.name}")
    except Exception as exc:  # noqa: BLE001 - a failed check says why
        return AirbyteConnectionStatus(status=Status.FAILED, message=safe_error(exc))
    finally:
        if engine is not None:
            engine.dispose()
