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
from approvals.readiness.review_selectors import marked_fields, review_fields, review_of, review_page
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
    """What the page says of a form it refused: in which section (the one whose button sent it), the
    status, what is wrong beyond the fields the form shows, and the form with its field errors."""

    section: str
    status: int
    message: str = ""
    form: PlainForm | None = None


# The section of the page each button is in: a refusal is said there, where the person looks.
SECTIONS = {"start": "review", "walk": "step-4", "mark": "step-2", "decide": "step-5", "sign": "step-5"}
TICK_SECTIONS = {"tasks": "step-1", "retention": "step-3"}


def _review(request: AuthenticatedHtmxRequest, workflow: Workflow) -> ReadinessReview:
    sent = request.POST.get("review", "")
    if not sent.isdigit():
        raise ValidationFailed([("review", f"the form named no review; {RELOAD}")])
    return review_of(workflow=workflow, review_id=int(sent))


def _refused(section: str, form: PlainForm, error: ApplicationError) -> Refusal:
    by_field, rest = error.on_fields(form.fields)
    for field, message in by_field.items():
        form.add_error(field, message)
    return Refusal(section=section, status=error.status_code, message=rest, form=form)


def _invalid(section: str, form: PlainForm) -> Refusal:
    return Refusal(
        section=section, status=422, message=" ".join(str(text) for text in form.non_field_errors()), form=form
    )


def _start(request: AuthenticatedHtmxRequest, workflow: Workflow) -> str | Refusal:
    review_start(workflow=workflow, user=request.user)
    return "Review started. Each step records who did it and when."


def _tick(request: AuthenticatedHtmxRequest, workflow: Workflow) -> str | Refusal:
    form = TickForm(request.POST)
    if not form.is_valid():
        said = " ".join(str(text) for texts in form.errors.values() for text in texts)
        return Refusal(section="review", status=422, message=said)
    step = form.cleaned_data["step"]
    section = TICK_SECTIONS.get(step, "step-4")
    try:
        review_step_tick(
            review=_review(request, workflow), user=request.user, step=step, note=form.cleaned_data["note"]
        )
    except ApplicationError as error:
        return Refusal(section=section, status=error.status_code, message=error.plain)
    return f"Ticked {TICKS[step]}."


def _walk(request: AuthenticatedHtmxRequest, workflow: Workflow) -> str | Refusal:
    form = WalkForm(request.POST)
    if not form.is_valid():
        return _invalid("step-4", form)
    try:
        review_walk_choose(review=_review(request, workflow), user=request.user, change_id=form.cleaned_data["change"])
    except ApplicationError as error:
        return _refused("step-4", form, error)
    return "Change chosen: walk it through approval, write, trace and rollback, ticking each part."


def _mark(request: AuthenticatedHtmxRequest, workflow: Workflow) -> str | Refusal:
    review = _review(request, workflow)
    form = MarksForm(request.POST, fields=marked_fields(rows=review_fields(workflow=workflow), review=review))
    if not form.is_valid():
        return _invalid("step-2", form)
    try:
        review_fields_mark(review=review, user=request.user, marks=form.marks())
    except ApplicationError as error:
        return _refused("step-2", form, error)
    return "Fields marked (step 2)."


def _decide(request: AuthenticatedHtmxRequest, workflow: Workflow) -> str | Refusal:
    form = DecideForm(request.POST)
    if not form.is_valid():
        return _invalid("step-5", form)
    decision = form.cleaned_data["decision"]
    try:
        review_decide(
            review=_review(request, workflow),
            user=request.user,
            decision=decision,
            actions=form.cleaned_data["actions"],
        )
    except ApplicationError as error:
        return _refused("step-5", form, error)
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
    action = request.POST.get("do", "")
    try:
        if action not in _ACTIONS:
            raise ValidationFailed([("do", f"the form asked for nothing this page does; {RELOAD}")])
        outcome = _ACTIONS[action](request, workflow)
    except ApplicationError as error:
        outcome = Refusal(section=SECTIONS.get(action, "review"), status=error.status_code, message=error.plain)
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
    context = {
        "page": page,
        "workflow": workflow,
        "problem": refusal.message if refusal else "",
        "problem_at": refusal.section if refusal else "",
        "walk_form": sent if isinstance(sent, WalkForm) else WalkForm(),
        "marks_form": sent if isinstance(sent, MarksForm) else MarksForm(fields=page.fields),
        "decide_form": sent if isinstance(sent, DecideForm) else _decide_form(page.current),
    }
    return TemplateResponse(request, REVIEW, context, status=refusal.status if refusal else 200)


def _decide_form(review: ReadinessReview | None) -> DecideForm:
    if review is None or not review.decision:
        return DecideForm()
    return DecideForm(initial={"decision": review.decision, "actions": review.actions})
