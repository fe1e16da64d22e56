"""How long a pending proposal may wait for a decision (its workflow's `decide_within`): how its age
reads on the queue, and telling people when it waits too long. The approver group is told once a
proposal waits past the SLA; the group on override duty at that moment once it still waits after
twice the SLA.

A scan (beat, every minute) tells of every proposal newly past a step in one notice per workflow and
step, listing them, so a channel gets one message for a burst rather than one per proposal. Each
proposal remembers that it was told (`sla_told_at`, `sla_escalated_at`, written in the transaction
that records the notice), so none is told of twice at the same step.
"""

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import reduce
from operator import or_

from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from approvals.models import Proposal, ProposalStatus, Workflow
from approvals.notices import notice_record
from approvals.workflows.schedule import Duty, Shift, override_duty
from core.timeutils import format_window, humanize_age

# A workflow without an SLA keeps the queue's fixed bands: fresh under an hour, late after four
# hours, overdue after a day.
FIXED_FRESH = timedelta(hours=1)
FIXED_LATE = timedelta(hours=4)
FIXED_OVERDUE = timedelta(days=1)
# Proposals locked and told of per transaction; a scan goes on until none is left.
SLA_CHUNK = 200
# Proposals a notice names one by one; any more are counted.
LISTED = 10


@dataclass(frozen=True)
class AgeBand:
    css: str  # is-fresh, is-late, is-overdue, or "" between fresh and late
    note: str  # what the badge means, for its title and for screen readers ("" when nothing)


def age_band(*, created_at: datetime, decide_within: timedelta | None, now: datetime) -> AgeBand:
    """How a pending proposal's age reads. Under an SLA: fresh under half of it, due soon from half
    of it, overdue from all of it. Without one, the fixed bands."""
    age = now - created_at
    if decide_within is None:
        if age >= FIXED_OVERDUE:
            return AgeBand("is-overdue", "waiting over a day")
        if age >= FIXED_LATE:
            return AgeBand("is-late", "waiting over 4 hours")
        return AgeBand("is-fresh" if age < FIXED_FRESH else "", "")
    window = format_window(decide_within)
    if age >= decide_within:
        late_by = humanize_age(created_at + decide_within, now=now)
        return AgeBand("is-overdue", f"overdue by {late_by}: to be decided within {window}")
    if age >= decide_within / 2:
        return AgeBand("is-late", f"due soon: to be decided within {window}")
    return AgeBand("is-fresh", f"to be decided within {window}")


@dataclass(frozen=True)
class Step:
    number: int  # 1: past the SLA, the approvers are told; 2: past twice it, the group on override duty
    marker: str  # the proposal's column that says it was told of at this step


STEPS = (Step(1, "sla_told_at"), Step(2, "sla_escalated_at"))


def sla_scan(*, now: datetime | None = None, limit: int = SLA_CHUNK) -> int:
    """Record a notice for the pending proposals newly past their workflow's SLA (step 1) and newly
    past twice it (step 2). Returns how many proposals were told of, at both steps together.

    One query finds the proposals of every workflow at once. A proposal being decided right now
    (its row locked) is skipped; if it is still pending, the next scan tells of it.
    """
    now = now or timezone.now()
    workflows = {
        workflow.pk: (workflow, workflow.decide_within)
        for workflow in Workflow.objects.filter(decide_within__isnull=False).select_related(
            "approver_group", "override_day_group", "override_after_hours_group"
        )
        if workflow.decide_within is not None
    }
    told = 0
    if not workflows:
        return told
    for step in STEPS:
        while (count := _tell(workflows=workflows, step=step, now=now, limit=limit)) > 0:
            told += count
            if count < limit:
                break
    return told


def _tell(*, workflows: dict[int, tuple[Workflow, timedelta]], step: Step, now: datetime, limit: int) -> int:
    due = reduce(
        or_, (Q(workflow_id=pk, created_at__lte=now - sla * step.number) for pk, (_, sla) in workflows.items())
    )
    with transaction.atomic():
        proposals = list(
            Proposal.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(due, status=ProposalStatus.PENDING, **{f"{step.marker}__isnull": True})
            .only("id", "workflow_id", "record_type", "record_id", "action", "changes", "created_at")
            .order_by("created_at", "id")[:limit]
        )
        if not proposals:
            return 0
        Proposal.objects.filter(pk__in=[proposal.pk for proposal in proposals]).update(**{step.marker: now})
        waiting: dict[int, list[Proposal]] = defaultdict(list)
        for proposal in proposals:
            waiting[proposal.workflow_id].append(proposal)
        for workflow_id, overdue in waiting.items():
            workflow, sla = workflows[workflow_id]
            _notice(workflow=workflow, sla=sla, step=step, overdue=overdue, now=now)
    return len(proposals)


def _listed(overdue: list[Proposal], now: datetime) -> str:
    lines = []
    for proposal in overdue[:LISTED]:
        what = proposal.action + (f" {', '.join(proposal.changes)}" if proposal.changes else "")
        lines.append(
            f"- proposal {proposal.pk}: {what} on {proposal.record_type} {proposal.record_id}, "
            f"waiting {humanize_age(proposal.created_at, now=now)}"
        )
    if len(overdue) > LISTED:
        lines.append(f"- and {len(overdue) - LISTED} more")
    return "\n".join(lines)


def _on_duty(duty: Duty) -> str:
    if duty.group is None:
        return "Nobody is on override duty for this workflow: its file names no override group."
    shift = "day" if duty.shift == Shift.DAY else "after-hours"
    until = f", until {duty.until:%Y-%m-%d %H:%M} UTC" if duty.until else ""
    return f"On override duty now: {duty.group_name} ({shift} shift{until})."


def _notice(*, workflow: Workflow, sla: timedelta, step: Step, overdue: list[Proposal], now: datetime) -> None:
    window = format_window(sla)
    count = len(overdue)
    proposals = f"{count} proposal{'' if count == 1 else 's'}"
    queue = f"{reverse('review-queue')}?workflow={workflow.slug}"
    approvers = workflow.approver_group.name if workflow.approver_group else "none named"
    if step.number == 1:
        subject = f"{workflow.slug}: {proposals} waiting past the {window} SLA"
        opening = (
            f"{proposals} of {workflow.name} ({workflow.slug}) waited longer than its decide_within of {window} "
            f"without a decision. Its approvers ({approvers}) decide them."
        )
    else:
        duty = override_duty(workflow=workflow, at=now)
        told = duty.group_name or "nobody"
        subject = f"{workflow.slug}: {proposals} still waiting after twice the {window} SLA; told {told} on duty"
        opening = (
            f"{proposals} of {workflow.name} ({workflow.slug}) still wait for a decision after "
            f"{format_window(sla * 2)}, twice its decide_within of {window}. "
            f"Its approvers ({approvers}) were told at {window}. {_on_duty(duty)}"
        )
    ids = ",".join(str(proposal.pk) for proposal in overdue)
    digest = hashlib.sha256(ids.encode()).hexdigest()[:16]
    notice_record(
        event="sla_breach",
        workflow=workflow,
        subject=subject,
        body=f"{opening}\n\n{_listed(overdue, now)}\n\nThe queue: {queue}",
        dedupe_key=f"sla:{workflow.pk}:{step.number}:{digest}",
    )
