"""Reads of proposals for the pipeline that submitted them."""

from dataclasses import dataclass
from datetime import datetime

from approvals.models import Proposal, Workflow
from core.errors import NotFound

POLICY_APPROVER = "policy (write access)"


@dataclass(frozen=True)
class Decision:
    by: str
    at: datetime
    note: str


def proposal_get_for_workflow(*, workflow: Workflow, proposal_id: int) -> Proposal:
    """The proposal, if `workflow` submitted it. Another workflow's proposal is as good as absent."""
    proposal = Proposal.objects.select_related("decided_by").filter(pk=proposal_id, workflow=workflow).first()
    if proposal is None:
        raise NotFound(f"no proposal {proposal_id} for workflow {workflow.slug}", field="proposal_id")
    return proposal


def proposal_decision(*, proposal: Proposal) -> Decision | None:
    """Who decided the proposal, when and why; None while nobody has."""
    if proposal.decided_at is None:
        return None
    if proposal.decided_by is not None:
        by = proposal.decided_by.get_username()
    elif proposal.approved_at is not None:
        by = POLICY_APPROVER
    else:
        by = "system"
    return Decision(by=by, at=proposal.decided_at, note=proposal.decision_note)
