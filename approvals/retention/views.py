"""The retention page of a workflow: its rules, what is stored under them, training copies, tombstones."""

import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils import timezone

from approvals.models import Workflow
from approvals.retention.selectors import (
    artifact_of,
    retention_change_of,
    retention_overview,
    retention_rule_of,
    training_request_of,
)
from approvals.retention.services import (
    retention_change_countersign,
    retention_change_propose,
    retention_change_withdraw,
    training_copy_decide,
    training_copy_request,
)
from approvals.workflows.retention_rules import retention_waiting_for, shown_window
from approvals.workflows.rights import workflow_visible_to
from audit.services import user_label
from core.errors import ApplicationError, ValidationFailed
from core.timeutils import parse_window
from core.types import AuthenticatedHtmxRequest

RETENTION = "approvals/workflow_retention.html"
# A form of this page only sends such values when it was changed by hand, or is out of date.
RELOAD = "reload the page and try again"


def _propose_change(request: AuthenticatedHtmxRequest, workflow: Workflow) -> str:
    rule = retention_rule_of(workflow=workflow, rule_id=_int(request.POST["rule"], "rule"))
    try:
        window = parse_window(request.POST.get("window", ""))
    except ValueError as error:
        raise ValidationFailed([("window", str(error))]) from None
    change = retention_change_propose(rule=rule, user=request.user, window=window)
    waiting_for = retention_waiting_for(workflow=workflow, proposed_by=request.user)
    return (
        f"Proposed: the {change.kind}/{change.bucket} rule to keep artifacts for {shown_window(change.window_after)}. "
        f"It keeps {shown_window(change.window_before)} until {waiting_for} countersigns."
    )


def _decide_change(request: AuthenticatedHtmxRequest, workflow: Workflow) -> str:
    change_id = _int(request.POST["retention_change"], "retention_change")
    change = retention_change_of(workflow=workflow, change_id=change_id)
    rule = f"{change.kind}/{change.bucket}"
    decision = request.POST.get("decision")
    if decision not in ("countersign", "withdraw"):
        raise ValidationFailed([("decision", f"the form said neither countersign nor withdraw; {RELOAD}")])
    if decision == "countersign":
        retention_change_countersign(change=change, user=request.user)
        return (
            f"Countersigned: the {rule} rule now keeps artifacts for {shown_window(change.window_after)} "
            f"(proposed by {user_label(change.proposed_by)})."
        )
    retention_change_withdraw(change=change, user=request.user)
    done = "Withdrawn" if change.proposed_by_id == request.user.pk else "Rejected"
    return f"{done}: the change to the {rule} rule. It still keeps {shown_window(change.window_before)}."


def _ask_for_training_copy(request: AuthenticatedHtmxRequest, workflow: Workflow) -> str:
    try:
        artifact_id = uuid.UUID(request.POST["artifact"])
    except ValueError:
        raise ValidationFailed([("artifact", f"the form named no artifact; {RELOAD}")]) from None
    artifact = artifact_of(workflow=workflow, artifact_id=artifact_id)
    training_copy_request(artifact=artifact, user=request.user, reason=request.POST.get("reason", ""))
    return f"Training copy of the {artifact.kind} requested; the workflow's owner decides."


def _decide_training_copy(request: AuthenticatedHtmxRequest, workflow: Workflow) -> str:
    training = training_request_of(
        workflow=workflow, request_id=_int(request.POST["training_request"], "training_request")
    )
    approve = request.POST.get("decision") == "approve"
    decided = training_copy_decide(
        request=training, owner=request.user, approve=approve, note=request.POST.get("note", "")
    )
    return f"Training copy {'approved and made' if approve else 'refused'} ({decided.artifact_kind})."


# The retention page carries four forms; the field each one sends says which it is.
_FORMS = (
    ("rule", _propose_change),
    ("retention_change", _decide_change),
    ("artifact", _ask_for_training_copy),
    ("training_request", _decide_training_copy),
)


def _retention_post(request: AuthenticatedHtmxRequest, workflow: Workflow) -> str:
    """Carry out the form sent. Returns what to tell the person; raises ApplicationError."""
    for field, carry_out in _FORMS:
        if field in request.POST:
            return carry_out(request, workflow)
    raise ValidationFailed([("form", f"the form asked for nothing this page does; {RELOAD}")])


def _int(value: str, field: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValidationFailed([(field, f"the form sent no {field.replace('_', ' ')} number; {RELOAD}")]) from None


def _visible_workflow(request: AuthenticatedHtmxRequest, slug: str) -> Workflow:
    workflow = get_object_or_404(
        Workflow.objects.select_related("owner", "retention_owner", "retention_co_owner"), slug=slug
    )
    if not workflow_visible_to(user=request.user, workflow=workflow):
        raise Http404("no such workflow")
    return workflow


@login_required
def workflow_retention(request: AuthenticatedHtmxRequest, slug: str) -> HttpResponse:
    workflow = _visible_workflow(request, slug)
    if request.method != "POST":
        return _retention_page(request, workflow)
    try:
        notice = _retention_post(request, workflow)
    except ApplicationError as error:
        return _retention_page(request, workflow, problem=error)
    if not request.htmx:
        messages.success(request, notice)
        return redirect("workflow-retention", slug=workflow.slug)
    return _retention_page(request, workflow, notice=notice)


def _where_shown(request: AuthenticatedHtmxRequest, problem: ApplicationError | None) -> dict[str, object]:
    """A refusal as the page shows it: a bad window or note next to the one form that sent it (the
    rule or training request it names), with what was typed; the rest on top."""
    if problem is None:
        return {}
    by_field, rest = problem.on_fields({"window", "note"})
    sent = request.POST
    return {
        "problem": rest,
        "window_problem": by_field.get("window", ""),
        "window_rule_id": int(sent["rule"]) if sent.get("rule", "").isdigit() else None,
        "window_sent": sent.get("window", ""),
        "note_problem": by_field.get("note", ""),
        "note_request_id": int(sent["training_request"]) if sent.get("training_request", "").isdigit() else None,
    }


def _retention_page(
    request: AuthenticatedHtmxRequest, workflow: Workflow, *, notice: str = "", problem: ApplicationError | None = None
) -> HttpResponse:
    context = {
        "workflow": workflow,
        "overview": retention_overview(workflow=workflow, viewer=request.user),
        "notice": notice,
        "purge_every": settings.ARTIFACT_PURGE_EVERY_SECONDS,
        "now": timezone.now(),
        **_where_shown(request, problem),
    }
    if request.htmx:
        # htmx swaps only 2xx answers; the partial carries the refusal and its reason.
        return TemplateResponse(request, f"{RETENTION}#retention", context)
    return TemplateResponse(request, RETENTION, context, status=problem.status_code if problem else 200)
