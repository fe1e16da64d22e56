from django import forms
from django.contrib.auth.models import Group

from approvals.models import WEEKDAYS
from approvals.workflows.loading import MAX_OVERRIDE_MINUTES


class ScheduleForm(forms.Form):
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
