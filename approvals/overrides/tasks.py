"""Beat task: end overrides on time and write that to the trail."""

from celery import shared_task

from approvals.overrides.services import EXPIRE_CHUNK, override_expire_due

EXPIRE_TASK = "approvals.expire_overrides"
EXPIRE_EVERY_SECONDS = 15.0


@shared_task(name=EXPIRE_TASK)
def expire_overrides() -> int:
    """Mark every override whose time is up, a chunk at a time, and say how many."""
    total = 0
    while (marked := override_expire_due(limit=EXPIRE_CHUNK)) > 0:
        total += marked
        if marked < EXPIRE_CHUNK:
            break
    return total
