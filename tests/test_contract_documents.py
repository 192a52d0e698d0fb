"""Offer letters and labour contracts: templates, checks, PDF, vendor fields, archiving, CLI."""

from __future__ import annotations

import hashlib
import io
import os
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from fontTools.fontBuilder import FontBuilder
from fontTools.pens.ttGlyphPen import TTGlyphPen
from pypdf import PdfReader
from typer.testing import CliRunner

from hub.cli import app
from hub.contracts import law
from hub.contracts.clauses import VENDOR_FIELD_NAMES, ContractsConfig, contracts_config
from hub.contracts.documents import (
    DocumentError,
    DocumentGenerator,
    DocumentTerms,
    PdfFontMissing,
    archive_document,
    open_archived_document,
    visible_chars,
)
from hub.crypto import DecryptionError, Keyring
from hub.schema.recruiting import Offer

RULES: dict[str, Any] = {
    "clauses": [
        {
            "name": "confidentiality",
            "when": {"any": [{"core_data_access": True}, {"classified_project": True}]},
            "post_employment_months": 24,
        },
        {
            "name": "non_compete",
            "when": {"job_level": {"gte": 7}},
            "term_months": 12,
            "compensation_ratio": 0.3,
        },
        {"name": "service_period", "when": {"training_funded": True}, "months": 36},
        {"name": "ip", "title": "知识产权归属", "text": "乙方在职期间完成的职务作品归甲方所有。"},
    ]
}
ID_NUMBER = "11010519491231002X"


def terms(**overrides: Any) -> DocumentTerms:
    values: dict[str, Any] = {
        "employer": "示例科技有限公司",
        "employee_name": "张三",
        "employee_id_number": ID_NUMBER,
        "job_title": "高级工程师",
        "department": "研发部",
        "work_location": "上海",
        "duties": ["负责后端开发 & 运维", "编写技术文档"],
        "start_date": date(2025, 3, 1),
        "term_months": 36,
        "probation_months": 6,
        "monthly_salary": Decimal("30000"),
        "probation_salary": Decimal("24000"),
        "pay_day": 10,
        "benefits": ["补充医疗保险", "年度体检"],
        "offer_valid_until": date(2025, 2, 20),
        "attributes": {
            "core_data_access": True,
            "job_level": 8,
            "training_funded": True,
            "training_cost": 36000,
        },
    }
    values.update(overrides)
    return DocumentTerms.model_validate(values)


def build_font(path: Path, chars: set[str]) -> Path:
    """A TrueType font with a box glyph for each of ``chars``: a CJK font without shipping one."""
    chars = set(chars) | {" "}
    names = {c: f"uni{ord(c):04X}" for c in sorted(chars)}
    order = [".notdef", *names.values()]
    builder = FontBuilder(1000, isTTF=True)
    builder.setupGlyphOrder(order)
    builder.setupCharacterMap({ord(c): n for c, n in names.items()})

    def glyph(empty: bool) -> Any:
        pen = TTGlyphPen(None)
        if not empty:
            pen.moveTo((100, 0))
            pen.lineTo((100, 700))
            pen.lineTo((900, 700))
            pen.lineTo((900, 0))
            pen.closePath()
        return pen.glyph()

    builder.setupGlyf({n: glyph(n in (".notdef", "uni0020")) for n in order})
    builder.setupHorizontalMetrics({n: (1000, 100) for n in order})
    builder.setupHorizontalHeader(ascent=880, descent=-120)
    builder.setupNameTable({"familyName": "HubTestCJK", "styleName": "Regular"})
    builder.setupOS2(sTypoAscender=880, sTypoDescender=-120, usWinAscent=880, usWinDescent=120)
    builder.setupPost()
    builder.save(str(path))
    return path


def font_for(generator: DocumentGenerator, kind: str, doc_terms: DocumentTerms, path: Path) -> Path:
    html = generator.generate(kind, doc_terms, document_date=date(2025, 2, 10), pdf=False).html.content
    return build_font(path, visible_chars(html.decode()))


def with_font(config: ContractsConfig, font: Path) -> ContractsConfig:
    from dataclasses import replace

    return replace(config, pdf_font=font)


# -- rendering ------------------------------------------------------------------------------------


def test_labour_contract_states_the_terms_and_the_chosen_clauses() -> None:
    generator = DocumentGenerator(contracts_config(RULES))
    doc = generator.generate("labour_contract", terms(), document_date=date(2025, 2, 10))
    assert doc.pdf is None  # no font configured: HTML only
    html = doc.html.content.decode()
    assert doc.html.sha256 == hashlib.sha256(doc.html.content).hexdigest() == doc.sha256
    assert "<h1" in html and "劳动合同书" in html
    assert "本合同为固定期限劳动合同，期限36个月，自2025年3月1日起至2028年2月29日止。" in html
    assert "试用期为6个月，自2025年3月1日起至2025年8月31日止。" in html
    assert "乙方月工资为人民币30,000.00元（税前）" in html
    assert "试用期月工资为人民币24,000.00元" in html
    assert "负责后端开发 &amp; 运维" in html
    # clauses follow the standard articles, numbered on: 第七条 保密条款 ... 第十条 知识产权归属
    assert "第七条 保密条款" in html and "第八条 竞业限制条款" in html
    assert "第九条 服务期条款" in html and "第十条 知识产权归属" in html
    assert "本合同解除或者终止后24个月内有效" in html
    assert "每月人民币9,000.00元" in html  # 30% of the monthly salary
    assert "专项培训费用人民币36,000.00元" in html and "每月人民币1,000.00元" in html
    assert "第十二条 其他" in html
    assert f"条款版本：{doc.clause_set.id}" in html
    assert [c.name for c in doc.clauses] == ["confidentiality", "non_compete", "service_period", "ip"]


def test_a_job_without_core_data_access_gets_no_confidentiality_clause() -> None:
    generator = DocumentGenerator(contracts_config(RULES))
    doc = generator.generate("labour_contract", terms(attributes={}), document_date=date(2025, 2, 10))
    html = doc.html.content.decode()
    assert "保密条款" not in html and "竞业限制" not in html and "服务期" not in html
    assert [c.name for c in doc.clauses] == ["ip"]


def test_offer_letter_lists_the_agreements_to_sign() -> None:
    generator = DocumentGenerator(contracts_config(RULES))
    doc = generator.generate("offer_letter", terms(), document_date=date(2025, 2, 10))
    html = doc.html.content.decode()
    assert "录用通知书" in html and "张三：" in html
    assert "您已被录用为研发部高级工程师" in html
    assert "保密条款：在职期间及离职后24个月内负有保密义务" in html
    assert "竞业限制条款：离职后12个月" in html
    assert "请于2025年2月20日前确认" in html
    assert ID_NUMBER not in html  # an offer letter has no use for the ID number


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (
            {"contract_type": "OPEN_ENDED", "term_months": None},
            "本合同为无固定期限劳动合同，自2025年3月1日起履行。",
        ),
        (
            {
                "contract_type": "TASK_BASED",
                "term_months": None,
                "probation_months": 0,
                "task_description": "完成A系统上线",
            },
            "至下列工作任务完成时止：完成A系统上线。",
        ),
        ({"term_months": None, "end_date": date(2026, 2, 28), "probation_months": 2}, "期限12个月"),
        ({"probation_months": 0}, "本合同不约定试用期。"),
    ],
)
def test_contract_types(overrides: dict[str, Any], fragment: str) -> None:
    doc = DocumentGenerator().generate("labour_contract", terms(**overrides), document_date=date(2025, 2, 10))
    assert fragment in doc.html.content.decode()


def test_terms_that_break_article_19_or_20_are_refused_before_rendering() -> None:
    generator = DocumentGenerator(contracts_config(RULES))
    with pytest.raises(law.ProbationError) as info:
        generator.generate("labour_contract", terms(term_months=24, probation_months=3))
    assert (
        str(info.value) == "劳动合同法第十九条: a 2-year contract allows at most 2 months of probation, got 3"
    )
    with pytest.raises(law.ProbationPayError) as pay:
        generator.generate("offer_letter", terms(probation_salary=Decimal("20000")))
    assert "30000" not in str(pay.value) and "20000" not in str(pay.value)
    with pytest.raises(law.ServicePeriodError):
        generator.generate("labour_contract", terms(attributes={"training_funded": True}))


def test_terms_validation() -> None:
    with pytest.raises(ValueError, match="term_months or end_date"):
        terms(term_months=None)
    with pytest.raises(ValueError, match="does not end a term"):
        terms(end_date=date(2026, 2, 28))
    with pytest.raises(ValueError, match="no end_date"):
        terms(contract_type="OPEN_ENDED")


def test_values_are_escaped_and_templates_are_sandboxed(tmp_path: Path) -> None:
    doc = DocumentGenerator().generate("offer_letter", terms(employee_name="<script>alert(1)</script>"))
    html = doc.html.content.decode()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    (tmp_path / "offer_letter.html.j2").write_text(
        "{{ employee.name.__class__.__mro__[1].__subclasses__() }}", encoding="utf-8"
    )
    sneaky = DocumentGenerator(contracts_config({"templates_dir": str(tmp_path)}))
    with pytest.raises(DocumentError, match=r"offer_letter\.html\.j2 failed.*unsafe"):
        sneaky.generate("offer_letter", terms())


def test_project_templates_override_built_ins_and_change_the_clause_set_version(tmp_path: Path) -> None:
    base = DocumentGenerator(contracts_config(RULES))
    version = base.clause_set_version()
    assert version.id.startswith("cs-")
    assert {"labour_contract.html.j2", "offer_letter.html.j2", "clauses/non_compete.html.j2"} <= set(
        version.templates
    )
    assert DocumentGenerator(contracts_config(RULES)).clause_set_version() == version  # stable

    (tmp_path / "clauses").mkdir()
    (tmp_path / "clauses" / "confidentiality.html.j2").write_text(
        "<p>乙方保守秘密{{ clause.terms.post_employment_months }}个月。</p>", encoding="utf-8"
    )
    custom = DocumentGenerator(contracts_config({**RULES, "templates_dir": str(tmp_path)}))
    custom_version = custom.clause_set_version()
    assert custom_version.id != version.id and custom_version.rules_sha256 == version.rules_sha256
    assert "<p>乙方保守秘密24个月。</p>" in custom.generate("labour_contract", terms()).html.content.decode()

    changed_rules = {"clauses": [{**RULES["clauses"][0], "post_employment_months": 36}]}
    other = DocumentGenerator(contracts_config(changed_rules)).clause_set_version()
    assert other.rules_sha256 != version.rules_sha256 and other.id != version.id


def test_from_offer() -> None:
    offer = Offer.model_validate(
        {
            "start_date": "2025-03-01",
            "job_title": "数据工程师",
            "contract_type": "FIXED_TERM",
            "contract_term_months": 36,
            "probation_months": 6,
            "compensation": {"amount": {"amount": "360000", "currency": "CNY"}, "pay_period": "YEAR"},
        }
    )
    doc_terms = DocumentTerms.from_offer(
        offer, employer="示例科技有限公司", employee_name="李四", attributes={"core_data_access": True}
    )
    assert doc_terms.monthly_salary == Decimal("30000.00") and doc_terms.end_date == date(2028, 2, 29)
    doc = DocumentGenerator(contracts_config(RULES)).generate("offer_letter", doc_terms)
    assert [c.name for c in doc.clauses] == ["confidentiality", "ip"]
    data = offer.model_dump(mode="json")
    data["compensation"]["pay_period"] = "HOUR"
    hourly = Offer.model_validate(data)
    with pytest.raises(DocumentError, match="per HOUR"):
        DocumentTerms.from_offer(hourly, employer="x", employee_name="y")


# -- PDF ------------------------------------------------------------------------------------------


def test_pdf_with_a_cjk_font_is_deterministic_and_carries_the_text(tmp_path: Path) -> None:
    config = contracts_config(RULES)
    font = font_for(DocumentGenerator(config), "labour_contract", terms(), tmp_path / "cjk.ttf")
    generator = DocumentGenerator(with_font(config, font))
    doc = generator.generate("labour_contract", terms(), document_date=date(2025, 2, 10))
    assert doc.pdf is not None and doc.primary is doc.pdf
    assert doc.pdf.content.startswith(b"%PDF-")
    assert doc.sha256 == hashlib.sha256(doc.pdf.content).hexdigest() != doc.html.sha256
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(doc.pdf.content)).pages)
    compact = "".join(text.split())
    assert "劳动合同书" in compact and "张三" in compact and "第七条保密条款" in compact
    assert "2028年2月29日" in compact
    assert "body{" not in compact  # the <head> styles stay out of the PDF
    again = generator.generate("labour_contract", terms(), document_date=date(2025, 2, 10))
    assert again.pdf is not None and again.pdf.sha256 == doc.pdf.sha256


def test_pdf_needs_a_font_and_a_font_with_every_glyph(tmp_path: Path) -> None:
    with pytest.raises(PdfFontMissing, match="pdf_font"):
        DocumentGenerator().generate("offer_letter", terms(), pdf=True)
    assert DocumentGenerator().generate("offer_letter", terms(), pdf=None).pdf is None
    latin_only = build_font(tmp_path / "latin.ttf", set("0123456789abcdefghijklmnopqrstuvwxyz"))
    generator = DocumentGenerator(with_font(ContractsConfig(), latin_only))
    with pytest.raises(DocumentError) as info:
        generator.generate("offer_letter", terms(employee_name="欧阳娜娜"))
    assert "lack glyphs for" in str(info.value) and "欧" not in str(info.value)
    # a fallback font supplies what the main one lacks (Droid Sans Fallback has no Latin digits)
    html = DocumentGenerator().generate("offer_letter", terms(), pdf=False).html.content.decode()
    cjk_only = build_font(tmp_path / "cjk.ttf", {c for c in visible_chars(html) if ord(c) > 0x2000})
    both = DocumentGenerator(
        ContractsConfig(
            pdf_font=cjk_only,
            pdf_fallback_fonts=(build_font(tmp_path / "ascii.ttf", {chr(i) for i in range(32, 127)}),),
        )
    )
    doc = both.generate("offer_letter", terms())
    assert doc.pdf is not None
    assert "录用通知书" in "".join(PdfReader(io.BytesIO(doc.pdf.content)).pages[0].extract_text().split())


# -- vendor fields --------------------------------------------------------------------------------


def test_vendor_fields_for_e_contract_templates() -> None:
    generator = DocumentGenerator(contracts_config(RULES))
    fields = generator.vendor_fields(terms(), document_date=date(2025, 2, 10))
    assert list(fields) == list(VENDOR_FIELD_NAMES)
    assert fields["employee_name"] == "张三" and fields["end_date"] == "2028-02-29"
    assert fields["monthly_salary"] == "30000.00" and fields["non_compete_monthly_compensation"] == "9000.00"
    assert fields["clauses"] == "保密条款；竞业限制条款；服务期条款；知识产权归属"
    assert fields["clause_set_version"] == generator.clause_set_version().id
    mapped = DocumentGenerator(
        contracts_config({**RULES, "vendor_fields": {"乙方姓名": "employee_name", "月薪": "monthly_salary"}})
    ).vendor_fields(terms())
    assert mapped == {"乙方姓名": "张三", "月薪": "30000.00"}


# -- archiving ------------------------------------------------------------------------------------


def test_archive_document_seals_with_the_keyring_and_checks_the_hash() -> None:
    keyring = Keyring(os.urandom(32))
    doc = DocumentGenerator(contracts_config(RULES)).generate("labour_contract", terms())
    archived = archive_document(
        keyring, doc.primary, document_id="contract-1", clause_set_version=doc.clause_set.id
    )
    assert archived.sha256 == doc.sha256 and archived.kind == "labour_contract"
    assert "张三".encode() not in archived.sealed and ID_NUMBER.encode() not in archived.sealed
    assert open_archived_document(keyring, archived) == doc.primary.content
    from dataclasses import replace

    with pytest.raises(DecryptionError):  # moved to another document's row
        open_archived_document(keyring, replace(archived, document_id="contract-2"))
    with pytest.raises(DecryptionError):
        open_archived_document(Keyring(os.urandom(32)), archived)

    class ProjectLike:
        def __init__(self, keyring: Keyring) -> None:
            self.keyring = keyring

    raw = archive_document(ProjectLike(keyring), b"%PDF-1.4 ...", kind="offer_letter")
    assert open_archived_document(ProjectLike(keyring), raw) == b"%PDF-1.4 ..."


# -- CLI ------------------------------------------------------------------------------------------


def test_cli_render_check_and_clauses(write_project: Any, tmp_path: Path) -> None:
    config = write_project(
        """
        [[contracts.clauses]]
        name = "confidentiality"
        when = { any = [ { core_data_access = true }, { classified_project = true } ] }
        post_employment_months = 24
        """
    )
    terms_file = tmp_path / "terms.json"
    terms_file.write_bytes(orjson.dumps(terms().model_dump(mode="json")))
    runner = CliRunner()

    result = runner.invoke(app, ["--config", str(config), "contracts", "clauses", str(terms_file), "--json"])
    assert result.exit_code == 0, result.output
    [clause] = orjson.loads(result.stdout)["clauses"]
    assert clause["name"] == "confidentiality" and clause["rule"].startswith("contracts.clauses[0]")

    out_dir = tmp_path / "docs"
    result = runner.invoke(
        app,
        [
            "--config",
            str(config),
            "contracts",
            "render",
            str(terms_file),
            "--out",
            str(out_dir),
            "--date",
            "2025-02-10",
            "--vendor-fields",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.stdout)
    html_path = Path(summary["files"][0]["path"])
    assert html_path.read_bytes() and hashlib.sha256(html_path.read_bytes()).hexdigest() == summary["sha256"]
    assert all((Path(f["path"]).stat().st_mode & 0o777) == 0o600 for f in summary["files"])
    assert "张三" not in result.stdout and "30000" not in result.stdout and ID_NUMBER not in result.stdout

    bad = tmp_path / "bad.json"
    bad.write_bytes(
        orjson.dumps(
            {**terms().model_dump(mode="json"), "term_months": 24, "end_date": None, "probation_months": 3}
        )
    )
    result = runner.invoke(app, ["--config", str(config), "contracts", "check", str(bad)])
    assert result.exit_code == 1
    assert (
        "劳动合同法第十九条: a 2-year contract allows at most 2 months of probation, got 3" in result.output
    )

    invalid = tmp_path / "invalid.json"
    invalid.write_bytes(orjson.dumps({**terms().model_dump(mode="json"), "monthly_salary": -31415}))
    result = runner.invoke(app, ["--config", str(config), "contracts", "check", str(invalid)])
    assert result.exit_code == 2 and "monthly_salary" in result.output and "31415" not in result.output
