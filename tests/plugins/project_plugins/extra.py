"""A working project plugin: the ``extra`` OA connector."""

from hub_files.source import FilesSource

import hub


@hub.hookimpl
def hub_register_connectors() -> list[hub.Connector]:
    return [hub.Connector(name="extra", category="oa", source=FilesSource)]
