"""What approving asks first, where one press does more than change a few fields of one record:
approving a delete or a merge, and approving a whole group of a batch. An update of one record is
approved without a question, so the keyboard flow of ordinary approvals stays as it is."""

from approvals.models import Action, Batch, Proposal
from approvals.review.groups import GroupKey
from approvals.review.selectors import MergeView
from core.confirmations import Confirmation
from records.catalogue import RECORD_TYPES
from records.store import RecordRef, referring_refs


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _moving(orders: int, tickets: int) -> str:
    if not orders and not tickets:
        return "no orders or tickets move"
    return f"{_counted(orders, 'order')} and {_counted(tickets, 'ticket')} move"


def proposal_confirmation(*, proposal: Proposal, merge: MergeView | None = None) -> Confirmation | None:
    """The question approving `proposal` asks first, or None for an action that asks none. `merge`,
    when the caller has read it, saves reading again which rows a merge moves."""
    if proposal.action == Action.DELETE:
        record_type = RECORD_TYPES.get(proposal.record_type)
        label = record_type.label.lower() if record_type else proposal.record_type
        return Confirmation(
            question=f"Delete {label} {proposal.record_id}?",
            detail=f"Once written, {proposal.record_id} is hidden from every page; Undo restores it.",
            verb="Approve delete",
            answer=Action.DELETE,
        )
    if proposal.action == Action.MERGE:
        if merge is not None:
            orders, tickets = len(merge.moving_orders), len(merge.moving_tickets)
        else:
            moving = [ref.record_type for ref, _ in referring_refs(RecordRef(proposal.record_type, proposal.record_id))]
            orders, tickets = moving.count("order"), moving.count("ticket")
        return Confirmation(
            question=f"Merge {proposal.record_id} into {proposal.merge_into}: {_moving(orders, tickets)}",
            detail=f"{proposal.record_id} is then archived; Undo unmerges them.",
            verb="Approve merge",
            answer=Action.MERGE,
        )
    return None


_GROUP_WORK = {
    Action.ARCHIVE: "archiving {records}",
    Action.DELETE: "deleting {records}",
    Action.MERGE: "{merges}",
}


def group_confirmation(*, batch: Batch, key: GroupKey, count: int) -> Confirmation:
    """The question approving all `count` proposals of a batch's group asks first."""
    if key.action == Action.UPDATE:
        fields = " and ".join(name.replace("_", " ") for name in key.fields) or "field"
        work = f"{count} {fields} change{'' if count == 1 else 's'}"
    else:
        work = _GROUP_WORK[Action(key.action)].format(
            records=_counted(count, "record"), merges=_counted(count, "merge")
        )
    sends = f" Once applied, each also sends: {'; '.join(key.follow_up_labels)}." if key.follow_ups else ""
    return Confirmation(
        question=f"Approve {work} in batch {batch.pk}?",
        detail=f"Each is approved and recorded on its own.{sends}",
        verb=f"Approve {count}",
        answer=str(count),
    )
