"""The one seam through which approvals queues work for the workers.

Each task a service may ask for is named here, and each is queued once the current transaction
commits: a decision rolled back queues nothing, and a worker never looks for a row not yet
committed. The database is the truth and a message only a nudge, so queueing twice does no harm.
Services call these functions and never touch Celery; tests catch what is queued by replacing
`send` (the `queued` fixture).
"""

import os
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from celery import Task, current_app
from django.conf import settings
from django.db import transaction

APPLY = "approvals.apply_approved"
SWEEP = "approvals.sweep_approved"
CALLBACK = "approvals.send_callback"
UNDO = "approvals.run_undo_job"


def send(name: str, *, args: list[Any] | None = None, kwargs: dict[str, Any] | None = None, **options: Any) -> None:
    """Hand one task message to the broker now."""
    current_app.send_task(name, args=args, kwargs=kwargs, **options)


def apply_send_now(proposal_ids: Sequence[int], *, countdown: float | None = None) -> None:
    """Send the apply task for these proposals now, in chunks of APPLY_CHUNK_SIZE (a worker's run)."""
    size = max(1, int(settings.COUNTERSIGN["APPLY_CHUNK_SIZE"]))
    for start in range(0, len(proposal_ids), size):
        send(APPLY, args=[list(proposal_ids[start : start + size])], countdown=countdown)


def apply_queue(*, proposal_ids: Iterable[int], countdown: float | None = None) -> None:
    """Queue the apply task for these proposals, in chunks, once the current transaction commits."""
    ids = list(dict.fromkeys(int(pk) for pk in proposal_ids))
    if ids:
        transaction.on_commit(lambda: apply_send_now(ids, countdown=countdown))


def apply_sweep_queue() -> None:
    """Ask a worker to queue every approved proposal that may apply now (after a stop is released)."""
    transaction.on_commit(lambda: send(SWEEP, kwargs={"stale_seconds": 0}))


def callback_queue(*, proposal_id: int, event: str) -> None:
    """Queue one outcome callback to the proposal's pipeline; each delivery has its own id."""
    transaction.on_commit(lambda: send(CALLBACK, args=[proposal_id, event, str(uuid.uuid4())]))


def undo_job_queue(*, job_id: int) -> None:
    """Queue a bulk undo job's run."""
    transaction.on_commit(lambda: send(UNDO, args=[job_id]))


def worker_name(task: Task) -> str:
    """The worker process running `task`: its node name and process id (a prefork worker has several)."""
    return f"{task.request.hostname or 'worker'}/{os.getpid()}"
