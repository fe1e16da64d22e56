"""Forms that say what is wrong in plain words, once, next to the field.

Django's stock messages ("Select a valid choice. That choice is not one of the available choices.")
name no way out; these say what to do instead. A check across fields adds its message only to a
field that has none yet, so a person never reads two messages about one mistake.
"""

from typing import Any

from django import forms

from core.errors import ApplicationError

_REQUIRED = "Fill this in."
_CHOOSE = "Choose one of the options offered."


def _plain_messages(field: forms.Field) -> dict[str, str]:
    """The messages `field` shows in plain words, by Django's error code."""
    messages = {"required": _REQUIRED, "max_length": "Keep it to %(limit_value)d characters or fewer."}
    if isinstance(field, forms.BooleanField):
        messages["required"] = "Tick this box to go on."
    if isinstance(field, forms.ChoiceField | forms.ModelChoiceField):
        messages |= {"required": "Choose one.", "invalid_choice": _CHOOSE, "invalid_list": _CHOOSE}
    if isinstance(field, forms.IntegerField):
        messages |= {
            "invalid": "Enter a whole number, such as 12.",
            "min_value": "Enter %(limit_value)s or more.",
            "max_value": "Enter %(limit_value)s or less.",
        }
    if isinstance(field, forms.DateTimeField):
        messages["invalid"] = "Enter a date and time, such as 2026-11-27 14:00."
    if isinstance(field, forms.TimeField):
        messages["invalid"] = "Enter a time of day, such as 08:00."
    if isinstance(field, forms.UUIDField):
        messages["invalid"] = "Enter the whole id, such as 0b7c8a4e-5a43-4b3a-9d3e-6d1f2b0e7c11."
    return messages


def _stock_messages(field: forms.Field) -> dict[str, str]:
    """Django's own messages for `field`'s class, as it gathers them."""
    messages: dict[str, str] = {}
    for klass in reversed(type(field).__mro__):
        messages.update(getattr(klass, "default_error_messages", {}))
    return messages


class PlainForm(forms.Form):
    """A form whose fields speak plainly. Words a field was given where it is declared are kept."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            stock = _stock_messages(field)
            for code, text in _plain_messages(field).items():
                if field.error_messages.get(code) == stock.get(code):
                    field.error_messages[code] = text

    def add_refusal(self, error: ApplicationError) -> None:
        """A service's refusal of what this form sent: each problem next to its field, the rest above
        the form, in plain words."""
        by_field, rest = error.on_fields(self.fields)
        for field, message in by_field.items():
            self.add_error(field, message)
        if rest:
            self.add_error(None, rest)

    def add_error_once(self, field: str, message: str) -> None:
        """`message` on `field`, unless the field already says what is wrong with it."""
        if field not in self.errors:
            self.add_error(field, message)
