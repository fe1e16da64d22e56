"""A bad batch for the demo to undo: an address sweep whose prompt put the street number in the wrong
place, applied to 40 customers, two of which a support lead has since corrected by hand (conflicts)."""

from django.contrib.auth import get_user_model

from approvals.applying.services import proposals_apply
from approvals.demo.records import demo_records
from approvals.models import Batch, Workflow
from approvals.undo.drill import proposals_submit_approved
from audit.services import Actor
from records.services.changes import ChangeOrigin, change_update

SWEEP_SIZE = 40
HAND_CORRECTED = 2


def garbled(address: str) -> str:
    """What the bad prompt made of an address: the number moved to the end, the town dropped."""
    street = address.split(",")[0]
    number, _, rest = street.partition(" ")
    return f"{rest} {number}" if number.isdigit() else street


def applied_bad_batch(*, actor: Actor) -> Batch:
    users = get_user_model().objects.in_bulk(["lead", "agent"], field_name="username")
    workflow = Workflow.objects.get(slug="address-updates")
    customers = demo_records("customer")[200 : 200 + SWEEP_SIZE]
    batch = Batch.objects.create(
        workflow=workflow,
        name="Address sweep from the ticket import (prompt 6)",
        run_id="run-demo-sweep-0412",
        expected_size=len(customers),
        requested_by="agent",
    )
    proposals = proposals_submit_approved(
        batch=batch,
        plans=[
            {
                "action": "update",
                "record_id": customer.ref.record_id,
                "changes": {"shipping_address": garbled(customer.values["shipping_address"])},
                "base": {"shipping_address": customer.values["shipping_address"]},
                "follow_ups": [{"kind": "email_customer", "params": {"template": "address-confirmed"}}],
            }
            for customer in customers
        ],
        approver=users["lead"],
        actor=actor,
        prompt_version="address-update@6",
        reason="Address found in the customer's latest ticket",
        requested_by=users["agent"],
    )
    proposals_apply(proposal_ids=[p.pk for p in proposals], worker="demo-worker")
    for customer in customers[10 : 10 + HAND_CORRECTED]:
        change_update(
            ref=customer.ref,
            values={"shipping_address": f"{customer.values['shipping_address']} (checked by phone)"},
            origin=ChangeOrigin(applied_by="lead", reason="corrected by hand after a call"),
        )
    return batch
