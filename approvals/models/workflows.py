"""Workflows and what each may do: lanes, stages, actions, field policies, retention rules."""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Q
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from core.timeutils import format_window


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
    # The email templates its follow-ups may send, by follow-up kind ({"email_customer": [...]}); none when empty.
    follow_up_templates = models.JSONField(default=dict, blank=True)
    retention_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The second owner of the retention rules ("the CTO plus one person from security, legal, or
    # operations"): a change one owner makes waits for the other's countersignature.
    retention_co_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The map: the systems its data passes through ([{name, direction, fields}]) and the outside
    # services that see it ([{name, kind, region, keeps, sees}]), as the workflow file declares them.
    systems = models.JSONField(default=list, blank=True)
    outside_services = models.JSONField(default=list, blank=True)
    # What its drills must finish within, and how long it stays in canary before it may go live.
    rollback_target = models.DurationField(default=timedelta(minutes=10))
    trace_target = models.DurationField(default=timedelta(minutes=5))
    canary_days = models.PositiveIntegerField(default=3)
    # When it entered its current stage: the canary days count from here.
    stage_changed_at = models.DateTimeField(default=timezone.now)
    # A stage forced against readiness: {"stage", "reason", "by", "at"}; None when it went in ready.
    forced_stage = models.JSONField(null=True, blank=True)
    # Noticing: how long a pending proposal may wait for a decision before it is overdue, and before
    # it expires; the circuit breaker's limits per prompt version ({window, min_samples,
    # max_reject_rate, max_conflict_rate, max_undo_rate}); the channels told of its events
    # ([{channel, events}], a channel an Apprise URL or a `${NAME}` placeholder).
    decide_within = models.DurationField(null=True, blank=True)
    expire_after = models.DurationField(null=True, blank=True)
    circuit_breaker = models.JSONField(null=True, blank=True)
    notify = models.JSONField(default=list, blank=True)
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

    @staticmethod
    def trail_value(*, window: timedelta, owner: Any) -> dict[str, str]:
        """A rule as the trail shows it, whether a workflow file or its owner in the app sets it."""
        return {"window": format_window(window), "owner": owner.get_username()}
