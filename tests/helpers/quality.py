"""Decided proposals placed on known days, for the quality page's tests."""

from datetime import datetime, time, timedelta

from django.contrib.auth.models import User
from django.utils import timezone

from approvals.models import Proposal, Workflow
from tests.helpers.factories import CustomerFactory, ProposalFactory


def day_at(days_back: int, hour: int = 12, minute: int = 0) -> datetime:
    """A moment of a day before today (0: today), in the current time zone."""
    day = timezone.localdate() - timedelta(days=days_back)
    return datetime.combine(day, time(hour, minute), tzinfo=timezone.get_current_timezone())


def decided(
    workflow: Workflow,
    *,
    version: str,
    status: str,
    at: datetime,
    waited_minutes: float = 0,
    by: User | None = None,
    note: str = "",
) -> Proposal:
    """A proposal of `version` decided at `at` by `by` (by the policy when None), submitted
    `waited_minutes` before; `status` is where it stands now."""
    record_id = CustomerFactory().record_id
    return ProposalFactory(
        workflow=workflow,
        record_id=record_id,
        prompt_version=version,
        status=status,
        created_at=at - timedelta(minutes=waited_minutes),
        approved_at=None if status == "rejected" else at,
        decided_at=at,
        decided_by=by,
        decision_note=note,
        policy=False,
    )
