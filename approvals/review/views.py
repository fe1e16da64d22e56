"""The review screens: the queue, one proposal, its decisions, and matched groups of a batch.

With HTMX a view answers with the partial that changes (`page.html#partial`); without it, the same
URL answers with the whole page, and a decision is a form POST followed by a redirect.
"""

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import push_url, trigger_client_event

from approvals import reasons
from approvals.applying.selectors import proposal_apply_wait_reason
from approvals.models import Action, Batch, Proposal, ProposalStatus
from approvals.review.confirmations import group_confirmation, proposal_confirmation
from approvals.review.groups import GroupKey, batch_for_review, batch_groups, batch_page, group_sample
from approvals.review.queue import (
    AGE_CHOICES,
    FIELD_CHOICES,
    QueueFilters,
    claim_of,
    proposal_next_to_decide,
    queue_counts,
    review_queue_page,
)
from approvals.review.rights import Reviewable, decide_right, proposal_for_viewer, reviewable_workflows
from approvals.review.selectors import ReviewDetail, proposal_review_detail
from approvals.review.services import (
    GroupResult,
    Outcome,
    proposal_approve,
    proposal_claim,
    proposal_force_apply,
    proposal_group_decide,
    proposal_reject,
)
from approvals.review.shadow import shadow_panel, shadow_verdict_give
from approvals.review.sight import SETTLE_MS, group_shown, proposal_shown, sight_token
from approvals.waiting.discard import BatchStanding, batch_discard_by_person, discard_confirmation, discard_summary
from approvals.waiting.rights import discard_refusal
from core.errors import ApplicationError, NotFound, ValidationFailed
from core.types import AuthenticatedHtmxRequest

QUEUE = "approvals/review_queue.html"
DETAIL = "approvals/review_detail.html"
BATCH = "approvals/review_batch.html"
GROUP = "approvals/review_group.html"
FORCE = "approvals/review_force.html"
DECIDED_EVENT = "proposalDecided"


def _wants_partial(request: AuthenticatedHtmxRequest) -> bool:
    return bool(request.htmx) and not request.htmx.history_restore_request


def _page_number(raw: str | None) -> int:
    return int(raw) if raw and raw.isdigit() and len(raw) < 9 else 1


@login_required
def review_queue(request: AuthenticatedHtmxRequest) -> HttpResponse:
    filters, problems = QueueFilters.from_params(request.GET)
    page = review_queue_page(user=request.user, filters=filters, page=_page_number(request.GET.get("page")))
    context = {
        "page": page,
        "counts": page.counts,
        "filters": filters,
        "qs": filters.querystring(),
        "problems": problems,
        "actions": Action.choices,
        "field_choices": FIELD_CHOICES,
        "age_choices": AGE_CHOICES,
    }
    return TemplateResponse(request, f"{QUEUE}#queue" if _wants_partial(request) else QUEUE, context)


@login_required
def review_counts(request: AuthenticatedHtmxRequest) -> HttpResponse:
    filters, _ = QueueFilters.from_params(request.GET)
    context = {
        "counts": queue_counts(user=request.user, filters=filters),
        "filters": filters,
        "qs": filters.querystring(),
    }
    return TemplateResponse(request, f"{QUEUE}#counts", context)


def _visible(request: AuthenticatedHtmxRequest, proposal_id: int, reviewable: Reviewable | None = None) -> Proposal:
    try:
        return proposal_for_viewer(user=request.user, proposal_id=proposal_id, reviewable=reviewable)
    except NotFound:
        raise Http404("No such proposal") from None


def _detail_context(
    detail: ReviewDetail, filters: QueueFilters, *, flash: str, error: ApplicationError | None, user: User
) -> dict[str, Any]:
    # A reason too short is said next to the reason box; any other refusal on top.
    reason_error, rest = error.on_fields({"reason"}) if error else ({}, "")
    return {
        "detail": detail,
        "p": detail.proposal,
        "shown": sight_token(shown=proposal_shown(detail.proposal), user=user) if detail.can_decide else "",
        "settle_ms": SETTLE_MS,
        "confirmation": proposal_confirmation(proposal=detail.proposal, merge=detail.merge)
        if detail.can_approve
        else None,
        "claim": detail.claim,
        "filters": filters,
        "qs": filters.querystring(),
        "flash": flash,
        "error": rest,
        "reason_error": reason_error.get("reason", ""),
        "reason_rule": reasons.REJECTION,
        "shadow": shadow_panel(user=user, proposal=detail.proposal, reviewable=detail.reviewable),
    }


def _render_detail(
    request: AuthenticatedHtmxRequest,
    proposal: Proposal,
    filters: QueueFilters,
    *,
    flash: str = "",
    error: ApplicationError | None = None,
    status: int = 200,
    reviewable: Reviewable | None = None,
    confirming: bool = False,
) -> TemplateResponse:
    detail = proposal_review_detail(user=request.user, proposal=proposal, filters=filters, reviewable=reviewable)
    context = _detail_context(detail, filters, flash=flash, error=error, user=request.user)
    # Asked again without JavaScript: the question is the page's second step, the note kept.
    context |= {"confirming": confirming, "note": request.POST.get("note", "") if confirming else ""}
    if _wants_partial(request):
        return TemplateResponse(request, f"{DETAIL}#proposal", context, status=status)
    context["counts"] = queue_counts(user=request.user, filters=filters, reviewable=detail.reviewable)
    return TemplateResponse(request, DETAIL, context, status=status)


@login_required
def review_detail(request: AuthenticatedHtmxRequest, proposal_id: int) -> HttpResponse:
    filters, _ = QueueFilters.from_params(request.GET)
    reviewable = reviewable_workflows(user=request.user)
    proposal = _visible(request, proposal_id, reviewable)
    return _render_detail(request, proposal, filters, reviewable=reviewable)


@login_required
@require_POST
def review_claim(request: AuthenticatedHtmxRequest, proposal_id: int) -> HttpResponse:
    proposal = _visible(request, proposal_id)
    try:
        proposal = proposal_claim(proposal=proposal, reviewer=request.user)
    except ApplicationError:
        return HttpResponse(status=204)
    context = {"p": proposal, "claim": claim_of(proposal=proposal, user=request.user)}
    return TemplateResponse(request, f"{DETAIL}#claim", context)


def _revision(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 9:
        raise ValidationFailed([("revision", "must be a whole number")])
    return int(raw)


def _flash(outcome: Outcome) -> str:
    proposal = outcome.proposal
    what = f"{proposal.get_action_display().lower()} of {proposal.record_id}"
    if outcome.first_of_two:
        return f"Recorded your approval of the {what}; a second person must approve it too."
    if outcome.approved:
        return f"Approved the {what}; it will be applied shortly."
    return f"Rejected the {what}."


def _decide(request: AuthenticatedHtmxRequest, proposal_id: int, *, approve: bool) -> HttpResponse:
    filters, _ = QueueFilters.from_params(request.GET)
    proposal = Proposal.objects.filter(pk=proposal_id).select_related("workflow", "batch").first()
    if proposal is None:
        raise Http404("No such proposal")
    if approve and _unconfirmed(request, proposal):
        return _render_detail(request, _visible(request, proposal_id), filters, confirming=True)
    try:
        outcome = _take_decision(request, proposal, approve=approve)
    except ApplicationError as error:
        # Someone who may not see the proposal learns nothing of it; the refusal is on the trail.
        refreshed = _visible(request, proposal_id)
        return _render_detail(request, refreshed, filters, error=error, status=error.status_code)
    return _after_decision(request, outcome, filters)


def _unconfirmed(request: AuthenticatedHtmxRequest, proposal: Proposal) -> bool:
    """An approval its page asks about first (a delete, a merge), sent without the answer by someone who
    may give it: the page asks. Anyone else's is refused by the decision itself, on the trail."""
    confirmation = proposal_confirmation(proposal=proposal)
    if confirmation is None or confirmation.given(request.POST):
        return False
    return proposal.status == ProposalStatus.PENDING and decide_right(user=request.user, proposal=proposal).may


def _take_decision(request: AuthenticatedHtmxRequest, proposal: Proposal, *, approve: bool) -> Outcome:
    revision, shown = _revision(request.POST.get("revision")), request.POST.get("shown", "")
    if approve:
        note = request.POST.get("note", "")
        return proposal_approve(
            proposal=proposal, reviewer=request.user, note=note, expected_revision=revision, shown_token=shown
        )
    reason = request.POST.get("reason", "")
    return proposal_reject(
        proposal=proposal, reviewer=request.user, reason=reason, expected_revision=revision, shown_token=shown
    )


def _after_decision(request: AuthenticatedHtmxRequest, outcome: Outcome, filters: QueueFilters) -> HttpResponse:
    """The next proposal to decide (or the queue, when none is left), with what was just done."""
    flash = _flash(outcome)
    reviewable = reviewable_workflows(user=request.user)
    next_id = proposal_next_to_decide(user=request.user, filters=filters, after=outcome.proposal, reviewable=reviewable)
    qs = filters.querystring()
    next_url = (reverse("review-detail", args=[next_id]) if next_id else reverse("review-queue")) + qs
    if not request.htmx:
        messages.success(request, flash)
        return redirect(next_url)
    if next_id is not None:
        following = _visible(request, next_id, reviewable)
        response: HttpResponse = _render_detail(request, following, filters, flash=flash, reviewable=reviewable)
    else:
        response = TemplateResponse(request, f"{DETAIL}#done", {"flash": flash, "qs": qs, "filters": filters})
    push_url(response, next_url)
    trigger_client_event(response, DECIDED_EVENT, {"id": outcome.proposal.pk, "status": outcome.proposal.status})
    return response


@login_required
@require_POST
def review_approve(request: AuthenticatedHtmxRequest, proposal_id: int) -> HttpResponse:
    return _decide(request, proposal_id, approve=True)


@login_required
@require_POST
def review_reject(request: AuthenticatedHtmxRequest, proposal_id: int) -> HttpResponse:
    return _decide(request, proposal_id, approve=False)


@login_required
@require_POST
def review_shadow_verdict(request: AuthenticatedHtmxRequest, proposal_id: int) -> HttpResponse:
    """A reviewer's "would approve" or "would reject" on a shadowed proposal; nothing is decided or written."""
    filters, _ = QueueFilters.from_params(request.GET)
    proposal = _visible(request, proposal_id)
    try:
        given = shadow_verdict_give(
            proposal_id=proposal.pk,
            user=request.user,
            verdict=request.POST.get("verdict", ""),
            reason=request.POST.get("reason", ""),
        )
    except ApplicationError as error:
        return _render_detail(request, _visible(request, proposal_id), filters, error=error, status=error.status_code)
    flash = f"Recorded: you {given.get_verdict_display().lower()} this proposal. Nothing is written in shadow."
    if not request.htmx:
        messages.success(request, flash)
        return redirect(reverse("review-detail", args=[proposal.pk]) + filters.querystring())
    return _render_detail(request, _visible(request, proposal_id), filters, flash=flash)


@login_required
@require_http_methods(["GET", "POST"])
def review_force_apply(request: AuthenticatedHtmxRequest, proposal_id: int) -> HttpResponse:
    """A proposal in conflict: the three values side by side, and (under a conflict override) the
    deliberate choice to write the proposed value over the current one, confirmed."""
    proposal = _visible(request, proposal_id)
    if request.method == "GET":
        return _force_page(request, proposal)
    try:
        forced = proposal_force_apply(
            proposal=proposal,
            user=request.user,
            expected_version=_confirmed_version(request.POST),
            note=request.POST.get("note", ""),
            shown_token=request.POST.get("shown", ""),
        )
    except ApplicationError as refused:
        return _force_page(request, _visible(request, proposal_id), error=refused)
    waits = proposal_apply_wait_reason(proposal=forced)
    text = f"Proposal {forced.pk} will be written over {forced.record_id}'s current values shortly."
    messages.success(request, text + (f" It waits for now: {waits}." if waits else ""))
    return redirect("trace-proposal", proposal_id=forced.pk)


def _confirmed_version(post: QueryDict) -> int:
    """The record version the person looked at, once they ticked the box that they mean to write over it."""
    if post.get("confirm") != "yes":
        raise ValidationFailed([("confirm", "tick the box to confirm you mean to write over the record")])
    version = _revision(post.get("version"))
    if version is None:
        raise ValidationFailed([("version", "is required: the record version you looked at")])
    return version


def _force_page(
    request: AuthenticatedHtmxRequest, proposal: Proposal, error: ApplicationError | None = None
) -> HttpResponse:
    detail = proposal_review_detail(user=request.user, proposal=proposal, filters=QueueFilters())
    context = {
        "detail": detail,
        "p": detail.proposal,
        "error": error.plain if error else "",
        "shown": sight_token(shown=proposal_shown(detail.proposal), user=request.user),
        "settle_ms": SETTLE_MS,
    }
    return TemplateResponse(request, FORCE, context, status=error.status_code if error else 200)


def _batch(request: AuthenticatedHtmxRequest, batch_id: int) -> Batch:
    try:
        return batch_for_review(user=request.user, batch_id=batch_id)
    except NotFound:
        raise Http404("No such batch") from None


def _batch_page(request: AuthenticatedHtmxRequest, batch_id: int, *, partial: bool = False) -> dict[str, Any]:
    try:
        page = batch_page(user=request.user, batch_id=batch_id, with_groups=not partial)
    except NotFound:
        raise Http404("No such batch") from None
    context: dict[str, Any] = {
        "batch": page.batch,
        "groups": page.groups,
        "progress": page.progress,
        "poll_seconds": settings.COUNTERSIGN["BATCH_POLL_SECONDS"],
        "stop_batch": page.batch,  # the Stop control offers to halt this batch
    }
    if not partial:
        standing = BatchStanding.of(page.progress.by_status)
        may_discard = page.batch.discarded_at is None and not discard_refusal(user=request.user, batch=page.batch)
        context |= {
            "standing": standing,
            "discard": discard_confirmation(batch=page.batch, standing=standing) if may_discard else None,
            "discard_rule": reasons.DISCARD,
            "batch_url": reverse("review-batch", args=[page.batch.pk]),
        }
    return context


@login_required
def review_batch(request: AuthenticatedHtmxRequest, batch_id: int) -> HttpResponse:
    """A batch's progress and matched groups; with HTMX, its progress alone, asked again while writes run."""
    partial = _wants_partial(request)
    context = _batch_page(request, batch_id, partial=partial)
    return TemplateResponse(request, f"{BATCH}#progress" if partial else BATCH, context)


@login_required
@require_POST
def review_batch_discard(request: AuthenticatedHtmxRequest, batch_id: int) -> HttpResponse:
    """Discard a batch, once the person has answered the question for the pending proposals they saw."""
    context = _batch_page(request, batch_id)
    batch, reason = context["batch"], request.POST.get("reason", "")
    if context["discard"] is not None and not context["discard"].given(request.POST):
        return TemplateResponse(request, BATCH, context | {"confirming": True, "reason": reason})
    try:
        discarded = batch_discard_by_person(batch=batch, user=request.user, reason=reason)
    except ApplicationError as error:
        errors, rest = error.on_fields({"reason"})
        refused = {"discard_error": rest, "reason_error": errors.get("reason", ""), "reason": reason}
        return TemplateResponse(request, BATCH, context | refused, status=error.status_code)
    messages.success(request, discard_summary(discarded))
    return redirect("review-batch", batch_id=batch.pk)


def _ids(raw: str) -> list[int]:
    parts = [part for part in raw.split(",") if part]
    if not all(part.isdigit() and len(part) < 19 for part in parts):
        raise ValidationFailed([("ids", "must be proposal numbers separated by commas")])
    return [int(part) for part in parts]


@login_required
@require_http_methods(["GET", "POST"])
def review_group(request: AuthenticatedHtmxRequest, batch_id: int) -> HttpResponse:
    batch = _batch(request, batch_id)
    try:
        key = GroupKey.from_params(request.GET)
    except ValidationFailed as problem:
        messages.error(request, f"That group link is not valid: {problem.plain}")
        return redirect("review-batch", batch_id=batch.pk)
    if request.method == "GET":
        return _group_page(request, batch, key)
    decision = request.POST.get("decision")
    if decision == "approve" and not _group_confirmed(request, batch, key):
        return _group_page(request, batch, key, confirming=True)
    try:
        result = _decide_group(request, batch, key, decision)
    except ApplicationError as refusal:
        return _group_page(request, batch, key, error=refusal)
    messages.success(request, _group_summary(decision, result))
    return redirect("review-batch", batch_id=batch.pk)


def _group_confirmed(request: AuthenticatedHtmxRequest, batch: Batch, key: GroupKey) -> bool:
    """Whether the person answered the question approving as many proposals as their page showed asks."""
    try:
        count = len(_ids(request.POST.get("ids", "")))
    except ValidationFailed:
        return True  # the decision itself refuses these ids, naming the field
    return group_confirmation(batch=batch, key=key, count=count).given(request.POST)


def _decide_group(request: AuthenticatedHtmxRequest, batch: Batch, key: GroupKey, decision: str | None) -> GroupResult:
    if decision not in ("approve", "reject"):
        raise ValidationFailed([("decision", "must be approve or reject")])
    return proposal_group_decide(
        batch=batch,
        key=key,
        reviewer=request.user,
        approve=decision == "approve",
        expected_ids=_ids(request.POST.get("ids", "")),
        note=request.POST.get("note", ""),
        reason=request.POST.get("reason", ""),
        shown_token=request.POST.get("shown", ""),
    )


def _group_summary(decision: str | None, result: GroupResult) -> str:
    summary = f"{'Approved' if decision == 'approve' else 'Rejected'} {len(result.decided)} proposals one by one."
    if result.first_of_two:
        summary += f" Recorded the first of two approvals on {len(result.first_of_two)}."
    if result.refused:
        summary += f" {len(result.refused)} were refused: {result.refused[0][1]}."
    return summary


def _group_page(
    request: AuthenticatedHtmxRequest,
    batch: Batch,
    key: GroupKey,
    error: ApplicationError | None = None,
    confirming: bool = False,
) -> HttpResponse:
    groups = batch_groups(user=request.user, batch=batch)
    group = groups.group(key)
    context = {
        "confirmation": group_confirmation(batch=batch, key=key, count=group.count) if group else None,
        "confirming": confirming,
        "note": request.POST.get("note", "") if confirming else "",
        "batch": batch,
        "key": key,
        "group": group,
        "sample": group_sample(groups=groups, group=group) if group else [],
        "ids": ",".join(str(pk) for pk in group.ids) if group else "",
        "shown": sight_token(shown=group_shown(batch_id=batch.pk, ids=group.ids), user=request.user) if group else "",
        "settle_ms": SETTLE_MS,
        "error": error.plain if error else "",
        "reason_rule": reasons.REJECTION,
    }
    return TemplateResponse(request, GROUP, context, status=error.status_code if error else 200)
