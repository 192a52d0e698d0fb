"""The recruiting half of the demo: vendor simulators -> canonical store -> evaluation.

Starts the Greenhouse and HackerRank simulators (generated data, on free loopback ports), passes
their URLs and demo keys to hub through the environment (hub.toml refers to them), syncs both
into the canonical store, then evaluates the applications of one job and searches the talent
pool. Run by ./scripts/demo; needs hub installed in the current Python.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hub.sandbox.greenhouse import GreenhouseSimulator
from hub.sandbox.hackerrank import HackerRankSimulator

ROOT = Path(__file__).resolve().parent.parent
HUB = [sys.executable, "-m", "hub"]
#: sync exit codes that mean the run finished (3: some records in dead letters)
FINISHED = (0, 3)


def hub(*args: str, env: dict[str, str]) -> None:
    print(f"\n$ hub {' '.join(args)}", flush=True)
    code = subprocess.call([*HUB, *args], cwd=ROOT, env=env)
    if code not in FINISHED:
        raise SystemExit(f"demo: hub {args[0]} failed (exit {code})")


def invite_to_assessment(greenhouse: GreenhouseSimulator, hackerrank: HackerRankSimulator) -> None:
    """Two thirds of the ATS candidates take the coding test, known to HackerRank by e-mail only:
    hub links each result to its candidate through identity resolution."""
    test_id = hackerrank.tests[0]["id"]
    for n, candidate in enumerate(list(greenhouse._tables["candidates"].values())):
        if n % 3 == 2:
            continue
        name = f"{candidate['last_name']}{candidate['first_name']}"
        invited = hackerrank.invite(test_id, candidate["email_addresses"][0]["value"], name)
        hackerrank.begin_attempt(test_id, invited["id"])
        hackerrank.finish_attempt(test_id, invited["id"])


def main() -> None:
    candidates = int(os.environ.get("DEMO_CANDIDATES", "300"))
    with (
        GreenhouseSimulator(candidates=candidates, seed=1) as greenhouse,
        HackerRankSimulator(seed=1, tests=1, candidates_per_test=0) as hackerrank,
    ):
        invite_to_assessment(greenhouse, hackerrank)
        env = {
            **os.environ,
            "HUB_DEMO_GREENHOUSE_URL": greenhouse.url,
            "HUB_DEMO_GREENHOUSE_KEY": greenhouse.api_token,
            "HUB_DEMO_HACKERRANK_URL": hackerrank.describe()["base_url"],
            "HUB_DEMO_HACKERRANK_KEY": str(hackerrank.describe()["api_key"]),
        }
        print(f"Greenhouse simulator on {greenhouse.url}, HackerRank simulator on {hackerrank.url}")
        hub("sync", "greenhouse_recruiting", env=env)
        hub("sync", "hackerrank_results", env=env)
        hub("evaluate", "--job", "REQ-2024-001", env=env)
        hub("talent", "search", "数据标注 Python 3年", "--limit", "5", env=env)


if __name__ == "__main__":
    main()
