"""The circuit breaker in the demo: a new prompt version of duplicate-merge starts archiving profiles
that are no duplicates, a support lead rejects what is wrong, and the breaker stops the workflow by
itself. The version's last proposals are still pending, marked on the review queue.

The proposals come through the pipeline's own intake and each decision through the review services
a person's click reaches, with the token of a review screen shown to `lead` long enough ago; the
breaker judges after each one, as it does for a person.
"""

from django.contrib.auth import get_user_model

from approvals.demo.history import DemoReviewer
from approvals.demo.proposals import REQUESTER
from approvals.demo.records import demo_records
from approvals.intake.services import ProposalData, proposal_submit
from approvals.models import ServiceAccount, StopSwitch

BREAKER_WORKFLOW = "duplicate-merge"
BREAKER_VERSION = "dedupe@3"
# The version's proposals: the first six archive true duplicates, the rest profiles that only share
# a surname with another. The lead decides the first ten (the tenth trips the breaker: 4 rejected of
# 10, over 30%); the other four wait.
APPROVED = 6
DECIDED = 10
PROPOSALS = 14


def demo_breaker(*, accounts: dict[str, ServiceAccount]) -> StopSwitch | None:
    """Submit the new version's proposals, decide them as `lead`, and return the breaker's stop."""
    user = get_user_model().objects.get(username="lead")
    account = accounts[BREAKER_WORKFLOW]
    customers = demo_records("customer")[270 : 270 + PROPOSALS]
    proposals = [
        proposal_submit(
            account=account,
            data=ProposalData(
                record_type="customer",
                record_id=customer.ref.record_id,
                action="archive",
                requested_by=REQUESTER,
                reason=(
                    f"Duplicate of {customers[n ^ 1].ref.record_id}: same email and phone"
                    if n < APPROVED
                    else f"Duplicate of {customers[n ^ 1].ref.record_id}: same surname"
                ),
                confidence=0.71,
                model_name="gpt-x",
                model_version="2026-11-15",
                prompt_version=BREAKER_VERSION,
                run_id="dedupe-run-2026-12-06",
            ),
        )
        for n, customer in enumerate(customers)
    ]
    lead = DemoReviewer(user)
    for n, proposal in enumerate(proposals[:DECIDED]):
        if n < APPROVED:
            lead.approve(proposal)
        else:
            lead.reject(proposal, "Not a duplicate: only the surname matches, the email and phone differ")
    return (
        StopSwitch.objects.filter(
            workflow__slug=BREAKER_WORKFLOW, breaker_prompt_version=BREAKER_VERSION, released_at__isnull=True
        )
        .order_by("-engaged_at")
        .first()
    )
