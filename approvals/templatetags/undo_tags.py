"""How the undo pages show a record's values: plain words for empty, lists, flags and visibility."""

from typing import Any

from django import template
from django.utils import timezone
from django.utils.dateparse import parse_datetime

register = template.Library()

VISIBILITY = {"archived_at": ("not archived", "archived"), "deleted_at": ("not deleted", "deleted")}


@register.filter
def shown(value: Any, field: str = "") -> str:
    if field in VISIBILITY:
        absent, present = VISIBILITY[field]
        if not value:
            return absent
        moment = parse_datetime(str(value))
        return f"{present} at {timezone.localtime(moment):%Y-%m-%d %H:%M:%S %Z}" if moment else present
    if value is None or value == "":
        return "(empty)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) if value else "(none)"
    return str(value)


@register.filter
def field_label(field: str) -> str:
    return {"archived_at": "archived", "deleted_at": "deleted"}.get(field, field.replace("_", " "))


@register.filter
def followup_kind(kind: str) -> str:
    from approvals.models import FollowUpKind

    return str(FollowUpKind(kind).label) if kind in FollowUpKind.values else kind
