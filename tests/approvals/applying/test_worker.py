"""The apply engine with a real Celery worker process: approve, and a worker applies it.

Tests marked `postgres` and `redis` crash, flush and stop the worker mid-batch; the rest run on
any database and broker (SQLite with the filesystem broker included).
"""

import hashlib
import hmac
import json
import time

import pytest
from django.db import connection, transaction
from django.utils import timezone

from approvals.applying.selectors import proposal_apply_wait_reason
from approvals.intake.accounts import service_account_create
from approvals.jobs import apply_queue, apply_send_now
from approvals.models import FollowUp, Proposal, ProposalStatus, Stage, StopScope
from approvals.stops.services import stop_engage, stop_release
from approvals.workflows.rollout import CANARY_CAP_REASON
from audit.models import AuditEvent
from audit.services import Actor
from records.models import Change, Customer
from tests.helpers.approved import make_approved
from tests.helpers.factories import BatchFactory, CustomerFactory, ProposalFactory, UserFactory, WorkflowFactory
from tests.helpers.receiver import Receiver
from tests.helpers.worker import engage_counting_writes, quiet_after, wait_until, writes_per_worker

pytestmark = pytest.mark.worker


def approve(proposal: Proposal) -> None:
    """A lead approves it, as the review screen would, minus the screen."""
    with transaction.atomic():
        Proposal.objects.filter(pk=proposal.pk).update(
            status=ProposalStatus.APPROVED,
            approved_at=timezone.now(),
            decided_by=UserFactory(username="lead"),
            updated_at=timezone.now(),
        )
        apply_queue(proposal_ids=[proposal.pk])  # as every service that approves does


def applied_count(ids: list[int]) -> int:
    return Change.objects.filter(proposal_id__in=ids).count()


def assert_applied_exactly_once(ids: list[int]) -> None:
    changes = Change.objects.filter(proposal_id__in=ids)
    assert changes.count() == len(ids)
    assert changes.values("proposal_id").distinct().count() == len(ids)
    assert AuditEvent.objects.filter(action="change.applied", proposal_id__in=ids).count() == len(ids)
    assert set(Proposal.objects.filter(pk__in=ids).values_list("status", flat=True)) == {ProposalStatus.APPLIED}
    record_ids = Proposal.objects.filter(pk__in=ids).values_list("record_id", flat=True)
    assert set(Customer.objects.filter(record_id__in=record_ids).values_list("version", flat=True)) == {2}


def test_an_approved_proposal_is_applied_by_the_worker(start_worker):
    start_worker(concurrency=1)
    customer = CustomerFactory()
    proposal = ProposalFactory(record_id=customer.record_id)
    approve(proposal)
    wait_until(lambda: Proposal.objects.get(pk=proposal.pk).status == ProposalStatus.APPLIED, timeout=30)
    customer.refresh_from_db()
    assert customer.shipping_address == "12 Harbour Road, Leith"
    change = Change.objects.get(proposal_id=proposal.pk)
    assert change.applied_by.startswith("test-worker-1@")
    event = AuditEvent.objects.get(action="change.applied", proposal_id=proposal.pk)
    assert (event.change_id, event.actor_kind, event.new_value) == (change.id, "worker", "12 Harbour Road, Leith")


def test_a_stale_base_becomes_a_conflict_and_nothing_is_written(start_worker):
    start_worker(concurrency=1)
    customer = CustomerFactory(shipping_address="9 New Street, Leith")
    proposal = ProposalFactory(record_id=customer.record_id)
    approve(proposal)
    wait_until(lambda: Proposal.objects.get(pk=proposal.pk).status == ProposalStatus.CONFLICT, timeout=30)
    customer.refresh_from_db()
    assert (customer.shipping_address, customer.version) == ("9 New Street, Leith", 1)
    assert not Change.objects.exists()
    assert AuditEvent.objects.filter(action="proposal.conflict", proposal_id=proposal.pk).count() == 1


@pytest.mark.postgres
@pytest.mark.redis
def test_kill_9_mid_batch_then_restart_applies_every_proposal_exactly_once(start_worker):
    ids = make_approved(500)
    worker = start_worker(concurrency=2)
    apply_send_now(ids)
    wait_until(lambda: applied_count(ids) >= 100, timeout=60, interval=0.01, what="a fifth of the batch")
    worker.kill()
    assert not worker.running
    at_kill = applied_count(ids)
    assert at_kill < len(ids), "the batch finished before the kill; the test needs a larger batch"
    start_worker(concurrency=2, beat=True)
    wait_until(lambda: applied_count(ids) == len(ids), timeout=120, interval=0.2, what="the rest of the batch")
    assert_applied_exactly_once(ids)


@pytest.mark.postgres
@pytest.mark.redis
def test_a_flushed_broker_mid_batch_is_finished_by_the_sweeper(start_worker):
    import os

    import redis

    broker = redis.Redis.from_url(os.environ["REDIS_URL"])
    ids = make_approved(500)
    start_worker(concurrency=2, beat=True)
    apply_send_now(ids)
    wait_until(lambda: applied_count(ids) >= 50, timeout=60, interval=0.01, what="a tenth of the batch")
    queued = broker.llen("apply")
    # FLUSHDB, not FLUSHALL: the Redis server is shared, and this database is the broker's whole world.
    broker.flushdb()
    assert queued > 0 and applied_count(ids) < len(ids), "the batch finished before the flush"
    wait_until(lambda: applied_count(ids) == len(ids), timeout=120, interval=0.2, what="the sweeper to finish it")
    assert_applied_exactly_once(ids)


@pytest.mark.postgres
@pytest.mark.redis
def test_stop_mid_batch_halts_within_a_write_per_worker_and_release_applies_the_rest(start_worker):
    ops = UserFactory(username="ops")
    batch = BatchFactory(expected_size=1000)
    ids = make_approved(1000, batch=batch)
    processes = 2
    start_worker(concurrency=processes)
    apply_send_now(ids)
    wait_until(lambda: applied_count(ids) >= 100, timeout=60, interval=0.01, what="a tenth of the batch")
    switch, before = engage_counting_writes(
        lambda: stop_engage(
            scope=StopScope.BATCH, batch=batch, reason="wrong addresses", actor=Actor.user(ops), user=ops
        ),
        batch_id=batch.pk,
    )
    settled, _ = quiet_after(lambda: applied_count(ids), for_seconds=1.5)
    after = writes_per_worker(batch.pk)
    slipped = {worker: after[worker] - before.get(worker, 0) for worker in after}
    assert all(n <= 1 for n in slipped.values()), slipped
    assert sum(slipped.values()) <= processes
    assert settled < len(ids), "the batch finished before the stop"
    assert Proposal.objects.filter(pk__in=ids, status=ProposalStatus.APPROVED).count() == len(ids) - settled

    stop_release(switch=switch, user=ops)
    wait_until(lambda: applied_count(ids) == len(ids), timeout=120, interval=0.2, what="the rest after release")
    assert_applied_exactly_once(ids)


@pytest.mark.postgres
@pytest.mark.redis
def test_a_worker_keeps_its_connection_between_tasks_and_replaces_one_that_broke(start_worker):
    start_worker(concurrency=1)

    def apply_one() -> int:
        [proposal_id] = make_approved(1)
        with transaction.atomic():
            apply_queue(proposal_ids=[proposal_id])
        wait_until(lambda: applied_count([proposal_id]) == 1, timeout=30)
        return proposal_id

    def worker_sessions() -> set[int]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return {pid for (pid,) in cursor.fetchall()}

    apply_one()
    sessions = worker_sessions()
    apply_one()
    assert sessions and worker_sessions() == sessions  # the same session served the next task

    with connection.cursor() as cursor:  # as a database restart or a failover would
        cursor.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [list(sessions)])
    wait_until(lambda: not worker_sessions() & sessions, timeout=10)
    after = apply_one()
    proposal = Proposal.objects.get(pk=after)
    assert (proposal.status, proposal.apply_attempts) == (ProposalStatus.APPLIED, 0)
    assert_applied_exactly_once([after])


def test_shadow_never_writes(start_worker):
    start_worker(concurrency=1)
    shadow = ProposalFactory(workflow=WorkflowFactory(stage=Stage.SHADOW), status=ProposalStatus.APPROVED)
    after_it = ProposalFactory(status=ProposalStatus.APPROVED)
    apply_send_now([shadow.pk, after_it.pk])
    wait_until(lambda: Proposal.objects.get(pk=after_it.pk).status == ProposalStatus.APPLIED, timeout=30)
    assert Proposal.objects.get(pk=shadow.pk).status == ProposalStatus.APPROVED
    assert Customer.objects.get(record_id=shadow.record_id).shipping_address == "4 Old Mill Lane, Leith"
    assert not Change.objects.filter(proposal_id=shadow.pk).exists()


def test_the_canary_cap_holds(start_worker):
    start_worker(concurrency=2, beat=True)
    canary = WorkflowFactory(stage=Stage.CANARY, canary_daily_limit=3)
    ids = make_approved(6, workflow=canary)
    after_them = ProposalFactory(status=ProposalStatus.APPROVED)
    apply_send_now([*ids, after_them.pk])
    wait_until(lambda: Proposal.objects.get(pk=after_them.pk).status == ProposalStatus.APPLIED, timeout=30)
    time.sleep(3)  # the sweeper runs every second here and queues nothing the cap holds
    assert Change.objects.filter(workflow_slug=canary.slug).count() == 3
    waiting = Proposal.objects.filter(pk__in=ids, status=ProposalStatus.APPROVED).select_related("workflow")
    assert waiting.count() == 3
    assert {proposal_apply_wait_reason(proposal=p) for p in waiting} == {CANARY_CAP_REASON}


def test_a_poison_proposal_ends_failed(start_worker):
    start_worker(concurrency=1, env={"COUNTERSIGN_APPLY_MAX_ATTEMPTS": "3"})
    poison = ProposalFactory(record_id="CUS-404")
    approve(poison)
    wait_until(lambda: Proposal.objects.get(pk=poison.pk).status == ProposalStatus.FAILED, timeout=30)
    poison.refresh_from_db()
    assert poison.apply_attempts == 3
    assert "no customer 'CUS-404'" in poison.last_error
    assert AuditEvent.objects.filter(action="proposal.failed", proposal_id=poison.pk).count() == 1


def test_follow_ups_run_after_the_hold_window(start_worker):
    hold = 3
    worker = start_worker(concurrency=1, beat=True, env={"COUNTERSIGN_FOLLOWUP_HOLD_SECONDS": str(hold)})
    customer = CustomerFactory(email="dana@example.com")
    with Receiver(18511) as hook:
        proposal = ProposalFactory(
            workflow=WorkflowFactory(webhook_hosts=["127.0.0.1:18511"]),
            record_id=customer.record_id,
            follow_ups=[
                {"kind": "email_customer", "params": {"template": "address-confirmed"}},
                {"kind": "webhook", "params": {"url": f"{hook.url}/shipping", "payload": {"ticket": "T-881"}}},
            ],
        )
        approve(proposal)
        wait_until(lambda: Proposal.objects.get(pk=proposal.pk).status == ProposalStatus.APPLIED, timeout=30)
        change = Change.objects.get(proposal_id=proposal.pk)
        assert set(FollowUp.objects.values_list("status", flat=True)) == {"held"}
        assert hook.received == []
        wait_until(lambda: set(FollowUp.objects.values_list("status", flat=True)) == {"sent"}, timeout=30)
        for row in FollowUp.objects.all():
            assert row.finished_at is not None
            assert (row.finished_at - change.applied_at).total_seconds() >= hold
        [call] = hook.received
    body = json.loads(call.body)
    assert (call.path, body["proposal_id"], body["change_id"]) == ("/shipping", proposal.pk, str(change.id))
    assert body["payload"] == {"ticket": "T-881"}
    [mail] = list(worker.mail_dir.iterdir())
    message = mail.read_text()
    assert "To: dana@example.com" in message
    assert "12 Harbour Road, Leith" in message
    assert AuditEvent.objects.filter(action="followup.sent", proposal_id=proposal.pk).count() == 2


def test_outcome_callbacks_are_signed_and_retried(start_worker):
    start_worker(concurrency=1)
    workflow = WorkflowFactory()
    with Receiver(18512, statuses=[500, 200]) as pipeline:
        account = service_account_create(
            workflow=workflow, name="pipeline", actor=Actor.system("test"), callback_url=f"{pipeline.url}/outcomes"
        ).account
        applied = ProposalFactory(workflow=workflow, service_account=account)
        stale = ProposalFactory(
            workflow=workflow, service_account=account, record_id=CustomerFactory(shipping_address="moved").record_id
        )
        approve(applied)
        wait_until(lambda: len(pipeline.received) >= 2, timeout=30, what="the retried callback")
        approve(stale)
        wait_until(lambda: len(pipeline.received) >= 3, timeout=30, what="the conflict callback")
    first, retried, conflict = pipeline.received
    assert first.headers["X-Countersign-Delivery"] == retried.headers["X-Countersign-Delivery"]
    for call in (retried, conflict):
        expected = "sha256=" + hmac.new(account.callback_secret.encode(), call.body, hashlib.sha256).hexdigest()
        assert call.headers["X-Countersign-Signature"] == expected
    outcome = json.loads(retried.body)
    assert outcome["event"] == retried.headers["X-Countersign-Event"] == "applied"
    assert outcome["proposal"]["id"] == applied.pk
    assert outcome["proposal"]["status"] == "applied"
    assert outcome["proposal"]["change_id"] == str(Change.objects.get(proposal_id=applied.pk).id)
    assert json.loads(conflict.body)["event"] == "conflict"
    assert json.loads(conflict.body)["proposal"]["id"] == stale.pk
