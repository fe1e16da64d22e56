"""Undo pages: one change (per-field conflicts, Undo), a bulk undo (dry run, then a job), the job's progress.

They parse input, call one service or selector, and render; HTMX swaps the piece that changes.
"""

from collections.abc import Callable
from uuid import UUID

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from approvals import reasons
from approvals.models import UndoItemOutcome, UndoJob
from approvals.stops.selectors import batch_left_to_hold
from approvals.undo.forms import UndoSelectionForm
from approvals.undo.rights import UndoRights, undo_rights_for_user
from approvals.undo.selectors import (
    UndoSelection,
    change_for_viewer,
    change_undo_view,
    recent_batches_to_undo,
    undo_confirmation,
    undo_confirmed,
    undo_job_for_viewer,
    undo_plan,
)
from approvals.undo.services import undo_change, undo_job_cancel, undo_job_start
from audit.services import Actor
from core.errors import ApplicationError, NotFound
from core.types import AuthenticatedHtmxRequest
from core.visibility import scope_for
from records.models import Change
from records.services.revert import RevertConflict

CONFLICTS_SHOWN = 100
# A dry run's list longer than this (conflicts, follow-ups already sent) starts folded, below its result.
FOLDED_AFTER = 5


CHANGE_UNDO = "approvals/change_undo.html"
BULK = "approvals/undo_bulk.html"
JOB = "approvals/undo_job.html"
CHANGED_SINCE = "The record changed while you looked at it; nothing was written. Here it is now."


@login_required
@require_http_methods(["GET", "POST"])
def change_undo(request: AuthenticatedHtmxRequest, change_id: UUID) -> HttpResponse:
    """What undoing one change does, field by field, and the Undo button."""
    change = _visible(change_for_viewer, change_id=change_id, scope=scope_for(request.user))
    context, status = _undo_now(request, change) if request.method == "POST" else ({}, 200)
    context["view"] = change_undo_view(change=change, rights=undo_rights_for_user(user=request.user))
    template = f"{CHANGE_UNDO}#panel" if request.htmx else CHANGE_UNDO
    return TemplateResponse(request, template, context, status=status)


def _undo_now(request: AuthenticatedHtmxRequest, change: Change) -> tuple[dict, int]:
    """Undo the change as asked: the result, or what stopped it, and the status to answer with."""
    try:
        result = undo_change(
            change=change,
            actor=Actor.user(request.user),
            user=request.user,
            fields=request.POST.getlist("field"),
            reason=request.POST.get("reason", "").strip(),
        )
    except RevertConflict as error:
        return {"error": CHANGED_SINCE}, error.status_code
    except ApplicationError as error:
        return {"error": error.plain}, error.status_code
    return {"result": result}, 200


@login_required
@require_http_methods(["GET", "POST"])
def undo_bulk(request: AuthenticatedHtmxRequest) -> HttpResponse:
    """Choose what to undo, see the dry run, then start the job."""
    rights = undo_rights_for_user(user=request.user)
    if not rights.any:
        return TemplateResponse(request, BULK, {"refused": True}, status=403)
    params = request.POST if request.method == "POST" else request.GET
    scope = scope_for(request.user)
    form = UndoSelectionForm.from_request(params, rights=rights, scope=scope)
    recent = recent_batches_to_undo(rights=rights, scope=scope)
    context: dict = {"form": form, "rights": rights, "reason_rule": reasons.UNDO, "recent": recent}
    if not (form.is_bound and form.is_valid()):
        return TemplateResponse(request, BULK, context, status=422 if form.is_bound else 200)
    if request.method == "GET":
        return _dry_run(request, form.selection(), context)
    return _start(request, form.selection(), context)


def _start(request: AuthenticatedHtmxRequest, selection: UndoSelection, context: dict) -> HttpResponse:
    """Start the undo as confirmed; a form sent without the answer (no JavaScript) is asked the question."""
    if not undo_confirmed(selection=selection, answer=request.POST.get("confirmed")):
        dry_run = request.POST.copy()
        for sent_with_it in ("csrfmiddlewaretoken", "reason", "confirmed"):
            dry_run.pop(sent_with_it, None)
        cancel_url = f"{reverse('undo-bulk')}?{dry_run.urlencode()}"
        return _dry_run(request, selection, context | {"confirming": True, "cancel_url": cancel_url})
    try:
        job = undo_job_start(
            selection=selection,
            actor=Actor.user(request.user),
            user=request.user,
            reason=request.POST.get("reason", ""),
        )
    except ApplicationError as error:
        errors, rest = error.on_fields({"reason"})
        refused = {"error": rest, "errors": errors, "reason": request.POST.get("reason", "")}
        return _dry_run(request, selection, context | refused, status=error.status_code)
    return redirect("undo-job", pk=job.pk)


def _dry_run(
    request: AuthenticatedHtmxRequest, selection: UndoSelection, context: dict, status: int = 200
) -> HttpResponse:
    plan = undo_plan(selection=selection)
    rights: UndoRights = context["rights"]
    context |= {
        "plan": plan,
        "refused_workflows": rights.refused(plan.workflow_slugs),
        "conflicts_shown": plan.conflicts[:CONFLICTS_SHOWN],
        "folded_after": FOLDED_AFTER,
        "confirmation": undo_confirmation(plan=plan),
        "reason": request.POST.get("reason", ""),
    }
    return TemplateResponse(request, BULK, context, status=status)


def _visible[T](find: Callable[..., T], **ids: object) -> T:
    """What `find` finds for this person, or 404: a page they may not see says nothing of what exists."""
    try:
        return find(**ids)
    except NotFound as error:
        raise Http404(error.message) from None


def _job_context(job: UndoJob) -> dict:
    conflicts = list(job.items.filter(outcome=UndoItemOutcome.CONFLICT).order_by("position")[:CONFLICTS_SHOWN])
    failed = list(job.items.filter(outcome=UndoItemOutcome.FAILED).order_by("position")[:CONFLICTS_SHOWN])
    kept = job.finished and job.stop is not None and job.stop.released_at is None and job.batch_id is not None
    return {
        "job": job,
        "conflict_items": conflicts,
        "failed_items": failed,
        "poll_seconds": settings.COUNTERSIGN["UNDO_POLL_SECONDS"],
        "stop_holds": batch_left_to_hold(batch_id=job.batch_id) if kept and job.batch_id else None,
    }


@login_required
def undo_job(request: AuthenticatedHtmxRequest, pk: int) -> HttpResponse:
    """A bulk undo's progress (done / total / conflicts), polled by HTMX while it runs."""
    job = _visible(undo_job_for_viewer, job_id=pk, user=request.user)
    template = f"{JOB}#progress" if request.htmx else JOB
    return TemplateResponse(request, template, _job_context(job))


@login_required
@require_POST
def undo_job_cancel_view(request: AuthenticatedHtmxRequest, pk: int) -> HttpResponse:
    job = _visible(undo_job_for_viewer, job_id=pk, user=request.user)
    context: dict = {}
    status = 200
    try:
        job = undo_job_cancel(job=job, actor=Actor.user(request.user), user=request.user)
    except ApplicationError as error:
        context["error"] = error.plain
        status = error.status_code
    job.refresh_from_db()
    context.update(_job_context(job))
    template = f"{JOB}#progress" if request.htmx else JOB
    return TemplateResponse(request, template, context, status=status)
