"""Overrides: a person's time-boxed exception to one block."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Length
from django.db.models.lookups import GreaterThanOrEqual
from django.utils import timezone

from approvals import reasons
from approvals.models.intake import Batch, Proposal
from approvals.models.workflows import Workflow


class OverrideScope(models.TextChoices):
    PROPOSAL = "proposal", "Proposal"
    BATCH = "batch", "Batch"
    WORKFLOW = "workflow", "Workflow"


class OverrideBlock(models.TextChoices):
    """The blocks a person may lift for a while. Nothing else can be overridden: not the global
    stop (it is released, never overridden) and not a field policy."""

    STOP_SWITCH = "stop_switch", "Stop switch"
    CANARY_CAP = "canary_cap", "Canary daily cap"
    AFTER_HOURS_APPROVAL = "after_hours_approval", "Waits for the daytime approvers"
    CONFLICT = "conflict", "Conflict"


class OverrideReview(models.TextChoices):
    PENDING = "pending", "To review"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    FLAGGED = "flagged", "Flagged"


class Override(models.Model):
    """A person's time-boxed exception to one block, for one proposal, batch or workflow."""

    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="overrides")
    scope = models.CharField(max_length=10, choices=OverrideScope.choices)
    batch = models.ForeignKey(Batch, null=True, blank=True, on_delete=models.PROTECT, related_name="overrides")
    proposal = models.ForeignKey(Proposal, null=True, blank=True, on_delete=models.PROTECT, related_name="overrides")
    block = models.CharField(max_length=24, choices=OverrideBlock.choices)
    reason = models.TextField()
    granted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    granted_group = models.CharField(max_length=150)
    granted_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    expired_recorded_at = models.DateTimeField(null=True, blank=True)
    use_count = models.PositiveIntegerField(default=0)
    review = models.CharField(max_length=12, choices=OverrideReview.choices, default=OverrideReview.PENDING)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-granted_at"]
        indexes = [
            models.Index(fields=["block", "expires_at"], name="override_block_expiry"),
            models.Index(fields=["review", "granted_at"], name="override_review_queue"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(scope__in=OverrideScope.values), name="override_scope_valid"),
            models.CheckConstraint(condition=Q(block__in=OverrideBlock.values), name="override_block_valid"),
            models.CheckConstraint(condition=Q(review__in=OverrideReview.values), name="override_review_valid"),
            models.CheckConstraint(
                condition=Q(scope="proposal", proposal__isnull=False)
                | Q(scope="batch", batch__isnull=False, proposal__isnull=True)
                | Q(scope="workflow", batch__isnull=True, proposal__isnull=True),
                name="override_scope_matches_target",
            ),
            models.CheckConstraint(condition=Q(expires_at__gt=F("granted_at")), name="override_expires_after_grant"),
            models.CheckConstraint(
                condition=GreaterThanOrEqual(Length("reason"), reasons.OVERRIDE.minimum),
                name="override_reason_written",
            ),
            models.CheckConstraint(
                condition=Q(revoked_at__isnull=True, revoked_by__isnull=True)
                | Q(revoked_at__isnull=False, revoked_by__isnull=False),
                name="override_revoked_by_someone",
            ),
        ]

    def __str__(self) -> str:
        return f"override {self.pk} {self.block} on {self.scope}"

    def is_active(self, *, at=None) -> bool:  # type: ignore[no-untyped-def]
        """In force at `at`: granted, not revoked, not yet expired. Checked at the moment of use."""
        at = at or timezone.now()
        return self.revoked_at is None and self.granted_at <= at < self.expires_at

    def seconds_left(self, *, at=None) -> int:  # type: ignore[no-untyped-def]
        at = at or timezone.now()
        return max(0, int((self.expires_at - at).total_seconds())) if self.revoked_at is None else 0

    @property
    def target_label(self) -> str:
        if self.scope == OverrideScope.PROPOSAL:
            return f"proposal {self.proposal_id}"
        if self.scope == OverrideScope.BATCH:
            return f"batch {self.batch_id}"
        return f"workflow {self.workflow.slug}"
