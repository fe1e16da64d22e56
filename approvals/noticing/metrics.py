"""What `/metrics` reports, read from the database at the moment of the scrape.

Nothing is counted in a process's memory: every web and worker process would count only what it saw.
Each figure is read from where the fact is kept, so every process that answers a scrape answers the
same, and a restart loses nothing:

- what happened to proposals, what was applied, and how long a person took to decide and the worker
  to write, are running totals of the trail (`tallies`: append-only, so a count never goes down even
  when a proposal moves on: a conflict later written over, an undo itself undone), topped up at each
  scrape with what the trail gained since the last one;
- what is waiting now, stops, overrides, stores and the chain's verification, from their own tables.

A fixed number of queries, whatever the number of proposals: `metrics_read` runs `QUERIES` of them.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, F, Min, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from approvals.models import Override, OverrideBlock, Proposal, ProposalStatus, StopScope, StopSwitch, Workflow
from approvals.noticing.tallies import FOLD_QUERIES, Histogram, tallies_fold, tallies_read
from audit.selectors import audit_chain_broken, audit_chain_checked_at
from records.catalogue import RECORD_TYPES
from records.models import StoreBinding, StoreOutage

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

# The fold and the read of the totals, the waiting gauges, the workflows, stops, overrides, two for the
# stores and two for the chain.
QUERIES = FOLD_QUERIES + 9

# (workflow slug, prompt version): the labels every per-version figure carries.
Version = tuple[str, str]


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
    unfolded_events: int = 0  # trail event ids not yet in the running totals
    chain_verified_seconds: float | None = None
    chain_broken: bool = False

    @property
    def versions(self) -> list[Version]:
        """Every workflow and prompt version any figure names, in order."""
        return sorted(set(self.outcomes) | set(self.decision_time) | set(self.apply_lag) | set(self.waiting))


def metrics_read(*, now: datetime | None = None) -> Metrics:
    """Every figure `/metrics` reports, in `QUERIES` queries; folds what the trail gained since the last
    scrape into the running totals first."""
    now = now or timezone.now()
    metrics = Metrics(at=now)
    metrics.unfolded_events = tallies_fold().behind
    tallies = tallies_read()
    metrics.outcomes, metrics.decision_time, metrics.apply_lag = (
        tallies.outcomes,
        tallies.decision_time,
        tallies.apply_lag,
    )
    metrics.waiting = _waiting(now)
    metrics.workflows = list(Workflow.objects.order_by("slug").values_list("slug", flat=True))
    metrics.stops = _stops()
    metrics.overrides = _overrides(now)
    metrics.stores = _stores()
    checked_at = audit_chain_checked_at()
    metrics.chain_verified_seconds = None if checked_at is None else max(0.0, (now - checked_at).total_seconds())
    metrics.chain_broken = audit_chain_broken() is not None
    return metrics


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
