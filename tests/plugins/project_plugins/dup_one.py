"""One of two project plugins that register a connector with the same name."""

from hub_files.source import FilesSource

import hub


@hub.hookimpl
def hub_register_connectors() -> list[hub.Connector]:
    return [hub.Connector(name="workday", category="hris", source=FilesSource)]
