"""A broker that is down when a request commits: the request still answers, and the sweeper applies it.

The web side of these tests runs in the test process with a Celery app like the project's (the same
settings: routes, publish timeout and retries, Redis socket timeouts) whose broker is a closed port
or a black hole: a socket that accepts connections and never answers. Then a real worker on the
real broker finds what was approved, through the sweeper alone.
"""

import logging
import time

import pytest
from django.conf import settings
from django.urls import reverse
from kombu.exceptions import OperationalError

from approvals import jobs
from approvals.models import Proposal, ProposalStatus
from audit.models import AuditEvent
from records.models import Change, Customer
from tests.approvals.faults.broker import BROKERS, web_broker_at
from tests.helpers.factories import CustomerFactory, ProposalFactory
from tests.helpers.pipeline import make_pipeline, make_workflow, proposal_body
from tests.helpers.sight import looked_at
from tests.helpers.worker import wait_until

# What "within a few seconds" means for a request whose broker does not answer: one publish timeout,
# and room for the rest of the request on a busy machine.
ANSWER_WITHIN = settings.COUNTERSIGN["PUBLISH_TIMEOUT_SECONDS"] + 2.5


def timed(request):  # type: ignore[no-untyped-def]
    started = time.monotonic()
    response = request()
    return response, time.monotonic() - started


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.worker
@pytest.mark.parametrize("broker", list(BROKERS))
def test_with_the_broker_down_intake_and_approve_answer_and_the_sweeper_applies_both_once(
    broker, start_worker, client, workflow, lead, caplog
):
    pipeline = make_pipeline(make_workflow(slug="priorities"))
    submitted = CustomerFactory(record_id="CUS-10432", shipping_address="4 Old Mill Lane, Leith", priority="normal")
    reviewed = CustomerFactory(shipping_address="4 Old Mill Lane, Leith")
    pending = ProposalFactory(workflow=workflow, record_id=reviewed.record_id)
    client.force_login(lead)

    with caplog.at_level(logging.WARNING, logger="approvals.jobs"), BROKERS[broker]() as url, web_broker_at(url):
        created, created_in = timed(
            lambda: pipeline.post("/api/v1/proposals", proposal_body(changes={"priority": "urgent"}, follow_ups=[]))
        )
        approved, approved_in = timed(
            lambda: client.post(reverse("review-approve", args=[pending.pk]), looked_at(pending, lead))
        )

    assert created.status_code == 201, created.content
    assert created.json()["status"] == "approved"
    assert created_in < ANSWER_WITHIN
    assert approved.status_code == 302
    assert approved_in < ANSWER_WITHIN
    by_pipeline = Proposal.objects.get(pk=created.json()["id"])
    pending.refresh_from_db()
    assert (by_pipeline.status, pending.status) == (ProposalStatus.APPROVED, ProposalStatus.APPROVED)
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert all(w.startswith("could not queue approvals.apply_approved ") for w in warnings), warnings
    assert all(w.endswith("the apply sweeper queues its proposals again") for w in warnings), warnings
    assert not Change.objects.exists()

    # The broker answers again; nothing was queued, so only the sweeper (beat, on the maintenance
    # queue) can find the two approved proposals, and the worker applies each exactly once.
    start_worker(concurrency=1, beat=True)
    ids = [by_pipeline.pk, pending.pk]
    wait_until(
        lambda: set(Proposal.objects.filter(pk__in=ids).values_list("status", flat=True)) == {ProposalStatus.APPLIED},
        timeout=30,
        what="the sweeper to apply both proposals",
    )
    assert Customer.objects.get(pk=submitted.pk).priority == "urgent"
    assert Customer.objects.get(pk=reviewed.pk).shipping_address == "12 Harbour Road, Leith"
    for pk in ids:
        assert Change.objects.filter(proposal_id=pk).count() == 1
        assert AuditEvent.objects.filter(action="change.applied", proposal_id=pk).count() == 1


@pytest.mark.django_db
def test_the_api_docs_say_a_retry_without_a_key_makes_a_second_proposal_and_it_does(client, queued):
    create = client.get("/api/v1/openapi.json").json()["paths"]["/api/v1/proposals"]["post"]
    assert "without one, a retry (after a timeout or a lost answer) creates a second proposal" in create["description"]
    assert "if its broker is down, the proposal is stored and answered all the same" in create["description"]
    key = next(parameter for parameter in create["parameters"] if parameter["name"] == "Idempotency-Key")
    assert "without a key, sending the same request again makes a second one" in key["description"]

    pipeline = make_pipeline(make_workflow())
    CustomerFactory(record_id="CUS-10432", shipping_address="4 Old Mill Lane, Leith")
    first, again = (pipeline.post("/api/v1/proposals", proposal_body()) for _ in range(2))
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json()["id"] != again.json()["id"]
    assert Proposal.objects.count() == 2


def test_a_bulk_apply_the_broker_refuses_stops_after_its_first_chunk_and_each_loss_is_named(
    monkeypatch, settings, caplog, django_capture_on_commit_callbacks, db
):
    tried: list[str] = []

    def refused(name, **options):  # type: ignore[no-untyped-def]
        tried.append(name)
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(jobs, "send", refused)
    settings.COUNTERSIGN = {**settings.COUNTERSIGN, "APPLY_CHUNK_SIZE": 50}
    with caplog.at_level(logging.WARNING, logger="approvals.jobs"), django_capture_on_commit_callbacks(execute=True):
        jobs.apply_queue(proposal_ids=range(1, 121))  # three chunks
        jobs.callback_queue(proposal_id=1, event="approved")
        jobs.undo_job_queue(job_id=1)
        jobs.apply_sweep_queue()
    assert tried == [jobs.APPLY, jobs.CALLBACK, jobs.UNDO, jobs.SWEEP]
    assert [record.getMessage() for record in caplog.records] == [
        f"could not queue {name} (OperationalError: Error 111 connecting to 127.0.0.1:6379. Connection refused.); "
        f"{jobs.WITHOUT_THE_MESSAGE[name]}"
        for name in tried
    ]
