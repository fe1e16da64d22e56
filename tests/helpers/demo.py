"""The demo as `make run` loads it, for browser tests that look at pages full of realistic work."""

from datetime import UTC, datetime

from approvals.demo.seed import DemoSeeded, demo_seed
from approvals.models import WEEKDAYS, Proposal, ProposalStatus, Workflow


def demo_after_hours() -> DemoSeeded:
    """The demo, at a moment that is after hours for address-updates whatever the clock says (its leads
    work every day but today and tomorrow, UTC), so that ops is on override duty for it."""
    seeded = demo_seed()
    today = datetime.now(UTC).weekday()
    days = [day for index, day in enumerate(WEEKDAYS) if index not in (today, (today + 1) % 7)]
    Workflow.objects.filter(slug="address-updates").update(override_days=days, override_timezone="UTC")
    return seeded


def first_pending(**filters: object) -> Proposal:
    proposal = Proposal.objects.filter(status=ProposalStatus.PENDING, **filters).order_by("pk").first()
    assert proposal is not None, f"the demo has no pending proposal with {filters}"
    return proposal
