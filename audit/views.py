from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from audit.export import csv_lines, json_chunks
from audit.forms import EXPORT_WINDOW_DAYS, PageKeyForm, TrailExportForm, TrailSearchForm
from audit.selectors import audit_event_page
from audit.services import EXPORT_REFUSED, Actor, trail_export
from core.types import HtmxHttpRequest
from core.visibility import scope_for


@require_GET
@login_required
def trail(request: HtmxHttpRequest) -> HttpResponse:
    scope = scope_for(request.user)
    form = TrailSearchForm(request.GET)
    page = None
    if form.is_valid():
        older_than, newer_than = PageKeyForm(request.GET).keys()
        page = audit_event_page(filters=form.filters(), scope=scope, older_than=older_than, newer_than=newer_than)
    template = "audit/trail.html#results" if request.htmx else "audit/trail.html"
    context: dict[str, object] = {
        "form": form,
        "page": page,
        "query": _query_without_page(request),
        "may_export": scope.may_export,
    }
    if scope.may_export:
        context |= {"export_form": TrailExportForm(request.GET), "export_window_days": EXPORT_WINDOW_DAYS}
    return TemplateResponse(request, template, context | {"zone": timezone.get_current_timezone_name()})


def _query_without_page(request: HtmxHttpRequest) -> str:
    query = request.GET.copy()
    for key in ("older_than", "newer_than"):
        query.pop(key, None)
    return query.urlencode()


def _problems_in_words(form: TrailExportForm) -> str:
    """What is wrong with an export's query, each problem named by the label of its field on the trail
    page (a file answer has no field to put it next to)."""
    return " ".join(
        f"{form.fields[name].label}: {error}" if name in form.fields else str(error)
        for name, errors in form.errors.items()
        for error in errors
    )


def _refused(text: str, status: int) -> HttpResponse:
    return HttpResponse(f"The export was not made. {text}\n", status=status, content_type="text/plain")


def _export(request: HtmxHttpRequest, file_format: str) -> HttpResponseBase:
    scope = scope_for(request.user)
    if not scope.may_export:
        return _refused(EXPORT_REFUSED, 403)
    form = TrailExportForm(request.GET)
    if not form.is_valid():
        return _refused(_problems_in_words(form), 400)
    export = trail_export(filters=form.filters(), scope=scope, actor=Actor.user(request.user), file_format=file_format)
    rows = csv_lines(export.events) if file_format == "csv" else json_chunks(export.events)
    content_type = "text/csv; charset=utf-8" if file_format == "csv" else "application/json"
    response = StreamingHttpResponse(rows, content_type=content_type)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="trail-{stamp}.{file_format}"'
    return response


@require_GET
@login_required
def trail_export_csv(request: HtmxHttpRequest) -> HttpResponseBase:
    return _export(request, "csv")


@require_GET
@login_required
def trail_export_json(request: HtmxHttpRequest) -> HttpResponseBase:
    return _export(request, "json")
