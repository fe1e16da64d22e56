"""Reads for the five-step review of a workflow: the AI tasks touching its records, its fields as the
file grants them, its retention, the applied changes a review may walk through, and its reviews."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from django.db.models import Count, Prefetch
from django.utils.dateparse import parse_datetime

from approvals.models import FieldPolicy, Proposal, ReadinessReview, RetentionRule, ReviewSignature, Workflow
from approvals.readiness.steps import MARKS, NO_ACCESS, WALK_PARTS, WalkPart, sign_off_waits_for, ticks_missing
from audit.models import Artifact, ArtifactKind, Bucket
from audit.services import user_label
from core.errors import NotFound
from core.visibility import ViewerScope
from records.catalogue import RECORD_TYPES
from records.models import Change, ChangeAction

RECENT_CHANGES = 20
PAST_REVIEWS = 20


@dataclass(frozen=True)
class FieldRow:
    """One field of a record type the workflow touches, as its file grants it."""

    key: str  # "record_type.field"
    record_type: str
    name: str
    label: str
    risk: str
    file_access: str  # read | suggest | write, or "none" for a field the file does not name


def review_fields(*, workflow: Workflow) -> list[FieldRow]:
    """Every field of each record type the workflow's file names, with what the file grants. One query."""
    granted = {
        (record_type, name): access
        for record_type, name, access in FieldPolicy.objects.filter(workflow=workflow).values_list(
            "record_type", "field", "access"
        )
    }
    touched = {record_type for record_type, _ in granted}
    return [
        FieldRow(
            key=f"{record_type}.{spec.name}",
            record_type=record_type,
            name=spec.name,
            label=spec.label,
            risk=str(spec.risk),
            file_access=granted.get((record_type, spec.name), NO_ACCESS),
        )
        for record_type, record in RECORD_TYPES.items()
        if record_type in touched
        for spec in record.fields
    ]


@dataclass(frozen=True)
class MarkedField:
    """A field as step 2 shows it: what the file grants, what the review marked, and whether they differ."""

    row: FieldRow
    file_said: str
    marked: str | None

    @property
    def differs(self) -> bool:
        return self.marked is not None and self.marked != self.file_said

    @property
    def file_label(self) -> str:
        return MARKS.get(self.file_said, self.file_said)

    @property
    def marked_label(self) -> str:
        return MARKS.get(self.marked or "", self.marked or "")

    @property
    def difference(self) -> str:
        return f"differs from the file: file says {MARKS[self.file_said]}, review says {MARKS[self.marked or '']}"


def marked_fields(*, rows: list[FieldRow], review: ReadinessReview | None) -> list[MarkedField]:
    """Each field with the review's mark against what the file said when it was marked."""
    marks: dict[str, Any] = review.field_marks if review else {}
    shown = []
    for row in rows:
        mark = marks.get(row.key)
        if isinstance(mark, dict):
            shown.append(MarkedField(row=row, file_said=mark.get("file", row.file_access), marked=mark.get("review")))
        else:
            shown.append(MarkedField(row=row, file_said=row.file_access, marked=None))
    return shown


@dataclass(frozen=True)
class TouchingTask:
    workflow: Workflow
    fields: list[FieldPolicy]
    is_this: bool


@dataclass(frozen=True)
class TouchingTasks:
    """Step 1: the workflows that act on the record types this one acts on."""

    record_types: list[str]
    tasks: list[TouchingTask]
    out_of_sight: int  # workflows that touch them too but the viewer may not see


def touching_tasks(*, workflow: Workflow, scope: ViewerScope) -> TouchingTasks:
    """Every workflow whose file names a field of a record type this workflow's file names. Three queries."""
    record_types = sorted(
        set(FieldPolicy.objects.filter(workflow=workflow).values_list("record_type", flat=True).order_by())
    )
    touching = (
        Workflow.objects.filter(policies__record_type__in=record_types)
        .distinct()
        .select_related("owner")
        .prefetch_related(
            Prefetch(
                "policies",
                queryset=FieldPolicy.objects.filter(record_type__in=record_types).order_by("record_type", "field"),
                to_attr="touching_policies",
            )
        )
        .order_by("slug")
    )
    tasks, out_of_sight = [], 0
    for other in touching:
        if other.pk != workflow.pk and not scope.sees_workflow(other.slug):
            out_of_sight += 1
            continue
        tasks.append(TouchingTask(workflow=other, fields=other.touching_policies, is_this=other.pk == workflow.pk))  # type: ignore[attr-defined]
    return TouchingTasks(record_types=record_types, tasks=tasks, out_of_sight=out_of_sight)


@dataclass(frozen=True)
class RetentionLine:
    """Step 3: one artifact kind in one bucket: its rule (window and owner), what is stored under it,
    and whether something is stored with no rule to expire it."""

    kind: str
    kind_label: str
    bucket: str
    bucket_label: str
    rule: RetentionRule | None
    stored: int

    @property
    def stored_without_rule(self) -> bool:
        return self.rule is None and self.stored > 0


@dataclass(frozen=True)
class RetentionKind:
    """One artifact kind, with a line per bucket."""

    kind: str
    label: str
    lines: list[RetentionLine]


def retention_lines(*, workflow: Workflow) -> list[RetentionKind]:
    """Every artifact kind in every bucket for the workflow. Two queries."""
    rules = {
        (rule.kind, rule.bucket): rule
        for rule in RetentionRule.objects.filter(workflow=workflow).select_related("owner")
    }
    stored = {
        (row["kind"], row["bucket"]): row["stored"]
        for row in Artifact.objects.filter(workflow_id=workflow.pk)
        .values("kind", "bucket")
        .annotate(stored=Count("id"))
        .order_by()
    }
    return [
        RetentionKind(
            kind=kind,
            label=str(kind_label),
            lines=[
                RetentionLine(
                    kind=kind,
                    kind_label=str(kind_label),
                    bucket=bucket,
                    bucket_label=str(bucket_label),
                    rule=rules.get((kind, bucket)),
                    stored=stored.get((kind, bucket), 0),
                )
                for bucket, bucket_label in Bucket.choices
            ],
        )
        for kind, kind_label in ArtifactKind.choices
    ]


def _applied_changes_of(workflow: Workflow) -> Any:
    return Change.objects.filter(proposal_id__in=Proposal.objects.filter(workflow=workflow).values("pk")).exclude(
        action=ChangeAction.REVERT
    )


def walk_choices(*, workflow: Workflow, limit: int = RECENT_CHANGES) -> list[Change]:
    """The workflow's most recent applied changes, one of which a review walks through. One query."""
    return list(_applied_changes_of(workflow).order_by("-applied_at")[:limit])


def walk_change_of(*, workflow: Workflow, change_id: uuid.UUID) -> Change:
    change = _applied_changes_of(workflow).filter(pk=change_id).first()
    if change is None:
        raise NotFound("no applied change of this workflow has that id; pick one from the list")
    return change


def change_undone_by(*, change_id: uuid.UUID) -> Change | None:
    """The change that undid `change_id`, if it was undone."""
    return Change.objects.filter(reverts_id=change_id).order_by("applied_at").first()


@dataclass(frozen=True)
class Walk:
    """Step 4: the change walked through, the proposal it came from and the undo that took it back."""

    change: Change
    proposal: Proposal | None
    undone_by: Change | None


def walk_of(*, review: ReadinessReview | None) -> Walk | None:
    """The change a review walks through, with its proposal and its undo. Three queries, none without one."""
    if review is None or review.walk_change_id is None:
        return None
    change = Change.objects.filter(pk=review.walk_change_id).first()
    if change is None:
        return None
    proposal = (
        Proposal.objects.select_related("decided_by").filter(pk=change.proposal_id).first()
        if change.proposal_id is not None
        else None
    )
    return Walk(change=change, proposal=proposal, undone_by=change_undone_by(change_id=change.id))


def _with_signers() -> Any:
    return ReadinessReview.objects.select_related("started_by", "decided_by").prefetch_related(
        Prefetch("signatures", queryset=ReviewSignature.objects.select_related("user").order_by("signed_at"))
    )


def review_of(*, workflow: Workflow, review_id: int) -> ReadinessReview:
    """The review a form names, if it is this workflow's."""
    review = ReadinessReview.objects.filter(workflow=workflow, pk=review_id).first()
    if review is None:
        raise NotFound("no such review of this workflow; reload the page and try again")
    return review


@dataclass(frozen=True)
class Tick:
    """A step ticked: by whom (their name as the trail gives it), when, and what they noted."""

    name: str
    at: datetime | None
    note: str


def ticks_of(review: ReadinessReview | None) -> dict[str, Tick]:
    steps: dict[str, Any] = review.steps if review else {}
    return {
        key: Tick(
            name=tick.get("name") or tick.get("by", ""),
            at=parse_datetime(tick.get("at", "")),
            note=tick.get("note", ""),
        )
        for key, tick in steps.items()
        if isinstance(tick, dict)
    }


@dataclass
class ReviewPage:
    """What the review page of a workflow shows."""

    workflow: Workflow
    current: ReadinessReview | None  # the open review, else the latest one (read-only)
    past: list[ReadinessReview]
    may_run: bool
    tasks: TouchingTasks
    fields: list[MarkedField]
    retention: list[RetentionKind]
    walk_choices: list[Change]
    walk: Walk | None
    now: datetime

    @property
    def is_open(self) -> bool:
        return self.current is not None and self.current.signed_off_at is None

    @property
    def may_act(self) -> bool:
        return self.may_run and self.is_open

    @property
    def may_start(self) -> bool:
        return self.may_run and not self.is_open

    @property
    def signers(self) -> list[ReviewSignature]:
        return list(self.current.signatures.all()) if self.current else []

    @property
    def signer_ids(self) -> set[int]:
        return {signature.user_id for signature in self.signers}

    @property
    def buckets(self) -> list[str]:
        return [str(label) for _, label in Bucket.choices]

    @cached_property
    def ticks(self) -> dict[str, Tick]:
        return ticks_of(self.current)

    @property
    def walk_rows(self) -> list[tuple[WalkPart, Tick | None]]:
        ticks = self.ticks
        return [(part, ticks.get(part.key)) for part in WALK_PARTS]

    @property
    def walk_begun(self) -> bool:
        return any(tick for _, tick in self.walk_rows)

    @property
    def missing(self) -> list[str]:
        return ticks_missing(self.current.steps) if self.current else []

    @property
    def waiting_for(self) -> str:
        """What the sign-off still needs ("" once signed off, or with no review)."""
        if self.current is None or self.current.signed_off_at is not None:
            return ""
        owner = self.workflow.owner
        return sign_off_waits_for(
            signer_ids=[signature.user_id for signature in self.signers],
            owner_id=owner.pk,
            owner_name=user_label(owner),
        )

    @property
    def flagged_retention(self) -> list[RetentionLine]:
        return [line for kind in self.retention for line in kind.lines if line.stored_without_rule]

    @property
    def differences(self) -> list[MarkedField]:
        return [marked for marked in self.fields if marked.differs]


def review_page(*, workflow: Workflow, scope: ViewerScope, may_run: bool, now: datetime) -> ReviewPage:
    """The page of a workflow's five-step review. A fixed number of queries, whatever the rows."""
    reviews = list(_with_signers().filter(workflow=workflow).order_by("-started_at", "-pk")[: PAST_REVIEWS + 1])
    current = next((review for review in reviews if review.signed_off_at is None), reviews[0] if reviews else None)
    return ReviewPage(
        workflow=workflow,
        current=current,
        past=[review for review in reviews if review is not current][:PAST_REVIEWS],
        may_run=may_run,
        tasks=touching_tasks(workflow=workflow, scope=scope),
        fields=marked_fields(rows=review_fields(workflow=workflow), review=current),
        retention=retention_lines(workflow=workflow),
        walk_choices=walk_choices(workflow=workflow),
        walk=walk_of(review=current),
        now=now,
    )
