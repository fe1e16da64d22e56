from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from audit.forms import PageKeyForm
from core.types import HtmxHttpRequest
from core.visibility import scope_for
from records.catalogue import RECORD_TYPES
from records.forms import RecordSearchForm, TimelineForm
from records.selectors import Timeline, change_list_recent, record_is_known, record_timeline
from records.store import RecordNotFound, RecordRef


@require_GET
@login_required
def record_search(request: HtmxHttpRequest) -> HttpResponse:
    scope = scope_for(request.user)
    form = RecordSearchForm(request.GET or None)
    if form.is_bound and form.is_valid():
        ref: RecordRef = form.cleaned_data["q"]
        if record_is_known(ref=ref, scope=scope):
            return redirect("record-timeline", record_type=ref.record_type, record_id=ref.record_id)
        # The same words whether it does not exist or is out of sight: a search says nothing of what exists.
        form.add_error("q", f"No {ref.record_type} {ref.record_id} in the records or the trail")
    return TemplateResponse(
        request,
        "records/search.html",
        {"form": form, "recent": change_list_recent(scope=scope), "zone": timezone.get_current_timezone_name()},
    )


@require_GET
@login_required
def record_timeline_page(request: HtmxHttpRequest, record_type: str, record_id: str) -> HttpResponse:
    if record_type not in RECORD_TYPES:
        raise Http404(f"unknown record type '{record_type}'")
    ref = RecordRef(record_type, record_id)
    form = TimelineForm(request.GET, record_type=RECORD_TYPES[record_type])
    context = {
        "ref": ref,
        "spec": RECORD_TYPES[record_type],
        "form": form,
        "timeline": _timeline(request, ref, form) if form.is_valid() else None,
        "query": _query_without_page_keys(request),
        "zone": timezone.get_current_timezone_name(),
    }
    template = "records/timeline.html#events" if request.htmx else "records/timeline.html"
    return TemplateResponse(request, template, context)


def _timeline(request: HtmxHttpRequest, ref: RecordRef, form: TimelineForm) -> Timeline:
    older_than, newer_than = PageKeyForm(request.GET).keys()
    try:
        return record_timeline(
            ref=ref,
            filters=form.filters(),
            scope=scope_for(request.user),
            at=form.cleaned_data["at"],
            older_than=older_than,
            newer_than=newer_than,
        )
    except RecordNotFound:
        raise Http404(f"no {ref.record_type} {ref.record_id}") from None


def _query_without_page_keys(request: HtmxHttpRequest) -> str:
    """The page's query string for its paging links, which add their own key."""
    query = request.GET.copy()
    for key in ("older_than", "newer_than"):
        query.pop(key, None)
    return query.urlencode()
