"""Engaging and releasing the stop switch from the browser."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from approvals.applying.selectors import proposals_waiting_on_stop
from approvals.models import StopSwitch
from approvals.stops.forms import StopForm
from approvals.stops.rights import StopRights, stop_rights_for_user
from approvals.stops.selectors import stop_for_viewer
from approvals.stops.services import stop_engage_by_person, stop_release_by_person
from core.errors import ApplicationError, NotFound
from core.types import AuthenticatedHtmxRequest
from core.visibility import scope_for

STOP_FORM = "approvals/stop_form.html"


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
        return TemplateResponse(request, STOP_FORM, {"refused": True}, status=403)
    if request.method == "GET":
        return _stop_form(request, StopForm.opened_from(request.GET, rights=rights), rights)
    form = StopForm(request.POST, rights=rights)
    if not form.is_valid():
        return _stop_form(request, form, rights, status=422)
    return _engage(request, form, rights)


def _engage(request: AuthenticatedHtmxRequest, form: StopForm, rights: StopRights) -> HttpResponse:
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
        form.add_refusal(error)
        return _stop_form(request, form, rights, status=error.status_code)
    messages.success(request, f"Stopped {switch.label}. No write in it is applied until it is released.")
    return redirect(_next_url(request))


def _stop_form(
    request: AuthenticatedHtmxRequest, form: StopForm, rights: StopRights, status: int = 200
) -> HttpResponse:
    context = {"form": form, "next": _next_url(request), "rights": rights}
    return TemplateResponse(request, STOP_FORM, context, status=status)


def _switch_in_sight(request: AuthenticatedHtmxRequest, pk: int) -> StopSwitch:
    """The switch, or 404 for one this person may not see: the page says nothing of what exists."""
    try:
        return stop_for_viewer(stop_id=pk, scope=scope_for(request.user))
    except NotFound as error:
        raise Http404(error.message) from None


@login_required
@require_http_methods(["GET", "POST"])
def stop_release(request: AuthenticatedHtmxRequest, pk: int) -> HttpResponse:
    """Release an engaged switch, after showing what will apply once it is released. Someone without
    the release right of its scope is told why, and a POST from them is refused with 403."""
    switch = _switch_in_sight(request, pk)
    refusal = stop_rights_for_user(user=request.user).release_refusal(switch)
    if request.method == "POST" and not refusal:
        try:
            stop_release_by_person(switch=switch, user=request.user, note=request.POST.get("note", ""))
        except ApplicationError as error:
            messages.error(request, error.plain)
            return redirect(_next_url(request))
        messages.success(request, f"Released {switch.label}. What it held is being applied.")
        return redirect(_next_url(request))
    context = {
        "switch": switch,
        "waiting": proposals_waiting_on_stop(switch=switch),
        "refusal": refusal,
        "next": _next_url(request),
    }
    status = 403 if refusal and request.method == "POST" and switch.released_at is None else 200
    return TemplateResponse(request, "approvals/stop_release.html", context, status=status)
