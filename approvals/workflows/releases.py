"""A prompt version is a release: the first proposals from a version a live workflow has not used
before write at most the workflow's canary cap a day, until a person with the workflow's owner right
promotes that version.

Intake notes each version's first sight (`prompt_releases_note`). A version first seen while the
workflow is in draft, shadow or canary is released with the workflow itself: it is noted promoted at
once (by nobody), because the workflow's own rollout tries it before the workflow goes live. A version
first seen while the workflow is live (or paused, between two live spells) is held until promoted.
Only a version noted and not promoted is held: versions in use before releases were noted were
promoted by the migration that brought them in. The hold counts, like the canary cap, the writes of
that workflow and prompt version since 00:00 UTC, reverts not counted.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from approvals.models import PromptRelease, Stage, Workflow
from approvals.workflows.rollout import utc_day_start
from records.models import Change, ChangeAction

# Stages whose new prompt versions are released with the workflow itself.
RELEASED_WITH_WORKFLOW = (Stage.DRAFT, Stage.SHADOW, Stage.CANARY)


def prompt_hold_reason(*, workflow_slug: str, prompt_version: str, limit: int) -> str:
    """Why an approved proposal of a held prompt version waits, as every screen says it."""
    return (
        f"prompt version {prompt_version} of {workflow_slug} is not promoted yet: held to the canary cap of "
        f"{limit} a day; the owner promotes it on the readiness page"
    )


def prompt_releases_note(*, workflow: Workflow, prompt_versions: Iterable[str], at: datetime | None = None) -> None:
    """Note the first sight (`at`, else now) of each of these prompt versions of `workflow`, in the
    caller's transaction: one statement however many, and none for a version already noted."""
    versions = sorted({version for version in prompt_versions if version})
    if not versions:
        return
    now = at or timezone.now()
    released = workflow.stage in RELEASED_WITH_WORKFLOW
    PromptRelease.objects.bulk_create(
        [
            PromptRelease(
                workflow=workflow, prompt_version=version, first_seen_at=now, promoted_at=now if released else None
            )
            for version in versions
        ],
        ignore_conflicts=True,
    )


def prompt_releases_in_use() -> int:
    """Release every prompt version noted and not promoted yet, by nobody: the versions a history
    loaded at once already holds (the demo's seed stands for work done before it). How many."""
    return PromptRelease.objects.filter(promoted_at__isnull=True).update(promoted_at=timezone.now())


def _written_today(now: datetime | None = None) -> Subquery:
    """Per prompt release (the outer row), its workflow's writes of that version today."""
    writes = (
        Change.with_in_flight.filter(
            workflow_slug=OuterRef("workflow__slug"),
            prompt_version=OuterRef("prompt_version"),
            applied_at__gte=utc_day_start(now),
        )
        .exclude(action=ChangeAction.REVERT)
        .order_by()
        .values("prompt_version")
        .annotate(count=Count("id"))
        .values("count")
    )
    return Subquery(writes, output_field=IntegerField())


def _held() -> Q:
    return Q(promoted_at__isnull=True, workflow__stage=Stage.LIVE)


def prompt_held_at_cap() -> Exists:
    """For an approved proposal (the outer row), whether its prompt version is held and has reached
    today's cap: a condition to filter a proposal query with, no query of its own."""
    return Exists(
        PromptRelease.objects.filter(
            _held(), workflow_id=OuterRef("workflow_id"), prompt_version=OuterRef("prompt_version")
        )
        .annotate(written=Coalesce(_written_today(), Value(0)))
        .filter(written__gte=F("workflow__canary_daily_limit"))
    )


@dataclass(frozen=True)
class HeldRelease:
    """A prompt version of a live workflow not promoted yet, and its writes today against the cap."""

    workflow_id: int
    workflow_slug: str
    prompt_version: str
    limit: int
    written: int

    @property
    def capped(self) -> bool:
        return self.written >= self.limit

    @property
    def reason(self) -> str:
        return prompt_hold_reason(
            workflow_slug=self.workflow_slug, prompt_version=self.prompt_version, limit=self.limit
        )


def prompt_releases_held(
    *, workflow_ids: Iterable[int], now: datetime | None = None
) -> dict[tuple[int, str], HeldRelease]:
    """The held prompt versions of these workflows (live ones only), by (workflow id, version), each
    with its writes today. One query, or none when `workflow_ids` is empty."""
    ids = list(set(workflow_ids))
    if not ids:
        return {}
    rows = (
        PromptRelease.objects.filter(_held(), workflow_id__in=ids)
        .annotate(written=Coalesce(_written_today(now), Value(0)))
        .values_list("workflow_id", "workflow__slug", "prompt_version", "workflow__canary_daily_limit", "written")
    )
    return {(row[0], row[2]): HeldRelease(*row) for row in rows}


def prompt_release_locked_held(*, workflow_id: int, prompt_version: str) -> bool:
    """Whether this prompt version of a live workflow is held, its release row locked until the
    caller's transaction ends: a promotion waits for the write in flight, and two writers cannot
    both take the last slot of the cap."""
    held = PromptRelease.objects.select_for_update(of=("self",)).filter(
        _held(), workflow_id=workflow_id, prompt_version=prompt_version
    )
    return bool(list(held.values_list("pk", flat=True)))


def prompt_writes_today(*, workflow_slug: str, prompt_version: str, now: datetime | None = None) -> int:
    """Writes of this workflow and prompt version since 00:00 UTC, reverts not counted."""
    return (
        Change.with_in_flight.filter(
            workflow_slug=workflow_slug, prompt_version=prompt_version, applied_at__gte=utc_day_start(now)
        )
        .exclude(action=ChangeAction.REVERT)
        .count()
    )
