"""Proposals from a new prompt version, as a pipeline submits them and a lead approves them, and
what a screen says while the version's canary cap holds them."""

from datetime import timedelta

from django.utils import timezone

from approvals.intake.services import ProposalData, proposal_submit_many
from approvals.models import Proposal, ProposalStatus
from tests.helpers.factories import CustomerFactory, UserFactory
from tests.helpers.pipeline import Pipeline

HELD = (
    "prompt version address-update@8 of address-updates is not promoted yet: held to the canary cap of 2 a day; "
    "the owner promotes it on the readiness page"
)


def submit(pipeline: Pipeline, count: int, version: str = "address-update@8") -> list[Proposal]:
    """`count` address changes from `version`, in one call, as a pipeline's batch submission."""
    items = [
        ProposalData(
            record_type="customer",
            record_id=CustomerFactory().record_id,
            action="update",
            reason="Customer asked for the new address in ticket T-881",
            confidence=0.9,
            model_name="gpt-x",
            model_version="2026-10-01",
            prompt_version=version,
            changes={"shipping_address": f"{n} Harbour Road, Leith"},
            base={"shipping_address": "4 Old Mill Lane, Leith"},
        )
        for n in range(count)
    ]
    results = proposal_submit_many(account=pipeline.account, items=items)
    assert all(isinstance(result, Proposal) for result in results)
    return [result for result in results if isinstance(result, Proposal)]


def approve(proposals: list[Proposal]) -> list[int]:
    """Approved by a lead a few minutes ago (so the sweeper counts them as waiting)."""
    ids = [p.pk for p in proposals]
    Proposal.objects.filter(pk__in=ids).update(
        status=ProposalStatus.APPROVED,
        approved_at=timezone.now(),
        decided_at=timezone.now(),
        decided_by=UserFactory(),
        updated_at=timezone.now() - timedelta(minutes=5),
    )
    return ids
