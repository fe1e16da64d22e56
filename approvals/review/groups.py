"""A batch's proposals grouped by what they change, for deciding a group at once."""

from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q
from django.http import QueryDict

from approvals.models import Action, Batch, FollowUpKind, Proposal, ProposalStatus
from approvals.requesters import requester_reason
from approvals.review.followups import FollowUpPreview, followup_previews
from approvals.review.rights import user_may_review
from approvals.review.selectors import BatchProgress, FieldRow, batch_progress, field_rows, stale_fields
from approvals.workflows.rights import Viewer, workflows_overridable_by, workflows_reviewable_by
from core.errors import NotFound, ValidationFailed
from records.store import RecordRef, RecordState, fetch_refs

GROUP_SAMPLE = 5


def _follow_up_shape(item: Any) -> tuple[str, str]:
    """What a follow-up is, apart from the record it is about: its kind, and its template or URL."""
    if not isinstance(item, dict):
        return ("", "")
    params = item.get("params")
    params = params if isinstance(params, dict) else {}
    return (str(item.get("kind", "")), str(params.get("template") or params.get("url") or ""))


@dataclass(frozen=True)
class GroupKey:
    """What the proposals of a group share, beside their batch (and so their workflow): the action,
    the fields, the prompt version, and the follow-ups they ask for (kind and template or URL)."""

    action: str
    fields: tuple[str, ...]
    prompt_version: str
    follow_ups: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, proposal: Proposal) -> "GroupKey":
        follow_ups = tuple(_follow_up_shape(item) for item in proposal.follow_ups or [])
        return cls(proposal.action, tuple(sorted(proposal.changes or {})), proposal.prompt_version, follow_ups)

    @classmethod
    def from_params(cls, params: QueryDict | dict[str, str]) -> "GroupKey":
        action = str(params.get("action") or "")
        if action not in Action.values:
            raise ValidationFailed([("action", f"must be one of {', '.join(Action.values)}")])
        fields = tuple(sorted(name for name in str(params.get("fields") or "").split(",") if name))
        prompt_version = str(params.get("prompt_version") or "")
        if not prompt_version:
            raise ValidationFailed([("prompt_version", "is required")])
        shapes = params.getlist("follow_up") if isinstance(params, QueryDict) else [params.get("follow_up", "")]
        follow_ups = tuple((kind, detail) for kind, _, detail in (str(s).partition(" ") for s in shapes if s))
        return cls(action, fields, prompt_version, follow_ups)

    def querystring(self) -> str:
        key = {"action": self.action, "fields": ",".join(self.fields), "prompt_version": self.prompt_version}
        return "?" + urlencode([*key.items(), *(("follow_up", f"{kind} {detail}") for kind, detail in self.follow_ups)])

    @property
    def follow_up_labels(self) -> list[str]:
        """Each follow-up as a person reads it: "Email the customer (address-confirmed)"."""
        labels = []
        for kind, detail in self.follow_ups:
            label = str(FollowUpKind(kind).label) if kind in FollowUpKind.values else kind
            labels.append(f"{label} ({detail})" if detail else label)
        return labels


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
        key=lambda g: (-g.count, g.key.action, g.key.fields, g.key.prompt_version, g.key.follow_ups),
    )
    return BatchGroups(batch, groups, stale_ids, len(pending) - len(decidable), states)


@dataclass
class GroupSampleItem:
    proposal: Proposal
    title: str
    rows: list[FieldRow]
    follow_ups: list[FollowUpPreview]


def group_sample(*, groups: BatchGroups, group: ProposalGroup, size: int = GROUP_SAMPLE) -> list[GroupSampleItem]:
    """The first proposals of a group, each with its fields and the follow-ups it would send."""
    proposals = Proposal.objects.filter(pk__in=group.ids[:size]).select_related("workflow").order_by("created_at", "id")
    items = []
    for proposal in proposals:
        state = groups.states.get(RecordRef(proposal.record_type, proposal.record_id))
        title, rows = (state.title if state else ""), field_rows(proposal=proposal, state=state)
        items.append(GroupSampleItem(proposal, title, rows, followup_previews(proposal=proposal)))
    return items


@dataclass
class BatchPage:
    """A batch's page: how far it has got, and, for those who decide it, its matched groups."""

    batch: Batch
    progress: BatchProgress
    groups: BatchGroups | None  # None for someone who may only override its blocks


def batch_page(*, user: Viewer, batch_id: int, with_groups: bool = True) -> BatchPage:
    """The page of a batch, for its workflow's approvers and for its override groups (who may lift a
    stop on it, on duty or not, as they may open its waiting proposals); NotFound for anyone else.
    Without `with_groups`, only its progress (what the page asks again while writes run)."""
    batch = (
        Batch.objects.filter(
            Q(workflow__in=workflows_reviewable_by(user=user)) | Q(workflow__in=workflows_overridable_by(user=user)),
            pk=batch_id,
        )
        .select_related("workflow")
        .first()
    )
    if batch is None:
        raise NotFound(f"no batch {batch_id} that you may see")
    groups = None
    if with_groups and user_may_review(user=user, workflow=batch.workflow):
        groups = batch_groups(user=user, batch=batch)  # type: ignore[arg-type]
    return BatchPage(batch, batch_progress(batch=batch), groups)


def batch_for_review(*, user: Viewer, batch_id: int) -> Batch:
    batch = (
        Batch.objects.filter(pk=batch_id, workflow__in=workflows_reviewable_by(user=user))
        .select_related("workflow")
        .first()
    )
    if batch is None:
        raise NotFound(f"no batch {batch_id} that you may review")
    return batch
