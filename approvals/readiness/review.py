"""The five-step review of a workflow: started, walked step by step by the people who did each step,
decided ready or not ready, and signed off by two people, one of them the workflow's owner.

Each write locks the review (or, to start one, the workflow), checks the step is allowed, writes and
appends its event to the trail in the same transaction. A review signed off is read-only; the next
look at the workflow is a new review.
"""

import uuid
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals.models import ReadinessReview, ReviewDecision, ReviewSignature, Workflow
from approvals.readiness.review_selectors import change_undone_by, review_fields, walk_change_of
from approvals.readiness.rights import may_run_review
from approvals.readiness.steps import (
    FIELDS,
    MARKS,
    ROLLBACK,
    TICKED_BY_BUTTON,
    TICKS,
    WALK_PREFIX,
    sign_off_waits_for,
    ticks_missing,
)
from audit.services import Actor, audit_record, user_label
from core.errors import InvalidTransition, NotAllowed, NotFound, ValidationFailed
from records.catalogue import Risk


def _may_run(user: Any, workflow: Workflow) -> None:
    if not may_run_review(user=user, workflow=workflow):
        raise NotAllowed(
            f"the review of {workflow.slug} is run by its owner, {user_label(workflow.owner)}, "
            "and by staff or ops managers who see it"
        )


def _when(moment: Any) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")


def _record(action: str, review: ReadinessReview, user: Any, **event: Any) -> None:
    details = {"review_id": review.pk, **event.pop("details", {})}
    audit_record(action=action, actor=Actor.user(user), workflow_slug=review.workflow.slug, details=details, **event)


def _locked(review: ReadinessReview, user: Any) -> ReadinessReview:
    """The review locked for a change, refused if it is signed off or if `user` does not run it."""
    locked = (
        ReadinessReview.objects.select_for_update(of=("self",))
        .select_related("workflow__owner")
        .filter(pk=review.pk)
        .first()
    )
    if locked is None:
        raise NotFound("this review no longer exists")
    _may_run(user, locked.workflow)
    if locked.signed_off_at is not None:
        raise InvalidTransition(
            f"this review was signed off on {_when(locked.signed_off_at)} and is read-only; "
            "start a new review to look at the workflow again"
        )
    return locked


def _undecided(review: ReadinessReview) -> None:
    if review.decision:
        raise InvalidTransition(
            f"the review is decided ({review.get_decision_display().lower()}); its steps can no longer change"
        )


def _tick(review: ReadinessReview, key: str, user: Any, note: str = "") -> dict[str, str]:
    tick = {"by": user.get_username(), "name": user_label(user), "at": timezone.now().isoformat(), "note": note}
    review.steps = {**review.steps, key: tick}
    return tick


def review_start(*, workflow: Workflow, user: Any) -> ReadinessReview:
    """Open a review of `workflow`. One review is open per workflow at a time."""
    with transaction.atomic():
        locked = Workflow.objects.select_for_update(of=("self",)).select_related("owner").get(pk=workflow.pk)
        _may_run(user, locked)
        open_review = (
            ReadinessReview.objects.select_related("started_by")
            .filter(workflow=locked, signed_off_at__isnull=True)
            .first()
        )
        if open_review is not None:
            raise InvalidTransition(
                f"a review of {locked.slug} is already open, started by {user_label(open_review.started_by)} "
                f"on {_when(open_review.started_at)}; finish it before starting another"
            )
        try:
            with transaction.atomic():
                review = ReadinessReview.objects.create(workflow=locked, started_by=user)
        except IntegrityError:
            raise InvalidTransition(f"a review of {locked.slug} was started a moment ago; reload the page") from None
        _record("review.started", review, user)
    return review


def review_step_tick(*, review: ReadinessReview, user: Any, step: str, note: str = "") -> ReadinessReview:
    """Tick one step (1, 3, or a part of the walk of step 4) as done by `user`, now."""
    if step not in TICKED_BY_BUTTON:
        raise ValidationFailed([("step", "the form named no step this page ticks; reload the page and try again")])
    with transaction.atomic():
        locked = _locked(review, user)
        _undecided(locked)
        done = locked.steps.get(step)
        if done:
            raise InvalidTransition(f"{TICKS[step]} was ticked by {done['name']} already")
        if step.startswith(WALK_PREFIX):
            if locked.walk_change_id is None:
                raise ValidationFailed([("change", "choose the applied change to walk through first")])
            if step == ROLLBACK and change_undone_by(change_id=locked.walk_change_id) is None:
                raise InvalidTransition(
                    "the trail holds no undo of the change walked through yet: undo it on its undo page, "
                    "then tick rollback"
                )
        tick = _tick(locked, step, user, note.strip())
        locked.save(update_fields=["steps"])
        _record(
            "review.step_ticked",
            locked,
            user,
            field=step,
            new_value=tick,
            change_id=locked.walk_change_id if step.startswith(WALK_PREFIX) else None,
            details={"step": TICKS[step]},
        )
    return locked


def review_walk_choose(*, review: ReadinessReview, user: Any, change_id: uuid.UUID) -> ReadinessReview:
    """Choose the applied change of the workflow that step 4 walks through, before its walk begins."""
    with transaction.atomic():
        locked = _locked(review, user)
        _undecided(locked)
        begun = [TICKS[key] for key in locked.steps if key.startswith(WALK_PREFIX)]
        if begun and locked.walk_change_id != change_id:
            raise InvalidTransition(
                f"the walk of the chosen change has begun ({', '.join(begun)} ticked); it cannot move to another"
            )
        try:
            change = walk_change_of(workflow=locked.workflow, change_id=change_id)
        except NotFound as error:
            raise ValidationFailed([("change", error.message)]) from None
        locked.walk_change_id = change.id
        locked.save(update_fields=["walk_change_id"])
        _record(
            "review.change_chosen",
            locked,
            user,
            record_type=change.record_type,
            record_id=change.record_id,
            change_id=change.id,
            proposal_id=change.proposal_id,
        )
    return locked


def review_fields_mark(*, review: ReadinessReview, user: Any, marks: dict[str, str]) -> ReadinessReview:
    """Mark each field of the record types the workflow touches no access, read, suggest or write,
    kept beside what the file grants; this ticks step 2."""
    with transaction.atomic():
        locked = _locked(review, user)
        _undecided(locked)
        rows = review_fields(workflow=locked.workflow)
        problems = []
        for row in rows:
            mark = marks.get(row.key, "")
            if mark not in MARKS:
                problems.append((row.key, "choose no access, read, suggest or write"))
            elif mark == "write" and row.risk == Risk.HIGH:
                problems.append((row.key, "write is refused on a high-risk field: every change to it is countersigned"))
        if problems:
            raise ValidationFailed(problems)
        before = locked.field_marks
        locked.field_marks = {row.key: {"file": row.file_access, "review": marks[row.key]} for row in rows}
        tick = _tick(locked, FIELDS, user)
        locked.save(update_fields=["field_marks", "steps"])
        differences = [
            f"{key}: file says {MARKS[mark['file']]}, review says {MARKS[mark['review']]}"
            for key, mark in locked.field_marks.items()
            if mark["file"] != mark["review"]
        ]
        _record(
            "review.fields_marked",
            locked,
            user,
            field=FIELDS,
            old_value=before or None,
            new_value=locked.field_marks,
            details={"step": TICKS[FIELDS], "ticked_at": tick["at"], "differences": differences},
        )
    return locked


def review_decide(*, review: ReadinessReview, user: Any, decision: str, actions: str) -> ReadinessReview:
    """Step 5: decide ready or not ready, with the actions to take. Every step must be done first; a
    decision stands once anyone has signed it."""
    actions = actions.strip()
    with transaction.atomic():
        locked = _locked(review, user)
        signed = list(ReviewSignature.objects.filter(review=locked).select_related("user"))
        if signed:
            raise InvalidTransition(f"{user_label(signed[0].user)} has signed this decision; it can no longer change")
        missing = ticks_missing(locked.steps)
        if missing:
            raise InvalidTransition(f"finish the steps before deciding: {', '.join(missing)} not done yet")
        if decision not in ReviewDecision.values:
            raise ValidationFailed([("decision", "choose ready or not ready")])
        if decision == ReviewDecision.NOT_READY and not actions:
            raise ValidationFailed([("actions", "say what must be done before the workflow is ready")])
        before = locked.decision or None
        locked.decision, locked.actions, locked.decided_by = decision, actions, user
        locked.save(update_fields=["decision", "actions", "decided_by"])
        _record(
            "review.decided",
            locked,
            user,
            old_value=before,
            new_value=decision,
            reason=actions,
            decided_at=timezone.now(),
            approver_label=user_label(user),
        )
    return locked


def review_sign(*, review: ReadinessReview, user: Any) -> ReadinessReview:
    """Sign the decided review. It is signed off, dated and read-only once two different people have
    signed, one of them the workflow's owner."""
    with transaction.atomic():
        locked = _locked(review, user)
        if not locked.decision:
            raise InvalidTransition("decide ready or not ready (step 5) before signing")
        signed = list(ReviewSignature.objects.filter(review=locked).select_related("user"))
        own = next((signature for signature in signed if signature.user_id == user.pk), None)
        if own is not None:
            raise InvalidTransition(
                f"you signed this review on {_when(own.signed_at)} already; the second signature must be "
                "another person's"
            )
        try:
            with transaction.atomic():
                signature = ReviewSignature.objects.create(review=locked, user=user)
        except IntegrityError:
            raise InvalidTransition("you signed this review a moment ago already") from None
        signed.append(signature)
        workflow = locked.workflow
        _record("review.signed", locked, user, new_value=locked.decision, decided_at=signature.signed_at)
        waiting = sign_off_waits_for(
            signer_ids=[entry.user_id for entry in signed],
            owner_id=workflow.owner_id,
            owner_name=user_label(workflow.owner),
        )
        if not waiting:
            _sign_off(locked, user, signed)
    return locked


def _sign_off(review: ReadinessReview, user: Any, signed: list[ReviewSignature]) -> None:
    review.signed_off_at = timezone.now()
    review.save(update_fields=["signed_off_at"])
    owner_id = review.workflow.owner_id
    # The owner first, then the others in the order they signed.
    names = [user_label(entry.user) for entry in sorted(signed, key=lambda entry: entry.user_id != owner_id)]
    _record(
        "review.signed_off",
        review,
        user,
        new_value=review.decision,
        reason=review.actions,
        approver_label=" and ".join(names),
        decided_at=review.signed_off_at,
        details={"signed_by": names, "decision": review.decision},
    )
