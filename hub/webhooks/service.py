"""What ``hub serve`` runs, without the web framework: endpoints, inbox, receiver, worker."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from hub.webhooks.inbox import Inbox
from hub.webhooks.processor import Dispatcher, InboxProcessor, ProcessingPolicy
from hub.webhooks.receiver import Receiver
from hub.webhooks.registry import webhook_endpoints

if TYPE_CHECKING:
    from hub.project import Project

log = logging.getLogger("hub.webhooks")


class WebhookService:
    """Builds everything from a project; ``start``/``stop`` the worker around serving."""

    def __init__(
        self,
        project: Project,
        *,
        policy: ProcessingPolicy | None = None,
        dispatcher: Dispatcher | None = None,
        worker: bool = True,
    ) -> None:
        self.project = project
        # Built here, before any thread: the worker and the request threads share them.
        self.endpoints = webhook_endpoints(project)
        self.inbox = Inbox(project.db, project.keyring)
        self.processor = InboxProcessor(project, self.inbox, policy=policy, dispatcher=dispatcher)
        self.worker = worker
        self.receiver = Receiver(self.endpoints, self.inbox, on_stored=self.processor.wake)

    def start(self) -> None:
        if self.worker:
            self.processor.start()

    def stop(self) -> None:
        self.processor.stop()

    def routes(self) -> list[dict[str, Any]]:
        """Each endpoint and the pipelines its events run (the startup summary)."""
        rows = []
        for name, endpoint in self.endpoints.items():
            pipelines = [p for p in self.project.settings.pipelines.values() if p.source == name]
            rows.append(
                {
                    "path": f"/webhooks/{name}",
                    "verifier": endpoint.plugin,
                    "pipelines": [p.name for p in pipelines],
                    "full_refresh_streams": [
                        f"{p.name}.{s.name}"
                        for p in pipelines
                        for s in p.streams
                        if s.sync_mode != "incremental"
                    ],
                }
            )
        return rows

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "worker": self.processor.state if self.processor.alive else "stopped",
            "endpoints": sorted(self.endpoints),
            "inbox": self.inbox.counts(),
        }
