"""The demo leaves the on-call side something to try: a halted batch that ops, after hours, may
override (and lead may not), a conflict in the making, a flagged prompt, and a pending bulk batch to
approve as a group and stop while the worker writes it."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core.management import call_command

from approvals.applying.services import Outcome, proposals_apply
from approvals.models import Batch, Proposal, ProposalStatus, StopScope, StopSwitch
from approvals.overrides.selectors import blocked_overview
from approvals.overrides.services import override_grant
from core.errors import NotAllowed
from records.models import Change

# Saturday 28 November 2026, 01:00 in London: after hours for the demo's schedule.
SATURDAY_NIGHT = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)


@pytest.fixture
def demo(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo")


def test_a_halted_batch_waits_on_the_blocked_page_for_ops_and_not_for_lead(demo):
    batch = Batch.objects.get(name="Weekend address sweep")
    switch = StopSwitch.objects.get(released_at__isnull=True, scope=StopScope.BATCH)
    assert (switch.scope, switch.batch_id, switch.engaged_by_label) == (
        StopScope.BATCH,
        batch.pk,
        "address-updates/address-updates-pipeline",
    )
    approved = list(batch.proposals.filter(status=ProposalStatus.APPROVED).values_list("pk", flat=True))
    assert len(approved) == 12 and batch.proposals.filter(status=ProposalStatus.PENDING).count() == 3
    lead, ops = User.objects.get(username="lead"), User.objects.get(username="ops")
    with time_machine.travel(SATURDAY_NIGHT, tick=False):
        [lead_row] = [row for row in blocked_overview(user=lead).stops if row.switch.batch_id == batch.pk]
        [ops_row] = [row for row in blocked_overview(user=ops).stops if row.switch.batch_id == batch.pk]
        assert (lead_row.held, lead_row.may_override) == (12, False)
        assert (ops_row.held, ops_row.may_override) == (12, True)
        assert {r.outcome for r in proposals_apply(proposal_ids=approved, worker="demo")} == {Outcome.STOPPED}
        with pytest.raises(NotAllowed):
            override_grant(user=lead, block="stop_switch", scope="batch", batch=batch, reason="Checked five by hand")
        override_grant(user=ops, block="stop_switch", scope="batch", batch=batch, reason="Checked five by hand, fine")
        results = proposals_apply(proposal_ids=approved, worker="demo")
    assert {r.outcome for r in results} == {Outcome.APPLIED}
    assert Change.objects.filter(batch_id=batch.pk).count() == 12


def test_the_worker_turns_the_approved_change_edited_by_hand_into_a_conflict(demo):
    # (dedupe@3's approved proposals wait on the circuit breaker's stop: tests/approvals/demo/test_seed_demo.py)
    [stale] = Proposal.objects.filter(status=ProposalStatus.APPROVED, batch__isnull=True).exclude(
        prompt_version="dedupe@3"
    )
    assert proposals_apply(proposal_ids=[stale.pk], worker="demo")[0].outcome == Outcome.CONFLICT
    with time_machine.travel(SATURDAY_NIGHT, tick=False):
        # (the older conflicts are the demo's past: tests/approvals/demo/test_seed_demo_history.py)
        [row] = [
            r for r in blocked_overview(user=User.objects.get(username="ops")).conflicts if r.proposal.pk == stale.pk
        ]
    assert row.proposal.pk == stale.pk and row.may_override


def test_one_pending_proposal_carries_a_flagged_prompt_and_the_bulk_batch_waits_for_a_decision(demo):
    flagged = Proposal.objects.exclude(flagged_fields=[])
    assert flagged.count() == 1
    assert flagged.get().status == ProposalStatus.PENDING
    assert set(flagged.get().flagged_fields) <= {"customer.support_notes", "customer.internal_notes"}
    nightly = Batch.objects.get(name="Nightly address sweep from support tickets")
    assert nightly.proposals.filter(status=ProposalStatus.PENDING).count() == 30
    assert not StopSwitch.objects.filter(batch=nightly).exists()
