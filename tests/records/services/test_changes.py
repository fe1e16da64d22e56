from datetime import timedelta

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from core.errors import InvalidTransition, ValidationFailed
from records.models import Change, Customer, Order, Ticket
from records.selectors import record_state_at
from records.services.changes import ChangeOrigin, change_archive, change_delete, change_merge, change_update
from records.store import RecordRef, VersionMismatch, get_store
from tests.helpers.factories import CustomerFactory, OrderFactory, TicketFactory

ORIGIN = ChangeOrigin(
    applied_by="worker@test/1",
    proposal_id=None,
    batch_id=7,
    workflow_slug="address-updates",
    prompt_version="address-update@7",
    model_name="gpt-x",
    model_version="2026-10-01",
)


def _ref(record) -> RecordRef:  # type: ignore[no-untyped-def]
    return RecordRef(record._meta.model_name, record.record_id)


def test_update_keeps_the_exact_values_it_replaced_and_audits_each_field(db):
    customer = CustomerFactory(shipping_address="4 Old Mill Lane, Leith", priority="normal")
    change = change_update(
        ref=_ref(customer), values={"shipping_address": "12 Harbour Road, Leith", "priority": "high"}, origin=ORIGIN
    )
    customer.refresh_from_db()
    assert customer.shipping_address == "12 Harbour Road, Leith"
    assert customer.version == 2
    assert change.before == {"shipping_address": "4 Old Mill Lane, Leith", "priority": "normal"}
    assert change.after == {"shipping_address": "12 Harbour Road, Leith", "priority": "high"}
    assert (change.version_before, change.version_after) == (1, 2)
    assert (change.batch_id, change.workflow_slug, change.applied_by) == (7, "address-updates", "worker@test/1")
    events = {e.field: e for e in AuditEvent.objects.filter(action="change.applied", change_id=change.id)}
    assert set(events) == {"shipping_address", "priority"}
    assert events["shipping_address"].old_value == "4 Old Mill Lane, Leith"
    assert events["shipping_address"].new_value == "12 Harbour Road, Leith"
    assert events["priority"].actor_label == "worker@test/1"
    assert events["priority"].prompt_version == "address-update@7"


def test_update_refuses_bad_values_naming_the_field_and_writes_nothing(db):
    customer = CustomerFactory()
    with pytest.raises(ValidationFailed) as refused:
        change_update(ref=_ref(customer), values={"priority": "extreme", "colour": "red"}, origin=ORIGIN)
    fields = [field for field, _ in refused.value.problems]
    assert fields == ["changes.priority", "changes.colour"]
    assert "not one of low, normal, high, urgent" in refused.value.message
    customer.refresh_from_db()
    assert customer.version == 1
    assert not Change.objects.exists()


def test_update_refuses_a_stale_version(db):
    customer = CustomerFactory()
    with pytest.raises(VersionMismatch), transaction.atomic():
        change_update(ref=_ref(customer), values={"priority": "high"}, origin=ORIGIN, expected_version=3)
    assert not Change.objects.exists()
    customer.refresh_from_db()
    assert (customer.priority, customer.version) == ("normal", 1)


def test_archive_and_delete_are_soft_and_restorable(db):
    customer = CustomerFactory()
    archived = change_archive(ref=_ref(customer), origin=ORIGIN)
    customer.refresh_from_db()
    assert customer.archived_at is not None and customer.deleted_at is None
    assert archived.before == {"archived_at": None}
    assert archived.after["archived_at"] == customer.archived_at.isoformat()
    deleted = change_delete(ref=_ref(customer), origin=ORIGIN)
    customer.refresh_from_db()
    assert customer.deleted_at is not None
    assert Customer.objects.filter(pk=customer.pk).exists()
    assert (deleted.version_before, deleted.version_after) == (2, 3)
    with pytest.raises(InvalidTransition, match="already deleted"), transaction.atomic():
        change_archive(ref=_ref(customer), origin=ORIGIN)
    with pytest.raises(InvalidTransition, match="is deleted"), transaction.atomic():
        change_update(ref=_ref(customer), values={"priority": "high"}, origin=ORIGIN)


def test_merge_moves_every_related_row_and_keeps_what_unmerge_needs(db):
    survivor = CustomerFactory()
    duplicate = CustomerFactory(full_name="Dana Lee (dup)", tags=["vip"])
    orders = [OrderFactory(customer=duplicate), OrderFactory(customer=duplicate)]
    ticket = TicketFactory(customer=duplicate)
    untouched = OrderFactory(customer=survivor)
    change = change_merge(duplicate=_ref(duplicate), survivor=_ref(survivor), origin=ORIGIN)

    duplicate.refresh_from_db()
    assert duplicate.archived_at is not None
    assert set(Order.objects.filter(customer=survivor).values_list("record_id", flat=True)) == {
        orders[0].record_id,
        orders[1].record_id,
        untouched.record_id,
    }
    assert Ticket.objects.get(pk=ticket.pk).customer_id == survivor.pk
    payload = change.merge_payload
    assert payload is not None
    assert payload["survivor"] == {"record_type": "customer", "record_id": survivor.record_id, "version": 1}
    assert payload["duplicate_snapshot"]["values"]["full_name"] == "Dana Lee (dup)"
    assert payload["duplicate_snapshot"]["values"]["tags"] == ["vip"]
    assert payload["duplicate_snapshot"]["archived_at"] is None
    moved = {(m["record_type"], m["record_id"]): m for m in payload["moved"]}
    assert set(moved) == {("order", orders[0].record_id), ("order", orders[1].record_id), ("ticket", ticket.record_id)}
    assert moved[("ticket", ticket.record_id)] == {
        "record_type": "ticket",
        "record_id": ticket.record_id,
        "field": "customer",
        "from": duplicate.record_id,
        "to": survivor.record_id,
        "version_before": 1,
        "version_after": 2,
    }
    touched = set(AuditEvent.objects.filter(change_id=change.id).values_list("record_id", flat=True))
    assert touched == {
        duplicate.record_id,
        survivor.record_id,
        orders[0].record_id,
        orders[1].record_id,
        ticket.record_id,
    }


def test_merge_refuses_itself_and_a_hidden_survivor(db):
    duplicate = CustomerFactory()
    with pytest.raises(ValidationFailed, match="merged into itself"):
        change_merge(duplicate=_ref(duplicate), survivor=_ref(duplicate), origin=ORIGIN)
    survivor = CustomerFactory(archived_at=timezone.now())
    with pytest.raises(InvalidTransition, match="archived"), transaction.atomic():
        change_merge(duplicate=_ref(duplicate), survivor=_ref(survivor), origin=ORIGIN)
    assert not Change.objects.exists()


def test_state_at_a_time_is_rebuilt_from_the_changes(db):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        customer = CustomerFactory(shipping_address="first", priority="low")
        ref = _ref(customer)
    with time_machine.travel(start + timedelta(minutes=1), tick=False):
        change_update(ref=ref, values={"shipping_address": "second"}, origin=ORIGIN)
    with time_machine.travel(start + timedelta(minutes=2), tick=False):
        change_update(ref=ref, values={"shipping_address": "third", "priority": "urgent"}, origin=ORIGIN)
    with time_machine.travel(start + timedelta(minutes=3), tick=False):
        change_archive(ref=ref, origin=ORIGIN)

    at_start = record_state_at(ref=ref, at=start + timedelta(seconds=30))
    assert at_start.values["shipping_address"] == "first"
    assert at_start.values["priority"] == "low"
    assert (at_start.version, at_start.archived, len(at_start.changes_since)) == (1, False, 3)
    between = record_state_at(ref=ref, at=start + timedelta(seconds=90))
    assert (between.values["shipping_address"], between.values["priority"], between.version) == ("second", "low", 2)
    before_archive = record_state_at(ref=ref, at=start + timedelta(seconds=150))
    assert before_archive.values["shipping_address"] == "third"
    assert not before_archive.archived
    now = record_state_at(ref=ref, at=start + timedelta(minutes=5))
    assert now.archived and now.version == 4 and now.changes_since == []
    assert now.values == get_store(ref.record_type).snapshot(ref)["values"]


def test_state_at_a_time_follows_a_row_moved_by_a_merge(db):
    start = timezone.now()
    survivor, duplicate = CustomerFactory(), CustomerFactory()
    order = OrderFactory(customer=duplicate)
    with time_machine.travel(start + timedelta(minutes=1), tick=False):
        change_merge(duplicate=_ref(duplicate), survivor=_ref(survivor), origin=ORIGIN)
    before = record_state_at(ref=_ref(order), at=start + timedelta(seconds=30))
    after = record_state_at(ref=_ref(order), at=start + timedelta(minutes=2))
    assert (before.values["customer"], before.version) == (duplicate.record_id, 1)
    assert (after.values["customer"], after.version) == (survivor.record_id, 2)
