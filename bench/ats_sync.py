"""Benchmark: Greenhouse (simulated) -> the greenhouse connector -> canonical store (SQLite).

The Greenhouse simulator serves ``--candidates`` candidates with their applications (Harvest
v1, no rate limit, 500 per page) from a process of its own. In the same run, in fresh
processes (each peak RSS is its own), it times:
  raw     the floor: the same pages read with a plain ``requests`` loop following the Link
          headers, JSON decoded, nothing else;
  hub     ``hub sync``: the shipped manifest through hub_airbyte, the shipped mappings
          (greenhouse_candidates.yaml with its identity section, greenhouse_applications.yaml)
          into Candidate and Application tables in SQLite, personal data sealed;
  resync  the same sync again: nothing changed, the server-side filter sends only the
          records at the saved cursor.
With ``--no-identity`` the candidates mapping is used without its identity section (no
person resolution: mapping, change detection and writing only).

    python bench/ats_sync.py [--candidates 100000] [--no-identity] [--workers 2]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAPPINGS = ROOT / "mappings"
STREAMS = (
    ("candidates", "greenhouse_candidates.yaml", "candidates"),
    ("applications", "greenhouse_applications.yaml", "applications"),
)
FIRST_PAGES = ("/v1/candidates", "/v1/applications")
#: the connector's first request of a full read (its server-side filter from the epoch)
FROM_THE_START = {"per_page": "500", "updated_after": "1970-01-01T00:00:00.000Z"}


def serve(candidates: int, ready: Path) -> None:
    """The simulator, until killed; its URL and counts go to ``ready`` once it listens."""
    from hub.sandbox.greenhouse import GreenhouseSimulator

    started = time.perf_counter()
    # Only candidates and applications are read: no scorecards or interviews to generate.
    simulator = GreenhouseSimulator(
        candidates=candidates, seed=2024, rate_limit=None, scorecards_per_application=0
    ).start()
    details = {
        "url": simulator.url,
        "api_key": simulator.api_token,
        "candidates": simulator.count("candidates"),
        "applications": simulator.count("applications"),
        "generated_seconds": time.perf_counter() - started,
    }
    partial = ready.with_suffix(".tmp")
    partial.write_text(json.dumps(details), encoding="utf-8")
    partial.rename(ready)
    while True:
        time.sleep(3600)


def raw_floor(url: str, api_key: str) -> None:
    """Every page of both streams with requests + JSON, following Link like the connector."""
    import requests

    session = requests.Session()
    session.auth = (api_key, "")
    records = 0
    started = time.perf_counter()
    for path in FIRST_PAGES:
        params = dict(FROM_THE_START)
        if path == "/v1/applications":
            params = {"per_page": "500", "last_activity_after": FROM_THE_START["updated_after"]}
        answer = session.get(url + path, params=params, timeout=60)
        while True:
            answer.raise_for_status()
            records += len(answer.json())
            following = answer.links.get("next", {}).get("url")
            if not following:
                break
            answer = session.get(following, timeout=60)
    print(json.dumps({"records": records, "seconds": time.perf_counter() - started}))


def hub_sync(config: Path) -> None:
    from hub.engine import Sync
    from hub.project import Project

    result = Sync(Project(config), "bench").run()
    if result.status != "succeeded":
        raise SystemExit(f"sync {result.status}: {result.error}")
    print(json.dumps({"records": result.counts.read, "seconds": result.duration, **result.counts.as_dict()}))


def child(argv: list[str]) -> tuple[dict[str, float], float, float, float]:
    """Run a ``--phase`` in a fresh process: (what it printed, wall s, CPU s, peak RSS in MB).

    CPU seconds (user + system, the process and the workers it waited for) are steadier than
    wall time on a shared machine.
    """
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, *argv], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"phase {argv[:2]} failed")
    printed = json.loads(output.strip().splitlines()[-1])
    return printed, time.perf_counter() - started, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def write_config(work: Path, url: str, identity: bool, workers: int, chunk_size: int | None = None) -> Path:
    streams = []
    for name, mapping, table in STREAMS:
        path = MAPPINGS / mapping
        if not identity and name == "candidates":
            text = path.read_text(encoding="utf-8")
            path = work / mapping
            path.write_text(text.split("\nidentity:")[0] + "\n", encoding="utf-8")
        streams.append(
            f'{{ name = "{name}", sync_mode = "incremental", mapping = "{path}", destination_stream = "{table}" }}'
        )
    config = work / "hub.toml"
    config.write_text(
        f"""
[hub]
database = "sqlite:///{work / "hub.db"}"
{f"chunk_size = {chunk_size}" if chunk_size else ""}

[connectors.greenhouse]
plugin = "greenhouse"
[connectors.greenhouse.config]
base_url = "{url}"
api_key = {{ env = "GREENHOUSE_API_KEY" }}
page_size = 500
num_workers = {workers}

[connectors.store]
plugin = "sql"
[connectors.store.config]
url = "sqlite:///{work / "canonical.db"}"

[pipelines.bench]
source = "greenhouse"
destinations = ["store"]
streams = [{", ".join(streams)}]
""",
        encoding="utf-8",
    )
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=100_000)
    parser.add_argument(
        "--no-identity", action="store_true", help="no identity section in the candidates mapping"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="the connector's num_workers (concurrent partitions)"
    )
    parser.add_argument("--chunk-size", type=int, default=None, help="records per checkpoint (hub's default)")
    parser.add_argument("--phase", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        kind, *rest = args.phase
        if kind == "serve":
            serve(int(rest[0]), Path(rest[1]))
        elif kind == "raw":
            raw_floor(rest[0], rest[1])
        elif kind == "hub":
            hub_sync(Path(rest[0]))
        return

    os.environ.setdefault("HUB_MASTER_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode())
    with tempfile.TemporaryDirectory(prefix="hub-bench-ats-") as tmp:
        work = Path(tmp)
        ready = work / "simulator.json"
        server = subprocess.Popen(
            [sys.executable, __file__, "--phase", "serve", str(args.candidates), str(ready)]
        )
        try:
            while not ready.exists():
                if server.poll() is not None:
                    raise SystemExit("the simulator did not start")
                time.sleep(0.2)
            sim = json.loads(ready.read_text(encoding="utf-8"))
            total = sim["candidates"] + sim["applications"]
            print(
                f"simulator: {sim['candidates']:,} candidates + {sim['applications']:,} applications "
                f"= {total:,} records, generated in {sim['generated_seconds']:.1f}s"
            )
            os.environ["GREENHOUSE_API_KEY"] = sim["api_key"]
            config = write_config(work, sim["url"], not args.no_identity, args.workers, args.chunk_size)
            results = [
                ("raw: requests + JSON, same pages", *child(["--phase", "raw", sim["url"], sim["api_key"]]))
            ]
            for label in ("hub sync (first)", "hub sync again (unchanged)"):
                results.append((label, *child(["--phase", "hub", str(config)])))
        finally:
            server.terminate()
            server.wait()
    what = (
        "candidates mapping without identity"
        if args.no_identity
        else "shipped mappings, identity resolution on"
    )
    chunks = f"chunk_size={args.chunk_size}" if args.chunk_size else "default chunk_size"
    print(f"\nGreenhouse -> canonical store (SQLite), {what}, num_workers={args.workers}, {chunks}")
    print(
        f"{'phase':<36} {'records':>9} {'seconds':>8} {'records/s':>10} {'process wall s':>15} "
        f"{'CPU s':>6} {'peak RSS':>9}"
    )
    for label, out, wall, cpu, rss in results:
        records, seconds = int(out["records"]), float(out["seconds"])
        print(
            f"{label:<36} {records:>9,} {seconds:>8.2f} {records / seconds:>10,.0f} {wall:>15.1f} "
            f"{cpu:>6.1f} {rss:>7.0f}MB"
        )
    first = results[1][1]
    print(f"\nend to end (first sync): {first['records'] / first['seconds']:,.0f} records/s (goal: 10,000)")


if __name__ == "__main__":
    main()
