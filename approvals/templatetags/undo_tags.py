"""How the undo pages name a follow-up's kind."""

from django import template

register = template.Library()


@register.filter
def followup_kind(kind: str) -> str:
    from approvals.models import FollowUpKind

    return str(FollowUpKind(kind).label) if kind in FollowUpKind.values else kind
