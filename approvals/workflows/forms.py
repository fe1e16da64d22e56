from django import forms
from django.contrib.auth.models import Group, User

from approvals.models import WEEKDAYS, Workflow
from approvals.workflows.schedule import MAX_OVERRIDE_MINUTES, OverrideSchedule
from approvals.workflows.services import workflow_schedule_update
from core.errors import ValidationFailed
from core.forms import PlainForm


class ScheduleForm(PlainForm):
    """A workflow's override schedule as its owner edits it; the schedule itself says what is valid."""

    day_group = forms.ModelChoiceField(queryset=Group.objects.order_by("name"), required=False, label="Day group")
    days = forms.MultipleChoiceField(
        choices=[(day, day.capitalize()) for day in WEEKDAYS], required=False, widget=forms.CheckboxSelectMultiple
    )
    day_from = forms.TimeField(required=False, label="From", widget=forms.TimeInput(attrs={"type": "time"}))
    day_to = forms.TimeField(required=False, label="To", widget=forms.TimeInput(attrs={"type": "time"}))
    timezone = forms.CharField(label="Time zone", max_length=64)
    after_hours_group = forms.ModelChoiceField(
        queryset=Group.objects.order_by("name"), required=False, label="After-hours group"
    )
    max_minutes = forms.IntegerField(label="Longest override (minutes)", min_value=1, max_value=MAX_OVERRIDE_MINUTES)

    def __init__(self, data: dict | None = None, *, workflow: Workflow) -> None:
        """The form for `workflow` (loaded with its two override groups), showing the schedule it holds."""
        self.workflow = workflow
        initial = {
            "day_group": workflow.override_day_group,
            "days": workflow.override_days,
            "day_from": workflow.override_day_from,
            "day_to": workflow.override_day_to,
            "timezone": workflow.override_timezone,
            "after_hours_group": workflow.override_after_hours_group,
            "max_minutes": workflow.override_max_minutes,
        }
        super().__init__(data, initial=initial)

    def schedule(self) -> OverrideSchedule:
        data = self.cleaned_data
        return OverrideSchedule(
            day_group=data["day_group"].name if data["day_group"] else None,
            days=tuple(data["days"]),
            day_from=data["day_from"],
            day_to=data["day_to"],
            timezone=data["timezone"].strip(),
            after_hours_group=data["after_hours_group"].name if data["after_hours_group"] else None,
            max_minutes=data["max_minutes"],
        )

    def save(self, *, user: User) -> bool:
        """Save the schedule as `user`; False, with what is wrong on the form, when it is not valid.

        Raises NotAllowed when `user` may not change it.
        """
        if not self.is_valid():
            return False
        try:
            workflow_schedule_update(workflow=self.workflow, user=user, schedule=self.schedule())
        except ValidationFailed as error:
            self.add_refusal(error)
            return False
        return True
