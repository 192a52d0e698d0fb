"""Airbyte declarative (low-code) manifests, run in hub's process as source connectors.

Three ways in:

* ``airbyte_manifest``: a generic connector whose config names a manifest file
  (``manifest = "connectors/lever.yaml"``) next to that manifest's own settings, which hub.toml
  is validated against;
* a ``*.yaml`` manifest dropped into the project's plugins folder becomes a connector named
  after the file (category from ``metadata.hub_category``), no Python needed;
* a plugin ships its own manifest with :func:`manifest_connector`.
"""

from __future__ import annotations

from pathlib import Path

from hub.connectors import Connector
from hub.hookspecs import hookimpl
from hub_airbyte.manifest import Manifest, ManifestError, load_manifest, read_document
from hub_airbyte.source import (
    ConfiguredManifestSource,
    ManifestConfigError,
    ManifestSource,
    ManifestSyncError,
    ManifestTransientError,
    manifest_connector,
    project_manifest_connector,
)

__all__ = [
    "ConfiguredManifestSource",
    "Manifest",
    "ManifestConfigError",
    "ManifestError",
    "ManifestPlugin",
    "ManifestSource",
    "ManifestSyncError",
    "ManifestTransientError",
    "load_manifest",
    "manifest_connector",
    "project_manifest_plugin",
]


@hookimpl(trylast=True)
def hub_register_connectors() -> list[Connector]:
    return [
        Connector(
            name="airbyte_manifest",
            category="generic",
            source=ConfiguredManifestSource,
            description="any Airbyte declarative (low-code) manifest named in its config (YAML only)",
        )
    ]


class ManifestPlugin:
    """The plugin a manifest in the project plugins folder stands for: one source connector."""

    def __init__(self, connector: Connector) -> None:
        self.connector = connector

    @hookimpl
    def hub_register_connectors(self) -> list[Connector]:
        return [self.connector]


def project_manifest_plugin(path: Path) -> ManifestPlugin | None:
    """A plugin for a ``*.yaml`` file of the project plugins folder, None if it is no manifest.

    Raises ManifestError for bad YAML or an invalid manifest: hub reports it like a plugin
    that failed to import, and loads the rest.
    """
    if read_document(path) is None:
        return None
    return ManifestPlugin(project_manifest_connector(path))
