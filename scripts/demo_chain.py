"""The recruiting-to-onboarding half of the demo, on local vendor simulators.

1. Greenhouse and HackerRank simulators (generated data) -> the canonical store
   (demo/canonical.db) -> the structured evaluation of one job -> a talent-pool search.
2. The candidates the evaluation recommends accept their offers (in the Greenhouse simulator);
   an incremental sync brings the accepted offers in, and hub opens an onboarding case for each.
3. ``hub serve`` receives the vendors' callbacks and ``hub onboarding run`` performs the tasks:
   HR master record (demo/hr_master.db), WeCom account and onboarding approval, Kingdee payroll,
   e签宝 labour contract, signed by the simulated employee and confirmed by callback, then the
   HR master and WeCom are updated and the case closes.
4. The cases, the sync log, the callbacks and what each vendor holds are printed.

The URLs and demo credentials reach hub through the environment (hub.toml refers to them).
Run by ./scripts/demo; needs hub installed in the current Python.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import requests
from rich.console import Console
from rich.table import Table

from hub.onboarding.flow import OnboardingFlow
from hub.project import Project
from hub.sandbox.base import free_port
from hub.sandbox.greenhouse import GreenhouseSimulator
from hub.sandbox.hackerrank import HackerRankSimulator
from hub.sandbox.onboarding import (
    OnboardingVendors,
    accept_offers,
    accepted_offers,
    apply_hr_master_schema,
    describe,
)

ROOT = Path(__file__).resolve().parent.parent
HUB = [sys.executable, "-m", "hub"]
JOB = "REQ-2024-001"
#: sync exit codes that mean the run finished (3: some records in dead letters)
FINISHED = (0, 3)
out = Console(highlight=False)


def hub(*args: str, env: dict[str, str], capture: bool = False) -> str:
    if not capture:
        print(f"\n$ hub {' '.join(args)}", flush=True)
    done = subprocess.run([*HUB, *args], cwd=ROOT, env=env, text=True, capture_output=capture, check=False)
    if done.returncode not in FINISHED:
        sys.stderr.write(done.stderr or "")
        raise SystemExit(f"demo: hub {args[0]} failed (exit {done.returncode})")
    return done.stdout or ""


def invite_to_assessment(greenhouse: GreenhouseSimulator, hackerrank: HackerRankSimulator) -> None:
    """Two thirds of the ATS candidates take the coding test, known to HackerRank by e-mail only:
    hub links each result to its candidate through identity resolution."""
    test_id = hackerrank.tests[0]["id"]
    for n, candidate in enumerate(greenhouse.records("candidates")):
        if n % 3 == 2:
            continue
        name = f"{candidate['last_name']}{candidate['first_name']}"
        invited = hackerrank.invite(test_id, candidate["email_addresses"][0]["value"], name)
        hackerrank.begin_attempt(test_id, invited["id"])
        hackerrank.finish_attempt(test_id, invited["id"])


def wait_for(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"demo: hub serve exited ({process.returncode})")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit("demo: hub serve did not start")


def wait_for_cases(
    flow: OnboardingFlow, expected: int, runner: subprocess.Popen[bytes], timeout: float
) -> None:
    """Until ``expected`` cases have closed (or some wait for an operator), printing progress."""
    deadline, shown = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        if runner.poll() is not None:
            raise SystemExit(f"demo: hub onboarding run exited ({runner.returncode})")
        statuses = [view.status for view in flow.list_cases(limit=10_000)]
        line = ", ".join(f"{statuses.count(s)} {s.lower()}" for s in sorted(set(statuses))) or "no cases yet"
        if line != shown:
            print(f"  onboarding cases: {line}", flush=True)
            shown = line
        if len(statuses) >= expected and all(s in ("COMPLETED", "NEEDS_OPERATOR") for s in statuses):
            return
        time.sleep(1.0)
    print("  (stopped waiting: see hub onboarding list)")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


def main() -> None:
    candidates = int(os.environ.get("DEMO_CANDIDATES", "300"))
    hires = int(os.environ.get("DEMO_HIRES", "8"))
    port = free_port()
    apply_hr_master_schema(f"sqlite:///{ROOT / 'demo' / 'hr_master.db'}", ROOT / "schemas" / "hr_master")
    with (
        GreenhouseSimulator(candidates=candidates, seed=1) as greenhouse,
        HackerRankSimulator(seed=1, tests=1, candidates_per_test=0) as hackerrank,
        OnboardingVendors(f"http://127.0.0.1:{port}", approval_delay=2.0, signing_delay=3.0) as vendors,
    ):
        invite_to_assessment(greenhouse, hackerrank)
        env = {
            **os.environ,
            "HUB_DEMO_GREENHOUSE_URL": greenhouse.url,
            "HUB_DEMO_GREENHOUSE_KEY": greenhouse.api_token,
            "HUB_DEMO_HACKERRANK_URL": hackerrank.describe()["base_url"],
            "HUB_DEMO_HACKERRANK_KEY": str(hackerrank.describe()["api_key"]),
            **vendors.env(),
        }
        os.environ.update(env)
        print(f"Greenhouse simulator on {greenhouse.url}, HackerRank simulator on {hackerrank.url}")
        hub("sync", "greenhouse_recruiting", env=env)
        hub("sync", "hackerrank_results", env=env)
        hub("evaluate", "--job", JOB, env=env)
        hub("talent", "search", "数据标注 Python 3年", "--limit", "5", env=env)

        print(f"\nOnboarding: {hires} candidates of {JOB}, best evaluated first, accept their offers in the")
        print("ATS; an incremental sync brings them in, with the offers accepted before.")
        evaluated = json.loads(hub("evaluate", "--job", JOB, "--json", env=env, capture=True))
        ranked = sorted(evaluated, key=lambda r: ("recommend", "hold", "reject").index(r["recommendation"]))
        recommended = [int(r["application"]) for r in ranked if r["recommendation"] != "reject"]
        accept_offers(greenhouse, hires, prefer=recommended)
        expected = len(accepted_offers(greenhouse))
        hub("sync", "greenhouse_recruiting", env=env)

        print(f"\nWeCom, Kingdee and e签宝 simulators on {vendors.wecom.url}, {vendors.kingdee.url},")
        print(f"{vendors.esign.url}; hub serve on port {port} receives their callbacks.")
        serve = subprocess.Popen([*HUB, "serve", "--port", str(port)], cwd=ROOT, env=env)
        runner = None
        try:
            wait_for(f"http://127.0.0.1:{port}/healthz", serve)
            print("\n$ hub onboarding run --intake --poll 0.5     (until every case has closed)", flush=True)
            runner = subprocess.Popen(
                [*HUB, "onboarding", "run", "--intake", "--poll", "0.5"],
                cwd=ROOT,
                env={**env, "HUB_LOG_LEVEL": "WARNING"},
            )
            wait_for_cases(OnboardingFlow(Project(ROOT / "hub.toml")), expected, runner, timeout=300)
        finally:
            if runner is not None:
                stop(runner)
            stop(serve)
        hub("onboarding", "list", "--limit", "10", env=env)
        hub("runs", "list", "--limit", "5", env=env)
        hub("webhooks", "list", "--limit", "5", env=env)
        tally = vendors.tally()
    table = Table("at the vendor", "made", "finished", title="What the vendors hold after onboarding")
    for name, made, finished in describe(tally):
        table.add_row(name, str(made), str(finished))
    out.print()
    out.print(table)
    out.print(f"{tally.callbacks_delivered} callbacks delivered to hub serve (copies included).")


if __name__ == "__main__":
    main()
