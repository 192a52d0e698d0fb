"""Value transforms that mapping files name, registered through ``hub_register_transforms``.

Every transform maps a whole column (a pandas Series) and returns an :class:`Outcome`: new
values over the same index, and per-row error reasons (the row is rejected) and warnings.
Nulls pass through as nulls. Plugins add their own with ``@hub.hookimpl`` on
``hub_register_transforms``; :func:`per_row` turns a function of one value into a transform::

    @hub.hookimpl
    def hub_register_transforms():
        def employee_no(value, params):
            if not value.startswith("E"):
                raise hub.transforms.TransformError("employee_no: must start with E")
            return value.upper()

        return [hub.Transform("employee_no", hub.transforms.per_row(employee_no))]

Built-ins (registered ``trylast``): text (trim, nfkc, upper, lower, split_name, email, regex,
prefix, strip_prefix), dates (date, datetime), numbers (integer, decimal, money, boolean),
choices (enum, lookup), identifiers (id_number, id_birth_date, id_gender, uscc) and phone.
"""

from __future__ import annotations

from hub.hookspecs import hookimpl
from hub.transforms import choices, dates, ids, numbers, phone, text
from hub.transforms.core import (
    Outcome,
    Transform,
    TransformContext,
    TransformError,
    TransformParamError,
    per_row,
)

BUILTIN_TRANSFORMS: tuple[Transform, ...] = (
    *text.TRANSFORMS,
    *dates.TRANSFORMS,
    *numbers.TRANSFORMS,
    *choices.TRANSFORMS,
    *ids.TRANSFORMS,
    *phone.TRANSFORMS,
)


@hookimpl(trylast=True)
def hub_register_transforms() -> list[Transform]:
    return list(BUILTIN_TRANSFORMS)


__all__ = [
    "BUILTIN_TRANSFORMS",
    "Outcome",
    "Transform",
    "TransformContext",
    "TransformError",
    "TransformParamError",
    "hub_register_transforms",
    "per_row",
]
