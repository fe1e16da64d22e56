"""The running totals behind `/metrics`' counters and histograms, topped up at each scrape.

Reading all history at every scrape grows with the trail; these totals grow only with what was
appended since the last scrape. Each scrape folds in the trail's events past the cursor, under a lock
on the cursor row, so two scrapes at once never fold the same event twice: the second waits for the
first and starts where it stopped.

The trail is the right thing to fold by id: an event's id is drawn only once the chain's lock is
held, and the lock is held until its transaction commits (`audit.services`), so when the highest id
is visible every lower one has committed or never will. Changes are keyed by UUID, so they are
folded through their `change.applied` events, one Change per distinct `change_id`.

What each event adds:
- an outcome event (`OUTCOME_EVENTS`, `proposal.approved`): one to its outcome's count;
- a person's decision (`proposal.approved` or `proposal.rejected` by a user): the proposal's seconds
  from submission to decision, to the decision-time histogram (a proposal a person decides again, a
  conflict written over, adds its second decision too);
- a Change written for a proposal (`change.applied`): one to `applied`, and the seconds from the
  proposal's approval to the write, to the apply-lag histogram.
Folding in steps gives the same totals as folding everything at once (`tests/approvals/noticing/
test_metrics_tallies.py` checks it), and totals only grow.

One fold takes at most `FOLD_CHUNK` event ids, so neither a scrape nor the lock it holds lasts long
whatever the trail's length. Beat's `approvals.fold_metrics` folds chunk after chunk, so the trail of
a deployment that never had a scrape (or an upgrade that starts the totals afresh) is counted in the
worker, not in a scrape; until it catches up, `/metrics` says how far behind its totals are.
"""

import re
import time
from collections import defaultdict
from dataclasses import dataclass, field

from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.utils import timezone

from approvals.models import MetricsCursor, MetricsTally, Proposal, Workflow
from audit.models import ActorKind, AuditEvent
from records.models import Change, ChangeAction

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
DECISION_EVENTS = (APPROVED_EVENT, "proposal.rejected")
APPLIED_EVENT = "change.applied"
DECISION_TIME = "decision_time"
APPLY_LAG = "apply_lag"

# Statements one fold runs, whatever it finds: make sure of the cursor row, lock it, find the trail's
# head, three upserts of totals, move the cursor.
FOLD_QUERIES = 7

# The most events one fold takes: at about 100,000 events a second on PostgreSQL, a fraction of a
# second, so a scrape waiting for a fold under way waits little.
FOLD_CHUNK = 50_000

Version = tuple[str, str]

_CONSTANT = re.compile(r"^[a-z_.:0-9]+$")


def _literal(text: str) -> str:
    """A constant of this module as an SQL string literal (never anything a request or a row sent)."""
    if not _CONSTANT.match(text):
        raise ValueError(f"not a tally constant: {text!r}")
    return f"'{text}'"


# SQL for the seconds between two timestamp columns, on each database Countersign runs on.
_SECONDS_BETWEEN = {
    "postgresql": "EXTRACT(EPOCH FROM ({later} - {earlier}))",
    "sqlite": "((julianday({later}) - julianday({earlier})) * 86400.0)",
}


def _seconds_between(later: str, earlier: str) -> str:
    """SQL for the seconds from `earlier` to `later`, two timestamp columns."""
    if connection.vendor not in _SECONDS_BETWEEN:
        raise ImproperlyConfigured(
            f"Countersign runs on PostgreSQL or SQLite; {connection.vendor} has no metrics durations"
        )
    return _SECONDS_BETWEEN[connection.vendor].format(later=later, earlier=earlier)


def _table(model: type) -> str:
    return connection.ops.quote_name(model._meta.db_table)  # type: ignore[attr-defined]


def bucket_name(histogram: str, index: int) -> str:
    return f"{histogram}:le:{index}"


def _upsert(select: str) -> str:
    """Add what `select` yields (workflow, version, name, value) to the totals."""
    tally = _table(MetricsTally)
    return (
        f"INSERT INTO {tally} (workflow_slug, prompt_version, name, value) {select} "
        f"ON CONFLICT (workflow_slug, prompt_version, name) DO UPDATE SET value = {tally}.value + excluded.value"
    )


def _outcomes_sql() -> str:
    person = _literal("outcome:approved_by_person")
    policy = _literal("outcome:approved_by_policy")
    cases = [f"WHEN {_literal(APPROVED_EVENT)} THEN CASE WHEN actor_kind = {_literal(ActorKind.USER.value)} "]
    cases[0] += f"THEN {person} ELSE {policy} END"
    cases += [f"WHEN {_literal(action)} THEN {_literal('outcome:' + name)}" for action, name in OUTCOME_EVENTS.items()]
    actions = ", ".join(_literal(action) for action in [APPROVED_EVENT, *OUTCOME_EVENTS])
    return _upsert(
        f"SELECT workflow_slug, prompt_version, CASE action {' '.join(cases)} END, COUNT(*) "  # noqa: S608
        f"FROM {_table(AuditEvent)} WHERE id > %s AND id <= %s AND action IN ({actions}) GROUP BY 1, 2, 3"
    )


def _histogram_sql(histogram: str, durations: str, *, rows_counted_as: str = "") -> str:
    """The upsert of one histogram's buckets, sum and count from the CTE `durations` (workflow,
    prompt_version, seconds); `rows_counted_as` also counts every row, a duration or not."""
    bounds = ", ".join(
        f"({_literal(bucket_name(histogram, index))}, {float(bound)})" for index, bound in enumerate(DURATION_BUCKETS)
    )
    by_version = "FROM durations GROUP BY 1, 2"
    parts = [
        "SELECT d.workflow, d.prompt_version, b.name, COUNT(*) FROM durations d "
        "JOIN bounds b ON d.seconds <= b.bound GROUP BY 1, 2, 3",
        f"SELECT workflow, prompt_version, {_literal(histogram + ':sum_us')}, "
        f"COALESCE(SUM(CAST(ROUND(seconds * 1000000) AS BIGINT)), 0) {by_version}",
        f"SELECT workflow, prompt_version, {_literal(histogram + ':count')}, COUNT(seconds) {by_version}",
    ]
    if rows_counted_as:
        parts.append(f"SELECT workflow, prompt_version, {_literal(rows_counted_as)}, COUNT(*) {by_version}")
    return f"WITH bounds (name, bound) AS (VALUES {bounds}), durations AS ({durations}) " + _upsert(
        " UNION ALL ".join(parts)
    )


def _decision_sql() -> str:
    seconds = _seconds_between("p.decided_at", "p.created_at")
    decisions = ", ".join(_literal(action) for action in DECISION_EVENTS)
    durations = (
        f"SELECT e.workflow_slug AS workflow, e.prompt_version AS prompt_version, {seconds} AS seconds "  # noqa: S608
        f"FROM {_table(AuditEvent)} e JOIN {_table(Proposal)} p ON p.id = e.proposal_id "
        f"WHERE e.id > %s AND e.id <= %s AND e.action IN ({decisions}) "
        f"AND e.actor_kind = {_literal(ActorKind.USER.value)} "
        "AND p.decided_at IS NOT NULL AND p.decided_by_id IS NOT NULL"
    )
    return _histogram_sql(DECISION_TIME, durations)


def _apply_lag_sql() -> str:
    seconds = _seconds_between("c.applied_at", "p.approved_at")
    written = (
        f"SELECT DISTINCT change_id FROM {_table(AuditEvent)} WHERE id > %s AND id <= %s "  # noqa: S608
        f"AND action = {_literal(APPLIED_EVENT)} AND proposal_id IS NOT NULL AND change_id IS NOT NULL"
    )
    durations = (
        f"SELECT w.slug AS workflow, p.prompt_version AS prompt_version, {seconds} AS seconds "  # noqa: S608
        f"FROM ({written}) e JOIN {_table(Change)} c ON c.id = e.change_id "
        f"JOIN {_table(Proposal)} p ON p.id = c.proposal_id JOIN {_table(Workflow)} w ON w.id = p.workflow_id "
        f"WHERE c.action <> {_literal(ChangeAction.REVERT.value)}"
    )
    return _histogram_sql(APPLY_LAG, durations, rows_counted_as="outcome:applied")


def fold_statements() -> list[str]:
    """The three upserts of one fold, each taking the range of event ids (after, up to) it folds."""
    return [_outcomes_sql(), _decision_sql(), _apply_lag_sql()]


@dataclass(frozen=True)
class Folded:
    """What one fold took: the event ids past `since` up to `upto`, with the trail's head as it saw it."""

    since: int
    upto: int
    head: int

    @property
    def behind(self) -> int:
        """Event ids past the last one folded: an upper bound of the events not yet counted (an id
        drawn by a transaction that rolled back is never used)."""
        return self.head - self.upto


def tallies_fold(*, most: int = FOLD_CHUNK) -> Folded:
    """Fold the trail's events past the cursor into the totals, at most `most` of them, in
    `FOLD_QUERIES` statements. Waits for a fold under way (bounded by its chunk) and joins the caller's
    transaction, if any."""
    cursor_table = _table(MetricsCursor)
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {cursor_table} (id, audit_event_id) VALUES (1, 0) ON CONFLICT (id) DO NOTHING")  # noqa: S608
        # Waits for a fold under way; READ COMMITTED then reads the row as that fold left it.
        lower = MetricsCursor.objects.select_for_update().values_list("audit_event_id", flat=True).get(pk=1)
        events = _table(AuditEvent)
        # The trail's head, and the id of the `most`-th event past the cursor (none when fewer remain).
        cursor.execute(
            f"SELECT (SELECT MAX(id) FROM {events}), "  # noqa: S608
            f"(SELECT id FROM {events} WHERE id > %s ORDER BY id LIMIT 1 OFFSET %s)",
            [lower, most - 1],
        )
        found_head, chunk_end = cursor.fetchone()
        head = max(found_head or 0, lower)
        upper = head if chunk_end is None else chunk_end
        for sql in fold_statements():
            cursor.execute(sql, [lower, upper])
        MetricsCursor.objects.filter(pk=1).update(audit_event_id=upper, folded_at=timezone.now())
    return Folded(since=lower, upto=upper, head=head)


def tallies_catch_up(*, seconds: float, most: int = FOLD_CHUNK) -> int:
    """Fold chunk after chunk, each in its own transaction, until the totals reach the trail's head or
    `seconds` have passed; answers how far the cursor moved, in event ids."""
    started, taken = time.monotonic(), 0
    while True:
        folded = tallies_fold(most=most)
        taken += folded.upto - folded.since
        if not folded.behind or time.monotonic() - started >= seconds:
            return taken


@dataclass
class Histogram:
    """Cumulative counts per bucket of `DURATION_BUCKETS`, their sum in seconds and their count."""

    cumulative: list[int]
    total_seconds: float
    count: int


@dataclass
class Tallies:
    outcomes: dict[Version, dict[str, int]] = field(default_factory=dict)
    decision_time: dict[Version, Histogram] = field(default_factory=dict)
    apply_lag: dict[Version, Histogram] = field(default_factory=dict)


def tallies_read() -> Tallies:
    """The running totals as they stand, in one query: a version has a histogram once a duration of
    its was folded."""
    values: dict[Version, dict[str, int]] = defaultdict(dict)
    for workflow, prompt_version, name, value in MetricsTally.objects.values_list(
        "workflow_slug", "prompt_version", "name", "value"
    ):
        values[(workflow, prompt_version)][name] = value
    tallies = Tallies()
    for version, named in sorted(values.items()):
        outcomes = {name.removeprefix("outcome:"): v for name, v in named.items() if name.startswith("outcome:")}
        if outcomes:
            tallies.outcomes[version] = outcomes
        for histogram, into in ((DECISION_TIME, tallies.decision_time), (APPLY_LAG, tallies.apply_lag)):
            if f"{histogram}:count" not in named:
                continue
            into[version] = Histogram(
                [named.get(bucket_name(histogram, index), 0) for index in range(len(DURATION_BUCKETS))],
                named.get(f"{histogram}:sum_us", 0) / 1_000_000,
                named[f"{histogram}:count"],
            )
    return tallies
