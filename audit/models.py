"""The trail. It refers to everything else by plain ids and label snapshots, never by foreign key,
so that it outlives the proposals, users and artifacts it describes."""

import uuid

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone


class ActorKind(models.TextChoices):
    USER = "user", "User"
    SERVICE_ACCOUNT = "service_account", "Service account"
    WORKER = "worker", "Worker"
    SYSTEM = "system", "System"


class AuditEvent(models.Model):
    """One append-only line of the trail. The table refuses UPDATE, DELETE and TRUNCATE."""

    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor_kind = models.CharField(max_length=20, choices=ActorKind.choices)
    actor_id = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=64)
    record_type = models.CharField(max_length=32, blank=True)
    record_id = models.CharField(max_length=64, blank=True)
    field = models.CharField(max_length=64, blank=True)
    old_value = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    new_value = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    proposal_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    change_id = models.UUIDField(null=True, blank=True)
    batch_id = models.BigIntegerField(null=True, blank=True)
    workflow_slug = models.CharField(max_length=64, blank=True)
    model_name = models.CharField(max_length=100, blank=True)
    model_version = models.CharField(max_length=100, blank=True)
    prompt_version = models.CharField(max_length=100, blank=True)
    approver_label = models.CharField(max_length=200, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["-id"]
        # The trail is read newest first and paged by id, so each filter's index ends with the id.
        # Every filter is an exact match, so no index needs LIKE operator classes. An index covers only
        # the rows that hold its value (a system event such as a purge tombstone names no record,
        # batch, change, prompt or approver), so appending those rows touches few indexes; an exact
        # match on a value implies the index's condition, so the planner still uses it.
        indexes = [
            models.Index(fields=["action", "id"], name="audit_action_id"),
            models.Index(fields=["record_id", "id"], name="audit_record_id", condition=Q(record_id__gt="")),
            models.Index(fields=["record_id", "occurred_at"], name="audit_record_time", condition=Q(record_id__gt="")),
            models.Index(fields=["change_id"], name="audit_change", condition=Q(change_id__isnull=False)),
            models.Index(fields=["batch_id", "id"], name="audit_batch_id", condition=Q(batch_id__isnull=False)),
            models.Index(fields=["workflow_slug", "id"], name="audit_workflow_id"),
            models.Index(fields=["prompt_version", "id"], name="audit_prompt_id", condition=Q(prompt_version__gt="")),
            models.Index(fields=["approver_label", "id"], name="audit_approver_id", condition=Q(approver_label__gt="")),
        ]
        constraints = [models.UniqueConstraint(fields=["hash"], name="audit_hash_unique")]
        # Held through a group (an auditors group, say); being staff or a superuser grants neither.
        permissions = [
            ("audit_trail", "Can see every workflow's trail, records and traces"),
            ("export_trail", "Can export the trail it may see"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.record_type}:{self.record_id}"


class ArtifactKind(models.TextChoices):
    PROMPT = "prompt", "Prompt"
    OUTPUT = "output", "Output"
    ATTACHMENT = "attachment", "Attachment"
    CACHE = "cache", "Cache entry"
    ERROR_LOG = "error_log", "Error log"


class Bucket(models.TextChoices):
    LIVE = "live", "Live processing"
    TRAINING = "training", "Training"
    ANALYTICS = "analytics", "Analytics"


class Artifact(models.Model):
    """Something AI work produced or used. It expires by its retention rule and is purged to a tombstone."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workflow_id = models.BigIntegerField(db_index=True)
    workflow_slug = models.CharField(max_length=64)
    proposal_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    rule_id = models.BigIntegerField()
    kind = models.CharField(max_length=20, choices=ArtifactKind.choices)
    bucket = models.CharField(max_length=20, choices=Bucket.choices)
    name = models.CharField(max_length=200, blank=True)
    content = models.TextField(blank=True)
    file = models.FileField(upload_to="artifacts/%Y/%m/%d/", blank=True)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)
    flagged_fields = models.JSONField(default=list, blank=True)
    copied_from = models.UUIDField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["rule_id", "expires_at"], name="artifact_rule_expiry")]

    def __str__(self) -> str:
        return f"{self.kind} ({self.bucket}) {self.id}"


class Tombstone(models.Model):
    """What is left of a purged artifact: what it was, the rule it went under, and when.

    The purge writes tombstones a batch at a time, and appends one chained audit event per batch
    (`artifacts.purged`) that names the batch and holds the digest of its tombstones, so the chain
    vouches for every tombstone without an event each. Append-only, like the trail.
    """

    id = models.BigAutoField(primary_key=True)
    batch = models.UUIDField()
    artifact_id = models.UUIDField()
    workflow_slug = models.CharField(max_length=64)
    proposal_id = models.BigIntegerField(null=True, blank=True)
    rule_id = models.BigIntegerField()
    kind = models.CharField(max_length=20, choices=ArtifactKind.choices)
    bucket = models.CharField(max_length=20, choices=Bucket.choices)
    name = models.CharField(max_length=200, blank=True)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    had_file = models.BooleanField(default=False)
    copied_from = models.UUIDField(null=True, blank=True)
    expires_at = models.DateTimeField()
    purged_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["proposal_id"], name="tombstone_proposal", condition=Q(proposal_id__isnull=False)),
            models.Index(fields=["workflow_slug", "id"], name="tombstone_workflow_id"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} ({self.bucket}) {self.artifact_id}, purged"

    @property
    def rule(self) -> str:
        return f"{self.workflow_slug} {self.kind}/{self.bucket}"


class ChainProgress(models.Model):
    """How far the scheduled verification has walked the chain: the last event it found sound, and its
    hash. One row. The next run starts after that event, and first checks that it still holds that hash."""

    verified_through_id = models.BigIntegerField(default=0)
    verified_through_hash = models.CharField(max_length=64, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"verified through event #{self.verified_through_id}"
