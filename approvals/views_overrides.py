"""Pages for blocks and overrides: what is blocked, the override form, the morning review, and the
owner's schedule form. They parse input, call one service or selector, and render."""

import zoneinfo
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from approvals.models import WEEKDAYS, Override, OverrideBlock, OverrideScope, Workflow
from approvals.schedule import override_duty
from approvals.selectors.overrides import (
    blocked_overview,
    override_morning_review,
    override_review_row,
    override_target,
    visible_workflows,
)
from approvals.services.overrides import (
    DEFAULT_OVERRIDE_MINUTES,
    override_acknowledge,
    override_flag,
    override_grant,
    override_revoke,
)
from approvals.services.schedules import schedule_editable_by, workflow_schedule_update
from approvals.services.workflows import MAX_OVERRIDE_MINUTES
from core.errors import ApplicationError, NotAllowed, NotFound, ValidationFailed
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


class ScheduleForm(forms.Form):
    day_group = forms.ModelChoiceField(queryset=Group.objects.order_by("name"), required=False, label="Day group")
    days = forms.MultipleChoiceField(
        choices=[(day, day.capitalize()) for day in WEEKDAYS], required=False, widget=forms.CheckboxSelectMultiple
    )
    day_from = forms.TimeField(required=False, label="From", widget=forms.TimeInput(attrs={"type": "time"}))
    day_to = forms.TimeField(required=False, label="To", widget=forms.TimeInput(attrs={"type": "time"}))
    timezone = forms.CharField(label="Time zone", max_length=64)
    after_hours_group = forms.ModelChoiceField(
        queryset=Group.objects.order_by("name"), required=False, label="After-hours group"
    )
    max_minutes = forms.IntegerField(label="Longest override (minutes)", min_value=1, max_value=MAX_OVERRIDE_MINUTES)


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
