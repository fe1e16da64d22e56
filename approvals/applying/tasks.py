"""Celery tasks. They take ids, call one service, and leave every rule to it."""

import logging
from collections import Counter

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_ready
from django.conf import settings
from django.db import InterfaceError, OperationalError

from approvals.applying.callbacks import callback_deliver, callback_give_up
from approvals.applying.delivery import DeliveryFailed
from approvals.applying.followups import followups_run_due
from approvals.applying.queueing import apply_retry_later, apply_sweep
from approvals.applying.services import proposals_apply
from approvals.jobs import apply_send_now, worker_name

logger = logging.getLogger(__name__)


@shared_task(
    bind=True,
    name="approvals.apply_approved",
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=8,
    soft_time_limit=settings.COUNTERSIGN["APPLY_SOFT_TIME_LIMIT_SECONDS"],
    time_limit=settings.COUNTERSIGN["APPLY_TIME_LIMIT_SECONDS"],
)
def apply_approved(self: Task, proposal_ids: list[int]) -> dict[str, int]:
    """Apply these approved proposals; a long list is split into chunks spread over the workers.
    At the soft time limit the chunk stops where it is, and what it had not written is queued again."""
    ids = [int(pk) for pk in proposal_ids]
    if len(ids) > int(settings.COUNTERSIGN["APPLY_CHUNK_SIZE"]):
        apply_send_now(ids)
        return {"queued": len(ids)}
    results = proposals_apply(proposal_ids=ids, worker=worker_name(self), interrupted_by=(SoftTimeLimitExceeded,))
    apply_retry_later(results=results)
    return dict(Counter(str(result.outcome) for result in results))


@shared_task(name="approvals.sweep_approved", acks_late=True)
def sweep_approved(stale_seconds: float | None = None) -> int:
    """Queue approved proposals that waited too long (beat), or all that may apply (after a release)."""
    return len(apply_sweep(stale_seconds=stale_seconds))


@shared_task(bind=True, name="approvals.run_due_followups", acks_late=True)
def run_due_followups(self: Task) -> int:
    return followups_run_due(worker=worker_name(self))


@shared_task(bind=True, name="approvals.send_callback", acks_late=True)
def send_callback(self: Task, proposal_id: int, event: str, delivery_id: str) -> int | None:
    """POST one outcome to the pipeline, retrying with a growing delay; give up on the trail."""
    try:
        return callback_deliver(proposal_id=proposal_id, event=event, delivery_id=delivery_id)
    except DeliveryFailed as error:
        retries = self.request.retries
        if retries >= int(settings.COUNTERSIGN["CALLBACK_MAX_RETRIES"]):
            callback_give_up(proposal_id=proposal_id, event=event, error=str(error), attempts=retries + 1)
            return None
        countdown = float(settings.COUNTERSIGN["CALLBACK_RETRY_SECONDS"]) * 2**retries
        raise self.retry(exc=error, countdown=min(countdown, 3600)) from error


@worker_ready.connect
def check_broker_eviction(sender: object = None, **kwargs: object) -> None:
    """A Redis broker that evicts keys can lose queued work: say so loudly at start."""
    if not settings.REDIS_URL:
        return
    import redis

    try:
        policy = redis.Redis.from_url(settings.REDIS_URL).config_get("maxmemory-policy").get("maxmemory-policy")
    except redis.RedisError as error:
        logger.warning("could not read Redis maxmemory-policy: %s", error)
        return
    if policy != "noeviction":
        logger.error("Redis maxmemory-policy is %r; set it to noeviction so queued work is never evicted", policy)
