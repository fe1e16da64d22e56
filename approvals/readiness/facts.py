"""The facts the readiness checks read, gathered for many workflows at once in a fixed number of
queries: policies, retention rules and what is stored, who is in each group, the drills, the five-step
reviews, and what happened to a workflow since it entered canary."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Count, Max, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from approvals.models import (
    FieldPolicy,
    ReadinessReview,
    RetentionRule,
    RollbackDrill,
    Stage,
    StopScope,
    StopSwitch,
    TraceDrill,
    UndoJob,
    Workflow,
)
from audit.models import Artifact

DRILL_WITHIN = timedelta(days=30)
REVIEW_WITHIN = timedelta(days=90)


@dataclass(frozen=True)
class RuleFact:
    kind: str
    bucket: str
    window: timedelta
    owner_id: int
    owner_label: str


@dataclass(frozen=True)
class GroupFact:
    name: str
    active_members: int


@dataclass
class Facts:
    """What the checks read, keyed by workflow id (drills of the rollback kind by workflow slug)."""

    now: datetime
    policies: dict[int, dict[str, str]] = field(default_factory=dict)  # "record_type.field" -> access
    rules: dict[int, list[RuleFact]] = field(default_factory=dict)
    stored: dict[int, set[tuple[str, str]]] = field(default_factory=dict)  # (kind, bucket) of artifacts held
    groups: dict[int, GroupFact] = field(default_factory=dict)
    people: dict[int, str] = field(default_factory=dict)
    rollback_drills: dict[str, list[RollbackDrill]] = field(default_factory=dict)
    trace_drills: dict[int, list[TraceDrill]] = field(default_factory=dict)
    reviews: dict[int, list[ReadinessReview]] = field(default_factory=dict)
    last_undo_job: dict[int, datetime] = field(default_factory=dict)
    last_stop: dict[int, datetime] = field(default_factory=dict)


def _label(username: str, first: str, last: str) -> str:
    """`audit.services.user_label` from the columns: the full name, else the username."""
    return f"{first} {last}".strip() or username


def _grouped[K, V](rows: list[tuple[K, V]]) -> dict[K, list[V]]:
    grouped: dict[K, list[V]] = defaultdict(list)
    for key, value in rows:
        grouped[key].append(value)
    return dict(grouped)


def _canary_since(workflows: list[Workflow], facts: Facts) -> None:
    """For the workflows in canary: the last undo job over each and the last stop of the whole workflow
    since it entered canary. A change undone on its own (as the five-step review's walk does) and a
    batch halted by its own stop switch (a pipeline stopping its run) are not the canary's verdict; nor
    are the rollback drill's own batch and undo job."""
    canary = [workflow for workflow in workflows if workflow.stage == Stage.CANARY]
    if not canary:
        return
    since = min(workflow.stage_changed_at for workflow in canary)
    ids = [workflow.pk for workflow in canary]
    drill_jobs = RollbackDrill.objects.filter(undo_job_id__isnull=False).values("undo_job_id")
    jobs = (
        UndoJob.objects.filter(Q(workflow_id__in=ids) | Q(batch__workflow_id__in=ids), created_at__gte=since)
        .exclude(pk__in=drill_jobs)
        .annotate(of=Coalesce("workflow_id", "batch__workflow_id"))
        .values("of")
        .annotate(last=Max("created_at"))
    )
    facts.last_undo_job = {row["of"]: row["last"] for row in jobs}
    stops = (
        StopSwitch.objects.filter(scope=StopScope.WORKFLOW, workflow_id__in=ids, engaged_at__gte=since)
        .values("workflow_id")
        .annotate(last=Max("engaged_at"))
    )
    facts.last_stop = {row["workflow_id"]: row["last"] for row in stops}


def facts_for(workflows: list[Workflow]) -> Facts:
    """Everything the nine checks read for `workflows`: ten queries at most, whatever their number."""
    facts = Facts(now=timezone.now())
    if not workflows:
        return facts
    ids = [workflow.pk for workflow in workflows]
    policies: dict[int, dict[str, str]] = defaultdict(dict)
    for workflow_id, record_type, name, access in FieldPolicy.objects.filter(workflow_id__in=ids).values_list(
        "workflow_id", "record_type", "field", "access"
    ):
        policies[workflow_id][f"{record_type}.{name}"] = access
    facts.policies = dict(policies)
    columns = ("workflow_id", "kind", "bucket", "window", "owner_id")
    owner = ("owner__username", "owner__first_name", "owner__last_name")
    rules = RetentionRule.objects.filter(workflow_id__in=ids).values_list(*columns, *owner)
    facts.rules = _grouped(
        [
            (workflow_id, RuleFact(kind, bucket, window, owner_id, _label(username, first, last)))
            for workflow_id, kind, bucket, window, owner_id, username, first, last in rules
        ]
    )
    stored = Artifact.objects.filter(workflow_id__in=ids).values_list("workflow_id", "kind", "bucket").distinct()
    facts.stored = {key: set(value) for key, value in _grouped([(w, (k, b)) for w, k, b in stored]).items()}
    group_ids = {
        group_id
        for workflow in workflows
        for group_id in (
            workflow.approver_group_id,
            workflow.override_day_group_id,
            workflow.override_after_hours_group_id,
        )
        if group_id is not None
    }
    if group_ids:
        counted = (
            Group.objects.filter(pk__in=group_ids)
            .annotate(active=Count("user", filter=Q(user__is_active=True)))
            .values_list("pk", "name", "active")
        )
        facts.groups = {pk: GroupFact(name, active) for pk, name, active in counted}
    co_owners = {w.retention_co_owner_id for w in workflows if w.retention_co_owner_id is not None}
    if co_owners:
        people = get_user_model().objects.filter(pk__in=co_owners)
        facts.people = {
            pk: _label(username, first, last)
            for pk, username, first, last in people.values_list("pk", "username", "first_name", "last_name")
        }
    recent = facts.now - DRILL_WITHIN
    drills = RollbackDrill.objects.filter(
        workflow_slug__in=[workflow.slug for workflow in workflows], finished_at__gte=recent
    ).order_by("-finished_at")
    facts.rollback_drills = _grouped([(drill.workflow_slug, drill) for drill in drills])
    traces = TraceDrill.objects.filter(workflow_id__in=ids, finished_at__gte=recent, passed__isnull=False)
    facts.trace_drills = _grouped([(drill.workflow_id, drill) for drill in traces.order_by("-finished_at")])
    reviews = ReadinessReview.objects.filter(workflow_id__in=ids, signed_off_at__gte=facts.now - REVIEW_WITHIN)
    facts.reviews = _grouped([(review.workflow_id, review) for review in reviews.order_by("-signed_off_at")])
    _canary_since(workflows, facts)
    return facts
