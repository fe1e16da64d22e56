"""Reads for the review queue: filters, counts, claims, and the next proposal to decide."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet
from django.http import QueryDict
from django.utils import timezone

from approvals.models import Action, Batch, Proposal, ProposalApproval, ProposalStatus
from approvals.requesters import asked_for_by, requester_reason
from approvals.review.rights import Reviewable, needs_two_approvals, reviewable_workflows
from approvals.stops.breaker import breaker_tripped_over
from approvals.workflows.rights import Viewer
from audit.services import user_label
from core.timeutils import parse_window
from records.catalogue import RECORD_TYPES

PAGE_SIZE = 25


AGE_CHOICES = {"15m": "15 minutes", "1h": "1 hour", "4h": "4 hours", "1d": "1 day", "3d": "3 days", "7d": "7 days"}


FIELD_CHOICES = sorted({spec.name for record_type in RECORD_TYPES.values() for spec in record_type.fields})


@dataclass(frozen=True)
class QueueFilters:
    workflow: str = ""
    batch: int | None = None
    action: str = ""
    field: str = ""
    requester: str = ""
    age: str = ""

    @classmethod
    def from_params(cls, params: QueryDict | dict[str, str]) -> tuple["QueueFilters", list[tuple[str, str]]]:
        """Filters from a query string. A value that makes no sense is dropped and named in the problems."""
        problems: list[tuple[str, str]] = []
        workflow = str(params.get("workflow") or "").strip()[:64]
        batch: int | None = None
        raw_batch = str(params.get("batch") or "").strip()
        if raw_batch:
            if raw_batch.isdigit() and len(raw_batch) < 19:
                batch = int(raw_batch)
            else:
                problems.append(("batch", f"'{raw_batch[:20]}' is not a batch number"))
        action = str(params.get("action") or "").strip()
        if action and action not in Action.values:
            problems.append(("action", f"'{action[:20]}' is not one of {', '.join(Action.values)}"))
            action = ""
        field_name = str(params.get("field") or "").strip()
        if field_name and field_name not in FIELD_CHOICES:
            problems.append(("field", f"'{field_name[:40]}' is not a field of any record type"))
            field_name = ""
        requester = str(params.get("requester") or "").strip()[:150]
        age = str(params.get("age") or "").strip()
        if age and age not in AGE_CHOICES:
            problems.append(("age", f"'{age[:20]}' is not one of {', '.join(AGE_CHOICES)}"))
            age = ""
        filters = cls(workflow=workflow, batch=batch, action=action, field=field_name, requester=requester, age=age)
        return filters, problems

    def params(self, **overrides: Any) -> dict[str, str]:
        values = {
            "workflow": self.workflow,
            "batch": "" if self.batch is None else str(self.batch),
            "action": self.action,
            "field": self.field,
            "requester": self.requester,
            "age": self.age,
        }
        values.update({key: "" if value is None else str(value) for key, value in overrides.items()})
        return {key: value for key, value in values.items() if value}

    def querystring(self, **overrides: Any) -> str:
        """`?workflow=...&...` for links that keep the filters, or "" when there are none."""
        params = self.params(**overrides)
        return "?" + urlencode(params) if params else ""

    @property
    def active(self) -> bool:
        return bool(self.params())

    def apply(
        self, queryset: QuerySet[Proposal], *, now: datetime, reviewable: Reviewable, workflow: bool = True
    ) -> QuerySet[Proposal]:
        if workflow and self.workflow:
            workflow_id = reviewable.id_of(self.workflow)
            queryset = queryset.filter(workflow_id=workflow_id) if workflow_id is not None else queryset.none()
        if self.batch is not None:
            queryset = queryset.filter(batch_id=self.batch)
        if self.action:
            queryset = queryset.filter(action=self.action)
        if self.field:
            queryset = queryset.filter(changes__has_key=self.field)
        if self.requester:
            queryset = queryset.filter(requested_by__iexact=self.requester)
        if self.age:
            queryset = queryset.filter(created_at__lte=now - parse_window(self.age))
        return queryset


def proposal_queue(
    *, user: Viewer, filters: QueueFilters, now: datetime | None = None, reviewable: Reviewable | None = None
) -> QuerySet[Proposal]:
    """Pending proposals `user` may review, filtered, oldest first."""
    now = now or timezone.now()
    reviewable = reviewable or reviewable_workflows(user=user)
    queryset = Proposal.objects.filter(status=ProposalStatus.PENDING, workflow_id__in=reviewable.ids)
    return filters.apply(queryset, now=now, reviewable=reviewable).order_by("created_at", "id")


@dataclass(frozen=True)
class WorkflowCount:
    slug: str
    name: str
    count: int
    selected: bool


@dataclass
class QueueCounts:
    workflows: list[WorkflowCount]
    total: int  # under the workflow filter too
    all_total: int
    filtered: bool = False  # counted under the filters other than the workflow


def queue_counts(
    *, user: Viewer, filters: QueueFilters, reviewable: Reviewable | None = None, now: datetime | None = None
) -> QueueCounts:
    """Pending proposals per workflow `user` may review, under the filters in force other than the
    workflow (which the counts choose between). Every workflow with pending work keeps its count,
    if only a zero, so the choice of workflow stays offered.

    Counted by workflow id alone, so PostgreSQL answers from the partial index of pending proposals;
    under other filters, one more count for what they let through.
    """
    reviewable = reviewable or reviewable_workflows(user=user)
    pending = Proposal.objects.filter(status=ProposalStatus.PENDING, workflow_id__in=reviewable.ids)
    counted = _per_workflow(pending)
    filtered = any(key != "workflow" for key in filters.params())
    if filtered:
        shown = _per_workflow(filters.apply(pending, now=now or timezone.now(), reviewable=reviewable, workflow=False))
    else:
        shown = counted
    workflows = [
        WorkflowCount(slug=slug, name=name, count=shown.get(pk, 0), selected=slug == filters.workflow)
        for pk, (slug, name) in reviewable.workflows.items()
        if counted.get(pk)
    ]
    all_total = sum(count.count for count in workflows)
    total = sum(count.count for count in workflows if count.selected) if filters.workflow else all_total
    return QueueCounts(workflows=workflows, total=total, all_total=all_total, filtered=filtered)


def _per_workflow(proposals: QuerySet[Proposal]) -> dict[int, int]:
    return dict(proposals.order_by().values_list("workflow_id").annotate(count=Count("*")))


@dataclass(frozen=True)
class Claim:
    holder: str
    until: datetime
    mine: bool


def claim_of(*, proposal: Proposal, user: Viewer, now: datetime | None = None) -> Claim | None:
    """Who is looking at `proposal` right now, if anyone."""
    now = now or timezone.now()
    if proposal.claimed_by_id is None or proposal.claimed_until is None or proposal.claimed_until <= now:
        return None
    label = user_label(proposal.claimed_by) or "someone"
    return Claim(holder=label, until=proposal.claimed_until, mine=proposal.claimed_by_id == user.pk)


@dataclass
class QueueRow:
    proposal: Proposal
    fields: list[str]
    needs_two: bool
    approvals: list[ProposalApproval]
    claim: Claim | None
    own_request: bool
    breaker_tripped: bool = False  # a circuit breaker stop engaged now names this prompt version


@dataclass
class QueuePage:
    rows: list[QueueRow]
    counts: QueueCounts
    number: int
    has_next: bool
    total: int | None  # what the filters let through, from the counts
    start: int
    end: int
    batches: list[Batch]

    @property
    def has_previous(self) -> bool:
        return self.number > 1


def review_queue_page(
    *, user: Viewer, filters: QueueFilters, page: int = 1, per_page: int = PAGE_SIZE, now: datetime | None = None
) -> QueuePage:
    """One page of the queue with its counts and filter choices, in a fixed number of queries.

    The page reads one row beyond its end to know whether another follows, rather than counting
    every match of the filters.
    """
    now = now or timezone.now()
    reviewable = reviewable_workflows(user=user)
    counts = queue_counts(user=user, filters=filters, reviewable=reviewable, now=now)
    total = counts.total
    number = max(1, page)
    if total is not None:
        number = min(number, max(1, -(-total // per_page)))
    offset = (number - 1) * per_page
    proposals = list(
        proposal_queue(user=user, filters=filters, now=now, reviewable=reviewable)
        .select_related("workflow", "batch", "claimed_by")
        .annotate(breaker_tripped=breaker_tripped_over())
        .prefetch_related(Prefetch("approvals", queryset=ProposalApproval.objects.select_related("user")))[
            offset : offset + per_page + 1
        ]
    )
    has_next = len(proposals) > per_page
    proposals = proposals[:per_page]
    rows = [
        QueueRow(
            proposal=proposal,
            fields=list(proposal.changes or {}),
            needs_two=needs_two_approvals(proposal=proposal),
            approvals=list(proposal.approvals.all()),
            claim=claim_of(proposal=proposal, user=user, now=now),
            own_request=bool(requester_reason(proposal=proposal, user=user)),
            breaker_tripped=proposal.breaker_tripped,  # type: ignore[attr-defined]
        )
        for proposal in proposals
    ]
    pending_in_batch = Proposal.objects.filter(batch=OuterRef("pk"), status=ProposalStatus.PENDING)
    batches = list(
        Batch.objects.filter(workflow_id__in=reviewable.ids)
        .filter(Exists(pending_in_batch))
        .order_by("-created_at", "-id")[:30]
    )
    return QueuePage(
        rows=rows,
        counts=counts,
        number=number,
        has_next=has_next,
        total=total,
        start=offset + 1 if rows else 0,
        end=offset + len(rows),
        batches=batches,
    )


def _after(proposal: Proposal) -> Q:
    return Q(created_at__gte=proposal.created_at) & (
        Q(created_at__gt=proposal.created_at) | Q(created_at=proposal.created_at, id__gt=proposal.pk)
    )


def _before(proposal: Proposal) -> Q:
    return Q(created_at__lte=proposal.created_at) & (
        Q(created_at__lt=proposal.created_at) | Q(created_at=proposal.created_at, id__lt=proposal.pk)
    )


def proposal_neighbours(
    *, user: Viewer, filters: QueueFilters, proposal: Proposal, reviewable: Reviewable | None = None
) -> tuple[int | None, int | None]:
    """The ids before and after `proposal` in the filtered queue (for j/k)."""
    queue = proposal_queue(user=user, filters=filters, reviewable=reviewable)
    previous = queue.filter(_before(proposal)).order_by("-created_at", "-id").values_list("id", flat=True).first()
    following = queue.filter(_after(proposal)).values_list("id", flat=True).first()
    return previous, following


def proposal_next_to_decide(
    *,
    user: AbstractBaseUser,
    filters: QueueFilters,
    after: Proposal | None = None,
    reviewable: Reviewable | None = None,
) -> int | None:
    """The next proposal `user` can decide: not their own request, not their approval already, not
    being looked at by someone else. The one after `after` in queue order, else the oldest."""
    now = timezone.now()
    queue = (
        proposal_queue(user=user, filters=filters, now=now, reviewable=reviewable)
        .exclude(asked_for_by(user))
        .exclude(Q(claimed_until__gt=now) & ~Q(claimed_by_id=user.pk))
        .exclude(approvals__user_id=user.pk)
    )
    if after is not None:
        following = queue.filter(_after(after)).values_list("id", flat=True).first()
        if following is not None:
            return following
        queue = queue.exclude(pk=after.pk)
    return queue.values_list("id", flat=True).first()
