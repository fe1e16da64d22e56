"""The map page and its CSV export."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from approvals.readiness.map import MapFilter, data_map
from approvals.readiness.map_export import map_csv_lines


@login_required
def map_page(request: HttpRequest) -> HttpResponse:
    shown = data_map(user=request.user, map_filter=MapFilter.of(request.GET))
    return TemplateResponse(request, "readiness/map.html", {"map": shown})


@login_required
def map_csv(request: HttpRequest) -> HttpResponse:
    shown = data_map(user=request.user, map_filter=MapFilter.of(request.GET))
    response = HttpResponse("".join(map_csv_lines(shown)), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="countersign-map.csv"'
    return response
