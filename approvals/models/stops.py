"""The stop switch: while engaged, no write in its scope is applied."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from approvals.models.intake import Batch
from approvals.models.workflows import Workflow


class StopScope(models.TextChoices):
    GLOBAL = "global", "Everything"
    WORKFLOW = "workflow", "Workflow"
    BATCH = "batch", "Batch"


class StopSwitch(models.Model):
    """While engaged, no write in its scope is applied. Released only by a person."""

    scope = models.CharField(max_length=10, choices=StopScope.choices)
    target = models.CharField(max_length=40)  # "global", "workflow:<id>" or "batch:<id>"
    workflow = models.ForeignKey(Workflow, null=True, blank=True, on_delete=models.PROTECT)
    batch = models.ForeignKey(Batch, null=True, blank=True, on_delete=models.PROTECT)
    reason = models.TextField()
    engaged_at = models.DateTimeField(default=timezone.now)
    engaged_by_label = models.CharField(max_length=200)
    engaged_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The prompt version whose rates tripped the circuit breaker, which engaged this switch by itself
    # (`stops.breaker`); blank for a switch a person or a pipeline engaged.
    breaker_prompt_version = models.CharField(max_length=100, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["target"], condition=Q(released_at__isnull=True), name="stop_one_engaged_per_target"
            ),
            models.CheckConstraint(
                condition=Q(scope="global", workflow__isnull=True, batch__isnull=True)
                | Q(scope="workflow", workflow__isnull=False, batch__isnull=True)
                | Q(scope="batch", batch__isnull=False),
                name="stop_scope_matches_target",
            ),
        ]

    def __str__(self) -> str:
        return f"stop {self.target}"

    @property
    def label(self) -> str:
        """What it stops, as every page, message and command names it: "everything", "workflow
        address-updates" or "batch 12 (Nightly sweep, address-updates)". Load it with its workflow and batch."""
        if self.batch is not None:
            workflow = self.workflow or self.batch.workflow
            return f"batch {self.batch_id} ({self.batch.name}, {workflow.slug})"
        if self.workflow is not None:
            return f"workflow {self.workflow.slug}"
        return "everything"
