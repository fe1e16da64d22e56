"""Reads about workflows: which ones a person may see, and their policies."""

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import Count, Prefetch, Q, QuerySet

from approvals.models import Access, Action, FieldPolicy, Lane, Proposal, ProposalStatus, Workflow
from approvals.workflows.rights import Viewer, workflows_visible_to
from records.catalogue import RECORD_TYPES, Risk
from records.selectors import StoreSummary, store_summaries
from records.store import store_side_effects


def workflow_list_for_user(*, user: Viewer) -> QuerySet[Workflow]:
    """The workflows `user` may see, with their policies."""
    return (
        workflows_visible_to(user=user)
        .select_related("owner", "approver_group", "override_day_group", "override_after_hours_group")
        .prefetch_related(Prefetch("policies", queryset=FieldPolicy.objects.order_by("record_type", "field")))
        .annotate(pending_count=Count("proposals", filter=Q(proposals__status=ProposalStatus.PENDING)))
        .order_by("slug")
    )


def workflow_stores(*, workflows: Iterable[Workflow]) -> dict[int, list[StoreSummary]]:
    """For each workflow (its policies prefetched), the store of each record type it has policies
    on, with the last check of that store: one query whatever the number of workflows."""
    summaries = store_summaries()
    return {
        workflow.pk: [summaries[name] for name in sorted({policy.record_type for policy in workflow.policies.all()})]
        for workflow in workflows
    }


def workflow_policy_map(*, workflow: Workflow) -> dict[tuple[str, str], str]:
    """(record_type, field) -> access for every field the workflow has a policy on."""
    return {(p.record_type, p.field): p.access for p in workflow.policies.all()}


@dataclass(frozen=True)
class WritePolicy:
    """What a workflow may write as its file stands now: its lane, actions, field access and two-person rules."""

    slug: str
    lane: str = Lane.WRITE
    actions: frozenset[str] = frozenset()
    two_person_actions: frozenset[str] = frozenset()
    two_person_fields: frozenset[str] = frozenset()
    access: dict[tuple[str, str], str] = field(default_factory=dict)

    def refusal(self, *, proposal: Proposal, reviewed: bool) -> str:
        """Why this policy no longer lets `proposal` be written ('' when it does).

        One a person approves, or approved, needs its action and every changed field still open to
        the workflow; one approved without review (`reviewed` false) also needs no follow-ups and
        every field still `write`, low risk and outside the two-person rules, as intake asked when it
        let it through.
        """
        if self.lane != Lane.WRITE or proposal.action not in self.actions:
            return f"workflow {self.slug} may no longer {proposal.action} records"
        unreviewed = not reviewed
        if unreviewed and proposal.follow_ups:
            return f"a proposal with follow-ups needs a person's approval (workflow {self.slug})"
        if unreviewed and proposal.action in self.two_person_actions:
            return f"a {proposal.action} by workflow {self.slug} now needs two people to approve it"
        if proposal.action != Action.UPDATE:
            return ""
        spec = RECORD_TYPES[proposal.record_type]
        side_effects = store_side_effects(record_type=proposal.record_type) if unreviewed else {}
        for name in sorted(proposal.changes or {}):
            access = self.access.get((proposal.record_type, name))
            where = f"{proposal.record_type}.{name}"
            if access not in (Access.SUGGEST, Access.WRITE):
                return f"workflow {self.slug} may no longer change {where}"
            if unreviewed and (access != Access.WRITE or spec.field(name).risk != Risk.LOW):
                return f"{where} now needs a person's approval (workflow {self.slug} may only suggest it)"
            if unreviewed and name in self.two_person_fields:
                return f"{where} now needs two people to approve it (workflow {self.slug})"
            if name in side_effects:
                return f"{where} needs a person's approval: {side_effects[name].sentence}"
        return ""


def _write_policy(workflow: Workflow, access: dict[tuple[str, str], str]) -> WritePolicy:
    return WritePolicy(
        slug=workflow.slug,
        lane=workflow.lane,
        actions=frozenset(workflow.actions or []),
        two_person_actions=frozenset(workflow.two_person_actions or []),
        two_person_fields=frozenset(workflow.two_person_fields or []),
        access=access,
    )


def write_policy(*, workflow: Workflow) -> WritePolicy:
    """The write policy of a workflow already read: one query, for its field access."""
    return write_policies(workflow_ids=[workflow.pk], workflows=[workflow])[workflow.pk]


def write_policies(*, workflow_ids: Iterable[int], workflows: Iterable[Workflow] = ()) -> dict[int, WritePolicy]:
    """The write policy of each workflow, as its file stands now: two queries whatever the count, one
    when the `workflows` are already read."""
    ids = set(workflow_ids)
    if not ids:
        return {}
    access: dict[int, dict[tuple[str, str], str]] = {pk: {} for pk in ids}
    for workflow_id, record_type, field_name, level in FieldPolicy.objects.filter(workflow_id__in=ids).values_list(
        "workflow_id", "record_type", "field", "access"
    ):
        access[workflow_id][(record_type, field_name)] = level
    known = {workflow.pk: workflow for workflow in workflows if workflow.pk in ids}
    if ids - set(known):
        rules = ("slug", "lane", "actions", "two_person_actions", "two_person_fields")
        known.update({w.pk: w for w in Workflow.objects.filter(pk__in=ids - set(known)).only(*rules)})
    return {pk: _write_policy(workflow, access[pk]) for pk, workflow in known.items()}
