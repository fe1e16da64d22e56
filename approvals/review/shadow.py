"""Verdicts on shadowed proposals: a reviewer says whether they would approve or reject what a workflow
in shadow proposed, so the quality page can tell how often people agree with a prompt version before
it writes anything.

A verdict is one per person per proposal; a second word from the same person replaces the first, and
each is one `proposal.shadow_verdict` event on the trail.
"""

from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from approvals.models import Proposal, ProposalStatus, ShadowVerdict, Verdict
from approvals.review.rights import Reviewable, shadow_verdict_refusal
from approvals.workflows.rights import Viewer
from audit.services import Actor, audit_record, user_label
from core.errors import InvalidTransition, NotAllowed, NotFound, ValidationFailed

REASON_MAX = 2000


@dataclass(frozen=True)
class ShadowPanel:
    """What the review screen of a shadowed proposal shows of its verdicts."""

    refusal: str  # why this person may not give one ('' when they may)
    mine: ShadowVerdict | None
    would_approve: int
    would_reject: int
    next_id: int | None = None  # the oldest other shadowed proposal of the workflow this person has not judged

    @property
    def may_judge(self) -> bool:
        return not self.refusal


def shadow_panel(*, user: Viewer, proposal: Proposal, reviewable: Reviewable | None = None) -> ShadowPanel | None:
    """The verdicts of a shadowed proposal as its review screen shows them (None for any other), and for
    someone who may give one the next shadowed proposal to judge; two queries."""
    if proposal.status != ProposalStatus.SHADOWED:
        return None
    verdicts = list(ShadowVerdict.objects.filter(proposal=proposal))
    mine = next((v for v in verdicts if user.is_authenticated and v.user_id == user.pk), None)
    refusal = shadow_verdict_refusal(user=user, proposal=proposal, reviewable=reviewable)
    next_id = None
    if not refusal and user.pk is not None:
        next_id = (
            Proposal.objects.filter(workflow_id=proposal.workflow_id, status=ProposalStatus.SHADOWED)
            .exclude(pk=proposal.pk)
            .exclude(shadow_verdicts__user_id=user.pk)
            .order_by("pk")
            .values_list("pk", flat=True)
            .first()
        )
    return ShadowPanel(
        refusal=refusal,
        mine=mine,
        would_approve=sum(v.verdict == Verdict.WOULD_APPROVE for v in verdicts),
        would_reject=sum(v.verdict == Verdict.WOULD_REJECT for v in verdicts),
        next_id=next_id,
    )


def _clean(verdict: str, reason: str) -> tuple[str, str]:
    problems = []
    if verdict not in Verdict.values:
        problems.append(("verdict", "choose “would approve” or “would reject”"))
    reason = (reason or "").strip()
    if len(reason) > REASON_MAX:
        problems.append(("reason", f"a reason of at most {REASON_MAX} characters"))
    if verdict == Verdict.WOULD_APPROVE:
        reason = ""  # only a rejection says why
    if problems:
        raise ValidationFailed(problems)
    return verdict, reason


def shadow_verdict_give(*, proposal_id: int, user: User, verdict: str, reason: str = "") -> ShadowVerdict:
    """Record that `user` would approve or reject the shadowed proposal, replacing their earlier verdict.

    Refused with InvalidTransition for a proposal that is not shadowed (a live decision is made with
    Approve or Reject), NotAllowed for someone who does not review its workflow or asked for it.
    """
    verdict, reason = _clean(verdict, reason)
    with transaction.atomic():
        proposal = (
            Proposal.objects.select_for_update(of=("self",))
            .select_related("workflow", "batch")
            .filter(pk=proposal_id)
            .first()
        )
        if proposal is None:
            raise NotFound(f"no proposal {proposal_id}")
        if proposal.status != ProposalStatus.SHADOWED:
            raise InvalidTransition(
                f"proposal {proposal.pk} is {proposal.get_status_display().lower()}, not shadowed: only a proposal "
                "of a workflow in shadow takes a “would approve” or “would reject” verdict",
                field="verdict",
            )
        if refusal := shadow_verdict_refusal(user=user, proposal=proposal):
            raise NotAllowed(f"{refusal[:1].upper()}{refusal[1:]}, so you cannot give a verdict on it", field="verdict")
        earlier = ShadowVerdict.objects.filter(proposal=proposal, user=user).first()
        previous = earlier.verdict if earlier else None
        given = earlier or ShadowVerdict(proposal=proposal, user=user)
        given.verdict, given.reason, given.at = verdict, reason, timezone.now()
        given.save()
        audit_record(
            action="proposal.shadow_verdict",
            actor=Actor.user(user),
            old_value=previous,
            new_value=verdict,
            reason=reason,
            details={"verdict_by": user_label(user), "verdict": Verdict(verdict).label},
            **proposal.trail_fields(),
        )
        return given
