"""A project plugin that implements a hook hub does not have (a typo)."""

from hub_files.source import FilesSource

import hub


@hub.hookimpl
def hub_register_conectors() -> list[hub.Connector]:
    return [hub.Connector(name="misspelt", category="generic", source=FilesSource)]
