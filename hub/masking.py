"""Masking of personal data for everything a person reads: logs, CLI tables, errors.

One function per kind of value, plus :func:`mask_text`, which finds ID-number, phone
and bank-card shapes inside free text, and :class:`PIIFilter`, which applies it to every
log record hub handles (including lines a plugin logs by mistake).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

# Resident ID (18 digits, last may be X; or the old 15-digit form), mainland mobiles with an
# optional +86 / 0086 / 86 prefix, bank cards of 16 to 19 digits (spaces or dashes allowed).
_ID_RE = re.compile(
    r"(?<![0-9A-Za-z])(\d{6})(\d{8})(\d{3}[0-9Xx])(?![0-9A-Za-z])|(?<!\d)(\d{6})(\d{6})(\d{3})(?!\d)"
)
_PHONE_RE = re.compile(r"(?<!\d)((?:\+?86[- ]?|0086[- ]?)?)(1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?!\d)")
_CARD_RE = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}(\d{4})(?!\d)")
_EMAIL_RE = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")

#: Field-name fragments that mark a column as personal data when its values are shown.
PII_FIELD_HINTS: dict[str, str] = {
    "id_number": "id_number",
    "id_no": "id_number",
    "idcard": "id_number",
    "id_card": "id_number",
    "ssn": "id_number",
    "identity": "id_number",
    "passport": "id_number",
    "phone": "phone",
    "mobile": "phone",
    "tel": "phone",
    "bank": "bank_account",
    "card_no": "bank_account",
    "account_number": "bank_account",
    "salary": "money",
    "wage": "money",
    "pay": "money",
    "compensation": "money",
    "bonus": "money",
    "address": "text",
    "birth": "text",
    "dob": "text",
    "email": "email",
}


def mask_id_number(value: str) -> str:
    """``11010519491231002X`` -> ``110***********002X`` (region prefix and last four kept)."""
    v = value.strip()
    if len(v) <= 7:
        return "*" * len(v)
    return v[:3] + "*" * (len(v) - 7) + v[-4:]


def mask_phone(value: str) -> str:
    """``13800138000`` -> ``138****8000``; any prefix (+86) is dropped."""
    digits = re.sub(r"\D", "", value)
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if len(digits) < 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_bank_account(value: str) -> str:
    """``6222020200112233445`` -> ``**** 3445``."""
    digits = re.sub(r"\D", "", value)
    return "**** " + digits[-4:] if len(digits) >= 4 else "****"


def mask_email(value: str) -> str:
    """``zhang.wei@example.com`` -> ``z***@example.com``."""
    return _EMAIL_RE.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", value)


def mask_money(_: Any) -> str:
    """Salaries and other amounts are never shown."""
    return "***"


def mask_text_value(_: Any) -> str:
    """Addresses, birth dates and other free text: hidden entirely."""
    return "***"


_BY_KIND = {
    "id_number": mask_id_number,
    "phone": mask_phone,
    "bank_account": mask_bank_account,
    "email": mask_email,
    "money": mask_money,
    "text": mask_text_value,
}


def pii_kind(field_name: str) -> str | None:
    """The PII kind a field name suggests, or None."""
    name = field_name.lower()
    for hint, kind in PII_FIELD_HINTS.items():
        if hint in name:
            return kind
    return None


def mask_value(kind: str, value: Any) -> str:
    """Mask ``value`` as a ``kind`` (id_number, phone, bank_account, email, money, text)."""
    if value is None:
        return ""
    return _BY_KIND[kind](str(value))


def mask_text(text: str) -> str:
    """Mask every ID-number, phone, bank-card and e-mail shape found in free text."""
    text = _ID_RE.sub(lambda m: mask_id_number(m.group(0)), text)
    text = _PHONE_RE.sub(lambda m: m.group(2) + "****" + m.group(4), text)
    text = _CARD_RE.sub(lambda m: "**** " + m.group(1), text)
    return mask_email(text)


def mask_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``record`` safe to show: PII fields masked by name, other text scanned."""
    shown: dict[str, Any] = {}
    for key, value in record.items():
        kind = pii_kind(str(key))
        if value is None:
            shown[key] = None
        elif kind is not None:
            shown[key] = mask_value(kind, value)
        elif isinstance(value, str):
            shown[key] = mask_text(value)
        else:
            shown[key] = value
    return shown


class PIIFilter(logging.Filter):
    """Masks PII shapes in every record's final message (args included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string must not lose the line
            message = str(record.msg)
        masked = mask_text(message)
        if masked != message or record.args:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = mask_text(logging.Formatter().formatException(record.exc_info))
        return True


def install_log_masking(logger: logging.Logger | None = None) -> None:
    """Attach :class:`PIIFilter` to every handler of ``logger`` (root by default)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, PIIFilter) for f in handler.filters):
            handler.addFilter(PIIFilter())
