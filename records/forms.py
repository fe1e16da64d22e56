"""Forms of the record pages: finding a record by its id, and narrowing its timeline."""

from typing import Any

from django import forms

from audit.forms import DateTimeLocalInput, TimeRangeForm
from audit.selectors import TrailFilters
from core.forms import PlainForm
from records.catalogue import RECORD_TYPES, RecordType
from records.selectors import record_ref_for_id
from records.store import RecordRef


def _a(noun: str) -> str:
    """`noun` with its indefinite article: a customer, an order."""
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


class RecordSearchForm(PlainForm):
    q = forms.CharField(max_length=64, label="Record id", strip=True)

    def clean_q(self) -> RecordRef:
        text = self.cleaned_data["q"]
        ref = record_ref_for_id(text)
        if ref is None:
            prefixes = ", ".join(f"{t.id_prefix}… for {_a(t.label.lower())}" for t in RECORD_TYPES.values())
            raise forms.ValidationError(f"'{text}' is not a record id; ids start with {prefixes}.")
        return ref


class TimelineForm(TimeRangeForm):
    field = forms.ChoiceField(required=False, label="Field")
    actor = forms.CharField(required=False, max_length=200, label="Actor", strip=True)
    workflow = forms.CharField(required=False, max_length=64, label="Workflow", strip=True)
    prompt_version = forms.CharField(required=False, max_length=100, label="Prompt version", strip=True)
    at = forms.DateTimeField(required=False, label="State at", widget=DateTimeLocalInput())

    field_order = ["field", "actor", "workflow", "prompt_version", "since", "until", "at"]

    def __init__(self, *args: Any, record_type: RecordType, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["field"].choices = [("", "any field"), *((f.name, f.label) for f in record_type.fields)]  # type: ignore[attr-defined]
        self.fields["field"].error_messages["invalid_choice"] = (
            f"Choose one of the fields of {_a(record_type.label.lower())}."
        )

    def state_fields(self) -> list[forms.BoundField]:
        return [self["at"]]

    def filter_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name != "at"]

    def filters(self) -> TrailFilters:
        data = self.cleaned_data
        return TrailFilters(
            field=data["field"],
            actor=data["actor"],
            workflow_slug=data["workflow"],
            prompt_version=data["prompt_version"],
            since=data["since"],
            until=data["until"],
        )
