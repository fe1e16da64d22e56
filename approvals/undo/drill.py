"""The rollback drill: apply a batch to throwaway records, undo the whole batch, and prove it worked.

It runs in the calling process (no worker): proposals are submitted and approved through the models,
applied through the apply service, and undone through the same bulk undo job a person starts from
the browser. Then every record must be byte for byte what it was, every queued follow-up
cancelled, and the trail must read: each proposal submitted, approved, applied, undone, in order,
the state at any moment rebuilt from the Changes, and the hash chain intact.
"""

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from approvals.applying.services import Outcome, proposals_apply
from approvals.models import (
    Access,
    Action,
    Batch,
    FieldPolicy,
    FollowUp,
    FollowUpStatus,
    Lane,
    Proposal,
    ProposalStatus,
    RollbackDrill,
    Stage,
    StopScope,
    StopSwitch,
    UndoJob,
    UndoScope,
    Workflow,
)
from approvals.models.undo import DRILL_WORKFLOW
from approvals.stops.services import stop_engage, stop_release
from approvals.undo.drill_target import DrillTarget, drill_records, drill_target_of
from approvals.undo.selectors import UndoSelection, undo_plan
from approvals.undo.services import undo_job_run, undo_job_start
from approvals.workflows.rollout import DRILL_PROMPT_VERSION_PREFIX, DRILL_WORKER
from audit.models import AuditEvent
from audit.services import Actor, EventData, audit_record, audit_record_many, audit_verify_chain, user_label
from records.models import Change, ChangeAction
from records.selectors import changes_undone, record_state_at
from records.store import RecordRef, get_store, snapshot_refs

# The customer fields the drill's updates change; a person approves each, so `suggest` is enough.
DRILL_FIELDS = ("shipping_address", "priority")
DRILL_USER = "rollback-drill"
EMAIL = {"kind": "email_customer", "params": {"template": "address-confirmed"}}
TRAIL = ("proposal.submitted", "proposal.approved", "change.applied", "change.reverted", "proposal.reverted")


@dataclass
class DrillRun:
    drill: RollbackDrill
    say: Callable[[str], None]
    problems: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    batch: Batch | None = None
    job: UndoJob | None = None

    def phase(self, name: str, started: float) -> None:
        self.timings[name] = round(time.perf_counter() - started, 3)
        self.say(f"  {name:<10} {self.timings[name]:7.3f} s")

    def check(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(problem)


def _drill_user() -> User:
    user, created = get_user_model().objects.get_or_create(
        username=DRILL_USER, defaults={"is_active": False, "first_name": "Rollback", "last_name": "drill"}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def _drill_workflow(owner: User) -> Workflow:
    workflow, _ = Workflow.objects.get_or_create(
        slug=DRILL_WORKFLOW,
        defaults={
            "name": "Rollback drill (throwaway records)",
            "owner": owner,
            "lane": Lane.WRITE,
            "stage": Stage.LIVE,
            "actions": [Action.UPDATE, Action.ARCHIVE, Action.DELETE, Action.MERGE],
            "follow_up_templates": {"email_customer": ["address-confirmed"]},  # what EMAIL sends
        },
    )
    for name in DRILL_FIELDS:
        FieldPolicy.objects.get_or_create(
            workflow=workflow, record_type="customer", field=name, defaults={"access": Access.SUGGEST}
        )
    return workflow


def _exact(refs: list[RecordRef]) -> dict[RecordRef, bytes]:
    """Each record's values and visibility as canonical JSON bytes (the version moves on by design)."""
    found = snapshot_refs(refs)
    return {
        ref: json.dumps(
            {
                "values": found[ref]["values"],
                "archived_at": found[ref]["archived_at"],
                "deleted_at": found[ref]["deleted_at"],
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        for ref in refs
        if ref in found
    }


def _records(run: DrillRun, count: int) -> tuple[list[RecordRef], list[dict[str, Any]]]:
    """Throwaway customers, and for some of them an order and a ticket (the rows a merge moves).

    Returns every record and the proposal each customer gets: mostly address changes with a
    follow-up email, some archives and deletes, and merges of a duplicate into a neighbour.
    """
    tag = f"DRILL{run.drill.pk}{uuid.uuid4().hex[:6].upper()}"
    customers: list[tuple[str, dict[str, Any]]] = [
        (
            f"CUS-{tag}-{n:04d}",
            {
                "full_name": f"Drill customer {n}",
                "email": f"drill-{run.drill.pk}-{n}@example.invalid",
                "shipping_address": f"{n} Old Mill Lane",
                "priority": "normal",
                "tags": ["drill"],
            },
        )
        for n in range(count)
    ]
    plans: list[dict[str, Any]] = []
    merged_into: set[int] = set()
    for n, (record_id, _) in enumerate(customers):
        kind = ("update", "update", "merge", "update", "archive", "update", "delete")[n % 7]
        if kind == "merge" and (n == 0 or n - 1 in merged_into or plans[n - 1]["action"] != "update"):
            kind = "update"
        if kind == "merge":
            merged_into.add(n)
            plans.append({"action": "merge", "record_id": record_id, "merge_into": customers[n - 1][0]})
        elif kind == "update":
            plans.append(
                {
                    "action": "update",
                    "record_id": record_id,
                    "changes": {"shipping_address": f"{n} Harbour Road", "priority": "high"},
                    "base": {"shipping_address": f"{n} Old Mill Lane", "priority": "normal"},
                    "follow_ups": [EMAIL],
                }
            )
        else:
            plans.append({"action": kind, "record_id": record_id})
    duplicates = [customers[n][0] for n in sorted(merged_into)]
    created: dict[str, list[tuple[str, dict[str, Any]]]] = {
        "customer": customers,
        "order": [
            (f"ORD-{tag}-{n:04d}", {"customer": c, "order_number": f"#D{n}", "amount": "19.90"})
            for n, c in enumerate(duplicates)
        ],
        "ticket": [(f"T-{tag}-{n:04d}", {"customer": c, "subject": "Drill ticket"}) for n, c in enumerate(duplicates)],
    }
    refs: list[RecordRef] = []
    for record_type, records in created.items():
        get_store(record_type).create_many(record_type, records)
        refs += [RecordRef(record_type, record_id) for record_id, _ in records]
    return refs, plans


def proposals_submit_approved(
    *,
    batch: Batch,
    plans: list[dict[str, Any]],
    approver: User,
    actor: Actor,
    prompt_version: str,
    reason: str,
    requested_by: User | None = None,
) -> list[Proposal]:
    """Proposals of a batch, submitted and approved at once, each step on the trail (for the drill and the demo)."""
    workflow = batch.workflow
    now = timezone.now()
    proposals = Proposal.objects.bulk_create(
        Proposal(
            workflow=workflow,
            batch=batch,
            record_type=plan.get("record_type", "customer"),
            record_id=plan["record_id"],
            action=plan["action"],
            changes=plan.get("changes", {}),
            base=plan.get("base", {}),
            merge_into=plan.get("merge_into", ""),
            follow_ups=plan.get("follow_ups", []),
            reason=reason,
            confidence=0.9,
            model_name="gpt-x",
            model_version="2026-10-01",
            prompt_version=prompt_version,
            run_id=batch.run_id,
            requested_by=requested_by.get_username() if requested_by else batch.requested_by,
            requested_by_user=requested_by,
        )
        for plan in plans
    )

    def events(action: str, **extra: Any) -> list[EventData]:
        return [
            EventData(
                action=action,
                actor=actor,
                record_type=p.record_type,
                record_id=p.record_id,
                proposal_id=p.pk,
                batch_id=batch.pk,
                workflow_slug=workflow.slug,
                model_name=p.model_name,
                model_version=p.model_version,
                prompt_version=p.prompt_version,
                reason=p.reason,
                **extra,
            )
            for p in proposals
        ]

    audit_record_many(events("proposal.submitted"))
    Proposal.objects.filter(pk__in=[p.pk for p in proposals]).update(
        status=ProposalStatus.APPROVED, approved_at=now, decided_at=now, decided_by=approver, updated_at=now
    )
    audit_record_many(events("proposal.approved", approver_label=user_label(approver), decided_at=now))
    return proposals


def _verify_trail(
    run: DrillRun, batch: Batch, refs: list[RecordRef], moments: dict[str, datetime], states: dict
) -> None:
    checked, broken = audit_verify_chain()
    run.check(
        broken is None, f"the audit chain is broken at event {broken.event_id}: {broken.problem}" if broken else ""
    )
    proposals = list(Proposal.objects.filter(batch=batch).order_by("pk"))
    trail: dict[int | None, list[str]] = {}
    for proposal_id, action in (
        AuditEvent.objects.filter(proposal_id__in=[p.pk for p in proposals], action__in=TRAIL)
        .order_by("id")
        .values_list("proposal_id", "action")
    ):
        if not trail.get(proposal_id) or trail[proposal_id][-1] != action:
            trail.setdefault(proposal_id, []).append(action)
    for proposal in proposals:
        run.check(
            trail.get(proposal.pk) == list(TRAIL),
            f"proposal {proposal.pk}: the trail reads {trail.get(proposal.pk)}, not {', '.join(TRAIL)}",
        )
    applied = list(Change.objects.filter(batch_id=batch.pk).exclude(action=ChangeAction.REVERT))
    undone = changes_undone(change_ids=[c.id for c in applied])
    run.check(len(undone) == len(applied), f"{len(applied) - len(undone)} change(s) of the batch are not undone")
    for ref in refs:
        for moment, expected in (("before apply", states["before"]), ("after apply", states["applied"])):
            at = record_state_at(ref=ref, at=moments[moment])
            rebuilt = {"values": at.values, "archived": at.archived, "deleted": at.deleted}
            run.check(
                rebuilt == expected[ref], f"{ref}: the state {moment} rebuilt from its Changes is not what it was"
            )
    run.say(f"  trail      {checked} events chained, {len(proposals)} proposals traced, {len(refs)} records rebuilt")


def _flags(refs: list[RecordRef]) -> dict[RecordRef, dict[str, Any]]:
    found = snapshot_refs(refs)
    return {
        ref: {
            "values": found[ref]["values"],
            "archived": bool(found[ref]["archived_at"]),
            "deleted": bool(found[ref]["deleted_at"]),
        }
        for ref in refs
    }


def _drill_written(
    run: DrillRun, workflow: Workflow, refs: list[RecordRef], plans: list, user: User
) -> tuple[dict[RecordRef, bytes], dict[str, Any], Batch, list[int], dict[str, Any], int]:
    """Submit the drill's plans as one approved batch of `workflow` and apply it, timing each phase.
    Returns the records as they were, their states, the batch, its proposals, the moments around the
    write and how many records it changed."""
    before = _exact(refs)
    states: dict[str, Any] = {"before": _flags(refs)}
    started = time.perf_counter()
    batch = _drill_batch(run, workflow, plans, user)
    run.phase("submit", started)
    ids, moments = _drill_apply(run, batch)
    states["applied"] = _flags(refs)
    changed = sum(1 for ref in refs if _exact([ref])[ref] != before[ref])
    run.check(changed > 0, "applying the batch changed no record")
    return before, states, batch, ids, moments, changed


def _drill_seed_phases(run: DrillRun, records: int) -> None:
    """The drill on its own workflow: updates with follow-ups, archives, deletes and merges of
    throwaway customers, applied, undone as a batch by a bulk undo job, and verified."""
    started = time.perf_counter()
    with transaction.atomic():
        user = _drill_user()
        workflow = _drill_workflow(user)
        refs, plans = _records(run, records)
    run.phase("setup", started)
    before, states, batch, ids, moments, changed = _drill_written(run, workflow, refs, plans, user)
    held = FollowUp.objects.filter(proposal__batch=batch, status=FollowUpStatus.HELD).count()
    run.say(f"  applied    {len(ids)} proposals: {changed} of {len(refs)} records changed, {held} follow-ups queued")

    started = time.perf_counter()
    selection = UndoSelection(scope=UndoScope.BATCH, batch=batch)
    plan = undo_plan(selection=selection)
    run.phase("dry run", started)
    run.check(plan.total == len(ids) and not plan.conflicts, f"the dry run found {len(plan.conflicts)} conflicts")
    run.check(len(plan.followups.to_cancel) == held, "the dry run does not list every queued follow-up")

    started = time.perf_counter()
    _drill_undo(run, batch, len(ids))
    run.phase("undo", started)

    started = time.perf_counter()
    different = _drill_check(run, batch, refs, before, moments, states)
    left = FollowUp.objects.filter(proposal__batch=batch).exclude(status=FollowUpStatus.CANCELLED).count()
    run.check(left == 0, f"{left} follow-up(s) not cancelled")
    run.phase("verify", started)
    same = len(refs) - len(different)
    run.say(
        f"  records    {same} of {len(refs)} byte for byte as before; follow-ups cancelled: {held - left} of {held}"
    )


def _drill_batch(run: DrillRun, workflow: Workflow, plans: list[dict[str, Any]], user: User) -> Batch:
    """The drill's batch, its proposals submitted and approved by the drill user: visibly a drill's."""
    drill = run.drill
    with transaction.atomic():
        batch = run.batch = Batch.objects.create(
            workflow=workflow,
            name=f"rollback drill {drill.pk}",
            run_id=f"drill-{uuid.uuid4().hex[:12]}",
            expected_size=len(plans),
            requested_by=DRILL_USER,
        )
        proposals_submit_approved(
            batch=batch,
            plans=plans,
            approver=user,
            actor=Actor.system("rollback_drill"),
            prompt_version=f"{DRILL_PROMPT_VERSION_PREFIX}{drill.pk}",
            reason="rollback drill",
        )
    return batch


def _drill_apply(run: DrillRun, batch: Batch) -> tuple[list[int], dict[str, datetime]]:
    """Apply the batch through the worker's path, timed as "apply"."""
    moments = {"before apply": timezone.now()}
    started = time.perf_counter()
    ids = list(Proposal.objects.filter(batch=batch).order_by("pk").values_list("pk", flat=True))
    results = proposals_apply(proposal_ids=ids, worker=DRILL_WORKER)
    run.phase("apply", started)
    moments["after apply"] = timezone.now()
    not_applied = [f"{r.proposal_id}: {r.outcome} {r.detail}" for r in results if r.outcome != Outcome.APPLIED]
    run.check(not not_applied, f"not applied: {'; '.join(not_applied)}")
    run.drill.changes = len(ids)
    return ids, moments


def _drill_undo(run: DrillRun, batch: Batch, count: int) -> None:
    """Undo the whole batch with the bulk undo job a person starts from the browser, run here."""
    selection = UndoSelection(scope=UndoScope.BATCH, batch=batch)
    job = undo_job_start(
        selection=selection, actor=Actor.system("rollback_drill"), reason="rollback drill", queue=False
    )
    job = run.job = undo_job_run(job_id=job.pk, worker=DRILL_WORKER)
    run.check(
        (job.done, job.reverted, job.conflicts) == (count, count, 0),
        f"undo job {job.pk}: {job.reverted} of {count} undone, {job.conflicts} conflicts",
    )


def _drill_check(
    run: DrillRun,
    batch: Batch,
    refs: list[RecordRef],
    before: dict[RecordRef, bytes],
    moments: dict[str, datetime],
    states: dict[str, Any],
) -> list[str]:
    """Every record byte for byte what it was, every proposal reverted, the trail whole. Answers
    the records that differ."""
    after = _exact(refs)
    different = [str(ref) for ref in refs if after.get(ref) != before[ref]]
    run.check(not different, f"not byte for byte what they were: {', '.join(different)}")
    statuses = set(Proposal.objects.filter(batch=batch).values_list("status", flat=True))
    run.check(statuses == {ProposalStatus.REVERTED}, f"proposal statuses after the undo: {sorted(statuses)}")
    _verify_trail(run, batch, refs, moments, states)
    return different


# What a person does to roll a bad batch back, each timed against the workflow's rollback target.
ROLLBACK_PHASES = ("stop", "undo", "check")


def _drill_workflow_phases(run: DrillRun, workflow: Workflow, target: DrillTarget, records: int) -> None:
    """The drill as `workflow`: its throwaway records updated, applied, then rolled back as a person
    would: the batch stopped, undone, checked; the stop released afterwards."""
    started = time.perf_counter()
    with transaction.atomic():
        user = _drill_user()
        refs, plans = drill_records(target=target, drill_id=run.drill.pk, count=records)
    run.phase("setup", started)
    before, states, batch, ids, moments, changed = _drill_written(run, workflow, refs, plans, user)
    run.say(f"  applied    {len(ids)} proposals: {changed} of {len(refs)} {target.record_type} records changed")

    started = time.perf_counter()
    stop_engage(
        scope=StopScope.BATCH,
        batch=batch,
        reason=f"rollback drill {run.drill.pk}: the batch is stopped before it is undone",
        actor=Actor.system("rollback_drill"),
    )
    run.phase("stop", started)

    started = time.perf_counter()
    _drill_undo(run, batch, len(ids))
    run.phase("undo", started)

    started = time.perf_counter()
    different = _drill_check(run, batch, refs, before, moments, states)
    run.phase("check", started)
    run.say(f"  records    {len(refs) - len(different)} of {len(refs)} byte for byte as before")

    taken = sum(run.timings.get(phase, 0.0) for phase in ROLLBACK_PHASES)
    allowed = workflow.rollback_target.total_seconds()
    run.say(f"  rollback   {taken:.3f} s of the {allowed:g} s target (stop + undo + check)")
    run.check(
        taken <= allowed,
        f"the rollback took {taken:.3f} s (stop + undo + check), over the rollback target of {workflow.slug}, "
        f"{allowed:g} s",
    )


def rollback_drill_run(
    *, records: int = 20, say: Callable[[str], None] = print, workflow: Workflow | None = None
) -> RollbackDrill:
    """Run the drill end to end and store its result (pass or fail, the time of each phase): on its
    own throwaway workflow, or with `workflow` as that workflow, timed against its rollback target.
    A workflow the drill cannot run as is refused (InvalidTransition) before anything is written."""
    if records < 2:
        raise ValueError("the drill needs at least 2 records")
    target = drill_target_of(workflow=workflow) if workflow is not None else None
    slug = workflow.slug if workflow is not None else DRILL_WORKFLOW
    drill = RollbackDrill.objects.create(records=records, workflow_slug=slug, ran_by="rollback_drill")
    run = DrillRun(drill=drill, say=say)
    if workflow is not None and target is not None:
        say(f"Rollback drill {drill.pk}: {records} throwaway {target.record_type} records as workflow {slug}")
    else:
        say(f"Rollback drill {drill.pk}: {records} throwaway customers in workflow {DRILL_WORKFLOW}")
    try:
        if workflow is not None and target is not None:
            _drill_workflow_phases(run, workflow, target, records)
        else:
            _drill_seed_phases(run, records)
    except Exception as error:  # the drill reports whatever went wrong as its result, never half a report
        run.problems.append(f"{type(error).__name__}: {error}")
    finally:
        if run.batch is not None:
            switch = StopSwitch.objects.filter(target=f"batch:{run.batch.pk}", released_at__isnull=True).first()
            if switch is not None:
                stop_release(switch=switch, user=_drill_user(), note="rollback drill finished")
    return _drill_finish(run)


def _drill_finish(run: DrillRun) -> RollbackDrill:
    drill = run.drill
    drill.passed = not run.problems
    drill.finished_at = timezone.now()
    drill.timings = run.timings
    drill.problems = run.problems
    drill.batch_id = run.batch.pk if run.batch else None
    drill.undo_job_id = run.job.pk if run.job else None
    verdict = "PASSED" if drill.passed else "FAILED"
    lines = [f"Rollback drill {drill.pk} {verdict} in {sum(run.timings.values()):.2f} s"]
    lines += [f"  {phase}: {seconds:.3f} s" for phase, seconds in run.timings.items()]
    lines += [f"  problem: {problem}" for problem in run.problems]
    drill.report = "\n".join(lines)
    with transaction.atomic():
        drill.save()
        audit_record(
            action="drill.completed",
            actor=Actor.system("rollback_drill"),
            batch_id=drill.batch_id,
            workflow_slug=drill.workflow_slug,
            reason=verdict.lower(),
            details={"drill": drill.pk, "passed": drill.passed, "timings": run.timings, "problems": run.problems[:20]},
        )
    run.say(lines[0])
    for problem in run.problems:
        run.say(f"  problem: {problem}")
    return drill
