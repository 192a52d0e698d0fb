"""Fast synthetic HR rows for tests and benchmarks (no real person's data)."""

from __future__ import annotations

import csv
import random
from pathlib import Path

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK = "10X98765432"
REGIONS = ("110105", "310104", "440305", "330106", "510107", "420111")


def id_number(rng: random.Random) -> str:
    """A resident ID number with a valid GB 11643 check digit."""
    body = (
        rng.choice(REGIONS)
        + f"{rng.randint(1960, 2004)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        + f"{rng.randint(0, 999):03d}"
    )
    return body + CHECK[sum(int(d) * w for d, w in zip(body, WEIGHTS, strict=True)) % 11]


def phone(rng: random.Random) -> str:
    return f"1{rng.choice('3456789')}{rng.randint(0, 999999999):09d}"


def bank_account(rng: random.Random) -> str:
    return f"6222{rng.randint(0, 10**15 - 1):015d}"


HEADER = ["id", "name", "id_number", "phone", "bank_account", "salary", "hire_date", "department"]


def person_row(i: int, rng: random.Random) -> list[str]:
    return [
        f"E{i:07d}",
        f"员工{i}",
        id_number(rng),
        phone(rng),
        bank_account(rng),
        str(rng.randrange(8000, 60000, 100)),
        f"20{rng.randint(10, 25)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        rng.choice(["研发", "财务", "人事", "市场"]),
    ]


def write_people_csv(path: Path, rows: int, seed: int = 1, encoding: str = "utf-8") -> list[list[str]]:
    rng = random.Random(seed)
    data = [person_row(i, rng) for i in range(1, rows + 1)]
    with open(path, "w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(data)
    return data
