from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from audit.export import csv_lines, json_chunks
from audit.forms import PageKeyForm, TrailSearchForm
from audit.selectors import audit_event_iter, audit_event_page
from core.types import HtmxHttpRequest


@require_GET
@login_required
def trail(request: HtmxHttpRequest) -> HttpResponse:
    form = TrailSearchForm(request.GET)
    page = None
    if form.is_valid():
        older_than, newer_than = PageKeyForm(request.GET).keys()
        page = audit_event_page(filters=form.filters(), older_than=older_than, newer_than=newer_than)
    template = "audit/trail.html#results" if request.htmx else "audit/trail.html"
    return TemplateResponse(
        request,
        template,
        {
            "form": form,
            "page": page,
            "query": _query_without_page(request),
            "zone": timezone.get_current_timezone_name(),
        },
    )


def _query_without_page(request: HtmxHttpRequest) -> str:
    query = request.GET.copy()
    for key in ("older_than", "newer_than"):
        query.pop(key, None)
    return query.urlencode()


def _export(request: HtmxHttpRequest, fmt: str) -> HttpResponseBase:
    form = TrailSearchForm(request.GET)
    if not form.is_valid():
        problems = "; ".join(f"{name}: {' '.join(str(e) for e in errors)}" for name, errors in form.errors.items())
        return HttpResponse(f"The export was not made. {problems}\n", status=400, content_type="text/plain")
    events = audit_event_iter(filters=form.filters())
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    if fmt == "csv":
        response = StreamingHttpResponse(csv_lines(events), content_type="text/csv; charset=utf-8")
    else:
        response = StreamingHttpResponse(json_chunks(events), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="trail-{stamp}.{fmt}"'
    return response


@require_GET
@login_required
def trail_export_csv(request: HtmxHttpRequest) -> HttpResponseBase:
    return _export(request, "csv")


@require_GET
@login_required
def trail_export_json(request: HtmxHttpRequest) -> HttpResponseBase:
    return _export(request, "json")
