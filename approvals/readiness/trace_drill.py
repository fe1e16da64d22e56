"""The timed trace drill: a person is given what a complaint would say about one applied change of a
workflow, finds the change in the app, and answers what it was, who approved it and how to undo it.

The clock runs from the start to the answers. The drill passes when every answer matches what the
Change, its proposal and the trail hold (`trace_answers`) and it was answered within the workflow's
`trace_target`. A person has one open drill per workflow: starting another ends the open one as
failed. Both the start and the end are on the trail; the start names neither the change nor its
record, so the trail gives nothing away while the drill runs.
"""

import zoneinfo
from datetime import tzinfo
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from approvals.models import Proposal, ProposalStatus, TraceDrill, Workflow
from approvals.readiness.trace_answers import changed_fields, questions_for, trace_facts, verdicts_for
from approvals.readiness.trace_complaint import complaint_text, when_phrase
from approvals.readiness.trace_rights import check_may_answer, check_may_take
from audit.services import Actor, audit_record
from core.errors import InvalidTransition, ValidationFailed
from records.catalogue import RECORD_TYPES
from records.models import Change, ChangeAction

# A change picked at random that changed no field of the catalogue is put aside and another picked.
PICKS = 5
REPLACED = "ended unanswered: a new drill was started"


def _workflow_zone(workflow: Workflow) -> tzinfo:
    try:
        return zoneinfo.ZoneInfo(workflow.override_timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def traceable_changes(*, workflow: Workflow) -> QuerySet[Change]:
    """The updates the workflow's proposals applied that are still in force (not undone)."""
    applied = Proposal.objects.filter(workflow=workflow, status=ProposalStatus.APPLIED).values("pk")
    return Change.objects.filter(
        proposal_id__in=applied, action=ChangeAction.UPDATE, record_type__in=list(RECORD_TYPES)
    ).filter(reverted_by__isnull=True)


def _pick(workflow: Workflow) -> tuple[Change, list[str]]:
    """One traceable change at random (ORDER BY random(), on SQLite as on PostgreSQL) and its changed fields."""
    put_aside: list[Any] = []
    for _ in range(PICKS):
        change = traceable_changes(workflow=workflow).exclude(pk__in=put_aside).order_by("?").first()
        if change is None:
            break
        fields = [field.name for field in changed_fields(change)]
        if fields:
            return change, fields
        put_aside.append(change.pk)
    raise InvalidTransition(
        f"workflow {workflow.slug} has no applied change to trace yet: a drill needs one of its proposals "
        "approved and written to a record, and not undone",
        field="workflow",
    )


def _end_open_drills(*, workflow: Workflow, user: User, actor: Actor, now: Any) -> None:
    for drill in TraceDrill.objects.select_for_update().filter(workflow=workflow, user=user, passed__isnull=True):
        drill.finished_at, drill.passed = now, False
        drill.save(update_fields=["finished_at", "passed"])
        audit_record(
            action="trace_drill.finished",
            actor=actor,
            workflow_slug=workflow.slug,
            reason=f"failed: {REPLACED}",
            details={"drill": drill.pk, "user": user.get_username(), "passed": False, "replaced": True},
        )


def trace_drill_start(*, workflow: Workflow, user: User, started_by: Actor, zone: tzinfo | None = None) -> TraceDrill:
    """Start a drill for `user` on one applied change of `workflow`, picked at random.

    The complaint speaks of time in `zone` (the workflow's override time zone when none is given).
    Refuses (NotAllowed) a person who cannot see the workflow, and (InvalidTransition) a workflow
    with no applied change to trace. A drill the person still had open on the workflow ends failed.
    """
    check_may_take(user=user, workflow=workflow)
    now = timezone.now()
    change, fields = _pick(workflow)
    when = when_phrase(change.applied_at, now=now, zone=zone or _workflow_zone(workflow))
    complaint = complaint_text(record_type=change.record_type, record_id=change.record_id, fields=fields, when=when)
    try:
        with transaction.atomic():
            _end_open_drills(workflow=workflow, user=user, actor=started_by, now=now)
            drill = TraceDrill.objects.create(
                workflow=workflow,
                user=user,
                change_id=change.id,
                complaint=complaint,
                target=workflow.trace_target,
                started_at=now,
                started_by=started_by.label,
            )
            audit_record(
                action="trace_drill.started",
                actor=started_by,
                workflow_slug=workflow.slug,
                reason=f"trace drill for {user.get_username()}",
                details={
                    "drill": drill.pk,
                    "user": user.get_username(),
                    "target_seconds": int(drill.target.total_seconds()),
                },
            )
    except IntegrityError:
        raise InvalidTransition(
            f"a trace drill for {user.get_username()} on {workflow.slug} was started at this very moment; "
            "open it from the workflow's drills",
            field="workflow",
        ) from None
    return drill


def trace_drill_answer(*, drill: TraceDrill, user: User, answers: dict[str, str]) -> TraceDrill:
    """The drill's person answers every question at once; the drill ends, right or wrong.

    Refuses (NotAllowed) anyone else, (InvalidTransition) a drill already over, and (ValidationFailed,
    naming each question) answers left blank. Stores each answer with whether it is right and what the
    trail holds, the time taken, and passed: every answer right within the target.
    """
    with transaction.atomic():
        drill = TraceDrill.objects.select_for_update().select_related("workflow", "user").get(pk=drill.pk)
        check_may_answer(user=user, drill=drill)
        if drill.passed is not None:
            raise InvalidTransition("this drill is over: its answers are already in", field="drill")
        facts = trace_facts(change_id=drill.change_id)
        given = {key: str(text).strip() for key, text in answers.items()}
        blank = [(q.key, "Answer this question.") for q in questions_for(facts) if not given.get(q.key)]
        if blank:
            raise ValidationFailed(blank)
        drill.finished_at = timezone.now()
        drill.verdicts = verdicts_for(facts, given)
        drill.answers = {key: given[key] for key in drill.verdicts}
        seconds = (drill.finished_at - drill.started_at).total_seconds()
        wrong = [key for key, verdict in drill.verdicts.items() if not verdict["right"]]
        in_time = drill.finished_at - drill.started_at <= drill.target
        drill.passed = not wrong and in_time
        drill.save(update_fields=["finished_at", "verdicts", "answers", "passed"])
        why = "passed" if drill.passed else "failed: " + "; ".join(_failures(wrong, in_time))
        audit_record(
            action="trace_drill.finished",
            actor=Actor.user(user),
            workflow_slug=drill.workflow.slug,
            reason=why,
            details={
                "drill": drill.pk,
                "user": user.get_username(),
                "passed": drill.passed,
                "seconds": round(seconds, 3),
                "target_seconds": int(drill.target.total_seconds()),
                "wrong": wrong,
                "change_id": str(drill.change_id),
            },
        )
    return drill


def _failures(wrong: list[str], in_time: bool) -> list[str]:
    reasons = [f"{len(wrong)} wrong answer{'s' if len(wrong) != 1 else ''} ({', '.join(wrong)})"] if wrong else []
    return reasons + ([] if in_time else ["over the target time"])
