"""Readiness before release: the trace drill, the five-step review, prompt versions released, and
retention changes waiting for their second owner."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from approvals.models.workflows import Workflow


class Direction(models.TextChoices):
    TO_AI = "to_ai", "to the AI"
    FROM_AI = "from_ai", "from the AI"
    BOTH = "both", "both ways"


class OutsideServiceKind(models.TextChoices):
    MODEL_API = "model_api", "Model API"
    TRANSCRIPTION = "transcription", "Transcription"
    VECTOR_DB = "vector_db", "Vector database"
    OBSERVABILITY = "observability", "Observability"
    BROWSER_PLUGIN = "browser_plugin", "Browser plugin"
    OTHER = "other", "Other"


class TraceDrill(models.Model):
    """One timed trace drill: a person is given what a complaint would say about one applied change,
    finds it in the app and answers what it was, who approved it and how to undo it."""

    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="trace_drills")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    change_id = models.UUIDField()
    complaint = models.TextField()
    target = models.DurationField()
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    # What the person answered, and per question whether it was right and what the trail holds.
    answers = models.JSONField(default=dict, blank=True)
    verdicts = models.JSONField(default=dict, blank=True)
    passed = models.BooleanField(null=True, blank=True)  # None while the drill is open
    started_by = models.CharField(max_length=200)

    class Meta:
        ordering = ["-started_at"]
        get_latest_by = "started_at"
        constraints = [
            models.CheckConstraint(
                condition=Q(passed__isnull=True) | Q(finished_at__isnull=False), name="trace_drill_decided_finished"
            ),
            models.UniqueConstraint(
                fields=["workflow", "user"], condition=Q(passed__isnull=True), name="trace_drill_one_open_per_person"
            ),
        ]

    def __str__(self) -> str:
        state = "open" if self.passed is None else "passed" if self.passed else "failed"
        return f"trace drill {self.pk} of {self.workflow_id} ({state})"


class ReviewDecision(models.TextChoices):
    READY = "ready", "Ready"
    NOT_READY = "not_ready", "Not ready"


class ReadinessReview(models.Model):
    """One walk through the five-step review of a workflow, signed off by two people."""

    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="readiness_reviews")
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    started_at = models.DateTimeField(default=timezone.now)
    # Per step key: {"by": username, "at": ISO time, "note": text}; who ticked it and when.
    steps = models.JSONField(default=dict, blank=True)
    # Per "record_type.field": the access the reviewers marked, compared with the file's.
    field_marks = models.JSONField(default=dict, blank=True)
    # The real record walked through approval, write, trace and rollback.
    walk_change_id = models.UUIDField(null=True, blank=True)
    decision = models.CharField(max_length=10, choices=ReviewDecision.choices, blank=True)
    actions = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    signed_off_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        get_latest_by = "started_at"
        constraints = [
            models.CheckConstraint(
                condition=Q(decision="") | Q(decision__in=ReviewDecision.values), name="readiness_review_decision_valid"
            ),
            # One review of a workflow is open (not yet signed off) at a time.
            models.UniqueConstraint(
                fields=["workflow"], condition=Q(signed_off_at__isnull=True), name="readiness_review_one_open"
            ),
            models.CheckConstraint(
                condition=Q(signed_off_at__isnull=True) | ~Q(decision=""), name="readiness_review_signed_off_decided"
            ),
        ]

    def __str__(self) -> str:
        return f"five-step review {self.pk} of {self.workflow_id}"


class ReviewSignature(models.Model):
    """One person's sign-off of a five-step review."""

    review = models.ForeignKey(ReadinessReview, on_delete=models.CASCADE, related_name="signatures")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    signed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["signed_at"]
        constraints = [models.UniqueConstraint(fields=["review", "user"], name="review_signature_once_per_person")]


class PromptRelease(models.Model):
    """A prompt version a workflow has used, and who released it past the canary cap."""

    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="prompt_releases")
    prompt_version = models.CharField(max_length=100)
    first_seen_at = models.DateTimeField(default=timezone.now)
    promoted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    promoted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-first_seen_at"]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "prompt_version"], name="prompt_release_once_per_version")
        ]

    def __str__(self) -> str:
        return f"{self.workflow_id} prompt {self.prompt_version}"


class RetentionChangeStatus(models.TextChoices):
    PENDING = "pending", "Waiting for the second owner"
    APPLIED = "applied", "Countersigned and applied"
    WITHDRAWN = "withdrawn", "Withdrawn"


class RetentionChange(models.Model):
    """A change to one retention rule proposed by one owner; it takes effect when the other countersigns."""

    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="retention_changes")
    kind = models.CharField(max_length=20)
    bucket = models.CharField(max_length=20)
    window_before = models.DurationField(null=True, blank=True)  # None: no rule yet
    window_after = models.DurationField(null=True, blank=True)  # None: the rule goes
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    proposed_at = models.DateTimeField(default=timezone.now)
    source = models.CharField(max_length=20, default="page")  # "page" or "file"
    status = models.CharField(
        max_length=10, choices=RetentionChangeStatus.choices, default=RetentionChangeStatus.PENDING
    )
    countersigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    countersigned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-proposed_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=RetentionChangeStatus.values), name="retention_change_status"
            ),
            models.UniqueConstraint(
                fields=["workflow", "kind", "bucket"],
                condition=Q(status="pending"),
                name="retention_change_one_pending",
            ),
            models.CheckConstraint(
                condition=Q(countersigned_by__isnull=True) | ~Q(countersigned_by=F("proposed_by")),
                name="retention_change_two_people",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.workflow_id} {self.kind}/{self.bucket} change ({self.status})"
