"""The readiness page of a workflow: each check, pass or fail, the evidence, and for its owner the
button that moves it to its next stage once every check that stage needs passes."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_POST

from approvals.models import Workflow
from approvals.readiness.checks import RISING, readiness_of
from approvals.readiness.promotion import workflow_stage_promote
from approvals.readiness.prompts import prompt_releases_of
from approvals.readiness.rights import may_promote
from approvals.workflows.rights import workflow_visible_to
from core.errors import ApplicationError
from core.types import AuthenticatedHtmxRequest

READINESS = "readiness/readiness.html"


def _visible_workflow(request: AuthenticatedHtmxRequest, slug: str) -> Workflow:
    workflow = get_object_or_404(Workflow.objects.select_related("owner"), slug=slug)
    if not workflow_visible_to(user=request.user, workflow=workflow):
        raise Http404("no such workflow")
    return workflow


def _readiness_page(
    request: AuthenticatedHtmxRequest, workflow: Workflow, *, problem: ApplicationError | None = None
) -> TemplateResponse:
    readiness = readiness_of(workflow)
    context = {
        "workflow": workflow,
        "readiness": readiness,
        "stages": RISING[1:],
        "may_promote": may_promote(user=request.user, workflow=workflow),
        "problem": problem,
        "prompt_releases": prompt_releases_of(workflow=workflow, user=request.user),
    }
    return TemplateResponse(request, READINESS, context, status=problem.status_code if problem else 200)


@login_required
def workflow_readiness(request: AuthenticatedHtmxRequest, slug: str) -> HttpResponse:
    return _readiness_page(request, _visible_workflow(request, slug))


@login_required
@require_POST
def workflow_promote(request: AuthenticatedHtmxRequest, slug: str) -> HttpResponse:
    workflow = _visible_workflow(request, slug)
    try:
        promoted = workflow_stage_promote(workflow=workflow, stage=request.POST.get("stage", ""), user=request.user)
    except ApplicationError as error:
        return _readiness_page(request, workflow, problem=error)
    messages.success(request, f"{promoted.slug} moved to {promoted.get_stage_display()}.")
    return redirect("workflow-readiness", slug=promoted.slug)
