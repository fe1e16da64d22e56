"""Nudging the apply worker: the task names proposal ids, in chunks, once the transaction commits.

The database is the truth and a message is only a nudge, so queueing a proposal twice does no harm.
"""

from collections.abc import Iterable, Sequence

from django.conf import settings
from django.db import transaction

APPLY_TASK = "approvals.apply_approved"
SWEEP_TASK = "approvals.sweep_approved"


def apply_send_now(proposal_ids: Sequence[int], *, countdown: float | None = None) -> None:
    from config.celery import app as celery_app

    size = max(1, int(settings.COUNTERSIGN["APPLY_CHUNK_SIZE"]))
    for start in range(0, len(proposal_ids), size):
        celery_app.send_task(APPLY_TASK, args=[list(proposal_ids[start : start + size])], countdown=countdown)


def apply_queue(*, proposal_ids: Iterable[int], countdown: float | None = None) -> None:
    """Queue the apply task for these proposals, in chunks, once the current transaction commits."""
    ids = list(dict.fromkeys(int(pk) for pk in proposal_ids))
    if ids:
        transaction.on_commit(lambda: apply_send_now(ids, countdown=countdown))


def apply_queue_sweep() -> None:
    """Ask a worker to queue every approved proposal that may apply now (after a stop is released)."""
    from config.celery import app as celery_app

    transaction.on_commit(lambda: celery_app.send_task(SWEEP_TASK, kwargs={"stale_seconds": 0}))
