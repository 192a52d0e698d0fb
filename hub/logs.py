"""Logging for the hub command: to stderr, every line through the PII filter."""

from __future__ import annotations

import importlib
import logging
import sys

import hub
from hub import _contain_airbyte_logging
from hub.masking import PIIFilter


def setup_logging(level: str = "INFO", stream: object = None) -> None:
    # airbyte-cdk configures the root logger when it is imported: let it do so before hub does.
    importlib.import_module("hub.connectors")

    _contain_airbyte_logging()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_hub", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(PIIFilter())
    handler._hub = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    hub._handler = handler  # put back if a later airbyte-cdk logging setup removes it
    root.setLevel(level.upper())
    for noisy in ("airbyte", "apscheduler.executors", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
