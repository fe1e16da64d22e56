"""A record type bound to a store outside the database goes through the whole gate, approvals unchanged:
read by the pipeline, proposed, shown for review, approved, applied by the worker, and undone."""

from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from approvals.applying.services import Outcome, proposals_apply
from approvals.models import Proposal, ProposalStatus
from approvals.review.services import proposal_approve
from approvals.undo.services import undo_change
from audit.models import AuditEvent
from audit.services import Actor
from records.models import Change
from records.store import RecordRef
from tests.helpers.factories import FieldPolicyFactory, UserFactory
from tests.helpers.memory_store import MemoryRecordStore, bound
from tests.helpers.pipeline import make_pipeline, proposal_body

WORKER = "worker@test/1"
MARIA = RecordRef("customer", "CUS-10432")


@pytest.fixture
def memory() -> Iterator[MemoryRecordStore]:
    """Customers, orders and tickets all held outside the database, by one store."""
    store = MemoryRecordStore()
    with ExitStack() as stack:
        for record_type in ("customer", "order", "ticket"):
            stack.enter_context(bound(record_type, store))
        store.create_many(
            "customer",
            [
                ("CUS-10432", {"full_name": "Maria Lopez", "shipping_address": "4 Old Mill Lane, Leith"}),
                ("CUS-10433", {"full_name": "Maria Lopez", "shipping_address": "4 Old Mill Lane, Leith"}),
            ],
        )
        store.create_many(
            "order", [("ORD-50001", {"customer": "CUS-10433", "order_number": "#880001", "amount": "12.50"})]
        )
        yield store


@pytest.fixture
def ops(db):  # type: ignore[no-untyped-def]
    user = UserFactory(username="ops")
    user.groups.add(Group.objects.get_or_create(name="ops-managers")[0])
    return user


def _pipeline(workflow, **policies: str):  # type: ignore[no-untyped-def]
    for field, access in policies.items():
        FieldPolicyFactory(workflow=workflow, record_type="customer", field=field, access=access)
    return make_pipeline(workflow)


def _submitted_reviewed_approved_applied(pipeline, body, lead, *, on_review_screen: str) -> Proposal:  # type: ignore[no-untyped-def]
    """Submit `body` through the API; the lead sees `on_review_screen`, read from the store, and approves;
    the worker applies it."""
    submitted = pipeline.post("/api/v1/proposals", body)
    assert submitted.status_code == 201, submitted.content
    client = Client()
    client.force_login(lead)
    page = client.get(submitted.json()["review_url"])
    assert page.status_code == 200
    assert on_review_screen in page.content.decode()
    proposal = Proposal.objects.get(pk=submitted.json()["id"])
    proposal_approve(proposal=proposal, reviewer=lead)
    [result] = proposals_apply(proposal_ids=[proposal.pk], worker=WORKER)
    assert result.outcome == Outcome.APPLIED, result.detail
    return proposal


def test_an_update_to_a_record_held_elsewhere_is_applied_and_undone_through_the_gate(workflow, lead, ops, memory):
    pipeline = _pipeline(workflow, full_name="read", shipping_address="suggest")
    read = pipeline.get("/api/v1/records/customer/CUS-10432").json()
    assert (read["version"], read["fields"]) == (
        1,
        {"full_name": "Maria Lopez", "shipping_address": "4 Old Mill Lane, Leith"},
    )

    body = proposal_body(follow_ups=...)
    proposal = _submitted_reviewed_approved_applied(pipeline, body, lead, on_review_screen="4 Old Mill Lane, Leith")
    held = memory.fetch(MARIA)
    assert (held.version, held.values["shipping_address"]) == (2, "12 Harbour Road, Leith")
    change = Change.objects.get(proposal_id=proposal.pk)
    assert (change.before, change.after) == (
        {"shipping_address": "4 Old Mill Lane, Leith"},
        {"shipping_address": "12 Harbour Road, Leith"},
    )
    assert pipeline.get(f"/api/v1/proposals/{proposal.pk}").json()["change_id"] == str(change.id)

    undo_change(change=change, actor=Actor.user(ops), user=ops, reason="the customer moved back")
    held = memory.fetch(MARIA)
    assert (held.version, held.values["shipping_address"]) == (3, "4 Old Mill Lane, Leith")
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.REVERTED
    assert list(
        AuditEvent.objects.filter(record_id=MARIA.record_id, field="shipping_address")
        .values_list("action", "new_value")
        .order_by("id")
    ) == [("change.applied", "12 Harbour Road, Leith"), ("change.reverted", "4 Old Mill Lane, Leith")]


def test_a_merge_of_records_held_elsewhere_moves_their_orders_and_unmerges(workflow, lead, ops, memory):
    workflow.actions = ["merge"]
    workflow.save(update_fields=["actions"])
    pipeline = _pipeline(workflow, full_name="read", account_status="suggest")
    body = proposal_body(
        record_id="CUS-10433", action="merge", merge_into="CUS-10432", changes=..., base={}, follow_ups=...
    )
    proposal = _submitted_reviewed_approved_applied(pipeline, body, lead, on_review_screen="1 order (ORD-50001)")
    order = RecordRef("order", "ORD-50001")
    assert (memory.fetch(order).values["customer"], memory.fetch(order).version) == ("CUS-10432", 2)
    assert memory.fetch(RecordRef("customer", "CUS-10433")).archived

    undo_change(
        change=Change.objects.get(proposal_id=proposal.pk), actor=Actor.user(ops), user=ops, reason="two people"
    )
    assert (memory.fetch(order).values["customer"], memory.fetch(order).version) == ("CUS-10433", 3)
    assert not memory.fetch(RecordRef("customer", "CUS-10433")).archived
