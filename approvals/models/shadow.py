"""What reviewers say of a shadowed proposal: whether they would have approved it, had it been live."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from approvals.models.intake import Proposal


class Verdict(models.TextChoices):
    WOULD_APPROVE = "would_approve", "Would approve"
    WOULD_REJECT = "would_reject", "Would reject"


class ShadowVerdict(models.Model):
    """One reviewer's verdict on one shadowed proposal; a second word from the same person replaces it."""

    proposal = models.ForeignKey(Proposal, on_delete=models.PROTECT, related_name="shadow_verdicts")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    reason = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["proposal", "user"], name="shadow_verdict_one_per_person"),
            models.CheckConstraint(condition=Q(verdict__in=Verdict.values), name="shadow_verdict_valid"),
        ]
        indexes = [models.Index(fields=["at"], name="shadow_verdict_at")]

    def __str__(self) -> str:
        return f"{self.get_verdict_display()} on proposal {self.proposal_id}"
