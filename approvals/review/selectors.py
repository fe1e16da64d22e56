"""Reads for one proposal's review screen: its fields, diffs, merge view and batch progress."""

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count

from approvals.models import Action, Batch, FollowUp, Proposal, ProposalApproval, ProposalStatus
from approvals.overrides.selectors import NO_OVERRIDES, ProposalOverrides, proposal_overrides_for
from approvals.review.diff import DiffPiece, list_diff, word_diff
from approvals.review.followups import FollowUpPreview, followup_previews
from approvals.review.holds import Hold, proposal_hold
from approvals.review.queue import Claim, QueueFilters, claim_of, proposal_neighbours
from approvals.review.rights import DecideRight, Reviewable, decide_right, needs_two_approvals, reviewable_workflows
from approvals.workflows.rights import Viewer
from approvals.workflows.selectors import write_policy
from records.catalogue import RECORD_TYPES, FieldSpec, Kind
from records.models import Change
from records.store import RecordRef, RecordState, fetch_refs, referring_refs, store_side_effects

RECENT_CHANGES = 5


OTHER_PENDING = 5


_MISSING = object()
# The statuses whose write is still to come, or to be chosen: what the record holds now matters to them.
_TO_WRITE = (ProposalStatus.PENDING, ProposalStatus.APPROVED, ProposalStatus.CONFLICT)


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
    now: Any = None  # once written: what the record holds now
    changed_since: bool = False  # once written: the record no longer holds what was written
    side_effect: str = ""  # what the system of record itself does when this field is written

    @property
    def changed(self) -> bool:
        return self.current != self.proposed


def _spec(record_type: str, name: str) -> FieldSpec | None:
    try:
        return RECORD_TYPES[record_type].field(name)
    except KeyError:
        return None


def _in_catalogue_order(record_type: str, names: Any) -> list[str]:
    known = RECORD_TYPES.get(record_type)
    order = {name: index for index, name in enumerate(known.field_names)} if known else {}
    return sorted(names, key=lambda n: (order.get(n, len(order)), n))


def _with_diff(row: FieldRow, spec: FieldSpec | None) -> FieldRow:
    """`row` with the word (or tag) difference from its current to its proposed value, where one reads."""
    current, proposed = row.current, row.proposed
    if spec is not None and spec.kind in (Kind.TEXT, Kind.EMAIL) and isinstance(proposed, str):
        row.diff = word_diff(current if isinstance(current, str) else "", proposed)
    elif spec is not None and spec.kind == Kind.TAGS and isinstance(proposed, list):
        row.diff = list_diff(current if isinstance(current, list) else [], proposed)
    return row


def field_rows(*, proposal: Proposal, state: RecordState | None) -> list[FieldRow]:
    """For an update: each changed field with its current, proposed and (if given) base value."""
    rows = []
    side_effects = store_side_effects(record_type=proposal.record_type) if proposal.record_type in RECORD_TYPES else {}
    for name in _in_catalogue_order(proposal.record_type, proposal.changes or {}):
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
            side_effect=side_effects[name].sentence if name in side_effects else "",
        )
        rows.append(_with_diff(row, spec))
    return rows


@dataclass
class Written:
    """What a proposal's write did: its Change, the undo of it if there is one, and the rows a merge moved."""

    change: Change
    undone_by: Change | None
    moved_orders: list[str]
    moved_tickets: list[str]
    follow_ups: list[FollowUp]  # what it asked to send, as the outbox holds it now


def proposal_written(*, proposal: Proposal) -> Written | None:
    """The write `proposal` made, or None while it has made none. Three queries when it has."""
    if proposal.change_id is None:
        return None
    change = Change.objects.filter(pk=proposal.change_id).first()
    if change is None:
        return None
    undone_by = Change.objects.filter(reverts=change).order_by("-applied_at").first()
    moved = (change.merge_payload or {}).get("moved", [])
    moved_of = {
        kind: sorted(row["record_id"] for row in moved if row["record_type"] == kind) for kind in ("order", "ticket")
    }
    follow_ups = list(FollowUp.objects.filter(change_id=change.pk).order_by("position"))
    return Written(change, undone_by, moved_of["order"], moved_of["ticket"], follow_ups)


def written_rows(*, proposal: Proposal, written: Written, state: RecordState | None) -> list[FieldRow]:
    """For an update that was written: each field with the value it replaced, the value written, and what
    the record holds now; while it is in force, a field changed since says so."""
    rows = []
    change = written.change
    in_force = proposal.status == ProposalStatus.APPLIED
    for name in _in_catalogue_order(proposal.record_type, change.after):
        spec = _spec(proposal.record_type, name)
        now = state.values.get(name) if state is not None else None
        row = FieldRow(
            name=name,
            label=spec.label if spec else name.replace("_", " "),
            kind=str(spec.kind) if spec else "text",
            current=change.before.get(name),
            proposed=change.after[name],
            now=now,
            changed_since=in_force and state is not None and now != change.after[name],
        )
        rows.append(_with_diff(row, spec))
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
    ref = RecordRef(proposal.record_type, proposal.record_id)
    states = fetch_refs([ref, RecordRef(proposal.record_type, proposal.merge_into)])
    duplicate = states.get(ref)
    survivor = states.get(RecordRef(proposal.record_type, proposal.merge_into))
    record_type = RECORD_TYPES[proposal.record_type]
    chosen = proposal.changes or {}
    rows = []
    for spec in record_type.fields:
        duplicate_value = duplicate.values.get(spec.name) if duplicate else None
        survivor_value = survivor.values.get(spec.name) if survivor else None
        surviving = chosen.get(spec.name, survivor_value)
        rows.append(MergeRow(spec.label, duplicate_value, survivor_value, surviving))
    moving = referring_refs(ref)

    def moving_of(record_type: str) -> list[str]:
        return sorted(row.record_id for row, _ in moving if row.record_type == record_type)

    return MergeView(duplicate, survivor, rows, moving_of("order"), moving_of("ticket"))


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

    def _count(self, *statuses: str) -> int:
        return sum(self.by_status.get(status, 0) for status in statuses)

    @property
    def approved(self) -> int:
        """Approved by a person (or by policy), whatever came of it since: still to write, written,
        written and undone, or stopped at the write by a conflict or a failure."""
        return self._count(*APPROVED_SINCE)

    @property
    def written(self) -> int:
        """Written to the record by the worker, undone since or not."""
        return self._count(ProposalStatus.APPLIED, ProposalStatus.REVERTED)

    @property
    def to_write(self) -> int:
        """Approved and not yet written: what the worker still has to do."""
        return self._count(ProposalStatus.APPROVED)

    @property
    def percent_written(self) -> int:
        return round(100 * self.written / self.approved) if self.approved else 0


APPROVED_SINCE = (
    ProposalStatus.APPROVED,
    ProposalStatus.APPLIED,
    ProposalStatus.REVERTED,
    ProposalStatus.CONFLICT,
    ProposalStatus.FAILED,
)


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
    right: DecideRight
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
    follow_ups: list[FollowUpPreview] = field(default_factory=list)  # what goes out once it is applied
    written: Written | None = None  # what its write did, once it made one
    hold: Hold | None = None  # what keeps it from being written, once approved

    @property
    def is_pending(self) -> bool:
        return self.proposal.status == ProposalStatus.PENDING

    @property
    def to_write(self) -> bool:
        """Its write is still to come (or to be chosen, in conflict): the record's state now is its business."""
        return self.proposal.status in _TO_WRITE

    @property
    def may_review(self) -> bool:
        return self.right.reviewer

    @property
    def requester_reason(self) -> str:
        return self.right.requester

    @property
    def may_decide(self) -> bool:
        return self.right.may

    @property
    def can_decide(self) -> bool:
        return self.is_pending and self.right.may

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
        state = fetch_refs([ref]).get(ref)
    written = proposal_written(proposal=proposal)
    rows: list[FieldRow] = []
    if proposal.action == Action.UPDATE:
        rows = (
            written_rows(proposal=proposal, written=written, state=state)
            if written
            else field_rows(proposal=proposal, state=state)
        )
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
    if proposal.status not in _TO_WRITE:
        # Decided for good: what the AI saw is history, and the record moving on since (its own write
        # first of all) is no alarm.
        for row in rows + record_rows:
            row.stale = False
    reviewable = reviewable or reviewable_workflows(user=user)
    may_review = reviewable.covers(proposal)
    overrides = (
        proposal_overrides_for(user=user, proposal=proposal)
        if proposal.status == ProposalStatus.CONFLICT or not may_review
        else NO_OVERRIDES
    )
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
        right=decide_right(user=user, proposal=proposal, reviewable=reviewable, overrides=overrides),
        viewer_approved=any(approval.user_id == user.pk for approval in approvals),
        claim=claim_of(proposal=proposal, user=user),
        batch=batch_progress(batch=proposal.batch) if proposal.batch is not None else None,
        recent_changes=recent_changes,
        other_pending=other_pending,
        previous_id=previous_id,
        next_id=next_id,
        confidence_percent=round(proposal.confidence * 100),
        reviewable=reviewable,
        overrides=overrides,
        flagged_fields=flagged_field_labels(proposal=proposal),
        record_version=state.version if state is not None else None,
        policy_refusal=(
            write_policy(workflow=proposal.workflow).refusal(proposal=proposal, reviewed=True)
            if proposal.status == ProposalStatus.PENDING
            else ""
        ),
        follow_ups=followup_previews(proposal=proposal),
        written=written,
        hold=proposal_hold(user=user, proposal=proposal),
    )
