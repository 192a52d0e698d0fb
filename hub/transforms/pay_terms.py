"""A factory for ``<vendor>_pay_terms`` transforms: an offer's amount + period code as ``PayTerms``.

ATS vendors quote an offer's pay as an amount and a period code whose numbering is the
vendor's (Moka: 1 hourly ... 4 yearly; Beisen: assumed 1 monthly, 2 yearly ...). The canonical
``Offer.compensation`` is a ``PayTerms`` ``{"amount": Money, "pay_period": Coded[PayPeriod]}``.
A vendor plugin registers its own transform, named in its mappings, from :func:`pay_terms`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from hub.transforms.core import (
    Outcome,
    Transform,
    TransformContext,
    TransformParamError,
    is_null,
    outcome,
    scalar_text,
)


def pay_terms(
    name: str, periods: Mapping[str, str], *, description: str, period_note: str, configurable: bool = False
) -> Transform:
    """The transform ``name``: a money amount (``money`` applied first) plus the period code read
    from another column (``period_column``, default ``salaryType``), mapped by ``periods`` (code ->
    canonical PayPeriod, anything else ``OTHER``). With ``configurable`` a mapping may replace
    ``periods`` with its own table (a ``periods`` parameter)."""

    def apply(values: pd.Series, params: Mapping[str, Any], ctx: TransformContext) -> Outcome:
        column = str(params.get("period_column", "salaryType"))
        table = params.get("periods", periods) if configurable else periods
        if not isinstance(table, Mapping):
            raise TransformParamError(
                f"{name}: periods must map salaryType codes to HOUR/DAY/WEEK/MONTH/YEAR"
            )
        codes = {str(k): str(v) for k, v in table.items()}
        try:
            period_values = ctx.column(column).to_numpy(dtype=object)
        except KeyError:
            raise TransformParamError(
                f"{name}: the mapping must read the {column!r} column (list it in custom_fields)"
            ) from None
        amounts = values.to_numpy(dtype=object)
        out = np.full(len(amounts), None, dtype=object)
        errors: np.ndarray | None = None
        for i, (amount, period) in enumerate(zip(amounts, period_values, strict=True)):
            if is_null(amount):
                continue
            if not isinstance(amount, Mapping) or "amount" not in amount:
                if errors is None:
                    errors = np.full(len(amounts), None, dtype=object)
                errors[i] = f"{name}: apply money first (the value is not an amount with a currency)"
                continue
            terms: dict[str, Any] = {"amount": dict(amount)}
            if not is_null(period):
                raw = scalar_text(period).strip()
                terms["pay_period"] = {"value": codes.get(raw, "OTHER"), "raw": raw}
            out[i] = terms
        return outcome(pd.Series(out, index=values.index, dtype=object), errors)

    params = {"period_column": period_note}
    if configurable:
        default = ", ".join(f"{code} {period.lower()}" for code, period in periods.items())
        params["periods"] = f"salaryType code -> HOUR/DAY/WEEK/MONTH/YEAR (default {default})"
    return Transform(name, apply, description, params=params)
