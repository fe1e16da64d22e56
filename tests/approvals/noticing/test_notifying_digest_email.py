"""The digest of pending work (one message for many proposals, at most one per window), and each
person's email of their groups' events, held through their quiet hours."""

from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine
from django.core import mail
from django.urls import reverse

from approvals.models import DeliveryStatus, Notice, NoticeDelivery, ProposalStatus, StopScope, UserNoticePrefs
from approvals.notifying.scheduled import pending_digests_record
from approvals.notifying.services import notices_deliver
from approvals.stops.services import stop_engage
from audit.services import Actor
from tests.approvals.noticing.notifying_helpers import chat, notify, titles
from tests.helpers.factories import GroupFactory, ProposalFactory, UserFactory, WorkflowFactory

pytestmark = pytest.mark.django_db
MORNING = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def test_many_pending_proposals_make_one_digest_per_window(monkeypatch, settings):
    settings.COUNTERSIGN = {**settings.COUNTERSIGN, "NOTICE_DIGEST_MINUTES": 15}
    workflow = WorkflowFactory(slug="address-updates", notify=notify(["pending_digest"]))
    quiet = WorkflowFactory(notify=[])  # asks for no digest: none is written for it
    with time_machine.travel(MORNING - timedelta(hours=2), tick=False):
        ProposalFactory(workflow=workflow)
    with time_machine.travel(MORNING - timedelta(minutes=5), tick=False):
        for _ in range(39):
            ProposalFactory(workflow=workflow)
        ProposalFactory(workflow=quiet)
        ProposalFactory(workflow=workflow, status=ProposalStatus.APPROVED)  # not waiting for a decision
    with chat(monkeypatch) as hook:
        with time_machine.travel(MORNING, tick=False):
            assert len(pending_digests_record()) == 1
            notices_deliver()
        with time_machine.travel(MORNING + timedelta(minutes=10), tick=False):
            assert pending_digests_record() == []  # within the window: nothing more
            ProposalFactory(workflow=workflow)
            notices_deliver()
        with time_machine.travel(MORNING + timedelta(minutes=16), tick=False):
            assert len(pending_digests_record()) == 1
            notices_deliver()
    assert titles(hook) == [
        "address-updates: 40 proposals waiting for a decision, oldest 2h",
        "address-updates: 41 proposals waiting for a decision, oldest 2h",
    ]


def test_no_pending_work_no_digest(monkeypatch):
    WorkflowFactory(notify=notify(["pending_digest"]))
    assert pending_digests_record() == []


def _lead(**prefs):  # type: ignore[no-untyped-def]
    leads = GroupFactory(name="support-leads")
    lead = UserFactory(username="lead", email="lead@example.com")
    lead.groups.add(leads)
    UserNoticePrefs.objects.create(user=lead, email_on=True, **prefs)
    return lead, WorkflowFactory(slug="address-updates", approver_group=leads)


def test_a_person_is_emailed_the_events_they_chose_of_their_groups():
    lead, workflow = _lead(events=["stop_engaged"])
    other = WorkflowFactory(slug="refund-notes")  # not their group's
    stop_engage(scope=StopScope.WORKFLOW, workflow=workflow, reason="bad prompt in run 42", actor=Actor.system("t"))
    stop_engage(scope=StopScope.WORKFLOW, workflow=other, reason="bad prompt in run 43", actor=Actor.system("t"))
    notices_deliver()
    [email] = mail.outbox
    assert email.to == ["lead@example.com"]
    assert email.subject == "[Countersign] Stop engaged: workflow address-updates"
    assert "bad prompt in run 42" in email.body
    assert NoticeDelivery.objects.get(user=lead).status == DeliveryStatus.SENT


def test_quiet_hours_hold_the_email_until_they_end():
    # Quiet from 22:00 to 07:00 in London; 23:30 on 27 November is quiet, and it ends at 07:00 GMT.
    lead, workflow = _lead(events=["stop_engaged"], quiet_from=time(22), quiet_to=time(7), timezone="Europe/London")
    night = datetime(2026, 11, 27, 23, 30, tzinfo=UTC)
    with time_machine.travel(night, tick=False):
        stop_engage(scope=StopScope.WORKFLOW, workflow=workflow, reason="bad prompt overnight", actor=Actor.system("t"))
        notices_deliver()
        assert mail.outbox == []
        held = NoticeDelivery.objects.get(user=lead)
        assert (held.status, held.attempts) == (DeliveryStatus.PENDING, 0)
        assert held.next_attempt_at == datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
        assert held.held_reason == "quiet hours until 2026-11-28 07:00 UTC"
    with time_machine.travel(datetime(2026, 11, 28, 6, 59, tzinfo=UTC), tick=False):
        notices_deliver()
        assert mail.outbox == []
    with time_machine.travel(datetime(2026, 11, 28, 7, 1, tzinfo=UTC), tick=False):
        notices_deliver()
    [email] = mail.outbox
    assert "bad prompt overnight" in email.body
    assert NoticeDelivery.objects.get(user=lead).status == DeliveryStatus.SENT


def test_quiet_hours_chosen_after_the_notice_still_hold_it():
    lead, workflow = _lead(events=["stop_engaged"])
    with time_machine.travel(datetime(2026, 11, 27, 12, 0, tzinfo=UTC), tick=False):
        stop_engage(scope=StopScope.WORKFLOW, workflow=workflow, reason="bad prompt at noon", actor=Actor.system("t"))
        from approvals.notifying.services import notices_fan_out

        notices_fan_out()
        UserNoticePrefs.objects.filter(user=lead).update(quiet_from=time(11), quiet_to=time(13), timezone="UTC")
        notices_deliver()
    assert mail.outbox == []
    assert NoticeDelivery.objects.get(user=lead).next_attempt_at == datetime(2026, 11, 27, 13, 0, tzinfo=UTC)


def test_nobody_is_emailed_without_asking():
    leads = GroupFactory()
    lead = UserFactory(email="lead@example.com")
    lead.groups.add(leads)
    workflow = WorkflowFactory(approver_group=leads)
    stop_engage(scope=StopScope.WORKFLOW, workflow=workflow, reason="bad prompt", actor=Actor.system("t"))
    notices_deliver()
    assert mail.outbox == [] and not NoticeDelivery.objects.exists()
    assert Notice.objects.get().fanned_out_at is not None


def test_the_preferences_page_saves_and_refuses_plainly(client):
    lead = UserFactory(username="lead", email="lead@example.com")
    client.force_login(lead)
    page = client.get(reverse("notice-preferences"))
    assert page.status_code == 200
    assert "Save preferences" in page.content.decode() and "lead@example.com" in page.content.decode()
    answer = client.post(
        reverse("notice-preferences"),
        {
            "email_on": "on",
            "events": ["stop_engaged", "sla_breach"],
            "quiet_from": "22:00",
            "quiet_to": "07:00",
            "timezone": "Europe/London",
        },
    )
    assert answer.status_code == 302
    prefs = UserNoticePrefs.objects.get(user=lead)
    assert (prefs.email_on, prefs.events, prefs.quiet_from, prefs.quiet_to, prefs.timezone) == (
        True,
        ["sla_breach", "stop_engaged"],
        time(22),
        time(7),
        "Europe/London",
    )
    assert "Notice preferences saved." in client.get(reverse("notice-preferences")).content.decode()
    refused = client.post(
        reverse("notice-preferences"), {"email_on": "on", "quiet_from": "22:00", "timezone": "Mars/Olympus"}
    )
    assert refused.status_code == 422
    html = refused.content.decode()
    assert "give both ends of the quiet hours, or neither" in html
    assert "is not a time zone" in html
    assert UserNoticePrefs.objects.get(user=lead).timezone == "Europe/London"


def test_the_preferences_page_needs_a_sign_in(client):
    assert client.get(reverse("notice-preferences")).status_code == 302


def test_an_email_turned_off_before_it_went_is_not_sent():
    lead, workflow = _lead(events=["stop_engaged"], quiet_from=time(0), quiet_to=time(23, 59), timezone="UTC")
    with time_machine.travel(datetime(2026, 11, 27, 12, 0, tzinfo=UTC), tick=False):
        stop_engage(scope=StopScope.WORKFLOW, workflow=workflow, reason="bad prompt at noon", actor=Actor.system("t"))
        notices_deliver()
        UserNoticePrefs.objects.filter(user=lead).update(email_on=False)
    with time_machine.travel(datetime(2026, 11, 28, 0, 0, tzinfo=UTC), tick=False):
        notices_deliver()
    assert mail.outbox == []
    delivery = NoticeDelivery.objects.get(user=lead)
    assert delivery.status == DeliveryStatus.FAILED and "turned this email off" in delivery.last_error
