"""The page of one rollback drill's result."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.template.response import TemplateResponse

from approvals.readiness.drills import rollback_drill_report
from core.errors import NotFound
from core.types import AuthenticatedHtmxRequest


@login_required
def rollback_drill_page(request: AuthenticatedHtmxRequest, pk: int) -> HttpResponse:
    try:
        report = rollback_drill_report(drill_id=pk, user=request.user)
    except NotFound:
        raise Http404("no such rollback drill") from None
    return TemplateResponse(request, "readiness/rollback_drill.html", {"report": report})
