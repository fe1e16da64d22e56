"""The notice preferences page: what a person is emailed of their groups' events, and when not."""

import zoneinfo

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse

from approvals.notifying.forms import NoticePrefsForm
from approvals.notifying.preferences import prefs_for
from core.types import AuthenticatedHtmxRequest


@login_required
def notice_preferences(request: AuthenticatedHtmxRequest) -> HttpResponse:
    prefs = prefs_for(user=request.user)
    if request.method == "POST":
        form = NoticePrefsForm(request.POST)
        if form.save(user=request.user):
            messages.success(request, "Notice preferences saved.")
            return redirect("notice-preferences")
        status = 422
    else:
        form, status = NoticePrefsForm(initial=NoticePrefsForm.initial_from(prefs)), 200
    context = {"form": form, "email": request.user.email, "zones": sorted(zoneinfo.available_timezones())}
    return TemplateResponse(request, "approvals/notice_preferences.html", context, status=status)
