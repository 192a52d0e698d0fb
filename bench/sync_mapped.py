"""Benchmark: a mapped sync (HR export -> canonical Person, with identity resolution) into SQLite.

Generates an export of ``--rows`` people (bench/mapping.py's generator), maps it to Person
with the identity fields hub resolves people by, and times in fresh processes:
  first      the first sync (every record created: change events, identity resolution);
  resync     the same file again (everything unchanged);
  changes    1% of the rows with a changed e-mail and 1% with only a corrected ID number;
  resync2    that file again (unchanged).
With ``--no-identity`` the mapping has no identity section (mapping and change detection only).

    python bench/sync_mapped.py [--rows 100000] [--no-identity]
"""

from __future__ import annotations

import argparse
import base64
import csv
import os
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from mapping import generate  # bench/mapping.py
from sync_files_to_sql import child as run_phase  # bench/sync_files_to_sql.py
from sync_files_to_sql import hub_sync

MAPPING = """\
entity: Person
key: [employee_id]
fields:
  legal_family_name: {from: name, transforms: [trim, {split_name: {part: family}}], required: true}
  legal_given_name: {from: name, transforms: [trim, {split_name: {part: given}}]}
  display_name: {from: name, transforms: [trim]}
  gender: {from: gender, transforms: [{enum: {map: {男: MALE, 女: FEMALE}}}]}
  date_of_birth: {from: birth_date, transforms: [date]}
  mobile_phone: {from: phone, transforms: [phone]}
  personal_email: {from: email, transforms: [email]}
"""
IDENTITY = """\
identity:
  full_name: {from: name, transforms: [nfkc, trim]}
  id_number: {from: id_number, transforms: [nfkc, id_number]}
  phone: {from: phone, transforms: [phone]}
  email: {from: email, transforms: [email]}
"""
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def other_id_number(number: str) -> str:
    """A valid resident ID number with another sequence number (same birth date and sex)."""
    seq = (int(number[14:17]) + 2) % 1000
    body = number[:14] + f"{seq:03d}"
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, WEIGHTS, strict=True)) % 11]


def change(path: Path) -> tuple[int, int]:
    """1% of the rows get a new e-mail, another 1% a corrected ID number only."""
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    email, idno = header.index("email"), header.index("id_number")
    changed = identity = 0
    for i, row in enumerate(body):
        if i % 100 == 0:
            row[email] = f"moved{i}@example.com"
            changed += 1
        elif i % 100 == 1:
            row[idno] = other_id_number(row[idno])
            identity += 1
    with open(path, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([header, *body])
    return changed, identity


def child(argv: list[str]) -> tuple[float, float]:
    """Run this script's ``--phase`` in a fresh process; return (seconds, peak RSS in MB)."""
    return run_phase(argv, __file__)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--no-identity", action="store_true", help="map only; no identity resolution")
    parser.add_argument("--phase", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        hub_sync(Path(args.phase[1]))
        return

    os.environ.setdefault("HUB_MASTER_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode())
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        work = Path(tmp)
        csv_path = work / "hr_export.csv"
        generate(csv_path, args.rows)
        (work / "person.yaml").write_text(MAPPING + ("" if args.no_identity else IDENTITY), encoding="utf-8")
        config = work / "hub.toml"
        config.write_text(
            textwrap.dedent(
                f"""
                [hub]
                database = "sqlite:///{work / "hub.db"}"

                [connectors.src]
                plugin = "files"
                [connectors.src.config]
                path = "{csv_path}"
                stream = "people"

                [connectors.dst]
                plugin = "sql"
                [connectors.dst.config]
                url = "sqlite:///{work / "target.db"}"

                [pipelines.bench]
                source = "src"
                streams = [{{ name = "people", mapping = "person.yaml", destination_stream = "people" }}]
                destinations = ["dst"]
                """
            ),
            encoding="utf-8",
        )
        results = []
        for label in ("first sync", "re-sync, unchanged"):
            results.append((label, *child(["--phase", "hub", str(config)])))
        changed, identity = change(csv_path)
        results.append(
            (f"sync, {changed:,} changed + {identity:,} ID-only", *child(["--phase", "hub", str(config)]))
        )
        results.append(("re-sync, unchanged", *child(["--phase", "hub", str(config)])))
    what = "mapping only" if args.no_identity else "mapping + identity"
    print(f"\n{args.rows:,} rows, Person ({what}), SQLite")
    print(f"{'phase':<40} {'seconds':>8} {'records/s':>10} {'peak RSS':>9}")
    for label, seconds, rss in results:
        print(f"{label:<40} {seconds:>8.2f} {args.rows / seconds:>10,.0f} {rss:>7.0f}MB")


if __name__ == "__main__":
    main()
