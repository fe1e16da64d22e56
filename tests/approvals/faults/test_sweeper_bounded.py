"""The sweeper queues each approved proposal at most once per stale window, so the apply messages in
the broker stay bounded by the backlog however often it runs while no worker takes them; a release
still queues every one that may apply now. Counted in Redis where Redis is given."""

import os
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.applying.queueing import apply_sweep
from approvals.jobs import APPLY
from approvals.models import OverrideBlock, OverrideScope, Proposal, StopScope
from approvals.stops.services import stop_engage, stop_release
from audit.services import Actor
from tests.helpers.approved import make_approved
from tests.helpers.factories import BatchFactory, UserFactory
from tests.helpers.faults import apply_message_bound, apply_messages_queued
from tests.helpers.worker import purge_broker

# What SQLite logs as statements around a transaction; PostgreSQL sends them without logging.
TRANSACTION_CONTROL = {"BEGIN", "BEGIN IMMEDIATE", "COMMIT"}
WINDOW = 30.0  # seconds: every sweep of a test runs within one window unless the test lets it pass


def waiting_since(ids: list[int], *, seconds: float) -> None:
    """Approved that long ago, so that the sweeper counts them as waiting too long."""
    Proposal.objects.filter(pk__in=ids).update(updated_at=timezone.now() - timedelta(seconds=seconds))


def queued_ids(queued) -> list[int]:  # type: ignore[no-untyped-def]
    return sorted(pk for item in queued if item.name == APPLY for pk in item.args[0])


@pytest.fixture
def broker(transactional_db):  # type: ignore[no-untyped-def]
    """The Redis database the test process sends to, emptied before and after; no worker reads it."""
    import redis

    purge_broker()
    yield redis.Redis.from_url(os.environ["REDIS_URL"])
    purge_broker()


@pytest.mark.postgres
@pytest.mark.redis
def test_five_sweeps_without_workers_queue_each_proposal_once(broker):
    ids = make_approved(400)
    waiting_since(ids, seconds=3 * WINDOW)
    for _ in range(5):
        apply_sweep(stale_seconds=WINDOW)
    assert apply_messages_queued(broker) == apply_message_bound(len(ids)) == 8  # not 5 x 8


@pytest.mark.postgres
@pytest.mark.redis
def test_a_backlog_held_by_a_stop_across_sweeps_and_a_stale_window_stays_bounded(broker):
    ops = UserFactory(username="ops")
    batch = BatchFactory(expected_size=5000)
    ids = make_approved(5000, batch=batch)
    waiting_since(ids, seconds=3600)
    window = 2.0
    switch = stop_engage(scope=StopScope.BATCH, batch=batch, reason="checking the batch", actor=Actor.user(ops))
    peaks = []
    for sweep in range(5):
        if sweep == 2:
            time.sleep(window + 0.5)  # a stale window passes while the switch holds them
        apply_sweep(stale_seconds=window)
        peaks.append(apply_messages_queued(broker))
    assert peaks == [0] * 5
    assert set(Proposal.objects.filter(pk__in=ids).values_list("nudged_at", flat=True)) == {None}

    stop_release(switch=switch, user=ops)  # queues one sweep message for a worker, and no apply message
    assert apply_messages_queued(broker) == 0
    released = apply_sweep(stale_seconds=0)  # that sweep, as the worker runs it
    later = []
    for _ in range(5):
        later.append(apply_sweep(stale_seconds=window))
        peaks.append(apply_messages_queued(broker))
    assert max(peaks) == apply_message_bound(5000) == 100  # not 100 more at every sweep
    assert released == sorted(ids)
    assert later == [[]] * 5


@pytest.mark.postgres
@pytest.mark.redis
def test_once_a_stale_window_passes_the_sweeper_queues_them_again(broker):
    """What the sweeper is for: a message lost with the broker is queued again, one window later."""
    ids = make_approved(120)
    waiting_since(ids, seconds=3600)
    window = 1.0
    assert apply_sweep(stale_seconds=window) == sorted(ids)
    broker.flushdb()  # the messages are lost
    assert apply_sweep(stale_seconds=window) == []
    time.sleep(window + 0.2)
    assert apply_sweep(stale_seconds=window) == sorted(ids)
    assert apply_messages_queued(broker) == apply_message_bound(120) == 3


@pytest.mark.django_db(transaction=True)  # the sweep queues when its transaction commits
def test_a_release_queues_every_proposal_that_may_apply_even_those_queued_a_moment_ago(queued):
    ops = UserFactory(username="ops")
    batch = BatchFactory(expected_size=6)
    held = make_approved(4, batch=batch)
    lifted = make_approved(2, batch=BatchFactory(workflow=batch.workflow, expected_size=2))
    elsewhere = make_approved(3)
    waiting_since([*held, *lifted, *elsewhere], seconds=3 * WINDOW)
    switch = stop_engage(
        scope=StopScope.WORKFLOW, workflow=batch.workflow, reason="checking the workflow", actor=Actor.user(ops)
    )
    lift_stop_for_batch(lifted, ops=ops)

    assert apply_sweep(stale_seconds=WINDOW) == sorted([*lifted, *elsewhere])
    assert apply_sweep(stale_seconds=WINDOW) == []
    stop_release(switch=switch, user=ops)
    assert apply_sweep(stale_seconds=0) == sorted([*held, *lifted, *elsewhere])
    assert apply_sweep(stale_seconds=WINDOW) == []
    assert queued_ids(queued) == sorted([*lifted, *elsewhere, *held, *lifted, *elsewhere])


def lift_stop_for_batch(ids: list[int], *, ops) -> None:  # type: ignore[no-untyped-def]
    """An override in force that lifts the stop switch for these proposals' batch."""
    from approvals.models import Override

    proposal = Proposal.objects.get(pk=ids[0])
    now = timezone.now()
    Override.objects.create(
        scope=OverrideScope.BATCH,
        block=OverrideBlock.STOP_SWITCH,
        workflow=proposal.workflow,
        batch_id=proposal.batch_id,
        granted_by=ops,
        granted_group="ops-managers",
        reason="the batch was checked",
        granted_at=now,
        expires_at=now + timedelta(hours=1),
    )


@pytest.mark.django_db(transaction=True)  # the sweep queues when its transaction commits
def test_a_global_stop_holds_everything_from_the_sweeper_and_its_release_queues_it(queued):
    ops = UserFactory(username="ops")
    ids = make_approved(3)
    waiting_since(ids, seconds=3 * WINDOW)
    switch = stop_engage(scope=StopScope.GLOBAL, reason="checking everything", actor=Actor.user(ops))
    assert apply_sweep(stale_seconds=WINDOW) == []
    assert apply_sweep(stale_seconds=0) == []
    stop_release(switch=switch, user=ops)
    assert apply_sweep(stale_seconds=0) == ids
    assert queued_ids(queued) == ids


@pytest.mark.django_db(transaction=True)  # the sweep queues when its transaction commits
def test_a_proposal_approved_within_the_window_waits_for_its_own_message(queued):
    ids = make_approved(3)
    waiting_since(ids[:2], seconds=3 * WINDOW)
    assert apply_sweep(stale_seconds=WINDOW) == ids[:2]
    assert queued_ids(queued) == ids[:2]


@pytest.mark.django_db(transaction=True)  # the sweep queues when its transaction commits
def test_a_sweep_runs_the_same_queries_for_one_proposal_or_many(queued):
    def queries(count: int) -> int:
        Proposal.objects.all().delete()
        waiting_since(make_approved(count), seconds=3 * WINDOW)
        with CaptureQueriesContext(connection) as captured:
            assert len(apply_sweep(stale_seconds=WINDOW)) == count
        return sum(1 for query in captured.captured_queries if query["sql"] not in TRANSACTION_CONTROL)

    assert queries(1) == queries(300) == 3  # the engaged switches, the canary workflows, the stamping UPDATE


@pytest.mark.django_db(transaction=True)
def test_a_sweep_of_20000_approved_proposals_is_quick(queued):
    ids = make_approved(20000)
    waiting_since(ids, seconds=3 * WINDOW)
    started = time.perf_counter()
    swept = apply_sweep(stale_seconds=WINDOW)
    seconds = time.perf_counter() - started
    print(f"a sweep of 20,000 approved proposals: {seconds:.2f} s")
    assert swept == sorted(ids)
    assert seconds < 8, f"a sweep of 20,000 took {seconds:.2f} s"  # about 2 s on PostgreSQL on two busy cores
    assert apply_sweep(stale_seconds=WINDOW) == []
