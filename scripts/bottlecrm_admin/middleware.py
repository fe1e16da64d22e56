"""Staff requests to the admin see the demo organisation's rows (the row-level security context)."""

import os
from collections.abc import Callable

from django.db import connection
from django.http import HttpRequest, HttpResponse

ORGANISATION = os.environ.get("BOTTLECRM_ADMIN_ORG", "Countersign demo")


class DemoOrganisationForAdmin:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not (request.path.startswith("/admin/") and request.user.is_authenticated and request.user.is_staff):
            return self.get_response(request)
        from common.models import Org

        org = Org.objects.filter(name=ORGANISATION).values_list("id", flat=True).first()
        if org is None:
            return self.get_response(request)
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('app.current_org', %s, false)", [str(org)])
        try:
            return self.get_response(request)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('app.current_org', '', false)")
