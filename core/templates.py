"""Django's template engine, with every rendered page passed once through `core.text.escape_refused`.

Text stored before the API refused such characters, or read from a record store that holds some,
may carry a lone surrogate, which UTF-8 cannot encode: a page printing it could not be sent at all.
Escaping what a template rendered, rather than each value a template prints, covers every page,
partial and include whichever filter printed the value (or none), and shows a bidirectional control
as its escape instead of letting it reorder what a reviewer reads. Stored values stay as they are.
"""

from typing import Any

from django.http import HttpRequest
from django.template.backends.django import DjangoTemplates, Template

from core.text import escape_refused


class EscapedTemplate(Template):
    def render(self, context: Any = None, request: HttpRequest | None = None) -> str:
        return escape_refused(super().render(context, request))


class EscapingDjangoTemplates(DjangoTemplates):
    """Configured as the project's BACKEND in TEMPLATES; everything else is Django's own."""

    def from_string(self, template_code: str) -> EscapedTemplate:
        return EscapedTemplate(super().from_string(template_code).template, self)

    def get_template(self, template_name: str) -> EscapedTemplate:
        return EscapedTemplate(super().get_template(template_name).template, self)
