"""The trace of one change or proposal: what changed, why, who asked, who approved, and how to undo it.

Built from the proposal and the Change where they exist, and from the trail where they do not: the
trail outlives both, so a trace still reads when only its events are left. A trace is there only for
those who see its workflow, with any value of a field their workflows do not cover withheld.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from approvals.models import FollowUpStatus, Proposal, ProposalStatus
from audit.models import Artifact, AuditEvent, Tombstone
from audit.reading import NOT_RECORDED, EventValue, decider, submitted_values
from audit.selectors import audit_events_for
from audit.services import user_label
from core.errors import NotFound
from core.visibility import ViewerScope
from records.catalogue import RECORD_TYPES
from records.models import Change, ChangeAction

WAITING_STATUSES = {ProposalStatus.PENDING, ProposalStatus.APPROVED}
FOLLOW_UP_OUTCOMES = {
    "followup.sent": "sent",
    "followup.cancelled": "cancelled",
    "followup.failed": "failed",
    "followup.unknown": "outcome unknown (not sent again)",
}


@dataclass(frozen=True)
class FieldChange:
    """One field a change wrote, or a proposal would write. A proposal's `before` is what the record
    held when it arrived, unknown (`before_known` false) for one submitted before that was kept;
    `saw` is what the AI says it saw there, when that differs."""

    name: str
    label: str
    before: Any
    after: Any
    before_known: bool = True
    saw: Any = None
    saw_differs: bool = False


@dataclass(frozen=True)
class Approver:
    label: str
    at: datetime | None


@dataclass(frozen=True)
class FollowUp:
    kind: str
    params: dict[str, Any]
    status: str
    at: datetime | None = None


@dataclass
class Trace:
    change: Change | None
    proposal: Proposal | None
    events: list[AuditEvent]
    reverted_by: list[Change] = field(default_factory=list)
    approvals: list[Approver] = field(default_factory=list)
    artifacts: list[Artifact] = field(default_factory=list)
    tombstones: list[Tombstone] = field(default_factory=list)
    follow_ups: list[FollowUp] = field(default_factory=list)
    field_changes: list[FieldChange] = field(default_factory=list)
    workflow_slug: str = ""
    model_name: str = ""
    model_version: str = ""
    prompt_version: str = ""
    reason: str = ""
    requested_by: str = ""
    record_type: str = ""
    record_id: str = ""
    batch_id: int | None = None
    decision: str = ""
    decided_at: datetime | None = None
    decision_note: str = ""
    rejection: Approver | None = None
    forced: Approver | None = None

    @property
    def is_undo(self) -> bool:
        return self.change is not None and self.change.action == ChangeAction.REVERT


def _event(events: list[AuditEvent], *actions: str) -> AuditEvent | None:
    """The latest event with one of these actions."""
    for event in reversed(events):
        if event.action in actions:
            return event
    return None


def _field_changes(record_type: str, before: Any, after: Any, scope: ViewerScope) -> list[FieldChange]:
    before = before if isinstance(before, dict) else {}
    after = after if isinstance(after, dict) else {}
    before = before.get("values", before) if isinstance(before.get("values"), dict) else before
    after = after.get("values", after) if isinstance(after.get("values"), dict) else after
    spec = RECORD_TYPES.get(record_type)
    changes = []
    for name in dict.fromkeys([*after, *before]):
        if spec is None or not spec.has_field(name) or before.get(name) == after.get(name):
            continue
        shown_before = scope.shown(record_type, name, before.get(name))
        shown_after = scope.shown(record_type, name, after.get(name))
        changes.append(FieldChange(name, spec.field(name).label, shown_before, shown_after))
    return changes


def _proposed_changes(
    record_type: str, submitted: AuditEvent | None, proposal: Proposal | None, scope: ViewerScope
) -> list[FieldChange]:
    """What a proposal not (yet) applied would change, as its submission recorded it; for a proposal
    whose submission is not on the trail, only what it proposes and what the AI saw."""
    if submitted is not None:
        values = submitted_values(submitted)
    elif proposal is not None:
        base = proposal.base or {}
        values = [
            EventValue(name, NOT_RECORDED, value, base.get(name, NOT_RECORDED))
            for name, value in (proposal.changes or {}).items()
        ]
    else:
        return []
    spec = RECORD_TYPES.get(record_type)
    if spec is None:
        return []
    return [
        FieldChange(
            value.field,
            spec.field(value.field).label,
            scope.shown(record_type, value.field, value.before) if value.before_known else None,
            scope.shown(record_type, value.field, value.after),
            before_known=value.before_known,
            saw=scope.shown(record_type, value.field, value.saw) if value.saw_differs else None,
            saw_differs=value.saw_differs,
        )
        for value in values
        if spec.has_field(value.field)
    ]


def _decisions(trace: Trace, proposal: Proposal | None, events: list[AuditEvent]) -> None:
    """Who rejected it, and who forced it over a conflict, from the proposal or else from the trail."""
    rejected = _event(events, "proposal.rejected")
    if proposal is not None and proposal.status == ProposalStatus.REJECTED:
        label = user_label(proposal.decided_by) or (_decider_label(rejected) if rejected else "")
        trace.rejection = Approver(label or "a reviewer", proposal.decided_at)
    elif proposal is None and rejected is not None:
        trace.rejection = Approver(_decider_label(rejected), rejected.decided_at or rejected.occurred_at)
        trace.decision_note = rejected.reason
    if forced := _event(events, "proposal.forced"):
        trace.forced = Approver(_decider_label(forced), forced.decided_at or forced.occurred_at)


def _decider_label(event: AuditEvent) -> str:
    decided = decider(event)
    return decided.label if decided else event.actor_label


def _load_proposal(proposal_id: int | None) -> Proposal | None:
    if proposal_id is None:
        return None
    return (
        Proposal.objects.select_related("workflow", "batch", "decided_by", "requested_by_user", "service_account")
        .prefetch_related("approvals__user")
        .filter(pk=proposal_id)
        .first()
    )


def _build(*, change: Change | None, proposal: Proposal | None, proposal_id: int | None, scope: ViewerScope) -> Trace:
    change_ids: list[UUID] = []
    reverted_by: list[Change] = []
    if change is not None:
        change_ids.append(change.id)
        if change.reverts_id:
            change_ids.append(change.reverts_id)
        reverted_by = list(Change.objects.filter(reverts_id=change.id).order_by("applied_at"))
        change_ids.extend(c.id for c in reverted_by)
    events = audit_events_for(proposal_id=proposal_id, change_ids=change_ids, scope=scope)
    if change is None and proposal is None and not events:
        raise NotFound("nothing in the records or the trail has that id")
    trace = Trace(change=change, proposal=proposal, events=events, reverted_by=reverted_by)
    applied = _event(events, "change.applied")
    submitted = _event(events, "proposal.submitted")
    source = applied or submitted or (events[0] if events else None)
    if proposal is not None:
        trace.workflow_slug = proposal.workflow.slug
        trace.model_name, trace.model_version = proposal.model_name, proposal.model_version
        trace.prompt_version, trace.reason = proposal.prompt_version, proposal.reason
        trace.requested_by = proposal.requested_by
        trace.record_type, trace.record_id = proposal.record_type, proposal.record_id
        trace.batch_id = proposal.batch_id
        trace.decision, trace.decided_at, trace.decision_note = (
            proposal.status,
            proposal.decided_at,
            proposal.decision_note,
        )
        trace.approvals = [Approver(user_label(a.user), a.approved_at) for a in proposal.approvals.all()]
        if not trace.approvals and proposal.decided_by is not None and proposal.approved_at is not None:
            trace.approvals = [Approver(user_label(proposal.decided_by), proposal.approved_at)]
    elif source is not None:
        trace.workflow_slug = source.workflow_slug
        trace.model_name, trace.model_version = source.model_name, source.model_version
        trace.prompt_version, trace.reason = source.prompt_version, source.reason
        trace.requested_by = str(source.details.get("requested_by", "")) if isinstance(source.details, dict) else ""
        trace.record_type, trace.record_id = source.record_type, source.record_id
        trace.batch_id = source.batch_id
    if not trace.approvals:
        approved = _event(events, "proposal.approved")
        label = (approved.approver_label or approved.actor_label) if approved else ""
        label = label or (applied.approver_label if applied else "")
        if label:
            at = (
                (approved.decided_at or approved.occurred_at) if approved else (applied.decided_at if applied else None)
            )
            trace.approvals = [Approver(label, at)]
    _decisions(trace, proposal, events)
    if change is not None:
        trace.record_type, trace.record_id = change.record_type, change.record_id
        trace.workflow_slug = trace.workflow_slug or change.workflow_slug
        trace.prompt_version = trace.prompt_version or change.prompt_version
        trace.batch_id = trace.batch_id or change.batch_id
        trace.field_changes = _field_changes(change.record_type, change.before, change.after, scope)
    else:
        trace.field_changes = _proposed_changes(trace.record_type, submitted, proposal, scope)
    if not scope.sees_workflow(trace.workflow_slug):
        raise NotFound("nothing in the records or the trail has that id")
    if proposal_id is not None:
        trace.artifacts = list(Artifact.objects.filter(proposal_id=proposal_id).order_by("created_at"))
        trace.tombstones = list(Tombstone.objects.filter(proposal_id=proposal_id).order_by("id"))
    trace.follow_ups = _follow_ups(proposal, events)
    return trace


def _follow_ups(proposal: Proposal | None, events: list[AuditEvent]) -> list[FollowUp]:
    """The follow-ups the proposal asked for, each with what became of it, or why it still waits.

    An outcome event names its follow-up by `index` (its place in the proposal's list) or by `kind`.
    """
    if proposal is None:
        return []
    outcomes: dict[int | str, AuditEvent] = {}
    for event in events:
        if event.action in FOLLOW_UP_OUTCOMES and isinstance(event.details, dict):
            key = event.details.get("index", event.details.get("kind"))
            if isinstance(key, int | str):
                outcomes[key] = event
    outbox = {row.position: row for row in proposal.outbox.all()} if proposal.follow_ups else {}
    lines = []
    for index, request in enumerate(proposal.follow_ups or []):
        kind = str(request.get("kind", "")) if isinstance(request, dict) else str(request)
        params = request.get("params", {}) if isinstance(request, dict) else {}
        outcome = outcomes.get(index) or outcomes.get(kind)
        row = outbox.get(index)
        if outcome is not None:
            lines.append(FollowUp(kind, params, FOLLOW_UP_OUTCOMES[outcome.action], outcome.occurred_at))
        elif row is not None and row.status == FollowUpStatus.HELD and row.wait_reason:
            lines.append(FollowUp(kind, params, f"waiting, {row.wait_reason}"))
        elif row is not None and row.status == FollowUpStatus.SENDING:
            lines.append(FollowUp(kind, params, "sending"))
        elif proposal.status == ProposalStatus.APPLIED:
            lines.append(FollowUp(kind, params, "waiting to run"))
        elif proposal.status in WAITING_STATUSES:
            lines.append(FollowUp(kind, params, "runs once the change is applied"))
        else:
            lines.append(FollowUp(kind, params, "will not run"))
    return lines


def trace_for_change(*, change_id: UUID, scope: ViewerScope) -> Trace:
    """The trace of one applied change (or undo), as `scope` sees it. Raises NotFound, also when its
    workflow is out of sight. A fixed number of queries."""
    change = Change.objects.select_related("reverts").filter(pk=change_id).first()
    if change is None:
        raise NotFound(f"no change {change_id}")
    proposal_id = change.proposal_id
    return _build(change=change, proposal=_load_proposal(proposal_id), proposal_id=proposal_id, scope=scope)


def trace_for_proposal(*, proposal_id: int, scope: ViewerScope) -> Trace:
    """The trace of one proposal, applied or not, as `scope` sees it. Raises NotFound, also when its
    workflow is out of sight. A fixed number of queries."""
    proposal = _load_proposal(proposal_id)
    change = None
    if proposal is not None and proposal.change_id is not None:
        change = Change.objects.select_related("reverts").filter(pk=proposal.change_id).first()
    elif proposal is not None:
        change = (
            Change.objects.select_related("reverts")
            .filter(proposal_id=proposal_id)
            .exclude(action=ChangeAction.REVERT)
            .first()
        )
    return _build(change=change, proposal=proposal, proposal_id=proposal_id, scope=scope)
