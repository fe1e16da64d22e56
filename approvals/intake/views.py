"""The workflow owner revokes a service account from the workflows page: a confirmation naming the
account, then the revocation."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_http_methods

from approvals.intake.accounts import service_account_of, service_account_revoke_by_owner
from approvals.workflows.rights import owns_workflow, workflow_visible_to
from core.errors import ApplicationError, NotFound
from core.types import AuthenticatedHtmxRequest

CONFIRM = "approvals/service_account_revoke.html"


@login_required
@require_http_methods(["GET", "POST"])
def service_account_revoke(request: AuthenticatedHtmxRequest, slug: str, account_id: int) -> HttpResponse:
    try:
        account = service_account_of(workflow_slug=slug, account_id=account_id)
    except NotFound:
        raise Http404("no such service account") from None
    if not workflow_visible_to(user=request.user, workflow=account.workflow):
        raise Http404("no such service account")
    context = {"account": account, "owner": owns_workflow(user=request.user, workflow=account.workflow)}
    if request.method == "GET":
        return TemplateResponse(request, CONFIRM, context, status=200 if context["owner"] else 403)
    try:
        revoked = service_account_revoke_by_owner(account=account, user=request.user)
    except ApplicationError as error:
        return TemplateResponse(request, CONFIRM, context | {"error": error.plain}, status=error.status_code)
    messages.success(request, f"Service account {revoked} revoked: its token is refused from now on.")
    return redirect("workflow-list")
