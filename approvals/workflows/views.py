"""The workflows page and the override schedule editor."""

import zoneinfo
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils import timezone

from approvals.intake.accounts import service_accounts_by_workflow
from approvals.models import Workflow
from approvals.overrides.selectors import duty_by_workflow
from approvals.overrides.views import _field_errors
from approvals.undo.selectors import workflow_undo_context
from approvals.workflows.forms import ScheduleForm
from approvals.workflows.rights import owns_workflow
from approvals.workflows.schedule import override_duty
from approvals.workflows.selectors import workflow_list_for_user
from approvals.workflows.services import schedule_editable_by, workflow_schedule_update
from core.errors import ApplicationError, NotAllowed
from core.types import AuthenticatedHtmxRequest


@login_required
def workflow_list(request: HttpRequest) -> HttpResponse:
    workflows = list(workflow_list_for_user(user=request.user))
    duties = duty_by_workflow(workflows=workflows, at=timezone.now())
    accounts = service_accounts_by_workflow(workflow_ids=[workflow.pk for workflow in workflows])
    context = {
        "rows": [(workflow, duties[workflow.pk], accounts.get(workflow.pk, [])) for workflow in workflows],
        "owned_ids": {workflow.pk for workflow in workflows if owns_workflow(user=request.user, workflow=workflow)},
    }
    context.update(workflow_undo_context(user=request.user, workflows=workflows))
    return TemplateResponse(request, "approvals/workflow_list.html", context)


@login_required
def workflow_schedule(request: AuthenticatedHtmxRequest, slug: str) -> HttpResponse:
    workflow = get_object_or_404(
        Workflow.objects.select_related("override_day_group", "override_after_hours_group"), slug=slug
    )
    if not schedule_editable_by(workflow=workflow, user=request.user):
        refusal = f"only the owner of {workflow.slug} changes its override schedule"
        return TemplateResponse(
            request, "approvals/workflow_schedule.html", {"workflow": workflow, "error": refusal}, status=403
        )
    initial = {
        "day_group": workflow.override_day_group,
        "days": workflow.override_days,
        "day_from": workflow.override_day_from,
        "day_to": workflow.override_day_to,
        "timezone": workflow.override_timezone,
        "after_hours_group": workflow.override_after_hours_group,
        "max_minutes": workflow.override_max_minutes,
    }
    form = ScheduleForm(request.POST if request.method == "POST" else None, initial=initial)
    context: dict[str, Any] = {
        "workflow": workflow,
        "form": form,
        "duty": override_duty(workflow=workflow, at=timezone.now()),
        "zones": sorted(zoneinfo.available_timezones()),
    }
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            workflow_schedule_update(
                workflow=workflow,
                user=request.user,
                day_group=data["day_group"],
                days=data["days"],
                day_from=data["day_from"],
                day_to=data["day_to"],
                timezone_name=data["timezone"].strip(),
                after_hours_group=data["after_hours_group"],
                max_minutes=data["max_minutes"],
            )
        except NotAllowed as error:
            context["error"] = error.message
            return TemplateResponse(request, "approvals/workflow_schedule.html", context, status=403)
        except ApplicationError as error:
            for field, text in _field_errors(error).items():
                form.add_error(field if field in form.fields else None, text)
            context["error"] = error.message
        else:
            messages.success(request, f"Override schedule of {workflow.slug} saved.")
            return redirect("workflow-list")
    status = 422 if request.method == "POST" else 200
    return TemplateResponse(request, "approvals/workflow_schedule.html", context, status=status)
