from django import forms
from django.http import QueryDict

from approvals import reasons
from approvals.models import Batch, StopScope, Workflow
from approvals.stops.rights import StopRights
from core.forms import PlainForm


class StopForm(PlainForm):
    scope = forms.ChoiceField(
        choices=StopScope.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose what to stop.", "invalid_choice": "Choose what to stop."},
    )
    workflow = forms.ModelChoiceField(
        queryset=Workflow.objects.none(),
        required=False,
        to_field_name="slug",
        error_messages={"invalid_choice": "Choose one of the workflows listed."},
    )
    batch = forms.ModelChoiceField(
        queryset=Batch.objects.select_related("workflow"),
        required=False,
        widget=forms.NumberInput,
        error_messages={"invalid_choice": "There is no batch with that number."},
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "minlength": reasons.STOP.minimum}),
        max_length=2000,
        error_messages={"required": reasons.STOP.sentence},
    )
    confirm = forms.BooleanField(
        required=True, label="Yes: no write in this scope is applied until a person releases the switch"
    )

    @classmethod
    def opened_from(cls, params: QueryDict, *, rights: StopRights) -> "StopForm":
        """The form as the Stop control opens it: on the batch or workflow it was opened from, else on
        the widest scope these rights reach."""
        workflow = Workflow.objects.filter(slug=params.get("workflow", "")).first()
        batch_id = params.get("batch", "")
        batch = Batch.objects.filter(pk=int(batch_id)).first() if batch_id.isdigit() else None
        scope = StopScope.BATCH if batch else StopScope.WORKFLOW if workflow else ""
        if not scope:
            scope = StopScope.GLOBAL if rights.everything else StopScope.WORKFLOW
        initial = {"scope": scope, "workflow": workflow.slug if workflow else None, "batch": batch}
        return cls(initial=initial, rights=rights)

    def __init__(self, *args: object, rights: StopRights, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        workflows = Workflow.objects.order_by("slug")
        if not rights.everything:
            workflows = workflows.filter(pk__in=rights.workflow_ids)
        self.fields["workflow"].queryset = workflows  # type: ignore[attr-defined]
        if not rights.everything:
            self.fields["scope"].choices = [c for c in StopScope.choices if c[0] != StopScope.GLOBAL]  # type: ignore[attr-defined]

    def clean_reason(self) -> str:
        if reasons.STOP.problem(self.cleaned_data["reason"]):
            raise forms.ValidationError(reasons.STOP.sentence)
        return self.cleaned_data["reason"]

    def clean(self) -> dict:
        data = super().clean() or {}
        scope = data.get("scope")
        if scope == StopScope.WORKFLOW and not data.get("workflow"):
            self.add_error_once("workflow", "Choose the workflow to stop.")
        if scope == StopScope.BATCH and not data.get("batch"):
            self.add_error_once("batch", "Give the number of the batch to stop.")
        return data
