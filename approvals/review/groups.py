"""A batch's proposals grouped by what they change, for deciding a group at once."""

from collections import defaultdict
from dataclasses import dataclass
from urllib.parse import urlencode

from django.contrib.auth.models import AbstractBaseUser
from django.http import QueryDict

from approvals.models import Action, Batch, Proposal, ProposalStatus
from approvals.requesters import requester_reason
from approvals.review.rights import user_may_review
from approvals.review.selectors import FieldRow, field_rows, stale_fields
from approvals.workflows.rights import Viewer, workflows_reviewable_by
from core.errors import NotFound, ValidationFailed
from records.store import RecordRef, RecordState, fetch_refs

GROUP_SAMPLE = 5


@dataclass(frozen=True)
class GroupKey:
    """What the proposals of a group share, beside their batch (and so their workflow)."""

    action: str
    fields: tuple[str, ...]
    prompt_version: str

    @classmethod
    def of(cls, proposal: Proposal) -> "GroupKey":
        return cls(proposal.action, tuple(sorted(proposal.changes or {})), proposal.prompt_version)

    @classmethod
    def from_params(cls, params: QueryDict | dict[str, str]) -> "GroupKey":
        action = str(params.get("action") or "")
        if action not in Action.values:
            raise ValidationFailed([("action", f"must be one of {', '.join(Action.values)}")])
        fields = tuple(sorted(name for name in str(params.get("fields") or "").split(",") if name))
        prompt_version = str(params.get("prompt_version") or "")
        if not prompt_version:
            raise ValidationFailed([("prompt_version", "is required")])
        return cls(action, fields, prompt_version)

    def querystring(self) -> str:
        return "?" + urlencode(
            {"action": self.action, "fields": ",".join(self.fields), "prompt_version": self.prompt_version}
        )


@dataclass
class ProposalGroup:
    key: GroupKey
    ids: list[int]

    @property
    def count(self) -> int:
        return len(self.ids)


@dataclass
class BatchGroups:
    batch: Batch
    groups: list[ProposalGroup]
    stale_ids: list[int]
    own_count: int
    states: dict[RecordRef, RecordState]

    def group(self, key: GroupKey) -> ProposalGroup | None:
        return next((group for group in self.groups if group.key == key), None)


def batch_groups(*, user: AbstractBaseUser, batch: Batch) -> BatchGroups:
    """The batch's pending proposals that `user` can decide, grouped by action, fields and prompt
    version. Stale ones (the record no longer holds what the AI saw) are set apart, never grouped."""
    if not user_may_review(user=user, workflow=batch.workflow):
        raise NotFound(f"no batch {batch.pk} that you may review")
    pending = list(
        Proposal.objects.filter(batch=batch, status=ProposalStatus.PENDING)
        .exclude(approvals__user_id=user.pk)
        .select_related("workflow", "batch")
        .order_by("created_at", "id")
    )
    decidable = [proposal for proposal in pending if not requester_reason(proposal=proposal, user=user)]
    states = fetch_refs(RecordRef(p.record_type, p.record_id) for p in decidable)
    grouped: dict[GroupKey, list[int]] = defaultdict(list)
    stale_ids = []
    for proposal in decidable:
        state = states.get(RecordRef(proposal.record_type, proposal.record_id))
        if stale_fields(proposal=proposal, state=state):
            stale_ids.append(proposal.pk)
        else:
            grouped[GroupKey.of(proposal)].append(proposal.pk)
    groups = sorted(
        (ProposalGroup(key, ids) for key, ids in grouped.items()),
        key=lambda group: (-group.count, group.key.action, group.key.fields, group.key.prompt_version),
    )
    return BatchGroups(batch, groups, stale_ids, len(pending) - len(decidable), states)


@dataclass
class GroupSampleItem:
    proposal: Proposal
    title: str
    rows: list[FieldRow]


def group_sample(*, groups: BatchGroups, group: ProposalGroup, size: int = GROUP_SAMPLE) -> list[GroupSampleItem]:
    proposals = Proposal.objects.filter(pk__in=group.ids[:size]).select_related("workflow").order_by("created_at", "id")
    items = []
    for proposal in proposals:
        state = groups.states.get(RecordRef(proposal.record_type, proposal.record_id))
        items.append(
            GroupSampleItem(proposal, state.title if state else "", field_rows(proposal=proposal, state=state))
        )
    return items


def batch_for_review(*, user: Viewer, batch_id: int) -> Batch:
    batch = (
        Batch.objects.filter(pk=batch_id, workflow__in=workflows_reviewable_by(user=user))
        .select_related("workflow")
        .first()
    )
    if batch is None:
        raise NotFound(f"no batch {batch_id} that you may review")
    return batch
