from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from approvals.selectors.overrides import duty_by_workflow
from approvals.selectors.workflows import workflow_list_for_user


@login_required
def workflow_list(request: HttpRequest) -> HttpResponse:
    workflows = list(workflow_list_for_user(user=request.user))
    duties = duty_by_workflow(workflows=workflows, at=timezone.now())
    return TemplateResponse(
        request, "approvals/workflow_list.html", {"rows": [(workflow, duties[workflow.pk]) for workflow in workflows]}
    )
