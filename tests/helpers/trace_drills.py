"""Applied changes for trace drills: an address change a lead approved, written to a customer, on the trail."""

from datetime import datetime
from typing import Any

from django.contrib.auth.models import User

from approvals.models import Proposal, Workflow
from records.models import Change
from records.store import RecordRef
from tests.helpers.factories import CustomerFactory, ProposalFactory
from tests.helpers.trail import apply_update


def applied_change(
    *,
    workflow: Workflow,
    approver: User | None,
    at: datetime,
    record_id: str = "CUS-10042",
    before: str = "4 Old Mill Lane, Leith",
    after: str = "12 Harbour Road, Leith",
    **proposal: Any,
) -> Change:
    """`record_id`'s shipping address changed from `before` to `after` at `at`, approved by `approver`
    (by no one, as a workflow's file may let a change through without review, when None)."""
    customer = CustomerFactory(record_id=record_id, full_name="Ada Byron", shipping_address=before)
    approved = ProposalFactory(
        workflow=workflow,
        record_id=customer.record_id,
        changes={"shipping_address": after},
        base={"shipping_address": before},
        status="approved",
        decided_by=approver,
        approved_at=at,
        decided_at=at,
        **proposal,
    )
    if approver is None:
        Proposal.objects.filter(pk=approved.pk).update(decided_by=None)
    return apply_update(
        RecordRef("customer", customer.record_id),
        {"shipping_address": after},
        at=at,
        proposal=approved,
        approver_label=approver.get_full_name() if approver else "",
        decided_at=at,
    )


def right_answers(change: Change, *, approver: str = "Sam Okafor") -> dict[str, str]:
    """Every answer of a drill about `change` (an address change of `applied_change`), right."""
    return {
        "change": str(change.id),
        "before:shipping_address": change.before["shipping_address"],
        "after:shipping_address": change.after["shipping_address"],
        "approver": approver,
        "model": "gpt-x 2026-10-01",
        "prompt": "address-update@7",
        "undo": f"/changes/{change.id}/undo/",
    }
