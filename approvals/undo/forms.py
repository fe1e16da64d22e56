from django import forms
from django.http import QueryDict

from approvals.models import Batch, UndoScope, Workflow
from approvals.undo.rights import UndoRights
from approvals.undo.selectors import UndoSelection
from core.forms import PlainForm
from core.visibility import ViewerScope


class UndoSelectionForm(PlainForm):
    """What a bulk undo covers: a batch, a workflow since a time, or a prompt version (optionally a window)."""

    scope = forms.ChoiceField(
        choices=UndoScope.choices,
        widget=forms.RadioSelect,
        label="Undo",
        error_messages={"required": "Choose what to undo.", "invalid_choice": "Choose what to undo."},
    )
    batch = forms.IntegerField(required=False, min_value=1, label="Batch number")
    workflow = forms.ModelChoiceField(
        queryset=Workflow.objects.none(),
        required=False,
        to_field_name="slug",
        error_messages={"invalid_choice": "Choose one of the workflows listed."},
    )
    prompt_version = forms.CharField(required=False, max_length=100, label="Prompt version")
    since = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}), label="Since"
    )
    until = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}), label="Until (optional)"
    )

    @classmethod
    def from_request(cls, params: QueryDict, *, rights: UndoRights, scope: ViewerScope) -> "UndoSelectionForm":
        """The form as sent, or opened on the batch or workflow a link names (a batch is checked at once)."""
        if "scope" in params:
            return cls(params, rights=rights, scope=scope)
        if params.get("batch", "").isdigit():
            return cls({"scope": UndoScope.BATCH, "batch": params["batch"]}, rights=rights, scope=scope)
        if params.get("workflow"):
            return cls(
                initial={"scope": UndoScope.WORKFLOW, "workflow": params["workflow"]}, rights=rights, scope=scope
            )
        return cls(initial={"scope": UndoScope.BATCH}, rights=rights, scope=scope)

    def __init__(self, *args: object, rights: UndoRights, scope: ViewerScope, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        # Only workflows in the person's sight are offered or found: a batch of any other reads as none.
        self.in_sight = None if scope.everything else scope.workflow_slugs
        workflows = Workflow.objects.order_by("slug")
        if not rights.everything:
            workflows = workflows.filter(slug__in=rights.workflow_slugs)
        if self.in_sight is not None:
            workflows = workflows.filter(slug__in=self.in_sight)
        self.fields["workflow"].queryset = workflows  # type: ignore[attr-defined]
        self.batch_object: Batch | None = None

    def clean(self) -> dict:
        data = super().clean() or {}
        scope = data.get("scope")
        if scope == UndoScope.BATCH:
            if not data.get("batch"):
                self.add_error_once("batch", "Give the number of the batch to undo.")
            else:
                batches = Batch.objects.select_related("workflow")
                if self.in_sight is not None:
                    batches = batches.filter(workflow__slug__in=self.in_sight)
                self.batch_object = batches.filter(pk=data["batch"]).first()
                if self.batch_object is None:
                    self.add_error("batch", f"There is no batch {data['batch']}.")
        elif scope == UndoScope.WORKFLOW:
            if not data.get("workflow"):
                self.add_error_once("workflow", "Choose the workflow whose changes to undo.")
            if not data.get("since"):
                self.add_error_once("since", "Say from when its changes are undone.")
        elif scope == UndoScope.PROMPT_VERSION and not (data.get("prompt_version") or "").strip():
            self.add_error_once("prompt_version", "Give the prompt version, such as address-update@7.")
        since, until = data.get("since"), data.get("until")
        if since and until and until <= since:
            self.add_error_once("until", "Must be later than Since.")
        return data

    def selection(self) -> UndoSelection:
        data = self.cleaned_data
        scope = data["scope"]
        return UndoSelection(
            scope=scope,
            batch=self.batch_object if scope == UndoScope.BATCH else None,
            workflow=data.get("workflow") if scope == UndoScope.WORKFLOW else None,
            since=data.get("since") if scope != UndoScope.BATCH else None,
            until=data.get("until") if scope != UndoScope.BATCH else None,
            prompt_version=(data.get("prompt_version") or "").strip() if scope == UndoScope.PROMPT_VERSION else "",
            in_sight=self.in_sight,
        )
