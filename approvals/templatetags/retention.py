from datetime import timedelta

from django import template

from core.timeutils import format_window

register = template.Library()


@register.filter
def window(value: timedelta) -> str:
    """A retention window as people write it in the workflow file: 30s, 15m, 12h, 7d."""
    return format_window(value)
