"""SLAs that escalate: a pending proposal past its workflow's decide_within is overdue on the queue
and its approvers are told once; still pending after twice it, the group on override duty at that
moment is told once. One notice per workflow and step lists what became overdue together."""

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from approvals.models import Notice, Proposal, ProposalStatus
from approvals.waiting.sla import sla_scan
from approvals.workflows.loading import workflow_group_permissions_sync
from tests.helpers.factories import ProposalFactory, WorkflowFactory
from tests.helpers.overrides import DAY, NIGHT, on_call_workflow

pytestmark = pytest.mark.django_db

SLA = timedelta(hours=2)


def _breaches() -> list[Notice]:
    return list(Notice.objects.filter(event="sla_breach").order_by("id"))


def test_an_overdue_proposal_is_told_to_the_approvers_once_then_to_the_group_on_duty_once():
    on_call = on_call_workflow(decide_within=SLA)
    submitted = NIGHT - timedelta(hours=5)
    with time_machine.travel(submitted, tick=False):
        waiting = on_call.proposal(status=ProposalStatus.PENDING, record_id="CUS-20001")
        decided = on_call.proposal(status=ProposalStatus.APPROVED)

    with time_machine.travel(submitted + SLA - timedelta(seconds=1), tick=False):
        assert sla_scan() == 0
    assert _breaches() == []

    with time_machine.travel(submitted + SLA, tick=False):
        assert sla_scan() == 1
        assert sla_scan() == 0  # told once
    [told] = _breaches()
    assert told.workflow == on_call.workflow
    assert told.subject == "address-updates: 1 proposal waiting past the 2h SLA"
    assert "waited longer than its decide_within of 2h" in told.body
    assert "Its approvers (support-leads) decide them." in told.body
    assert f"proposal {waiting.pk}: update shipping_address on customer CUS-20001, waiting 2h" in told.body
    assert "/review/?workflow=address-updates" in told.body
    assert f"proposal {decided.pk}:" not in told.body

    with time_machine.travel(submitted + 2 * SLA - timedelta(seconds=1), tick=False):
        assert sla_scan() == 0
    # Friday 21:00 GMT: after hours, so the ops managers are on override duty.
    with time_machine.travel(submitted + 2 * SLA, tick=False):
        assert sla_scan() == 1
    with time_machine.travel(submitted + 3 * SLA, tick=False):
        assert sla_scan() == 0  # each step told once
    first, escalated = _breaches()
    assert first == told
    assert escalated.subject == (
        "address-updates: 1 proposal still waiting after twice the 2h SLA; told ops-managers on duty"
    )
    assert "still wait for a decision after 4h, twice its decide_within of 2h" in escalated.body
    assert "On override duty now: ops-managers (after-hours shift, until 2026-11-30 08:00 UTC)." in escalated.body
    waiting.refresh_from_db()
    assert (waiting.sla_told_at, waiting.sla_escalated_at) == (submitted + SLA, submitted + 2 * SLA)
    assert waiting.status == ProposalStatus.PENDING  # telling people decides nothing


def test_in_the_day_the_escalation_goes_to_the_day_group_on_duty():
    on_call = on_call_workflow(decide_within=SLA)
    with time_machine.travel(DAY - 2 * SLA, tick=False):
        on_call.proposal(status=ProposalStatus.PENDING)
    with time_machine.travel(DAY, tick=False):
        assert sla_scan() == 2  # both steps at once: the scan had not run before
    told, escalated = _breaches()
    assert "waiting past the 2h SLA" in told.subject
    assert escalated.subject.endswith("told support-leads on duty")
    assert "On override duty now: support-leads (day shift, until 2026-11-27 18:00 UTC)." in escalated.body


def test_proposals_overdue_together_make_one_notice_per_workflow_and_a_workflow_without_an_sla_none():
    on_call = on_call_workflow(decide_within=SLA)
    other = WorkflowFactory(slug="refund-notes", approver_group=on_call.leads, decide_within=timedelta(minutes=30))
    no_sla = WorkflowFactory(slug="ticket-triage", approver_group=on_call.leads)
    with time_machine.travel(NIGHT - SLA, tick=False):
        mine = [on_call.proposal(status=ProposalStatus.PENDING) for _ in range(12)]
        theirs = ProposalFactory(workflow=other, status=ProposalStatus.PENDING)
        ProposalFactory(workflow=no_sla, status=ProposalStatus.PENDING)
    with time_machine.travel(NIGHT, tick=False):
        assert sla_scan(limit=5) == 13 + 1  # 12 + 1 past their SLA, and `theirs` past twice its 30m
    # Told in chunks of 5, oldest first: 5, 5, then the last 2 with the other workflow's one.
    assert [notice.subject for notice in _breaches()] == [
        "address-updates: 5 proposals waiting past the 2h SLA",
        "address-updates: 5 proposals waiting past the 2h SLA",
        "address-updates: 2 proposals waiting past the 2h SLA",
        "refund-notes: 1 proposal waiting past the 30m SLA",
        "refund-notes: 1 proposal still waiting after twice the 30m SLA; told nobody on duty",
    ]
    assert not Notice.objects.filter(workflow=no_sla).exists()
    escalated = _breaches()[-1]
    assert "Nobody is on override duty for this workflow: its file names no override group." in escalated.body
    assert f"proposal {theirs.pk}:" in escalated.body
    assert Proposal.objects.filter(pk__in=[p.pk for p in mine], sla_told_at__isnull=False).count() == 12


def test_a_notice_names_ten_proposals_and_counts_the_rest():
    on_call = on_call_workflow(decide_within=SLA)
    with time_machine.travel(NIGHT - SLA, tick=False):
        proposals = [on_call.proposal(status=ProposalStatus.PENDING) for _ in range(13)]
    with time_machine.travel(NIGHT, tick=False):
        assert sla_scan() == 13
    [told] = _breaches()
    assert told.subject == "address-updates: 13 proposals waiting past the 2h SLA"
    assert told.body.count("\n- proposal ") == 10
    assert f"proposal {proposals[9].pk}:" in told.body and f"proposal {proposals[10].pk}:" not in told.body
    assert "- and 3 more" in told.body


def test_the_age_badges_follow_the_workflows_sla_and_the_fixed_bands_without_one(client):
    on_call = on_call_workflow(decide_within=SLA)
    fixed = WorkflowFactory(slug="ticket-triage", approver_group=on_call.leads)
    workflow_group_permissions_sync(workflow=fixed)
    ages = {"sla-fresh": 59, "sla-soon": 61, "sla-over": 150, "fixed-mid": 150, "fixed-late": 300}
    for name, minutes in ages.items():
        workflow = on_call.workflow if name.startswith("sla") else fixed
        with time_machine.travel(NIGHT - timedelta(minutes=minutes), tick=False):
            ProposalFactory(workflow=workflow, status=ProposalStatus.PENDING)
    client.force_login(on_call.lead)
    with time_machine.travel(NIGHT, tick=False):
        html = client.get(reverse("review-queue")).content.decode()
    badges = {
        "sla-fresh": '<span class="age-badge is-fresh" title="to be decided within 2h">59m<span class="visually-'
        'hidden">, to be decided within 2h</span></span>',
        "sla-soon": '<span class="age-badge is-late" title="due soon: to be decided within 2h">1h',
        "sla-over": '<span class="age-badge is-overdue" title="overdue by 30m: to be decided within 2h">2h',
        "fixed-mid": '<span class="age-badge ">2h</span>',
        "fixed-late": '<span class="age-badge is-late" title="waiting over 4 hours">5h',
    }
    for name, badge in badges.items():
        assert badge in html, name
