"""What Countersign tells people: one notice per event, delivered to each channel that asked for it."""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from approvals.models.workflows import Workflow

# The events a workflow file's channel may ask for, as it names them.
NOTIFY_EVENTS = (
    "pending_digest",
    "sla_breach",
    "stop_engaged",
    "stop_released",
    "circuit_tripped",
    "override_granted",
    "override_expiring",
    "conflict",
    "undo_finished",
    "store_unreachable",
    "audit_broken",
)


class Notice(models.Model):
    """One event worth telling people about (a stop engaged, an SLA breached, the chain broken...),
    written in the transaction of what caused it, and delivered afterwards by a worker."""

    event = models.CharField(max_length=32)  # one of NOTIFY_EVENTS
    workflow = models.ForeignKey(Workflow, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    subject = models.CharField(max_length=300)
    body = models.TextField()
    # Two notices with the same key are one: the second is not written (an SLA breach is told once).
    dedupe_key = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # When its deliveries were made (the channels and people it goes to); none yet: a worker will.
    fanned_out_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["dedupe_key"], condition=~Q(dedupe_key=""), name="notice_once_per_key")
        ]
        indexes = [
            models.Index(fields=["event", "created_at"], name="notice_event_time"),
            models.Index(fields=["created_at"], condition=Q(fanned_out_at__isnull=True), name="notice_not_fanned_out"),
        ]

    def __str__(self) -> str:
        return f"notice {self.pk}: {self.event}"


class ConflictToTell(models.Model):
    """A conflict the worker found, to be told in its workflow's next conflict notice. A bulk run gone
    wrong makes hundreds at once: each is written here in the worker's transaction (nothing else),
    and they are told together, at most one conflict notice per workflow per digest window; `notice`
    is the one that told it."""

    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="+")
    # Kept as the trail keeps them: the notice says what happened even if the proposal moved on.
    proposal_id = models.BigIntegerField()
    record_type = models.CharField(max_length=32)
    record_id = models.CharField(max_length=64)
    prompt_version = models.CharField(max_length=100)
    reason = models.TextField()
    # The proposal, its revision and its apply attempt: one conflict is kept once.
    key = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    notice = models.ForeignKey(Notice, null=True, blank=True, on_delete=models.PROTECT, related_name="conflicts")

    class Meta:
        ordering = ["pk"]
        indexes = [models.Index(fields=["workflow", "id"], condition=Q(notice__isnull=True), name="conflict_not_told")]

    def __str__(self) -> str:
        return f"conflict of proposal {self.proposal_id}" + (
            f", told in notice {self.notice_id}" if self.notice_id else ""
        )
