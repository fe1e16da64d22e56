"""Promoting a prompt version from the readiness page."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from approvals.models import Workflow
from approvals.readiness.prompts import prompt_version_promote
from approvals.workflows.rights import workflow_visible_to
from core.errors import ApplicationError
from core.types import AuthenticatedHtmxRequest


def _back(request: AuthenticatedHtmxRequest, workflow: Workflow) -> HttpResponse:
    """To the page the form was on, else the workflow's readiness page."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect("workflow-readiness", slug=workflow.slug)


@login_required
@require_POST
def prompt_promote(request: AuthenticatedHtmxRequest, slug: str) -> HttpResponse:
    workflow = get_object_or_404(Workflow, slug=slug)
    if not workflow_visible_to(user=request.user, workflow=workflow):
        raise Http404("no such workflow")
    version = request.POST.get("prompt_version", "").strip()
    try:
        prompt_version_promote(workflow=workflow, prompt_version=version, user=request.user)
    except ApplicationError as error:
        messages.error(request, f"Prompt version {version or '(none given)'} was not promoted: {error.plain}")
    else:
        messages.success(
            request,
            f"Prompt version {version} of {workflow.slug} promoted: it is no longer held to the canary cap, "
            "and its approved proposals are queued to apply.",
        )
    return _back(request, workflow)
