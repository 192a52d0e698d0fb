"""Offer letters and labour contracts rendered from Jinja2 templates, as HTML and PDF, and sealed.

Templates are searched in ``[contracts] templates_dir`` first, then in hub's built-in
``templates/contracts``: a project overrides a built-in by giving a file the same name. They
run in Jinja2's immutable sandbox with HTML autoescaping, so neither a template nor a value
(a candidate's name typed as ``<script>``) can reach Python or inject markup.

PDF goes through fpdf2 (pure Python). Chinese needs a CJK font, and none ships with hub:
``[contracts] pdf_font`` names a ``.ttf``/``.otf`` file (``fc-list :lang=zh`` lists the ones
installed); without it, documents are HTML only. An e-contract vendor that fills its own
template gets :meth:`DocumentGenerator.vendor_fields` instead.

Every document comes back with the SHA-256 of its bytes and the *clause-set version*: a digest
of the clause rules and of every template's source, so an archived contract says which rules and
wording produced it. :func:`archive_document` seals a document with hub's keyring for storage.
"""

from __future__ import annotations

import hashlib
import html as html_lib
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, Protocol

from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined, TemplateError, select_autoescape
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hub.contracts import law
from hub.contracts.clauses import (
    VENDOR_FIELD_NAMES,
    ClauseSelection,
    ClauseTerms,
    ContractsConfig,
    resolve_terms,
    select_clauses,
)
from hub.errors import HubError
from hub.schema.contract import ContractType
from hub.schema.employment import PayPeriod

if TYPE_CHECKING:
    from hub.crypto import Keyring
    from hub.schema.recruiting import Offer

log = logging.getLogger(__name__)

DocumentKind = Literal["offer_letter", "labour_contract"]
TEMPLATES: dict[str, str] = {
    "offer_letter": "offer_letter.html.j2",
    "labour_contract": "labour_contract.html.j2",
}
TITLES = {"offer_letter": "录用通知书", "labour_contract": "劳动合同书"}
#: Where the built-in templates are: in the installed package, or in a source checkout.
_PACKAGE_DIR = Path(__file__).resolve().parent.parent
BUILTIN_TEMPLATE_DIRS = (
    _PACKAGE_DIR / "templates" / "contracts",
    _PACKAGE_DIR.parent / "templates" / "contracts",
)
ARCHIVE_DATA_CLASS = "personal"
_FONT_FAMILY = "hubfont"
_BODY_RE = re.compile(r"<body[^>]*>(.*)</body>", re.S | re.I)
_TAG_RE = re.compile(r"<[^>]+>")
_CN_DIGITS = "零一二三四五六七八九"


class DocumentError(HubError):
    """A document cannot be generated (bad template, bad terms); never carries personal data."""


class PdfFontMissing(DocumentError):
    """PDF output was asked for but no CJK font is configured."""


def _drop_fpdf_glyph_warnings(record: logging.LogRecord) -> bool:
    # fpdf2 lists the characters its font lacks; in a contract they can be a person's name.
    return "missing the following glyphs" not in str(record.msg)


logging.getLogger("fpdf.output").addFilter(_drop_fpdf_glyph_warnings)


# -- the terms a document states -----------------------------------------------------------------


class DocumentTerms(BaseModel):
    """What an offer letter or labour contract states: parties, job, term, probation, pay, clauses.

    ``attributes`` are the job/offer facts the clause rules read (``core_data_access``,
    ``training_cost``, ...); the terms below are facts too, under their own names.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    employer: str = Field(min_length=1, description="Employing legal entity (甲方).")
    employer_address: str | None = None
    employer_representative: str | None = Field(default=None, description="法定代表人或主要负责人.")
    employee_name: str = Field(min_length=1, description="The employee (乙方).")
    employee_id_number: str | None = None
    employee_address: str | None = None
    job_title: str = Field(min_length=1)
    department: str | None = None
    work_location: str | None = None
    duties: list[str] = Field(default_factory=list)
    start_date: date
    contract_type: ContractType = ContractType.FIXED_TERM
    term_months: int | None = Field(default=None, ge=1)
    end_date: date | None = None
    task_description: str | None = Field(default=None, description="The task of a task-based contract.")
    probation_months: int = Field(default=0, ge=0)
    earlier_probation: bool = Field(
        default=False, description="A probation was agreed with this employee before."
    )
    monthly_salary: Decimal = Field(gt=0, description="Contract salary per month, before tax.")
    currency: str = "CNY"
    probation_salary: Decimal | None = Field(default=None, gt=0, description="Monthly pay during probation.")
    pay_day: int | None = Field(
        default=None, ge=1, le=31, description="Salary paid by this day of each month."
    )
    working_hours: str = "标准工时制"
    benefits: list[str] = Field(default_factory=list)
    offer_valid_until: date | None = None
    contract_number: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _term(self) -> DocumentTerms:
        if self.contract_type in (ContractType.FIXED_TERM, ContractType.DISPATCH):
            if self.term_months is None and self.end_date is None:
                raise ValueError("a fixed-term contract needs term_months or end_date")
            if self.end_date is not None:
                months = law.term_months_between(self.start_date, self.end_date)
                if self.term_months is not None and months != self.term_months:
                    raise ValueError("end_date does not end a term of term_months from start_date")
                self.term_months = months
            else:
                self.end_date = law.term_end(self.start_date, self.term_months or 0)
        elif self.contract_type is ContractType.OPEN_ENDED:
            if self.end_date is not None or self.term_months is not None:
                raise ValueError("an open-ended contract has no end_date or term_months")
        elif self.end_date is not None and self.end_date < self.start_date:
            raise ValueError("end_date is before start_date")
        return self

    @property
    def probation_end(self) -> date | None:
        return law.term_end(self.start_date, self.probation_months) if self.probation_months else None

    def facts(self) -> dict[str, Any]:
        """What clause rules see: the attributes, and the terms under their own names."""
        facts: dict[str, Any] = dict(self.attributes)
        facts.update(
            job_title=self.job_title,
            department=self.department,
            work_location=self.work_location,
            contract_type=self.contract_type.value,
            term_months=self.term_months,
            probation_months=self.probation_months,
            monthly_salary=self.monthly_salary,
        )
        return facts

    @classmethod
    def from_offer(cls, offer: Offer, *, employer: str, employee_name: str, **terms: Any) -> DocumentTerms:
        """Terms from a canonical Offer: title, start, contract type/term, probation and monthly pay."""
        if offer.start_date is None or offer.compensation is None:
            raise DocumentError("the offer needs a start_date and a compensation to be written up")
        pay = offer.compensation
        period = pay.pay_period.value if pay.pay_period else PayPeriod.MONTH
        if period is PayPeriod.MONTH:
            monthly = pay.amount.amount
        elif period is PayPeriod.YEAR:
            monthly = (pay.amount.amount / 12).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        else:
            raise DocumentError(
                f"offer pay is quoted per {period.value}; documents need a monthly or yearly amount"
            )
        values: dict[str, Any] = {
            "employer": employer,
            "employee_name": employee_name,
            "job_title": offer.job_title or "",
            "start_date": offer.start_date,
            "monthly_salary": monthly,
            "currency": pay.amount.currency,
            "probation_months": offer.probation_months or 0,
        }
        if offer.contract_type is not None:
            values["contract_type"] = offer.contract_type.value
        if offer.contract_term_months is not None:
            values["term_months"] = offer.contract_term_months
        values.update(terms)
        return cls.model_validate(values)


def validation_problems(exc: ValidationError) -> list[str]:
    """A pydantic error as ``field: message`` lines, without the offending values (they may be PII)."""
    return [f"{'.'.join(str(p) for p in err['loc']) or '(terms)'}: {err['msg']}" for err in exc.errors()]


def check_terms(terms: DocumentTerms, config: ContractsConfig) -> None:
    """The statutory checks every offer letter and contract passes: probation (art. 19) and its pay (art. 20)."""
    law.check_probation(
        terms.contract_type,
        terms.term_months,
        terms.probation_months,
        earlier_probation=terms.earlier_probation,
    )
    if terms.probation_months:
        law.check_probation_pay(
            terms.monthly_salary,
            terms.probation_salary,
            min_ratio=config.probation_pay_min_ratio,
            minimum_wage=config.minimum_monthly_wage,
        )


# -- results ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClauseSetVersion:
    """Which clause rules and template wording produced a document (recorded with it)."""

    id: str
    rules_sha256: str
    templates: Mapping[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "rules_sha256": self.rules_sha256, "templates": dict(self.templates)}


@dataclass(frozen=True)
class RenderedDocument:
    """One rendering of a document, with the SHA-256 of exactly these bytes."""

    kind: str
    media_type: str
    content: bytes
    sha256: str

    @classmethod
    def of(cls, kind: str, media_type: str, content: bytes) -> RenderedDocument:
        return cls(kind, media_type, content, hashlib.sha256(content).hexdigest())

    @property
    def extension(self) -> str:
        return "pdf" if self.media_type == "application/pdf" else "html"


@dataclass(frozen=True)
class GeneratedDocument:
    """An offer letter or contract: its HTML, its PDF when a font is configured, and its provenance."""

    kind: str
    html: RenderedDocument
    pdf: RenderedDocument | None
    clause_set: ClauseSetVersion
    clauses: tuple[ClauseTerms, ...]
    document_date: date

    @property
    def primary(self) -> RenderedDocument:
        """The PDF when there is one (what gets signed and archived), else the HTML."""
        return self.pdf or self.html

    @property
    def sha256(self) -> str:
        return self.primary.sha256


# -- formatting helpers for templates ---------------------------------------------------------------


def money(value: Any) -> str:
    """``20000`` -> ``20,000.00``."""
    amount = Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"{amount:,.2f}"


def cn_date(value: date | None) -> str:
    """``2025-03-01`` -> ``2025年3月1日``."""
    return "" if value is None else f"{value.year}年{value.month}月{value.day}日"


def cn_number(value: int) -> str:
    """Article numbers in Chinese: 1 -> 一, 10 -> 十, 12 -> 十二, 20 -> 二十, 35 -> 三十五."""
    if not 0 < value < 100:
        return str(value)
    tens, ones = divmod(value, 10)
    text = ("" if tens == 1 else _CN_DIGITS[tens]) + "十" if tens else ""
    return text + (_CN_DIGITS[ones] if ones else "")


# -- the generator ----------------------------------------------------------------------------------


class ClauseVersionRecorder(Protocol):
    """Keeps the clause-set versions documents are made with (:class:`hub.contracts.history.ClauseHistory`)."""

    def record(self, version: ClauseSetVersion, config: ContractsConfig) -> object: ...


class DocumentGenerator:
    """Renders documents under one ``[contracts]`` configuration (templates, clause rules, fonts).

    With a ``recorder``, the clause-set version is recorded before any document is made with it,
    so every document's version can be traced to its rules.
    """

    def __init__(
        self, config: ContractsConfig | None = None, *, recorder: ClauseVersionRecorder | None = None
    ) -> None:
        self.config = config or ContractsConfig()
        self.recorder = recorder
        folders = [str(d) for d in BUILTIN_TEMPLATE_DIRS if d.is_dir()]
        if self.config.templates_dir is not None:
            folders.insert(0, str(self.config.templates_dir))
        if not folders:
            raise DocumentError("no contract templates found (set [contracts] templates_dir)")
        self.env = ImmutableSandboxedEnvironment(
            loader=ChoiceLoader([FileSystemLoader(folder) for folder in folders]),
            autoescape=select_autoescape(
                enabled_extensions=("html", "htm", "xml", "html.j2", "htm.j2"),
                default_for_string=True,
                default=True,
            ),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self.env.filters.update(money=money, cn_date=cn_date, cn_number=cn_number, percent=law.percent)

    def clause_set_version(self) -> ClauseSetVersion:
        """Digest of the clause rules and of every template the loader can see (first match per name)."""
        templates: dict[str, str] = {}
        for name in sorted(self.env.list_templates(filter_func=lambda n: n.endswith(".j2"))):
            source, _, _ = self.env.loader.get_source(self.env, name)  # type: ignore[union-attr]
            templates[name] = hashlib.sha256(source.encode()).hexdigest()
        rules = self.config.rules_digest()
        combined = hashlib.sha256(
            (rules + "".join(f"\n{n}={h}" for n, h in templates.items())).encode()
        ).hexdigest()
        return ClauseSetVersion(
            id=f"cs-{combined[:16]}", rules_sha256=rules, templates=MappingProxyType(templates)
        )

    def version_in_use(self) -> ClauseSetVersion:
        """The clause-set version a document is about to carry, recorded first (with a recorder)."""
        version = self.clause_set_version()
        if self.recorder is not None:
            self.recorder.record(version, self.config)
        return version

    def select(self, terms: DocumentTerms) -> ClauseSelection:
        """The clauses the rules choose for these terms (no checks: see :meth:`prepare`)."""
        return select_clauses(self.config, terms.facts())

    def prepare(self, terms: DocumentTerms) -> list[ClauseTerms]:
        """Run the statutory checks and work out the chosen clauses' terms; raises ContractRuleError."""
        check_terms(terms, self.config)
        selection = self.select(terms)
        return resolve_terms(
            selection, terms.facts(), monthly_salary=terms.monthly_salary, config=self.config
        )

    def context(
        self, kind: str, terms: DocumentTerms, clauses: list[ClauseTerms], version: ClauseSetVersion, on: date
    ) -> dict[str, Any]:
        return {
            "doc": {
                "kind": kind,
                "title": TITLES[kind],
                "date": on,
                "number": terms.contract_number,
                "clause_set_version": version.id,
            },
            "employer": {
                "name": terms.employer,
                "address": terms.employer_address,
                "representative": terms.employer_representative,
            },
            "employee": {
                "name": terms.employee_name,
                "id_number": terms.employee_id_number,
                "address": terms.employee_address,
            },
            "job": {
                "title": terms.job_title,
                "department": terms.department,
                "location": terms.work_location,
                "duties": list(terms.duties),
            },
            "contract": {
                "type": terms.contract_type.value,
                "type_label": law.CONTRACT_TYPE_LABELS[terms.contract_type],
                "term_months": terms.term_months,
                "start_date": terms.start_date,
                "end_date": terms.end_date,
                "task_description": terms.task_description,
                "probation_months": terms.probation_months,
                "probation_end": terms.probation_end,
            },
            "pay": {
                "monthly_salary": terms.monthly_salary,
                "probation_salary": terms.probation_salary or terms.monthly_salary,
                "currency": terms.currency,
                "pay_day": terms.pay_day,
                "probation_pay_min_ratio": self.config.probation_pay_min_ratio,
            },
            "working_hours": terms.working_hours,
            "benefits": list(terms.benefits),
            "offer": {"valid_until": terms.offer_valid_until},
            "clauses": [
                {
                    "name": c.name,
                    "kind": c.kind,
                    "title": c.title,
                    "template": c.template,
                    "terms": dict(c.terms),
                    "rule": c.clause.rule,
                }
                for c in clauses
            ],
        }

    def render_html(self, kind: str, context: Mapping[str, Any]) -> str:
        if kind not in TEMPLATES:
            raise DocumentError(f"unknown document kind {kind!r} (known: {', '.join(TEMPLATES)})")
        try:
            return self.env.get_template(TEMPLATES[kind]).render(dict(context))
        except TemplateError as exc:
            name, lineno = getattr(exc, "name", None), getattr(exc, "lineno", None)
            where = f" ({name}:{lineno})" if name and lineno else ""
            raise DocumentError(
                f"template {TEMPLATES[kind]} failed{where}: {exc.message or type(exc).__name__}"
            ) from exc

    def generate(
        self,
        kind: str,
        terms: DocumentTerms,
        *,
        document_date: date | None = None,
        pdf: bool | None = None,
    ) -> GeneratedDocument:
        """Check the terms, choose the clauses, render HTML (and PDF: always if ``pdf``, when a font
        is configured if ``pdf`` is None). Raises ContractRuleError when the law refuses the terms."""
        on = document_date or date.today()
        clauses = self.prepare(terms)
        version = self.version_in_use()
        html_text = self.render_html(kind, self.context(kind, terms, clauses, version, on))
        html_doc = RenderedDocument.of(kind, "text/html; charset=utf-8", html_text.encode())
        pdf_doc = None
        want_pdf = pdf if pdf is not None else self.config.pdf_font is not None
        if want_pdf:
            if self.config.pdf_font is None:
                raise PdfFontMissing(
                    "PDF output needs a CJK font: set [contracts] pdf_font to a .ttf/.otf file "
                    "(fc-list :lang=zh lists installed ones); HTML was rendered"
                )
            content = html_to_pdf(
                html_text,
                self.config.pdf_font,
                self.config.pdf_fallback_fonts,
                title=TITLES[kind],
                created=datetime.combine(on, time(0, 0), tzinfo=UTC),
            )
            pdf_doc = RenderedDocument.of(kind, "application/pdf", content)
        log.info("rendered %s (%d clauses, clause set %s)", kind, len(clauses), version.id)
        return GeneratedDocument(kind, html_doc, pdf_doc, version, tuple(clauses), on)

    def vendor_fields(self, terms: DocumentTerms, *, document_date: date | None = None) -> dict[str, str]:
        """The document's fields as strings, for an e-contract vendor's own template (control fill).

        Keys are hub's names (:data:`VENDOR_FIELD_NAMES`), or the vendor's where ``[contracts.vendor_fields]``
        maps them. The same checks run as for :meth:`generate`. The values are personal data.
        """
        on = document_date or date.today()
        clauses = self.prepare(terms)
        fields = document_fields(terms, clauses, self.version_in_use(), on)
        if not self.config.vendor_fields:
            return fields
        return {vendor_key: fields[ours] for vendor_key, ours in self.config.vendor_fields.items()}


def document_fields(
    terms: DocumentTerms, clauses: list[ClauseTerms], version: ClauseSetVersion, on: date
) -> dict[str, str]:
    """Every field of :data:`VENDOR_FIELD_NAMES`, formatted as text ("" when not applicable)."""

    def text(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, Decimal):
            return f"{value.quantize(Decimal('0.01')):f}"
        return str(value)

    by_kind = {c.kind: c.terms for c in clauses}
    nc, conf, sp = (
        by_kind.get("non_compete", {}),
        by_kind.get("confidentiality", {}),
        by_kind.get("service_period", {}),
    )
    fields = {
        "employer": terms.employer,
        "employer_address": terms.employer_address,
        "employer_representative": terms.employer_representative,
        "employee_name": terms.employee_name,
        "employee_id_number": terms.employee_id_number,
        "employee_address": terms.employee_address,
        "job_title": terms.job_title,
        "department": terms.department,
        "work_location": terms.work_location,
        "duties": "；".join(terms.duties),
        "contract_number": terms.contract_number,
        "contract_type": law.CONTRACT_TYPE_LABELS[terms.contract_type],
        "term_months": terms.term_months,
        "start_date": terms.start_date,
        "end_date": terms.end_date,
        "probation_months": terms.probation_months,
        "probation_end_date": terms.probation_end,
        "monthly_salary": terms.monthly_salary,
        "probation_salary": terms.probation_salary or terms.monthly_salary,
        "currency": terms.currency,
        "pay_day": terms.pay_day,
        "working_hours": terms.working_hours,
        "benefits": "；".join(terms.benefits),
        "clauses": "；".join(c.title for c in clauses),
        "confidentiality_post_employment_months": conf.get("post_employment_months"),
        "non_compete_term_months": nc.get("term_months"),
        "non_compete_monthly_compensation": nc.get("monthly_compensation"),
        "service_period_months": sp.get("months"),
        "training_cost": sp.get("training_cost"),
        "liquidated_damages_cap": sp.get("liquidated_damages"),
        "document_date": on,
        "clause_set_version": version.id,
    }
    assert set(fields) == set(VENDOR_FIELD_NAMES), "VENDOR_FIELD_NAMES and document_fields disagree"
    return {name: text(fields[name]) for name in VENDOR_FIELD_NAMES}


# -- PDF ------------------------------------------------------------------------------------------


@cache
def _font_chars(path: Path) -> frozenset[int]:
    from fontTools.ttLib import TTFont

    with TTFont(str(path), lazy=True) as font:
        return frozenset(font.getBestCmap() or {})


def visible_chars(body: str) -> set[str]:
    """The characters a PDF of this HTML shows: what its fonts must cover."""
    text = html_lib.unescape(_TAG_RE.sub(" ", body))
    chars = {c for c in text if not c.isspace()}
    if "<li" in body.lower():
        chars.add("•")  # fpdf2's bullet for <ul>
    return chars


def html_to_pdf(
    html_text: str,
    font: Path,
    fallbacks: tuple[Path, ...] = (),
    *,
    title: str,
    created: datetime,
) -> bytes:
    """The ``<body>`` of a rendered document as an A4 PDF (fpdf2's HTML subset), fonts embedded.

    Refuses a font that lacks glyphs for the document's characters rather than printing blanks;
    the error gives the count only (the characters may spell a name). Same input and date, same bytes.
    """
    from fpdf import FPDF, FontFace
    from fpdf.errors import FPDFException

    match = _BODY_RE.search(html_text)
    body = match.group(1) if match else html_text
    covered: set[int] = set()
    for path in (font, *fallbacks):
        covered |= _font_chars(path)
    missing = {c for c in visible_chars(body) if ord(c) not in covered}
    if missing:
        raise DocumentError(
            f"the PDF fonts lack glyphs for {len(missing)} character(s) of the document; "
            "configure [contracts] pdf_font (or pdf_fallback_fonts) with fonts covering them"
        )
    pdf = FPDF(format="A4")
    pdf.set_creation_date(created)
    pdf.set_title(title)
    pdf.set_creator("hub")
    pdf.set_producer("hub")
    pdf.set_margins(20, 20, 20)
    families = [(_FONT_FAMILY, font)] + [(f"hubfallback{i}", p) for i, p in enumerate(fallbacks)]
    try:
        for family, path in families:
            for style in ("", "B", "I", "BI"):
                pdf.add_font(family, style, str(path))
        if fallbacks:
            pdf.set_fallback_fonts([family for family, _ in families[1:]], exact_match=False)
        pdf.add_page()
        pdf.set_font(_FONT_FAMILY, size=11)
        black = (0, 0, 0)
        pdf.write_html(
            body,
            font_family=_FONT_FAMILY,
            tag_styles={
                "h1": FontFace(color=black, size_pt=18),
                "h2": FontFace(color=black, size_pt=13),
                "h3": FontFace(color=black, size_pt=12),
                "li": FontFace(color=black),
            },
        )
        return bytes(pdf.output())
    except (FPDFException, OSError, ValueError) as exc:
        raise DocumentError(f"PDF rendering failed: {type(exc).__name__}") from exc


def find_cjk_fonts() -> list[Path]:
    """Installed fonts fontconfig says cover Chinese, as ``.ttf``/``.otf`` files fpdf2 can embed."""
    import shutil
    import subprocess

    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return []
    try:
        out = subprocess.run(  # noqa: S603 - fixed arguments, no shell
            [fc_list, ":lang=zh", "file"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    paths = {Path(line.split(":", 1)[0].strip()) for line in out.splitlines() if line.strip()}
    return sorted(p for p in paths if p.suffix.lower() in (".ttf", ".otf"))


# -- archiving ------------------------------------------------------------------------------------


class _HasKeyring(Protocol):
    @property
    def keyring(self) -> Keyring: ...


@dataclass(frozen=True)
class ArchivedDocument:
    """A sealed document and what opening it needs; persist all fields together."""

    document_id: str
    kind: str
    media_type: str
    sha256: str
    sealed: bytes
    clause_set_version: str | None = None


def _keyring_of(source: Keyring | _HasKeyring) -> Keyring:
    from hub.crypto import Keyring

    return source if isinstance(source, Keyring) else source.keyring


def _archive_context(document_id: str, kind: str, sha256: str) -> tuple[str, ...]:
    return ("contract_documents", kind, document_id, sha256)


def archive_document(
    project: Keyring | _HasKeyring,
    content: bytes | RenderedDocument,
    *,
    kind: str | None = None,
    document_id: str | None = None,
    media_type: str = "application/pdf",
    clause_set_version: str | None = None,
) -> ArchivedDocument:
    """Seal a document with the project's keyring (data class ``personal``) for encrypted storage.

    The ciphertext is bound to the document id, kind and SHA-256: opened with any other, or
    swapped with another document's row, it does not decrypt.
    """
    if isinstance(content, RenderedDocument):
        kind, media_type, data = kind or content.kind, content.media_type, content.content
    else:
        data = content
    if not kind:
        raise DocumentError("archive_document needs the document kind")
    digest = hashlib.sha256(data).hexdigest()
    doc_id = document_id or str(uuid.uuid4())
    keyring = _keyring_of(project)
    sealed = keyring.seal(data, ARCHIVE_DATA_CLASS, *_archive_context(doc_id, kind, digest))
    keyring.flush_counters()
    return ArchivedDocument(doc_id, kind, media_type, digest, sealed, clause_set_version)


def open_archived_document(project: Keyring | _HasKeyring, archived: ArchivedDocument) -> bytes:
    """The document's bytes, checked against its recorded SHA-256."""
    keyring = _keyring_of(project)
    data = keyring.open(
        archived.sealed, *_archive_context(archived.document_id, archived.kind, archived.sha256)
    )
    if hashlib.sha256(data).hexdigest() != archived.sha256:
        raise DocumentError("archived document does not match its SHA-256")
    return data
