"""Showing trail events on a page: values in words, what an event changed, and links to the pages about it."""

from typing import Any

from django import template
from django.utils import timezone

from audit import links
from audit.actions import ACTIONS
from audit.models import AuditEvent

register = template.Library()


@register.filter
def shown(value: Any) -> str:
    """A plain value as a person reads it."""
    if value is None or value == "":
        return "(empty)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(shown(item) for item in value) if value else "(none)"
    if isinstance(value, dict):
        return "; ".join(f"{str(key).replace('_', ' ')}: {shown(item)}" for key, item in value.items())
    return str(value)


@register.filter
def quoted(value: Any) -> str:
    """A value as it reads inside a sentence: text in quotes, the rest in words."""
    if isinstance(value, str) and value:
        return f"'{value}'"
    return shown(value)


@register.filter
def action_label(action: str) -> str:
    return ACTIONS.get(action, action)


@register.filter
def field_label(name: str) -> str:
    return name.replace("_", " ")


@register.filter
def event_changes(event: AuditEvent) -> list[tuple[str, Any, Any]]:
    """(field, before, after) for each field the event names: its own field, or the keys of its values."""
    if event.field:
        return [(event.field, event.old_value, event.new_value)]
    old = event.old_value if isinstance(event.old_value, dict) else None
    new = event.new_value if isinstance(event.new_value, dict) else None
    if old is None and new is None:
        return []
    old, new = old or {}, new or {}
    names = list(dict.fromkeys([*old, *new]))
    return [(name, old.get(name), new.get(name)) for name in names]


@register.simple_tag
def trail_link(kind: str, *ids: Any) -> str:
    return links.link_for(kind, *ids)


@register.filter
def when(moment: Any) -> str:
    """A moment in the viewer's time zone, to the millisecond."""
    if moment is None:
        return ""
    local = timezone.localtime(moment)
    return local.strftime("%Y-%m-%d %H:%M:%S.") + f"{local.microsecond // 1000:03d}"


@register.filter
def clock(moment: Any) -> str:
    """A moment's time of day in the viewer's time zone, to the second."""
    return timezone.localtime(moment).strftime("%H:%M:%S") if moment else ""


@register.filter
def day(moment: Any) -> str:
    """A moment's date in the viewer's time zone."""
    return timezone.localtime(moment).strftime("%-d %b %Y") if moment else ""
