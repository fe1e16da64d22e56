"""Beat and a real worker: the maintenance queue expires what waited too long and records the SLA
notices once each, and the pipeline hears of each expiry and each proposal a discard cancelled."""

import json
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from approvals.intake.accounts import service_account_create
from approvals.models import Notice, Proposal, ProposalStatus
from approvals.waiting.discard import batch_discard_by_person
from approvals.waiting.tasks import EXPIRE_TASK, SLA_TASK
from audit.models import AuditEvent
from audit.services import Actor
from config.celery import app
from tests.helpers.overrides import after_hours_now
from tests.helpers.receiver import Receiver
from tests.helpers.worker import wait_until

pytestmark = pytest.mark.worker

FAST_SCAN = {"COUNTERSIGN_WAITING_SCAN_SECONDS": "1"}


def test_the_waiting_tasks_run_on_the_maintenance_queue_every_minute():
    for task in (SLA_TASK, EXPIRE_TASK):
        assert app.amqp.router.route({}, task)["queue"].name == "maintenance"
    entries = {entry["task"]: entry for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert entries[SLA_TASK]["schedule"] == entries[EXPIRE_TASK]["schedule"] == 60


def _events(pipeline: Receiver) -> list[tuple[int, str, str]]:
    bodies = [json.loads(call.body) for call in pipeline.received]
    return sorted((body["proposal"]["id"], body["event"], body["proposal"]["status"]) for body in bodies)


def test_beat_expires_a_stale_proposal_tells_its_pipeline_and_records_each_sla_notice_once(start_worker):
    on_call = after_hours_now(decide_within=timedelta(minutes=30), expire_after=timedelta(days=3))
    now = timezone.now()
    with Receiver(18761) as pipeline:
        account = service_account_create(
            workflow=on_call.workflow, name="nightly", actor=Actor.system("test"), callback_url=f"{pipeline.url}/cb"
        ).account
        stale = on_call.proposal(
            status=ProposalStatus.PENDING, service_account=account, created_at=now - timedelta(days=4)
        )
        overdue = on_call.proposal(
            status=ProposalStatus.PENDING, service_account=account, created_at=now - timedelta(minutes=90)
        )
        start_worker(concurrency=1, beat=True, env=FAST_SCAN)
        wait_until(lambda: pipeline.received, timeout=30, what="the expiry's callback")
        told = Notice.objects.filter(event="sla_breach", body__contains=f"proposal {overdue.pk}:")
        wait_until(lambda: told.count() == 2, timeout=30, what="both steps of the SLA told")
        time.sleep(3)  # three more scans: none tells again
    assert _events(pipeline) == [(stale.pk, "expired", "expired")]
    assert Proposal.objects.get(pk=overdue.pk).status == ProposalStatus.PENDING
    assert AuditEvent.objects.filter(action="proposal.expired").count() == 1
    assert told.count() == 2
    assert "told ops-managers on duty" in told.order_by("id").last().subject  # type: ignore[union-attr]


def test_the_pipeline_hears_of_each_proposal_a_discard_cancelled(start_worker):
    on_call = after_hours_now()
    with Receiver(18762) as pipeline:
        account = service_account_create(
            workflow=on_call.workflow, name="nightly", actor=Actor.system("test"), callback_url=f"{pipeline.url}/cb"
        ).account
        batch = on_call.batch(service_account=account)
        pending = [
            on_call.proposal(batch=batch, service_account=account, status=ProposalStatus.PENDING) for _ in range(3)
        ]
        start_worker(concurrency=1)
        batch_discard_by_person(batch=batch, user=on_call.lead, reason="the prompt misread the addresses")
        wait_until(lambda: len(pipeline.received) >= 3, timeout=30, what="three cancelled callbacks")
    assert _events(pipeline) == sorted((p.pk, "cancelled", "cancelled") for p in pending)
