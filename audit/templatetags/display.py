"""How pages show things in words: people, field names and record values, the same on every page."""

from typing import Any

from django import template

from audit.services import user_label

register = template.Library()


@register.filter
def person(user: Any) -> str:
    """A person as the trail names them: their full name, else their username ("" for nobody)."""
    return user_label(user)
