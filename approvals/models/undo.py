"""Bulk undo jobs and rollback drills."""

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from approvals.models.intake import Batch
from approvals.models.stops import StopSwitch
from approvals.models.workflows import Workflow


class UndoScope(models.TextChoices):
    BATCH = "batch", "A batch"
    WORKFLOW = "workflow", "A workflow's changes since a time"
    PROMPT_VERSION = "prompt_version", "Every change under one prompt version"


class UndoJobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"


UNDO_JOB_FINISHED = (UndoJobStatus.DONE, UndoJobStatus.CANCELLED)


class UndoJob(models.Model):
    """A bulk undo: the changes it covers (fixed when it starts, newest first) and how far it got."""

    scope = models.CharField(max_length=20, choices=UndoScope.choices)
    workflow = models.ForeignKey(Workflow, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    batch = models.ForeignKey(Batch, null=True, blank=True, on_delete=models.PROTECT, related_name="undo_jobs")
    prompt_version = models.CharField(max_length=100, blank=True)
    since = models.DateTimeField(null=True, blank=True)
    until = models.DateTimeField(null=True, blank=True)
    reason = models.TextField()
    status = models.CharField(max_length=10, choices=UndoJobStatus.choices, default=UndoJobStatus.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    reverted = models.PositiveIntegerField(default=0)
    conflicts = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    followups_cancelled = models.PositiveIntegerField(default=0)
    followups_not_retractable = models.PositiveIntegerField(default=0)
    # The stop switch this job engaged to hold its batch (none when the batch was already stopped): it
    # is released when the job ends unless some of the batch is still left for it to hold.
    stop = models.ForeignKey(StopSwitch, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_label = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    progressed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_by_label = models.CharField(max_length=200, blank=True)
    worker = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "progressed_at"], name="undo_job_status_progress")]
        constraints = [
            models.CheckConstraint(condition=Q(scope__in=UndoScope.values), name="undo_job_scope_valid"),
            models.CheckConstraint(condition=Q(status__in=UndoJobStatus.values), name="undo_job_status_valid"),
            models.CheckConstraint(
                condition=Q(scope="batch", batch__isnull=False)
                | Q(scope="workflow", workflow__isnull=False, since__isnull=False)
                | Q(scope="prompt_version", prompt_version__gt=""),
                name="undo_job_scope_matches_target",
            ),
            models.CheckConstraint(condition=Q(done__lte=F("total")), name="undo_job_done_within_total"),
        ]

    def __str__(self) -> str:
        return f"undo job {self.pk} ({self.describe()})"

    def describe(self) -> str:
        if self.scope == UndoScope.BATCH:
            return f"batch {self.batch_id}"
        window = f" until {self.until:%Y-%m-%d %H:%M} UTC" if self.until else ""
        if self.scope == UndoScope.WORKFLOW:
            slug = self.workflow.slug if self.workflow else self.workflow_id
            return f"workflow {slug} since {self.since:%Y-%m-%d %H:%M} UTC{window}"
        since = f" since {self.since:%Y-%m-%d %H:%M} UTC" if self.since else ""
        return f"prompt version {self.prompt_version}{since}{window}"

    @property
    def finished(self) -> bool:
        return self.status in UNDO_JOB_FINISHED

    @property
    def percent(self) -> int:
        return 100 if not self.total else int(self.done * 100 / self.total)


class UndoItemOutcome(models.TextChoices):
    PENDING = "pending", "Not yet undone"
    REVERTED = "reverted", "Undone"
    CONFLICT = "conflict", "Conflict: left as it is"
    SKIPPED = "skipped", "Already undone"
    FAILED = "failed", "Failed"


class UndoJobItem(models.Model):
    """One change in a bulk undo, in the order it is undone (newest first), and what became of it."""

    job = models.ForeignKey(UndoJob, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField()
    change_id = models.UUIDField()
    record_type = models.CharField(max_length=32)
    record_id = models.CharField(max_length=64)
    outcome = models.CharField(max_length=10, choices=UndoItemOutcome.choices, default=UndoItemOutcome.PENDING)
    detail = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)

    class Meta:
        ordering = ["job", "position"]
        indexes = [models.Index(fields=["job", "outcome", "position"], name="undo_item_job_outcome")]
        constraints = [
            models.UniqueConstraint(fields=["job", "position"], name="undo_item_one_per_position"),
            models.CheckConstraint(condition=Q(outcome__in=UndoItemOutcome.values), name="undo_item_outcome_valid"),
        ]

    def __str__(self) -> str:
        return f"undo item {self.job_id}/{self.position} {self.outcome}"


# The throwaway workflow the rollback drill runs as when it is not given one.
DRILL_WORKFLOW = "rollback-drill"


class RollbackDrill(models.Model):
    """One run of the rollback drill: apply a batch to throwaway records, undo it, verify, time each phase."""

    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    passed = models.BooleanField(default=False)
    records = models.PositiveIntegerField()
    changes = models.PositiveIntegerField(default=0)
    workflow_slug = models.CharField(max_length=64)
    batch_id = models.BigIntegerField(null=True, blank=True)
    undo_job_id = models.BigIntegerField(null=True, blank=True)
    timings = models.JSONField(default=dict, blank=True)
    problems = models.JSONField(default=list, blank=True)
    report = models.TextField(blank=True)
    ran_by = models.CharField(max_length=200)

    class Meta:
        ordering = ["-started_at"]
        get_latest_by = "started_at"

    def __str__(self) -> str:
        return f"rollback drill {self.pk} ({'passed' if self.passed else 'failed'})"

    @property
    def total_seconds(self) -> float:
        return round(sum(float(seconds) for seconds in self.timings.values()), 3)
