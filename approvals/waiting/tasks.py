"""Beat tasks: tell people of proposals waiting past their SLA, and expire those nobody decided in time."""

from celery import shared_task

from approvals.waiting.expiry import EXPIRE_CHUNK, proposals_expire_due
from approvals.waiting.sla import sla_scan

SLA_TASK = "approvals.scan_sla"
EXPIRE_TASK = "approvals.expire_proposals"
# Both run every minute: a run still going after most of one gives way to the next.
SOFT_TIME_LIMIT_SECONDS = 50
TIME_LIMIT_SECONDS = 55


@shared_task(name=SLA_TASK, soft_time_limit=SOFT_TIME_LIMIT_SECONDS, time_limit=TIME_LIMIT_SECONDS)
def scan_sla() -> int:
    """Record the notices for proposals newly past their SLA or twice it; say how many were told of."""
    return sla_scan()


@shared_task(name=EXPIRE_TASK, soft_time_limit=SOFT_TIME_LIMIT_SECONDS, time_limit=TIME_LIMIT_SECONDS)
def expire_proposals() -> int:
    """Expire pending proposals past their workflow's expire_after, a chunk at a time; say how many."""
    total = 0
    while (expired := proposals_expire_due(limit=EXPIRE_CHUNK)) > 0:
        total += expired
        if expired < EXPIRE_CHUNK:
            break
    return total
