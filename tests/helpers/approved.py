"""Approved address changes in bulk, written straight to the database, ready for a worker to apply."""

from itertools import count

from django.utils import timezone

from approvals.models import Batch, FieldPolicy, Proposal, ProposalStatus, Workflow
from records.models import Customer
from tests.helpers.factories import BatchFactory, UserFactory, WorkflowFactory

_numbers = count(30000)


def make_approved(count_: int, *, workflow: Workflow | None = None, batch: Batch | None = None) -> list[int]:
    """`count_` customers, and an approved address change for each, all in one batch."""
    batch = batch or BatchFactory(workflow=workflow or WorkflowFactory(), expected_size=count_)
    FieldPolicy.objects.get_or_create(
        workflow=batch.workflow, record_type="customer", field="shipping_address", defaults={"access": "suggest"}
    )
    lead = UserFactory(username="lead")
    numbers = [next(_numbers) for _ in range(count_)]
    Customer.objects.bulk_create(
        Customer(record_id=f"CUS-{n}", full_name=f"Customer {n}", shipping_address="4 Old Mill Lane, Leith")
        for n in numbers
    )
    now = timezone.now()
    proposals = Proposal.objects.bulk_create(
        Proposal(
            workflow=batch.workflow,
            batch=batch,
            record_type="customer",
            record_id=f"CUS-{n}",
            action="update",
            changes={"shipping_address": f"{n} Harbour Road, Leith"},
            base={"shipping_address": "4 Old Mill Lane, Leith"},
            reason="bulk address clean-up",
            confidence=0.9,
            model_name="gpt-x",
            model_version="2026-10-01",
            prompt_version="address-update@7",
            status=ProposalStatus.APPROVED,
            approved_at=now,
            decided_by=lead,
            updated_at=now,
        )
        for n in numbers
    )
    return [p.pk for p in proposals]
