"""How each prompt version of a workflow is doing: what people and the policy decided of its proposals,
day by day over the last 30 days, how long people took, why they rejected, and in shadow whether
reviewers would have approved what it proposed.

Three aggregate queries whatever the number of proposals (by prompt version and day, by prompt
version and rejection reason, by prompt version and shadow verdict); the first is answered from the
`proposal_quality` index alone.
"""

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db import connection, transaction
from django.db.models import Avg, Count, DurationField, F, Max, Min, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from approvals.models import Proposal, ProposalStatus, ShadowVerdict, Verdict, Workflow
from approvals.noticing.charts import Chart, Series, line_chart
from approvals.review.rights import user_may_review
from approvals.workflows.rights import Viewer
from approvals.workflows.rollout import DRILL_PROMPT_VERSION_PREFIX

WINDOW_DAYS = 30
TOP_REASONS = 10
# A proposal is decided once a person or the policy approved or rejected it, whatever came after.
DECIDED = (
    ProposalStatus.APPROVED,
    ProposalStatus.APPLIED,
    ProposalStatus.REJECTED,
    ProposalStatus.CONFLICT,
    ProposalStatus.REVERTED,
    ProposalStatus.FAILED,
)
_TRAILING = re.compile(r"[\s.,;:!?…]+$")
# PostgreSQL's memory for one sort or hash while the page aggregates: at a million proposals a
# workflow's month is some 70,000 rows, which the default 4 MB sorts on disk (about 65 ms) and this
# groups in memory (about 40 ms).
AGGREGATE_WORK_MEM = "32MB"


def reason_key(text: str) -> str:
    """What makes two rejection reasons the same: case, runs of spaces and trailing punctuation aside."""
    return _TRAILING.sub("", " ".join(text.split()).casefold())


def _percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


@dataclass
class Tally:
    """Decided proposals of one prompt version on one day (or over the whole window)."""

    decided: int = 0
    rejected: int = 0
    conflict: int = 0
    undone: int = 0
    by_people: int = 0  # decided by a person, not by the policy: only these count in decision times
    people_seconds: float = 0.0  # their decision times added up

    def add(self, other: "Tally") -> None:
        self.decided += other.decided
        self.rejected += other.rejected
        self.conflict += other.conflict
        self.undone += other.undone
        self.by_people += other.by_people
        self.people_seconds += other.people_seconds

    @property
    def approve_rate(self) -> float | None:
        return _percent(self.decided - self.rejected, self.decided)

    @property
    def reject_rate(self) -> float | None:
        return _percent(self.rejected, self.decided)

    @property
    def conflict_rate(self) -> float | None:
        return _percent(self.conflict, self.decided)

    @property
    def undo_rate(self) -> float | None:
        return _percent(self.undone, self.decided)

    @property
    def decision_time_label(self) -> str:
        """The mean decision time as a person reads it: "—" with none, "under a minute", or minutes."""
        if not self.by_people:
            return "—"
        if self.people_seconds / self.by_people < 60:
            return "under a minute"
        return f"{self.decision_minutes} min"

    @property
    def decision_minutes(self) -> float | None:
        """The mean time from submission to a person's decision, in minutes."""
        # Clocks of different processes can put a decision a hair before its submission: never below 0.
        return max(0.0, round(self.people_seconds / self.by_people / 60, 1)) if self.by_people else None


@dataclass(frozen=True)
class DayTally:
    day: date
    tally: Tally


@dataclass(frozen=True)
class ReasonGroup:
    example: str  # the latest reason given in this group, as it was written
    count: int
    latest: datetime


@dataclass
class VersionQuality:
    prompt_version: str
    days: list[DayTally]  # every day of the window, oldest first
    total: Tally = field(default_factory=Tally)
    reasons: list[ReasonGroup] = field(default_factory=list)
    reason_groups: int = 0  # how many groups there are, shown or not
    would_approve: int = 0
    would_reject: int = 0
    last_decided: datetime | None = None

    @property
    def verdicts(self) -> int:
        return self.would_approve + self.would_reject

    @property
    def agreement(self) -> float | None:
        """Of the verdicts reviewers gave on its shadowed proposals, the share that would approve."""
        return _percent(self.would_approve, self.verdicts)

    @property
    def decided_days(self) -> list[DayTally]:
        """The days of the window with decisions, for the table of numbers."""
        return [d for d in self.days if d.tally.decided]

    @property
    def rates_chart(self) -> Chart:
        tallies = [d.tally for d in self.days]
        return line_chart(
            title=f"Decisions per day, prompt version {self.prompt_version}",
            days=[d.day for d in self.days],
            unit="%",
            y_max=100,
            series=[
                Series("Approved", "approve", [t.approve_rate for t in tallies]),
                Series("Rejected", "reject", [t.reject_rate for t in tallies]),
                Series("Conflict", "conflict", [t.conflict_rate for t in tallies]),
                Series("Undone", "undo", [t.undo_rate for t in tallies]),
            ],
        )

    @property
    def time_chart(self) -> Chart:
        return line_chart(
            title=f"Mean decision time per day, prompt version {self.prompt_version}",
            days=[d.day for d in self.days],
            unit="min",
            series=[Series("Decision time", "time", [d.tally.decision_minutes for d in self.days])],
        )


@dataclass(frozen=True)
class Quality:
    workflow: Workflow
    first_day: date
    last_day: date
    versions: list[VersionQuality]


def _window() -> tuple[list[date], datetime]:
    today = timezone.localdate()
    days = [today - timedelta(days=back) for back in range(WINDOW_DAYS - 1, -1, -1)]
    since = datetime.combine(days[0], time.min, tzinfo=timezone.get_current_timezone())
    return days, since


def _tallies(workflow: Workflow, since: datetime) -> Iterable[tuple[str, date, Tally, datetime]]:
    rows = (
        Proposal.objects.filter(workflow=workflow, decided_at__isnull=False, decided_at__gte=since, status__in=DECIDED)
        .exclude(prompt_version__startswith=DRILL_PROMPT_VERSION_PREFIX)
        .annotate(day=TruncDate("decided_at"))
        .values("prompt_version", "day")
        # Counting `status` (never null) rather than the id keeps every column read in the index.
        .annotate(
            decided=Count("status"),
            rejected=Count("status", filter=Q(status=ProposalStatus.REJECTED)),
            conflict=Count("status", filter=Q(status=ProposalStatus.CONFLICT)),
            undone=Count("status", filter=Q(status=ProposalStatus.REVERTED)),
            by_people=Count("status", filter=Q(decided_by__isnull=False)),
            people_wait=Avg(
                F("decided_at") - F("created_at"), filter=Q(decided_by__isnull=False), output_field=DurationField()
            ),
            latest=Max("decided_at"),
        )
        .order_by()
    )
    for row in rows:
        wait: timedelta | None = row["people_wait"]
        tally = Tally(
            decided=row["decided"],
            rejected=row["rejected"],
            conflict=row["conflict"],
            undone=row["undone"],
            by_people=row["by_people"],
            people_seconds=wait.total_seconds() * row["by_people"] if wait is not None else 0.0,
        )
        yield row["prompt_version"], row["day"], tally, row["latest"]


def _reasons(workflow: Workflow, since: datetime) -> dict[str, list[ReasonGroup]]:
    """Each version's rejection reasons, grouped by `reason_key`, the largest groups first."""
    rows = (
        Proposal.objects.filter(
            workflow=workflow, decided_at__isnull=False, decided_at__gte=since, status=ProposalStatus.REJECTED
        )
        .exclude(prompt_version__startswith=DRILL_PROMPT_VERSION_PREFIX)
        .values("prompt_version", "decision_note")
        .annotate(count=Count("pk"), latest=Max("decided_at"))
        .order_by()
    )
    groups: dict[str, dict[str, ReasonGroup]] = defaultdict(dict)
    for row in rows:
        text = row["decision_note"] or ""
        key = reason_key(text)
        known = groups[row["prompt_version"]].get(key)
        if known is None:
            merged = ReasonGroup(example=text.strip(), count=row["count"], latest=row["latest"])
        else:
            newer = row["latest"] > known.latest
            merged = ReasonGroup(
                example=text.strip() if newer else known.example,
                count=known.count + row["count"],
                latest=row["latest"] if newer else known.latest,
            )
        groups[row["prompt_version"]][key] = merged
    return {
        version: sorted(found.values(), key=lambda g: (-g.count, -g.latest.timestamp(), g.example))
        for version, found in groups.items()
    }


def _verdicts(workflow: Workflow) -> dict[str, dict[str, int]]:
    rows = (
        ShadowVerdict.objects.filter(proposal__workflow=workflow)
        .values("proposal__prompt_version", "verdict")
        .annotate(count=Count("pk"))
        .order_by()
    )
    found: dict[str, dict[str, int]] = defaultdict(dict)
    for row in rows:
        found[row["proposal__prompt_version"]][row["verdict"]] = row["count"]
    return found


@contextmanager
def _room_to_aggregate() -> Iterator[None]:
    """On PostgreSQL, a transaction in which the aggregates may sort and group in memory."""
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{AGGREGATE_WORK_MEM}'")
        yield


def workflow_quality(*, workflow: Workflow) -> Quality:
    """Each prompt version of `workflow` that was decided in the last 30 days or judged in shadow, the
    one decided most recently first; three aggregate queries (on PostgreSQL, in a transaction of their
    own with room to sort in memory). The rollback drill's proposals are an exercise of
    the workflow's undo, not work of its prompts, and are left out."""
    days, since = _window()
    by_day: dict[str, dict[date, Tally]] = defaultdict(dict)
    last: dict[str, datetime] = {}
    with _room_to_aggregate():
        for version, day, tally, latest in _tallies(workflow, since):
            by_day[version][day] = tally
            last[version] = max(latest, last.get(version, latest))
        reasons = _reasons(workflow, since)
        verdicts = _verdicts(workflow)
    versions = []
    for version in {*by_day, *reasons, *verdicts}:
        quality = VersionQuality(
            prompt_version=version,
            days=[DayTally(day, by_day[version].get(day, Tally())) for day in days],
            reasons=reasons.get(version, [])[:TOP_REASONS],
            reason_groups=len(reasons.get(version, [])),
            would_approve=verdicts.get(version, {}).get(Verdict.WOULD_APPROVE, 0),
            would_reject=verdicts.get(version, {}).get(Verdict.WOULD_REJECT, 0),
            last_decided=last.get(version),
        )
        for tally in by_day[version].values():
            quality.total.add(tally)
        versions.append(quality)
    versions.sort(
        key=lambda v: (v.last_decided is None, -(v.last_decided.timestamp() if v.last_decided else 0), v.prompt_version)
    )
    return Quality(workflow=workflow, first_day=days[0], last_day=days[-1], versions=versions)


@dataclass(frozen=True)
class ShadowToJudge:
    waiting: int  # shadowed proposals of the workflow this person has given no verdict on
    first_id: int | None  # the oldest of them


def shadow_to_judge(*, workflow: Workflow, user: Viewer) -> ShadowToJudge | None:
    """For a reviewer of `workflow`, its shadowed proposals still without their verdict (None for anyone
    else); two queries."""
    if not user.is_authenticated or not user_may_review(user=user, workflow=workflow):
        return None
    found = (
        Proposal.objects.filter(workflow=workflow, status=ProposalStatus.SHADOWED)
        .exclude(shadow_verdicts__user_id=user.pk)
        .aggregate(waiting=Count("pk"), first_id=Min("pk"))
    )
    return ShadowToJudge(waiting=found["waiting"], first_id=found["first_id"])
