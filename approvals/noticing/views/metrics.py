"""`/metrics`: Prometheus' scrape, answered only to the metrics token."""

from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from approvals.noticing.metrics_rights import MetricsAccess, metrics_access
from approvals.noticing.prometheus import CONTENT_TYPE, metrics_exposition

PLAIN = "text/plain; charset=utf-8"


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    access = metrics_access(authorization=request.headers.get("Authorization", ""))
    if access is MetricsAccess.OFF:
        return HttpResponse("Not found: metrics are served only once METRICS_TOKEN is set.\n", PLAIN, status=404)
    if access is MetricsAccess.REFUSED:
        response = HttpResponse(
            "Metrics need the token: send Authorization: Bearer <METRICS_TOKEN>.\n", PLAIN, status=401
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(metrics_exposition(), content_type=CONTENT_TYPE)
