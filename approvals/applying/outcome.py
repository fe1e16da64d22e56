"""What a pipeline is told about its proposal: the same in the API and in callbacks."""

from typing import Any

from approvals.models import Proposal

POLICY_APPROVER = "policy (write access)"


def _decision(proposal: Proposal) -> dict[str, Any] | None:
    """Who decided the proposal (a username, the policy or the system), when and why; None while nobody has."""
    if proposal.decided_at is None:
        return None
    if proposal.decided_by is not None:
        by = proposal.decided_by.get_username()
    elif proposal.approved_at is not None:
        by = POLICY_APPROVER
    else:
        by = "system"
    return {"by": by, "at": proposal.decided_at, "note": proposal.decision_note}


def proposal_outcome(*, proposal: Proposal) -> dict[str, Any]:
    """The proposal as its pipeline reads it: `GET /proposals/{id}` answers this, and every callback carries it."""
    return {
        "id": proposal.pk,
        "status": proposal.status,
        "record_type": proposal.record_type,
        "record_id": proposal.record_id,
        "action": proposal.action,
        "changes": proposal.changes,
        "decision": _decision(proposal),
        "change_id": str(proposal.change_id) if proposal.change_id else None,
    }
