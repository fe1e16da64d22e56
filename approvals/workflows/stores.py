"""Workflows and the stores their record types live in.

A field policy needs a field the record type's store maps; an action needs a store that can carry it
out as configured (archive an archive column, delete a delete column, merge a store that moves
related rows). `load_workflows` refuses a workflow that asks for more than its stores offer, and
`load_stores` refuses a stores file that would take from a loaded workflow what it relies on.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from approvals.models import Action, FieldPolicy, Workflow
from audit.services import Actor
from core.errors import ValidationFailed
from records.catalogue import RECORD_TYPES, Kind
from records.selectors import StoreTerms, store_terms
from records.services.stores import BUILTIN, StoresLoadResult, store_bindings_check, store_bindings_write

_CANNOT = {
    Action.UPDATE: "cannot write records",
    Action.ARCHIVE: "cannot archive: its binding names no archive column (archived)",
    Action.DELETE: "cannot delete: its binding names no delete column (deleted)",
    Action.MERGE: "cannot move related rows, so merge stays a built-in-store action",
}


@dataclass(frozen=True)
class StoreRefusal:
    """Something a workflow asks of a store that the store does not offer."""

    record_type: str
    field: str  # the field of a policy the store does not map, or ""
    action: str  # the action the store cannot carry out, or ""
    reason: str


def _referring(record_type: str) -> list[tuple[str, str]]:
    """(record type, reference field) of every record type whose records refer to `record_type`."""
    return [
        (other.name, spec.name)
        for other in RECORD_TYPES.values()
        for spec in other.fields
        if spec.kind == Kind.REF and spec.ref_type == record_type
    ]


def workflow_store_refusals(
    *, policies: Iterable[tuple[str, str]], actions: Iterable[str], terms: dict[str, StoreTerms]
) -> list[StoreRefusal]:
    """What a workflow with these field policies, by (record type, field), and these actions asks
    of the stores in `terms` that they do not offer."""
    policies = sorted(set(policies))
    refusals = []
    for record_type in sorted({record_type for record_type, _ in policies}):
        store = terms[record_type]
        if store.problem:
            reason = f"the {record_type} store, {store.label}, cannot be built here: {store.problem}"
            refusals.append(StoreRefusal(record_type, "", "", reason))
            continue
        for _, name in (policy for policy in policies if policy[0] == record_type):
            if store.fields is not None and name not in store.fields:
                mapped = ", ".join(sorted(store.fields)) or "no field"
                reason = f"the {record_type} store, {store.label}, does not map {name} (it maps {mapped})"
                refusals.append(StoreRefusal(record_type, name, "", reason))
        for action in actions:
            if action not in store.actions:
                reason = f"the {record_type} store, {store.label}, {_CANNOT[Action(action)]}"
                refusals.append(StoreRefusal(record_type, "", action, reason))
            elif action == Action.MERGE:
                for other, field in _referring(record_type):
                    held = terms[other]
                    if (held.fields is None or field in held.fields) and Action.MERGE not in held.actions:
                        reason = (
                            f"merging a {record_type} moves the {other} records that refer to it, and the {other} "
                            f"store, {held.label}, cannot move related rows"
                        )
                        refusals.append(StoreRefusal(record_type, "", action, reason))
    return refusals


def stores_load(*, document: Any, actor: Actor) -> StoresLoadResult:
    """Bind record types to stores as the stores file `document` says (see
    `records.services.stores`), unless a loaded workflow would then hold a policy on a field its
    store does not map, or an action its store cannot carry out. All or nothing."""
    specs = store_bindings_check(document)
    terms = store_terms(bindings=[spec.as_binding() for spec in specs if spec.connector != BUILTIN])
    with transaction.atomic():
        policies: dict[int, list[tuple[str, str]]] = {}
        for workflow_id, record_type, field in FieldPolicy.objects.values_list("workflow_id", "record_type", "field"):
            policies.setdefault(workflow_id, []).append((record_type, field))
        problems = []
        for workflow in Workflow.objects.filter(pk__in=policies).order_by("slug"):
            for refusal in workflow_store_refusals(
                policies=policies[workflow.pk], actions=workflow.actions, terms=terms
            ):
                what = (
                    f"a policy on {refusal.record_type}.{refusal.field}"
                    if refusal.field
                    else f"the action {refusal.action}"
                    if refusal.action
                    else f"fields on {refusal.record_type}"
                )
                problems.append(
                    (f"stores.{refusal.record_type}", f"workflow '{workflow.slug}' has {what}: {refusal.reason}")
                )
        if problems:
            raise ValidationFailed(problems)
        return store_bindings_write(specs=specs, actor=actor)
