"""Through a real Celery worker: the first conflict a bulk run makes reaches the channel at once, the
rest of the digest window's in one message at its end (beat's sweep), each counted once; every
proposal is marked in conflict whatever the channel does."""

import pytest

from approvals.jobs import apply_queue
from approvals.models import ConflictToTell, Notice, Proposal, ProposalStatus
from tests.approvals.noticing.notifying_helpers import chat, messages, notify
from tests.helpers.factories import CustomerFactory, ProposalFactory, WorkflowFactory
from tests.helpers.worker import quiet_after, wait_until

pytestmark = pytest.mark.worker

WINDOW = {"COUNTERSIGN_NOTICE_DIGEST_MINUTES": "0.1", "COUNTERSIGN_NOTICE_SWEEP_SECONDS": "1"}  # six seconds


def stale(workflow, count: int) -> list[Proposal]:  # type: ignore[no-untyped-def]
    """Approved proposals whose customers moved since the AI saw them."""
    return [
        ProposalFactory(
            workflow=workflow,
            record_id=CustomerFactory(shipping_address="9 New Street, Leith").record_id,
            status=ProposalStatus.APPROVED,
            prompt_version="address-update@9",
        )
        for _ in range(count)
    ]


def test_a_bulk_run_of_conflicts_reaches_the_channel_as_two_messages_counting_each_once(start_worker, monkeypatch):
    workflow = WorkflowFactory(slug="address-updates", notify=notify(["conflict"]))
    first, rest = stale(workflow, 1), stale(workflow, 7)
    with chat(monkeypatch) as hook:
        start_worker(beat=True, env=WINDOW)
        apply_queue(proposal_ids=[p.pk for p in first])
        wait_until(lambda: hook.received, timeout=30, what="the first conflict told at once")
        apply_queue(proposal_ids=[p.pk for p in rest])
        wait_until(
            lambda: Proposal.objects.filter(status=ProposalStatus.CONFLICT).count() == 8,
            timeout=30,
            what="every proposal marked in conflict",
        )
        wait_until(lambda: len(hook.received) == 2, timeout=30, what="the rest told at the window's end")
        told, _ = quiet_after(lambda: len(hook.received), for_seconds=8)  # past another window: nothing more
        assert told == 2
    (one, _), (grouped, body) = messages(hook)
    assert one == f"Conflict: proposal {first[0].pk} on customer {first[0].record_id} was not written"
    assert grouped == "Conflicts: 7 proposals of address-updates were not written (prompt address-update@9)"
    assert "By prompt version: address-update@9: 7." in body and "- and 2 more" in body
    opened, follow_up = Notice.objects.filter(event="conflict").order_by("pk")
    assert (follow_up.created_at - opened.created_at).total_seconds() >= 6
    assert sorted(ConflictToTell.objects.filter(notice=follow_up).values_list("proposal_id", flat=True)) == sorted(
        p.pk for p in rest
    )
    assert not ConflictToTell.objects.filter(notice__isnull=True).exists()
