"""Reads for the review screens: the queue a person may review, one proposal in full, matched groups.

Visibility is the django-guardian `review_workflow` permission on the proposal's workflow. Nothing
here lists, counts or names a proposal outside it, with two exceptions for one proposal's page: the
person who asked for a change may look at it (and is told why they cannot decide it), and the
people who may override the workflow's blocks (`override_workflow`) may open a proposal that waits
for a decision or is in conflict, to see what an override would let through.
"""

import difflib
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet
from django.http import QueryDict
from django.utils import timezone
from guardian.shortcuts import get_objects_for_user

from approvals.models import Action, Batch, Proposal, ProposalApproval, ProposalStatus, Workflow
from approvals.selectors.overrides import NO_OVERRIDES, ProposalOverrides, proposal_overrides_for
from approvals.selectors.workflows import write_policy
from core.errors import NotFound, ValidationFailed
from core.timeutils import parse_window
from records.catalogue import RECORD_TYPES, FieldSpec, Kind
from records.models import Change, Order, Ticket
from records.store import RecordRef, RecordState, get_store

Viewer = AbstractBaseUser | AnonymousUser

PAGE_SIZE = 25
RECENT_CHANGES = 5
OTHER_PENDING = 5
GROUP_SAMPLE = 5
AGE_CHOICES = {"15m": "15 minutes", "1h": "1 hour", "4h": "4 hours", "1d": "1 day", "3d": "3 days", "7d": "7 days"}
FIELD_CHOICES = sorted({spec.name for record_type in RECORD_TYPES.values() for spec in record_type.fields})


# --- who may see and decide ---------------------------------------------------------------------


def workflows_reviewable_by(*, user: Viewer) -> QuerySet[Workflow]:
    """The workflows whose proposals `user` may review: the object permission, directly or by group.

    Being a superuser grants nothing here: each workflow is countersigned by the people given its
    review permission (its approver group), and by nobody else.
    """
    if not user.is_authenticated or not user.is_active:
        return Workflow.objects.none()
    return get_objects_for_user(
        user, "approvals.review_workflow", klass=Workflow, with_superuser=False, accept_global_perms=False
    )


def workflows_overridable_by(*, user: Viewer) -> QuerySet[Workflow]:
    """The workflows whose blocks `user` may override, by schedule: the object permission."""
    if not user.is_authenticated or not user.is_active:
        return Workflow.objects.none()
    return get_objects_for_user(
        user, "approvals.override_workflow", klass=Workflow, with_superuser=False, accept_global_perms=False
    )


def user_may_review(*, user: Viewer, workflow: Workflow) -> bool:
    return workflows_reviewable_by(user=user).filter(pk=workflow.pk).exists()


@dataclass(frozen=True)
class Reviewable:
    """The workflows one person may review, read once per request: id -> (slug, name)."""

    workflows: dict[int, tuple[str, str]]

    @property
    def ids(self) -> list[int]:
        return list(self.workflows)

    def id_of(self, slug: str) -> int | None:
        return next((pk for pk, (known, _) in self.workflows.items() if known == slug), None)


def reviewable_workflows(*, user: Viewer) -> Reviewable:
    rows = workflows_reviewable_by(user=user).order_by("slug").values_list("pk", "slug", "name")
    return Reviewable({pk: (slug, name) for pk, slug, name in rows})


def requester_reason(*, proposal: Proposal, user: Viewer) -> str:
    """Why `user` counts as the requester of `proposal`, as a sentence; empty when they do not."""
    if not user.is_authenticated:
        return ""
    username = user.get_username().casefold()
    if proposal.requested_by_user_id is not None and proposal.requested_by_user_id == user.pk:
        return "You asked for this change"
    if proposal.requested_by and proposal.requested_by.casefold() == username:
        return "You asked for this change"
    if proposal.batch_id is not None and proposal.batch is not None:
        if proposal.batch.requested_by and proposal.batch.requested_by.casefold() == username:
            return f"You started the batch it belongs to ({proposal.batch.name})"
    return ""


def _requested_by_q(user: Viewer) -> Q:
    username = user.get_username()
    return Q(requested_by_user_id=user.pk) | Q(requested_by__iexact=username) | Q(batch__requested_by__iexact=username)


def needs_two_approvals(*, proposal: Proposal) -> bool:
    workflow = proposal.workflow
    if proposal.action in (workflow.two_person_actions or []):
        return True
    return bool(set(proposal.changes or {}) & set(workflow.two_person_fields or []))


def proposal_for_viewer(*, user: Viewer, proposal_id: int, reviewable: Reviewable | None = None) -> Proposal:
    """The proposal, if `user` may review its workflow or asked for it, or may override the workflow's
    blocks and it waits for a decision or is in conflict. Anything else is NotFound."""
    visible = (
        Q(workflow__in=workflows_reviewable_by(user=user)) if reviewable is None else Q(workflow_id__in=reviewable.ids)
    )
    if user.is_authenticated:
        visible |= _requested_by_q(user)
        visible |= Q(
            workflow__in=workflows_overridable_by(user=user),
            status__in=[ProposalStatus.PENDING, ProposalStatus.CONFLICT],
        )
    proposal = (
        Proposal.objects.filter(visible, pk=proposal_id)
        .select_related("workflow", "batch", "service_account", "requested_by_user", "claimed_by", "decided_by")
        .first()
    )
    if proposal is None:
        raise NotFound(f"no proposal {proposal_id} that you may see")
    return proposal


# --- the queue ------------------------------------------------------------------------------------


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


def queue_counts(*, user: Viewer, filters: QueueFilters, reviewable: Reviewable | None = None) -> QueueCounts:
    """Pending proposals per workflow `user` may review: the workload, whatever else is filtered.

    Counted by workflow id alone, so PostgreSQL answers from the partial index of pending proposals.
    """
    reviewable = reviewable or reviewable_workflows(user=user)
    counted = dict(
        Proposal.objects.filter(status=ProposalStatus.PENDING, workflow_id__in=reviewable.ids)
        .order_by()
        .values_list("workflow_id")
        .annotate(count=Count("*"))
    )
    workflows = [
        WorkflowCount(slug=slug, name=name, count=counted[pk], selected=slug == filters.workflow)
        for pk, (slug, name) in reviewable.workflows.items()
        if counted.get(pk)
    ]
    all_total = sum(count.count for count in workflows)
    total = sum(count.count for count in workflows if count.selected) if filters.workflow else all_total
    return QueueCounts(workflows=workflows, total=total, all_total=all_total)


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
    holder = proposal.claimed_by
    label = (holder.get_full_name() or holder.get_username()) if holder is not None else "someone"
    return Claim(holder=label, until=proposal.claimed_until, mine=proposal.claimed_by_id == user.pk)


@dataclass
class QueueRow:
    proposal: Proposal
    fields: list[str]
    needs_two: bool
    approvals: list[ProposalApproval]
    claim: Claim | None
    own_request: bool


@dataclass
class QueuePage:
    rows: list[QueueRow]
    counts: QueueCounts
    number: int
    has_next: bool
    total: int | None  # known without counting again only when nothing but the workflow is filtered
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
    counts = queue_counts(user=user, filters=filters, reviewable=reviewable)
    only_workflow = not filters.active or filters.params().keys() == {"workflow"}
    total = counts.total if only_workflow else None
    number = max(1, page)
    if total is not None:
        number = min(number, max(1, -(-total // per_page)))
    offset = (number - 1) * per_page
    proposals = list(
        proposal_queue(user=user, filters=filters, now=now, reviewable=reviewable)
        .select_related("workflow", "batch", "claimed_by")
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


# Each carries a plain range on created_at too, so the index scan starts at the proposal, not at the oldest.


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
        .exclude(_requested_by_q(user))
        .exclude(Q(claimed_until__gt=now) & ~Q(claimed_by_id=user.pk))
        .exclude(approvals__user_id=user.pk)
    )
    if after is not None:
        following = queue.filter(_after(after)).values_list("id", flat=True).first()
        if following is not None:
            return following
        queue = queue.exclude(pk=after.pk)
    return queue.values_list("id", flat=True).first()


# --- one proposal ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiffPiece:
    kind: str  # "same", "removed" or "added"
    text: str


_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")


def word_diff(old: str, new: str) -> list[DiffPiece]:
    """The word-level difference between two texts, as pieces kept, removed and added, in order."""
    before, after = _TOKEN.findall(old or ""), _TOKEN.findall(new or "")
    pieces: list[DiffPiece] = []
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            pieces.append(DiffPiece("same", "".join(before[i1:i2])))
            continue
        if tag in ("replace", "delete"):
            pieces.append(DiffPiece("removed", "".join(before[i1:i2])))
        if tag in ("replace", "insert"):
            pieces.append(DiffPiece("added", "".join(after[j1:j2])))
    return pieces


def list_diff(old: list[str], new: list[str]) -> list[DiffPiece]:
    old_items, new_items = list(old or []), list(new or [])
    pieces = [DiffPiece("same" if item in new_items else "removed", item) for item in old_items]
    pieces += [DiffPiece("added", item) for item in new_items if item not in old_items]
    return pieces


_MISSING = object()


@dataclass
class FieldRow:
    name: str
    label: str
    kind: str
    current: Any
    proposed: Any
    base: Any = None
    has_base: bool = False
    stale: bool = False
    diff: list[DiffPiece] | None = None

    @property
    def changed(self) -> bool:
        return self.current != self.proposed


def _spec(record_type: str, name: str) -> FieldSpec | None:
    try:
        return RECORD_TYPES[record_type].field(name)
    except KeyError:
        return None


def field_rows(*, proposal: Proposal, state: RecordState | None) -> list[FieldRow]:
    """For an update: each changed field with its current, proposed and (if given) base value."""
    record_type = RECORD_TYPES.get(proposal.record_type)
    order = {name: index for index, name in enumerate(record_type.field_names)} if record_type else {}
    rows = []
    for name in sorted(proposal.changes or {}, key=lambda n: (order.get(n, len(order)), n)):
        spec = _spec(proposal.record_type, name)
        proposed = proposal.changes[name]
        current = state.values.get(name) if state is not None else None
        base = (proposal.base or {}).get(name, _MISSING)
        has_base = base is not _MISSING
        row = FieldRow(
            name=name,
            label=spec.label if spec else name.replace("_", " "),
            kind=str(spec.kind) if spec else "text",
            current=current,
            proposed=proposed,
            base=base if has_base else None,
            has_base=has_base,
            stale=state is not None and has_base and base != current,
        )
        if spec is not None and spec.kind in (Kind.TEXT, Kind.EMAIL) and isinstance(proposed, str):
            row.diff = word_diff(current if isinstance(current, str) else "", proposed)
        elif spec is not None and spec.kind == Kind.TAGS and isinstance(proposed, list):
            row.diff = list_diff(current if isinstance(current, list) else [], proposed)
        rows.append(row)
    return rows


def stale_fields(*, proposal: Proposal, state: RecordState | None) -> list[str]:
    """The fields whose value the AI saw (`base`) is no longer the record's. A missing record is stale."""
    if state is None:
        return sorted(proposal.base or {}) or ["record"]
    return sorted(name for name, seen in (proposal.base or {}).items() if state.values.get(name, seen) != seen)


@dataclass
class MergeRow:
    label: str
    duplicate: Any
    survivor: Any
    surviving: Any

    @property
    def differs(self) -> bool:
        return self.duplicate != self.survivor


@dataclass
class MergeView:
    duplicate: RecordState | None
    survivor: RecordState | None
    rows: list[MergeRow]
    moving_orders: list[str]
    moving_tickets: list[str]


def merge_view(*, proposal: Proposal) -> MergeView:
    """Both customers side by side, the value of each field that survives, and the rows that will move.

    The survivor keeps its own values, except where the proposal names a value for a field.
    """
    store = get_store()
    states = store.fetch_refs(
        [RecordRef(proposal.record_type, proposal.record_id), RecordRef(proposal.record_type, proposal.merge_into)]
    )
    duplicate = states.get(RecordRef(proposal.record_type, proposal.record_id))
    survivor = states.get(RecordRef(proposal.record_type, proposal.merge_into))
    record_type = RECORD_TYPES[proposal.record_type]
    chosen = proposal.changes or {}
    rows = []
    for spec in record_type.fields:
        duplicate_value = duplicate.values.get(spec.name) if duplicate else None
        survivor_value = survivor.values.get(spec.name) if survivor else None
        surviving = chosen.get(spec.name, survivor_value)
        rows.append(MergeRow(spec.label, duplicate_value, survivor_value, surviving))
    orders = list(
        Order.objects.filter(customer__record_id=proposal.record_id)
        .order_by("record_id")
        .values_list("record_id", flat=True)
    )
    tickets = list(
        Ticket.objects.filter(customer__record_id=proposal.record_id)
        .order_by("record_id")
        .values_list("record_id", flat=True)
    )
    return MergeView(duplicate, survivor, rows, orders, tickets)


@dataclass
class BatchProgress:
    batch: Batch
    by_status: dict[str, int]
    total: int

    @property
    def pending(self) -> int:
        return self.by_status.get(ProposalStatus.PENDING, 0)

    @property
    def decided(self) -> int:
        return self.total - self.pending

    @property
    def percent_decided(self) -> int:
        return round(100 * self.decided / self.total) if self.total else 0


def batch_progress(*, batch: Batch) -> BatchProgress:
    counts = dict(Proposal.objects.filter(batch=batch).order_by().values_list("status").annotate(count=Count("id")))
    return BatchProgress(batch=batch, by_status=counts, total=sum(counts.values()))


@dataclass
class ReviewDetail:
    proposal: Proposal
    record_label: str
    record_title: str
    record_missing: bool
    record_hidden: str
    rows: list[FieldRow]
    record_rows: list[FieldRow]
    merge: MergeView | None
    stale_rows: list[FieldRow]
    approvals: list[ProposalApproval]
    needs_two: bool
    may_review: bool
    requester_reason: str
    viewer_approved: bool
    claim: Claim | None
    batch: BatchProgress | None
    recent_changes: list[Change]
    other_pending: list[Proposal]
    previous_id: int | None
    next_id: int | None
    confidence_percent: int
    reviewable: Reviewable
    overrides: ProposalOverrides
    flagged_fields: list[str]
    record_version: int | None
    policy_refusal: str = ""  # why no one may approve it now that the workflow's file changed

    @property
    def is_pending(self) -> bool:
        return self.proposal.status == ProposalStatus.PENDING

    @property
    def may_decide(self) -> bool:
        """As one of the workflow's reviewers, or under an after-hours override."""
        return self.may_review or self.overrides.decide is not None

    @property
    def can_decide(self) -> bool:
        return self.is_pending and self.may_decide and not self.requester_reason

    @property
    def can_approve(self) -> bool:
        return self.can_decide and not self.viewer_approved and not self.policy_refusal

    @property
    def should_claim(self) -> bool:
        return self.can_decide and (self.claim is None or self.claim.mine)


SUMMARY_FIELDS = 6


def flagged_field_labels(*, proposal: Proposal) -> list[str]:
    """The fields the minimisation lint found in the proposal's prompts or outputs, named for a
    person ("customer email"); never their values."""
    labels = []
    for flagged in proposal.flagged_fields or []:
        record_type, _, name = str(flagged).partition(".")
        spec = _spec(record_type, name)
        record_label = RECORD_TYPES[record_type].label.lower() if record_type in RECORD_TYPES else record_type
        labels.append(f"{record_label} {spec.label.lower() if spec else name.replace('_', ' ')}")
    return labels


def proposal_review_detail(
    *, user: Viewer, proposal: Proposal, filters: QueueFilters, reviewable: Reviewable | None = None
) -> ReviewDetail:
    """Everything the one review screen shows, read live; a fixed number of queries per action."""
    record_type = RECORD_TYPES.get(proposal.record_type)
    ref = RecordRef(proposal.record_type, proposal.record_id)
    merge = None
    state: RecordState | None
    if proposal.action == Action.MERGE:
        merge = merge_view(proposal=proposal)
        state = merge.duplicate
    else:
        state = get_store().fetch_refs([ref]).get(ref)
    rows = field_rows(proposal=proposal, state=state) if proposal.action == Action.UPDATE else []
    record_rows: list[FieldRow] = []
    if proposal.action in (Action.ARCHIVE, Action.DELETE) and state is not None and record_type is not None:
        base = proposal.base or {}
        shown = [spec for spec in record_type.fields if spec.name in base]
        shown += [spec for spec in record_type.fields if spec.name not in base][: max(0, SUMMARY_FIELDS - len(shown))]
        for spec in shown:
            current = state.values.get(spec.name)
            record_rows.append(
                FieldRow(
                    name=spec.name,
                    label=spec.label,
                    kind=str(spec.kind),
                    current=current,
                    proposed=None,
                    base=base.get(spec.name),
                    has_base=spec.name in base,
                    stale=spec.name in base and base[spec.name] != current,
                )
            )
    reviewable = reviewable or reviewable_workflows(user=user)
    may_review = proposal.workflow_id in reviewable.workflows
    approvals = list(proposal.approvals.select_related("user"))
    recent_changes = list(
        Change.objects.filter(record_type=proposal.record_type, record_id=proposal.record_id).order_by("-applied_at")[
            :RECENT_CHANGES
        ]
    )
    other_pending = list(
        Proposal.objects.filter(
            record_type=proposal.record_type,
            record_id=proposal.record_id,
            status=ProposalStatus.PENDING,
            workflow_id__in=reviewable.ids,
        )
        .exclude(pk=proposal.pk)
        .select_related("workflow")
        .order_by("created_at", "id")[:OTHER_PENDING]
    )
    previous_id, next_id = (None, None)
    if proposal.status == ProposalStatus.PENDING and may_review:
        previous_id, next_id = proposal_neighbours(user=user, filters=filters, proposal=proposal, reviewable=reviewable)
    hidden = ""
    if state is not None and state.deleted:
        hidden = "deleted"
    elif state is not None and state.archived:
        hidden = "archived"
    return ReviewDetail(
        proposal=proposal,
        record_label=record_type.label if record_type else proposal.record_type,
        record_title=state.title if state else "",
        record_missing=state is None or (merge is not None and merge.survivor is None),
        record_hidden=hidden,
        rows=rows,
        record_rows=record_rows,
        merge=merge,
        stale_rows=[row for row in rows + record_rows if row.stale],
        approvals=approvals,
        needs_two=needs_two_approvals(proposal=proposal),
        may_review=may_review,
        requester_reason=requester_reason(proposal=proposal, user=user),
        viewer_approved=any(approval.user_id == user.pk for approval in approvals),
        claim=claim_of(proposal=proposal, user=user),
        batch=batch_progress(batch=proposal.batch) if proposal.batch is not None else None,
        recent_changes=recent_changes,
        other_pending=other_pending,
        previous_id=previous_id,
        next_id=next_id,
        confidence_percent=round(proposal.confidence * 100),
        reviewable=reviewable,
        overrides=(
            proposal_overrides_for(user=user, proposal=proposal)
            if proposal.status == ProposalStatus.CONFLICT or not may_review
            else NO_OVERRIDES
        ),
        flagged_fields=flagged_field_labels(proposal=proposal),
        record_version=state.version if state is not None else None,
        policy_refusal=(
            write_policy(workflow=proposal.workflow).refusal(proposal=proposal, reviewed=True)
            if proposal.status == ProposalStatus.PENDING
            else ""
        ),
    )


# --- matched groups in a batch --------------------------------------------------------------------


@dataclass(frozen=True)
class GroupKey:
    """What the proposals of a group share, beside their batch (and so their workflow)."""

    action: str
    fields: tuple[str, ...]
    prompt_version: str

    @classmethod
    def of(cls, proposal: Proposal) -> "GroupKey":
        return cls(proposal.action, tuple(sorted(proposal.changes or {})), proposal.prompt_version)

    @classmethod
    def from_params(cls, params: QueryDict | dict[str, str]) -> "GroupKey":
        action = str(params.get("action") or "")
        if action not in Action.values:
            raise ValidationFailed([("action", f"must be one of {', '.join(Action.values)}")])
        fields = tuple(sorted(name for name in str(params.get("fields") or "").split(",") if name))
        prompt_version = str(params.get("prompt_version") or "")
        if not prompt_version:
            raise ValidationFailed([("prompt_version", "is required")])
        return cls(action, fields, prompt_version)

    def querystring(self) -> str:
        return "?" + urlencode(
            {"action": self.action, "fields": ",".join(self.fields), "prompt_version": self.prompt_version}
        )


@dataclass
class ProposalGroup:
    key: GroupKey
    ids: list[int]

    @property
    def count(self) -> int:
        return len(self.ids)


@dataclass
class BatchGroups:
    batch: Batch
    groups: list[ProposalGroup]
    stale_ids: list[int]
    own_count: int
    states: dict[RecordRef, RecordState]

    def group(self, key: GroupKey) -> ProposalGroup | None:
        return next((group for group in self.groups if group.key == key), None)


def batch_groups(*, user: AbstractBaseUser, batch: Batch) -> BatchGroups:
    """The batch's pending proposals that `user` can decide, grouped by action, fields and prompt
    version. Stale ones (the record no longer holds what the AI saw) are set apart, never grouped."""
    if not user_may_review(user=user, workflow=batch.workflow):
        raise NotFound(f"no batch {batch.pk} that you may review")
    pending = list(
        Proposal.objects.filter(batch=batch, status=ProposalStatus.PENDING)
        .exclude(approvals__user_id=user.pk)
        .select_related("workflow", "batch")
        .order_by("created_at", "id")
    )
    decidable = [proposal for proposal in pending if not requester_reason(proposal=proposal, user=user)]
    states = get_store().fetch_refs(RecordRef(p.record_type, p.record_id) for p in decidable)
    grouped: dict[GroupKey, list[int]] = defaultdict(list)
    stale_ids = []
    for proposal in decidable:
        state = states.get(RecordRef(proposal.record_type, proposal.record_id))
        if stale_fields(proposal=proposal, state=state):
            stale_ids.append(proposal.pk)
        else:
            grouped[GroupKey.of(proposal)].append(proposal.pk)
    groups = sorted(
        (ProposalGroup(key, ids) for key, ids in grouped.items()),
        key=lambda group: (-group.count, group.key.action, group.key.fields, group.key.prompt_version),
    )
    return BatchGroups(batch, groups, stale_ids, len(pending) - len(decidable), states)


@dataclass
class GroupSampleItem:
    proposal: Proposal
    title: str
    rows: list[FieldRow]


def group_sample(*, groups: BatchGroups, group: ProposalGroup, size: int = GROUP_SAMPLE) -> list[GroupSampleItem]:
    proposals = Proposal.objects.filter(pk__in=group.ids[:size]).select_related("workflow").order_by("created_at", "id")
    items = []
    for proposal in proposals:
        state = groups.states.get(RecordRef(proposal.record_type, proposal.record_id))
        items.append(
            GroupSampleItem(proposal, state.title if state else "", field_rows(proposal=proposal, state=state))
        )
    return items


def batch_for_review(*, user: Viewer, batch_id: int) -> Batch:
    batch = (
        Batch.objects.filter(pk=batch_id, workflow__in=workflows_reviewable_by(user=user))
        .select_related("workflow")
        .first()
    )
    if batch is None:
        raise NotFound(f"no batch {batch_id} that you may review")
    return batch
