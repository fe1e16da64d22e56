"""The retention page of a workflow: its rules, what is stored under them, training copies, tombstones."""

import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils import timezone

from approvals.models import RetentionRule, TrainingCopyRequest, Workflow
from approvals.retention.selectors import retention_overview
from approvals.retention.services import retention_rule_change, training_copy_decide, training_copy_request
from approvals.workflows.rights import workflow_visible_to
from audit.models import Artifact, Bucket
from core.errors import ApplicationError, NotFound, ValidationFailed
from core.timeutils import format_window, parse_window
from core.types import AuthenticatedHtmxRequest


def _retention_post(request: AuthenticatedHtmxRequest, workflow: Workflow) -> str:
    """Carry out one form on the retention page. Returns what to tell the person; raises ApplicationError."""
    post = request.POST
    if "rule" in post:
        rule = RetentionRule.objects.filter(workflow=workflow, pk=_int(post["rule"], "rule")).first()
        if rule is None:
            raise NotFound("no such retention rule in this workflow")
        try:
            window = parse_window(post.get("window", ""))
        except ValueError as error:
            raise ValidationFailed([("window", str(error))]) from None
        changed = retention_rule_change(rule=rule, user=request.user, window=window)
        return f"The {changed.kind}/{changed.bucket} rule now keeps artifacts for {format_window(changed.window)}."
    if "artifact" in post:
        try:
            artifact_id = uuid.UUID(post["artifact"])
        except ValueError:
            raise ValidationFailed([("artifact", "is not an artifact id")]) from None
        artifact = Artifact.objects.filter(pk=artifact_id, workflow_id=workflow.pk).first()
        if artifact is None:
            raise NotFound("the artifact has expired or was purged; nothing is left to copy")
        training_copy_request(artifact=artifact, user=request.user, reason=post.get("reason", ""))
        return f"Training copy of the {artifact.kind} requested; the workflow's owner decides."
    if "training_request" in post:
        pk = _int(post["training_request"], "training_request")
        training = TrainingCopyRequest.objects.filter(workflow=workflow, pk=pk).first()
        if training is None:
            raise NotFound("no such training copy request in this workflow")
        approve = post.get("decision") == "approve"
        decided = training_copy_decide(request=training, owner=request.user, approve=approve, note=post.get("note", ""))
        return f"Training copy {'approved and made' if approve else 'refused'} ({decided.artifact_kind})."
    raise ValidationFailed([("form", "nothing to do: send a rule, an artifact or a training request")])


def _int(value: str, field: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValidationFailed([(field, "is not a number")]) from None


@login_required
def workflow_retention(request: AuthenticatedHtmxRequest, slug: str) -> HttpResponse:
    workflow = get_object_or_404(Workflow.objects.select_related("owner", "retention_owner"), slug=slug)
    if not workflow_visible_to(user=request.user, workflow=workflow):
        raise Http404("no such workflow")
    notice, problem, status = "", None, 200
    if request.method == "POST":
        try:
            notice = _retention_post(request, workflow)
        except ApplicationError as error:
            problem, status = error, error.status_code
        else:
            if not request.htmx:
                messages.success(request, notice)
                return redirect("workflow-retention", slug=workflow.slug)
    overview = retention_overview(workflow=workflow)
    context = {
        "workflow": workflow,
        "overview": overview,
        "notice": notice,
        "problem": problem,
        "purge_every": settings.ARTIFACT_PURGE_EVERY_SECONDS,
        "now": timezone.now(),
        "training_kinds": {
            cell.kind
            for row in overview.rows
            for cell in row.cells
            if cell.bucket == Bucket.TRAINING and cell.rule and cell.rule.window
        },
    }
    if request.htmx:
        # htmx swaps only 2xx answers; the partial carries the refusal and its reason.
        return TemplateResponse(request, "approvals/workflow_retention.html#retention", context)
    return TemplateResponse(request, "approvals/workflow_retention.html", context, status=status)
