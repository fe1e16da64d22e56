"""Three queues: every task of ours has one, and a backlog on one does not hold up another."""

import os
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from approvals.jobs import APPLY
from approvals.models import Override, Proposal, ProposalStatus, StopScope
from approvals.overrides.selectors import override_active
from approvals.overrides.services import override_grant
from approvals.overrides.tasks import EXPIRE_EVERY_SECONDS
from approvals.stops.services import stop_engage
from audit.models import AuditEvent
from audit.services import Actor
from config.celery import app
from records.models import Change
from tests.helpers.approved import make_approved
from tests.helpers.overrides import REASON, after_hours_now
from tests.helpers.worker import wait_until


def our_tasks() -> set[str]:
    """Every task a worker registers (loading them runs Django's checks, as a worker does: they read the database)."""
    app.loader.import_default_modules()
    return {name for name in app.tasks if not name.startswith("celery.")}


def test_every_task_of_ours_is_routed_to_a_queue_a_worker_consumes(db):
    tasks = our_tasks()
    assert "approvals.expire_overrides" in tasks and APPLY in tasks  # the tasks were found at all
    routed = {name: app.amqp.router.route({}, name)["queue"].name for name in tasks}
    unrouted = {name for name, queue in routed.items() if queue not in settings.TASK_QUEUES}
    assert not unrouted, f"add these tasks to TASK_QUEUES in config/settings/base.py: {sorted(unrouted)}"
    named = {name for names in settings.TASK_QUEUES.values() for name in names}
    assert named <= tasks, f"TASK_QUEUES names tasks that do not exist: {sorted(named - tasks)}"


def test_beat_work_never_shares_a_queue_with_applies():
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    queues = {name: app.amqp.router.route({}, name)["queue"].name for name in scheduled}
    assert queues.pop("approvals.run_due_followups") == "followups"  # it sends mail and webhooks
    assert set(queues.values()) == {"maintenance"}
    assert set(settings.TASK_QUEUES["apply"]) == {"approvals.apply_approved", "approvals.run_undo_job"}


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.worker
def test_an_override_expires_on_time_behind_a_bulk_apply_backlog(start_worker):
    import redis

    on_call = after_hours_now()
    batch = on_call.batch()
    stop_engage(scope=StopScope.BATCH, batch=batch, reason="bad prompt in the bulk job", actor=Actor.user(on_call.lead))
    override = override_grant(user=on_call.ops, block="stop_switch", scope="batch", batch=batch, reason=REASON)

    # The maintenance worker runs beat; its sweeper is kept quiet so the backlog below is all there is.
    quiet_sweeper = {"COUNTERSIGN_APPLY_STALE_AFTER_SECONDS": "3600"}
    start_worker(queues=["maintenance"], concurrency=1, beat=True, env=quiet_sweeper)
    # A bulk job: a slow apply worker (half a second between writes) busy with the first of two hundred
    # messages of two approved proposals each, about two minutes of work queued ahead.
    start_worker(queues=["apply"], concurrency=1, env={"COUNTERSIGN_APPLY_PAUSE_SECONDS": "0.5"})
    ids = make_approved(400)
    with app.producer_or_acquire() as producer:
        for start in range(0, len(ids), 2):
            app.send_task(APPLY, args=[ids[start : start + 2]], producer=producer)
    broker = redis.Redis.from_url(os.environ["REDIS_URL"])
    wait_until(lambda: Change.objects.filter(proposal_id__in=ids).exists(), timeout=15, what="the bulk job to start")

    # The override's time is up now.
    expires_at = timezone.now()
    Override.objects.filter(pk=override.pk).update(expires_at=expires_at)
    assert override_active(block="stop_switch", batch=batch) is None

    expired = wait_until(
        lambda: AuditEvent.objects.filter(action="override.expired", details__override_id=override.pk).first(),
        timeout=2 * EXPIRE_EVERY_SECONDS,  # beat's next run, or the one after if this one was just missed
        what="beat's expiry on the maintenance worker",
    )
    override.refresh_from_db()
    assert override.expired_recorded_at is not None
    assert expired.occurred_at - expires_at <= timedelta(seconds=EXPIRE_EVERY_SECONDS + 2)
    assert (expired.actor_kind, expired.actor_label, expired.batch_id) == ("system", "override-expiry", batch.pk)
    # ...while the bulk job was still far from done: the expiry did not wait for it.
    assert broker.llen("apply") > 100
    assert Change.objects.filter(proposal_id__in=ids).count() < 200
    assert Proposal.objects.filter(pk__in=ids, status=ProposalStatus.APPROVED).count() > 200
