"""Blocked work, overrides and the morning review."""

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from approvals.models import Override
from approvals.overrides.forms import OverrideAsk
from approvals.overrides.selectors import (
    blocked_overview,
    override_morning_review,
    override_review_row,
    visible_workflows,
)
from approvals.overrides.services import override_acknowledge, override_flag, override_grant, override_revoke
from core.errors import ApplicationError, NotFound
from core.types import AuthenticatedHtmxRequest

FORM = "approvals/override_form.html"


def _next_url(request: AuthenticatedHtmxRequest, candidate: str) -> str:
    """Where to go after granting: a page of this site the form came from, else Blocked."""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse("blocked")


# The override form's own fields: a problem with one of them is shown next to it, and only there.
FORM_FIELDS = ("reason", "minutes")


@login_required
def blocked(request: AuthenticatedHtmxRequest) -> HttpResponse:
    overview = blocked_overview(user=request.user)
    template = "approvals/blocked.html#blocks" if request.htmx else "approvals/blocked.html"
    return TemplateResponse(request, template, {"overview": overview})


@login_required
def override_new(request: AuthenticatedHtmxRequest) -> HttpResponse:
    source = request.POST if request.method == "POST" else request.GET
    try:
        ask = OverrideAsk.read(source, user=request.user)
    except NotFound as error:
        return TemplateResponse(request, FORM, {"error": error.plain}, status=404)
    context = ask.context() | {"next": _next_url(request, source.get("next", ""))}
    if request.method != "POST":
        return TemplateResponse(request, FORM, context)
    return _grant(request, ask, context)


def _grant(request: AuthenticatedHtmxRequest, ask: OverrideAsk, context: dict[str, Any]) -> HttpResponse:
    try:
        override = override_grant(
            user=request.user,
            block=ask.block,
            scope=ask.scope,
            reason=ask.reason,
            minutes=ask.minutes(),
            workflow=ask.workflow,
            batch=ask.batch,
            proposal=ask.proposal,
        )
    except ApplicationError as error:
        errors, rest = error.on_fields(FORM_FIELDS)
        context |= {"error": rest, "errors": errors}
        if request.htmx:
            return TemplateResponse(request, f"{FORM}#form", context)
        return TemplateResponse(request, FORM, context, status=error.status_code)
    messages.success(request, _granted(override))
    return HttpResponseClientRedirect(context["next"]) if request.htmx else redirect(context["next"])


@login_required
@require_POST
def override_end(request: AuthenticatedHtmxRequest, pk: int) -> HttpResponse:
    override = get_object_or_404(Override, pk=pk, workflow__in=visible_workflows(user=request.user))
    try:
        override_revoke(override=override, user=request.user, note=request.POST.get("note", ""))
    except ApplicationError as error:
        messages.error(request, error.plain)
    else:
        messages.success(request, f"Override {override.pk} revoked: the block is back.")
    if request.htmx:
        return HttpResponseClientRedirect(reverse("blocked"))
    return redirect("blocked")


@login_required
def override_review(request: AuthenticatedHtmxRequest) -> HttpResponse:
    return TemplateResponse(
        request, "approvals/override_review.html", {"review": override_morning_review(user=request.user)}
    )


def _granted(override: Override) -> str:
    minutes = int((override.expires_at - override.granted_at).total_seconds() // 60)
    return (
        f"Override granted: {override.get_block_display().lower()} lifted for {override.target_label} "
        f"for {minutes} minutes."
    )


_VERDICTS: dict[str, Callable[..., Override]] = {"flag": override_flag, "acknowledge": override_acknowledge}


@login_required
@require_POST
def override_verdict(request: AuthenticatedHtmxRequest, pk: int, verdict: str) -> HttpResponse:
    override = get_object_or_404(Override, pk=pk, workflow__in=visible_workflows(user=request.user))
    note = request.POST.get("note", "")
    try:
        _VERDICTS[verdict](override=override, user=request.user, note=note)
    except ApplicationError as refused:
        error = refused.plain
    else:
        error = ""
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect("override-review")
    row = override_review_row(user=request.user, override_id=override.pk)
    context = {"row": row, "error": error, "note": note if error else ""}
    return TemplateResponse(request, "approvals/override_review.html#row", context)
