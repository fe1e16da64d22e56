"""The quality page of a workflow: each prompt version's decisions, decision times and rejection reasons
over the last 30 days, and reviewers' agreement with it in shadow."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse

from approvals.models import Workflow
from approvals.noticing.quality import TOP_REASONS, WINDOW_DAYS, shadow_to_judge, workflow_quality
from approvals.workflows.rights import workflow_visible_to
from core.types import AuthenticatedHtmxRequest


@login_required
def workflow_quality_page(request: AuthenticatedHtmxRequest, slug: str) -> HttpResponse:
    workflow = get_object_or_404(Workflow, slug=slug)
    if not workflow_visible_to(user=request.user, workflow=workflow):
        raise Http404("no such workflow")
    context = {
        "quality": workflow_quality(workflow=workflow),
        "to_judge": shadow_to_judge(workflow=workflow, user=request.user),
        "workflow": workflow,
        "window_days": WINDOW_DAYS,
        "top_reasons": TOP_REASONS,
    }
    return TemplateResponse(request, "noticing/quality.html", context)
