"""The circuit breaker tripped by a real Celery worker finding a conflict, as it happens in production."""

import pytest

from approvals.applying.selectors import proposal_apply_wait_reason
from approvals.models import Notice, Proposal, ProposalStatus, StopScope, StopSwitch
from approvals.review.services import proposal_approve
from approvals.stops.services import stop_release_by_person
from audit.models import AuditEvent
from records.models import Change, Customer
from tests.helpers.breaker import VERSION, history
from tests.helpers.factories import CustomerFactory, ProposalFactory
from tests.helpers.worker import quiet_after, wait_until

pytestmark = pytest.mark.worker


def test_a_conflict_marked_by_the_worker_trips_the_breaker_and_holds_the_next_write(start_worker, workflow, lead):
    workflow.circuit_breaker = {"window": 200, "min_samples": 5, "max_conflict_rate": 0.1}
    workflow.save(update_fields=["circuit_breaker"])
    history(workflow, applied=4)
    start_worker(concurrency=1)
    moved = CustomerFactory(shipping_address="9 New Street, Leith")  # no longer what the AI saw
    stale = ProposalFactory(workflow=workflow, prompt_version=VERSION, record_id=moved.record_id)
    proposal_approve(proposal=stale, reviewer=lead)
    switch = wait_until(
        lambda: StopSwitch.objects.filter(workflow=workflow, released_at__isnull=True).first(),
        timeout=30,
        what="the circuit breaker's stop",
    )
    assert Proposal.objects.get(pk=stale.pk).status == ProposalStatus.CONFLICT
    assert (switch.scope, switch.engaged_by_label, switch.breaker_prompt_version) == (
        StopScope.WORKFLOW,
        "the circuit breaker",
        VERSION,
    )
    assert switch.reason == (
        "circuit breaker: prompt version address-update@9 in conflict at 20%, over its limit of 10%: "
        "1 of its last 5 decided proposals in address-updates"
    )
    engaged = AuditEvent.objects.get(action="stop.engaged")
    assert (engaged.actor_label, engaged.details["circuit_breaker"]["limit"]) == (
        "the circuit breaker",
        "max_conflict_rate",
    )
    assert Notice.objects.filter(event="circuit_tripped", dedupe_key=f"circuit:{switch.pk}").count() == 1
    # The stop holds the workflow's next approved write until a person releases it.
    customer = CustomerFactory(shipping_address="4 Old Mill Lane, Leith")
    held = ProposalFactory(workflow=workflow, prompt_version="address-update@8", record_id=customer.record_id)
    proposal_approve(proposal=held, reviewer=lead)
    written, _ = quiet_after(lambda: Change.objects.filter(proposal_id=held.pk).count(), for_seconds=2)
    assert written == 0
    assert "by the circuit breaker" in (proposal_apply_wait_reason(proposal=Proposal.objects.get(pk=held.pk)) or "")
    stop_release_by_person(switch=switch, user=workflow.owner, note="prompt version 9 withdrawn")
    wait_until(lambda: Proposal.objects.get(pk=held.pk).status == ProposalStatus.APPLIED, timeout=30)
    assert Customer.objects.get(record_id=customer.record_id).shipping_address == "12 Harbour Road, Leith"
