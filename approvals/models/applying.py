"""The outbox of follow-ups that run after a change is applied."""

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone

from approvals.models.intake import Proposal


class FollowUpKind(models.TextChoices):
    EMAIL_CUSTOMER = "email_customer", "Email the customer"
    WEBHOOK = "webhook", "Call a webhook"


class FollowUpStatus(models.TextChoices):
    HELD = "held", "Held (an undo can still cancel it)"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    # The run sending it never reported back: it may have arrived, so it is never sent again.
    UNKNOWN = "unknown", "Outcome unknown (not sent again)"


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
    # Why a due follow-up still waits: the stop switch that holds it, as it was when it was held.
    wait_reason = models.TextField(blank=True)
    # While sending: the run that claimed it, when that run began to send it (empty until then), and
    # when the claim ends (before sending) or the outcome counts as unknown (once sending began).
    claim = models.UUIDField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
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
