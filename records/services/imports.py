"""Loading new records from CSV, into the store bound to their record type."""

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from audit.services import Actor, audit_record
from core.errors import ValidationFailed
from records.catalogue import RECORD_TYPES, Kind, clean_value
from records.store import get_store

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
    references: dict[str, set[str]] = {}
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
                references.setdefault(field.ref_type, set()).add(values[name])
        rows.append((record_id, values))

    store = get_store(record_type)
    for record_id in sorted(store.fetch_many(record_type, seen, fields=[])):
        problems.append(("record_id", f"{record_id} already exists; change it through a proposal, not an import"))
    found = {
        ref_type: set(get_store(ref_type).fetch_many(ref_type, record_ids, fields=[]))
        for ref_type, record_ids in references.items()
    }
    for number, (_, values) in enumerate(rows, start=2):
        for name, value in values.items():
            field = spec.field(name)
            if field.kind == Kind.REF and value not in found[field.ref_type]:
                problems.append((f"row {number}, {name}", f"no {field.ref_type} '{value}'"))
    if problems:
        raise ValidationFailed(problems[:50], extra={"total_problems": len(problems)})

    with transaction.atomic():
        store.create_many(record_type, rows)
        audit_record(
            action="record.imported",
            actor=actor,
            record_type=record_type,
            details={"source": source, "count": len(rows)},
        )
    return ImportResult(record_type=record_type, created=len(rows))


def records_import_csv_text(*, record_type: str, text: str, source: str, actor: Actor) -> ImportResult:
    return records_import_csv(record_type=record_type, lines=io.StringIO(text), source=source, actor=actor)
