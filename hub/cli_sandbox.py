"""``hub sandbox``: run a vendor simulator on loopback to rehearse a configuration offline.

The simulators (``hub.sandbox``) follow each vendor's documented auth, pagination, rate limits
and callback signatures, on generated data: point a connector's ``base_url`` at the URL printed
here and run ``hub connectors check`` / ``hub sync`` without touching the vendor.
"""

from __future__ import annotations

import sys
import threading
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from hub.sandbox import SIMULATORS, Faults, RateLimit
from hub.sandbox.vendors import load_all

sandbox_app = typer.Typer(no_args_is_help=True, help="Vendor simulators for offline rehearsal.")

out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False)


@sandbox_app.command("list")
def list_simulators() -> None:
    """The vendors hub can simulate."""
    load_all()
    table = Table("vendor", "simulates")
    for vendor in sorted(SIMULATORS):
        doc = (SIMULATORS[vendor].__doc__ or "").strip().splitlines()
        table.add_row(vendor, doc[0] if doc else "")
    out.print(table)


@sandbox_app.command("start")
def start(
    vendor: Annotated[str, typer.Argument(help="vendor to simulate (hub sandbox list)")],
    port: Annotated[int, typer.Option(help="port on 127.0.0.1 (0: any free port)")] = 0,
    seed: Annotated[int, typer.Option(help="seed of the generated data")] = 1,
    size: Annotated[
        int, typer.Option(help="how many records (candidates, employees, ...) to generate")
    ] = 100,
    rate_limit: Annotated[
        str | None, typer.Option(help="override the vendor's rate limit, as REQUESTS/SECONDS (e.g. 50/10)")
    ] = None,
    error_rate: Annotated[float, typer.Option(help="share of requests answered 503 (0 to 1)")] = 0.0,
    json_output: Annotated[bool, typer.Option("--json", help="print the connection details as JSON")] = False,
) -> None:
    """Start VENDOR's simulator and serve until interrupted (Ctrl-C)."""
    load_all()
    cls = SIMULATORS.get(vendor)
    if cls is None:
        known = ", ".join(sorted(SIMULATORS)) or "none"
        err.print(f"[red]no simulator for {vendor!r}[/red] (known: {known})")
        raise typer.Exit(2)
    if not 0 <= error_rate <= 1:
        err.print("[red]--error-rate must be between 0 and 1[/red]")
        raise typer.Exit(2)
    simulator = cls.for_sandbox(port=port, seed=seed, size=size)
    if rate_limit:
        try:
            requests, seconds = rate_limit.split("/")
            simulator.rate_limit = RateLimit(int(requests), float(seconds))
        except ValueError:
            err.print("[red]--rate-limit must look like REQUESTS/SECONDS, e.g. 50/10[/red]")
            raise typer.Exit(2) from None
    if error_rate:
        simulator.faults = Faults(error_rate=error_rate)
    simulator.start()
    details = simulator.describe()
    if json_output:
        out.print(orjson.dumps(details).decode(), soft_wrap=True)
    else:
        out.print(f"[bold]{vendor}[/bold] simulator (generated data, not the vendor) on {simulator.url}")
        for key, value in details.items():
            if key not in ("vendor", "url"):
                out.print(f"  {key}: {value}")
        out.print("Ctrl-C to stop.")
    stop = threading.Event()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        simulator.stop()
