"""Readiness computed from facts: the nine checks a workflow passes before it moves to a later stage,
each with what failed in plain words and the evidence it rests on.

Which checks a stage needs: shadow 1, 2, 3 and 5 (the data reaches the AI, so the map, the lanes,
retention and outside services must be right); canary those and 4, 6 and 8; live all nine.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.urls import reverse

from approvals.models import Access, Lane, RollbackDrill, Stage, Workflow
from approvals.readiness.facts import DRILL_WITHIN, REVIEW_WITHIN, Facts, facts_for
from core.timeutils import format_window

# The stages a workflow rises through, in order; `paused` stands outside them.
RISING = (Stage.DRAFT, Stage.SHADOW, Stage.CANARY, Stage.LIVE)
# The first stage that needs each check; every later stage needs it too.
FIRST_NEEDED = {1: Stage.SHADOW, 2: Stage.SHADOW, 3: Stage.SHADOW, 5: Stage.SHADOW}
FIRST_NEEDED |= {4: Stage.CANARY, 6: Stage.CANARY, 8: Stage.CANARY, 7: Stage.LIVE, 9: Stage.LIVE}
TITLES = {
    1: "every field it reads, suggests or writes has a policy, and its systems and outside services are declared",
    2: "lanes are not mixed",
    3: "every artifact kind it stores has a retention rule with an owner and a second owner",
    4: "its approver and override groups have active members, and the schedule covers every hour of the week",
    5: "each outside service sees only fields the workflow may read",
    6: "a rollback drill passed in the last 30 days, within the workflow's rollback target",
    7: "a trace drill passed in the last 30 days",
    8: "a five-step review was signed off in the last 90 days",
    9: "it spent its canary days in canary with no undo and no stop",
}


def _rank(stage: str) -> int:
    return RISING.index(stage) if stage in RISING else -1


def checks_needed(stage: str) -> list[int]:
    """The numbers of the checks a workflow must pass to be in `stage` (none for draft and paused)."""
    return [number for number, first in sorted(FIRST_NEEDED.items()) if 0 <= _rank(first) <= _rank(stage)]


def is_forward(*, stage_before: str, stage_after: str) -> bool:
    """A move that raises risk: to a later stage, or out of `paused` to any stage past draft. A move
    back, or to `paused`, lowers it."""
    if stage_after not in RISING[1:]:
        return False
    return stage_before == Stage.PAUSED or _rank(stage_after) > _rank(stage_before)


def next_stage(stage: str) -> str | None:
    """The stage after `stage` on the way to live (none from live, nor from paused: the file says where it resumes)."""
    rank = _rank(stage)
    return RISING[rank + 1] if 0 <= rank < len(RISING) - 1 else None


@dataclass(frozen=True)
class Evidence:
    """What a check rests on: a page (`url`), or a report kept as text where no page shows it."""

    label: str
    url: str = ""
    text: str = ""


@dataclass(frozen=True)
class Check:
    number: int
    title: str
    passed: bool
    detail: str
    evidence: tuple[Evidence, ...] = ()

    @property
    def needed_for(self) -> tuple[str, ...]:
        return tuple(stage for stage in RISING if self.number in checks_needed(stage))

    @property
    def named(self) -> str:
        return f"check {self.number} ({self.title})"


@dataclass(frozen=True)
class Readiness:
    """The nine checks of one workflow, judged for `target_stage`."""

    workflow: Workflow
    checks: tuple[Check, ...]
    target_stage: str

    def failing(self, stage: str | None = None) -> list[Check]:
        needed = checks_needed(stage or self.target_stage)
        return [check for check in self.checks if check.number in needed and not check.passed]

    @property
    def ready(self) -> bool:
        return not self.failing()

    @property
    def next_stage(self) -> str | None:
        return next_stage(self.workflow.stage)

    @property
    def forced_at(self) -> datetime | None:
        """When its stage was forced against readiness, if it was."""
        at = (self.workflow.forced_stage or {}).get("at")
        return datetime.fromisoformat(at) if isinstance(at, str) else None

    @property
    def released_against_readiness(self) -> bool:
        """Forced into its current stage, and that stage's checks still fail."""
        forced = self.workflow.forced_stage or {}
        return forced.get("stage") == self.workflow.stage and bool(self.failing(self.workflow.stage))


def _url(name: str, *args: str, query: dict[str, str] | None = None) -> str:
    url = reverse(name, args=args)
    return f"{url}?{urlencode(query)}" if query else url


def _sentence(problems: list[str]) -> str:
    text = "; ".join(problems)
    return f"{text[:1].upper()}{text[1:]}."


def _day(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "an unknown time"


def _span(delta: timedelta) -> str:
    hours = int(delta.total_seconds() // 3600)
    return f"{hours // 24} d {hours % 24} h"


def _map_evidence(workflow: Workflow) -> tuple[Evidence, ...]:
    return (Evidence("Fields and policies on the workflows page", _url("workflow-list")),)


def _map_complete(workflow: Workflow, facts: Facts) -> Check:
    policies = facts.policies.get(workflow.pk, {})
    problems = [] if workflow.systems else ["no system is declared: the file's systems list is empty"]
    for where, names in [(f"the system {s['name']}", s.get("fields", [])) for s in workflow.systems] + [
        (f"the outside service {s['name']}", s.get("sees", [])) for s in workflow.outside_services
    ]:
        missing = [name for name in names if name not in policies]
        if missing:
            problems.append(f"{where} names {', '.join(missing)}, which has no field policy")
    systems = ", ".join(system["name"] for system in workflow.systems)
    services = len(workflow.outside_services)
    detail = (
        _sentence(problems)
        if problems
        else f"Systems declared: {systems}; {services} outside service{'s' if services != 1 else ''}; "
        f"every field they name has a policy."
    )
    return Check(1, TITLES[1], not problems, detail, _map_evidence(workflow))


def _lanes(workflow: Workflow, facts: Facts) -> Check:
    policies = facts.policies.get(workflow.pk, {})
    problems: list[str] = []
    if workflow.lane == Lane.ASSIST:
        changing = sorted(name for name, access in policies.items() if access != Access.READ)
        if changing:
            problems.append(f"it is in the assist lane but may change {', '.join(changing)}")
        if workflow.actions:
            problems.append(f"it is in the assist lane but may {', '.join(workflow.actions)} records")
    elif workflow.approver_group_id is None:
        problems.append("it is in the write lane but names no approver group")
    lane = "assist lane: it only reads" if workflow.lane == Lane.ASSIST else "write lane, with an approver group"
    detail = _sentence(problems) if problems else f"It stays in its lane ({lane})."
    return Check(2, TITLES[2], not problems, detail, _map_evidence(workflow))


def _retention(workflow: Workflow, facts: Facts) -> Check:
    rules = facts.rules.get(workflow.pk, [])
    kept = {(rule.kind, rule.bucket) for rule in rules if rule.window > timedelta(0)}
    stored = kept | facts.stored.get(workflow.pk, set())
    evidence = (Evidence("Retention rules and what is stored", _url("workflow-retention", workflow.slug)),)
    if not stored:
        return Check(3, TITLES[3], True, "It stores no artifacts: every window is 0 or there is no rule.", evidence)
    by_key = {(rule.kind, rule.bucket): rule for rule in rules}
    problems = [f"{kind}/{bucket} is stored with no rule" for kind, bucket in sorted(stored - set(by_key))]
    co_owner = workflow.retention_co_owner_id
    if co_owner is None:
        problems.append("the rules have no second owner (retention_co_owner)")
    else:
        same = sorted(f"{rule.kind}/{rule.bucket}" for rule in rules if rule.owner_id == co_owner)
        if same:
            problems.append(f"the second owner also owns {', '.join(same)}: two different people must own each rule")
    if problems:
        return Check(3, TITLES[3], False, _sentence(problems), evidence)
    owners = sorted({rule.owner_label for rule in rules if (rule.kind, rule.bucket) in stored})
    kinds = ", ".join(f"{kind}/{bucket}" for kind, bucket in sorted(stored))
    second = facts.people.get(co_owner or 0, "")
    detail = f"Stored: {kinds}; owned by {', '.join(owners)}, with {second} as second owner."
    return Check(3, TITLES[3], True, detail, evidence)


def _hours(workflow: Workflow) -> str:
    days = ", ".join(workflow.override_days)
    start, end = workflow.override_day_from, workflow.override_day_to
    clock = f"{start:%H:%M}–{end:%H:%M}" if start and end else "its day hours"
    return f"{days} {clock} ({workflow.override_timezone})"


def _staffed(workflow: Workflow, facts: Facts) -> Check:
    evidence = (Evidence("Override schedule", _url("workflow-schedule", workflow.slug)),)
    if workflow.lane == Lane.ASSIST:
        detail = "It is in the assist lane and changes no record: there is nothing to countersign or override."
        return Check(4, TITLES[4], True, detail, evidence)
    problems: list[str] = []

    def empty(group_id: int | None) -> str | None:
        group = facts.groups.get(group_id) if group_id is not None else None
        return group.name if group is not None and group.active_members == 0 else None

    if workflow.approver_group_id is None:
        problems.append("it names no approver group")
    elif name := empty(workflow.approver_group_id):
        problems.append(f"nobody active is in the approver group {name}")
    day, night = workflow.override_day_group_id, workflow.override_after_hours_group_id
    if day is not None and (name := empty(day)):
        problems.append(f"nobody active is in the day override group {name}: {_hours(workflow)} is not covered")
    outside = f"outside {_hours(workflow)}" if day is not None else "at every hour of the week"
    if night is None:
        problems.append(f"there is no after-hours override group: nobody is on override duty {outside}")
    elif name := empty(night):
        problems.append(f"nobody active is in the after-hours group {name}: nobody is on override duty {outside}")
    if problems:
        return Check(4, TITLES[4], False, _sentence(problems), evidence)
    names = [facts.groups[g].name for g in (workflow.approver_group_id, day, night) if g in facts.groups]
    detail = f"Approvers and override duty are staffed ({', '.join(dict.fromkeys(names))}) at every hour of the week."
    return Check(4, TITLES[4], True, detail, evidence)


def _outside_services(workflow: Workflow, facts: Facts) -> Check:
    policies = facts.policies.get(workflow.pk, {})
    problems = [
        f"{service['name']} sees {', '.join(unread)}, which the workflow may not read"
        for service in workflow.outside_services
        if (unread := [name for name in service.get("sees", []) if name not in policies])
    ]
    if problems:
        return Check(5, TITLES[5], False, _sentence(problems), _map_evidence(workflow))
    count = len(workflow.outside_services)
    detail = (
        f"{count} outside service{'s' if count != 1 else ''}, each seeing only fields the workflow may read."
        if count
        else "No outside service sees its data."
    )
    return Check(5, TITLES[5], True, detail, _map_evidence(workflow))


PHASES = ("stop", "undo", "check")


def _drill_time(timings: dict) -> float | None:
    """Seconds the drill's stop, undo and check took together; None when they were not timed apart."""
    if not all(isinstance(timings.get(phase), int | float) for phase in PHASES):
        return None
    return sum(float(timings[phase]) for phase in PHASES)


def _drill_evidence(drill: RollbackDrill) -> Evidence:
    return Evidence(f"Rollback drill {drill.pk}", _url("rollback-drill", str(drill.pk)), text=drill.report)


def _rollback_drill(workflow: Workflow, facts: Facts) -> Check:
    if workflow.lane == Lane.ASSIST:
        return Check(
            6, TITLES[6], True, "It is in the assist lane and changes no record: there is nothing to roll back."
        )
    drills = facts.rollback_drills.get(workflow.slug, [])
    target = workflow.rollback_target.total_seconds()
    goal = f"the target is {format_window(workflow.rollback_target)}"
    for drill in drills:
        took = _drill_time(drill.timings)
        if drill.passed and took is not None and took <= target:
            phases = ", ".join(f"{phase} {float(drill.timings[phase]):.1f} s" for phase in PHASES)
            detail = f"The drill of {_day(drill.finished_at)} passed in {took:.1f} s ({phases}); {goal}."
            return Check(6, TITLES[6], True, detail, (_drill_evidence(drill),))
    if not drills:
        detail = (
            f"No rollback drill of {workflow.slug} finished in the last {DRILL_WITHIN.days} days; "
            f"run manage.py rollback_drill --workflow {workflow.slug}."
        )
        return Check(6, TITLES[6], False, detail)
    last = drills[0]
    took = _drill_time(last.timings)
    when = f"The last drill, of {_day(last.finished_at)},"
    if not last.passed:
        problems = "; ".join(str(problem) for problem in last.problems) or "see its report"
        detail = f"{when} failed: {problems}."
    elif took is None:
        detail = f"{when} did not time the stop, the undo and the check separately."
    else:
        detail = f"{when} took {took:.1f} s to stop, undo and check; {goal}."
    return Check(6, TITLES[6], False, detail, (_drill_evidence(last),))


def _trace_drill(workflow: Workflow, facts: Facts) -> Check:
    if workflow.lane == Lane.ASSIST:
        return Check(7, TITLES[7], True, "It is in the assist lane and changes no record: there is no change to trace.")
    drills = facts.trace_drills.get(workflow.pk, [])
    url = _url("trace-drill-start", workflow.slug)
    passed = next((drill for drill in drills if drill.passed), None)
    if passed is not None:
        found = (Evidence(f"Trace drill of {_day(passed.finished_at)}", url),)
        return Check(7, TITLES[7], True, f"The trace drill of {_day(passed.finished_at)} passed.", found)
    evidence = (Evidence("Trace drill", url),)
    if drills:
        detail = f"The last trace drill, of {_day(drills[0].finished_at)}, failed."
        return Check(7, TITLES[7], False, detail, evidence)
    detail = f"No trace drill finished in the last {DRILL_WITHIN.days} days."
    return Check(7, TITLES[7], False, detail, evidence)


def _five_step_review(workflow: Workflow, facts: Facts) -> Check:
    reviews = facts.reviews.get(workflow.pk, [])
    url = _url("workflow-review", workflow.slug)
    ready = next((review for review in reviews if review.decision == "ready"), None)
    if ready is not None:
        found = (Evidence(f"Five-step review signed off {_day(ready.signed_off_at)}", url),)
        detail = f"The five-step review signed off {_day(ready.signed_off_at)} found it ready."
        return Check(8, TITLES[8], True, detail, found)
    evidence = (Evidence("Five-step review", url),)
    if reviews:
        detail = f"The last five-step review, signed off {_day(reviews[0].signed_off_at)}, found it not ready."
        return Check(8, TITLES[8], False, detail, evidence)
    detail = f"No five-step review was signed off in the last {REVIEW_WITHIN.days} days."
    return Check(8, TITLES[8], False, detail, evidence)


def _canary_days(workflow: Workflow, facts: Facts) -> Check:
    evidence = (Evidence("The workflow's trail", _url("trail", query={"workflow": workflow.slug})),)
    days = workflow.canary_days
    if workflow.stage == Stage.LIVE:
        forced = workflow.forced_stage or {}
        if forced.get("stage") == Stage.LIVE:
            detail = "It was forced live without its canary days; move it back to canary to earn them."
            return Check(9, TITLES[9], False, detail, evidence)
        detail = f"It went live {_day(workflow.stage_changed_at)}, after its canary days."
        return Check(9, TITLES[9], True, detail, evidence)
    if workflow.stage != Stage.CANARY:
        detail = f"It is in {workflow.stage}, not canary: it must spend {days} days in canary first."
        return Check(9, TITLES[9], False, detail, evidence)
    since = workflow.stage_changed_at
    problems: list[str] = []
    spent = facts.now - since
    if spent < timedelta(days=days):
        ready_at = since + timedelta(days=days)
        problems.append(f"it has been in canary {_span(spent)} of {days} days (ready {_day(ready_at)})")
    if job := facts.last_undo_job.get(workflow.pk):
        problems.append(f"an undo job over its changes was started {_day(job)}")
    if stop := facts.last_stop.get(workflow.pk):
        problems.append(f"a stop switch over the whole workflow was engaged {_day(stop)}")
    if problems:
        detail = f"Since it entered canary ({_day(since)}): " + "; ".join(problems) + "."
        return Check(9, TITLES[9], False, detail, evidence)
    detail = f"In canary since {_day(since)} ({_span(spent)}), with no undo and no stop."
    return Check(9, TITLES[9], True, detail, evidence)


CHECKS: tuple[Callable[[Workflow, Facts], Check], ...] = (
    _map_complete,
    _lanes,
    _retention,
    _staffed,
    _outside_services,
    _rollback_drill,
    _trace_drill,
    _five_step_review,
    _canary_days,
)


def _default_target(workflow: Workflow) -> str:
    return next_stage(workflow.stage) or (Stage.LIVE if workflow.stage == Stage.PAUSED else workflow.stage)


def readiness_by_workflow(workflows: list[Workflow], *, targets: dict[int, str] | None = None) -> dict[int, Readiness]:
    """Each workflow's readiness for its stage in `targets`, else its next stage (its own when live;
    live when paused), in a fixed number of queries whatever the number of workflows."""
    facts = facts_for(workflows)
    targets = targets or {}
    return {
        workflow.pk: Readiness(
            workflow=workflow,
            checks=tuple(check(workflow, facts) for check in CHECKS),
            target_stage=targets.get(workflow.pk) or _default_target(workflow),
        )
        for workflow in workflows
    }


def readiness_of(workflow: Workflow, *, target_stage: str | None = None) -> Readiness:
    """The nine checks of `workflow`, judged for `target_stage` (by default its next stage)."""
    targets = {workflow.pk: target_stage} if target_stage else None
    return readiness_by_workflow([workflow], targets=targets)[workflow.pk]
