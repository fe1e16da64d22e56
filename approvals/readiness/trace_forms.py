"""The answer form of a trace drill: one plain text box per question, its hint beneath it."""

from typing import Any

from django import forms

from approvals.readiness.trace_answers import Question
from core.forms import PlainForm

ANSWER_MAX_LENGTH = 2000


class TraceDrillAnswerForm(PlainForm):
    def __init__(self, *args: Any, questions: list[Question], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for question in questions:
            self.fields[question.key] = forms.CharField(
                label=question.label,
                help_text=question.hint,
                max_length=ANSWER_MAX_LENGTH,
                error_messages={"required": "Answer this question."},
                widget=forms.TextInput(
                    attrs={"autocomplete": "off", "spellcheck": "false", "aria-describedby": f"id_{question.key}_hint"}
                ),
            )

    def answers(self) -> dict[str, str]:
        return {key: str(value) for key, value in self.cleaned_data.items()}
