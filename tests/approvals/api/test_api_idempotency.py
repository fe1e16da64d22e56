"""Idempotency-Key: a replay gets the first answer and makes nothing new; scoped to the service account."""

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from approvals.intake.idempotency import request_fingerprint
from approvals.intake.tasks import purge_idempotency_keys
from approvals.models import Batch, IdempotencyKey, Proposal
from audit.models import AuditEvent
from tests.helpers.factories import CustomerFactory
from tests.helpers.pipeline import Pipeline, make_pipeline, make_workflow, proposal_body

KEY = {"Idempotency-Key": "run-42-item-7"}


def test_a_replay_gets_the_first_answer_and_no_second_proposal(pipeline, customer):
    first = pipeline.post("/api/v1/proposals", proposal_body(), **KEY)
    again = pipeline.post("/api/v1/proposals", proposal_body(), **KEY)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert Proposal.objects.count() == 1
    assert AuditEvent.objects.filter(action="proposal.submitted").count() == 1


def test_the_same_body_in_another_key_order_is_the_same_request(pipeline, customer):
    first = pipeline.post("/api/v1/proposals", proposal_body(), **KEY).json()
    reordered = dict(reversed(list(proposal_body().items())))
    assert pipeline.post("/api/v1/proposals", reordered, **KEY).json() == first
    assert Proposal.objects.count() == 1


def test_the_same_key_with_a_different_body_is_422(pipeline, customer):
    pipeline.post("/api/v1/proposals", proposal_body(), **KEY)
    response = pipeline.post("/api/v1/proposals", proposal_body(reason="Another reason"), **KEY)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"
    assert Proposal.objects.count() == 1


def test_keys_are_scoped_to_the_service_account(pipeline, customer):
    other = make_pipeline(pipeline.workflow, name="second")
    first = pipeline.post("/api/v1/proposals", proposal_body(), **KEY).json()
    second = other.post("/api/v1/proposals", proposal_body(), **KEY).json()
    assert first["id"] != second["id"]
    assert Proposal.objects.count() == 2


def test_a_refusal_keeps_nothing_so_the_fixed_request_can_be_sent_again(pipeline):
    missing = pipeline.post("/api/v1/proposals", proposal_body(), **KEY)
    assert missing.status_code == 404
    assert not IdempotencyKey.objects.exists()
    CustomerFactory(record_id="CUS-10432")
    assert pipeline.post("/api/v1/proposals", proposal_body(), **KEY).status_code == 201


def test_a_key_too_long_is_422_naming_the_header(pipeline, customer):
    response = pipeline.post("/api/v1/proposals", proposal_body(), **{"Idempotency-Key": "k" * 256})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"
    assert not Proposal.objects.exists()


def test_an_unanswered_claim_left_by_a_dead_process_is_taken_over(pipeline, customer):
    fingerprint = request_fingerprint(method="POST", path="/api/v1/proposals", body=proposal_body())
    IdempotencyKey.objects.create(
        service_account=pipeline.account,
        key=KEY["Idempotency-Key"],
        request_hash=fingerprint,
        created_at=timezone.now() - timedelta(minutes=10),
    )
    assert pipeline.post("/api/v1/proposals", proposal_body(), **KEY).status_code == 201
    assert IdempotencyKey.objects.get().status_code == 201


def test_batch_items_replay_their_results(pipeline, customer):
    batch = pipeline.post("/api/v1/batches", {"name": "nightly", "run_id": "r1", "expected_size": 2}).json()
    items = {"proposals": [proposal_body(), proposal_body(record_id="CUS-404")]}
    first = pipeline.post(f"/api/v1/batches/{batch['id']}/proposals", items, **KEY)
    again = pipeline.post(f"/api/v1/batches/{batch['id']}/proposals", items, **KEY)
    assert again.content == first.content
    assert Proposal.objects.count() == 1


def test_the_same_key_on_another_endpoint_is_a_different_request(pipeline, customer):
    pipeline.post("/api/v1/proposals", proposal_body(), **KEY)
    response = pipeline.post("/api/v1/batches", {"name": "nightly", "run_id": "r1", "expected_size": 2}, **KEY)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"
    assert not Batch.objects.exists()


def test_keys_are_kept_24_hours_then_purged(pipeline):
    now = timezone.now()
    for hours in (23, 25):
        IdempotencyKey.objects.create(
            service_account=pipeline.account, key=f"k{hours}", request_hash="x", created_at=now - timedelta(hours=hours)
        )
    assert purge_idempotency_keys() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["k23"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_while_the_first_is_in_flight_the_second_gets_409(monkeypatch):
    from approvals.api import proposals as endpoint

    pipeline = make_pipeline(make_workflow())
    CustomerFactory(record_id="CUS-10432")
    entered, release = threading.Event(), threading.Event()
    submit = endpoint.proposal_submit

    def slow_submit(**kwargs):  # type: ignore[no-untyped-def]
        entered.set()
        assert release.wait(10)
        return submit(**kwargs)

    monkeypatch.setattr(endpoint, "proposal_submit", slow_submit)
    answers: dict[str, Any] = {}

    def first_request() -> None:
        try:
            answers["first"] = pipeline.post("/api/v1/proposals", proposal_body(), **KEY)
        finally:
            connection.close()

    thread = threading.Thread(target=first_request)
    thread.start()
    assert entered.wait(10)
    other_client = Pipeline(client=Client(), workflow=pipeline.workflow, account=pipeline.account, token=pipeline.token)
    second = other_client.post("/api/v1/proposals", proposal_body(), **KEY)
    release.set()
    thread.join(10)
    assert second.status_code == 409
    assert second.json()["errors"][0]["field"] == "Idempotency-Key"
    assert "still being processed" in second.json()["detail"]
    first = answers["first"]
    assert first.status_code == 201
    replay = pipeline.post("/api/v1/proposals", proposal_body(), **KEY)
    assert replay.status_code == 201
    assert replay.content == first.content
    assert Proposal.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_requests_with_one_key_make_exactly_one_proposal():
    pipeline = make_pipeline(make_workflow())
    CustomerFactory(record_id="CUS-10432")
    start = threading.Barrier(6)
    answers = []

    def racer() -> None:
        client = Pipeline(client=Client(), workflow=pipeline.workflow, account=pipeline.account, token=pipeline.token)
        try:
            start.wait(10)
            response = client.post("/api/v1/proposals", proposal_body(), **KEY)
            answers.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=racer) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert len(answers) == 6
    assert Proposal.objects.count() == 1
    proposal_id = Proposal.objects.get().pk
    assert {status for status, _ in answers} <= {201, 409}
    assert all(body["id"] == proposal_id for status, body in answers if status == 201)
    assert any(status == 201 for status, _ in answers)
