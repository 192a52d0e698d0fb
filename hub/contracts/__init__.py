"""Labour contracts: clause rules, statutory checks, offer/contract documents, expiry reminders.

Pure building blocks of the onboarding flow (offer accepted -> HR master, OA account, payroll,
e-contract signed): :mod:`hub.contracts.clauses` chooses clauses from ``[contracts]`` rules,
:mod:`hub.contracts.law` holds the checks of the PRC Labour Contract Law, and
:mod:`hub.contracts.documents` renders and seals the documents. Nothing here talks to a vendor.
"""
