"""What a pipeline is told about its proposal: its decision, the same in the API and in callbacks."""

from dataclasses import dataclass
from datetime import datetime

from approvals.models import Proposal

POLICY_APPROVER = "policy (write access)"


@dataclass(frozen=True)
class Decision:
    by: str
    at: datetime
    note: str


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
