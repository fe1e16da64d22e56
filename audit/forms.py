"""The trail's search form: turns query-string input into `TrailFilters`, naming the field of any mistake."""

from datetime import timedelta
from typing import Any

from django import forms

from audit.selectors import TrailFilters
from core.forms import PlainForm


class DateTimeLocalInput(forms.DateTimeInput):
    """The browser's date-and-time picker, to the second, read in the viewer's time zone."""

    input_type = "datetime-local"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs={"step": "1", **(attrs or {})}, format="%Y-%m-%dT%H:%M:%S")


class TimeRangeForm(PlainForm):
    since = forms.DateTimeField(required=False, label="From", widget=DateTimeLocalInput())
    until = forms.DateTimeField(required=False, label="Before", widget=DateTimeLocalInput())

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since >= until:
            self.add_error_once("until", "Must be later than From.")
        return cleaned


class TrailSearchForm(TimeRangeForm):
    record = forms.CharField(required=False, max_length=64, label="Record id", strip=True)
    change = forms.UUIDField(required=False, label="Change id")
    proposal = forms.IntegerField(required=False, min_value=1, label="Proposal id")
    batch = forms.IntegerField(required=False, min_value=1, label="Batch id")
    workflow = forms.CharField(required=False, max_length=64, label="Workflow", strip=True)
    prompt_version = forms.CharField(required=False, max_length=100, label="Prompt version", strip=True)
    approver = forms.CharField(required=False, max_length=200, label="Approver", strip=True)

    field_order = ["record", "change", "proposal", "batch", "workflow", "prompt_version", "approver", "since", "until"]

    def filters(self) -> TrailFilters:
        """The filters of a valid form."""
        data = self.cleaned_data
        return TrailFilters(
            record_id=data["record"],
            change_id=data["change"],
            proposal_id=data["proposal"],
            batch_id=data["batch"],
            workflow_slug=data["workflow"],
            prompt_version=data["prompt_version"],
            approver=data["approver"],
            since=data["since"],
            until=data["until"],
        )


EXPORT_WINDOW_DAYS = 31


class TrailExportForm(TrailSearchForm):
    """The trail search as an export: one file covers the window it names, at most 31 days, so no
    export hands over the whole trail at once."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        limit = f"one file covers at most {EXPORT_WINDOW_DAYS} days."
        if since is None:
            self.add_error_once("since", f"Give the start of the window to export; {limit}")
        if until is None:
            self.add_error_once("until", f"Give the end of the window to export; {limit}")
        if since and until and until - since > timedelta(days=EXPORT_WINDOW_DAYS):
            self.add_error_once("until", f"The window is longer than {EXPORT_WINDOW_DAYS} days; {limit}")
        return cleaned


class PageKeyForm(forms.Form):
    """Which page of a keyset-paginated list: the event id to continue after, in either direction."""

    older_than = forms.IntegerField(required=False, min_value=1)
    newer_than = forms.IntegerField(required=False, min_value=1)

    def keys(self) -> tuple[int | None, int | None]:
        """(older_than, newer_than); a malformed key shows the first page."""
        if not self.is_valid():
            return None, None
        return self.cleaned_data["older_than"], self.cleaned_data["newer_than"]
