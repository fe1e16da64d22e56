"""End to end through a real Celery worker: a stop engaged in a request's transaction reaches a good
channel once and a person's email once, while a channel answering 500 is retried by beat's sweep and
ends recorded as failed, and the stop itself stands."""

import pytest

from approvals.models import DeliveryStatus, NoticeDelivery, StopScope, StopSwitch, UserNoticePrefs
from approvals.stops.services import stop_engage
from audit.models import AuditEvent
from audit.services import Actor
from tests.approvals.noticing.notifying_helpers import free_port, titles
from tests.helpers.factories import GroupFactory, UserFactory, WorkflowFactory
from tests.helpers.receiver import Receiver
from tests.helpers.worker import wait_until

pytestmark = pytest.mark.worker

RETRIES = {
    "COUNTERSIGN_NOTICE_SWEEP_SECONDS": "1",
    "COUNTERSIGN_NOTICE_RETRY_SECONDS": "0.2",
    "COUNTERSIGN_NOTICE_MAX_ATTEMPTS": "3",
}


def test_a_worker_delivers_each_notice_once_and_a_failing_channel_ends_failed(start_worker, monkeypatch):
    good_port, bad_port = free_port(), free_port()
    monkeypatch.setenv("TEAM_CHAT_URL", f"json://127.0.0.1:{good_port}/hook")
    monkeypatch.setenv("BROKEN_CHAT_URL", f"json://127.0.0.1:{bad_port}/hook")
    leads = GroupFactory(name="support-leads")
    lead = UserFactory(username="lead", email="lead@example.com")
    lead.groups.add(leads)
    UserNoticePrefs.objects.create(user=lead, email_on=True, events=["stop_engaged"])
    workflow = WorkflowFactory(
        slug="address-updates",
        approver_group=leads,
        notify=[
            {"channel": "${TEAM_CHAT_URL}", "events": ["stop_engaged"]},
            {"channel": "${BROKEN_CHAT_URL}", "events": ["stop_engaged"]},
        ],
    )
    with Receiver(good_port) as chat, Receiver(bad_port, statuses=[500]) as broken:
        worker = start_worker(beat=True, env=RETRIES)
        switch = stop_engage(
            scope=StopScope.WORKFLOW, workflow=workflow, reason="bad prompt in run 42", actor=Actor.user(lead)
        )
        assert StopSwitch.objects.filter(pk=switch.pk, released_at__isnull=True).exists()
        assert AuditEvent.objects.filter(action="stop.engaged").count() == 1

        failed = wait_until(
            lambda: NoticeDelivery.objects.filter(target="${BROKEN_CHAT_URL}", status=DeliveryStatus.FAILED).first(),
            timeout=60,
            what="the broken channel to be given up after its attempts",
        )
        wait_until(
            lambda: NoticeDelivery.objects.filter(status=DeliveryStatus.SENT).count() == 2,
            timeout=30,
            what="the good channel and the email to be sent",
        )
        mails = wait_until(lambda: list(worker.mail_dir.glob("*.log")), timeout=10, what="the email file")
        assert len(titles(chat)) == 1 and titles(chat) == ["Stop engaged: workflow address-updates"]
        assert len(broken.received) == 3
    assert (failed.attempts, failed.sent_at) == (3, None) and failed.last_error
    text = "".join(path.read_text() for path in mails)
    assert text.count("Subject: [Countersign] Stop engaged: workflow address-updates") == 1
    assert "To: lead@example.com" in text
