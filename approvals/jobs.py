"""The one seam through which approvals queues work for the workers.

Each task a service may ask for is named here, and each is queued once the current transaction
commits: a decision rolled back queues nothing, and a worker never looks for a row not yet
committed. The database is the truth and a message only a nudge, so queueing twice does no harm.
Services call these functions and never touch Celery; tests catch what is queued by replacing
`send` (the `queued` fixture).

A message the broker does not take (refused, or no answer within PUBLISH_TIMEOUT_SECONDS) is
logged and let be: by then the transaction has committed, so the request that queued it has done
its work and answers as it would have, and the sweepers find the approved proposal or the undo job
the message was about and queue it again.
"""

import logging
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
DELIVER_NOTICES = "approvals.deliver_notices"

# What becomes of the work a message was for when the broker does not take it.
WITHOUT_THE_MESSAGE = {
    APPLY: "the apply sweeper queues its proposals again",
    SWEEP: "beat's apply sweeper runs on its own schedule",
    CALLBACK: "this outcome callback is not delivered",
    UNDO: "the undo sweeper queues the job again",
    DELIVER_NOTICES: "beat's notice sweeper delivers it",
}

logger = logging.getLogger(__name__)


def send(name: str, *, args: list[Any] | None = None, kwargs: dict[str, Any] | None = None, **options: Any) -> None:
    """Hand one task message to the broker now."""
    current_app.send_task(name, args=args, kwargs=kwargs, **options)


def _sent(name: str, *, args: list[Any] | None = None, kwargs: dict[str, Any] | None = None, **options: Any) -> bool:
    """Send one message; on a broker fault, log it and say so instead of raising.

    Every fault counts (a refused or lost connection, a timeout, a broker out of memory): what
    queued the message has committed, and an exception here would turn its answer into a 500.
    """
    try:
        send(name, args=args, kwargs=kwargs, **options)
    except Exception as error:
        logger.warning(
            "could not queue %s (%s: %s); %s",
            name,
            type(error).__name__,
            error,
            WITHOUT_THE_MESSAGE.get(name, "nothing queues it again"),
        )
        return False
    return True


def apply_send_now(proposal_ids: Sequence[int], *, countdown: float | None = None) -> None:
    """Send the apply task for these proposals now, in chunks of APPLY_CHUNK_SIZE (a worker's run).

    After a chunk the broker did not take, the rest are not tried: each would wait as long again,
    and the sweeper queues them all.
    """
    size = max(1, int(settings.COUNTERSIGN["APPLY_CHUNK_SIZE"]))
    for start in range(0, len(proposal_ids), size):
        if not _sent(APPLY, args=[list(proposal_ids[start : start + size])], countdown=countdown):
            return


def apply_queue(*, proposal_ids: Iterable[int], countdown: float | None = None) -> None:
    """Queue the apply task for these proposals, in chunks, once the current transaction commits."""
    ids = list(dict.fromkeys(int(pk) for pk in proposal_ids))
    if ids:
        transaction.on_commit(lambda: apply_send_now(ids, countdown=countdown))


def apply_sweep_queue() -> None:
    """Ask a worker to queue every approved proposal that may apply now (after a stop is released)."""
    transaction.on_commit(lambda: _sent(SWEEP, kwargs={"stale_seconds": 0}))


def callback_queue(*, proposal_id: int, event: str) -> None:
    """Queue one outcome callback to the proposal's pipeline; each delivery has its own id."""
    transaction.on_commit(lambda: _sent(CALLBACK, args=[proposal_id, event, str(uuid.uuid4())]))


def undo_job_queue(*, job_id: int) -> None:
    """Queue a bulk undo job's run."""
    transaction.on_commit(lambda: _sent(UNDO, args=[job_id]))


def notice_deliver_queue(*, notice_id: int | None = None) -> None:
    """Queue the delivery of one notice (its channels and people), or of every notice and delivery due."""
    transaction.on_commit(lambda: _sent(DELIVER_NOTICES, kwargs={"notice_id": notice_id}))


def worker_name(task: Task) -> str:
    """The worker process running `task`: its node name and process id (a prefork worker has several)."""
    return f"{task.request.hostname or 'worker'}/{os.getpid()}"
