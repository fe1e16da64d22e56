"""Loading records from CSV into the built-in store."""

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction

from audit.services import Actor, audit_record
from core.errors import ValidationFailed
from records.catalogue import RECORD_TYPES, Kind, clean_value
from records.models import Customer
from records.store import MODELS

REQUIRED_FIELDS = {
    "customer": ["full_name"],
    "order": ["customer", "order_number", "amount"],
    "ticket": ["customer", "subject"],
}


@dataclass(frozen=True)
class ImportResult:
    record_type: str
    created: int


def records_import_csv(*, record_type: str, lines: Iterable[str], source: str, actor: Actor) -> ImportResult:
    """Load new records from CSV text. The whole file is checked first; any error imports nothing.

    Every problem is reported as (`row N, field`, reason). Existing record ids are refused:
    changing a record that exists goes through a Change, never through an import.
    """
    if record_type not in RECORD_TYPES:
        raise ValidationFailed(
            [("record_type", f"unknown record type '{record_type}'; use one of {', '.join(RECORD_TYPES)}")]
        )
    spec = RECORD_TYPES[record_type]
    reader = csv.reader(lines)
    header = next(reader, None)
    if not header or header[0].strip() != "record_id":
        raise ValidationFailed([("row 1", "the header must start with record_id")])
    columns = [name.strip() for name in header[1:]]
    problems: list[tuple[str, str]] = []
    for name in columns:
        if not spec.has_field(name):
            problems.append(
                ("row 1, " + name, f"unknown field for {record_type}; known fields: {', '.join(spec.field_names)}")
            )
    for name in REQUIRED_FIELDS[record_type]:
        if name not in columns:
            problems.append(("row 1, " + name, "required column is missing"))
    if len(set(columns)) != len(columns):
        problems.append(("row 1", "a column is named twice"))
    if problems:
        raise ValidationFailed(problems)

    rows: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    customer_refs: set[str] = set()
    for number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(columns) + 1:
            problems.append((f"row {number}", f"has {len(row)} cells, the header has {len(columns) + 1}"))
            continue
        record_id = row[0].strip()
        if not record_id.startswith(spec.id_prefix) or len(record_id) > 64 or len(record_id) <= len(spec.id_prefix):
            problems.append((f"row {number}, record_id", f"'{record_id[:40]}' must look like {spec.id_prefix}123"))
        elif record_id in seen:
            problems.append((f"row {number}, record_id", f"{record_id} appears twice in the file"))
        seen.add(record_id)
        values: dict[str, Any] = {}
        for name, cell in zip(columns, row[1:], strict=True):
            field = spec.field(name)
            if cell == "":
                if name in REQUIRED_FIELDS[record_type]:
                    problems.append((f"row {number}, {name}", "is required"))
                continue
            try:
                values[name] = clean_value(field, cell, from_text=True)
            except ValueError as error:
                problems.append((f"row {number}, {name}", str(error)))
                continue
            if field.kind == Kind.REF:
                customer_refs.add(values[name])
        rows.append((record_id, values))

    model = MODELS[record_type]
    existing = set(model.objects.filter(record_id__in=seen).values_list("record_id", flat=True))
    for record_id in sorted(existing):
        problems.append(("record_id", f"{record_id} already exists; change it through a proposal, not an import"))
    customers = {c.record_id: c for c in Customer.objects.filter(record_id__in=customer_refs)}
    for number, (_, values) in enumerate(rows, start=2):
        for name, value in values.items():
            if spec.field(name).kind == Kind.REF and value not in customers:
                problems.append((f"row {number}, {name}", f"no customer '{value}'"))
    if problems:
        raise ValidationFailed(problems[:50], extra={"total_problems": len(problems)})

    objects: list[Any] = []
    for record_id, values in rows:
        attributes: dict[str, Any] = {}
        for name, value in values.items():
            kind = spec.field(name).kind
            if kind == Kind.REF:
                attributes[name] = customers[value]
            elif kind == Kind.DECIMAL:
                attributes[name] = Decimal(value)
            else:
                attributes[name] = value
        objects.append(model(record_id=record_id, **attributes))
    with transaction.atomic():
        model.objects.bulk_create(objects, batch_size=1000)
        audit_record(
            action="record.imported",
            actor=actor,
            record_type=record_type,
            details={"source": source, "count": len(objects)},
        )
    return ImportResult(record_type=record_type, created=len(objects))


def records_import_csv_text(*, record_type: str, text: str, source: str, actor: Actor) -> ImportResult:
    return records_import_csv(record_type=record_type, lines=io.StringIO(text), source=source, actor=actor)
