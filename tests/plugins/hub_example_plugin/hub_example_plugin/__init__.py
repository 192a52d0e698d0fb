"""An example third-party hub plugin: registers the ``example`` ATS connector."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from airbyte_cdk.models import (
    AirbyteCatalog,
    AirbyteConnectionStatus,
    AirbyteMessage,
    AirbyteStream,
    ConfiguredAirbyteCatalog,
    ConnectorSpecification,
    Status,
    SyncMode,
)
from airbyte_cdk.sources.source import Source

import hub

SPEC: dict[str, Any] = {
    "type": "object",
    "required": ["tenant"],
    "properties": {"tenant": {"type": "string"}, "api_key": {"type": "string", "airbyte_secret": True}},
}


class ExampleSource(Source):
    """A source with one empty stream, ``candidates``."""

    def spec(self, logger: logging.Logger) -> ConnectorSpecification:
        return ConnectorSpecification(connectionSpecification=SPEC)

    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        return AirbyteConnectionStatus(status=Status.SUCCEEDED)

    def discover(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteCatalog:
        stream = AirbyteStream(
            name="candidates", json_schema={"type": "object"}, supported_sync_modes=[SyncMode.full_refresh]
        )
        return AirbyteCatalog(streams=[stream])

    def read(
        self,
        logger: logging.Logger,
        config: Mapping[str, Any],
        catalog: ConfiguredAirbyteCatalog,
        state: Any = None,
    ) -> Iterator[AirbyteMessage]:
        yield from ()


@hub.hookimpl
def hub_register_connectors() -> list[hub.Connector]:
    return [hub.Connector(name="example", category="ats", source=ExampleSource, description="example ATS")]
