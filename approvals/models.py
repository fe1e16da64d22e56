"""Who may change what, and the gate: workflows, policies, service accounts, proposals, batches, stops."""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Length
from django.db.models.lookups import GreaterThanOrEqual
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase


class Lane(models.TextChoices):
    ASSIST = "assist", "Assist (reads and drafts only)"
    WRITE = "write", "Write (proposes changes)"


class Stage(models.TextChoices):
    DRAFT = "draft", "Draft"
    SHADOW = "shadow", "Shadow"
    CANARY = "canary", "Canary"
    LIVE = "live", "Live"
    PAUSED = "paused", "Paused"


class Action(models.TextChoices):
    UPDATE = "update", "Update"
    ARCHIVE = "archive", "Archive"
    DELETE = "delete", "Delete"
    MERGE = "merge", "Merge"


class Access(models.TextChoices):
    READ = "read", "Read"
    SUGGEST = "suggest", "Suggest (a person approves)"
    WRITE = "write", "Write (no review, low risk only)"


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Workflow(models.Model):
    """One AI task, its lane and stage, who countersigns it and who may override it."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_workflows")
    lane = models.CharField(max_length=10, choices=Lane.choices)
    stage = models.CharField(max_length=10, choices=Stage.choices, default=Stage.DRAFT)
    canary_daily_limit = models.PositiveIntegerField(default=50)
    approver_group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    actions = models.JSONField(default=list, blank=True)
    two_person_actions = models.JSONField(default=list, blank=True)
    two_person_fields = models.JSONField(default=list, blank=True)
    override_day_group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    override_days = models.JSONField(default=list, blank=True)
    override_day_from = models.TimeField(null=True, blank=True)
    override_day_to = models.TimeField(null=True, blank=True)
    override_timezone = models.CharField(max_length=64, default="UTC")
    override_after_hours_group = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    override_max_minutes = models.PositiveIntegerField(default=60)
    # The hosts ("host" or "host:port") that the workflow's webhook follow-ups may call; none when empty.
    webhook_hosts = models.JSONField(default=list, blank=True)
    retention_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["slug"]
        permissions = [
            ("review_workflow", "Can review the workflow's proposals"),
            ("rollback_workflow", "Can undo the workflow's changes"),
            ("override_workflow", "Can override the workflow's blocks"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(lane__in=Lane.values), name="workflow_lane_valid"),
            models.CheckConstraint(condition=Q(stage__in=Stage.values), name="workflow_stage_valid"),
            models.CheckConstraint(condition=Q(override_max_minutes__gte=1), name="workflow_override_max_positive"),
        ]

    def __str__(self) -> str:
        return self.slug

    @property
    def rules_owner(self):  # type: ignore[no-untyped-def]
        return self.retention_owner or self.owner


class WorkflowUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Workflow, on_delete=models.CASCADE)


class WorkflowGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Workflow, on_delete=models.CASCADE)


class FieldPolicy(models.Model):
    """What one workflow may do with one field. A field with no policy is invisible to it."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="policies")
    record_type = models.CharField(max_length=32)
    field = models.CharField(max_length=64)
    access = models.CharField(max_length=10, choices=Access.choices)

    class Meta:
        ordering = ["record_type", "field"]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "record_type", "field"], name="policy_one_per_field"),
            models.CheckConstraint(condition=Q(access__in=Access.values), name="policy_access_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.workflow}: {self.record_type}.{self.field} = {self.access}"


class RetentionRule(models.Model):
    """How long one kind of artifact is kept in one bucket for one workflow, and who may change that."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="retention_rules")
    kind = models.CharField(max_length=20)
    bucket = models.CharField(max_length=20)
    window = models.DurationField()
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["kind", "bucket"]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "kind", "bucket"], name="retention_one_per_kind_bucket"),
            models.CheckConstraint(condition=Q(window__gte=timedelta(0)), name="retention_window_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.workflow}: {self.kind}/{self.bucket}"


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
    created_at = models.DateTimeField(default=timezone.now)

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
    last_error = models.TextField(blank=True)
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    claimed_until = models.DateTimeField(null=True, blank=True)
    flagged_fields = models.JSONField(default=list, blank=True)
    # The record's version the AI saw, when it sent one: applying checks it beside `base`.
    base_version = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "created_at"], name="proposal_status_age"),
            models.Index(fields=["workflow", "status", "created_at"], name="proposal_workflow_status"),
            models.Index(fields=["batch", "status"], name="proposal_batch_status"),
            models.Index(fields=["record_type", "record_id"], name="proposal_record"),
            models.Index(
                fields=["workflow", "created_at"], condition=Q(status="pending"), name="proposal_pending_queue"
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
        """What a person reads: "everything", "workflow address-updates" or "batch 12 (Nightly sweep)"."""
        if self.scope == StopScope.BATCH and self.batch is not None:
            return f"batch {self.batch_id} ({self.batch.name})"
        if self.scope == StopScope.WORKFLOW and self.workflow is not None:
            return f"workflow {self.workflow.slug}"
        return "everything"


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


OVERRIDE_MIN_REASON_LENGTH = 10


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
                condition=GreaterThanOrEqual(Length("reason"), OVERRIDE_MIN_REASON_LENGTH),
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


class FollowUpKind(models.TextChoices):
    EMAIL_CUSTOMER = "email_customer", "Email the customer"
    WEBHOOK = "webhook", "Call a webhook"


class FollowUpStatus(models.TextChoices):
    HELD = "held", "Held (an undo can still cancel it)"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class FollowUp(models.Model):
    """One follow-up of an applied proposal, in the outbox: held for a while, then run by a worker."""

    proposal = models.ForeignKey(Proposal, on_delete=models.PROTECT, related_name="outbox")
    change_id = models.UUIDField(db_index=True)
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=20)
    params = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    status = models.CharField(max_length=10, choices=FollowUpStatus.choices, default=FollowUpStatus.HELD)
    due_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_at", "pk"]
        indexes = [models.Index(fields=["status", "due_at"], name="followup_status_due")]
        constraints = [
            models.UniqueConstraint(fields=["change_id", "position"], name="followup_one_per_position"),
            models.CheckConstraint(condition=Q(status__in=FollowUpStatus.values), name="followup_status_valid"),
        ]

    def __str__(self) -> str:
        return f"follow-up {self.pk} {self.kind} ({self.status})"


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
