"""Random sequences of AI changes, people's edits and undos, checked against a plain model of the records.

The model says, for every undo, whether it must go through, be refused as a conflict, or be refused as
already undone, and what every record must hold afterwards. Two properties follow from it: an undo
never overwrites a later edit, and a change followed at once by its undo leaves every record exactly
as it was.
"""

from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from audit.services import Actor
from core.errors import InvalidTransition
from records.models import Change
from records.services.changes import ChangeOrigin, change_archive, change_delete, change_merge, change_update
from records.services.revert import RevertConflict, change_revert
from records.store import RecordRef, snapshot_refs
from tests.helpers.factories import CustomerFactory, OrderFactory

AI = ChangeOrigin(applied_by="worker@test/1", batch_id=1, workflow_slug="wf", prompt_version="p@1")
PERSON = ChangeOrigin(applied_by="dana")
VALUES = {"shipping_address": ["a", "b", "c"], "priority": ["low", "high", "urgent"]}
CUSTOMERS = 3
ORDERS = 3  # the first two belong to customer 0, the third to customer 1

customer_fields = st.dictionaries(
    st.sampled_from(sorted(VALUES)), st.sampled_from(["a", "b", "c"]), min_size=1, max_size=2
).map(lambda values: {name: VALUES[name][ord(value) - ord("a")] for name, value in values.items()})
customer = st.integers(0, CUSTOMERS - 1)
operation = st.one_of(
    st.tuples(st.just("ai_update"), customer, customer_fields),
    st.tuples(st.just("person_edit"), customer, customer_fields),
    st.tuples(st.just("person_edit"), customer, customer_fields),
    st.tuples(st.just("person_edits_order"), st.integers(0, ORDERS - 1), st.sampled_from(["none", "requested"])),
    st.tuples(st.just("person_edits_order"), st.integers(0, ORDERS - 1), st.sampled_from(["none", "requested"])),
    st.tuples(st.just("archive"), customer),
    st.tuples(st.just("delete"), customer),
    st.tuples(st.just("merge"), customer, customer),
    st.tuples(st.just("merge"), customer, customer),
    st.tuples(st.just("undo_latest")),
    st.tuples(st.just("undo_latest")),
    st.tuples(st.just("undo"), st.integers(0, 40)),
    st.tuples(st.just("undo"), st.integers(0, 40)),
    st.tuples(st.just("undo"), st.integers(0, 40)),
)


@dataclass
class Entry:
    """One change as the model knows it: what it wrote, and (for a merge) which rows it moved."""

    index: int
    change: Change
    own: list[tuple[RecordRef, str, Any, Any]]
    moves: list[tuple[RecordRef, Any, Any]] = field(default_factory=list)
    reverts: "Entry | None" = None
    exact_before: dict | None = None


class Model:
    def __init__(self, refs: list[RecordRef]) -> None:
        self.refs = refs
        self.state = observed(refs)
        self.log: list[Entry] = []
        self.reverts_of: dict[int, list[Entry]] = {}

    def in_force(self, entry: Entry) -> bool:
        return not any(self.in_force(revert) for revert in self.reverts_of.get(entry.index, []))

    def visible(self, ref: RecordRef) -> bool:
        return self.state[ref]["archived_at"] is None and self.state[ref]["deleted_at"] is None

    def record(self, entry: Entry) -> None:
        for ref, name, _, after in entry.own:
            self.state[ref][name] = after
        for row, _, after in entry.moves:
            self.state[row]["customer"] = after
        self.log.append(entry)
        if entry.reverts is not None:
            self.reverts_of.setdefault(entry.reverts.index, []).append(entry)

    def row_changed_since(self, target: Entry, row: RecordRef) -> bool:
        for later in self.log[target.index + 1 :]:
            touches = any(ref == row for ref, *_ in later.own) or any(moved == row for moved, *_ in later.moves)
            undoes_a_later_one = later.reverts is not None and later.reverts.index > target.index
            if touches and self.in_force(later) and not undoes_a_later_one:
                return True
        return False

    def conflicts(self, target: Entry) -> list[str]:
        found = [f"{ref}.{name}" for ref, name, _, after in target.own if self.state[ref][name] != after]
        found.extend(
            f"{row}.customer"
            for row, _, after in target.moves
            if self.state[row]["customer"] != after or self.row_changed_since(target, row)
        )
        return found


def observed(refs: list[RecordRef]) -> dict[RecordRef, dict[str, Any]]:
    """Every record as the store holds it: its values, and the moments it was archived or deleted.

    The model does not make those moments up; it takes each one from the change that set it, and
    from then on only compares them, so two archives of one record are never taken for the same.
    """
    found = snapshot_refs(refs)
    return {
        ref: {
            **found[ref]["values"],
            "archived_at": found[ref]["archived_at"],
            "deleted_at": found[ref]["deleted_at"],
        }
        for ref in refs
    }


def exact(refs: list[RecordRef]) -> dict[RecordRef, dict[str, Any]]:
    """Every record byte for byte: its values and the exact moments it was archived or deleted."""
    found = snapshot_refs(refs)
    return {ref: {key: value for key, value in found[ref].items() if key != "version"} for ref in refs}


def run(operations: list[tuple]) -> None:  # noqa: C901
    customers = [CustomerFactory(shipping_address="a", priority="low") for _ in range(CUSTOMERS)]
    orders = [OrderFactory(customer=customers[0]), OrderFactory(customer=customers[0])]
    orders.append(OrderFactory(customer=customers[1]))
    customer_refs = [RecordRef("customer", c.record_id) for c in customers]
    order_refs = [RecordRef("order", o.record_id) for o in orders]
    model = Model(customer_refs + order_refs)

    def entry(change: Change, own: list, moves: list | None = None, before: dict | None = None) -> Entry:
        return Entry(len(model.log), change, own, moves or [], exact_before=before)

    for operation in operations:
        kind = operation[0]
        before = exact(model.refs)
        if kind in ("ai_update", "person_edit"):
            ref, values = customer_refs[operation[1]], operation[2]
            if not model.visible(ref):
                continue
            change = change_update(ref=ref, values=values, origin=AI if kind == "ai_update" else PERSON)
            model.record(entry(change, [(ref, n, model.state[ref][n], v) for n, v in values.items()], before=before))
        elif kind == "person_edits_order":
            ref, value = order_refs[operation[1]], operation[2]
            change = change_update(ref=ref, values={"refund_status": value}, origin=PERSON)
            model.record(
                entry(change, [(ref, "refund_status", model.state[ref]["refund_status"], value)], before=before)
            )
        elif kind in ("archive", "delete"):
            ref = customer_refs[operation[1]]
            flag = "archived_at" if kind == "archive" else "deleted_at"
            if model.state[ref]["deleted_at"] is not None or model.state[ref][flag] is not None:
                continue
            change = (change_archive if kind == "archive" else change_delete)(ref=ref, origin=AI)
            model.record(entry(change, [(ref, flag, None, change.after[flag])], before=before))
        elif kind == "merge":
            duplicate, survivor = customer_refs[operation[1]], customer_refs[operation[2]]
            if duplicate == survivor or not (model.visible(duplicate) and model.visible(survivor)):
                continue
            change = change_merge(duplicate=duplicate, survivor=survivor, origin=AI)
            moves = [
                (row, duplicate.record_id, survivor.record_id)
                for row in order_refs
                if model.state[row]["customer"] == duplicate.record_id
            ]
            archived = [(duplicate, "archived_at", None, change.after["archived_at"])]
            model.record(entry(change, archived, moves, before=before))
        else:
            if not model.log:
                continue
            target = model.log[-1] if kind == "undo_latest" else model.log[operation[1] % len(model.log)]
            event(f"undo of {target.change.action}")
            if not model.in_force(target):
                event("undo refused: already undone")
                with pytest.raises(InvalidTransition, match="already undone"):
                    change_revert(change=target.change, actor=Actor.system("ops"), applied_by="ops")
            elif expected := model.conflicts(target):
                event("undo refused: conflict" + (" on a moved row" if any(".customer" in c for c in expected) else ""))
                with pytest.raises(RevertConflict) as refused:
                    change_revert(change=target.change, actor=Actor.system("ops"), applied_by="ops")
                reported = sorted(f"{p.record}.{p.field}" for p in refused.value.result.conflicts)
                assert reported == sorted(expected)
                assert exact(model.refs) == before, "a refused undo must write nothing"
            else:
                revert = change_revert(change=target.change, actor=Actor.system("ops"), applied_by="ops")
                undo = Entry(
                    len(model.log),
                    revert,
                    [(ref, name, after, was) for ref, name, was, after in target.own],
                    [(row, after, was) for row, was, after in target.moves],
                    reverts=target,
                    exact_before=before,
                )
                model.record(undo)
                event("undo went through")
                if target is model.log[-2]:
                    event("apply then undo")
                    assert exact(model.refs) == target.exact_before, "apply then undo must restore every record exactly"
        assert observed(model.refs) == model.state, f"after {operation}"


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=st.lists(operation, min_size=8, max_size=30))
def test_undo_never_overwrites_a_later_edit_and_apply_then_undo_restores_exactly(db, operations):
    with transaction.atomic():
        run(operations)
        transaction.set_rollback(True)
