"""Blocked work, overrides and the morning review."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from approvals import reasons
from approvals.models import Override, OverrideBlock, OverrideScope
from approvals.overrides.selectors import (
    blocked_overview,
    override_morning_review,
    override_review_row,
    override_target,
    visible_workflows,
)
from approvals.overrides.services import (
    DEFAULT_OVERRIDE_MINUTES,
    override_acknowledge,
    override_flag,
    override_grant,
    override_revoke,
)
from approvals.workflows.schedule import override_duty
from core.errors import ApplicationError, NotFound, ValidationFailed
from core.types import AuthenticatedHtmxRequest


def _next_url(request: AuthenticatedHtmxRequest, candidate: str) -> str:
    """Where to go after granting: a page of this site the form came from, else Blocked."""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse("blocked")


def _field_errors(error: ApplicationError) -> dict[str, str]:
    if isinstance(error, ValidationFailed):
        return {field: text for field, text in error.problems}
    return {}


@login_required
def blocked(request: AuthenticatedHtmxRequest) -> HttpResponse:
    overview = blocked_overview(user=request.user)
    template = "approvals/blocked.html#blocks" if request.htmx else "approvals/blocked.html"
    return TemplateResponse(request, template, {"overview": overview})


@login_required
def override_new(request: AuthenticatedHtmxRequest) -> HttpResponse:
    source = request.POST if request.method == "POST" else request.GET
    block, scope = source.get("block", ""), source.get("scope", "")
    try:
        workflow, batch, proposal = override_target(
            user=request.user, block=block, scope=scope, target_id=source.get("target", "")
        )
    except NotFound as error:
        return TemplateResponse(request, "approvals/override_form.html", {"error": error.message}, status=404)
    context: dict[str, Any] = {
        "block_kind": block,
        "block_label": OverrideBlock(block).label if block in OverrideBlock.values else block,
        "scope": scope,
        "scope_label": OverrideScope(scope).label if scope in OverrideScope.values else scope,
        "target": source.get("target", ""),
        "workflow": workflow,
        "batch": batch,
        "proposal": proposal,
        "duty": override_duty(workflow=workflow, at=timezone.now()),
        "max_minutes": workflow.override_max_minutes,
        "reason": source.get("reason", ""),
        "reason_rule": reasons.OVERRIDE,
        "minutes": source.get("minutes", str(min(DEFAULT_OVERRIDE_MINUTES, workflow.override_max_minutes))),
        "errors": {},
        "next": _next_url(request, source.get("next", "")),
    }
    if request.method != "POST":
        return TemplateResponse(request, "approvals/override_form.html", context)
    try:
        minutes_text = source.get("minutes", "").strip()
        if minutes_text and not minutes_text.isdigit():
            raise ValidationFailed([("minutes", "must be a whole number of minutes, 1 or more")])
        override = override_grant(
            user=request.user,
            block=block,
            scope=scope,
            reason=source.get("reason", ""),
            minutes=int(minutes_text) if minutes_text else None,
            workflow=workflow,
            batch=batch,
            proposal=proposal,
        )
    except ApplicationError as error:
        context |= {"error": error.message, "errors": _field_errors(error)}
        if request.htmx:
            return TemplateResponse(request, "approvals/override_form.html#form", context)
        return TemplateResponse(request, "approvals/override_form.html", context, status=error.status_code)
    messages.success(
        request,
        f"Override granted: {override.get_block_display().lower()} lifted for {override.target_label} "
        f"for {int((override.expires_at - override.granted_at).total_seconds() // 60)} minutes.",
    )
    if request.htmx:
        return HttpResponseClientRedirect(context["next"])
    return redirect(context["next"])


@login_required
@require_POST
def override_end(request: AuthenticatedHtmxRequest, pk: int) -> HttpResponse:
    override = get_object_or_404(Override, pk=pk, workflow__in=visible_workflows(user=request.user))
    try:
        override_revoke(override=override, user=request.user, note=request.POST.get("note", ""))
    except ApplicationError as error:
        messages.error(request, error.message)
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


@login_required
@require_POST
def override_verdict(request: AuthenticatedHtmxRequest, pk: int, verdict: str) -> HttpResponse:
    override = get_object_or_404(Override, pk=pk, workflow__in=visible_workflows(user=request.user))
    note = request.POST.get("note", "")
    error: ApplicationError | None = None
    try:
        if verdict == "flag":
            override_flag(override=override, user=request.user, note=note)
        else:
            override_acknowledge(override=override, user=request.user, note=note)
    except ApplicationError as refused:
        error = refused
    if not request.htmx:
        if error:
            messages.error(request, error.message)
        return redirect("override-review")
    row = override_review_row(user=request.user, override_id=override.pk)
    return TemplateResponse(
        request,
        "approvals/override_review.html#row",
        {"row": row, "error": error.message if error else "", "note": note if error else ""},
    )
