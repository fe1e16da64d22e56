from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from approvals.selectors.workflows import workflow_list_for_user


@login_required
def workflow_list(request: HttpRequest) -> HttpResponse:
    return TemplateResponse(
        request, "approvals/workflow_list.html", {"workflows": workflow_list_for_user(user=request.user)}
    )
