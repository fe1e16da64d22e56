"""Periodic cleanup of idempotency keys older than the time they are kept (at least 24 hours)."""

from celery import shared_task

from approvals.intake.idempotency import idempotency_keys_purge


@shared_task(name="approvals.purge_idempotency_keys")
def purge_idempotency_keys() -> int:
    return idempotency_keys_purge()
