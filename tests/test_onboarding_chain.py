"""The whole chain after an offer, end to end, through the vendor simulators and hub's processes.

The project is the demo's hub.toml (copied into a temp folder): Greenhouse offers accepted by
200 candidates reach the canonical store through ``hub sync``; ``hub onboarding run --intake``
opens a case per accepted offer and performs its tasks against the HR master (SQLite) and the
WeCom, Kingdee and e签宝 simulators; ``hub serve`` receives the approval and signing callbacks.
Each vendor must end with exactly 200 accounts, approvals, payroll records and signed
contracts, with nothing made twice, also when hub's processes are SIGKILLed at random points,
the vendors fail one call in ten (5xx before acting, or a reply lost after acting) and callbacks
are delivered three times and out of order. Afterwards no table, log or sync-log line holds a
hire's ID number, phone, bank account or salary in clear.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hub.onboarding.flow import OnboardingFlow
from hub.project import Project
from hub.sandbox.base import Faults, free_port
from hub.sandbox.greenhouse import GreenhouseSimulator
from hub.sandbox.onboarding import OnboardingVendors, accept_offers, accepted_offers, apply_hr_master_schema

ROOT = Path(__file__).resolve().parent.parent
HIRES = 200
HUB = [sys.executable, "-m", "hub"]


@dataclass
class HubProcess:
    """One long-running hub command, restartable, its output appended to a log file."""

    args: list[str]
    cwd: Path
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    kills: int = 0
    starts: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        with self._lock:
            with self.log.open("ab") as out:
                self.process = subprocess.Popen(
                    [*HUB, *self.args], cwd=self.cwd, env=self.env, stdout=out, stderr=subprocess.STDOUT
                )
            self.starts += 1

    def kill(self) -> None:
        """SIGKILL: no handler runs, no transaction is finished, nothing is flushed."""
        with self._lock:
            if self.process is not None and self.process.poll() is None:
                self.process.send_signal(signal.SIGKILL)
                self.process.wait()
                self.kills += 1

    def stop(self) -> None:
        with self._lock:
            if self.process is not None and self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class Chain:
    project: Path
    env: dict[str, str]
    greenhouse: GreenhouseSimulator
    vendors: OnboardingVendors
    port: int

    def hub(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*HUB, *args],
            cwd=self.project,
            env={**self.env, "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    def process(self, name: str, *args: str) -> HubProcess:
        return HubProcess(list(args), self.project, self.env, self.project / "logs" / f"{name}.log")

    def statuses(self) -> dict[str, int]:
        views = OnboardingFlow(Project(self.project / "hub.toml")).list_cases(limit=10_000)
        counts: dict[str, int] = {}
        for view in views:
            counts[view.status] = counts.get(view.status, 0) + 1
        return counts


def demo_project(tmp_path: Path, *, settings: str = "") -> Path:
    """The demo's hub.toml in a temp folder (its mappings and schemas linked, its data empty)."""
    project = tmp_path / "project"
    project.mkdir()
    text = (ROOT / "hub.toml").read_text(encoding="utf-8")
    head, _, onboarding = text.partition("[onboarding]\n")
    for line in filter(None, settings.splitlines()):  # replace the key's line, or add it
        key = line.split("=", 1)[0].strip()
        onboarding, found = re.subn(rf"^{key} = .*$", line, onboarding, count=1, flags=re.M)
        if not found:
            onboarding = f"{line}\n{onboarding}"
    text = f"{head}[onboarding]\n{onboarding}"
    (project / "hub.toml").write_text(text, encoding="utf-8")
    for folder in ("mappings", "schemas", "templates"):
        if (ROOT / folder).exists():
            (project / folder).symlink_to(ROOT / folder)
    (project / "demo").mkdir()
    (project / "logs").mkdir()
    apply_hr_master_schema(f"sqlite:///{project / 'demo' / 'hr_master.db'}", ROOT / "schemas" / "hr_master")
    return project


@pytest.fixture
def make_chain(tmp_path: Path) -> Iterator[Callable[..., Chain]]:
    """Start the simulators for the demo project: ``settings`` go into ``[onboarding]``, the
    other options to :class:`OnboardingVendors`."""
    with ExitStack() as stack:

        def make(settings: str = "", **options: Any) -> Chain:
            project = demo_project(tmp_path, settings=settings)
            port = free_port()
            greenhouse = stack.enter_context(GreenhouseSimulator(candidates=400, seed=3))
            vendors = stack.enter_context(OnboardingVendors(f"http://127.0.0.1:{port}", **options))
            env = {
                **os.environ,
                "HUB_STRICT_PLUGINS": "1",
                "HUB_LOG_LEVEL": "INFO",
                "HUB_DEMO_GREENHOUSE_URL": greenhouse.url,
                "HUB_DEMO_GREENHOUSE_KEY": greenhouse.api_token,
                **vendors.env(),
            }
            env.pop("HUB_CONFIG", None)
            return Chain(project, env, greenhouse, vendors, port)

        yield make


def bring_in_accepted_offers(chain: Chain) -> None:
    """200 accepted offers in the ATS (those of the generated data, then more) -> canonical store."""
    accept_offers(chain.greenhouse, HIRES - len(accepted_offers(chain.greenhouse)))
    assert len(accepted_offers(chain.greenhouse)) == HIRES
    synced = chain.hub("sync", "greenhouse_recruiting")
    assert synced.returncode == 0, synced.stdout + synced.stderr


def wait_until_closed(chain: Chain, timeout: float, *processes: HubProcess) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        counts = chain.statuses()
        if counts.get("COMPLETED", 0) == HIRES:
            return counts
        assert counts.get("NEEDS_OPERATOR", 0) == 0, chain.hub(
            "onboarding", "list", "--status", "NEEDS_OPERATOR"
        ).stdout
        time.sleep(1.0)
    logs = {p.log.name: p.log.read_text(errors="replace")[-3000:] for p in processes}
    raise AssertionError(f"cases not closed in {timeout}s: {counts}; logs: {logs}")


def hires_personal_data(greenhouse: GreenhouseSimulator) -> dict[str, list[str]]:
    """What a scan must not find in clear: each hire's ID number, phone, bank account, salary."""
    found: dict[str, list[str]] = {"id_number": [], "phone": [], "bank_account": [], "salary": []}
    candidates = {c["id"]: c for c in greenhouse.records("candidates")}
    for offer in greenhouse.records("offers"):
        if offer["status"] != "accepted":
            continue
        candidate = candidates[offer["candidate_id"]]
        found["id_number"].append(candidate["keyed_custom_fields"]["id_number"]["value"])
        digits = "".join(ch for ch in candidate["phone_numbers"][0]["value"] if ch.isdigit())
        found["phone"].append(digits[-11:])
        found["bank_account"].append(offer["keyed_custom_fields"]["bank_account"]["value"])
        found["salary"].append(str(offer["keyed_custom_fields"]["salary"]["value"]["amount"]))
    return found


def scan_for_personal_data(chain: Chain, extra_text: str) -> list[str]:
    """Every file under the project (databases, logs) and ``extra_text``: clear values found."""
    blobs: list[tuple[str, bytes]] = [("output", extra_text.encode())]
    for path in chain.project.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.suffix != ".key":
            blobs.append((str(path.relative_to(chain.project)), path.read_bytes()))
    leaks = []
    values = hires_personal_data(chain.greenhouse)
    for kind, items in values.items():
        for value in items:
            # a salary like 23500 could occur by chance inside other numbers: look for it as a
            # JSON/SQL value, not as a substring of a longer number
            needles = [value.encode()] if kind != "salary" else [f'"{value}"'.encode(), f": {value}".encode()]
            for where, blob in blobs:
                if any(n in blob for n in needles):
                    leaks.append(f"{kind} in {where}")
    return sorted(set(leaks))


def assert_exactly_one_of_each(chain: Chain) -> None:
    tally = chain.vendors.tally()
    assert chain.vendors.duplicates() == {}
    assert (tally.accounts, tally.distinct_accounts) == (HIRES, HIRES), tally
    assert (tally.approvals, tally.approved, tally.distinct_approvals) == (HIRES, HIRES, HIRES), tally
    assert (tally.payroll, tally.audited, tally.distinct_payroll) == (HIRES, HIRES, HIRES), tally
    assert (tally.contracts, tally.signed, tally.distinct_contracts) == (HIRES, HIRES, HIRES), tally
    engine = sa.create_engine(f"sqlite:///{chain.project / 'demo' / 'hr_master.db'}")
    with engine.connect() as conn:
        employees = conn.execute(sa.text("SELECT status, count(*) FROM employees GROUP BY status")).all()
        contracts = conn.execute(sa.text("SELECT status, count(*) FROM contracts GROUP BY status")).all()
    engine.dispose()
    assert dict(employees) == {"active": HIRES}
    assert dict(contracts) == {"signed": HIRES}


@pytest.mark.timeout(600)
def test_two_hundred_accepted_offers_close_with_one_of_each_at_every_vendor(
    make_chain: Callable[..., Chain],
) -> None:
    chain = make_chain(approval_delay=0.2, signing_delay=0.2)
    bring_in_accepted_offers(chain)
    serve = chain.process("serve", "serve", "--port", str(chain.port))
    runner = chain.process("runner", "onboarding", "run", "--intake", "--poll", "0.2")
    serve.start()
    runner.start()
    try:
        counts = wait_until_closed(chain, 300, serve, runner)
    finally:
        runner.stop()
        serve.stop()
    assert counts == {"COMPLETED": HIRES}
    assert_exactly_one_of_each(chain)
    assert chain.vendors.wecom.messages == HIRES  # one welcome each
    shown = "\n".join(
        chain.hub(*args).stdout
        for args in (
            ("onboarding", "list", "--limit", "300"),
            ("runs", "list"),
            ("webhooks", "list", "--limit", "1000"),
            ("deadletters", "list"),
        )
    )
    assert scan_for_personal_data(chain, shown) == []
    planted = chain.project / "logs" / "planted.log"  # the scan finds what is there
    planted.write_text(hires_personal_data(chain.greenhouse)["bank_account"][0])
    assert scan_for_personal_data(chain, "") == ["bank_account in logs/planted.log"]


@pytest.mark.timeout(900)
def test_the_chain_survives_kills_vendor_faults_and_repeated_out_of_order_callbacks(
    make_chain: Callable[..., Chain],
) -> None:
    chain = make_chain(
        settings='claim_ttl = "8s"\nretry = { attempts = 30, base = "1s", max = "4s" }',
        approval_delay=0.3,
        signing_delay=0.3,
    )
    bring_in_accepted_offers(chain)
    vendors = chain.vendors
    vendors.set_faults(Faults.flaky(0.10))
    vendors.esign.callback_repeat = {"*": 3}  # every signing callback three times
    vendors.wecom.callback_repeat = {"*": 3}
    vendors.wecom.callback_reverse = True  # the decision before the submission's own event
    serve = chain.process("serve", "serve", "--port", str(chain.port))
    runners = [chain.process(f"runner{n}", "onboarding", "run", "--intake", "--poll", "0.2") for n in (1, 2)]
    processes = [serve, *runners]
    for process in processes:
        process.start()
    rng = random.Random(7)
    stop = threading.Event()

    def kill_at_random() -> None:
        """A SIGKILL every 2-5 s (runners more often than hub serve), until 20 have landed."""
        while sum(p.kills for p in processes) < 20 and not stop.wait(rng.uniform(2.0, 5.0)):
            victim = rng.choices(processes, weights=(2, 3, 3))[0]
            victim.kill()
            time.sleep(rng.uniform(0.0, 0.5))
            victim.start()

    killer = threading.Thread(target=kill_at_random, daemon=True)
    killer.start()
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if chain.statuses().get("COMPLETED", 0) == HIRES and not killer.is_alive():
                break
            time.sleep(1.0)
    finally:
        stop.set()
        killer.join()
    # the faults end; whatever a kill interrupted last finishes, and no case waits for an operator
    vendors.set_faults(None)
    for process in processes:
        if not process.alive():
            process.start()
    try:
        counts = wait_until_closed(chain, 180, *processes)
    finally:
        for process in processes:
            process.stop()
    assert sum(p.kills for p in processes) >= 20, [p.kills for p in processes]
    assert counts == {"COMPLETED": HIRES}
    assert_exactly_one_of_each(chain)
    tally = vendors.tally()
    assert tally.callbacks_delivered > 3 * HIRES  # repeated copies were delivered and absorbed
    logs = "\n".join(p.log.read_text(errors="replace") for p in processes)
    assert scan_for_personal_data(chain, logs) == []
