"""What the e-contract plugins share: the labour contract of a case, its archive, raw exchanges.

Both ``esign.send_contract`` and ``docusign.send_contract`` do the same before and after the
vendor: turn the onboarding case into :class:`~hub.contracts.documents.DocumentTerms`, render
the labour contract with :mod:`hub.contracts` (the ``[contracts]`` clause rules applied, the
statutory checks run first: a probation that breaks art. 19 fails the task for good, with the
article named), and, once the vendor says the contract is signed, seal the signed file with
:func:`~hub.contracts.documents.archive_document` into the task's result (which hub keeps
sealed again, bound to the case and task). ``hub_docusign`` imports this module from here.

Case fields read (canonical names, as ``hub onboarding start`` fills them): ``name``,
``id_number``, ``job_title``, ``department``, ``work_location``, ``start_date``,
``contract_type``, ``contract_term_months`` (or ``contract_end_date``), ``probation_months``,
``probation_salary``, ``salary`` (a number per month, or the offer's pay terms
``{"amount": {"amount", "currency"}, "pay_period"}``), ``legal_entity``, ``earlier_probation``,
``contract_attributes`` (facts the clause rules read). A task's ``options`` (and, for
``employer``, the connector's config) may add ``employer``, ``employer_address``,
``employer_representative``, ``duties``, ``benefits``, ``working_hours``, ``pay_day``,
``term_months`` (when the case has none), ``contract_type``, ``attributes`` and ``document_date``.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, ClassVar

import requests
from airbyte_cdk.models import SyncMode
from airbyte_cdk.sources.streams import Stream
from pydantic import ValidationError

from hub.contracts.clauses import ContractsConfig
from hub.contracts.documents import (
    ArchivedDocument,
    DocumentError,
    DocumentGenerator,
    DocumentTerms,
    GeneratedDocument,
    archive_document,
    validation_problems,
)
from hub.contracts.law import ContractRuleError
from hub.oa.actions import case_text
from hub.onboarding import ActionContext, ActionFailed, TaskResult
from hub.vendor_http import CONNECTION_LOST, VendorClient

log = logging.getLogger("hub.econtract")

JSON_SCHEMA = "http://json-schema.org/draft-07/schema#"
#: the archived document's kind (hub.contracts' name for it)
CONTRACT_KIND = "labour_contract"
#: the task result key holding the sealed signed contract
SIGNED_DOCUMENT = "signed_document"
SALARY_FIELDS = ("monthly_salary", "salary", "base_salary", "offer_salary")
_OPTIONAL_TEXT = (
    "employer_address",
    "employer_representative",
    "working_hours",
    "contract_number",
    "work_location",
)


# -- the contract's terms ------------------------------------------------------------------------


def coded(value: Any) -> str:
    """A canonical ``Coded`` value (``{"value": "FIXED_TERM", "raw": ...}``) or plain text."""
    if isinstance(value, Mapping):
        value = value.get("value")
    return str(value).strip() if value not in (None, "") else ""


def money(value: Any) -> Decimal | None:
    """A decimal amount from a number or numeric text (``"20,000"``); None when it is not one."""
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value).replace(",", "").strip())
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def monthly_pay(value: Any) -> tuple[Decimal, str] | None:
    """(amount per month, currency) from a monthly figure or an offer's pay terms.

    Pay quoted per year is divided by 12; per hour, day or week cannot be written into a
    monthly contract and is refused (None).
    """
    if isinstance(value, Mapping):
        amount_field = value.get("amount")
        currency = "CNY"
        if isinstance(amount_field, Mapping):
            currency = str(amount_field.get("currency") or "CNY")
            amount_field = amount_field.get("amount")
        amount = money(amount_field)
        period = coded(value.get("pay_period")).upper() or "MONTH"
        if amount is None:
            return None
        if period == "YEAR":
            return (amount / 12).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP), currency
        return (amount, currency) if period == "MONTH" else None
    amount = money(value)
    return (amount, "CNY") if amount is not None else None


def _text_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [part.strip() for part in value.replace("；", ";").split(";") if part.strip()]
    if isinstance(value, Iterable) and not isinstance(value, Mapping):
        return [str(v).strip() for v in value if str(v).strip()]
    return []


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def contract_terms(ctx: ActionContext, employer_default: str = "") -> DocumentTerms:
    """The labour contract's terms from the case (and the task's options); permanent failure when
    something the contract must state is missing or malformed (the fields are named, not the values)."""
    case, options = ctx.case, ctx.options
    pay = next(
        (found for name in SALARY_FIELDS if (found := monthly_pay(case.get(name))) is not None),
        None,
    )
    if pay is None:
        raise ActionFailed(
            "the case has no monthly salary (salary per month or year) for the labour contract",
            permanent=True,
        )
    values: dict[str, Any] = {
        "employer": case_text(case, "legal_entity", "employer")
        or str(options.get("employer") or employer_default or ""),
        "employee_name": case_text(case, "name", "full_name", "legal_name"),
        "employee_id_number": case_text(case, "id_number") or None,
        "job_title": case_text(case, "job_title", "title"),
        "department": case_text(case, "department_name", "department") or None,
        "duties": _text_list(options.get("duties") or case.get("duties")),
        "benefits": _text_list(options.get("benefits") or case.get("benefits")),
        "start_date": case_text(case, "start_date", "hire_date"),
        "contract_type": coded(case.get("contract_type"))
        or str(options.get("contract_type") or "FIXED_TERM"),
        "term_months": case.get("contract_term_months") or options.get("term_months"),
        "end_date": case_text(case, "contract_end_date") or None,
        "probation_months": case.get("probation_months") or options.get("probation_months") or 0,
        "earlier_probation": bool(case.get("earlier_probation")),
        "monthly_salary": pay[0],
        "currency": pay[1],
        "probation_salary": money(case.get("probation_salary")),
        "pay_day": options.get("pay_day"),
        "attributes": {**_mapping(options.get("attributes")), **_mapping(case.get("contract_attributes"))},
    }
    address = case.get("address")
    if isinstance(address, str) and address.strip():
        values["employee_address"] = address.strip()
    for name in _OPTIONAL_TEXT:
        text = case_text(case, name) or str(options.get(name) or "")
        if text:
            values[name] = text
    if values["contract_type"] == "OPEN_ENDED":
        values["term_months"] = values["end_date"] = None
    try:
        return DocumentTerms.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(validation_problems(exc))
        raise ActionFailed(
            f"the labour contract's terms are incomplete: {problems}", permanent=True
        ) from None


def document_date(ctx: ActionContext) -> date | None:
    """The date printed on the contract: ``options.document_date``, else today."""
    raw = str(ctx.options.get("document_date") or "")
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        raise ActionFailed("options.document_date is not a date (YYYY-MM-DD)", permanent=True) from None


def generator_of(ctx: ActionContext) -> DocumentGenerator:
    """A generator under the project's ``[contracts]`` rules (built-in defaults without a project);
    with a project, the clause-set version is recorded in its clause history before the contract is made."""
    from hub.contracts.history import project_generator

    with contract_failures():
        if ctx.project is None:
            return DocumentGenerator(ContractsConfig())
        return project_generator(ctx.project)


@contextmanager
def contract_failures() -> Iterator[None]:
    """The law refusing the terms, or a broken template, fails the task for good (rule named)."""
    try:
        yield
    except ContractRuleError as exc:
        # "劳动合同法第十九条: a 2-year contract allows at most 2 months of probation, got 3"
        raise ActionFailed(str(exc), permanent=True) from None
    except DocumentError as exc:
        raise ActionFailed(f"the labour contract cannot be rendered: {exc}", permanent=True) from None


def render_contract(ctx: ActionContext, employer_default: str = "") -> GeneratedDocument:
    """The labour contract, checked and rendered (PDF when ``[contracts] pdf_font`` is set)."""
    terms = contract_terms(ctx, employer_default)
    generator = generator_of(ctx)
    with contract_failures():
        return generator.generate(CONTRACT_KIND, terms, document_date=document_date(ctx))


def contract_fields(ctx: ActionContext, employer_default: str = "") -> tuple[dict[str, str], str]:
    """The contract's fields as text (for a vendor's own template) and the clause-set version.

    The same statutory checks run as for :func:`render_contract`.
    """
    terms = contract_terms(ctx, employer_default)
    generator = generator_of(ctx)
    with contract_failures():
        fields = generator.vendor_fields(terms, document_date=document_date(ctx))
    return fields, generator.clause_set_version().id


# -- the signed contract -------------------------------------------------------------------------


def archive_signed(
    ctx: ActionContext, content: bytes, media_type: str, *, clause_set_version: str | None
) -> dict[str, Any]:
    """Seal the signed contract (``archive_document``) as task-result data, with its SHA-256."""
    if ctx.project is None:
        raise ActionFailed("archiving the signed contract needs hub's project (its keyring)")
    if not content:
        raise ActionFailed("the vendor returned an empty signed document")
    archived = archive_document(
        ctx.project,
        content,
        kind=CONTRACT_KIND,
        document_id=ctx.idempotency_key,
        media_type=media_type,
        clause_set_version=clause_set_version,
    )
    return {
        "document_id": archived.document_id,
        "kind": archived.kind,
        "media_type": archived.media_type,
        "sha256": archived.sha256,
        "sealed": base64.b64encode(archived.sealed).decode(),
        "clause_set_version": archived.clause_set_version,
    }


def archived_contract(result: TaskResult | Mapping[str, Any]) -> ArchivedDocument:
    """The sealed signed contract a ``*.send_contract`` task left in its result.

    Open it with :func:`hub.contracts.documents.open_archived_document` (checked against its
    SHA-256).
    """
    data = result.data if isinstance(result, TaskResult) else result
    stored = data.get(SIGNED_DOCUMENT)
    if not isinstance(stored, Mapping):
        raise KeyError("the task result holds no signed contract")
    try:
        sealed = base64.b64decode(str(stored["sealed"]), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the archived contract is not valid base64") from None
    return ArchivedDocument(
        document_id=str(stored["document_id"]),
        kind=str(stored["kind"]),
        media_type=str(stored["media_type"]),
        sha256=str(stored["sha256"]),
        sealed=sealed,
        clause_set_version=stored.get("clause_set_version"),
    )


def own_data(ctx: ActionContext) -> Mapping[str, Any]:
    """What this task recorded when it started waiting (unsigned hash, clause-set version)."""
    own = ctx.results.get(ctx.task)
    return own.data if own is not None else {}


def media_type_of(response: requests.Response, content: bytes) -> str:
    """The downloaded file's media type: the vendor's header, or sniffed from the bytes."""
    header = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if content.startswith(b"%PDF"):
        return "application/pdf"
    return header if header and header != "application/octet-stream" else "application/octet-stream"


# -- a body sent as exact bytes ------------------------------------------------------------------


def exchange_bytes(
    client: VendorClient[Any],
    operation: str,
    method: str,
    url: str,
    *,
    body: bytes | None,
    headers: Callable[[], Mapping[str, str]],
    params: Mapping[str, Any] | None = None,
    idempotent: bool,
    retry_http_429: bool = False,
) -> requests.Response:
    """One HTTP exchange whose body is sent as these exact bytes (signed bodies, forms, uploads).

    The same policy as :meth:`VendorClient._exchange`: timeouts and 5xx retried with backoff when
    the call is idempotent, and an unknown outcome (look before sending again) when it is not.
    ``headers`` is called for each attempt, so a signed timestamp is fresh on every retry.
    """
    errors, settings = client.errors, client.settings
    for attempt in range(1, settings.max_attempts + 1):
        try:
            response = client.session.request(
                method,
                url,
                params=dict(params or {}),
                data=body,
                headers=dict(headers()),
                timeout=settings.timeout,
            )
        except CONNECTION_LOST:
            if not idempotent:
                raise errors.outcome_unknown(
                    operation, None, "the request timed out or the connection dropped"
                ) from None
            client._pause(attempt, operation, "timeout")
            continue
        status = response.status_code
        if status >= 500 or (status == 429 and retry_http_429):
            if status >= 500 and not idempotent:
                raise errors.outcome_unknown(
                    operation, errors.code_of_status(status), "server error after the request was sent"
                )
            client._pause(attempt, operation, f"HTTP {status}")
            continue
        return response
    raise errors.unavailable(operation, None, f"no answer after {settings.max_attempts} attempts")


def create_once(find: Callable[[], str | None], create: Callable[[], str], lost: type[Exception]) -> str:
    """Create unless ``find`` sees the object already; after a lost answer, look before resending.

    For vendors with no idempotency token: hub's reference travels in the object, ``find``
    looks for it. A lost answer (``lost``) means the create may or may not have happened.
    """
    existing = find()
    if existing:
        return existing
    try:
        return create()
    except lost:
        found = find()
        if found:
            return found
        return create()


def wait_until(
    ready: Callable[[], bool], *, attempts: int, interval: float, sleep: Callable[[float], None]
) -> bool:
    """Poll ``ready`` up to ``attempts`` times, ``interval`` seconds apart (the vendor converting a file)."""
    for attempt in range(attempts):
        if ready():
            return True
        if attempt + 1 < attempts:
            sleep(interval)
    return False


def epoch_ms(clock: Callable[[], float] = time.time) -> int:
    return int(clock() * 1000)


# -- Airbyte streams over a client ---------------------------------------------------------------


class RecordStream(Stream):
    """A full-refresh stream with a fixed schema; subclasses say what they read in :meth:`records`."""

    properties: ClassVar[Mapping[str, Any]]

    def __init__(self, client: Any, config: Mapping[str, Any]) -> None:
        self.client = client
        self.config = config

    def get_json_schema(self) -> Mapping[str, Any]:  # type: ignore[override]  # fixed: nothing to cache
        return {"$schema": JSON_SCHEMA, "type": "object", "properties": dict(self.properties)}

    def read_records(
        self,
        sync_mode: SyncMode,
        cursor_field: list[str] | None = None,
        stream_slice: Mapping[str, Any] | None = None,
        stream_state: Mapping[str, Any] | None = None,
    ) -> Iterable[Mapping[str, Any]]:
        return self.records()

    def records(self) -> Iterable[Mapping[str, Any]]:
        raise NotImplementedError
