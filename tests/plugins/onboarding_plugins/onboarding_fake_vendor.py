"""TEST-ONLY onboarding plugin: a fake vendor that keeps its objects in its own SQLite file.

Connector ``fakevendor`` (config ``vendor_db``: the vendor's database file). Actions, each
steered by the task's ``options``:

- ``fakevendor.create_record`` / ``fakevendor.create_account``: a vendor *without*
  idempotency tokens; ``find`` looks the object up by the external id the first attempt wrote
  into it (``case_id:task``). ``naive = true`` switches ``find`` off: the control that shows a
  crash then creates a duplicate. Undo disables the object.
- ``fakevendor.start_approval`` / ``fakevendor.send_contract``: a vendor *with* idempotency
  tokens (the same token returns the first object) that finishes later and calls back:
  the task WAITS for ``{"type": ..., "id": ..., "result": "approved" | "rejected"}``. Undo
  revokes (``send_contract`` only; ``start_approval`` cannot be undone).
- ``fakevendor.step``: done at once, nothing to undo.

Options: ``fail_times = N`` (the first N calls fail with a retriable 503), ``crash_times = N``
(the first N calls record the object at the vendor, then raise :class:`SimulatedCrash`, a
BaseException like a kill: hub records nothing), ``permanent = true`` (the vendor refuses the
data), ``slow = seconds`` (a slow vendor: for concurrency tests), ``skip = true``.
Every call is logged in the vendor's ``calls`` table so tests can count them.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import requests
from airbyte_cdk.models import (
    AirbyteCatalog,
    AirbyteConnectionStatus,
    AirbyteMessage,
    ConfiguredAirbyteCatalog,
    ConnectorSpecification,
    Status,
)
from airbyte_cdk.sources.source import Source

import hub
from hub.onboarding import ActionContext, ActionFailed, CallbackEvent, ExternalRef, OnboardingAction, Outcome


class SimulatedCrash(BaseException):
    """Raised after the vendor committed its object and before hub could record the reply."""


class FakeVendorSource(Source):
    """Only here so ``fakevendor`` is a connector hub.toml can configure; it reads nothing."""

    def spec(self, logger: logging.Logger) -> ConnectorSpecification:
        return ConnectorSpecification(
            connectionSpecification={
                "type": "object",
                "required": ["vendor_db"],
                "additionalProperties": False,
                "properties": {"vendor_db": {"type": "string", "x-hub-path": True}},
            }
        )

    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        return AirbyteConnectionStatus(status=Status.SUCCEEDED)

    def discover(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteCatalog:
        return AirbyteCatalog(streams=[])

    def read(
        self,
        logger: logging.Logger,
        config: Mapping[str, Any],
        catalog: ConfiguredAirbyteCatalog,
        state: Any = None,
    ) -> Iterator[AirbyteMessage]:
        return iter(())


def vendor(ctx_or_path: ActionContext | str) -> sqlite3.Connection:
    path = ctx_or_path if isinstance(ctx_or_path, str) else str(ctx_or_path.config["vendor_db"])
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS objects (id TEXT PRIMARY KEY, kind TEXT, external_id TEXT, "
        "idem_token TEXT UNIQUE, case_id TEXT, task TEXT, status TEXT, phone TEXT, created_at REAL)"
    )
    conn.execute(
        "CREATE TABLE IF NOT EXISTS calls (n INTEGER PRIMARY KEY AUTOINCREMENT, action TEXT, "
        "case_id TEXT, task TEXT, what TEXT, at REAL)"
    )
    return conn


def log_call(conn: sqlite3.Connection, ctx: ActionContext, what: str) -> int:
    """Log a call; returns how many calls of this kind the task made before this one."""
    before = conn.execute(
        "SELECT count(*) FROM calls WHERE case_id = ? AND task = ? AND what = ?",
        (ctx.case_id, ctx.task, what),
    ).fetchone()[0]
    conn.execute(
        "INSERT INTO calls (action, case_id, task, what, at) VALUES (?, ?, ?, ?, ?)",
        (ctx.action, ctx.case_id, ctx.task, what, time.time()),
    )
    return int(before)


def unavailable() -> requests.HTTPError:
    response = requests.Response()
    response.status_code = 503
    return requests.HTTPError("503 Service Unavailable", response=response)


class FakeAction(OnboardingAction):
    kind = "object"

    def external_id(self, ctx: ActionContext) -> str:
        return f"{ctx.case_id}:{ctx.task}"

    def misbehave(self, conn: sqlite3.Connection, ctx: ActionContext) -> int:
        """Log the call and fail as the options ask; returns the number of earlier calls."""
        before = log_call(conn, ctx, "perform")
        if ctx.options.get("slow"):
            time.sleep(float(ctx.options["slow"]))
        if ctx.options.get("permanent"):
            raise ActionFailed(
                "the vendor refused the record: field mobile invalid 13800138000", permanent=True
            )
        if before < int(ctx.options.get("fail_times", 0)):
            raise unavailable()
        return before

    def create(self, conn: sqlite3.Connection, ctx: ActionContext, token: str | None) -> str:
        object_id = uuid.uuid4().hex[:12]
        conn.execute(
            "INSERT INTO objects (id, kind, external_id, idem_token, case_id, task, status, phone, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, 'active', ?, ?) ON CONFLICT (idem_token) DO NOTHING",
            (
                object_id,
                self.kind,
                self.external_id(ctx),
                token,
                ctx.case_id,
                ctx.task,
                ctx.case.get("phone"),
                time.time(),
            ),
        )
        if token is not None:  # the vendor returns the first object for a repeated token
            return str(conn.execute("SELECT id FROM objects WHERE idem_token = ?", (token,)).fetchone()[0])
        return object_id

    def maybe_crash(self, conn: sqlite3.Connection, ctx: ActionContext, before: int) -> None:
        crashes = int(ctx.options.get("crash_times", 0))
        if crashes and log_call(conn, ctx, "crash-check") < crashes:
            raise SimulatedCrash(f"killed after the vendor made the {self.kind}")


class CreateRecord(FakeAction):
    """A vendor without idempotency tokens: hub finds the object before creating it."""

    name = "fakevendor.create_record"
    kind = "record"

    def find(self, ctx: ActionContext) -> ExternalRef | None:
        if ctx.options.get("naive"):
            return None
        with vendor(ctx) as conn:
            log_call(conn, ctx, "find")
            row = conn.execute(
                "SELECT id FROM objects WHERE external_id = ? AND kind = ?",
                (self.external_id(ctx), self.kind),
            ).fetchone()
        return ExternalRef(row[0], self.kind) if row else None

    def perform(self, ctx: ActionContext) -> Outcome:
        if ctx.options.get("skip"):
            return Outcome.skipped("nothing to do for this hire")
        conn = vendor(ctx)
        try:
            before = self.misbehave(conn, ctx)
            object_id = self.create(conn, ctx, token=None)
            self.maybe_crash(conn, ctx, before)
        finally:
            conn.close()
        earlier = {name: r.ref.id for name, r in ctx.results.items() if r.ref}
        return Outcome.done(
            ExternalRef(object_id, self.kind), {"employee_no": f"E{object_id[:6]}", "earlier": earlier}
        )

    def undo(self, ctx: ActionContext) -> None:
        assert ctx.ref is not None
        with vendor(ctx) as conn:
            if ctx.options.get("undo_fails"):
                raise unavailable()
            log_call(conn, ctx, "undo")
            conn.execute("UPDATE objects SET status = 'disabled' WHERE id = ?", (ctx.ref.id,))


class CreateAccount(CreateRecord):
    name = "fakevendor.create_account"
    kind = "account"


class WaitForVendor(FakeAction):
    """A vendor with idempotency tokens that finishes later and calls back."""

    name = "fakevendor.start_approval"
    kind = "approval"
    event = "approval_finished"

    def perform(self, ctx: ActionContext) -> Outcome:
        conn = vendor(ctx)
        try:
            before = self.misbehave(conn, ctx)
            token = None if ctx.options.get("naive") else ctx.idempotency_key
            object_id = self.create(conn, ctx, token=token)
            self.maybe_crash(conn, ctx, before)
        finally:
            conn.close()
        return Outcome.waiting(object_id, event=self.event, ref=ExternalRef(object_id, self.kind))

    def parse_callback(self, event_type: str, body: bytes) -> CallbackEvent | None:
        data = json.loads(body)
        if data.get("type") != self.event:
            return None
        return CallbackEvent(external_id=str(data["id"]), event_type=event_type, payload=data)

    def on_callback(self, ctx: ActionContext, event: CallbackEvent) -> Outcome:
        result = event.payload.get("result")
        if result == "rejected":
            return Outcome.failed(f"{self.kind} {event.external_id} was rejected")
        if result == "pending":
            return Outcome.waiting(event.external_id)
        return Outcome.done(ctx.ref, {"finished": result})


class SendContract(WaitForVendor):
    name = "fakevendor.send_contract"
    kind = "contract"
    event = "contract_signed"

    def undo(self, ctx: ActionContext) -> None:
        assert ctx.ref is not None
        with vendor(ctx) as conn:
            log_call(conn, ctx, "undo")
            conn.execute("UPDATE objects SET status = 'revoked' WHERE id = ?", (ctx.ref.id,))


class Step(FakeAction):
    name = "fakevendor.step"

    def perform(self, ctx: ActionContext) -> Outcome:
        with vendor(ctx) as conn:
            self.misbehave(conn, ctx)
        return Outcome.done()


@hub.hookimpl
def hub_register_connectors() -> list[hub.Connector]:
    return [hub.Connector(name="fakevendor", category="generic", source=FakeVendorSource)]


@hub.hookimpl
def hub_register_onboarding_actions() -> list[OnboardingAction]:
    return [CreateRecord(), CreateAccount(), WaitForVendor(), SendContract(), Step()]
