"""hub: a plugin-based HR integration hub.

Plugins implement the hooks in :mod:`hub.hookspecs` with ``@hub.hookimpl`` and register
:class:`hub.Connector` records.
"""

from __future__ import annotations

import logging

from hub.connectors import Connector, HubDestination, HubSource, RecordBatch, Rejection, WriteResult
from hub.errors import (
    ConfigurationError,
    FatalSyncError,
    HubError,
    PluginError,
    RecordRejected,
    RetriableSyncError,
    SyncError,
)
from hub.hookspecs import hookimpl
from hub.transforms import Transform

__version__ = "0.1.0"

__all__ = [
    "ConfigurationError",
    "Connector",
    "FatalSyncError",
    "HubDestination",
    "HubError",
    "HubSource",
    "PluginError",
    "RecordBatch",
    "RecordRejected",
    "Rejection",
    "RetriableSyncError",
    "SyncError",
    "Transform",
    "WriteResult",
    "hookimpl",
]


def _contain_airbyte_logging() -> None:
    """``import airbyte_cdk`` puts a JSON-printing handler on the root logger; take it off."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if type(handler.formatter).__name__ == "AirbyteLogFormatter":
            root.removeHandler(handler)


_contain_airbyte_logging()
