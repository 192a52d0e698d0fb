"""hub: a plugin-based HR integration hub.

Plugins implement the hooks in :mod:`hub.hookspecs` with ``@hub.hookimpl`` and register
:class:`hub.Connector` records.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from hub.connectors import Connector, HubDestination, HubSource, RecordBatch, Rejection, WriteResult
    from hub.transforms import Transform

#: Imported on first use: ``import hub.crypto.keyring`` in a sealing worker (or any light
#: tool) must not pay for airbyte-cdk and pandas, which ``hub.connectors`` brings in.
_LAZY = {
    "Connector": "hub.connectors",
    "HubDestination": "hub.connectors",
    "HubSource": "hub.connectors",
    "RecordBatch": "hub.connectors",
    "Rejection": "hub.connectors",
    "WriteResult": "hub.connectors",
    "Transform": "hub.transforms",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hub' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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


#: the handler :func:`hub.logs.setup_logging` installed (masks personal data), if any
_handler: logging.Handler | None = None


def _contain_airbyte_logging() -> None:
    """``import airbyte_cdk`` puts a JSON-printing handler on the root logger; take it off.

    Its ``dictConfig`` also replaces the root logger's handlers, hub's masking handler among
    them: that one is put back. Called by :mod:`hub.connectors` once it has imported
    airbyte-cdk, and again wherever hub sets up logging or leaves a CDK call.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if type(handler.formatter).__name__ == "AirbyteLogFormatter":
            root.removeHandler(handler)
    if _handler is not None and _handler not in root.handlers:
        root.addHandler(_handler)
