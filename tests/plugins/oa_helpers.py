"""What the OA connector tests (WeCom, DingTalk, Feishu) share: a callback receiver on loopback,
reading a source, action contexts, and driving a case's callbacks through hub's onboarding flow.
"""

from __future__ import annotations

import logging
import textwrap
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from airbyte_cdk.models import (
    ConfiguredAirbyteCatalog,
    ConfiguredAirbyteStream,
    DestinationSyncMode,
    SyncMode,
    Type,
)
from airbyte_cdk.sources import AbstractSource

from hub.onboarding import ActionContext, OnboardingAction
from hub.onboarding.flow import CallbackStatus, OnboardingFlow
from hub.onboarding.runner import OnboardingRunner
from hub.project import Project
from hub.sandbox import Simulator
from hub.sandbox.oa import OASimulator
from hub.webhooks import Accepted, Reply, WebhookRejected, WebhookRequest, WebhookVerifier
from tests.conftest import run_cli

LOG = logging.getLogger("test.oa")


def statuses(sim: Simulator, fragment: str) -> list[int]:
    """Statuses of the simulator's answers to requests whose path contains ``fragment``."""
    return [status for _, path, status in sim.requests if fragment in path]


def read(source: AbstractSource, config: Mapping[str, Any], stream: str) -> list[dict[str, Any]]:
    """The records of one stream, read in full refresh."""
    airbyte_stream = next(s for s in source.discover(LOG, config).streams if s.name == stream)
    catalog = ConfiguredAirbyteCatalog(
        streams=[
            ConfiguredAirbyteStream(
                stream=airbyte_stream,
                sync_mode=SyncMode.full_refresh,
                destination_sync_mode=DestinationSyncMode.overwrite,
            )
        ]
    )
    return [
        dict(m.record.data)
        for m in source.read(LOG, config, catalog)
        if m.type == Type.RECORD and m.record is not None
    ]


class Receiver:
    """A loopback endpoint recording what it is sent: (the query, or the headers with
    ``signed_in="headers"``, and the body). It answers the way hub does (``verifier``), or 200
    "ok" without a verifier or with ``plain``."""

    def __init__(self, verifier: WebhookVerifier | None = None, *, signed_in: str = "query") -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.verifier = verifier
        self.signed_in = signed_in
        self.plain = False
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                query = dict(parse_qsl(urlsplit(self.path).query))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.received.append((headers if receiver.signed_in == "headers" else query, body))
                reply = receiver.answer(WebhookRequest("POST", headers, query, body, datetime.now(UTC)))
                self.send_response(reply.status)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/oa"

    def answer(self, request: WebhookRequest) -> Reply:
        if self.verifier is None or self.plain:
            return Reply.text("ok")
        try:
            return self.verifier.verify(request).reply
        except WebhookRejected as exc:
            return Reply.json({"error": exc.reason}, exc.status)

    def request(self, signed: dict[str, str], body: bytes) -> WebhookRequest:
        """A recorded delivery as ``hub serve`` sees it."""
        if self.signed_in == "headers":
            return WebhookRequest("POST", signed, {}, body, datetime.now(UTC))
        return WebhookRequest("POST", {}, signed, body, datetime.now(UTC))

    def verdicts(self, verifier: WebhookVerifier, *, clear: bool = False) -> list[Accepted]:
        """Every recorded delivery, verified (each must be an accepted event)."""
        verdicts = []
        for signed, body in self.received:
            verdict = verifier.verify(self.request(signed, body))
            assert isinstance(verdict, Accepted)
            verdicts.append(verdict)
        if clear:
            self.received.clear()
        return verdicts

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def action_context(
    connector: str, task: str, config: Callable[[], Mapping[str, Any]], **fields: Any
) -> ActionContext:
    """The context of one attempt of ``<connector>.<task>``; ``fields`` give the case, options..."""
    defaults: dict[str, Any] = {
        "case_id": "case-1",
        "task": task,
        "action": f"{connector}.{task}",
        "connector": connector,
        # the same for every attempt of a task, another for each task (as hub's uuid5 keys)
        "idempotency_key": str(uuid.uuid5(uuid.NAMESPACE_URL, f"test:{connector}:{task}")),
        "case": {},
        "options": {},
        "results": {},
        "attempt": 1,
        "config_loader": config,
    }
    return ActionContext(**{**defaults, **fields})


def action_names(plugin: Any) -> set[str]:
    """The onboarding actions a plugin module registers."""
    return {action.name for action in plugin.hub_register_onboarding_actions()}


def onboarding_tasks(connector: str) -> str:
    """The ``[onboarding]`` table of a case with the plugin's three tasks."""
    return textwrap.dedent(
        f"""
        [onboarding]
        tasks = [
          {{ name = "oa_account", action = "{connector}.create_user", connector = "{connector}" }},
          {{ name = "oa_approval", action = "{connector}.start_approval", connector = "{connector}" }},
          {{ name = "oa_welcome", action = "{connector}.send_welcome", connector = "{connector}", after = ["oa_account", "oa_approval"] }},
        ]
        """
    )


def connectors_check(project: Any, connector: str, env: Mapping[str, str]) -> None:
    """``hub connectors check`` passes (loading the project checks the whole file against the specs)."""
    connected = run_cli(["connectors", "check", connector], project, env=dict(env))
    assert connected.returncode == 0 and "OK" in connected.stdout, connected.stdout + connected.stderr


def onboarding_flow(
    write_project: Callable[[str], Any],
    monkeypatch: Any,
    connector: str,
    connector_toml: str,
    secrets: Mapping[str, str],
) -> OnboardingFlow:
    """hub's onboarding flow over a project with the connector and the plugin's three tasks."""
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    return OnboardingFlow(Project(write_project(connector_toml + onboarding_tasks(connector))))


def flow_callbacks(
    flow: OnboardingFlow, action: OnboardingAction, verdicts: list[Accepted]
) -> list[CallbackStatus]:
    """Hand verified callbacks to the flow, as hub's webhook worker does: what each did."""
    results = []
    for verdict in verdicts:
        event = action.parse_callback(verdict.action, verdict.body)
        assert event is not None
        results.append(
            flow.on_callback(action.plugin, event.event_type, event.external_id, event.payload).status
        )
    return results


def case_through_late_callbacks(
    flow: OnboardingFlow,
    case: Mapping[str, Any],
    sim: OASimulator[Any, Any],
    receiver: Receiver,
    verifier: WebhookVerifier,
    action: OnboardingAction,
    decide: Callable[[str], None],
) -> tuple[str, list[CallbackStatus]]:
    """Run a case to its approval, ``decide`` it, deliver the decision three times and then the
    submission (late, out of order) to the flow, and run the case again: (case id, what each
    callback did)."""
    case_id, _ = flow.open_case(case, source="test")
    runner = OnboardingRunner(flow)
    runner.run_once()
    tasks = {t.name: t.status for t in flow.show(case_id).tasks}
    assert tasks == {"oa_account": "DONE", "oa_approval": "WAITING", "oa_welcome": "PENDING"}
    (approval,) = sim.approval_ids()
    decide(approval)
    sim.deliver_callbacks(receiver.url, repeat={approval: 3}, reverse=True)
    results = flow_callbacks(flow, action, receiver.verdicts(verifier))
    runner.run_once()
    return case_id, results


def cancelled_case(flow: OnboardingFlow, case: Mapping[str, Any]) -> None:
    """A case run once (its account made, its approval waiting), then cancelled."""
    case_id, _ = flow.open_case(case, source="test")
    OnboardingRunner(flow).run_once()
    flow.cancel(case_id, "no show")
    assert flow.show(case_id).status == "CANCELLED"
