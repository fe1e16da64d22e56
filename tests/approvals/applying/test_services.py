"""The apply engine's rules, called in-process. The worker tests in test_apply_worker.py run the same
paths through a real Celery worker."""

import dataclasses
from datetime import timedelta

import pytest
import time_machine
from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals.applying import services as applying
from approvals.applying.selectors import proposal_apply_wait_reason, proposals_ready_to_apply
from approvals.applying.services import Outcome, proposal_apply, proposals_apply
from approvals.models import FollowUp, FollowUpStatus, ProposalStatus, Stage, StopScope, StopSwitch
from approvals.stops.services import stop_engage, stop_release
from approvals.workflows.rollout import CANARY_CAP_REASON
from audit.models import AuditEvent
from audit.services import Actor
from core.roundtrip import Statement
from records.models import Change, Customer, Order
from tests.helpers.factories import (
    BatchFactory,
    CustomerFactory,
    OrderFactory,
    ProposalFactory,
    UserFactory,
    WorkflowFactory,
)

WORKER = "worker@test/1"


def approved(**kwargs):  # type: ignore[no-untyped-def]
    return ProposalFactory(status=ProposalStatus.APPROVED, **kwargs)


@pytest.mark.parametrize("seen", ["", None])
def test_a_base_that_saw_an_empty_field_matches_a_record_that_holds_it_empty(db, seen):
    customer = CustomerFactory(email="", shipping_address="4 Old Mill Lane, Leith")
    base = {"shipping_address": "4 Old Mill Lane, Leith", "email": seen}
    proposal = approved(record_id=customer.record_id, base=base)
    assert proposal_apply(proposal_id=proposal.pk, worker=WORKER).outcome == Outcome.APPLIED


def test_an_approved_update_is_applied_with_its_change_and_audit_event(db):
    lead = UserFactory(username="lead", first_name="Dana", last_name="Lee")
    customer = CustomerFactory()
    proposal = approved(record_id=customer.record_id, decided_by=lead, decided_at=timezone.now())
    result = proposal_apply(proposal_id=proposal.pk, worker=WORKER)
    assert result.outcome == Outcome.APPLIED
    customer.refresh_from_db()
    assert customer.shipping_address == "12 Harbour Road, Leith"
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.APPLIED
    change = Change.objects.get(proposal_id=proposal.pk)
    assert proposal.change_id == change.id == result.change_id
    assert change.before == {"shipping_address": "4 Old Mill Lane, Leith"}
    assert (change.workflow_slug, change.prompt_version, change.applied_by) == (
        proposal.workflow.slug,
        "address-update@7",
        WORKER,
    )
    event = AuditEvent.objects.get(action="change.applied", proposal_id=proposal.pk)
    # named as the decision names the lead, so a search for the approver finds both
    assert (event.change_id, event.field, event.approver_label) == (change.id, "shipping_address", "Dana Lee")
    assert (event.old_value, event.new_value) == ("4 Old Mill Lane, Leith", "12 Harbour Road, Leith")


def test_applying_twice_writes_once(db):
    proposal = approved()
    assert proposal_apply(proposal_id=proposal.pk, worker=WORKER).outcome == Outcome.APPLIED
    assert proposal_apply(proposal_id=proposal.pk, worker="another/2").outcome == Outcome.NOT_APPROVED
    assert Change.objects.filter(proposal_id=proposal.pk).count() == 1
    assert Customer.objects.get(record_id=proposal.record_id).version == 2


def test_the_database_allows_one_change_per_proposal(db):
    proposal = approved()
    proposal_apply(proposal_id=proposal.pk, worker=WORKER)
    change = Change.objects.get(proposal_id=proposal.pk)
    with pytest.raises(IntegrityError), transaction.atomic():
        Change.objects.create(
            record_type=change.record_type,
            record_id=change.record_id,
            action="update",
            before={},
            after={},
            version_before=2,
            version_after=3,
            proposal_id=proposal.pk,
            applied_by="a second worker",
        )


def test_pending_proposals_are_never_applied(db):
    proposal = ProposalFactory()
    assert proposal_apply(proposal_id=proposal.pk, worker=WORKER).outcome == Outcome.NOT_APPROVED
    assert not Change.objects.exists()


def test_a_stale_base_is_a_conflict_and_nothing_is_written(db):
    customer = CustomerFactory(shipping_address="9 New Street, Leith")
    proposal = approved(record_id=customer.record_id)
    result = proposal_apply(proposal_id=proposal.pk, worker=WORKER)
    assert result.outcome == Outcome.CONFLICT
    customer.refresh_from_db()
    assert (customer.shipping_address, customer.version) == ("9 New Street, Leith", 1)
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.CONFLICT
    assert "shipping_address is now '9 New Street, Leith'" in proposal.last_error
    event = AuditEvent.objects.get(action="proposal.conflict", proposal_id=proposal.pk)
    assert event.details["base"] == {"shipping_address": "4 Old Mill Lane, Leith"}
    assert event.details["current"] == {"shipping_address": "9 New Street, Leith"}
    assert event.details["proposed"] == {"shipping_address": "12 Harbour Road, Leith"}
    assert not Change.objects.exists()


def test_a_version_in_base_must_match(db):
    customer = CustomerFactory(version=4)
    proposal = approved(record_id=customer.record_id, base={"shipping_address": "4 Old Mill Lane, Leith", "version": 3})
    assert proposal_apply(proposal_id=proposal.pk, worker=WORKER).outcome == Outcome.CONFLICT
    assert "version is now 4" in type(proposal).objects.get(pk=proposal.pk).last_error


def test_the_version_sent_beside_base_must_match(db):
    customer = CustomerFactory(version=2)
    stale = approved(record_id=customer.record_id, base_version=1)
    current = approved(record_id=CustomerFactory(version=2).record_id, base_version=2)
    assert proposal_apply(proposal_id=stale.pk, worker=WORKER).outcome == Outcome.CONFLICT
    assert "version is now 2; the proposal saw 1" in type(stale).objects.get(pk=stale.pk).last_error
    assert Customer.objects.get(pk=customer.pk).version == 2
    assert proposal_apply(proposal_id=current.pk, worker=WORKER).outcome == Outcome.APPLIED


def test_an_archived_record_is_a_conflict(db):
    customer = CustomerFactory(archived_at=timezone.now())
    proposal = approved(record_id=customer.record_id)
    assert proposal_apply(proposal_id=proposal.pk, worker=WORKER).outcome == Outcome.CONFLICT
    assert not Change.objects.exists()


@pytest.mark.parametrize("scope", [StopScope.GLOBAL, StopScope.WORKFLOW, StopScope.BATCH])
def test_a_stop_switch_holds_every_proposal_it_covers(db, scope):
    batch = BatchFactory()
    other = approved()
    proposals = [approved(workflow=batch.workflow, batch=batch) for _ in range(3)]
    stop_engage(
        scope=scope,
        reason="bad prompt",
        actor=Actor.system("test"),
        workflow=batch.workflow if scope == StopScope.WORKFLOW else None,
        batch=batch if scope == StopScope.BATCH else None,
    )
    results = proposals_apply(proposal_ids=[p.pk for p in proposals] + [other.pk], worker=WORKER)
    assert [r.outcome for r in results[:3]] == [Outcome.STOPPED] * 3
    assert "bad prompt" in results[0].detail
    assert results[3].outcome == (Outcome.STOPPED if scope == StopScope.GLOBAL else Outcome.APPLIED)
    assert not Change.objects.filter(batch_id=batch.pk).exists()
    assert all(type(p).objects.get(pk=p.pk).status == ProposalStatus.APPROVED for p in proposals)
    assert "stopped" in (proposal_apply_wait_reason(proposal=proposals[0]) or "")


def test_release_lets_the_held_proposals_apply(db):
    ops = UserFactory(username="ops")
    batch = BatchFactory()
    proposal = approved(workflow=batch.workflow, batch=batch)
    switch = stop_engage(scope=StopScope.BATCH, reason="check it", actor=Actor.user(ops), user=ops, batch=batch)
    assert proposals_ready_to_apply(updated_before=timezone.now()) == []
    stop_release(switch=switch, user=ops)
    assert proposals_ready_to_apply(updated_before=timezone.now()) == [proposal.pk]
    assert proposal_apply(proposal_id=proposal.pk, worker=WORKER).outcome == Outcome.APPLIED


@pytest.mark.parametrize("through_a_chunk", [False, True])
def test_when_the_stop_switches_cannot_be_read_nothing_is_written(db, monkeypatch, through_a_chunk):
    proposal = approved()
    switches = StopSwitch._meta.db_table
    read = applying.stops_engaged_query

    def unreadable(**kwargs):  # type: ignore[no-untyped-def]
        # The database itself refuses the read: the table it names is not there.
        query = read(**kwargs)
        sql = query.statement.sql.replace(switches, f"{switches}_gone")
        return dataclasses.replace(query, statement=Statement(sql, query.statement.params))

    monkeypatch.setattr(applying, "stops_engaged_query", unreadable)
    if through_a_chunk:
        [result] = proposals_apply(proposal_ids=[proposal.pk], worker=WORKER)
    else:
        result = proposal_apply(proposal_id=proposal.pk, worker=WORKER)
    assert result.outcome == Outcome.BLOCKED
    assert "could not be read" in result.detail
    assert f"{switches}_gone" in result.detail
    proposal.refresh_from_db()
    assert (proposal.status, proposal.apply_attempts) == (ProposalStatus.APPROVED, 0)
    assert Customer.objects.get(record_id=proposal.record_id).version == 1
    assert not Change.objects.exists()


@pytest.mark.parametrize(
    ("stage", "reason"),
    [
        (Stage.SHADOW, "shadow: it never writes"),
        (Stage.PAUSED, "paused"),
        (Stage.DRAFT, "draft"),
    ],
)
def test_stages_that_do_not_write(db, stage, reason):
    proposal = approved(workflow=WorkflowFactory(stage=stage))
    result = proposal_apply(proposal_id=proposal.pk, worker=WORKER)
    assert result.outcome == Outcome.WAITING
    assert reason in result.detail
    assert reason in (proposal_apply_wait_reason(proposal=proposal) or "")
    assert not Change.objects.exists()
    assert proposals_ready_to_apply(updated_before=timezone.now()) == []


def test_the_canary_cap_holds_until_midnight_utc(db):
    workflow = WorkflowFactory(stage=Stage.CANARY, canary_daily_limit=2)
    proposals = [approved(workflow=workflow) for _ in range(3)]
    noon = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0)
    with time_machine.travel(noon, tick=False):
        results = proposals_apply(proposal_ids=[p.pk for p in proposals], worker=WORKER)
        assert [r.outcome for r in results] == [Outcome.APPLIED, Outcome.APPLIED, Outcome.WAITING]
        assert results[2].detail == CANARY_CAP_REASON
        assert proposal_apply_wait_reason(proposal=proposals[2]) == CANARY_CAP_REASON
        assert proposals_ready_to_apply(updated_before=noon + timedelta(hours=1)) == []
    with time_machine.travel(noon + timedelta(hours=12, minutes=1), tick=False):
        assert proposal_apply_wait_reason(proposal=proposals[2]) is None
        assert proposals_ready_to_apply(updated_before=timezone.now()) == [proposals[2].pk]
        assert proposal_apply(proposal_id=proposals[2].pk, worker=WORKER).outcome == Outcome.APPLIED


def test_a_poison_proposal_fails_after_the_attempts_with_its_error_kept(db, settings):
    settings.COUNTERSIGN = {**settings.COUNTERSIGN, "APPLY_MAX_ATTEMPTS": 3}
    proposal = approved(record_id="CUS-404")
    outcomes = [proposal_apply(proposal_id=proposal.pk, worker=WORKER) for _ in range(3)]
    assert [o.outcome for o in outcomes] == [Outcome.RETRY, Outcome.RETRY, Outcome.FAILED]
    proposal.refresh_from_db()
    assert (proposal.status, proposal.apply_attempts) == (ProposalStatus.FAILED, 3)
    assert "no customer 'CUS-404'" in proposal.last_error
    event = AuditEvent.objects.get(action="proposal.failed", proposal_id=proposal.pk)
    assert "CUS-404" in event.reason
    assert proposal_apply(proposal_id=proposal.pk, worker=WORKER).outcome == Outcome.NOT_APPROVED


def test_an_invalid_value_fails_without_writing(db, settings):
    settings.COUNTERSIGN = {**settings.COUNTERSIGN, "APPLY_MAX_ATTEMPTS": 1}
    proposal = approved(changes={"priority": "extreme"}, base={})
    assert proposal_apply(proposal_id=proposal.pk, worker=WORKER).outcome == Outcome.FAILED
    assert "changes.priority" in type(proposal).objects.get(pk=proposal.pk).last_error
    assert Customer.objects.get(record_id=proposal.record_id).version == 1


def test_archive_delete_and_merge_proposals(db):
    workflow = WorkflowFactory(actions=["archive", "delete", "merge"])
    survivor, duplicate, to_archive, to_delete = (
        CustomerFactory(),
        CustomerFactory(),
        CustomerFactory(),
        CustomerFactory(),
    )
    order = OrderFactory(customer=duplicate)
    merge = approved(
        workflow=workflow,
        record_id=duplicate.record_id,
        action="merge",
        changes={},
        base={},
        merge_into=survivor.record_id,
    )
    archive = approved(workflow=workflow, record_id=to_archive.record_id, action="archive", changes={}, base={})
    delete = approved(workflow=workflow, record_id=to_delete.record_id, action="delete", changes={}, base={})
    results = proposals_apply(proposal_ids=[merge.pk, archive.pk, delete.pk], worker=WORKER)
    assert [r.outcome for r in results] == [Outcome.APPLIED] * 3
    assert Order.objects.get(pk=order.pk).customer_id == survivor.pk
    assert Customer.objects.get(pk=duplicate.pk).archived_at is not None
    assert Customer.objects.get(pk=to_archive.pk).archived_at is not None
    assert Customer.objects.get(pk=to_delete.pk).deleted_at is not None
    payload = Change.objects.get(proposal_id=merge.pk).merge_payload
    assert payload is not None and payload["moved"][0]["record_id"] == order.record_id


def test_a_merge_into_a_missing_survivor_is_a_conflict(db):
    proposal = approved(action="merge", changes={}, base={}, merge_into="CUS-404")
    result = proposal_apply(proposal_id=proposal.pk, worker=WORKER)
    assert result.outcome == Outcome.CONFLICT
    assert "CUS-404 does not exist" in result.detail


def test_follow_ups_are_held_in_the_outbox_when_the_change_is_applied(db, settings):
    settings.COUNTERSIGN = {**settings.COUNTERSIGN, "FOLLOWUP_HOLD_SECONDS": 600}
    proposal = approved(
        follow_ups=[
            {"kind": "email_customer", "params": {"template": "address-confirmed"}},
            {"kind": "webhook", "params": {"url": "http://127.0.0.1:18599/hook"}},
        ]
    )
    before = timezone.now()
    proposal_apply(proposal_id=proposal.pk, worker=WORKER)
    rows = list(FollowUp.objects.order_by("position"))
    assert [(r.kind, r.status) for r in rows] == [("email_customer", "held"), ("webhook", "held")]
    assert all(r.change_id == Change.objects.get().id for r in rows)
    assert all(before + timedelta(seconds=599) < r.due_at < timezone.now() + timedelta(seconds=601) for r in rows)
    assert all(r.status == FollowUpStatus.HELD for r in rows)


def test_the_sweeper_leaves_fresh_proposals_to_their_own_message(db):
    proposal = approved()
    assert proposals_ready_to_apply(updated_before=timezone.now() - timedelta(minutes=2)) == []
    assert proposals_ready_to_apply(updated_before=timezone.now()) == [proposal.pk]


def test_a_pause_between_writes_paces_a_chunk_and_never_delays_a_held_one(db, settings, monkeypatch):
    settings.COUNTERSIGN = {**settings.COUNTERSIGN, "APPLY_PAUSE_SECONDS": 0.25}
    pauses: list[float] = []
    monkeypatch.setattr(applying.time, "sleep", pauses.append)
    batch = BatchFactory()
    written = [approved(workflow=batch.workflow, batch=batch) for _ in range(3)]
    outcomes = proposals_apply(proposal_ids=[p.pk for p in written], worker=WORKER)
    assert [r.outcome for r in outcomes] == [Outcome.APPLIED] * 3
    assert pauses == [0.25, 0.25]
    stop_engage(scope=StopScope.BATCH, batch=batch, reason="bad prompt", actor=Actor.system("test"))
    held = [approved(workflow=batch.workflow, batch=batch) for _ in range(3)]
    assert {r.outcome for r in proposals_apply(proposal_ids=[p.pk for p in held], worker=WORKER)} == {Outcome.STOPPED}
    assert pauses == [0.25, 0.25]
