"""What a rollback drill of one workflow writes: throwaway records of a record type the workflow may
change, on the built-in store, and an update of the fields it may suggest or write on each.

The drill never creates records in a system outside Countersign's database: a workflow whose record
types all live elsewhere is refused, naming the store, before anything is written.
"""

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from approvals.models import Access, Action, FieldPolicy, Lane, Workflow
from approvals.workflows.rollout import APPLYING_STAGES
from core.errors import InvalidTransition
from records.catalogue import RECORD_TYPES, FieldSpec, Kind
from records.store import RecordRef, get_store

# At most this many fields change per record: enough to exercise the undo of several, few enough to read.
MAX_FIELDS = 4


@dataclass(frozen=True)
class DrillTarget:
    """The record type a workflow's drill writes, and the fields its updates change."""

    record_type: str
    fields: tuple[str, ...]


def _changeable(spec: FieldSpec) -> bool:
    """A field whose value the drill can set to two different valid values on its own."""
    if spec.kind == Kind.REF:
        return False
    return spec.kind != Kind.ENUM or len(spec.choices) >= 2


def _on_builtin_store(record_type: str) -> bool:
    return bool(get_store(record_type).in_default_database)


def drill_target_of(*, workflow: Workflow) -> DrillTarget:
    """Where a drill of `workflow` writes, or the InvalidTransition that says why it cannot run."""
    if workflow.lane != Lane.WRITE:
        raise InvalidTransition(f"workflow {workflow.slug} is in the assist lane: it changes no record to roll back")
    if Action.UPDATE not in (workflow.actions or []):
        raise InvalidTransition(f"workflow {workflow.slug} may not update records, which the drill does")
    if workflow.stage not in APPLYING_STAGES:
        raise InvalidTransition(
            f"workflow {workflow.slug} is in {workflow.stage}: it does not write, so nothing of a drill would be "
            "applied; run the drill once it is in canary or live"
        )
    by_type: dict[str, list[str]] = {}
    for record_type, name in (
        FieldPolicy.objects.filter(workflow=workflow, access__in=[Access.SUGGEST, Access.WRITE])
        .order_by("record_type", "field")
        .values_list("record_type", "field")
    ):
        spec = RECORD_TYPES.get(record_type)
        if spec is not None and _changeable(spec.field(name)):
            by_type.setdefault(record_type, []).append(name)
    if not by_type:
        raise InvalidTransition(f"workflow {workflow.slug} may suggest or write no field the drill can change")
    elsewhere = []
    for record_type in sorted(by_type, key=lambda name: (name != "customer", name)):
        referred = {spec.ref_type for spec in RECORD_TYPES[record_type].fields if spec.kind == Kind.REF}
        outside = [name for name in [record_type, *sorted(referred)] if not _on_builtin_store(name)]
        if not outside:
            return DrillTarget(record_type, tuple(by_type[record_type][:MAX_FIELDS]))
        elsewhere += outside
    raise InvalidTransition(
        f"the {', '.join(sorted(set(elsewhere)))} records of workflow {workflow.slug} are kept in a system of "
        "record outside Countersign's database; the drill creates throwaway records only in the built-in store, "
        "so it does not run on this workflow"
    )


def _value(spec: FieldSpec, n: int, tag: str, *, after: bool) -> Any:
    """A valid value of the field for record `n`, before or after the drill's update."""
    if spec.kind == Kind.ENUM:
        return spec.choices[1 if after else 0]
    if spec.kind == Kind.BOOL:
        return after
    if spec.kind == Kind.TAGS:
        return ["drill", "drill-updated"] if after else ["drill"]
    if spec.kind == Kind.DECIMAL:
        return str(Decimal("12.50") if after else Decimal("10.00"))
    if spec.kind == Kind.EMAIL:
        return f"{tag.lower()}-{n}{'-new' if after else ''}@example.invalid"
    return f"Drill {n} {spec.label} {'after' if after else 'before'}"[: spec.max_length]


def drill_records(*, target: DrillTarget, drill_id: int, count: int) -> tuple[list[RecordRef], list[dict[str, Any]]]:
    """Create `count` throwaway records of the target's type (and one throwaway customer for the
    records that refer to one), and plan an update of the target's fields on each."""
    tag = f"DRILL{drill_id}{uuid.uuid4().hex[:6].upper()}"
    spec = RECORD_TYPES[target.record_type]
    refs: list[RecordRef] = []
    referred: dict[str, str] = {}
    for ref_type in sorted({field.ref_type for field in spec.fields if field.kind == Kind.REF}):
        ref_spec = RECORD_TYPES[ref_type]
        record_id = f"{ref_spec.id_prefix}{tag}-REF"
        values = {field.name: _value(field, 0, tag, after=False) for field in ref_spec.fields if field.kind != Kind.REF}
        get_store(ref_type).create_many(ref_type, [(record_id, values)])
        refs.append(RecordRef(ref_type, record_id))
        referred[ref_type] = record_id
    records: list[tuple[str, dict[str, Any]]] = []
    plans: list[dict[str, Any]] = []
    for n in range(count):
        record_id = f"{spec.id_prefix}{tag}-{n:04d}"
        values = {
            field.name: referred[field.ref_type] if field.kind == Kind.REF else _value(field, n, tag, after=False)
            for field in spec.fields
        }
        records.append((record_id, values))
        plans.append(
            {
                "action": Action.UPDATE,
                "record_type": target.record_type,
                "record_id": record_id,
                "changes": {name: _value(spec.field(name), n, tag, after=True) for name in target.fields},
                "base": {name: values[name] for name in target.fields},
            }
        )
    get_store(target.record_type).create_many(target.record_type, records)
    refs += [RecordRef(target.record_type, record_id) for record_id, _ in records]
    return refs, plans
