"""Readiness in the demo: address-updates earns its way to live, refund-notes is held in canary.

The demo's workflow file puts them at every stage at once, which a fresh database cannot have earned:
`seed_demo` loads it forced, with a reason, and every workflow past draft starts "released against
readiness". Then address-updates, eight days into canary, gathers its evidence through the same
services a person uses (a rollback drill of the workflow, one record walked through approval, write,
trace and rollback in a five-step review signed by its owner and an ops manager, a trace drill
answered from the trail) and its owner promotes it to live through the gate. refund-notes, one day into
canary, gets its drill and review too, so it is rightly in canary and held there: a day of its three
canary days, and no trace drill yet.
"""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from approvals.applying.services import proposals_apply
from approvals.demo.records import demo_records
from approvals.models import Batch, ReviewDecision, Stage, Workflow
from approvals.readiness.checks import readiness_by_workflow
from approvals.readiness.promotion import workflow_stage_promote
from approvals.readiness.review import (
    review_decide,
    review_fields_mark,
    review_sign,
    review_start,
    review_step_tick,
    review_walk_choose,
)
from approvals.readiness.review_selectors import review_fields
from approvals.readiness.steps import RETENTION, ROLLBACK, TASKS, WALK_PARTS
from approvals.readiness.trace_answers import expected, questions_for, trace_facts
from approvals.readiness.trace_drill import trace_drill_answer, trace_drill_start
from approvals.undo.drill import proposals_submit_approved, rollback_drill_run
from approvals.undo.services import undo_change
from audit.services import Actor
from records.models import Change

# How far into canary each workflow starts: address-updates has served its three days, refund-notes not.
CANARY_SINCE = {"address-updates": timedelta(days=8), "refund-notes": timedelta(days=1)}
# The stage the demo file's live workflow starts at before it earns live.
EARNS_LIVE = "address-updates"
DRILL_RECORDS = 6


def starting_stages(document: dict) -> dict:
    """The demo file as the seed loads it first: the workflow that earns live starts in canary."""
    for raw in document["workflows"]:
        if raw.get("slug") == EARNS_LIVE:
            raw["stage"] = Stage.CANARY
    return document


def canary_history() -> None:
    """Start each canary workflow as far into its canary days as the demo tells."""
    now = timezone.now()
    for slug, spent in CANARY_SINCE.items():
        Workflow.objects.filter(slug=slug, stage=Stage.CANARY).update(stage_changed_at=now - spent)


def _walked_change(workflow: Workflow, plan: dict, *, approver: object, actor: Actor) -> Change:
    """One proposal of `workflow`, approved and written, for the five-step review to walk through."""
    batch = Batch.objects.create(
        workflow=workflow,
        name="Five-step review walk",
        run_id=f"demo-walk-{workflow.slug}",
        expected_size=1,
        requested_by="agent",
    )
    [proposal] = proposals_submit_approved(
        batch=batch,
        plans=[plan],
        approver=approver,  # type: ignore[arg-type]
        actor=actor,
        prompt_version=plan.pop("prompt_version"),
        reason="Walked through the five-step review before release",
    )
    proposals_apply(proposal_ids=[proposal.pk], worker="demo-worker")
    return Change.objects.get(proposal_id=proposal.pk)


def _five_step_review(workflow: Workflow, change: Change, *, owner: object, ops: object) -> None:
    """The owner walks the five steps, `ops` undoes the walked change and co-signs."""
    review = review_start(workflow=workflow, user=owner)
    for step in (TASKS, RETENTION):
        review = review_step_tick(review=review, user=owner, step=step)
    marks = {row.key: row.file_access for row in review_fields(workflow=workflow)}
    review = review_fields_mark(review=review, user=owner, marks=marks)
    review = review_walk_choose(review=review, user=owner, change_id=change.id)
    undo_change(
        change=change,
        actor=Actor.user(ops),
        user=ops,  # type: ignore[arg-type]
        reason="Five-step review: the walked change undone to prove the rollback",
    )
    for part in WALK_PARTS:
        review = review_step_tick(review=review, user=ops if part.key == ROLLBACK else owner, step=part.key)
    review = review_decide(review=review, user=owner, decision=ReviewDecision.READY, actions="")
    review = review_sign(review=review, user=owner)
    review_sign(review=review, user=ops)


def _trace_drill(workflow: Workflow, person: object) -> None:
    """A trace drill of `workflow`, answered from what the trail holds."""
    drill = trace_drill_start(workflow=workflow, user=person, started_by=Actor.user(person))  # type: ignore[arg-type]
    facts = trace_facts(change_id=drill.change_id)
    answers = {question.key: expected(question.key, facts) for question in questions_for(facts)}
    trace_drill_answer(drill=drill, user=person, answers=answers)  # type: ignore[arg-type]


def _address_walk() -> dict:
    customer = demo_records("customer")[260]
    return {
        "action": "update",
        "record_id": customer.ref.record_id,
        "changes": {"phone": "+44 20 7946 0321"},
        "base": {"phone": customer.values["phone"]},
        "prompt_version": "address-update@7",
    }


def _refund_walk() -> dict:
    customer = demo_records("customer")[261]
    return {
        "action": "update",
        "record_id": customer.ref.record_id,
        "changes": {"sentiment": "negative" if customer.values["sentiment"] != "negative" else "neutral"},
        "base": {"sentiment": customer.values["sentiment"]},
        "prompt_version": "refund-notes@3",
    }


def demo_readiness(*, actor: Actor) -> str:
    """Gather address-updates' and refund-notes' evidence and promote address-updates to live."""
    users = get_user_model().objects.in_bulk(["owner", "ops", "lead"], field_name="username")
    owner, ops, lead = users["owner"], users["ops"], users["lead"]
    for slug, walk in (("address-updates", _address_walk), ("refund-notes", _refund_walk)):
        workflow = Workflow.objects.get(slug=slug)
        rollback_drill_run(records=DRILL_RECORDS, workflow=workflow, say=lambda line: None)
        change = _walked_change(workflow, walk(), approver=lead, actor=actor)
        _five_step_review(workflow, change, owner=owner, ops=ops)
    address = Workflow.objects.get(slug=EARNS_LIVE)
    _trace_drill(address, lead)
    workflow_stage_promote(workflow=address, stage=Stage.LIVE, user=owner)
    workflows = list(Workflow.objects.order_by("slug"))
    readiness = readiness_by_workflow(workflows)
    forced = [workflow.slug for workflow in workflows if readiness[workflow.pk].released_against_readiness]
    return (
        "Readiness: address-updates earned live (rollback drill, five-step review, trace drill, 8 days in "
        "canary); refund-notes is held in canary (1 of its 3 canary days, no trace drill yet); "
        f"released against readiness: {', '.join(forced) or 'none'} (see /map/)."
    )
