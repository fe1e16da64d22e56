"""What `/metrics` reports, read from the database at the moment of the scrape.

Nothing is counted in a process's memory: every web and worker process would count only what it saw.
Each figure is read from where the fact is kept, so every process that answers a scrape answers the
same, and a restart loses nothing:

- what happened to proposals is counted on the trail (append-only, so a count never goes down even
  when a proposal moves on: a conflict later written over, an undo itself undone);
- what was applied, and how long after its approval, from the written Changes;
- how long a person took to decide, from each proposal's submission and decision times;
- what is waiting now, stops, overrides, stores and the chain's verification, from their own tables.

One query per figure group, whatever the number of proposals: `metrics_read` runs `QUERIES` of them.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Count, F, Min, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from approvals.models import Override, OverrideBlock, Proposal, ProposalStatus, StopScope, StopSwitch, Workflow
from audit.models import ActorKind, AuditEvent
from audit.selectors import audit_chain_broken, audit_chain_checked_at
from records.catalogue import RECORD_TYPES
from records.models import Change, ChangeAction, StoreBinding, StoreOutage

# Upper bounds of the duration histograms, in seconds: from a second to a week, so a decision taken
# at once and one left over a weekend both land in a bucket of their own.
DURATION_BUCKETS: tuple[float, ...] = (
    1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 43200, 86400, 172800, 259200, 604800,
)  # fmt: skip

# The trail's events that count as an outcome of a proposal, by the outcome they count.
OUTCOME_EVENTS: dict[str, str] = {
    "proposal.submitted": "submitted",
    "proposal.rejected": "rejected",
    "proposal.conflict": "conflict",
    "proposal.failed": "failed",
    "proposal.reverted": "undone",
    "proposal.expired": "expired",
    "proposal.cancelled": "cancelled",
    "proposal.shadowed": "shadowed",
}
APPROVED_EVENT = "proposal.approved"
# Every outcome the counter reports, in the order it lists them; `applied` comes from the Changes.
OUTCOMES: tuple[str, ...] = (
    "submitted",
    "approved_by_person",
    "approved_by_policy",
    "rejected",
    "conflict",
    "applied",
    "failed",
    "undone",
    "expired",
    "cancelled",
    "shadowed",
)

QUERIES = 11

# (workflow slug, prompt version): the labels every per-version figure carries.
Version = tuple[str, str]


@dataclass
class Histogram:
    """Cumulative counts per bucket of `DURATION_BUCKETS`, their sum in seconds and their count."""

    cumulative: list[int]
    total_seconds: float
    count: int


@dataclass
class Waiting:
    pending: int = 0
    approved: int = 0
    oldest_pending_seconds: float = 0.0


@dataclass(frozen=True)
class StoreState:
    record_type: str
    store: str
    reachable: bool


@dataclass
class Metrics:
    """Everything one scrape reports, read at `at`."""

    at: datetime
    outcomes: dict[Version, dict[str, int]] = field(default_factory=dict)
    decision_time: dict[Version, Histogram] = field(default_factory=dict)
    apply_lag: dict[Version, Histogram] = field(default_factory=dict)
    waiting: dict[Version, Waiting] = field(default_factory=dict)
    workflows: list[str] = field(default_factory=list)
    # (scope, workflow slug, "" for the global stop) -> switches engaged
    stops: dict[tuple[str, str], int] = field(default_factory=dict)
    # (workflow slug, block) -> overrides in force
    overrides: dict[tuple[str, str], int] = field(default_factory=dict)
    stores: list[StoreState] = field(default_factory=list)
    chain_verified_seconds: float | None = None
    chain_broken: bool = False

    @property
    def versions(self) -> list[Version]:
        """Every workflow and prompt version any figure names, in order."""
        return sorted(set(self.outcomes) | set(self.decision_time) | set(self.apply_lag) | set(self.waiting))


def metrics_read(*, now: datetime | None = None) -> Metrics:
    """Every figure `/metrics` reports, in `QUERIES` queries."""
    now = now or timezone.now()
    metrics = Metrics(at=now)
    metrics.outcomes = _outcomes()
    decisions = _histograms(_decision_source())
    metrics.decision_time = {version: histogram for version, (histogram, _) in decisions.items()}
    applied = _histograms(_apply_lag_source())
    metrics.apply_lag = {version: histogram for version, (histogram, _) in applied.items()}
    for version, (_, rows) in applied.items():
        metrics.outcomes.setdefault(version, {})["applied"] = rows
    metrics.waiting = _waiting(now)
    metrics.workflows = list(Workflow.objects.order_by("slug").values_list("slug", flat=True))
    metrics.stops = _stops()
    metrics.overrides = _overrides(now)
    metrics.stores = _stores()
    checked_at = audit_chain_checked_at()
    metrics.chain_verified_seconds = None if checked_at is None else max(0.0, (now - checked_at).total_seconds())
    metrics.chain_broken = audit_chain_broken() is not None
    return metrics


def _outcomes() -> dict[Version, dict[str, int]]:
    """How many times each outcome happened to each version's proposals, counted on the trail.
    A proposal the policy approved was approved by the system, one a person approved by that person."""
    rows = (
        AuditEvent.objects.filter(action__in=[*OUTCOME_EVENTS, APPROVED_EVENT])
        .values_list("action", "actor_kind", "workflow_slug", "prompt_version")
        .annotate(n=Count("id"))
        .order_by()
    )
    counted: dict[Version, dict[str, int]] = defaultdict(dict)
    for action, actor_kind, workflow, version, n in rows:
        if action == APPROVED_EVENT:
            outcome = "approved_by_person" if actor_kind == ActorKind.USER else "approved_by_policy"
        else:
            outcome = OUTCOME_EVENTS[action]
        outcomes = counted[(workflow, version)]
        outcomes[outcome] = outcomes.get(outcome, 0) + n
    return dict(counted)


def _seconds_between(later: str, earlier: str) -> str:
    """SQL for the seconds from `earlier` to `later`, two timestamp columns."""
    if connection.vendor == "postgresql":
        return f"EXTRACT(EPOCH FROM ({later} - {earlier}))"
    if connection.vendor == "sqlite":
        return f"((julianday({later}) - julianday({earlier})) * 86400.0)"
    raise NotImplementedError(f"metrics read durations on PostgreSQL or SQLite, not {connection.vendor}")


def _tables() -> dict[str, str]:
    quote = connection.ops.quote_name
    return {
        "proposal": quote(Proposal._meta.db_table),
        "workflow": quote(Workflow._meta.db_table),
        "change": quote(Change._meta.db_table),
    }


def _decision_source() -> tuple[str, list[Any]]:
    """Each proposal a person decided: its version and the seconds from submission to decision."""
    t = _tables()
    seconds = _seconds_between("p.decided_at", "p.created_at")
    sql = (
        f"SELECT w.slug AS workflow, p.prompt_version AS prompt_version, {seconds} AS seconds "  # noqa: S608
        f"FROM {t['proposal']} p JOIN {t['workflow']} w ON w.id = p.workflow_id "
        "WHERE p.decided_at IS NOT NULL AND p.decided_by_id IS NOT NULL"
    )
    return sql, []


def _apply_lag_source() -> tuple[str, list[Any]]:
    """Each proposal written to its record: its version and the seconds from approval to the write
    (none when it carries no approval time)."""
    t = _tables()
    seconds = _seconds_between("c.applied_at", "p.approved_at")
    sql = (
        f"SELECT w.slug AS workflow, p.prompt_version AS prompt_version, {seconds} AS seconds "  # noqa: S608
        f"FROM {t['change']} c JOIN {t['proposal']} p ON p.id = c.proposal_id "
        f"JOIN {t['workflow']} w ON w.id = p.workflow_id "
        "WHERE c.proposal_id IS NOT NULL AND c.in_flight = %s AND c.action <> %s"
    )
    return sql, [False, ChangeAction.REVERT.value]


def _histograms(source: tuple[str, list[Any]]) -> dict[Version, tuple[Histogram, int]]:
    """One query: per version, the cumulative bucket counts, sum and count of the durations `source`
    selects, and how many rows it selected (a row without a duration counts there, not in the histogram)."""
    inner, params = source
    buckets = ", ".join("SUM(CASE WHEN seconds <= %s THEN 1 ELSE 0 END)" for _ in DURATION_BUCKETS)
    sql = (
        f"SELECT workflow, prompt_version, {buckets}, COALESCE(SUM(seconds), 0), COUNT(seconds), COUNT(*) "  # noqa: S608
        f"FROM ({inner}) durations GROUP BY workflow, prompt_version"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*DURATION_BUCKETS, *params])
        rows = cursor.fetchall()
    found: dict[Version, tuple[Histogram, int]] = {}
    for workflow, version, *figures in rows:
        *cumulative, total, count, selected = figures
        histogram = Histogram([int(n or 0) for n in cumulative], float(total or 0), int(count))
        found[(workflow, version)] = (histogram, int(selected))
    return found


def _waiting(now: datetime) -> dict[Version, Waiting]:
    """Per version: proposals waiting for a person, approved ones waiting for the worker, and the age
    of the oldest waiting for a person."""
    rows = (
        Proposal.objects.filter(status__in=[ProposalStatus.PENDING, ProposalStatus.APPROVED])
        .values_list("workflow__slug", "prompt_version")
        .annotate(
            pending=Count("id", filter=Q(status=ProposalStatus.PENDING)),
            approved=Count("id", filter=Q(status=ProposalStatus.APPROVED)),
            oldest=Min("created_at", filter=Q(status=ProposalStatus.PENDING)),
        )
        .order_by()
    )
    return {
        (workflow, version): Waiting(
            pending=pending,
            approved=approved,
            oldest_pending_seconds=0.0 if oldest is None else max(0.0, (now - oldest).total_seconds()),
        )
        for workflow, version, pending, approved, oldest in rows
    }


def _stops() -> dict[tuple[str, str], int]:
    """Engaged stop switches by scope and by the workflow they hold ("" for the global one)."""
    rows = (
        StopSwitch.objects.filter(released_at__isnull=True)
        .annotate(slug=Coalesce(F("workflow__slug"), F("batch__workflow__slug")))
        .values_list("scope", "slug")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {(scope, slug or ""): n for scope, slug, n in rows}


def _overrides(now: datetime) -> dict[tuple[str, str], int]:
    """Overrides in force at `now`, by workflow and the block they lift."""
    rows = (
        Override.objects.filter(revoked_at__isnull=True, granted_at__lte=now, expires_at__gt=now)
        .values_list("workflow__slug", "block")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {(slug, block): n for slug, block, n in rows}


def _stores() -> list[StoreState]:
    """Each record type's store and whether it answers: not while an outage is recorded for it (a
    write failed to reach it and none has succeeded since), nor when `check_stores` last found it
    unreachable. A record type no stores file binds is on the built-in store."""
    bindings = {b.record_type: b for b in StoreBinding.objects.only("record_type", "connector", "reachable")}
    outages = dict(StoreOutage.objects.values_list("record_type", "store"))
    states = []
    for record_type in sorted(set(RECORD_TYPES) | set(bindings)):
        binding = bindings.get(record_type)
        store = binding.connector if binding is not None else "builtin"
        reachable = record_type not in outages and (binding is None or binding.reachable is not False)
        states.append(StoreState(record_type, store, reachable))
    return states


STOP_SCOPES: tuple[str, ...] = tuple(StopScope.values)
OVERRIDE_BLOCKS: tuple[str, ...] = tuple(OverrideBlock.values)
