"""Pending proposals that nobody decided in time expire: once older than their workflow's
`expire_after`, beat marks them `expired`, appends `proposal.expired` for each and tells each one's
pipeline (its outcome callback reports the status `expired`).

In chunks, each its own transaction. A proposal being decided at that moment (its row locked by the
reviewer's transaction) is skipped and looked at again by the next run: decided by then, it is left
alone; still pending, it expires then.
"""

from datetime import datetime, timedelta
from functools import reduce
from operator import or_

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from approvals.applying.callbacks import callback_queue_for
from approvals.models import Proposal, ProposalStatus, Workflow
from audit.services import Actor, EventData, audit_record_many
from core.timeutils import format_window

EXPIRE_CHUNK = 200
EXPIRY_ACTOR = "proposal-expiry"


def proposals_expire_due(*, now: datetime | None = None, limit: int = EXPIRE_CHUNK) -> int:
    """Expire up to `limit` pending proposals past their workflow's `expire_after`, oldest first, in
    one transaction. Returns how many expired (fewer than `limit`: none are left for now)."""
    now = now or timezone.now()
    rows = Workflow.objects.filter(expire_after__isnull=False).order_by().values_list("pk", "expire_after")
    windows = {pk: window for pk, window in rows if window is not None}
    if not windows:
        return 0
    due = reduce(or_, (Q(workflow_id=pk, created_at__lte=now - window) for pk, window in windows.items()))
    with transaction.atomic():
        proposals = list(
            Proposal.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(due, status=ProposalStatus.PENDING)
            .select_related("workflow", "service_account")
            .order_by("created_at", "id")[:limit]
        )
        if not proposals:
            return 0
        Proposal.objects.filter(pk__in=[proposal.pk for proposal in proposals]).update(
            status=ProposalStatus.EXPIRED,
            updated_at=now,
            revision=F("revision") + 1,
            claimed_by=None,
            claimed_until=None,
        )
        actor = Actor.system(EXPIRY_ACTOR)
        audit_record_many(_expired(proposal, windows[proposal.workflow_id], actor) for proposal in proposals)
        for proposal in proposals:
            proposal.status = ProposalStatus.EXPIRED
            callback_queue_for(proposal=proposal, event="expired")
    return len(proposals)


def _expired(proposal: Proposal, window: timedelta, actor: Actor) -> EventData:
    return EventData(
        action="proposal.expired",
        actor=actor,
        reason=f"nobody decided it within {format_window(window)}, its workflow's expire_after",
        details={"expire_after": format_window(window), "submitted_at": proposal.created_at.isoformat()},
        **proposal.trail_fields(),
    )
