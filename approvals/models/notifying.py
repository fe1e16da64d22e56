"""Delivering notices: one delivery per notice and target (a channel of the workflow file, or one
person's email), and each person's choice of what to be emailed and when not to be."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.timezone import now

from approvals.models.notices import Notice


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class NoticeDelivery(models.Model):
    """One notice on its way to one target: a channel (named as the file names it, never with a
    secret) or a person's email. Tried until sent or out of attempts; each outcome is kept."""

    notice = models.ForeignKey(Notice, on_delete=models.CASCADE, related_name="deliveries")
    # What the delivery is for, as people may read it: the channel as the workflow file wrote it
    # (`${NAME}`, or the URL with its secrets masked), or `email:<username>`.
    target = models.CharField(max_length=300)
    # The channel as the workflow file wrote it (placeholders unexpanded: they are read at send time).
    channel = models.TextField(blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    status = models.CharField(max_length=8, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(default=now)
    # A run that took the delivery has it until then; after that another run may take it again.
    claimed_until = models.DateTimeField(null=True, blank=True)
    # Why it waits, when something other than a retry holds it (quiet hours).
    held_reason = models.CharField(max_length=200, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["notice", "target"], name="notice_delivery_once_per_target"),
            models.CheckConstraint(condition=Q(status__in=DeliveryStatus.values), name="notice_delivery_status_valid"),
            models.CheckConstraint(
                condition=Q(user__isnull=True, channel__gt="") | Q(user__isnull=False, channel=""),
                name="notice_delivery_channel_or_user",
            ),
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="notice_delivery_due"),
        ]

    def __str__(self) -> str:
        return f"notice {self.notice_id} to {self.target}: {self.status}"


class UserNoticePrefs(models.Model):
    """What one person is emailed of their groups' events, and the hours when email waits."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notice_prefs")
    email_on = models.BooleanField(default=False)
    events = models.JSONField(default=list, blank=True)  # drawn from NOTIFY_EVENTS
    quiet_from = models.TimeField(null=True, blank=True)
    quiet_to = models.TimeField(null=True, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    updated_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(quiet_from__isnull=True, quiet_to__isnull=True)
                | Q(quiet_from__isnull=False, quiet_to__isnull=False),
                name="notice_prefs_quiet_hours_whole",
            )
        ]

    def __str__(self) -> str:
        return f"notice preferences of user {self.user_id}"
