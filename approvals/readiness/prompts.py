"""Promoting a prompt version past the canary cap, and the list of a workflow's prompt versions.

Which versions are held, and how the hold counts, is `workflows.releases`; here a person with the
workflow's owner right promotes one, and the readiness page lists them (`prompt_releases_of`).
"""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from approvals.jobs import apply_queue
from approvals.models import PromptRelease, Proposal, ProposalStatus, Workflow
from approvals.workflows.releases import prompt_writes_today
from approvals.workflows.rights import Viewer, owns_workflow
from audit.services import Actor, audit_record, user_label
from core.errors import InvalidTransition, NotAllowed, NotFound


def prompt_version_promote(*, workflow: Workflow, prompt_version: str, user: AbstractBaseUser) -> PromptRelease:
    """Release `prompt_version` of `workflow` past the canary cap: only its owner may. The promotion
    is on the trail, and the approved proposals of that version that waited are queued to apply."""
    if not owns_workflow(user=user, workflow=workflow):
        raise NotAllowed(f"only the owner of {workflow.slug} promotes its prompt versions")
    with transaction.atomic():
        release = (
            PromptRelease.objects.select_for_update(of=("self",))
            .select_related("promoted_by")
            .filter(workflow=workflow, prompt_version=prompt_version)
            .first()
        )
        if release is None:
            raise NotFound(
                f"workflow {workflow.slug} has no proposal from prompt version {prompt_version}",
                field="prompt_version",
            )
        if release.promoted_at is not None:
            by = f" by {user_label(release.promoted_by)}" if release.promoted_by is not None else ""
            raise InvalidTransition(
                f"prompt version {prompt_version} of {workflow.slug} was already promoted{by} "
                f"on {release.promoted_at:%Y-%m-%d %H:%M} UTC"
            )
        release.promoted_by = user  # type: ignore[assignment]
        release.promoted_at = timezone.now()
        release.save(update_fields=["promoted_by", "promoted_at"])
        waiting = list(
            Proposal.objects.filter(workflow=workflow, prompt_version=prompt_version, status=ProposalStatus.APPROVED)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        audit_record(
            action="prompt.promoted",
            actor=Actor.user(user),
            workflow_slug=workflow.slug,
            prompt_version=prompt_version,
            reason=f"prompt version {prompt_version} promoted past the canary cap",
            details={
                "first_seen_at": release.first_seen_at.isoformat(),
                "written_today": prompt_writes_today(workflow_slug=workflow.slug, prompt_version=prompt_version),
                "approved_waiting": len(waiting),
            },
        )
        apply_queue(proposal_ids=waiting)
    return release


@dataclass(frozen=True)
class PromptReleaseRow:
    """One prompt version of a workflow as its readiness page lists it."""

    prompt_version: str
    first_seen_at: datetime
    proposals: int
    waiting: int  # approved, not written yet
    promoted_by: str  # "" when nobody promoted it (released with the workflow, or before releases were noted)
    promoted_at: datetime | None
    held: bool  # not promoted: while the workflow is live it writes at most the canary cap a day


@dataclass(frozen=True)
class PromptReleases:
    """The context the `readiness/prompt_releases.html` section renders, as `prompt_releases`."""

    workflow: Workflow
    rows: list[PromptReleaseRow]
    may_promote: bool  # the person looking owns the workflow

    @property
    def held(self) -> int:
        return sum(1 for row in self.rows if row.held)


def prompt_releases_of(*, workflow: Workflow, user: Viewer) -> PromptReleases:
    """The workflow's prompt versions, newest first: when each was first seen, its proposals so far,
    and who promoted it when, or that it is held. Two queries, however many versions."""
    releases = list(
        PromptRelease.objects.filter(workflow=workflow).select_related("promoted_by").order_by("-first_seen_at", "pk")
    )
    counts = {
        version: (total, waiting)
        for version, total, waiting in Proposal.objects.filter(workflow=workflow)
        .order_by()
        .values("prompt_version")
        .annotate(total=Count("pk"), waiting=Count("pk", filter=Q(status=ProposalStatus.APPROVED)))
        .values_list("prompt_version", "total", "waiting")
    }
    rows = [
        PromptReleaseRow(
            prompt_version=release.prompt_version,
            first_seen_at=release.first_seen_at,
            proposals=counts.get(release.prompt_version, (0, 0))[0],
            waiting=counts.get(release.prompt_version, (0, 0))[1],
            promoted_by=user_label(release.promoted_by) if release.promoted_by is not None else "",
            promoted_at=release.promoted_at,
            held=release.promoted_at is None,
        )
        for release in releases
    ]
    return PromptReleases(workflow=workflow, rows=rows, may_promote=owns_workflow(user=user, workflow=workflow))
