"""The apply engine asks the overrides whether a block still holds: an override of a batch or workflow
stop, or of a canary cap, lets the write through and records its use; the global stop never yields."""

import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import DatabaseError
from django.urls import reverse
from django.utils import timezone

from approvals.applying.selectors import proposals_ready_to_apply
from approvals.applying.services import Outcome, proposal_apply, proposals_apply
from approvals.jobs import apply_send_now
from approvals.models import Override, Proposal, ProposalStatus, Stage, StopScope
from approvals.overrides import services as overrides
from approvals.overrides.selectors import blocked_overview
from approvals.overrides.services import override_grant
from approvals.stops.services import stop_engage
from approvals.workflows.rollout import CANARY_CAP_REASON
from audit.models import AuditEvent
from audit.services import Actor
from records.models import Change, Customer
from tests.helpers.factories import CustomerFactory
from tests.helpers.overrides import NIGHT, REASON, after_hours_now, on_call_workflow
from tests.helpers.queued import Queued
from tests.helpers.worker import wait_until

pytestmark = pytest.mark.django_db

WORKER = "worker@test/1"


def halt(batch, on_call):
    return stop_engage(
        scope=StopScope.BATCH, batch=batch, reason="bad prompt in the sweep", actor=Actor.user(on_call.lead)
    )


def stop_workflow(on_call):
    return stop_engage(
        scope=StopScope.WORKFLOW, workflow=on_call.workflow, reason="wrong model", actor=Actor.user(on_call.lead)
    )


def lift(on_call, *, block="stop_switch", **target):
    scope = "proposal" if "proposal" in target else "batch" if "batch" in target else "workflow"
    if scope == "workflow":
        target = {"workflow": on_call.workflow}
    return override_grant(user=on_call.ops, block=block, scope=scope, reason=REASON, **target)


def uses():
    return list(AuditEvent.objects.filter(action="override.used").order_by("id").values_list("proposal_id", "details"))


def test_an_override_of_a_batch_stop_lets_the_batch_be_written_and_records_each_use(on_call):
    batch = on_call.batch()
    held = [on_call.proposal(batch=batch) for _ in range(3)]
    halt(batch, on_call)
    with time_machine.travel(NIGHT, tick=False):
        assert [r.outcome for r in proposals_apply(proposal_ids=[p.pk for p in held], worker=WORKER)] == [
            Outcome.STOPPED
        ] * 3
        override = lift(on_call, batch=batch)
        results = proposals_apply(proposal_ids=[p.pk for p in held], worker=WORKER)
    assert [r.outcome for r in results] == [Outcome.APPLIED] * 3
    assert Change.objects.filter(batch_id=batch.pk).count() == 3
    assert [(pk, d["override_id"], d["what"]) for pk, d in uses()] == [
        (p.pk, override.pk, "write applied under a stop") for p in held
    ]
    override.refresh_from_db()
    assert override.use_count == 3
    used = AuditEvent.objects.filter(action="override.used")
    assert set(used.values_list("actor_kind", "actor_label", "approver_label")) == {
        ("worker", WORKER, on_call.ops.get_full_name())
    }


def test_the_global_stop_holds_whatever_override_is_in_force(on_call):
    batch = on_call.batch()
    proposal = on_call.proposal(batch=batch)
    halt(batch, on_call)
    with time_machine.travel(NIGHT, tick=False):
        lift(on_call, batch=batch)
        stop_engage(scope=StopScope.GLOBAL, reason="incident", actor=Actor.user(on_call.ops))
        result = proposal_apply(proposal_id=proposal.pk, worker=WORKER)
    assert (result.outcome, result.stop_scope) == (Outcome.STOPPED, StopScope.GLOBAL)
    assert "stopped (everything)" in result.detail
    assert not Change.objects.exists()
    assert uses() == []


def test_once_the_override_has_expired_the_stop_holds_again_before_any_task_marks_it(on_call):
    batch = on_call.batch()
    first, second = on_call.proposal(batch=batch), on_call.proposal(batch=batch)
    switch = halt(batch, on_call)
    with time_machine.travel(NIGHT, tick=False):
        override = lift(on_call, batch=batch, minutes=30)
        assert proposal_apply(proposal_id=first.pk, worker=WORKER).outcome == Outcome.APPLIED
    with time_machine.travel(NIGHT + timedelta(minutes=30), tick=False):
        result = proposal_apply(proposal_id=second.pk, worker=WORKER)
    assert result.outcome == Outcome.STOPPED
    assert "bad prompt in the sweep" in result.detail
    assert Override.objects.get(pk=override.pk).expired_recorded_at is None
    assert [pk for pk, _ in uses()] == [first.pk]
    assert switch.released_at is None


def test_an_override_that_expires_between_reading_and_writing_writes_nothing(on_call, monkeypatch):
    batch = on_call.batch()
    proposal = on_call.proposal(batch=batch)
    halt(batch, on_call)
    with time_machine.travel(NIGHT, tick=False):
        override = lift(on_call, batch=batch)
    real_hold = overrides.override_stop_hold

    def hold_then_expire(**kwargs):  # type: ignore[no-untyped-def]
        hold = real_hold(**kwargs)
        Override.objects.filter(pk=override.pk).update(expires_at=NIGHT + timedelta(seconds=1))
        return hold

    monkeypatch.setattr("approvals.applying.services.override_stop_hold", hold_then_expire)
    with time_machine.travel(NIGHT + timedelta(seconds=2), tick=False):
        result = proposal_apply(proposal_id=proposal.pk, worker=WORKER)
    assert result.outcome == Outcome.STOPPED
    assert not Change.objects.exists() and uses() == []


def test_a_workflow_override_does_not_reach_into_a_batch_halted_on_its_own(on_call):
    batch = on_call.batch()
    in_batch, loose = on_call.proposal(batch=batch), on_call.proposal()
    halt(batch, on_call)
    stop_workflow(on_call)
    with time_machine.travel(NIGHT, tick=False):
        lift(on_call)
        results = proposals_apply(proposal_ids=[in_batch.pk, loose.pk], worker=WORKER)
    assert [r.outcome for r in results] == [Outcome.STOPPED, Outcome.APPLIED]
    assert results[0].stop_scope == StopScope.BATCH


def test_in_a_chunk_a_proposal_with_its_own_override_is_not_held_with_the_others(on_call):
    batch = on_call.batch()
    first, lifted, last = (on_call.proposal(batch=batch) for _ in range(3))
    halt(batch, on_call)
    with time_machine.travel(NIGHT, tick=False):
        lift(on_call, proposal=lifted)
        results = proposals_apply(proposal_ids=[first.pk, lifted.pk, last.pk], worker=WORKER)
    assert [r.outcome for r in results] == [Outcome.STOPPED, Outcome.APPLIED, Outcome.STOPPED]
    assert list(Change.objects.values_list("proposal_id", flat=True)) == [lifted.pk]


def test_in_a_chunk_a_workflow_stop_leaves_a_batch_with_its_own_override_to_be_written(on_call):
    halted_alone, lifted_batch = on_call.batch(), on_call.batch()
    held = on_call.proposal(batch=halted_alone)
    lifted = [on_call.proposal(batch=lifted_batch) for _ in range(2)]
    stop_workflow(on_call)
    with time_machine.travel(NIGHT, tick=False):
        lift(on_call, batch=lifted_batch)
        results = proposals_apply(proposal_ids=[held.pk, *(p.pk for p in lifted)], worker=WORKER)
    assert [r.outcome for r in results] == [Outcome.STOPPED, Outcome.APPLIED, Outcome.APPLIED]


def test_a_conflict_found_under_an_override_is_recorded_as_such(on_call):
    batch = on_call.batch()
    stale = on_call.proposal(batch=batch, record_id=CustomerFactory(shipping_address="9 New Street").record_id)
    halt(batch, on_call)
    with time_machine.travel(NIGHT, tick=False):
        lift(on_call, batch=batch)
        assert proposal_apply(proposal_id=stale.pk, worker=WORKER).outcome == Outcome.CONFLICT
    [(proposal_id, details)] = uses()
    assert (proposal_id, details["what"]) == (stale.pk, "checked under a stop: in conflict, nothing written")


def test_when_the_overrides_cannot_be_read_nothing_is_written(on_call, monkeypatch):
    batch = on_call.batch()
    proposal = on_call.proposal(batch=batch)
    halt(batch, on_call)

    def unreadable(**kwargs):  # type: ignore[no-untyped-def]
        raise DatabaseError("relation approvals_override is locked")

    monkeypatch.setattr(overrides, "override_active", unreadable)
    with time_machine.travel(NIGHT, tick=False):
        result = proposal_apply(proposal_id=proposal.pk, worker=WORKER)
    assert result.outcome == Outcome.BLOCKED
    assert Customer.objects.get(record_id=proposal.record_id).version == 1
    assert not Change.objects.exists()


def canary_change(slug, at):
    Change.objects.create(
        record_type="customer", record_id="CUS-1", action="update", before={}, after={}, version_before=1,
        version_after=2, workflow_slug=slug, applied_at=at, applied_by="worker", proposal_id=None,
    )  # fmt: skip


def test_an_override_of_the_canary_cap_lets_a_write_past_it():
    on_call = on_call_workflow(slug="refund-notes", stage=Stage.CANARY, canary_daily_limit=1)
    waiting = on_call.proposal()
    canary_change("refund-notes", NIGHT - timedelta(hours=1))
    with time_machine.travel(NIGHT, tick=False):
        result = proposal_apply(proposal_id=waiting.pk, worker=WORKER)
        assert (result.outcome, result.detail) == (Outcome.WAITING, CANARY_CAP_REASON)
        override = lift(on_call, block="canary_cap")
        assert proposal_apply(proposal_id=waiting.pk, worker=WORKER).outcome == Outcome.APPLIED
    [(proposal_id, details)] = uses()
    assert (proposal_id, details["override_id"], details["what"]) == (
        waiting.pk,
        override.pk,
        "write applied beyond the canary daily cap",
    )


def test_the_canary_day_is_the_same_on_the_blocked_page_and_in_the_apply_engine():
    # 06:00 UTC is 01:00 in New York: a write at 04:00 UTC is today's in UTC, yesterday's there.
    on_call = on_call_workflow(
        slug="refund-notes", stage=Stage.CANARY, canary_daily_limit=1, override_timezone="America/New_York"
    )
    waiting = on_call.proposal()
    morning = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
    canary_change("refund-notes", morning - timedelta(hours=2))
    with time_machine.travel(morning, tick=False):
        overview = blocked_overview(user=on_call.ops)
        result = proposal_apply(proposal_id=waiting.pk, worker=WORKER)
    assert [(row.workflow.slug, row.applied_today, row.held) for row in overview.canary] == [("refund-notes", 1, 1)]
    assert (result.outcome, result.detail) == (Outcome.WAITING, CANARY_CAP_REASON)


def test_the_blocked_page_says_when_the_canary_cap_resumes(client):
    on_call = on_call_workflow(slug="refund-notes", stage=Stage.CANARY, canary_daily_limit=1)
    on_call.proposal()
    canary_change("refund-notes", NIGHT - timedelta(hours=1))
    client.force_login(on_call.ops)
    with time_machine.travel(NIGHT, tick=False):
        html = client.get(reverse("blocked")).content.decode()
    assert "resumes at 00:00 UTC" in html


def test_the_sweeper_queues_what_an_override_lifts(on_call):
    lifted_batch, halted_batch = on_call.batch(), on_call.batch()
    lifted = on_call.proposal(batch=lifted_batch)
    held = on_call.proposal(batch=halted_batch)
    loose = on_call.proposal()
    halt(lifted_batch, on_call)
    halt(halted_batch, on_call)
    untouched_since = timezone.now() + timedelta(days=7)
    with time_machine.travel(NIGHT, tick=False):
        assert proposals_ready_to_apply(updated_before=untouched_since) == [loose.pk]
        lift(on_call, batch=lifted_batch, minutes=30)
        assert proposals_ready_to_apply(updated_before=untouched_since) == [lifted.pk, loose.pk]
    with time_machine.travel(NIGHT + timedelta(minutes=31), tick=False):
        assert proposals_ready_to_apply(updated_before=untouched_since) == [loose.pk]
    assert held.status == ProposalStatus.APPROVED


def test_granting_queues_the_held_proposals_in_the_apply_engine_chunks(
    on_call, settings, queued, django_capture_on_commit_callbacks
):
    settings.COUNTERSIGN = {**settings.COUNTERSIGN, "APPLY_CHUNK_SIZE": 2}
    batch = on_call.batch()
    held = [on_call.proposal(batch=batch) for _ in range(5)]
    halt(batch, on_call)
    with time_machine.travel(NIGHT, tick=False), django_capture_on_commit_callbacks(execute=True):
        lift(on_call, batch=batch)
    ids = [p.pk for p in held]
    applies = [item for item in queued if item.name != "approvals.deliver_notices"]  # the grant is told too
    assert applies == [Queued("approvals.apply_approved", [ids[0:2]]), Queued("approvals.apply_approved", [ids[2:4]]),
                       Queued("approvals.apply_approved", [ids[4:]])]  # fmt: skip


@pytest.mark.worker
def test_a_worker_writes_a_halted_batch_once_ops_overrides_it_and_holds_it_again_when_it_ends(start_worker):
    start_worker(concurrency=1, beat=True)
    on_call = after_hours_now()
    batch = on_call.batch()
    held = [on_call.proposal(batch=batch) for _ in range(3)]
    halt(batch, on_call)
    apply_send_now([p.pk for p in held])
    time.sleep(2)  # the worker has looked at them, and the sweeper ran: the stop holds
    assert not Change.objects.exists()

    override = lift(on_call, batch=batch)  # queues the held proposals on commit
    wait_until(
        lambda: Proposal.objects.filter(pk__in=[p.pk for p in held], status=ProposalStatus.APPLIED).count() == 3,
        timeout=30,
        what="the overridden batch to be written",
    )
    assert AuditEvent.objects.filter(action="override.used", details__override_id=override.pk).count() == 3

    Override.objects.filter(pk=override.pk).update(expires_at=timezone.now())
    later = on_call.proposal(batch=batch)
    apply_send_now([later.pk])
    time.sleep(3)  # the message, then the sweeper every second: the block is back
    assert Proposal.objects.get(pk=later.pk).status == ProposalStatus.APPROVED
    assert not Change.objects.filter(proposal_id=later.pk).exists()
