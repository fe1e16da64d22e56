"""The forms of the five-step review page: tick a step, choose the change to walk, mark the fields,
decide. Each says what is wrong next to the field it is about."""

from typing import Any

from django import forms

from approvals.models import ReviewDecision
from approvals.readiness.review_selectors import MarkedField
from approvals.readiness.steps import MARKS, TICKED_BY_BUTTON, TICKS
from core.forms import PlainForm


class TickForm(PlainForm):
    step = forms.ChoiceField(choices=[(key, label) for key, label in TICKS.items() if key in TICKED_BY_BUTTON])
    note = forms.CharField(required=False, max_length=1000)


class WalkForm(PlainForm):
    change = forms.UUIDField(error_messages={"required": "Choose the applied change to walk through."})


class MarksForm(PlainForm):
    """One choice per field, named by "record_type.field", prefilled with the review's mark or else
    with what the file grants."""

    def __init__(self, *args: Any, fields: list[MarkedField], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for marked in fields:
            self.fields[marked.row.key] = forms.ChoiceField(
                choices=list(MARKS.items()),
                initial=marked.marked or marked.row.file_access,
                label=f"{marked.row.record_type} {marked.row.label}",
                error_messages={"required": "Choose no access, read, suggest or write."},
            )

    def marks(self) -> dict[str, str]:
        """What was sent, field by field, for the service to check (it names each refusal)."""
        return {name: str(self.data.get(name, "")) for name in self.fields}


class DecideForm(PlainForm):
    decision = forms.ChoiceField(choices=ReviewDecision.choices, widget=forms.RadioSelect)
    actions = forms.CharField(required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 3}))
