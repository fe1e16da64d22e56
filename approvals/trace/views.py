"""A change's or proposal's trace page."""

from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from approvals.trace.selectors import Trace, trace_for_change, trace_for_proposal
from core.errors import NotFound
from core.visibility import scope_for


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
        trace = trace_for_change(change_id=change_id, scope=scope_for(request.user))
    except NotFound as error:
        raise Http404(error.message) from None
    return _trace_page(request, trace, f"Change {change_id}")


@require_GET
@login_required
def trace_proposal(request: HttpRequest, proposal_id: int) -> HttpResponse:
    try:
        trace = trace_for_proposal(proposal_id=proposal_id, scope=scope_for(request.user))
    except NotFound as error:
        raise Http404(error.message) from None
    return _trace_page(request, trace, f"Proposal {proposal_id}")
