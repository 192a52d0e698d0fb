"""A project plugin whose registration hook raises (an unknown connector category)."""

from hub_files.source import FilesSource

import hub


@hub.hookimpl
def hub_register_connectors() -> list[hub.Connector]:
    return [hub.Connector(name="workday", category="payroll", source=FilesSource)]  # type: ignore[arg-type]
