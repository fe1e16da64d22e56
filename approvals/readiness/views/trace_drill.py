"""The trace drill's pages: start one on a workflow, and the drill itself (the complaint, the clock,
the answers, the result)."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from approvals.readiness.trace_drill import trace_drill_answer, trace_drill_start
from approvals.readiness.trace_forms import TraceDrillAnswerForm
from approvals.readiness.trace_selectors import trace_drill_for_viewer, trace_drills_recent
from approvals.workflows.rights import workflows_visible_to
from audit.services import Actor
from core.errors import ApplicationError, NotFound
from core.types import AuthenticatedHtmxRequest

START = "readiness/trace_drill_start.html"
DRILL = "readiness/trace_drill.html"


@login_required
@require_http_methods(["GET", "POST"])
def workflow_trace_drill(request: AuthenticatedHtmxRequest, slug: str) -> HttpResponse:
    """What the drill asks, the workflow's recent drills, and Start (POST starts one for the viewer)."""
    workflow = workflows_visible_to(user=request.user).filter(slug=slug).first()
    if workflow is None:
        raise Http404(f"no workflow {slug}")
    context: dict = {"workflow": workflow}
    status = 200
    if request.method == "POST":
        try:
            drill = trace_drill_start(
                workflow=workflow,
                user=request.user,
                started_by=Actor.user(request.user),
                zone=timezone.get_current_timezone(),
            )
        except ApplicationError as error:
            context["error"], status = error.plain, error.status_code
        else:
            return redirect("trace-drill", pk=drill.pk)
    context["drills"] = trace_drills_recent(workflow=workflow)
    return TemplateResponse(request, START, context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def trace_drill(request: AuthenticatedHtmxRequest, pk: int) -> HttpResponse:
    """The drill: its person answers here; whoever sees its workflow reads its result."""
    try:
        view = trace_drill_for_viewer(drill_id=pk, user=request.user)
    except NotFound as error:
        raise Http404(error.message) from None
    form = TraceDrillAnswerForm(request.POST if request.method == "POST" else None, questions=view.questions)
    context: dict = {"view": view, "form": form, "drill": view.drill, "workflow": view.drill.workflow}
    if request.method != "POST":
        return TemplateResponse(request, DRILL, context)
    if not form.is_valid():
        return TemplateResponse(request, DRILL, context, status=422)
    try:
        trace_drill_answer(drill=view.drill, user=request.user, answers=form.answers())
    except ApplicationError as error:
        by_field, context["error"] = error.on_fields(form.fields)
        for key, message in by_field.items():
            form.add_error(key, message)
        return TemplateResponse(request, DRILL, context, status=error.status_code)
    return redirect("trace-drill", pk=pk)
