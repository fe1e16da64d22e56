from django.http import HttpRequest

from core.navigation import entries


def nav(request: HttpRequest) -> dict:
    return {"nav_entries": entries()}
