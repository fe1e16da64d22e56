"""Showing trail events on a page: what an event changed, when, and links to the pages about it."""

from typing import Any

from django import template
from django.template.defaultfilters import truncatechars
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from audit import links
from audit.actions import ACTIONS
from audit.models import AuditEvent
from audit.reading import EventValue, OutsideWindow, decider, event_values, flagged_field, outside_window
from audit.templatetags.display import field_label, shown

register = template.Library()


@register.filter
def action_label(action: str) -> str:
    return ACTIONS.get(action, action)


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


_MUTED_DASH = mark_safe('<span class="muted">—</span>')  # noqa: S308 - a constant


def _linked(url: str, text: object) -> SafeString:
    return format_html('<a href="{}">{}</a>', url, text) if url else format_html("{}", text)


def _value_line(value: EventValue) -> SafeString:
    """One field of an event: before → after, or, where the event does not hold the value before,
    only what was proposed; with what the AI saw when that is news."""
    if value.before_known:
        line = format_html("<del>{}</del> → <ins>{}</ins>", shown(value.before), shown(value.after))
    else:
        line = format_html("proposed <ins>{}</ins>", shown(value.after))
    if value.saw_differs:
        line = format_html('{} <span class="muted">(the AI saw {})</span>', line, shown(value.saw))
    return format_html('<div><span class="field-name">{}</span>: {}</div>', field_label(value.field), line)


def _flagged_line(event: AuditEvent, flagged: str) -> SafeString:
    record_type, _, name = flagged.rpartition(".")
    kind = event.details.get("kind", "artifact") if isinstance(event.details, dict) else "artifact"
    return format_html(
        '<div>flagged <span class="field-name">{}</span> in its {}</div>',
        f"{record_type} {field_label(name)}".strip(),
        kind,
    )


def _outside_line(window: OutsideWindow, values: SafeString) -> SafeString:
    """What an edit made outside Countersign changed, and the window in which it was made."""
    line = format_html(
        "<div>Changed outside Countersign between {} and {}</div>", when(window.seen_at), when(window.found_at)
    )
    if not values:
        values = format_html(
            '<div class="muted">version {} → {}; no field Countersign reads changed</div>',
            window.version_seen,
            window.version_found,
        )
    return format_html("{}{}", line, values)


def _event_row(event: AuditEvent, trail_url: str) -> SafeString:
    record = _MUTED_DASH
    if event.record_id:
        record = _linked(links.link_for("record", event.record_type, event.record_id), event.record_id)
    values = format_html_join("", "{}", ((_value_line(value),) for value in event_values(event)))
    if flagged := flagged_field(event):
        values = _flagged_line(event, flagged)
    if window := outside_window(event):
        values = _outside_line(window, values)
    who = format_html(
        '{} <span class="muted">({})</span>',
        event.actor_label or event.actor_kind,
        event.get_actor_kind_display().lower(),
    )
    if decided := decider(event):
        at = format_html(" at {}", clock(event.decided_at)) if event.decided_at else SafeString("")
        who = format_html("{}<br>{} {}{}", who, decided.verb, decided.label, at)
    source = format_html("{}", event.workflow_slug or "—")
    if event.model_name:
        source = format_html("{}<br>{} {}", source, event.model_name, event.model_version)
    if event.prompt_version:
        source = format_html("{}<br>prompt {}", source, event.prompt_version)
    if event.batch_id:
        source = format_html(
            '{}<br><a href="{}?batch={}">batch {}</a>', source, trail_url, event.batch_id, event.batch_id
        )
    trace = SafeString("")
    if event.change_id:
        url = links.link_for("change", event.change_id)
        trace = _linked(url, "Trace change") if url else format_html("<code>{}</code>", event.change_id)
        trace = format_html("{}<br>", trace)
    if event.proposal_id:
        url = links.link_for("proposal", event.proposal_id)
        label = f"Proposal {event.proposal_id}" if url else f"proposal {event.proposal_id}"
        trace = format_html("{}{}", trace, _linked(url, label))
    return format_html(
        '<tr id="event-{}"><td class="nowrap"><time datetime="{}">{}</time><br><span class="muted">#{}</span></td>'
        '<td><strong>{}</strong><br><span class="muted">{}</span></td><td class="nowrap">{}</td><td>{}</td>'
        '<td>{}</td><td>{}</td><td>{}</td><td class="nowrap">{}</td></tr>\n',
        event.pk,
        event.occurred_at.isoformat(),
        when(event.occurred_at),
        event.pk,
        event.action,
        action_label(event.action),
        record,
        values or _MUTED_DASH,
        who,
        source,
        truncatechars(event.reason or "—", 200),
        trace,
    )


@register.simple_tag
def event_rows(events: list[AuditEvent]) -> SafeString:
    """The rows of an event table. Built here rather than in a template: a trail page shows many."""
    trail_url = reverse("trail")
    return format_html_join("", "{}", ((_event_row(event, trail_url),) for event in events))
