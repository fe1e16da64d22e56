"""A workflow's circuit breaker set, and a prompt version's decisions made in the past, for its tests."""

from datetime import timedelta
from itertools import count

from django.utils import timezone

from approvals.models import Proposal, ProposalStatus, Workflow

VERSION = "address-update@9"
_records = count(70000)


def set_breaker(workflow: Workflow, **limits: float) -> Workflow:
    workflow.circuit_breaker = {"window": 200, "min_samples": 20, **limits}
    workflow.save(update_fields=["circuit_breaker"])
    return workflow


def history(
    workflow: Workflow, *, version: str = VERSION, ago: timedelta = timedelta(hours=1), **statuses: int
) -> None:
    """Proposals of `version` decided in the past, as many of each status as asked, oldest first."""
    now = timezone.now()
    rows = [status for status, number in statuses.items() for _ in range(number)]
    Proposal.objects.bulk_create(
        Proposal(
            workflow=workflow,
            record_type="customer",
            record_id=f"CUS-{next(_records)}",
            action="update",
            changes={"shipping_address": "12 Harbour Road, Leith"},
            reason="address from a ticket",
            confidence=0.9,
            model_name="gpt-x",
            model_version="2026-10-01",
            prompt_version=version,
            status=status,
            decided_at=now - ago - timedelta(seconds=len(rows) - position),
            approved_at=None if status == ProposalStatus.REJECTED else now - ago,
        )
        for position, status in enumerate(rows)
    )
