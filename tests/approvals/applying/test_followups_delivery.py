"""Each follow-up is delivered at most once, and a webhook reaches only an address its workflow may call."""

import socket
import threading
import time
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.utils import timezone

from approvals.applying import followups
from approvals.applying.followups import followup_run, followups_claim_due, followups_run_due
from approvals.applying.services import proposal_apply
from approvals.models import FollowUp, FollowUpStatus, Proposal, ProposalStatus
from approvals.undo.selectors import followups_affected
from audit.models import AuditEvent
from tests.helpers.factories import CustomerFactory, ProposalFactory, WorkflowFactory
from tests.helpers.receiver import Receiver

WORKER = "worker@test/1"
OTHER_WORKER = "worker@test/2"


def applied_with_webhook(url: str, hosts: list[str]) -> Proposal:
    proposal = ProposalFactory(
        status=ProposalStatus.APPROVED,
        workflow=WorkflowFactory(webhook_hosts=hosts),
        follow_ups=[{"kind": "webhook", "params": {"url": url, "payload": {"ticket": "T-881"}}}],
    )
    assert proposal_apply(proposal_id=proposal.pk, worker=WORKER).change_id is not None
    return proposal


def at(minutes: float):  # type: ignore[no-untyped-def]
    return time_machine.travel(timezone.now() + timedelta(minutes=minutes), tick=False)


def test_a_claim_that_ends_before_sending_lets_one_other_run_send_it_and_only_that_one(db):
    with Receiver(18531) as hook:
        applied_with_webhook(f"{hook.url}/hook", ["127.0.0.1:18531"])
        with at(minutes=11):
            slow = followups_claim_due(worker=WORKER)  # this run is held up before it gets to the send
        with at(minutes=17):  # past its five-minute claim: another run takes the follow-up
            other = followups_claim_due(worker=OTHER_WORKER)
            assert other.ids == slow.ids
            assert followup_run(followup_id=slow.ids[0], claim=slow.token, worker=WORKER) is None
            assert followup_run(followup_id=other.ids[0], claim=other.token, worker=OTHER_WORKER) is not None
            assert followups_run_due(worker=WORKER) == 0
        assert len(hook.received) == 1
    row = FollowUp.objects.get()
    assert (row.status, row.attempts) == (FollowUpStatus.SENT, 1)
    assert AuditEvent.objects.get(action="followup.sent").actor_label == OTHER_WORKER


def test_a_send_that_outlives_its_claim_is_never_sent_again(transactional_db):
    """While one run waits on a slow receiver, other runs come by after its claim has ended."""
    runs_meanwhile: list[int] = []
    with Receiver(18532, delay=1) as hook:
        applied_with_webhook(f"{hook.url}/hook", ["127.0.0.1:18532"])
        with at(minutes=11):
            claim = followups_claim_due(worker=WORKER)

            def send() -> None:
                try:
                    followup_run(followup_id=claim.ids[0], claim=claim.token, worker=WORKER)
                finally:
                    connection.close()  # this thread's own connection

            sending = threading.Thread(target=send)
            sending.start()
            for _ in range(500):
                if hook.received:
                    break
                time.sleep(0.01)
        with at(minutes=17):  # past the five-minute claim, while the receiver still has not answered
            runs_meanwhile.append(followups_run_due(worker=OTHER_WORKER))
        sending.join(timeout=10)
        with at(minutes=18):
            runs_meanwhile.append(followups_run_due(worker=OTHER_WORKER))
        assert len(hook.received) == 1
    assert runs_meanwhile == [0, 0]
    assert FollowUp.objects.get().status == FollowUpStatus.SENT


def test_a_send_never_reported_back_is_recorded_as_unknown_and_not_sent_again(db):
    with Receiver(18533) as hook:
        applied_with_webhook(f"{hook.url}/hook", ["127.0.0.1:18533"])
        with at(minutes=11):
            claim = followups_claim_due(worker=WORKER)
        row = FollowUp.objects.get()
        row.started_at, row.lease_until, row.attempts = timezone.now(), timezone.now() + timedelta(hours=1), 1
        row.save()  # as the run does right before it sends, and then it died without a word
        with at(minutes=30):
            assert followups_run_due(worker=OTHER_WORKER) == 0
            assert FollowUp.objects.get().status == FollowUpStatus.SENDING
        with at(minutes=61):
            assert followups_run_due(worker=OTHER_WORKER) == 0
        assert hook.received == []
    row.refresh_from_db()
    assert (row.status, row.claim) == (FollowUpStatus.UNKNOWN, claim.token)
    event = AuditEvent.objects.get(action="followup.unknown")
    assert "it may or may not have arrived, so it is not sent again" in event.reason
    assert event.actor_label == OTHER_WORKER
    assert followups_affected(change_ids=[row.change_id]).not_retractable == [row]


def test_a_webhook_carries_its_follow_up_id_as_idempotency_key(db):
    with Receiver(18534) as hook:
        applied_with_webhook(f"{hook.url}/hook", ["127.0.0.1:18534"])
        with at(minutes=11):
            followups_run_due(worker=WORKER)
        [call] = hook.received
    assert call.headers["Idempotency-Key"] == str(FollowUp.objects.get().pk)


@pytest.mark.parametrize(
    ("hosts", "address", "kind"),
    [
        (["localhost:18535"], "127.0.0.1", "loopback"),
        (["hooks.test:18535"], "169.254.169.254", "link-local"),
        (["hooks.test:18535"], "10.1.2.3", "private"),
    ],
)
def test_a_name_resolving_inside_is_refused_unless_the_file_lists_the_address(db, monkeypatch, hosts, address, kind):
    host = hosts[0].split(":")[0]
    monkeypatch.setattr(followups, "resolve", lambda *, host, port: [address])
    applied_with_webhook(f"http://{host}:18535/hook", hosts)
    with at(minutes=11):
        followups_run_due(worker=WORKER)
    row = FollowUp.objects.get()
    reason = (
        f"{host} was not called: {address} is a {kind} address, and the workflow file does not list it under webhooks"
    )
    assert (row.status, row.attempts) == (FollowUpStatus.FAILED, 1)
    assert row.last_error == f"FollowUpError: {reason}"
    assert AuditEvent.objects.get(action="followup.failed").reason == f"FollowUpError: {reason}"


def test_the_address_checked_is_the_address_called(db, monkeypatch):
    """The name is resolved once: a second answer cannot move the call to another address."""
    answers = iter([["127.0.0.1"], ["203.0.113.9"]])
    asked: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host == "hooks.test":
            asked.append(host)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers)[0], port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with Receiver(18536) as hook:
        applied_with_webhook("http://hooks.test:18536/hook", ["hooks.test:18536", "127.0.0.1"])
        with at(minutes=11):
            followups_run_due(worker=WORKER)
        [call] = hook.received
    assert call.headers["Host"] == "hooks.test:18536"
    assert asked == ["hooks.test"]
    assert FollowUp.objects.get().status == FollowUpStatus.SENT


def test_a_mail_server_that_does_not_answer_fails_the_send_after_the_timeout(db, settings):
    silent = socket.create_server(("127.0.0.1", 0))
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": silent.getsockname()[1], "timeout": 0.5},
        }
    }
    customer = CustomerFactory(email="dana@example.com")
    proposal = ProposalFactory(
        status=ProposalStatus.APPROVED,
        record_id=customer.record_id,
        follow_ups=[{"kind": "email_customer", "params": {"template": "address-confirmed"}}],
    )
    proposal_apply(proposal_id=proposal.pk, worker=WORKER)
    try:
        with at(minutes=11):
            assert followups_run_due(worker=WORKER) == 1
    finally:
        silent.close()
    row = FollowUp.objects.get()
    assert (row.status, row.attempts) == (FollowUpStatus.HELD, 1)
    assert "timed out" in row.last_error
    assert mail.outbox == []
