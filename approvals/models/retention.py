"""Requests to copy an artifact into the training bucket."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from approvals.models.workflows import Workflow


class TrainingCopyStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved (copied)"
    REJECTED = "rejected", "Rejected"


class TrainingCopyRequest(models.Model):
    """A request to copy one artifact into the training bucket. Only the workflow owner decides it.

    The artifact is named by plain id and a snapshot of its kind and hash, because the purge may
    delete the artifact while the request, like the trail, must still read.
    """

    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="training_copy_requests")
    artifact_id = models.UUIDField(db_index=True)
    artifact_kind = models.CharField(max_length=20)
    artifact_sha256 = models.CharField(max_length=64)
    reason = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=TrainingCopyStatus.choices, default=TrainingCopyStatus.PENDING)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    copy_id = models.UUIDField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=TrainingCopyStatus.values), name="training_status_valid"),
            models.UniqueConstraint(
                fields=["artifact_id"],
                condition=Q(status=TrainingCopyStatus.PENDING),
                name="training_one_pending_per_artifact",
            ),
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True) | ~Q(decided_by=F("requested_by")),
                name="training_requester_never_decides",
            ),
            models.CheckConstraint(
                condition=~Q(status=TrainingCopyStatus.APPROVED) | Q(copy_id__isnull=False),
                name="training_approved_has_copy",
            ),
        ]

    def __str__(self) -> str:
        return f"training copy of {self.artifact_kind} {self.artifact_id} ({self.status})"
