"""Undoing a change: the exact values back, or a conflict and nothing written."""

from datetime import timedelta

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import Actor, audit_verify_chain
from core.errors import InvalidTransition, ValidationFailed
from records.models import Change, ChangeAction, Customer, Order, Ticket
from records.selectors import changes_undone, record_state_at
from records.services.changes import ChangeOrigin, change_archive, change_delete, change_merge, change_update
from records.services.revert import RevertConflict, RevertOutcome, change_revert, changes_revert, changes_revert_preview
from records.store import RecordRef, get_store
from tests.helpers.factories import CustomerFactory, OrderFactory, TicketFactory

AI = ChangeOrigin(applied_by="worker@test/1", proposal_id=None, batch_id=7, workflow_slug="address-updates")
PERSON = ChangeOrigin(applied_by="dana")
OPS = Actor.system("ops")


def _ref(record) -> RecordRef:  # type: ignore[no-untyped-def]
    return RecordRef(record._meta.model_name, record.record_id)


def _undo(change: Change, **kwargs) -> Change:  # type: ignore[no-untyped-def]
    return change_revert(change=change, actor=OPS, applied_by="ops", **kwargs)


def _state(ref: RecordRef) -> dict:
    snapshot = get_store(ref.record_type).snapshot(ref)
    return {**snapshot["values"], "archived_at": snapshot["archived_at"], "deleted_at": snapshot["deleted_at"]}


def test_undoing_an_update_restores_the_exact_values_as_a_revert_change(db):
    customer = CustomerFactory(shipping_address="4 Old Mill Lane, Leith", priority="normal", tags=["vip"])
    ref = _ref(customer)
    original = _state(ref)
    change = change_update(
        ref=ref, values={"shipping_address": "12 Harbour Road", "priority": "high", "tags": []}, origin=AI
    )

    revert = _undo(change, reason="bad prompt")

    assert _state(ref) == original
    assert revert.action == ChangeAction.REVERT and revert.reverts_id == change.id
    assert revert.before == {"shipping_address": "12 Harbour Road", "priority": "high", "tags": []}
    assert revert.after == {"shipping_address": "4 Old Mill Lane, Leith", "priority": "normal", "tags": ["vip"]}
    assert (revert.version_before, revert.version_after) == (2, 3)
    assert (revert.batch_id, revert.workflow_slug, revert.applied_by) == (7, "address-updates", "ops")
    events = {e.field: e for e in AuditEvent.objects.filter(action="change.reverted", change_id=revert.id)}
    assert set(events) == {"shipping_address", "priority", "tags"}
    assert (events["tags"].old_value, events["tags"].new_value) == ([], ["vip"])
    assert events["priority"].details == {"reverts": str(change.id), "undoes": "update"}
    assert events["priority"].reason == "bad prompt"
    assert audit_verify_chain()[1] is None


def test_a_field_changed_since_is_a_conflict_and_nothing_is_written(db):
    customer = CustomerFactory(shipping_address="old", priority="normal")
    ref = _ref(customer)
    change = change_update(ref=ref, values={"shipping_address": "ai", "priority": "high"}, origin=AI)
    change_update(ref=ref, values={"shipping_address": "typed by a person"}, origin=PERSON)
    before_undo = get_store(ref.record_type).snapshot(ref)

    with pytest.raises(RevertConflict) as refused:
        _undo(change)

    assert get_store(ref.record_type).snapshot(ref) == before_undo
    [conflict] = refused.value.result.conflicts
    assert (conflict.field, conflict.before, conflict.written, conflict.now) == (
        "shipping_address",
        "old",
        "ai",
        "typed by a person",
    )
    assert "shipping_address: before 'old', we wrote 'ai', now 'typed by a person'" in refused.value.message
    assert not Change.objects.filter(action=ChangeAction.REVERT).exists()
    assert not AuditEvent.objects.filter(action="change.reverted").exists()


def test_a_person_may_undo_only_the_fields_without_a_conflict(db):
    customer = CustomerFactory(shipping_address="old", priority="normal")
    ref = _ref(customer)
    change = change_update(ref=ref, values={"shipping_address": "ai", "priority": "high"}, origin=AI)
    change_update(ref=ref, values={"shipping_address": "typed by a person"}, origin=PERSON)

    with pytest.raises(RevertConflict):
        _undo(change, fields=["shipping_address"])
    with pytest.raises(ValidationFailed, match="'colour' is not a part"):
        _undo(change, fields=["priority", "colour"])
    revert = _undo(change, fields=["priority"])

    customer.refresh_from_db()
    assert (customer.shipping_address, customer.priority) == ("typed by a person", "normal")
    assert revert.after == {"priority": "normal"}
    event = AuditEvent.objects.get(action="change.reverted", change_id=revert.id)
    assert event.details["left"] == ["shipping_address"]
    with pytest.raises(InvalidTransition, match="already undone"):
        _undo(change)


def test_a_later_edit_that_was_itself_undone_is_no_conflict(db):
    customer = CustomerFactory(shipping_address="old")
    ref = _ref(customer)
    change = change_update(ref=ref, values={"shipping_address": "ai"}, origin=AI)
    edit = change_update(ref=ref, values={"shipping_address": "person"}, origin=PERSON)
    _undo(edit)
    _undo(change)
    assert _state(ref)["shipping_address"] == "old"


def test_undo_of_an_undo_puts_the_change_back_and_can_be_undone_again(db):
    customer = CustomerFactory(shipping_address="old")
    ref = _ref(customer)
    change = change_update(ref=ref, values={"shipping_address": "ai"}, origin=AI)
    undo = _undo(change)
    redo = _undo(undo)
    assert _state(ref)["shipping_address"] == "ai"
    assert redo.reverts_id == undo.id and redo.after == {"shipping_address": "ai"}
    assert changes_undone(change_ids=[change.id, undo.id]) == {undo.id: redo.id}

    again = _undo(change)
    assert _state(ref)["shipping_address"] == "old"
    assert changes_undone(change_ids=[change.id, undo.id, redo.id]) == {change.id: again.id, undo.id: redo.id}
    with pytest.raises(InvalidTransition, match="already undone"):
        _undo(undo)


def test_undoing_an_archive_or_a_delete_brings_the_record_back(db):
    archived, deleted = CustomerFactory(), CustomerFactory()
    archive = change_archive(ref=_ref(archived), origin=AI)
    delete = change_delete(ref=_ref(deleted), origin=AI)
    _undo(archive)
    _undo(delete)
    assert Customer.objects.get(pk=archived.pk).archived_at is None
    assert Customer.objects.get(pk=deleted.pk).deleted_at is None


def test_undoing_an_unarchive_puts_back_the_exact_moment_it_was_archived(db):
    customer = CustomerFactory()
    archive = change_archive(ref=_ref(customer), origin=AI)
    archived_at = Customer.objects.get(pk=customer.pk).archived_at
    _undo(_undo(archive))
    assert Customer.objects.get(pk=customer.pk).archived_at == archived_at


def test_undoing_a_merge_brings_the_duplicate_and_every_moved_row_back(db):
    survivor = CustomerFactory()
    duplicate = CustomerFactory(full_name="Dana Lee (dup)", tags=["vip"])
    orders = [OrderFactory(customer=duplicate), OrderFactory(customer=duplicate)]
    ticket = TicketFactory(customer=duplicate)
    refs = [_ref(survivor), _ref(duplicate), *map(_ref, orders), _ref(ticket)]
    original = {ref: _state(ref) for ref in refs}
    merge = change_merge(duplicate=_ref(duplicate), survivor=_ref(survivor), origin=AI)

    unmerge = _undo(merge)

    assert {ref: _state(ref) for ref in refs} == original
    assert Order.objects.filter(customer=duplicate).count() == 2
    assert Ticket.objects.get(pk=ticket.pk).customer_id == duplicate.pk
    moved = {move["record_id"]: move for move in (unmerge.merge_payload or {})["moved"]}
    assert set(moved) == {orders[0].record_id, orders[1].record_id, ticket.record_id}
    assert moved[ticket.record_id]["from"] == survivor.record_id
    assert moved[ticket.record_id]["to"] == duplicate.record_id
    touched = set(AuditEvent.objects.filter(change_id=unmerge.id).values_list("record_id", flat=True))
    assert touched == {r.record_id for r in refs}

    # The trail still tells where the ticket was at each moment.
    remerge = _undo(unmerge)
    assert Ticket.objects.get(pk=ticket.pk).customer_id == survivor.pk
    assert Customer.objects.get(pk=duplicate.pk).archived_at is not None
    assert (remerge.merge_payload or {})["moved"][0]["to"] == survivor.record_id


def test_a_moved_row_that_changed_since_is_a_conflict_and_can_be_left_with_the_survivor(db):
    survivor, duplicate = CustomerFactory(), CustomerFactory()
    quiet, edited = OrderFactory(customer=duplicate), OrderFactory(customer=duplicate, refund_status="none")
    merge = change_merge(duplicate=_ref(duplicate), survivor=_ref(survivor), origin=AI)
    change_update(ref=_ref(edited), values={"refund_status": "requested"}, origin=PERSON)
    before = {ref: get_store(ref.record_type).snapshot(ref) for ref in map(_ref, (survivor, duplicate, quiet, edited))}

    with pytest.raises(RevertConflict) as refused:
        _undo(merge)
    assert {ref: get_store(ref.record_type).snapshot(ref) for ref in before} == before
    [conflict] = refused.value.result.conflicts
    assert (conflict.key, conflict.now) == (f"order:{edited.record_id}.customer", survivor.record_id)
    assert "changed since" in conflict.note

    with pytest.raises(ValidationFailed, match="always brings the duplicate back"):
        _undo(merge, fields=[f"order:{quiet.record_id}.customer"])
    _undo(merge, fields=["archived_at", f"order:{quiet.record_id}.customer"])
    assert Order.objects.get(pk=quiet.pk).customer_id == duplicate.pk
    assert Order.objects.get(pk=edited.pk).customer_id == survivor.pk
    assert Customer.objects.get(pk=duplicate.pk).archived_at is None


def test_a_moved_row_whose_later_change_was_undone_first_goes_back(db):
    survivor, duplicate = CustomerFactory(), CustomerFactory()
    order = OrderFactory(customer=duplicate, refund_status="none")
    merge = change_merge(duplicate=_ref(duplicate), survivor=_ref(survivor), origin=AI)
    refund = change_update(ref=_ref(order), values={"refund_status": "requested"}, origin=AI)
    # Newest first, in one run: the refund, then the merge.
    results = changes_revert(changes=[refund, merge], actor=OPS, applied_by="ops")
    assert [r.outcome for r in results] == [RevertOutcome.REVERTED, RevertOutcome.REVERTED]
    order.refresh_from_db()
    assert (order.customer_id, order.refund_status) == (duplicate.pk, "none")


def test_a_run_undoes_several_changes_to_one_record_newest_first(db):
    customer = CustomerFactory(shipping_address="first")
    ref = _ref(customer)
    one = change_update(ref=ref, values={"shipping_address": "second"}, origin=AI)
    two = change_update(ref=ref, values={"shipping_address": "third"}, origin=AI)

    preview = changes_revert_preview(changes=[two, one])
    assert [r.outcome for r in preview] == [RevertOutcome.REVERTED, RevertOutcome.REVERTED]
    assert get_store(ref.record_type).snapshot(ref)["values"]["shipping_address"] == "third"
    assert not Change.objects.filter(action=ChangeAction.REVERT).exists()

    results = changes_revert(changes=[two, one], actor=OPS, applied_by="ops")
    assert [r.outcome for r in results] == [RevertOutcome.REVERTED, RevertOutcome.REVERTED]
    customer.refresh_from_db()
    assert (customer.shipping_address, customer.version) == ("first", 5)
    reverts = Change.objects.filter(action=ChangeAction.REVERT).order_by("version_before")
    assert [r.revert for r in results] == list(reverts)
    assert [(r.version_before, r.version_after) for r in reverts] == [(3, 4), (4, 5)]


def test_oldest_first_the_older_change_is_a_conflict(db):
    customer = CustomerFactory(shipping_address="first")
    ref = _ref(customer)
    one = change_update(ref=ref, values={"shipping_address": "second"}, origin=AI)
    two = change_update(ref=ref, values={"shipping_address": "third"}, origin=AI)
    results = changes_revert(changes=[one, two], actor=OPS, applied_by="ops")
    assert [r.outcome for r in results] == [RevertOutcome.CONFLICT, RevertOutcome.REVERTED]
    assert get_store(ref.record_type).snapshot(ref)["values"]["shipping_address"] == "second"


def test_the_state_at_any_moment_still_reads_through_undos(db):
    start = timezone.now()
    survivor, duplicate = CustomerFactory(), CustomerFactory(shipping_address="a")
    order = OrderFactory(customer=duplicate)
    with time_machine.travel(start + timedelta(minutes=1), tick=False):
        update = change_update(ref=_ref(duplicate), values={"shipping_address": "b"}, origin=AI)
    with time_machine.travel(start + timedelta(minutes=2), tick=False):
        merge = change_merge(duplicate=_ref(duplicate), survivor=_ref(survivor), origin=AI)
    with time_machine.travel(start + timedelta(minutes=3), tick=False):
        _undo(merge)
    with time_machine.travel(start + timedelta(minutes=4), tick=False):
        _undo(update)

    def at(minutes: float, ref: RecordRef) -> dict:
        state = record_state_at(ref=ref, at=start + timedelta(minutes=minutes))
        return {**state.values, "archived": state.archived}

    assert at(0.5, _ref(duplicate))["shipping_address"] == "a"
    assert at(1.5, _ref(duplicate))["shipping_address"] == "b"
    assert at(2.5, _ref(duplicate))["archived"] is True
    assert at(2.5, _ref(order))["customer"] == survivor.record_id
    assert at(3.5, _ref(order))["customer"] == duplicate.record_id
    assert at(3.5, _ref(duplicate)) == {**at(1.5, _ref(duplicate)), "archived": False}
    assert at(4.5, _ref(duplicate)) == at(0.5, _ref(duplicate))


def test_two_undos_of_one_change_write_once(db):
    customer = CustomerFactory(shipping_address="old")
    change = change_update(ref=_ref(customer), values={"shipping_address": "ai"}, origin=AI)
    with transaction.atomic():
        changes_revert(changes=[change], actor=OPS, applied_by="ops")
        [second] = changes_revert(changes=[change], actor=OPS, applied_by="ops")
    assert second.outcome == RevertOutcome.ALREADY_UNDONE
    assert Change.objects.filter(reverts=change).count() == 1


def test_undoing_an_old_re_archive_after_a_new_archive_is_a_conflict(db):
    customer = CustomerFactory()
    ref = _ref(customer)
    archive = change_archive(ref=ref, origin=AI)
    unarchive = _undo(archive)
    rearchive = _undo(unarchive)
    _undo(archive)  # the archive is in force again, so it can be undone again
    change_archive(ref=ref, origin=PERSON)  # archived again, at another moment
    with pytest.raises(RevertConflict) as refused:
        _undo(rearchive)
    [conflict] = refused.value.result.conflicts
    assert conflict.field == "archived_at" and conflict.now != conflict.written
    assert Customer.objects.get(pk=customer.pk).archived_at is not None
