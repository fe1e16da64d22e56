from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseServerError
from django.shortcuts import redirect
from django.template import loader

from core.navigation import entries, landing_for

# What is sent when even the page below cannot be drawn: it needs nothing at all.
BARE_SERVER_ERROR = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Something went wrong · Countersign</title>'
    "</head><body><h1>Something went wrong on our side</h1><p>It has been logged. Go back and try again, or "
    '<a href="/">start again</a>.</p></body></html>'
)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send people to the page with work for them (see `core.navigation.landing_for`)."""
    return redirect(landing_for(request.user))


def server_error(request: HttpRequest) -> HttpResponse:
    """The 500 page, in the app frame with its menu. Drawn from the navigation alone, without the
    request: the database, the session or the user may be what failed, so none of them is read."""
    body: str
    try:
        body = loader.render_to_string("500.html", {"nav_entries": entries(), "frame_without_user": True})
    except Exception:
        body = BARE_SERVER_ERROR
    return HttpResponseServerError(body)
