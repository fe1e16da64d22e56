"""The field catalogue: every record type, its fields, their data type, sensitivity and risk.

A value that crosses a boundary (API, CSV, a Change snapshot) is in its *plain* form:
text, bool, a list of text, a decimal as a string ("12.50"), a reference as the record id
staff use ("CUS-10432"). `clean_value` turns input into that form or says why it cannot;
`clean_held_value` does the same for a value a record may already hold, such as an empty email.
"""

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email


class Kind(StrEnum):
    TEXT = "text"
    EMAIL = "email"
    ENUM = "enum"
    BOOL = "bool"
    TAGS = "tags"
    DECIMAL = "decimal"
    REF = "ref"


class Sensitivity(StrEnum):
    PUBLIC = "public"
    INTERNAL = "internal"
    PII = "pii"
    FINANCIAL = "financial"


class Risk(StrEnum):
    LOW = "low"
    HIGH = "high"


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: Kind
    sensitivity: Sensitivity
    risk: Risk
    choices: tuple[str, ...] = ()
    max_length: int = 500
    ref_type: str = ""
    optional: bool = False  # a record may leave it empty

    @property
    def label(self) -> str:
        return self.name.replace("_", " ")


@dataclass(frozen=True)
class RecordType:
    name: str
    id_prefix: str
    label: str
    title_field: str
    fields: tuple[FieldSpec, ...]

    def field(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def has_field(self, name: str) -> bool:
        return any(spec.name == name for spec in self.fields)

    @property
    def field_names(self) -> list[str]:
        return [spec.name for spec in self.fields]


PRIORITIES = ("low", "normal", "high", "urgent")
TAG_MAX_ITEMS = 30
TAG_MAX_LENGTH = 50
NOTE_MAX_LENGTH = 5000

_I, _PII, _FIN = Sensitivity.INTERNAL, Sensitivity.PII, Sensitivity.FINANCIAL
_LOW, _HIGH = Risk.LOW, Risk.HIGH

CUSTOMER = RecordType(
    name="customer",
    id_prefix="CUS-",
    label="Customer",
    title_field="full_name",
    fields=(
        FieldSpec("full_name", Kind.TEXT, _PII, _HIGH, max_length=200),
        FieldSpec("email", Kind.EMAIL, _PII, _HIGH, max_length=254, optional=True),
        FieldSpec("phone", Kind.TEXT, _PII, _HIGH, max_length=40, optional=True),
        FieldSpec("shipping_address", Kind.TEXT, _PII, _HIGH, max_length=500, optional=True),
        FieldSpec("billing_status", Kind.ENUM, _FIN, _HIGH, choices=("ok", "past_due", "refunded", "disputed")),
        FieldSpec("account_status", Kind.ENUM, _I, _HIGH, choices=("active", "verified", "high_risk", "closed")),
        FieldSpec("verified", Kind.BOOL, _I, _HIGH),
        FieldSpec("priority", Kind.ENUM, _I, _LOW, choices=PRIORITIES),
        FieldSpec("sentiment", Kind.ENUM, _I, _LOW, choices=("positive", "neutral", "negative")),
        FieldSpec("tags", Kind.TAGS, _I, _LOW, optional=True),
        FieldSpec("support_notes", Kind.TEXT, _I, _HIGH, max_length=NOTE_MAX_LENGTH, optional=True),
        FieldSpec("internal_notes", Kind.TEXT, _I, _HIGH, max_length=NOTE_MAX_LENGTH, optional=True),
    ),
)

ORDER = RecordType(
    name="order",
    id_prefix="ORD-",
    label="Order",
    title_field="order_number",
    fields=(
        FieldSpec("customer", Kind.REF, _I, _HIGH, ref_type="customer"),
        FieldSpec("order_number", Kind.TEXT, _I, _HIGH, max_length=40),
        FieldSpec("amount", Kind.DECIMAL, _FIN, _HIGH),
        FieldSpec("status", Kind.ENUM, _I, _HIGH, choices=("placed", "shipped", "delivered", "cancelled")),
        FieldSpec("refund_status", Kind.ENUM, _FIN, _HIGH, choices=("none", "requested", "approved", "refunded")),
    ),
)

TICKET = RecordType(
    name="ticket",
    id_prefix="T-",
    label="Ticket",
    title_field="subject",
    fields=(
        FieldSpec("customer", Kind.REF, _I, _HIGH, ref_type="customer"),
        FieldSpec("subject", Kind.TEXT, _I, _LOW, max_length=200),
        FieldSpec("status", Kind.ENUM, _I, _HIGH, choices=("open", "pending", "closed")),
        FieldSpec("priority", Kind.ENUM, _I, _LOW, choices=PRIORITIES),
        FieldSpec("resolution_note", Kind.TEXT, _I, _HIGH, max_length=NOTE_MAX_LENGTH, optional=True),
    ),
)

RECORD_TYPES: dict[str, RecordType] = {t.name: t for t in (CUSTOMER, ORDER, TICKET)}


_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


def _clean_text(spec: FieldSpec, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if len(value) > spec.max_length:
        raise ValueError(f"must be at most {spec.max_length} characters (got {len(value)})")
    return value


def clean_value(spec: FieldSpec, value: Any, *, from_text: bool = False) -> Any:
    """Return `value` in its plain form for `spec`, or raise ValueError saying why it is not valid.

    `from_text` accepts the string spellings a CSV file uses for bools, tags and decimals.
    References are checked for form only; whether the record exists is the store's question.
    """
    if value is None:
        raise ValueError("must not be null")
    match spec.kind:
        case Kind.TEXT:
            return _clean_text(spec, value)
        case Kind.EMAIL:
            text = _clean_text(spec, value).strip()
            try:
                validate_email(text)
            except ValidationError:
                raise ValueError(f"'{text[:80]}' is not a valid email address") from None
            return text
        case Kind.ENUM:
            if not isinstance(value, str) or value not in spec.choices:
                shown = value if isinstance(value, str) else type(value).__name__
                raise ValueError(f"'{str(shown)[:80]}' is not one of {', '.join(spec.choices)}")
            return value
        case Kind.BOOL:
            if isinstance(value, bool):
                return value
            if from_text and isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
                return value.strip().lower() in _TRUE
            raise ValueError("must be true or false")
        case Kind.TAGS:
            if from_text and isinstance(value, str):
                value = [tag.strip() for tag in value.split("|") if tag.strip()]
            if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
                raise ValueError("must be a list of strings")
            if len(value) > TAG_MAX_ITEMS:
                raise ValueError(f"must hold at most {TAG_MAX_ITEMS} tags")
            for tag in value:
                if not tag or len(tag) > TAG_MAX_LENGTH or "\x00" in tag:
                    raise ValueError(f"each tag must be 1 to {TAG_MAX_LENGTH} characters")
            return value
        case Kind.DECIMAL:
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise ValueError('must be a decimal number such as "12.50"')
            try:
                number = Decimal(str(value).strip())
            except InvalidOperation:
                raise ValueError(f"'{str(value)[:40]}' is not a decimal number") from None
            if not number.is_finite() or number < 0 or number >= Decimal("100000000"):
                raise ValueError("must be between 0 and 99999999.99")
            if number != number.quantize(Decimal("0.01")):
                raise ValueError("must have at most 2 decimal places")
            return str(number.quantize(Decimal("0.01")))
        case Kind.REF:
            text = _clean_text(spec, value).strip()
            prefix = RECORD_TYPES[spec.ref_type].id_prefix
            if not text.startswith(prefix):
                raise ValueError(f"must be a {spec.ref_type} id starting with {prefix}")
            return text
    raise ValueError(f"unknown field kind {spec.kind}")  # pragma: no cover - the match is exhaustive


def clean_held_value(spec: FieldSpec, value: Any) -> Any:
    """Return a value a record may hold for `spec` (one a pipeline saw) in plain form, or raise ValueError.

    That is what `clean_value` accepts, and for an optional field also its empty value: a record
    may hold an empty email, and a store may give None for an empty field (read as "" or no tags).
    """
    empty: Any = [] if spec.kind == Kind.TAGS else ""
    if spec.optional and (value is None or value == empty):
        return empty
    return clean_value(spec, value)
