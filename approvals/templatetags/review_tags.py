"""Showing times in the viewer's zone, absolute and relative, and how overdue a pending proposal looks."""

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from core.timeutils import humanize_age

register = template.Library()


@register.simple_tag
def moment(value: datetime | None) -> SafeString | str:
    """`27 Nov 2026 14:02 (3m ago)` in the viewer's zone, with the exact time on hover."""
    if value is None:
        return "—"
    local = timezone.localtime(value)
    now = timezone.now()
    relative = f"{humanize_age(value, now=now)} ago" if value <= now else f"in {humanize_age(now, now=value)}"
    return format_html(
        '<time datetime="{}" title="{}">{} <span class="ago">({})</span></time>',
        value.isoformat(),
        local.strftime("%Y-%m-%d %H:%M:%S %Z"),
        local.strftime("%d %b %Y %H:%M"),
        relative,
    )


@register.filter
def age(value: datetime | None) -> str:
    return humanize_age(value) if value else ""


@register.filter
def age_class(value: datetime | None) -> str:
    """How overdue a pending proposal looks: fresh under an hour, late after four, overdue after a day."""
    if value is None:
        return ""
    hours = (timezone.now() - value).total_seconds() / 3600
    if hours >= 24:
        return "is-overdue"
    if hours >= 4:
        return "is-late"
    return "is-fresh" if hours < 1 else ""
