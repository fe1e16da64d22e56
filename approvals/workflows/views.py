"""The workflows page and the override schedule editor."""

import zoneinfo

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils import timezone

from approvals.intake.accounts import service_accounts_by_workflow
from approvals.models import Workflow
from approvals.overrides.selectors import duty_by_workflow
from approvals.readiness.checks import readiness_by_workflow
from approvals.undo.selectors import workflow_undo_context
from approvals.workflows.forms import ScheduleForm
from approvals.workflows.rights import owns_workflow, workflow_visible_to
from approvals.workflows.schedule import override_duty
from approvals.workflows.selectors import workflow_list_for_user, workflow_stores
from approvals.workflows.services import schedule_editable_by
from core.errors import NotAllowed
from core.types import AuthenticatedHtmxRequest


@login_required
def workflow_list(request: HttpRequest) -> HttpResponse:
    workflows = list(workflow_list_for_user(user=request.user))
    duties = duty_by_workflow(workflows=workflows, at=timezone.now())
    accounts = service_accounts_by_workflow(workflow_ids=[workflow.pk for workflow in workflows])
    stores = workflow_stores(workflows=workflows)
    forced = readiness_by_workflow([workflow for workflow in workflows if workflow.forced_stage])
    context = {
        "rows": [
            (workflow, duties[workflow.pk], accounts.get(workflow.pk, []), stores[workflow.pk])
            for workflow in workflows
        ],
        "owned_ids": {workflow.pk for workflow in workflows if owns_workflow(user=request.user, workflow=workflow)},
        "released_against_readiness": {pk for pk, readiness in forced.items() if readiness.released_against_readiness},
    }
    context.update(workflow_undo_context(user=request.user, workflows=workflows))
    return TemplateResponse(request, "approvals/workflow_list.html", context)


def _schedule_page(
    request: HttpRequest, workflow: Workflow, form: ScheduleForm | None, *, status: int = 200, error: str = ""
) -> TemplateResponse:
    context = {
        "workflow": workflow,
        "form": form,
        "error": error,
        "duty": override_duty(workflow=workflow, at=timezone.now()),
        "zones": sorted(zoneinfo.available_timezones()),
    }
    return TemplateResponse(request, "approvals/workflow_schedule.html", context, status=status)


@login_required
def workflow_schedule(request: AuthenticatedHtmxRequest, slug: str) -> HttpResponse:
    workflow = get_object_or_404(
        Workflow.objects.select_related("override_day_group", "override_after_hours_group"), slug=slug
    )
    if not workflow_visible_to(user=request.user, workflow=workflow):
        raise Http404("no such workflow")
    if not schedule_editable_by(workflow=workflow, user=request.user):
        refusal = f"only the owner of {workflow.slug} changes its override schedule"
        return _schedule_page(request, workflow, None, status=403, error=refusal)
    form = ScheduleForm(request.POST if request.method == "POST" else None, workflow=workflow)
    if request.method != "POST":
        return _schedule_page(request, workflow, form)
    try:
        saved = form.save(user=request.user)
    except NotAllowed as error:
        return _schedule_page(request, workflow, form, status=403, error=error.plain)
    if not saved:
        return _schedule_page(request, workflow, form, status=422)
    messages.success(request, f"Override schedule of {workflow.slug} saved.")
    return redirect("workflow-list")
