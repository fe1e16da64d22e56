"""Notices reach the workflow file's channels (Apprise's json:// to a loopback receiver) once each;
a failing channel never fails what caused the notice, is retried, and ends recorded as failed."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from approvals.applying.services import Outcome, proposal_apply
from approvals.models import (
    DeliveryStatus,
    Notice,
    NoticeDelivery,
    Override,
    ProposalStatus,
    StopScope,
    StopSwitch,
    UndoScope,
)
from approvals.notifying.scheduled import overrides_expiring_record
from approvals.notifying.services import notices_deliver, notices_waiting
from approvals.overrides.services import override_grant
from approvals.review.services import proposal_reject
from approvals.stops.services import stop_engage, stop_release, stop_release_by_person
from approvals.undo.selectors import UndoSelection
from approvals.undo.services import undo_job_run, undo_job_start
from approvals.waiting.sla import sla_scan
from audit.models import AuditEvent
from audit.services import Actor, audit_record, audit_verify_incremental
from records.services.outages import store_outage_note
from tests.approvals.noticing.notifying_helpers import CHANNEL, chat, free_port, messages, notify, titles
from tests.helpers.breaker import VERSION, history, set_breaker
from tests.helpers.factories import CustomerFactory, GroupFactory, ProposalFactory, UserFactory, WorkflowFactory
from tests.helpers.overrides import NIGHT, REASON, after_hours_now, on_call_workflow

pytestmark = pytest.mark.django_db
WORKER = "worker@test/1"


def deliver_all() -> int:
    return notices_deliver()


def test_a_stop_engaged_and_released_reach_the_channel_once_each(monkeypatch):
    workflow = WorkflowFactory(slug="address-updates", notify=notify())
    lead = UserFactory(username="lead")
    with chat(monkeypatch) as hook:
        switch = stop_engage(
            scope=StopScope.WORKFLOW, workflow=workflow, reason="bad prompt in run 42", actor=Actor.user(lead)
        )
        stop_release(switch=switch, user=lead, note="fixed the prompt")
        assert deliver_all() == 2
        assert deliver_all() == 0  # nothing twice
    assert titles(hook) == ["Stop engaged: workflow address-updates", "Stop released: workflow address-updates"]
    deliveries = NoticeDelivery.objects.order_by("pk")
    assert [(d.target, d.status, d.attempts) for d in deliveries] == [(CHANNEL, DeliveryStatus.SENT, 1)] * 2
    assert all(d.sent_at is not None for d in deliveries)


def test_an_sla_breach_reaches_the_channel_once_per_step_naming_the_proposal_and_the_group(monkeypatch):
    on_call = on_call_workflow(decide_within=timedelta(hours=2), notify=notify(["sla_breach"]))
    submitted = NIGHT - timedelta(hours=5)
    with time_machine.travel(submitted, tick=False):
        waiting = on_call.proposal(status=ProposalStatus.PENDING, record_id="CUS-20001")
    with chat(monkeypatch) as hook:
        with time_machine.travel(submitted + timedelta(hours=2), tick=False):
            assert sla_scan() == 1
        assert deliver_all() == 1
        with time_machine.travel(submitted + timedelta(hours=4), tick=False):  # Friday 21:00: after hours
            assert sla_scan() == 1
            assert sla_scan() == 0
        assert deliver_all() == 1
        assert deliver_all() == 0
    (told, told_body), (escalated, escalated_body) = messages(hook)
    assert told == "address-updates: 1 proposal waiting past the 2h SLA"
    assert "Its approvers (support-leads) decide them." in told_body
    assert f"proposal {waiting.pk}: update shipping_address on customer CUS-20001, waiting 2h" in told_body
    assert "/review/?workflow=address-updates" in told_body
    assert escalated == "address-updates: 1 proposal still waiting after twice the 2h SLA; told ops-managers on duty"
    assert "On override duty now: ops-managers (after-hours shift, until 2026-11-30 08:00 UTC)." in escalated_body
    assert f"proposal {waiting.pk}: update shipping_address on customer CUS-20001, waiting 4h" in escalated_body


def test_a_breaker_trip_is_one_message_and_its_release_another(monkeypatch, workflow, lead):
    """The breaker's stop is told once, as circuit_tripped (the rate and the limit), never also as
    stop_engaged; releasing it is told as any release; a person's stop is still told as stop_engaged."""
    workflow.notify = notify(["stop_engaged", "stop_released", "circuit_tripped"])
    workflow.save(update_fields=["notify"])
    set_breaker(workflow, max_reject_rate=0.2)
    history(workflow, approved=15, rejected=4)
    with chat(monkeypatch) as hook:
        proposal = ProposalFactory(workflow=workflow, prompt_version=VERSION)
        proposal_reject(proposal=proposal, reviewer=lead, reason="the ticket asked for another address")
        switch = StopSwitch.objects.get(released_at__isnull=True)
        assert deliver_all() == 1
        stop_release_by_person(switch=switch, user=workflow.owner, note="prompt version 9 withdrawn")
        stop_engage(scope=StopScope.WORKFLOW, workflow=workflow, reason="looking into run 43", actor=Actor.user(lead))
        assert deliver_all() == 2
        assert deliver_all() == 0
    (tripped, tripped_body), *rest = messages(hook)
    assert tripped == "Circuit breaker stopped address-updates: prompt version address-update@9 at 25% (limit 20%)"
    assert tripped_body.startswith(
        "circuit breaker: prompt version address-update@9 rejected at 25%, over its limit of 20%: "
        "5 of its last 20 decided proposals in address-updates."
    )
    assert "No write of workflow address-updates is applied until a person releases the stop" in tripped_body
    assert [title for title, _ in rest] == [
        "Stop released: workflow address-updates",
        "Stop engaged: workflow address-updates",
    ]
    assert "prompt version 9 withdrawn" in rest[0][1] and "lead engaged the stop switch" in rest[1][1]
    assert list(Notice.objects.order_by("pk").values_list("event", flat=True)) == [
        "circuit_tripped",
        "stop_released",
        "stop_engaged",
    ]


def test_a_notice_of_no_workflow_goes_to_each_channel_once_and_only_to_those_asking(monkeypatch):
    WorkflowFactory(notify=notify())
    WorkflowFactory(notify=notify())  # the same channel: told once
    WorkflowFactory(notify=notify(["conflict"], channel="json://127.0.0.1:9/never"))  # another event only
    with chat(monkeypatch) as hook:
        stop_engage(scope=StopScope.GLOBAL, reason="everything stops for the drill", actor=Actor.system("test"))
        deliver_all()
    assert titles(hook) == ["Stop engaged: everything"]
    assert NoticeDelivery.objects.count() == 1


def test_an_override_granted_and_ten_minutes_before_it_ends(monkeypatch):
    on_call = after_hours_now(notify=notify())
    batch = on_call.batch()
    stop_engage(scope=StopScope.BATCH, batch=batch, reason="bad prompt in the bulk job", actor=Actor.user(on_call.lead))
    with chat(monkeypatch) as hook:
        override = override_grant(
            user=on_call.ops, block="stop_switch", scope="batch", batch=batch, reason=REASON, minutes=30
        )
        assert overrides_expiring_record() == []  # thirty minutes left: not yet
        now = timezone.now()  # twenty-one minutes later
        Override.objects.filter(pk=override.pk).update(
            granted_at=now - timedelta(minutes=21), expires_at=now + timedelta(minutes=9)
        )
        assert len(overrides_expiring_record()) == 1
        assert overrides_expiring_record() == []  # once per override
        deliver_all()
    assert [title.split(" until")[0].split(" ends at")[0] for title in titles(hook)] == [
        "Stop engaged: batch " + f"{batch.pk} ({batch.name}, address-updates)",
        f"Override granted: stop switch on batch {batch.pk}",
        f"Override of stop switch on batch {batch.pk}",
    ]


def test_a_conflict_reaches_the_channel(monkeypatch):
    workflow = WorkflowFactory(notify=notify(["conflict"]))
    customer = CustomerFactory(shipping_address="9 New Street, Leith")
    proposal = ProposalFactory(workflow=workflow, record_id=customer.record_id, status=ProposalStatus.APPROVED)
    with chat(monkeypatch) as hook:
        assert proposal_apply(proposal_id=proposal.pk, worker=WORKER).outcome == Outcome.CONFLICT
        deliver_all()
    assert titles(hook) == [f"Conflict: proposal {proposal.pk} on customer {customer.record_id} was not written"]
    assert "shipping_address is now '9 New Street, Leith'" in hook.received[0].body.decode()


def test_an_undo_job_finished_reaches_the_channel(monkeypatch):
    workflow = WorkflowFactory(notify=notify(["undo_finished"]))
    ops = UserFactory(username="ops")
    ops.groups.add(GroupFactory(name="ops-managers"))  # who may undo any workflow
    customer = CustomerFactory()
    proposal = ProposalFactory(workflow=workflow, record_id=customer.record_id, status=ProposalStatus.APPROVED)
    assert proposal_apply(proposal_id=proposal.pk, worker=WORKER).outcome == Outcome.APPLIED
    with chat(monkeypatch) as hook:
        job = undo_job_start(
            selection=UndoSelection(
                scope=UndoScope.WORKFLOW, workflow=workflow, since=timezone.now() - timedelta(hours=1)
            ),
            actor=Actor.user(ops),
            user=ops,
            reason="the prompt was wrong",
            queue=False,
        )
        undo_job_run(job_id=job.pk, worker=WORKER)
        deliver_all()
    assert titles(hook) == [f"Undo job {job.pk} finished: 1 of 1 changes undone"]


def test_a_store_unreachable_is_told_once_per_outage(monkeypatch):
    WorkflowFactory(notify=notify(["store_unreachable"]))
    with chat(monkeypatch) as hook:
        store_outage_note(record_type="customer", store="crm", reason="connection refused", worker=WORKER)
        store_outage_note(record_type="customer", store="crm", reason="connection refused again", worker=WORKER)
        deliver_all()
    assert titles(hook) == ["Store unreachable: crm (customer)"]
    assert AuditEvent.objects.filter(action="store.unreachable").count() == 1


def test_the_audit_chain_broken_is_told_once(monkeypatch, audit_guard_bypassed):
    WorkflowFactory(notify=notify(["audit_broken"]))
    audit_record(action="stop.engaged", actor=Actor.system("test"), reason="verified")
    audit_verify_incremental()
    events = [audit_record(action="stop.engaged", actor=Actor.system("test"), reason=f"r{n}") for n in range(2)]
    AuditEvent.objects.filter(pk=events[0].pk).update(reason="rewritten")
    with chat(monkeypatch) as hook:
        audit_verify_incremental()
        audit_verify_incremental()
        deliver_all()
    assert titles(hook) == ["The audit chain is broken"]


def test_a_failing_channel_never_fails_the_action_is_retried_and_ends_failed(monkeypatch, settings):
    settings.COUNTERSIGN = {**settings.COUNTERSIGN, "NOTICE_MAX_ATTEMPTS": 3, "NOTICE_RETRY_SECONDS": 0}
    workflow = WorkflowFactory(notify=notify(["stop_engaged"]))
    with chat(monkeypatch, statuses=[500]) as hook:
        switch = stop_engage(scope=StopScope.WORKFLOW, workflow=workflow, reason="bad prompt", actor=Actor.system("t"))
        assert switch.pk and AuditEvent.objects.filter(action="stop.engaged").exists()  # the action stands
        for _ in range(5):
            deliver_all()
    delivery = NoticeDelivery.objects.get()
    assert len(hook.received) == 3
    assert (delivery.status, delivery.attempts, delivery.sent_at) == (DeliveryStatus.FAILED, 3, None)
    assert "500" in delivery.last_error or "error" in delivery.last_error.lower()
    assert not notices_waiting()


def test_a_closed_port_waits_with_a_growing_delay(monkeypatch, settings):
    settings.COUNTERSIGN = {**settings.COUNTERSIGN, "NOTICE_RETRY_SECONDS": 30, "HTTP_TIMEOUT_SECONDS": 2}
    monkeypatch.setenv("TEAM_CHAT_URL", f"json://127.0.0.1:{free_port()}/hook")
    workflow = WorkflowFactory(notify=notify(["stop_engaged"]))
    stop_engage(scope=StopScope.WORKFLOW, workflow=workflow, reason="bad prompt", actor=Actor.system("t"))
    deliver_all()
    delivery = NoticeDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 1)
    assert delivery.last_error and delivery.next_attempt_at > timezone.now() + timedelta(seconds=25)
    assert deliver_all() == 0  # not due yet


def test_a_channel_whose_variable_is_missing_is_recorded_with_why(monkeypatch):
    monkeypatch.delenv("TEAM_CHAT_URL", raising=False)
    workflow = WorkflowFactory(notify=notify(["stop_engaged"]))
    stop_engage(scope=StopScope.WORKFLOW, workflow=workflow, reason="bad prompt", actor=Actor.system("t"))
    deliver_all()
    delivery = NoticeDelivery.objects.get()
    assert "the environment variable TEAM_CHAT_URL is not set" in delivery.last_error
    assert Notice.objects.get().fanned_out_at is not None
