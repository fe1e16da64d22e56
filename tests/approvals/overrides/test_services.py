from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command

from approvals.applying.services import Outcome, proposal_apply
from approvals.models import Override, OverrideReview, ProposalStatus, Stage, StopScope
from approvals.overrides.selectors import override_active
from approvals.overrides.services import (
    override_acknowledge,
    override_canary_hold,
    override_expire_due,
    override_flag,
    override_grant,
    override_lift,
    override_lift_for_decision,
    override_revoke,
    override_stop_hold,
    override_use,
)
from approvals.overrides.tasks import expire_overrides
from approvals.stops.services import stop_engage
from audit.models import AuditEvent
from audit.services import Actor
from core.errors import InvalidTransition, NotAllowed, ValidationFailed
from records.models import Change
from tests.helpers.factories import UserFactory
from tests.helpers.overrides import DAY, NIGHT, REASON, on_call_workflow
from tests.helpers.queued import Queued

WORKER = Actor.worker("apply-worker")


def holding(proposal):
    """The stop switch that still holds the proposal's write, as the apply path reads it."""
    return override_stop_hold(proposal=proposal).switch


def apply(proposal):
    return proposal_apply(proposal_id=proposal.pk, worker="apply-worker").outcome


def halt(batch, by):
    return stop_engage(scope=StopScope.BATCH, batch=batch, reason="bad prompt in the bulk job", actor=Actor.user(by))


def grant_batch_override(on_call, batch, **kwargs):
    kwargs.setdefault("reason", REASON)
    return override_grant(user=on_call.ops, block="stop_switch", scope="batch", batch=batch, **kwargs)


def actions():
    return list(AuditEvent.objects.order_by("id").values_list("action", flat=True))


def test_ops_on_call_at_night_lifts_a_halted_batch_for_its_writes(on_call):
    batch = on_call.batch()
    proposal = on_call.proposal(batch=batch)
    switch = halt(batch, on_call.lead)
    with time_machine.travel(NIGHT, tick=False):
        assert holding(proposal) == switch
        assert apply(proposal) == Outcome.STOPPED
        override = grant_batch_override(on_call, batch, minutes=30)
        assert override.expires_at == NIGHT + timedelta(minutes=30)
        assert override.granted_group == "ops-managers"
        assert holding(proposal) is None
        assert apply(proposal) == Outcome.APPLIED

    granted = AuditEvent.objects.get(action="override.granted")
    assert (granted.actor_label, granted.reason, granted.batch_id) == ("ops", REASON, batch.pk)
    assert granted.details["block"] == "stop_switch" and granted.details["minutes"] == 30
    used = AuditEvent.objects.get(action="override.used")
    assert (used.actor_label, used.proposal_id, used.record_id) == ("apply-worker", proposal.pk, proposal.record_id)
    assert used.details["override_id"] == override.pk
    assert used.approver_label == on_call.ops.get_full_name()  # named as a decision names its approver
    override.refresh_from_db()
    assert override.use_count == 1


def test_only_the_group_on_duty_now_may_override(on_call):
    batch = on_call.batch()
    halt(batch, on_call.lead)
    with time_machine.travel(NIGHT, tick=False):
        with pytest.raises(NotAllowed, match="ops-managers is on override duty until 2026-11-30 08:00"):
            override_grant(user=on_call.lead, block="stop_switch", scope="batch", batch=batch, reason=REASON)
    with time_machine.travel(DAY, tick=False):
        with pytest.raises(NotAllowed, match="support-leads is on override duty until 2026-11-27 18:00"):
            grant_batch_override(on_call, batch)
        assert override_grant(user=on_call.lead, block="stop_switch", scope="batch", batch=batch, reason=REASON)
    assert Override.objects.count() == 1


def test_the_boundary_hands_over_exactly_at_1800(on_call):
    batch = on_call.batch()
    halt(batch, on_call.lead)
    with time_machine.travel(DAY.replace(hour=17, minute=59, second=59), tick=False):
        with pytest.raises(NotAllowed):
            grant_batch_override(on_call, batch)
    with time_machine.travel(DAY.replace(hour=18), tick=False):
        assert grant_batch_override(on_call, batch).granted_group == "ops-managers"


def test_a_superuser_outside_the_duty_group_is_refused(on_call):
    on_call.owner.is_superuser = True
    on_call.owner.save()
    batch = on_call.batch()
    halt(batch, on_call.lead)
    with time_machine.travel(NIGHT, tick=False), pytest.raises(NotAllowed):
        override_grant(user=on_call.owner, block="stop_switch", scope="batch", batch=batch, reason=REASON)
    assert not Override.objects.exists()


@pytest.mark.parametrize("reason", ["", "   ", "ok", "too short", "         x"])
def test_an_empty_or_short_reason_is_refused(on_call, reason):
    batch = on_call.batch()
    halt(batch, on_call.lead)
    with time_machine.travel(NIGHT, tick=False), pytest.raises(ValidationFailed) as refused:
        grant_batch_override(on_call, batch, reason=reason)
    assert refused.value.problems == [("reason", "write at least 10 characters saying why this block should be lifted")]
    assert not Override.objects.exists()
    assert "override.granted" not in actions()


def test_a_ten_character_reason_is_enough(on_call):
    batch = on_call.batch()
    halt(batch, on_call.lead)
    with time_machine.travel(NIGHT, tick=False):
        assert grant_batch_override(on_call, batch, reason="  Sev-1 fix.  ").reason == "Sev-1 fix."


def test_a_duration_beyond_the_workflows_maximum_is_refused(on_call):
    batch = on_call.batch()
    halt(batch, on_call.lead)
    with time_machine.travel(NIGHT, tick=False):
        with pytest.raises(ValidationFailed) as refused:
            grant_batch_override(on_call, batch, minutes=241)
        assert refused.value.problems == [("minutes", "at most 240 minutes for workflow address-updates")]
        with pytest.raises(ValidationFailed, match="1 or more"):
            grant_batch_override(on_call, batch, minutes=0)
        assert grant_batch_override(on_call, batch, minutes=240).expires_at == NIGHT + timedelta(hours=4)


def test_the_default_duration_is_an_hour_or_the_maximum_when_shorter(db):
    on_call = on_call_workflow(override_max_minutes=20)
    batch = on_call.batch()
    halt(batch, on_call.lead)
    with time_machine.travel(NIGHT, tick=False):
        assert grant_batch_override(on_call, batch).expires_at == NIGHT + timedelta(minutes=20)
    other = on_call_workflow(slug="refund-notes")
    batch = other.batch()
    halt(batch, other.lead)
    with time_machine.travel(NIGHT, tick=False):
        assert grant_batch_override(other, batch).expires_at == NIGHT + timedelta(minutes=60)


def test_nobody_overrides_their_own_request(on_call):
    mine = on_call.batch(requested_by="ops")
    halt(mine, on_call.lead)
    with time_machine.travel(NIGHT, tick=False):
        with pytest.raises(NotAllowed, match="you asked for this batch's changes"):
            grant_batch_override(on_call, mine)
    asked = on_call.batch()
    on_call.proposal(batch=asked, requested_by="ops", requested_by_user=None)
    halt(asked, on_call.lead)
    with time_machine.travel(NIGHT, tick=False), pytest.raises(NotAllowed, match="you asked"):
        grant_batch_override(on_call, asked)
    conflict = on_call.proposal(status=ProposalStatus.CONFLICT, requested_by_user=on_call.ops)
    with time_machine.travel(NIGHT, tick=False), pytest.raises(NotAllowed, match="you asked for this proposal"):
        override_grant(user=on_call.ops, block="conflict", scope="proposal", proposal=conflict, reason=REASON)
    assert not Override.objects.exists()


def test_the_global_stop_is_never_overridden(on_call):
    batch = on_call.batch()
    first, second = on_call.proposal(batch=batch), on_call.proposal(batch=batch)
    halt(batch, on_call.lead)
    with time_machine.travel(NIGHT, tick=False):
        grant_batch_override(on_call, batch)
        assert apply(first) == Outcome.APPLIED
        everything = stop_engage(scope=StopScope.GLOBAL, reason="incident 42", actor=Actor.user(on_call.lead))
        assert holding(second) == everything
        assert apply(second) == Outcome.STOPPED
        with pytest.raises(InvalidTransition, match="global stop is engaged; it is released, never overridden"):
            override_grant(
                user=on_call.ops, block="stop_switch", scope="workflow", workflow=on_call.workflow, reason=REASON
            )
    assert actions().count("override.used") == 1


@pytest.mark.parametrize("block", ["global_stop", "field_policy", "policy", ""])
def test_nothing_but_the_four_blocks_can_be_overridden(on_call, block):
    with time_machine.travel(NIGHT, tick=False), pytest.raises(ValidationFailed) as refused:
        override_grant(user=on_call.ops, block=block, scope="workflow", workflow=on_call.workflow, reason=REASON)
    assert refused.value.field == "block"
    assert "only these blocks can: stop_switch, canary_cap, after_hours_approval, conflict" in refused.value.message


def test_a_stop_is_lifted_only_by_an_override_inside_its_scope(on_call):
    first, second = on_call.batch(), on_call.batch()
    in_first, in_second = on_call.proposal(batch=first), on_call.proposal(batch=second)
    with time_machine.travel(NIGHT, tick=False):
        workflow_stop = stop_engage(
            scope=StopScope.WORKFLOW, workflow=on_call.workflow, reason="bad model", actor=Actor.user(on_call.ops)
        )
        grant_batch_override(on_call, first)
        assert holding(in_first) is None
        assert holding(in_second) == workflow_stop

        batch_stop = halt(second, on_call.lead)
        override_grant(
            user=on_call.ops, block="stop_switch", scope="workflow", workflow=on_call.workflow, reason=REASON
        )
        # A workflow-wide exception does not reach into a batch someone halted on its own.
        assert holding(in_second) == batch_stop


def test_granting_with_nothing_stopped_is_refused(on_call):
    batch = on_call.batch()
    with time_machine.travel(NIGHT, tick=False), pytest.raises(InvalidTransition, match="nothing to override"):
        grant_batch_override(on_call, batch)
    assert not Override.objects.exists()


def test_a_second_override_of_the_same_block_is_refused_while_the_first_runs(on_call):
    batch = on_call.batch()
    halt(batch, on_call.lead)
    with time_machine.travel(NIGHT, tick=False):
        grant_batch_override(on_call, batch, minutes=30)
        with pytest.raises(InvalidTransition, match="ops already overrides this until 22:30:00 UTC"):
            grant_batch_override(on_call, batch)
    assert Override.objects.get().expires_at == NIGHT + timedelta(minutes=30)
    with time_machine.travel(NIGHT + timedelta(minutes=30), tick=False):
        assert grant_batch_override(on_call, batch)


def test_expiry_is_checked_at_the_moment_of_use_before_the_beat_task_runs(on_call):
    batch = on_call.batch()
    written, proposal = on_call.proposal(batch=batch), on_call.proposal(batch=batch)
    switch = halt(batch, on_call.lead)
    with time_machine.travel(NIGHT, tick=False):
        override = grant_batch_override(on_call, batch, minutes=30)
    with time_machine.travel(NIGHT + timedelta(minutes=29, seconds=59), tick=False):
        assert override_active(block="stop_switch", batch=batch) == override
        assert apply(written) == Outcome.APPLIED
    with time_machine.travel(NIGHT + timedelta(minutes=30), tick=False):
        assert override_active(block="stop_switch", batch=batch) is None
        assert holding(proposal) == switch
        assert apply(proposal) == Outcome.STOPPED
        with pytest.raises(InvalidTransition, match="expired at 22:30:00 UTC; the block is back"):
            override_use(override=override, actor=WORKER, what="write applied under a stop", proposal=proposal)
    override.refresh_from_db()
    assert override.expired_recorded_at is None  # the beat task has not run, and nothing was let through
    assert actions().count("override.used") == 1
    assert "override.expired" not in actions()


def test_the_beat_task_records_each_expiry_once_on_time(on_call):
    batch = on_call.batch()
    halt(batch, on_call.lead)
    with time_machine.travel(NIGHT, tick=False):
        override = grant_batch_override(on_call, batch, minutes=15)
        assert expire_overrides() == 0
    with time_machine.travel(NIGHT + timedelta(minutes=15), tick=False):
        assert expire_overrides() == 1
        assert expire_overrides() == 0
    override.refresh_from_db()
    assert override.expired_recorded_at == NIGHT + timedelta(minutes=15)
    expired = AuditEvent.objects.get(action="override.expired")
    assert (expired.actor_kind, expired.actor_label) == ("system", "override-expiry")
    assert expired.occurred_at == NIGHT + timedelta(minutes=15)
    assert expired.batch_id == batch.pk and expired.details["override_id"] == override.pk


def test_the_beat_task_is_scheduled(settings):
    entries = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert entries["approvals.expire_overrides"] <= 30


def test_a_revoked_override_permits_nothing_and_is_not_also_expired(on_call):
    batch = on_call.batch()
    proposal = on_call.proposal(batch=batch)
    switch = halt(batch, on_call.lead)
    with time_machine.travel(NIGHT, tick=False):
        override = grant_batch_override(on_call, batch, minutes=30)
        with pytest.raises(NotAllowed, match="only the person who granted it or the group on override duty"):
            override_revoke(override=override, user=on_call.lead)
        override_revoke(override=override, user=on_call.ops, note="fix did not hold")
        assert holding(proposal) == switch
        assert apply(proposal) == Outcome.STOPPED
        with pytest.raises(InvalidTransition, match="already revoked"):
            override_revoke(override=override, user=on_call.ops)
    with time_machine.travel(NIGHT + timedelta(hours=1), tick=False):
        assert override_expire_due() == 0
    revoked = AuditEvent.objects.get(action="override.revoked")
    assert (revoked.actor_label, revoked.reason) == ("ops", "fix did not hold")


def test_canary_cap_holds_until_an_override_lifts_it(db):
    on_call = on_call_workflow(slug="refund-notes", stage=Stage.CANARY, canary_daily_limit=2)
    proposal = on_call.proposal()

    def change(at):
        Change.objects.create(
            record_type="customer", record_id="CUS-1", action="update", before={}, after={}, version_before=1,
            version_after=2, workflow_slug="refund-notes", applied_at=at, applied_by="worker",
        )  # fmt: skip

    change(NIGHT - timedelta(hours=23))  # Thursday in London: yesterday's count
    change(NIGHT - timedelta(hours=2))
    with time_machine.travel(NIGHT, tick=False):
        assert not override_canary_hold(proposal=proposal).holds
        change(NIGHT - timedelta(hours=1))
        assert override_canary_hold(proposal=proposal).holds
        assert apply(proposal) == Outcome.WAITING
        override = override_grant(
            user=on_call.ops, block="canary_cap", scope="workflow", workflow=on_call.workflow, reason=REASON
        )
        assert override_canary_hold(proposal=proposal).lifting == override
        assert apply(proposal) == Outcome.APPLIED
    used = AuditEvent.objects.get(action="override.used")
    assert used.details["what"] == "write applied beyond the canary daily cap"
    assert used.details["override_id"] == override.pk


def test_a_canary_override_is_refused_for_a_workflow_that_is_not_in_canary(on_call):
    with time_machine.travel(NIGHT, tick=False), pytest.raises(InvalidTransition, match="not in canary"):
        override_grant(user=on_call.ops, block="canary_cap", scope="workflow", workflow=on_call.workflow, reason=REASON)
    assert not Override.objects.exists()


def test_after_hours_the_ops_manager_may_decide_a_proposal_waiting_for_the_leads_with_an_override(on_call):
    waiting = on_call.proposal(status=ProposalStatus.PENDING)
    with time_machine.travel(NIGHT, tick=False):
        assert override_lift_for_decision(proposal=waiting, user=on_call.ops) is None
        override = override_grant(
            user=on_call.ops, block="after_hours_approval", scope="proposal", proposal=waiting, reason=REASON
        )
        assert override_lift_for_decision(proposal=waiting, user=on_call.lead) is None  # not the after-hours group
        assert override_lift_for_decision(proposal=waiting, user=on_call.ops) == override
    used = AuditEvent.objects.get(action="override.used")
    assert (used.actor_label, used.proposal_id) == ("ops", waiting.pk)
    assert used.details["what"] == "decided while the daytime approvers were off duty"


def test_in_the_day_the_leads_decide_and_no_after_hours_override_is_granted(on_call):
    waiting = on_call.proposal(status=ProposalStatus.PENDING)
    with time_machine.travel(DAY, tick=False), pytest.raises(NotAllowed):
        override_grant(
            user=on_call.ops, block="after_hours_approval", scope="proposal", proposal=waiting, reason=REASON
        )
    with time_machine.travel(DAY, tick=False), pytest.raises(InvalidTransition, match="daytime approvers are on duty"):
        override_grant(
            user=on_call.lead, block="after_hours_approval", scope="proposal", proposal=waiting, reason=REASON
        )
    assert not Override.objects.exists()
    assert "override.granted" not in actions()


def test_an_after_hours_override_names_one_proposal(on_call):
    with time_machine.travel(NIGHT, tick=False), pytest.raises(ValidationFailed, match="names a proposal"):
        override_grant(
            user=on_call.ops, block="after_hours_approval", scope="workflow", workflow=on_call.workflow, reason=REASON
        )
    assert not Override.objects.exists()


def test_a_person_writes_over_a_conflict_only_with_an_override(on_call):
    conflicted = on_call.proposal(status=ProposalStatus.CONFLICT)
    pending = on_call.proposal(status=ProposalStatus.PENDING)
    me = Actor.user(on_call.ops)
    with time_machine.travel(NIGHT, tick=False):
        assert override_lift(block="conflict", proposal=conflicted, actor=me, what="wrote over") is None
        with pytest.raises(InvalidTransition, match="is pending, not in conflict"):
            override_grant(user=on_call.ops, block="conflict", scope="proposal", proposal=pending, reason=REASON)
        override = override_grant(
            user=on_call.ops, block="conflict", scope="proposal", proposal=conflicted, reason=REASON
        )
        lifted = override_lift(
            block="conflict", proposal=conflicted, actor=me, what="wrote the proposed value over the current one"
        )
    assert lifted == override
    assert AuditEvent.objects.get(action="override.used").record_id == conflicted.record_id


def test_granting_a_stop_override_hands_the_held_approved_proposals_to_the_worker(
    on_call, queued, django_capture_on_commit_callbacks
):
    batch = on_call.batch()
    held = [on_call.proposal(batch=batch) for _ in range(3)]
    on_call.proposal(batch=batch, status=ProposalStatus.PENDING)
    on_call.proposal()  # approved, but outside the batch
    halt(batch, on_call.lead)
    with time_machine.travel(NIGHT, tick=False), django_capture_on_commit_callbacks(execute=True):
        grant_batch_override(on_call, batch)
    applies = [item for item in queued if item.name != "approvals.deliver_notices"]  # the grant is told too
    assert applies == [Queued("approvals.apply_approved", [[p.pk for p in held]])]


def test_the_morning_review_acknowledges_or_flags_each_override_once(on_call):
    batch = on_call.batch()
    halt(batch, on_call.lead)
    conflicted = on_call.proposal(status=ProposalStatus.CONFLICT)
    with time_machine.travel(NIGHT, tick=False):
        first = grant_batch_override(on_call, batch)
        second = override_grant(
            user=on_call.ops, block="conflict", scope="proposal", proposal=conflicted, reason=REASON
        )
    with time_machine.travel(NIGHT + timedelta(hours=10), tick=False):
        with pytest.raises(NotAllowed, match="only the approver group"):
            override_acknowledge(override=first, user=on_call.ops)
        with pytest.raises(ValidationFailed, match="note"):
            override_flag(override=second, user=on_call.lead, note="no")
        assert override_acknowledge(override=first, user=on_call.lead).review == OverrideReview.ACKNOWLEDGED
        flagged = override_flag(override=second, user=on_call.lead, note="This customer was not in conflict")
        assert (flagged.review, flagged.reviewed_by) == (OverrideReview.FLAGGED, on_call.lead)
        with pytest.raises(InvalidTransition, match="already acknowledged"):
            override_flag(override=first, user=on_call.lead, note="changed my mind about it")
    assert AuditEvent.objects.get(action="override.flagged").reason == "This customer was not in conflict"


def test_the_granter_does_not_review_their_own_override(on_call):
    batch = on_call.batch()
    halt(batch, on_call.lead)
    with time_machine.travel(DAY, tick=False):
        mine = override_grant(user=on_call.lead, block="stop_switch", scope="batch", batch=batch, reason=REASON)
        with pytest.raises(NotAllowed, match="another approver reviews it"):
            override_acknowledge(override=mine, user=on_call.lead)
    mine.refresh_from_db()
    assert (mine.review, mine.reviewed_by) == (OverrideReview.PENDING, None)


def test_every_step_of_an_override_is_in_the_trail(on_call):
    batch = on_call.batch()
    proposal = on_call.proposal(batch=batch)
    halt(batch, on_call.lead)
    with time_machine.travel(NIGHT, tick=False):
        expiring = grant_batch_override(on_call, batch, minutes=10)
        assert apply(proposal) == Outcome.APPLIED
    with time_machine.travel(NIGHT + timedelta(minutes=10), tick=False):
        expire_overrides()
        revoked = grant_batch_override(on_call, batch, minutes=10)
        override_revoke(override=revoked, user=on_call.ops, note="not needed after all")
    with time_machine.travel(NIGHT + timedelta(hours=10), tick=False):
        override_acknowledge(override=expiring, user=on_call.lead)
        override_flag(override=revoked, user=on_call.lead, note="Granted twice in one night: why?")
    trail = list(
        AuditEvent.objects.filter(action__startswith="override.").order_by("id").values_list("action", "details")
    )
    assert [(action, details["override_id"]) for action, details in trail] == [
        ("override.granted", expiring.pk),
        ("override.used", expiring.pk),
        ("override.expired", expiring.pk),
        ("override.granted", revoked.pk),
        ("override.revoked", revoked.pk),
        ("override.acknowledged", expiring.pk),
        ("override.flagged", revoked.pk),
    ]
    call_command("verify_audit")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_beat_runs_at_once_record_each_expiry_once():
    import threading

    from django.db import connection

    on_call = on_call_workflow()
    batches = [on_call.batch() for _ in range(6)]
    for batch in batches:
        halt(batch, on_call.lead)
    with time_machine.travel(NIGHT, tick=False):
        for batch in batches:
            grant_batch_override(on_call, batch, minutes=5)
    counts: list[int] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        try:
            barrier.wait()
            counts.append(override_expire_due(limit=6))
        finally:
            connection.close()

    with time_machine.travel(NIGHT + timedelta(minutes=6), tick=False):
        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sum(counts) == 6
    assert AuditEvent.objects.filter(action="override.expired").count() == 6
    assert Override.objects.filter(expired_recorded_at__isnull=True).count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_people_granting_the_same_override_at_once_get_one_override():
    import threading

    from django.db import connection

    on_call = on_call_workflow()
    colleague = UserFactory(username="ops2")
    colleague.groups.add(on_call.ops_managers)
    batch = on_call.batch()
    halt(batch, on_call.lead)
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def grant(user) -> None:
        try:
            barrier.wait()
            override_grant(user=user, block="stop_switch", scope="batch", batch=batch, reason=REASON)
            outcomes.append("granted")
        except InvalidTransition as refused:
            outcomes.append(refused.message)
        finally:
            connection.close()

    with time_machine.travel(NIGHT, tick=False):
        threads = [threading.Thread(target=grant, args=(user,)) for user in (on_call.ops, colleague)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(outcomes)[0] == "granted"
    assert "already overrides this until 23:00:00 UTC" in sorted(outcomes)[1]
    assert Override.objects.count() == 1
    assert AuditEvent.objects.filter(action="override.granted").count() == 1
