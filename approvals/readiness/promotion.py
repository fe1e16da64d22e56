"""Moving a workflow to a later stage: from its readiness page when every check passes, and the gate
every change of stage in the workflow file passes (refused, or forced with a reason).

`forced_stage` records a stage forced against readiness. Any later change of stage clears it (a
promotion passes its checks; a move back or a pause leaves the forced stage behind), and while the
workflow stays in the forced stage it is marked "released against readiness" only as long as that
stage's checks fail.
"""

import copy
from typing import Any

from django.db import transaction
from django.utils import timezone

from approvals.models import Workflow
from approvals.readiness.checks import Check, checks_needed, is_forward, next_stage, readiness_by_workflow
from approvals.readiness.rights import may_force_stage, may_promote
from approvals.reasons import FORCE_STAGE
from approvals.workflows.stage_gate import GateVerdict, StageForce, StageMove
from audit.services import Actor, EventData, audit_record_many
from core.errors import InvalidTransition, NotAllowed


def _failing(checks: list[Check]) -> list[dict[str, Any]]:
    return [{"number": check.number, "title": check.title, "detail": check.detail} for check in checks]


def _promoted(*, slug: str, before: str, after: str, actor: Actor, source: str) -> EventData:
    return EventData(
        action="workflow.promoted",
        actor=actor,
        workflow_slug=slug,
        old_value={"stage": before},
        new_value={"stage": after},
        details={"checks_passed": checks_needed(after), "source": source},
    )


def workflow_stage_promote(*, workflow: Workflow, stage: str, user: Any) -> Workflow:
    """Move `workflow` on to `stage`, its next stage, from its readiness page. Only its owner may, and
    only while every check that stage needs passes; the refusal names each failing check."""
    with transaction.atomic():
        workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
        if not may_promote(user=user, workflow=workflow):
            raise NotAllowed(f"only the owner of {workflow.slug} moves it to a later stage")
        following = next_stage(workflow.stage)
        if stage != following:
            where = f"only to {following}" if following else "nowhere: the workflow file says where it goes next"
            raise InvalidTransition(
                f"{workflow.slug} is in {workflow.stage}: from this page it moves {where}; "
                "reload the page to see where it stands"
            )
        failing = readiness_by_workflow([workflow], targets={workflow.pk: stage})[workflow.pk].failing()
        if failing:
            named = "; ".join(check.named for check in failing)
            raise InvalidTransition(
                f"{workflow.slug} cannot move to {stage} while these checks fail: {named}",
                extra={"failing": _failing(failing)},
            )
        before = workflow.stage
        workflow.stage, workflow.forced_stage = stage, None
        workflow.stage_changed_at = workflow.updated_at = timezone.now()
        workflow.save(update_fields=["stage", "forced_stage", "stage_changed_at", "updated_at"])
        audit_record_many(
            [_promoted(slug=workflow.slug, before=before, after=stage, actor=Actor.user(user), source="page")]
        )
    return workflow


def _as_before(move: StageMove) -> Workflow:
    """The workflow as the file writes it, still in the stage it leaves: its checks are judged from there."""
    judged = copy.copy(move.workflow)
    judged.stage, judged.stage_changed_at = move.stage_before, move.entered_before
    return judged


def _forced(move: StageMove, failing: list[Check], force: StageForce) -> tuple[list[tuple[str, str]], EventData]:
    """What refuses the force itself (who, why), and the event that records the forced move."""
    workflow, where = move.workflow, f"workflow '{move.workflow.slug}': stage"
    refusals: list[tuple[str, str]] = []
    if not may_force_stage(user=force.user, workflow=workflow):
        refusals.append((where, f"{force.user.get_username()} may not force it: only its owner or an ops manager"))
    if problem := FORCE_STAGE.problem(force.reason):
        refusals.append(problem)
    workflow.forced_stage = {
        "stage": workflow.stage,
        "reason": force.reason.strip(),
        "by": force.user.get_username(),
        "at": timezone.now().isoformat(),
    }
    event = EventData(
        action="workflow.stage_forced",
        actor=Actor.user(force.user),
        workflow_slug=workflow.slug,
        old_value={"stage": move.stage_before},
        new_value={"stage": workflow.stage},
        reason=force.reason.strip(),
        details={"failing": _failing(failing)},
    )
    return refusals, event


def stage_gate(moves: list[StageMove], force: StageForce | None, actor: Actor) -> GateVerdict:
    """The gate `load_workflows` passes each change of stage through (registered with
    `approvals.workflows.stage_gate`). A forward move needs every check of its stage, judged on the
    workflow as the file writes it; with `force` it goes ahead anyway and is recorded as forced."""
    verdict = GateVerdict()
    forward = [move for move in moves if is_forward(stage_before=move.stage_before, stage_after=move.workflow.stage)]
    targets = {move.workflow.pk: move.workflow.stage for move in forward}
    readiness = readiness_by_workflow([_as_before(move) for move in forward], targets=targets)
    for move in moves:
        workflow, was_forced = move.workflow, move.workflow.forced_stage
        workflow.forced_stage = None
        failing = readiness[workflow.pk].failing() if workflow.pk in readiness else []
        if failing and force is None:
            verdict.refusals += [
                (
                    f"workflow '{workflow.slug}': stage",
                    f"moving from {move.stage_before} to {workflow.stage} needs check {check.number}, "
                    f"{check.title}: {check.detail}",
                )
                for check in failing
            ]
        elif failing and force is not None:
            refusals, event = _forced(move, failing, force)
            verdict.refusals += refusals
            verdict.events.append(event)
        elif workflow.pk in readiness:
            before, after = move.stage_before, workflow.stage
            verdict.events.append(_promoted(slug=workflow.slug, before=before, after=after, actor=actor, source="file"))
        if workflow.forced_stage != was_forced:
            workflow.save(update_fields=["forced_stage"])
    verdict.refusals = list(dict.fromkeys(verdict.refusals))  # a short reason is said once, not per workflow
    return verdict
