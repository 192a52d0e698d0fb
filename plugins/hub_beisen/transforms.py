"""``beisen_pay_terms``: an offer's ``salary`` + ``salaryType`` as canonical ``PayTerms``.

Beisen's offer fields are not public; the simulator and the default mapping assume
``salaryType`` 1 monthly, 2 yearly, 3 daily, 4 hourly (a mapping may give its own table in the
``periods`` parameter). Chain it after ``money``::

    compensation: {from: salary, transforms: [money, beisen_pay_terms]}

The period column must be read by the mapping (list it in ``custom_fields``), since a
transform only sees the columns its mapping reads.
"""

from __future__ import annotations

from hub.transforms.pay_terms import pay_terms

#: salaryType codes -> canonical PayPeriod (assumed; override with the ``periods`` parameter)
SALARY_TYPES = {"1": "MONTH", "2": "YEAR", "3": "DAY", "4": "HOUR"}

TRANSFORMS = [
    pay_terms(
        "beisen_pay_terms",
        SALARY_TYPES,
        description="Beisen offer pay: a money amount (apply money first) plus salaryType as canonical PayTerms",
        period_note="the column holding salaryType (default salaryType)",
        configurable=True,
    )
]
