"""Running totals behind `/metrics`: what the trail has told so far, folded in at each scrape."""

from django.db import models


class MetricsTally(models.Model):
    """One running total of one prompt version: an outcome's count (`outcome:rejected`), a histogram's
    bucket (`decision_time:le:7`, the eighth bound), count, or sum in whole microseconds (integers, so
    folding in steps adds up to exactly what folding at once does). Totals only grow."""

    workflow_slug = models.CharField(max_length=64)
    prompt_version = models.CharField(max_length=100)
    name = models.CharField(max_length=64)
    value = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workflow_slug", "prompt_version", "name"], name="metrics_tally_one")
        ]


class MetricsCursor(models.Model):
    """How far the totals have read the trail: every event up to `audit_event_id` is folded in. One row."""

    id = models.PositiveSmallIntegerField(primary_key=True)
    audit_event_id = models.BigIntegerField(default=0)
    folded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="metrics_cursor_single")]
