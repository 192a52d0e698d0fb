"""Generate a sample ATS export: zh_CN candidates with valid resident ID numbers.

Every value is synthetic (Faker's zh_CN provider). A couple of rows are broken on purpose,
as real exports are, so the demo shows where dead letters go.

    python scripts/make_sample_data.py demo/data/candidates.csv --rows 3000
"""

from __future__ import annotations

import argparse
import csv
import random
from datetime import date, timedelta
from pathlib import Path

from faker import Faker

COLUMNS = [
    "candidate_id",
    "name",
    "gender",
    "id_number",
    "birth_date",
    "phone",
    "email",
    "city",
    "school",
    "degree",
    "job_title",
    "department",
    "offer_salary",
    "start_date",
    "status",
    "bank_account",
    "source_channel",
    "updated_at",
]
DEGREES = ["本科", "硕士", "博士", "大专"]
DEPARTMENTS = ["研发中心", "数据平台部", "人力资源部", "财务部", "市场部", "客户成功部"]
CHANNELS = ["Boss直聘", "猎聘", "内推", "校园招聘", "官网"]
STATUSES = ["offer_accepted", "offer_sent", "interviewing", "hired"]


def candidate(fake: Faker, number: int, rng: random.Random) -> list[str]:
    id_number = fake.ssn()
    birth = date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
    gender = "男" if int(id_number[16]) % 2 else "女"
    start = date(2026, 12, 1) + timedelta(days=rng.randint(0, 90))
    return [
        f"C{number:07d}",
        fake.name_male() if gender == "男" else fake.name_female(),
        gender,
        id_number,
        # Exports mix date styles; the files connector reads them all.
        rng.choice(
            [
                birth.isoformat(),
                f"{birth.year}/{birth.month}/{birth.day}",
                f"{birth.year}年{birth.month}月{birth.day}日",
            ]
        ),
        fake.phone_number(),
        fake.email(),
        fake.city(),
        fake.company_prefix() + "大学",
        rng.choice(DEGREES),
        fake.job(),
        rng.choice(DEPARTMENTS),
        str(rng.randrange(8000, 60000, 500)),
        start.isoformat(),
        rng.choice(STATUSES),
        fake.credit_card_number(),
        rng.choice(CHANNELS),
        f"2026-11-{rng.randint(1, 24):02d} {rng.randint(8, 20):02d}:{rng.randint(0, 59):02d}:00",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--broken", type=int, default=2, help="rows to break on purpose")
    args = parser.parse_args()
    fake = Faker("zh_CN")
    fake.seed_instance(args.seed)
    rng = random.Random(args.seed)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    broken = {
        row: n for n, row in enumerate(sorted(rng.sample(range(args.rows), min(args.broken, args.rows))))
    }
    with open(args.output, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for i in range(args.rows):
            row = candidate(fake, i + 1, rng)
            if i in broken:
                if broken[i] % 2:
                    row = row[:7]  # a truncated line: columns missing
                else:
                    row[COLUMNS.index("start_date")] = "下周一"  # not a date
            writer.writerow(row)
    print(f"wrote {args.rows} candidates to {args.output}")


if __name__ == "__main__":
    main()
