"""What applying decides about one proposal, under its lock: how the record differs from what the
proposal saw, the outcomes that write nothing (a conflict, a refusal, a stop) and the write itself
on a store in the database."""

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from django.utils import timezone

from approvals.applying.callbacks import callback_queue_for
from approvals.applying.results import ApplyResult, Outcome
from approvals.models import (
    Action,
    Proposal,
    ProposalStatus,
    StopScope,
    StopSwitch,
)
from approvals.notices import notice_conflict_record
from approvals.stops.breaker import breaker_check
from approvals.stops.selectors import describe_stop
from audit.services import Actor, audit_record, user_label
from core.roundtrip import Statement
from records.catalogue import RECORD_TYPES, clean_held_value
from records.models import Change
from records.services.changes import ChangeOrigin, change_archive, change_delete, change_merge, change_update
from records.store import (
    RecordNotFound,
    RecordRef,
    RecordState,
    get_store,
)


def record_conflicts(proposal: Proposal, state: RecordState) -> list[str]:
    """How the record differs from what the proposal saw (`base`, and `version` when given)."""
    hidden = "deleted" if state.deleted else "archived" if state.archived else ""
    if hidden and not (proposal.action == Action.DELETE and not state.deleted):
        return [f"{state.ref} is {hidden}"]
    problems = []
    if proposal.base_version is not None and proposal.base_version != state.version:
        problems.append(f"version is now {state.version}; the proposal saw {proposal.base_version}")
    record_type = RECORD_TYPES[proposal.record_type]
    for name, seen in (proposal.base or {}).items():
        if name == "version":
            if seen != state.version:
                problems.append(f"version is now {state.version}; the proposal saw {seen}")
            continue
        if not record_type.has_field(name):
            problems.append(f"{name}: {proposal.record_type} has no such field")
            continue
        try:
            seen_value = clean_held_value(record_type.field(name), seen)
        except ValueError:
            seen_value = seen
        if seen_value != state.values.get(name):
            problems.append(f"{name} is now {state.values.get(name)!r}; the proposal saw {seen!r}")
    if proposal.action == Action.MERGE:
        survivor = RecordRef(proposal.record_type, proposal.merge_into)
        try:
            survivor_state = get_store(survivor.record_type).fetch(survivor, [])
        except RecordNotFound:
            problems.append(f"the survivor {survivor} does not exist")
        else:
            if survivor_state.archived or survivor_state.deleted:
                problems.append(f"the survivor {survivor} is {'deleted' if survivor_state.deleted else 'archived'}")
    return problems


def not_written(proposal: Proposal, *, status: str, reason: str, worker: str, details: dict[str, Any]) -> ApplyResult:
    """Nothing was written: the proposal moves to `status` with why, on the trail and to its pipeline.
    A conflict moves its prompt version's conflict rate, which the circuit breaker judges."""
    proposal.status = status
    proposal.last_error = reason
    proposal.updated_at = timezone.now()
    proposal.save(update_fields=["status", "last_error", "updated_at"])
    audit_record(
        action=f"proposal.{status}",
        actor=Actor.worker(worker),
        reason=reason,
        details=details,
        **proposal.trail_fields(),
    )
    callback_queue_for(proposal=proposal, event=status)
    if status == ProposalStatus.CONFLICT:
        notice_conflict_record(proposal=proposal, reason=reason)
        breaker_check(workflow=proposal.workflow, prompt_version=proposal.prompt_version)
    return ApplyResult(proposal.pk, Outcome(status), reason)


def mark_conflict(proposal: Proposal, state: RecordState, problems: list[str], worker: str) -> ApplyResult:
    fields = sorted(set(proposal.base or {}) | set(proposal.changes or {}))
    details = {
        "base": proposal.base,
        "current": {name: state.values.get(name) for name in fields if name in state.values},
        "proposed": proposal.changes if proposal.action == Action.UPDATE else {"merge_into": proposal.merge_into},
        "version": state.version,
    }
    return not_written(
        proposal, status=ProposalStatus.CONFLICT, reason="; ".join(problems), worker=worker, details=details
    )


def refused_by_policy(proposal: Proposal, reason: str, worker: str) -> ApplyResult:
    """The workflow's file changed since the proposal was approved and no longer lets it be written:
    nothing is written, and the proposal fails with why, for the pipeline to propose it again."""
    return not_written(
        proposal, status=ProposalStatus.FAILED, reason=reason, worker=worker, details={"refused_by": "policy"}
    )


def change_origin(proposal: Proposal, worker: str) -> ChangeOrigin:
    return ChangeOrigin(
        applied_by=worker,
        proposal_id=proposal.pk,
        batch_id=proposal.batch_id,
        workflow_slug=proposal.workflow.slug,
        prompt_version=proposal.prompt_version,
        model_name=proposal.model_name,
        model_version=proposal.model_version,
        # Named as the decision named them, so the trail finds both by the same approver.
        approver_label=user_label(proposal.decided_by),
        decided_at=proposal.decided_at,
        reason=proposal.reason,
    )


def write_approved(
    proposal: Proposal,
    state: RecordState,
    worker: str,
    change_id: UUID | None = None,
    along: Sequence[Statement] = (),
) -> Change:
    origin = change_origin(proposal, worker)
    ref = state.ref
    if proposal.action == Action.UPDATE:
        return change_update(
            ref=ref,
            values=proposal.changes,
            origin=origin,
            expected_version=state.version,
            current=state,
            change_id=change_id,
            along=along,
        )
    if proposal.action == Action.ARCHIVE:
        return change_archive(ref=ref, origin=origin, expected_version=state.version, current=state)
    if proposal.action == Action.DELETE:
        return change_delete(ref=ref, origin=origin, expected_version=state.version, current=state)
    if proposal.action == Action.MERGE:
        survivor = RecordRef(proposal.record_type, proposal.merge_into)
        return change_merge(
            duplicate=ref, survivor=survivor, origin=origin, expected_version=state.version, current=state
        )
    raise ValueError(f"unknown action '{proposal.action}'")


def stopped(proposal_id: int, switch: StopSwitch) -> ApplyResult:
    return ApplyResult(
        proposal_id,
        Outcome.STOPPED,
        describe_stop(switch),
        stop_scope=switch.scope,
        liftable=switch.scope != StopScope.GLOBAL,
    )
