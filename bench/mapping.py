"""Benchmark: map a 1,000,000-row, 20-column HR export into five canonical entities.

Reads the CSV with the files connector in chunks, maps each chunk to Person, Employee,
IdentityDocument, BankAccount and Compensation (bench/mappings/*.yaml), and prints records/s
per stage and peak RSS. Then maps a sample one record at a time, the way a webhook arrives,
to show what the chunk (vectorised) path gains.

    python bench/mapping.py [--rows 1000000] [--single 2000]
"""

from __future__ import annotations

import argparse
import csv
import logging
import random
import resource
import tempfile
import time
from pathlib import Path

import pandas as pd
from hub_files.source import FilesSource

from hub.mapping import apply_mapping, load_mapping
from hub.plugins import load_plugins
from hub.project import collect_transforms
from hub.schema import ENTITIES

HERE = Path(__file__).parent
ENTITY_FILES = ["person", "employee", "identity_document", "bank_account", "compensation"]
COLUMNS = [
    "employee_id",
    "name",
    "gender",
    "id_number",
    "birth_date",
    "phone",
    "email",
    "work_email",
    "bank_account",
    "bank_name",
    "salary",
    "hire_date",
    "start_date",
    "job_title",
    "job_level",
    "department",
    "city",
    "school",
    "degree",
    "status",
]
FAMILY = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_number(rng: random.Random, birth: str, male: bool) -> str:
    seq = rng.randrange(0, 999) // 2 * 2 + (1 if male else 0)
    body = f"110105{birth.replace('-', '')}{seq:03d}"
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, WEIGHTS, strict=True)) % 11]


def generate(path: Path, rows: int) -> None:
    rng = random.Random(7)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for i in range(rows):
            male = rng.random() < 0.5
            birth = f"{rng.randint(1965, 2003)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            name = rng.choice(FAMILY) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2)))
            writer.writerow(
                [
                    f"E{i:07d}",
                    name,
                    "男" if male else "女",
                    id_number(rng, birth, male),
                    rng.choice([birth, birth.replace("-", "/")]),
                    f"13{rng.randint(0, 999999999):09d}",
                    f"user{i}@example.com",
                    f"e{i}@corp.example.cn",
                    f"6222{rng.randint(10**14, 10**15 - 1)}",
                    "中国工商银行",
                    f"{rng.randrange(8000, 60000, 100)}.00",
                    f"20{rng.randint(10, 25)}-03-01",
                    f"20{rng.randint(10, 25)}-04-01",
                    "工程师",
                    rng.choice(["p5", "p6", "p7"]),
                    rng.choice(["研发", "财务"]),
                    "北京",
                    "清华大学",
                    "本科",
                    "active",
                ]
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--single", type=int, default=2000, help="records mapped one at a time")
    args = parser.parse_args()
    transforms = collect_transforms(load_plugins(entry_points=False))
    specs = {
        name: load_mapping(HERE / "mappings" / f"{name}.yaml", transforms, ENTITIES) for name in ENTITY_FILES
    }

    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        path = Path(tmp) / "hr_export.csv"
        started = time.perf_counter()
        generate(path, args.rows)
        print(
            f"generated {args.rows:,} rows x {len(COLUMNS)} columns in {time.perf_counter() - started:.1f}s"
        )

        source = FilesSource()
        read_s = 0.0
        map_s = dict.fromkeys(ENTITY_FILES, 0.0)
        mapped = dict.fromkeys(ENTITY_FILES, 0)
        rejected = dict.fromkeys(ENTITY_FILES, 0)
        sample: pd.DataFrame | None = None
        tick = time.perf_counter()
        for batch in source.read_batches(
            logging.getLogger("bench"), {"path": str(path)}, "hr", None, {"chunk_size": 50_000}
        ):
            read_s += time.perf_counter() - tick
            if sample is None:
                sample = batch.frame.head(args.single)
            for name, spec in specs.items():
                t = time.perf_counter()
                result = apply_mapping(spec, batch.frame, transforms)
                map_s[name] += time.perf_counter() - t
                mapped[name] += len(result.frame)
                rejected[name] += len(result.rejections)
            tick = time.perf_counter()

    total_map = sum(map_s.values())
    print(f"\n{'stage':<34} {'seconds':>8} {'records/s':>12} {'rejected':>9}")
    print(f"{'read CSV (files connector)':<34} {read_s:>8.2f} {args.rows / read_s:>12,.0f}")
    for name in ENTITY_FILES:
        print(
            f"{'map -> ' + specs[name].entity:<34} {map_s[name]:>8.2f} {args.rows / map_s[name]:>12,.0f} "
            f"{rejected[name]:>9,}"
        )
    print(f"{'map -> all five entities':<34} {total_map:>8.2f} {args.rows / total_map:>12,.0f}")

    assert sample is not None
    t = time.perf_counter()
    for i in range(len(sample)):
        one = sample.iloc[[i]]
        for spec in specs.values():
            apply_mapping(spec, one, transforms)
    single_s = time.perf_counter() - t
    single_rate = len(sample) / single_s
    chunk_rate = args.rows / total_map
    print(f"{'one record at a time (all five)':<34} {single_s:>8.2f} {single_rate:>12,.0f}")
    print(f"\nchunk path / one-at-a-time: {chunk_rate / single_rate:.0f}x")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
