"""``moka_pay_terms``: an offer's ``salaryNumber`` + ``salaryType`` as canonical ``PayTerms``.

Moka quotes an offer's pay as an amount and a period code (``salaryType`` 1 hourly, 2 daily,
3 monthly, 4 yearly: ``getOfferInfos``, documented); the canonical ``Offer.compensation`` is a
``PayTerms`` ``{"amount": Money, "pay_period": Coded[PayPeriod]}``. Chain it after ``money``::

    compensation: {from: salaryNumber, transforms: [money, moka_pay_terms]}

The period column must be read by the mapping (list it in ``custom_fields``), since a
transform only sees the columns its mapping reads.
"""

from __future__ import annotations

from hub.transforms.pay_terms import pay_terms

#: Moka's salaryType codes -> canonical PayPeriod
SALARY_TYPES = {"1": "HOUR", "2": "DAY", "3": "MONTH", "4": "YEAR"}

TRANSFORMS = [
    pay_terms(
        "moka_pay_terms",
        SALARY_TYPES,
        description="Moka offer pay: a money amount (apply money first) plus salaryType (1 hour, 2 day, "
        "3 month, 4 year) as canonical PayTerms",
        period_note="the column holding Moka's salaryType (default salaryType)",
    )
]
