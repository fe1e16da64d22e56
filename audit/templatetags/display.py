"""How pages show things in words: people, field names and record values, the same on every page."""

from datetime import timedelta
from typing import Any

from django import template
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from audit.services import user_label
from core.visibility import Withheld

register = template.Library()

# A record's hidden state is kept as the moment it was archived or deleted; people read it as a flag.
VISIBILITY = {"archived_at": ("not archived", "archived"), "deleted_at": ("not deleted", "deleted")}


@register.filter
def person(user: Any) -> str:
    """A person as the trail names them: their full name, else their username ("" for nobody)."""
    return user_label(user)


@register.filter
def shown(value: Any, field: str = "") -> str:
    """A plain value as a person reads it; given its field, a hidden-state moment reads as a flag."""
    if isinstance(value, Withheld):
        return str(value)
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
        return ", ".join(shown(item) for item in value) if value else "(none)"
    if isinstance(value, dict):
        return "; ".join(f"{field_label(str(key))}: {shown(item)}" for key, item in value.items())
    return str(value)


@register.filter
def quoted(value: Any) -> str:
    """A value as it reads inside a sentence: text in quotes, the rest in words."""
    if isinstance(value, str) and value and not isinstance(value, Withheld):
        return f"'{value}'"
    return shown(value)


@register.filter
def field_label(name: str) -> str:
    """A field's name in words; the hidden-state moments by the flag they stand for."""
    return {"archived_at": "archived", "deleted_at": "deleted"}.get(name, name.replace("_", " "))


@register.filter
def minutes(duration: timedelta) -> str:
    """A length of time in whole minutes, as words: "15 minutes", "1 minute"."""
    count = max(1, round(duration.total_seconds() / 60))
    return f"{count} minute{'s' if count != 1 else ''}"
