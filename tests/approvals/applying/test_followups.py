import hashlib
import hmac
import json
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from approvals.applying.callbacks import callback_deliver, callback_queue_for
from approvals.applying.delivery import DeliveryFailed
from approvals.applying.followups import followups_run_due
from approvals.applying.services import proposal_apply
from approvals.intake.accounts import service_account_create
from approvals.models import FollowUp, FollowUpStatus, ProposalStatus, Workflow
from approvals.workflows.followups import followup_problems
from audit.models import AuditEvent
from audit.services import Actor
from tests.helpers.factories import CustomerFactory, OrderFactory, ProposalFactory, UserFactory, WorkflowFactory
from tests.helpers.receiver import Receiver

WORKER = "worker@test/1"


def applied_with(follow_ups, **kwargs):  # type: ignore[no-untyped-def]
    proposal = ProposalFactory(status=ProposalStatus.APPROVED, follow_ups=follow_ups, **kwargs)
    result = proposal_apply(proposal_id=proposal.pk, worker=WORKER)
    assert result.change_id is not None
    return proposal, result.change_id


def after_hold():  # type: ignore[no-untyped-def]
    return time_machine.travel(timezone.now() + timedelta(minutes=11), tick=False)


def test_nothing_runs_before_the_hold_window_ends(db):
    applied_with([{"kind": "email_customer", "params": {"template": "address-confirmed"}}])
    assert followups_run_due(worker=WORKER) == 0
    assert mail.outbox == []
    with after_hold():
        assert followups_run_due(worker=WORKER) == 1
    assert FollowUp.objects.get().status == FollowUpStatus.SENT


def test_the_customer_email_is_rendered_from_the_changed_record(db):
    customer = CustomerFactory(full_name="Dana Lee", email="dana@example.com")
    proposal, change_id = applied_with(
        [{"kind": "email_customer", "params": {"template": "address-confirmed"}}], record_id=customer.record_id
    )
    with after_hold():
        followups_run_due(worker=WORKER)
    [message] = mail.outbox
    assert message.to == ["dana@example.com"]
    assert message.subject == "Your shipping address has been updated"
    assert "Hello Dana Lee" in message.body and "12 Harbour Road, Leith" in message.body
    event = AuditEvent.objects.get(action="followup.sent")
    assert (event.proposal_id, event.change_id, event.details["template"]) == (
        proposal.pk,
        change_id,
        "address-confirmed",
    )


def test_an_order_email_goes_to_the_order_s_customer(db):
    order = OrderFactory(customer=CustomerFactory(email="pat@example.com"), refund_status="requested")
    applied_with(
        [{"kind": "email_customer", "params": {"template": "refund-update"}}],
        record_type="order",
        record_id=order.record_id,
        changes={"refund_status": "approved"},
        base={"refund_status": "requested"},
    )
    with after_hold():
        followups_run_due(worker=WORKER)
    [message] = mail.outbox
    assert message.to == ["pat@example.com"]
    assert f"order {order.order_number} is now: approved" in message.body


def test_a_webhook_is_posted_signed_and_retried_then_given_up(db, settings):
    settings.COUNTERSIGN = {**settings.COUNTERSIGN, "FOLLOWUP_MAX_ATTEMPTS": 2, "FOLLOWUP_RETRY_SECONDS": 60}
    workflow = WorkflowFactory(webhook_hosts=["127.0.0.1:18520"])
    account = service_account_create(
        workflow=workflow, name="pipe", actor=Actor.system("test"), callback_url="http://127.0.0.1:18521/cb"
    ).account
    with Receiver(18520, statuses=[503]) as hook:
        applied_with(
            [{"kind": "webhook", "params": {"url": f"{hook.url}/hook", "payload": {"a": 1}}}],
            workflow=workflow,
            service_account=account,
        )
        with after_hold():
            followups_run_due(worker=WORKER)
        row = FollowUp.objects.get()
        assert (row.status, row.attempts) == (FollowUpStatus.HELD, 1)
        assert "answered 503" in row.last_error
        with time_machine.travel(timezone.now() + timedelta(minutes=13), tick=False):
            followups_run_due(worker=WORKER)
        assert len(hook.received) == 2
    row.refresh_from_db()
    assert row.status == FollowUpStatus.FAILED
    assert AuditEvent.objects.get(action="followup.failed").reason.endswith("answered 503")
    call = hook.received[0]
    expected = "sha256=" + hmac.new(account.callback_secret.encode(), call.body, hashlib.sha256).hexdigest()
    assert call.headers["X-Countersign-Signature"] == expected
    assert json.loads(call.body)["payload"] == {"a": 1}


def test_an_unknown_kind_fails_at_once(db):
    applied_with([{"kind": "open_ticket", "params": {}}])
    with after_hold():
        followups_run_due(worker=WORKER)
    row = FollowUp.objects.get()
    assert (row.status, row.attempts) == (FollowUpStatus.FAILED, 1)
    assert "no handler for follow-up kind 'open_ticket'" in row.last_error


def test_a_webhook_to_a_host_taken_off_the_list_fails_at_once_without_calling_it(db):
    workflow = WorkflowFactory(webhook_hosts=["127.0.0.1:18523"])
    with Receiver(18523) as hook:
        applied_with([{"kind": "webhook", "params": {"url": f"{hook.url}/hook"}}], workflow=workflow)
        Workflow.objects.filter(pk=workflow.pk).update(webhook_hosts=["hooks.example.com"])
        with after_hold():
            followups_run_due(worker=WORKER)
        assert hook.received == []
    row = FollowUp.objects.get()
    assert (row.status, row.attempts) == (FollowUpStatus.FAILED, 1)
    expected = f"workflow {workflow.slug} may not call 127.0.0.1:18523 (its webhook hosts: hooks.example.com)"
    assert expected in row.last_error
    assert expected in AuditEvent.objects.get(action="followup.failed").reason


def test_a_webhook_that_redirects_is_not_followed(db):
    workflow = WorkflowFactory(webhook_hosts=["127.0.0.1:18524"])
    with Receiver(18525) as target, Receiver(18524, statuses=[302], location=f"{target.url}/elsewhere") as hook:
        applied_with([{"kind": "webhook", "params": {"url": f"{hook.url}/hook"}}], workflow=workflow)
        with after_hold():
            followups_run_due(worker=WORKER)
        assert len(hook.received) == 1
        assert target.received == []
    row = FollowUp.objects.get()
    assert row.status == FollowUpStatus.HELD
    assert "answered 302 (redirects are not followed)" in row.last_error


@pytest.mark.parametrize(
    ("kind", "params", "problem"),
    [
        ("sms", {}, ("kind", "'sms' is not a follow-up kind")),
        ("email_customer", {"template": "nope"}, ("params.template", "must be one of")),
        ("webhook", {"url": "file:///etc/passwd"}, ("params.url", "must be an http or https URL")),
        ("webhook", {"url": "http://"}, ("params.url", "with a host")),
        ("webhook", [], ("params", "must be an object")),
    ],
)
def test_follow_up_problems_name_what_is_wrong(kind, params, problem):
    [(part, message)] = followup_problems(kind=kind, params=params)
    assert part == problem[0]
    assert problem[1] in message


def test_a_callback_is_queued_only_to_a_pipeline_with_a_callback_url(db, queued, django_capture_on_commit_callbacks):
    silent = ProposalFactory()
    account = service_account_create(
        workflow=silent.workflow, name="pipe", actor=Actor.system("test"), callback_url="http://127.0.0.1:18526/cb"
    ).account
    listening = ProposalFactory(workflow=silent.workflow, service_account=account)
    with django_capture_on_commit_callbacks(execute=True):
        callback_queue_for(proposal=silent, event="rejected")
        callback_queue_for(proposal=listening, event="rejected")
    assert [(task.name, task.args[:2]) for task in queued] == [("approvals.send_callback", [listening.pk, "rejected"])]
    with pytest.raises(ValueError, match="not a callback event"):
        callback_queue_for(proposal=listening, event="maybe")


def test_a_callback_carries_the_decision_and_is_signed(db):
    workflow = WorkflowFactory()
    with Receiver(18522, statuses=[200, 500]) as pipeline:
        account = service_account_create(
            workflow=workflow, name="pipe", actor=Actor.system("test"), callback_url=f"{pipeline.url}/outcomes"
        ).account
        lead = UserFactory(username="lead", first_name="Dana", last_name="Lee")
        decided_at = timezone.now()
        proposal = ProposalFactory(
            workflow=workflow,
            service_account=account,
            status="rejected",
            decided_by=lead,
            decided_at=decided_at,
            decision_note="no",
        )
        assert callback_deliver(proposal_id=proposal.pk, event="rejected", delivery_id="d-1") == 200
        with pytest.raises(DeliveryFailed, match="answered 500"):
            callback_deliver(proposal_id=proposal.pk, event="rejected", delivery_id="d-2")
    call = pipeline.received[0]
    body = json.loads(call.body)
    assert body["event"] == "rejected" and body["delivery_id"] == "d-1"
    assert body["proposal"]["status"] == "rejected"
    decision = body["proposal"]["decision"]
    assert (decision["by"], decision["note"]) == ("lead", "no")
    assert decision["at"].startswith(decided_at.strftime("%Y-%m-%dT%H:%M:%S"))
    signed = "sha256=" + hmac.new(account.callback_secret.encode(), call.body, hashlib.sha256).hexdigest()
    assert call.headers["X-Countersign-Signature"] == signed
    assert call.headers["X-Countersign-Delivery"] == "d-1"


def test_a_callback_names_the_decider_as_the_api_does_when_no_person_decided(db):
    workflow = WorkflowFactory()
    with Receiver(18527) as pipeline:
        account = service_account_create(
            workflow=workflow, name="pipe", actor=Actor.system("test"), callback_url=f"{pipeline.url}/outcomes"
        ).account
        now = timezone.now()
        approved = ProposalFactory(
            workflow=workflow,
            service_account=account,
            changes={"priority": "high"},
            base={"priority": "normal"},
            status="approved",
            approved_at=now,
            decided_at=now,
        )
        expired = ProposalFactory(workflow=workflow, service_account=account, status="expired", decided_at=now)
        callback_deliver(proposal_id=approved.pk, event="approved", delivery_id="d-1")
        callback_deliver(proposal_id=expired.pk, event="expired", delivery_id="d-2")
    by = [json.loads(call.body)["proposal"]["decision"]["by"] for call in pipeline.received]
    assert by == ["policy (write access)", "system"]
