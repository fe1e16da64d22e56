"""Conflicts told together: the first after a quiet window at once, the rest of the window counted in
one notice at its end; every conflict told in exactly one notice, and the apply never waits on it."""

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.applying.services import Outcome, proposal_apply
from approvals.models import ConflictToTell, DeliveryStatus, Notice, NoticeDelivery, Proposal, ProposalStatus, Workflow
from approvals.notices import notice_conflict_record
from approvals.notifying.conflicts import _tell, conflict_notices_record, conflicts_waiting
from approvals.notifying.services import notices_deliver, notices_waiting
from tests.approvals.noticing.notifying_helpers import chat, messages, notify
from tests.helpers.factories import CustomerFactory, ProposalFactory, WorkflowFactory

pytestmark = pytest.mark.django_db
WORKER = "worker@test/1"
WINDOW = timedelta(minutes=15)  # COUNTERSIGN_NOTICE_DIGEST_MINUTES in the test settings


@pytest.fixture(autouse=True)
def _window(settings):  # type: ignore[no-untyped-def]
    settings.COUNTERSIGN = {**settings.COUNTERSIGN, "NOTICE_DIGEST_MINUTES": 15}


def conflicted(workflow: Workflow, version: str = "address-update@7") -> Proposal:
    """A proposal the worker finds in conflict: its customer moved since the AI saw the record."""
    customer = CustomerFactory(shipping_address="9 New Street, Leith")
    proposal = ProposalFactory(
        workflow=workflow, record_id=customer.record_id, status=ProposalStatus.APPROVED, prompt_version=version
    )
    assert proposal_apply(proposal_id=proposal.pk, worker=WORKER).outcome == Outcome.CONFLICT
    return proposal


def conflict_notices() -> list[Notice]:
    return list(Notice.objects.filter(event="conflict").order_by("pk"))


def test_a_bulk_run_of_conflicts_is_one_message_at_once_and_one_at_the_windows_end(monkeypatch):
    workflow = WorkflowFactory(slug="address-updates", notify=notify(["conflict"]))
    with chat(monkeypatch) as hook:
        first = conflicted(workflow)
        notices_deliver()  # the run the worker's conflict asked for
        rest = [
            conflicted(workflow, version="address-update@8" if n % 4 == 0 else "address-update@9") for n in range(11)
        ]
        for _ in range(3):
            notices_deliver()
        assert len(hook.received) == 1  # the rest wait for the window's end
        assert not notices_waiting()
        Notice.objects.filter(event="conflict").update(created_at=timezone.now() - WINDOW - timedelta(seconds=1))
        assert notices_waiting()  # beat's sweep asks for a run
        notices_deliver()
        notices_deliver()
    (told, told_body), (grouped, grouped_body) = messages(hook)
    assert told == f"Conflict: proposal {first.pk} on customer {first.record_id} was not written"
    assert "shipping_address is now '9 New Street, Leith'" in told_body
    assert f"side by side: /review/{first.pk}/" in told_body
    assert (
        grouped
        == "Conflicts: 11 proposals of address-updates were not written (prompt address-update@9, address-update@8)"
    )
    assert "11 proposals of " in grouped_body and "(address-updates) were not written between " in grouped_body
    assert "By prompt version: address-update@9: 8, address-update@8: 3." in grouped_body
    for proposal in rest[:5]:
        assert (
            f"- proposal {proposal.pk} on customer {proposal.record_id} (prompt {proposal.prompt_version}): "
            "shipping_address is now '9 New Street, Leith'; the proposal saw '4 Old Mill Lane, Leith'"
            f" — /review/{proposal.pk}/"
        ) in grouped_body
    assert f"proposal {rest[5].pk} " not in grouped_body and "- and 6 more" in grouped_body
    assert "every proposal in conflict is listed on /blocked/" in grouped_body
    # Every conflict told, in exactly one notice; the proposals stay in conflict for a person.
    first_notice, grouped_notice = conflict_notices()
    assert list(ConflictToTell.objects.filter(notice=first_notice).values_list("proposal_id", flat=True)) == [first.pk]
    assert sorted(ConflictToTell.objects.filter(notice=grouped_notice).values_list("proposal_id", flat=True)) == sorted(
        p.pk for p in rest
    )
    assert not ConflictToTell.objects.filter(notice__isnull=True).exists()
    assert Proposal.objects.filter(status=ProposalStatus.CONFLICT).count() == 12
    assert [d.status for d in NoticeDelivery.objects.all()] == [DeliveryStatus.SENT] * 2


def test_a_workflow_is_told_at_most_once_per_window_and_the_first_after_a_quiet_one_at_once():
    workflow = WorkflowFactory()
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        conflicted(workflow)
        [first] = conflict_notices_record()
        assert conflict_notices_record() == []
    with time_machine.travel(start + timedelta(minutes=5), tick=False):
        held = conflicted(workflow)
        assert conflict_notices_record() == []  # within the window: counted, not told yet
        assert not conflicts_waiting()
    with time_machine.travel(start + WINDOW + timedelta(seconds=1), tick=False):
        assert conflicts_waiting()
        [follow_up] = conflict_notices_record()
    # The follow-up opens a window of its own: a conflict just after it waits for that one's end.
    with time_machine.travel(start + WINDOW + timedelta(minutes=1), tick=False):
        later = conflicted(workflow)
        assert conflict_notices_record() == []
    with time_machine.travel(start + 2 * WINDOW + timedelta(seconds=2), tick=False):
        [third] = conflict_notices_record()
    # A quiet window later, the next conflict is told at once.
    with time_machine.travel(start + 4 * WINDOW, tick=False):
        again = conflicted(workflow)
        [fourth] = conflict_notices_record()
    assert [n.subject for n in (follow_up, third, fourth)] == [
        f"Conflict: proposal {p.pk} on customer {p.record_id} was not written" for p in (held, later, again)
    ]
    assert conflict_notices() == [first, follow_up, third, fourth]


def test_each_workflow_is_told_of_its_own_conflicts():
    refunds = WorkflowFactory(slug="refund-notes")
    addresses = WorkflowFactory(slug="address-updates")
    refund = conflicted(refunds)
    conflicted(addresses)
    conflicted(addresses)
    notices = conflict_notices_record()
    assert [(n.workflow, n.subject) for n in notices] == [
        (refunds, f"Conflict: proposal {refund.pk} on customer {refund.record_id} was not written"),
        (addresses, "Conflicts: 2 proposals of address-updates were not written (prompt address-update@7)"),
    ]


def test_a_second_run_at_once_tells_nothing_twice_and_loses_nothing():
    workflow = WorkflowFactory()
    conflicted(workflow)
    first = _tell(workflow=workflow, after=None)
    assert first is not None
    late = conflicted(workflow)
    # A run that read the last conflict notice before `first` committed: its key is taken.
    assert _tell(workflow=workflow, after=None) is None
    assert ConflictToTell.objects.get(proposal_id=late.pk).notice is None
    Notice.objects.filter(pk=first.pk).update(created_at=timezone.now() - WINDOW - timedelta(seconds=1))
    [told] = conflict_notices_record()
    assert ConflictToTell.objects.get(proposal_id=late.pk).notice == told
    assert told.dedupe_key == f"conflicts:{workflow.pk}:after:{first.pk}"


def test_a_conflict_is_kept_once_and_a_channel_that_fails_leaves_the_conflict_standing(monkeypatch, settings):
    settings.COUNTERSIGN = {**settings.COUNTERSIGN, "NOTICE_MAX_ATTEMPTS": 1}
    workflow = WorkflowFactory(notify=notify(["conflict"]))
    with chat(monkeypatch, statuses=[500]) as hook:
        proposal = conflicted(workflow)
        notices_deliver()
    assert len(hook.received) == 1
    assert NoticeDelivery.objects.get().status == DeliveryStatus.FAILED
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.CONFLICT
    assert ConflictToTell.objects.get().notice is not None
    # The same attempt's conflict kept twice (a run repeated) is one conflict to tell.
    again = ProposalFactory(workflow=workflow, status=ProposalStatus.CONFLICT)
    for _ in range(2):
        notice_conflict_record(proposal=again, reason="shipping_address is now '9 New Street, Leith'")
    assert ConflictToTell.objects.filter(proposal_id=again.pk).count() == 1


def test_telling_a_window_reads_the_same_few_rows_however_many_conflicted(django_assert_num_queries):
    """A bulk run gone wrong: the notice claims every waiting conflict and counts them in SQL, reading
    only the few it names."""
    workflow = WorkflowFactory(slug="address-updates")
    for n in range(3):
        conflicted(workflow, version=f"address-update@{7 + n % 2}")
    with CaptureQueriesContext(connection) as few:
        [small] = conflict_notices_record()
    Notice.objects.filter(pk=small.pk).update(created_at=timezone.now() - WINDOW - timedelta(seconds=1))
    for n in range(40):
        conflicted(workflow, version=f"address-update@{7 + n % 2}")

    with django_assert_num_queries(len(few.captured_queries)) as told:
        [large] = conflict_notices_record()
    rows_read = [q["sql"] for q in told.captured_queries if '"approvals_conflicttotell"."reason"' in q["sql"]]
    assert rows_read and all("LIMIT 6" in sql for sql in rows_read)  # the five named, and one to know there are more

    large.refresh_from_db()
    assert (
        large.subject
        == "Conflicts: 40 proposals of address-updates were not written (prompt address-update@7, address-update@8)"
    )
    assert "By prompt version: address-update@7: 20, address-update@8: 20." in large.body
    assert large.body.count("— /review/") == 5 and "- and 35 more" in large.body
    assert ConflictToTell.objects.filter(notice=large).count() == 40
    assert not ConflictToTell.objects.filter(notice__isnull=True).exists()
