"""Showing times in the viewer's zone, absolute and relative, and how overdue a pending proposal looks."""

from datetime import datetime
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from approvals.waiting.sla import age_band
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


@register.simple_tag
def age_badge(proposal: Any) -> SafeString:
    """A pending proposal's age as a badge, coloured by its workflow's SLA when it has one (the
    workflow comes loaded with the proposal), by fixed bands otherwise."""
    band = age_band(created_at=proposal.created_at, decide_within=proposal.workflow.decide_within, now=timezone.now())
    age = humanize_age(proposal.created_at)
    if not band.note:
        return format_html('<span class="age-badge {}">{}</span>', band.css, age)
    return format_html(
        '<span class="age-badge {}" title="{}">{}<span class="visually-hidden">, {}</span></span>',
        band.css,
        band.note,
        age,
        band.note,
    )
