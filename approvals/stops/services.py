"""The stop switch: engaged by on-call staff, the CLI or a pipeline (for its own batch); released only by a person."""

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals import reasons
from approvals.jobs import apply_sweep_queue
from approvals.models import Batch, ServiceAccount, StopScope, StopSwitch, Workflow
from approvals.notices import notice_record
from approvals.stops.rights import stop_rights_for_user
from approvals.stops.selectors import batch_left_to_hold
from audit.services import Actor, audit_record
from core.errors import InvalidTransition, ValidationFailed


def _target(scope: str, workflow: Workflow | None, batch: Batch | None) -> str:
    if scope == StopScope.GLOBAL:
        return "global"
    if scope == StopScope.WORKFLOW and workflow is not None:
        return f"workflow:{workflow.pk}"
    if scope == StopScope.BATCH and batch is not None:
        return f"batch:{batch.pk}"
    raise ValidationFailed([("scope", f"a {scope} stop needs its {scope}")])


def stop_engage(
    *,
    scope: str,
    reason: str,
    actor: Actor,
    user: User | None = None,
    workflow: Workflow | None = None,
    batch: Batch | None = None,
    breaker_prompt_version: str = "",
    details: dict | None = None,
) -> StopSwitch:
    """Engage a switch. Engaging one that is already engaged is refused, naming who engaged it.

    The circuit breaker (`stops.breaker`) names the prompt version that tripped it, and what it
    counted in `details`, which join the event's own. A stop engaged by a person or a pipeline is
    told as `stop_engaged`; the breaker's is not, since the breaker tells it itself as
    `circuit_tripped`, with the rate and the limit: one trip, one message."""
    reason = reasons.STOP.clean(reason)
    if scope == StopScope.BATCH and batch is not None:
        workflow = batch.workflow
    target = _target(scope, workflow, batch)
    try:
        with transaction.atomic():
            switch = StopSwitch.objects.create(
                scope=scope,
                target=target,
                workflow=workflow if scope != StopScope.GLOBAL else None,
                batch=batch if scope == StopScope.BATCH else None,
                reason=reason,
                engaged_by_label=actor.label,
                engaged_by_user=user,
                breaker_prompt_version=breaker_prompt_version,
            )
            audit_record(
                action="stop.engaged",
                actor=actor,
                workflow_slug=workflow.slug if workflow and scope != StopScope.GLOBAL else "",
                batch_id=batch.pk if batch and scope == StopScope.BATCH else None,
                prompt_version=breaker_prompt_version,
                reason=reason,
                details={"scope": scope, "target": target, "stop_id": switch.pk} | (details or {}),
            )
            if not breaker_prompt_version:
                notice_record(
                    event="stop_engaged",
                    workflow=switch.workflow,
                    subject=f"Stop engaged: {switch.label}",
                    body=f"{actor.label} engaged the stop switch for {switch.label}: {reason}\n"
                    "Nothing it covers is written until a person releases it.",
                    dedupe_key=f"stop-engaged:{switch.pk}",
                )
    except IntegrityError:
        existing = StopSwitch.objects.filter(target=target, released_at__isnull=True).first()
        who = f" by {existing.engaged_by_label} at {existing.engaged_at:%Y-%m-%d %H:%M:%S} UTC" if existing else ""
        raise InvalidTransition(f"the stop switch for {target} is already engaged{who}") from None
    return switch


def stop_engage_for_own_batch(*, account: ServiceAccount, batch: Batch, reason: str) -> StopSwitch:
    """A pipeline halts its own batch. It can never release it."""
    if batch.workflow_id != account.workflow_id:
        raise ValidationFailed([("batch", "belongs to another workflow")])
    return stop_engage(scope=StopScope.BATCH, reason=reason, actor=Actor.service_account(account), batch=batch)


def stop_release(*, switch: StopSwitch, user: User, note: str = "") -> StopSwitch:
    """Release an engaged switch. Only a person does this; it is audited."""
    with transaction.atomic():
        switch = _locked(switch)
        if switch.released_at is not None:
            raise InvalidTransition(f"the stop switch for {switch.label} was already released")
        return _release(switch, actor=Actor.user(user), user=user, note=note)


def stop_release_for_undo_job(*, switch: StopSwitch, job_id: int, actor: Actor, user: User | None) -> bool:
    """The undo job `job_id` has ended: release the switch it engaged to hold its batch, in the
    name of the person who started it, when nothing of the batch is left for the switch to hold
    (no proposal pending, approved or in conflict, no follow-up still held). Otherwise the switch
    stays engaged for a person to release, since releasing it would write part of a batch that was
    just undone; so does one whose job no person started (the command line without --user), since
    only a person releases a switch. In the caller's transaction. Whether it was released."""
    if user is None:
        return False
    switch = _locked(switch)
    if switch.released_at is not None or switch.batch_id is None:
        return False
    if not batch_left_to_hold(batch_id=switch.batch_id).nothing:
        return False
    _release(switch, actor=actor, user=user, note=f"undo job {job_id} ended", details={"undo_job": job_id})
    return True


def _locked(switch: StopSwitch) -> StopSwitch:
    return StopSwitch.objects.select_for_update(of=("self",)).select_related("workflow", "batch").get(pk=switch.pk)


def _release(
    switch: StopSwitch, *, actor: Actor, user: User | None, note: str, details: dict | None = None
) -> StopSwitch:
    """Release `switch`, locked and still engaged, and put that on the trail."""
    switch.released_at = timezone.now()
    switch.released_by = user
    switch.save(update_fields=["released_at", "released_by"])
    audit_record(
        action="stop.released",
        actor=actor,
        workflow_slug=switch.workflow.slug if switch.workflow else "",
        batch_id=switch.batch_id,
        reason=note,
        details={"scope": switch.scope, "target": switch.target, "stop_id": switch.pk} | (details or {}),
    )
    notice_record(
        event="stop_released",
        workflow=switch.workflow,
        subject=f"Stop released: {switch.label}",
        body=f"{actor.label} released the stop switch for {switch.label}"
        + (f": {note}" if note else ".")
        + "\nWhat it held is written now.",
        dedupe_key=f"stop-released:{switch.pk}",
    )
    # What the switch held stays approved; queue it again now that it may apply.
    apply_sweep_queue()
    return switch


def stop_engage_by_person(
    *, user: User, scope: str, reason: str, workflow: Workflow | None = None, batch: Batch | None = None
) -> StopSwitch:
    """A person engages a switch: ops managers anywhere, a workflow's approvers for that workflow and its batches."""
    stop_rights_for_user(user=user).check_stop(scope=scope, workflow=workflow, batch=batch)
    return stop_engage(scope=scope, reason=reason, actor=Actor.user(user), user=user, workflow=workflow, batch=batch)


def stop_release_by_person(*, switch: StopSwitch, user: User, note: str = "") -> StopSwitch:
    """A person releases a switch they may release (ops managers any; approvers their workflow's)."""
    stop_rights_for_user(user=user).check_release(switch)
    return stop_release(switch=switch, user=user, note=note)
