"""The app's URLs plus a bare Django view: what a request costs with no API framework and no database."""

from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def bare(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b'{"received": %d}' % len(request.body), status=201, content_type="application/json")


urlpatterns = [
    path("bench/bare", bare),
    path("", include("config.urls")),
]
