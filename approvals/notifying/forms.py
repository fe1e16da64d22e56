"""The notice preferences form."""

from typing import Any

from django import forms

from approvals.models import UserNoticePrefs
from approvals.notifying.preferences import EVENT_LABELS, prefs_save
from core.errors import ValidationFailed
from core.forms import PlainForm


class NoticePrefsForm(PlainForm):
    email_on = forms.BooleanField(required=False, label="Email me")
    events = forms.MultipleChoiceField(
        required=False, choices=list(EVENT_LABELS.items()), widget=forms.CheckboxSelectMultiple
    )
    quiet_from = forms.TimeField(required=False)
    quiet_to = forms.TimeField(required=False)
    timezone = forms.CharField(max_length=64)

    @classmethod
    def initial_from(cls, prefs: UserNoticePrefs) -> dict[str, Any]:
        return {
            "email_on": prefs.email_on,
            "events": prefs.events,
            "quiet_from": prefs.quiet_from,
            "quiet_to": prefs.quiet_to,
            "timezone": prefs.timezone,
        }

    def save(self, *, user: Any) -> bool:
        """Save as `user`; False, with what is wrong on the form, when it is not valid."""
        if not self.is_valid():
            return False
        data = self.cleaned_data
        try:
            prefs_save(
                user=user,
                email_on=data["email_on"],
                events=list(data["events"]),
                quiet_from=data["quiet_from"],
                quiet_to=data["quiet_to"],
                tz=data["timezone"].strip(),
            )
        except ValidationFailed as error:
            self.add_refusal(error)
            return False
        return True
