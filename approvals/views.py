from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods

from approvals.forms import StopForm
from approvals.models import Batch, StopScope, StopSwitch, Workflow
from approvals.selectors.applying import proposals_waiting_on_stop
from approvals.selectors.overrides import duty_by_workflow
from approvals.selectors.stops import stop_rights_for_user
from approvals.selectors.trace import Trace, trace_for_change, trace_for_proposal
from approvals.selectors.undo import workflow_undo_context
from approvals.selectors.workflows import workflow_list_for_user
from approvals.services.stops import stop_engage_by_person, stop_release_by_person
from core.errors import ApplicationError, NotFound
from core.types import AuthenticatedHtmxRequest


@login_required
def workflow_list(request: HttpRequest) -> HttpResponse:
    workflows = list(workflow_list_for_user(user=request.user))
    duties = duty_by_workflow(workflows=workflows, at=timezone.now())
    context = {"rows": [(workflow, duties[workflow.pk]) for workflow in workflows]}
    context.update(workflow_undo_context(user=request.user, workflows=workflows))
    return TemplateResponse(request, "approvals/workflow_list.html", context)


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return "/"


@login_required
@require_http_methods(["GET", "POST"])
def stop_new(request: AuthenticatedHtmxRequest) -> HttpResponse:
    """Engage a stop switch: choose everything, a workflow or a batch, give a reason, confirm."""
    rights = stop_rights_for_user(user=request.user)
    if not rights.any:
        return TemplateResponse(request, "approvals/stop_form.html", {"refused": True}, status=403)
    status = 200
    if request.method == "POST":
        form = StopForm(request.POST, rights=rights)
        if form.is_valid():
            data = form.cleaned_data
            try:
                switch = stop_engage_by_person(
                    user=request.user,
                    scope=data["scope"],
                    reason=data["reason"],
                    workflow=data.get("workflow"),
                    batch=data.get("batch"),
                )
            except ApplicationError as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)
                status = error.status_code
            else:
                messages.success(request, f"Stopped {switch.label}. No write in it is applied until it is released.")
                return redirect(_next_url(request))
        else:
            status = 422
    else:
        workflow = Workflow.objects.filter(slug=request.GET.get("workflow", "")).first()
        batch_id = request.GET.get("batch", "")
        batch = Batch.objects.filter(pk=int(batch_id)).first() if batch_id.isdigit() else None
        scope = StopScope.BATCH if batch else StopScope.WORKFLOW if workflow else ""
        if not scope:
            scope = StopScope.GLOBAL if rights.everything else StopScope.WORKFLOW
        form = StopForm(
            initial={"scope": scope, "workflow": workflow.slug if workflow else None, "batch": batch},
            rights=rights,
        )
    context = {"form": form, "next": _next_url(request), "rights": rights}
    return TemplateResponse(request, "approvals/stop_form.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def stop_release(request: AuthenticatedHtmxRequest, pk: int) -> HttpResponse:
    """Release an engaged switch, after showing what will apply once it is released."""
    switch = get_object_or_404(StopSwitch.objects.select_related("workflow", "batch"), pk=pk)
    if request.method == "POST":
        try:
            stop_release_by_person(switch=switch, user=request.user, note=request.POST.get("note", ""))
        except ApplicationError as error:
            messages.error(request, error.message)
            return redirect(_next_url(request))
        messages.success(request, f"Released {switch.label}. What it held is being applied.")
        return redirect(_next_url(request))
    context = {
        "switch": switch,
        "waiting": proposals_waiting_on_stop(switch=switch),
        "allowed": stop_rights_for_user(user=request.user).may_release(switch),
        "next": _next_url(request),
    }
    return TemplateResponse(request, "approvals/stop_release.html", context)


def _trace_page(request: HttpRequest, trace: Trace, title: str) -> HttpResponse:
    return TemplateResponse(
        request,
        "approvals/trace.html",
        {"trace": trace, "title": title, "zone": timezone.get_current_timezone_name()},
    )


@require_GET
@login_required
def trace_change(request: HttpRequest, change_id: UUID) -> HttpResponse:
    try:
        trace = trace_for_change(change_id=change_id)
    except NotFound as error:
        raise Http404(error.message) from None
    return _trace_page(request, trace, f"Change {change_id}")


@require_GET
@login_required
def trace_proposal(request: HttpRequest, proposal_id: int) -> HttpResponse:
    try:
        trace = trace_for_proposal(proposal_id=proposal_id)
    except NotFound as error:
        raise Http404(error.message) from None
    return _trace_page(request, trace, f"Proposal {proposal_id}")
