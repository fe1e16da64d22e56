"""What pipelines send: service accounts, batches, proposals, approvals, idempotency keys."""

from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from approvals.models.workflows import Action, Workflow


class ServiceAccount(models.Model):
    """A pipeline's identity. Its token is stored only as a hash; the prefix identifies a leaked one."""

    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="service_accounts")
    name = models.CharField(max_length=100)
    token_prefix = models.CharField(max_length=16, db_index=True)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    callback_url = models.URLField(blank=True)
    callback_secret = models.CharField(max_length=128, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workflow", "name"], name="service_account_name_unique")]

    def __str__(self) -> str:
        return f"{self.workflow.slug}/{self.name}"

    def is_usable(self, *, now=None) -> bool:  # type: ignore[no-untyped-def]
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class Batch(models.Model):
    """A bulk job's proposals, watched, stopped and undone together."""

    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="batches")
    service_account = models.ForeignKey(ServiceAccount, null=True, blank=True, on_delete=models.PROTECT)
    name = models.CharField(max_length=200)
    run_id = models.CharField(max_length=200)
    expected_size = models.PositiveIntegerField(default=0)
    requested_by = models.CharField(max_length=150, blank=True)
    # The account `requested_by` named when the batch was opened, so later checks compare accounts.
    requested_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    # Discarded by a person on its page or by its pipeline: its pending proposals were cancelled, and it
    # takes no more. `discard_cancelled` is how many the discard cancelled.
    discarded_at = models.DateTimeField(null=True, blank=True)
    discarded_by_label = models.CharField(max_length=200, blank=True)
    discarded_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    discard_reason = models.TextField(blank=True)
    discard_cancelled = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = "batches"

    def __str__(self) -> str:
        return f"batch {self.pk} {self.name}"


class ProposalStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    APPLIED = "applied", "Applied"
    REJECTED = "rejected", "Rejected"
    CONFLICT = "conflict", "Conflict"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"
    SHADOWED = "shadowed", "Shadowed"
    REVERTED = "reverted", "Reverted"
    FAILED = "failed", "Failed"


class Proposal(models.Model):
    """One proposed action on one record by one workflow run, with everything needed to trace it."""

    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="proposals")
    service_account = models.ForeignKey(ServiceAccount, null=True, blank=True, on_delete=models.PROTECT)
    batch = models.ForeignKey(Batch, null=True, blank=True, on_delete=models.PROTECT, related_name="proposals")
    record_type = models.CharField(max_length=32)
    record_id = models.CharField(max_length=64)
    action = models.CharField(max_length=10, choices=Action.choices)
    changes = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    base = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    merge_into = models.CharField(max_length=64, blank=True)
    reason = models.TextField()
    confidence = models.FloatField()
    model_name = models.CharField(max_length=100)
    model_version = models.CharField(max_length=100)
    prompt_version = models.CharField(max_length=100, db_index=True)
    run_id = models.CharField(max_length=200, blank=True)
    requested_by = models.CharField(max_length=150, blank=True)
    requested_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    follow_ups = models.JSONField(default=list, blank=True, encoder=DjangoJSONEncoder)
    status = models.CharField(max_length=10, choices=ProposalStatus.choices, default=ProposalStatus.PENDING)
    revision = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    approved_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decision_note = models.TextField(blank=True)
    change_id = models.UUIDField(null=True, blank=True)
    apply_attempts = models.PositiveIntegerField(default=0)
    # When the sweeper last queued it: an approved proposal is queued again at most once per stale window.
    nudged_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    claimed_until = models.DateTimeField(null=True, blank=True)
    flagged_fields = models.JSONField(default=list, blank=True)
    # The record's version the AI saw, when it sent one: applying checks it beside `base`.
    base_version = models.PositiveIntegerField(null=True, blank=True)
    # When the approvers were told it waited past its workflow's `decide_within`, and when the group
    # on override duty was told it still waited after twice that: each is told once.
    sla_told_at = models.DateTimeField(null=True, blank=True)
    sla_escalated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "created_at"], name="proposal_status_age"),
            models.Index(fields=["workflow", "status", "created_at"], name="proposal_workflow_status"),
            models.Index(fields=["batch", "status"], name="proposal_batch_status"),
            models.Index(fields=["record_type", "record_id"], name="proposal_record"),
            # The circuit breaker's window: one prompt version's latest decisions (`stops.breaker`).
            models.Index(fields=["workflow", "prompt_version", "decided_at"], name="proposal_version_decided"),
            models.Index(
                fields=["workflow", "created_at"], condition=Q(status="pending"), name="proposal_pending_queue"
            ),
            # `/metrics`' waiting gauges: pending and approved proposals per prompt version, from the index alone.
            models.Index(
                fields=["workflow", "prompt_version", "status", "created_at"],
                condition=Q(status__in=["pending", "approved"]),
                name="proposal_waiting",
            ),
            # The quality page: decided proposals of one workflow over a window, by prompt version and day,
            # read from the index alone.
            models.Index(
                fields=["workflow", "decided_at", "prompt_version", "status", "created_at", "decided_by"],
                condition=Q(decided_at__isnull=False),
                name="proposal_quality",
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=ProposalStatus.values), name="proposal_status_valid"),
            models.CheckConstraint(condition=Q(action__in=Action.values), name="proposal_action_valid"),
            models.CheckConstraint(
                condition=Q(confidence__gte=0) & Q(confidence__lte=1), name="proposal_confidence_range"
            ),
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True)
                | Q(requested_by_user__isnull=True)
                | ~Q(decided_by=F("requested_by_user")),
                name="proposal_requester_never_decides",
            ),
        ]

    def __str__(self) -> str:
        return f"proposal {self.pk} {self.action} {self.record_type}:{self.record_id}"

    def trail_fields(self) -> dict[str, Any]:
        """What names the proposal on each audit event about it (needs its workflow loaded)."""
        return {
            "record_type": self.record_type,
            "record_id": self.record_id,
            "proposal_id": self.pk,
            "batch_id": self.batch_id,
            "workflow_slug": self.workflow.slug,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "prompt_version": self.prompt_version,
        }


class ProposalApproval(models.Model):
    """One person's approval. Where a workflow needs two, the proposal needs two of these."""

    proposal = models.ForeignKey(Proposal, on_delete=models.CASCADE, related_name="approvals")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    approved_at = models.DateTimeField(default=timezone.now)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["approved_at"]
        constraints = [models.UniqueConstraint(fields=["proposal", "user"], name="approval_one_per_person")]


class IdempotencyKey(models.Model):
    """The first answer to a keyed POST, so a replay gets the same answer and no second proposal."""

    service_account = models.ForeignKey(ServiceAccount, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["service_account", "key"], name="idempotency_key_unique")]
