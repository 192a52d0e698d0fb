"""The ``files`` connector: CSV and Excel exports from ATS, assessment and HR systems."""

from __future__ import annotations

from hub.connectors import Connector
from hub.hookspecs import hookimpl
from hub_files.source import FilesSource


@hookimpl(trylast=True)
def hub_register_connectors() -> list[Connector]:
    return [
        Connector(
            name="files",
            category="generic",
            source=FilesSource,
            description="CSV (UTF-8, UTF-8 with BOM, GB18030) and Excel .xlsx files",
        )
    ]
