"""Beat's task for `/metrics`: fold the trail into the running totals, so scrapes find little to do."""

from celery import shared_task
from django.conf import settings

from approvals.noticing.tallies import tallies_catch_up

FOLD_TASK = "approvals.fold_metrics"
# A run folds for most of its period, each chunk committed, and leaves the rest to the next run.
FOLD_SHARE_OF_PERIOD = 0.75


@shared_task(name=FOLD_TASK, soft_time_limit=int(settings.METRICS_FOLD_EVERY_SECONDS * 2))
def fold_metrics() -> int:
    """Fold what the trail gained into the totals, chunk after chunk; say how many event ids."""
    return tallies_catch_up(seconds=settings.METRICS_FOLD_EVERY_SECONDS * FOLD_SHARE_OF_PERIOD)
