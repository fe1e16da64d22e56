"""What the admin shows of records, changes, proposals and the trail."""

from typing import Any

from django.http import HttpRequest

from core.visibility import scope_for


class ForThoseWhoSeeEverything:
    """An admin page of record data or the trail, open only to those who see every workflow's trail
    and records (an `audit_trail` group). Being staff or a superuser opens nothing here: the pages of
    the app scope what each person sees, and the admin could not."""

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return scope_for(request.user).everything

    def has_module_permission(self, request: HttpRequest) -> bool:
        return scope_for(request.user).everything
