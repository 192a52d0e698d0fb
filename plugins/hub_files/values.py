"""Vectorised normalisation of declared column types (dates, numbers) in text columns."""

from __future__ import annotations

import numpy as np
import pandas as pd

EXCEL_EPOCH = pd.Timestamp("1899-12-30")
_DATE_FORMATS = (
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y.%m.%d",
    "%Y年%m月%d日",
    "%Y%m%d",
    "%Y-%m-%d %H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%Y-%m-%d %H:%M:%S.%f",  # Excel datetime cells keep milliseconds
)


def parse_dates(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """ISO date strings for ``values``, and a mask of non-empty values that are not dates.

    Accepts ISO, ``2024/3/1``, ``2024.3.1``, ``2024年3月1日``, ``20240301`` and Excel serial
    day numbers (``45352`` is 2024-03-01).
    """
    text = values.astype("string").str.strip()
    present = text.notna() & text.ne("")
    parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    serial = text.str.fullmatch(r"\d{1,5}(\.0+)?").fillna(False).astype(bool)
    if serial.any():
        days = pd.to_numeric(text[serial], errors="coerce")
        ok = days.between(1, 2958465)
        parsed.loc[days[ok].index] = EXCEL_EPOCH + pd.to_timedelta(days[ok], unit="D")
    for fmt in _DATE_FORMATS:
        todo = present & parsed.isna() & ~serial
        if not todo.any():
            break
        parsed.loc[todo] = pd.to_datetime(text[todo], format=fmt, errors="coerce")
    bad = (present & parsed.isna()).to_numpy()
    out = parsed.dt.strftime("%Y-%m-%d").astype("string")
    out = out.where(~(present & parsed.isna()), text)
    return out.where(present, pd.NA), bad


def parse_numbers(values: pd.Series, integer: bool) -> tuple[pd.Series, np.ndarray]:
    """Numbers as text (thousands separators removed), and a mask of values that are not numbers."""
    text = values.astype("string").str.strip().str.replace(",", "", regex=False)
    present = text.notna() & text.ne("")
    numbers = pd.to_numeric(text.where(present), errors="coerce")
    bad = present & numbers.isna()
    if integer:
        bad |= present & numbers.notna() & (numbers % 1 != 0)
    return text.where(present, pd.NA), bad.to_numpy()
