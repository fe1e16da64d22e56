"""The five-step review page of a workflow: each step with who did it and when, the forms that do the
next one, the sign-off, and the reviews before this one."""

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils import timezone

from approvals.models import ReadinessReview, ReviewDecision, Workflow
from approvals.readiness.review import (
    review_decide,
    review_fields_mark,
    review_sign,
    review_start,
    review_step_tick,
    review_walk_choose,
)
from approvals.readiness.review_forms import DecideForm, MarksForm, TickForm, WalkForm
from approvals.readiness.review_selectors import marked_fields, review_fields, review_open_of, review_page
from approvals.readiness.rights import may_run_review
from approvals.readiness.steps import TICKS, sign_off_waits_for
from approvals.workflows.rights import workflow_visible_to
from audit.services import user_label
from core.errors import ApplicationError, ValidationFailed
from core.forms import PlainForm
from core.types import AuthenticatedHtmxRequest
from core.visibility import scope_for

REVIEW = "readiness/review.html"
RELOAD = "reload the page and try again"


@dataclass
class Refusal:
    """A form sent back: which part of the page shows it, the form with its errors, and the status."""

    where: str
    status: int
    form: PlainForm | None = None
    message: str = ""


def _review(request: AuthenticatedHtmxRequest, workflow: Workflow) -> ReadinessReview:
    sent = request.POST.get("review", "")
    if not sent.isdigit():
        raise ValidationFailed([("review", f"the form named no review; {RELOAD}")])
    return review_open_of(workflow=workflow, review_id=int(sent))


def _refused(where: str, form: PlainForm, error: ApplicationError) -> Refusal:
    form.add_refusal(error)
    return Refusal(where=where, status=error.status_code, form=form)


def _start(request: AuthenticatedHtmxRequest, workflow: Workflow) -> str | Refusal:
    review_start(workflow=workflow, user=request.user)
    return "Review started. Each step records who did it and when."


def _tick(request: AuthenticatedHtmxRequest, workflow: Workflow) -> str | Refusal:
    form = TickForm(request.POST)
    if not form.is_valid():
        return Refusal(where=f"tick:{request.POST.get('step', '')}", status=422, form=form)
    step = form.cleaned_data["step"]
    try:
        review_step_tick(
            review=_review(request, workflow), user=request.user, step=step, note=form.cleaned_data["note"]
        )
    except ApplicationError as error:
        return _refused(f"tick:{step}", form, error)
    return f"Ticked {TICKS[step]}."


def _walk(request: AuthenticatedHtmxRequest, workflow: Workflow) -> str | Refusal:
    form = WalkForm(request.POST)
    if not form.is_valid():
        return Refusal(where="walk", status=422, form=form)
    try:
        review_walk_choose(review=_review(request, workflow), user=request.user, change_id=form.cleaned_data["change"])
    except ApplicationError as error:
        return _refused("walk", form, error)
    return "Change chosen: walk it through approval, write, trace and rollback, ticking each part."


def _mark(request: AuthenticatedHtmxRequest, workflow: Workflow) -> str | Refusal:
    review = _review(request, workflow)
    form = MarksForm(request.POST, fields=marked_fields(rows=review_fields(workflow=workflow), review=review))
    if not form.is_valid():
        return Refusal(where="marks", status=422, form=form)
    try:
        review_fields_mark(review=review, user=request.user, marks=form.marks())
    except ApplicationError as error:
        return _refused("marks", form, error)
    return "Fields marked (step 2)."


def _decide(request: AuthenticatedHtmxRequest, workflow: Workflow) -> str | Refusal:
    form = DecideForm(request.POST)
    if not form.is_valid():
        return Refusal(where="decide", status=422, form=form)
    decision = form.cleaned_data["decision"]
    try:
        review_decide(
            review=_review(request, workflow),
            user=request.user,
            decision=decision,
            actions=form.cleaned_data["actions"],
        )
    except ApplicationError as error:
        return _refused("decide", form, error)
    return f"Decided: {ReviewDecision(decision).label.lower()}. It is signed off once two people have signed."


def _sign(request: AuthenticatedHtmxRequest, workflow: Workflow) -> str | Refusal:
    review = review_sign(review=_review(request, workflow), user=request.user)
    signers = [signature.user_id for signature in review.signatures.all()]
    waiting = sign_off_waits_for(signer_ids=signers, owner_id=workflow.owner_id, owner_name=user_label(workflow.owner))
    if not waiting:
        return "Signed. The review is signed off: two people signed, one of them the workflow's owner."
    return f"Signed. The sign-off is waiting for {waiting}."


_ACTIONS: dict[str, Callable[[AuthenticatedHtmxRequest, Workflow], str | Refusal]] = {
    "start": _start,
    "tick": _tick,
    "walk": _walk,
    "mark": _mark,
    "decide": _decide,
    "sign": _sign,
}


def _visible_workflow(request: AuthenticatedHtmxRequest, slug: str) -> Workflow:
    workflow = get_object_or_404(Workflow.objects.select_related("owner"), slug=slug)
    if not workflow_visible_to(user=request.user, workflow=workflow):
        raise Http404("no such workflow")
    return workflow


@login_required
def workflow_review(request: AuthenticatedHtmxRequest, slug: str) -> HttpResponse:
    workflow = _visible_workflow(request, slug)
    if request.method != "POST":
        return _page(request, workflow)
    carry_out = _ACTIONS.get(request.POST.get("do", ""))
    try:
        if carry_out is None:
            raise ValidationFailed([("do", f"the form asked for nothing this page does; {RELOAD}")])
        outcome = carry_out(request, workflow)
    except ApplicationError as error:
        # Starting and signing send no fields: their refusal is said where their button is.
        where = request.POST["do"] if request.POST.get("do") in ("start", "sign") else "top"
        outcome = Refusal(where=where, status=error.status_code, message=error.plain)
    if isinstance(outcome, Refusal):
        return _page(request, workflow, refusal=outcome)
    messages.success(request, outcome)
    return redirect("workflow-review", slug=workflow.slug)


def _page(request: AuthenticatedHtmxRequest, workflow: Workflow, *, refusal: Refusal | None = None) -> HttpResponse:
    page = review_page(
        workflow=workflow,
        scope=scope_for(request.user),
        may_run=may_run_review(user=request.user, workflow=workflow),
        now=timezone.now(),
    )
    sent = refusal.form if refusal else None
    where = refusal.where if refusal else ""
    context = {
        "page": page,
        "workflow": workflow,
        "problem": refusal.message if refusal else "",
        "problem_at": where,
        "tick_refused": where.removeprefix("tick:") if where.startswith("tick:") else "",
        "tick_form": sent if where.startswith("tick:") else None,
        "walk_form": sent
        if where == "walk"
        else WalkForm(initial={"change": page.current and page.current.walk_change_id}),
        "marks_form": sent if where == "marks" else MarksForm(fields=page.fields),
        "decide_form": sent if where == "decide" else _decide_form(page.current),
    }
    return TemplateResponse(request, REVIEW, context, status=refusal.status if refusal else 200)


def _decide_form(review: ReadinessReview | None) -> DecideForm:
    if review is None or not review.decision:
        return DecideForm()
    return DecideForm(initial={"decision": review.decision, "actions": review.actions})
