"""A project plugin whose hookimpl asks for an argument the hookspec does not pass."""

import hub


@hub.hookimpl
def hub_run_started(run_id: int, pipeline: str, trigger: str, channel: str) -> None:
    pass
