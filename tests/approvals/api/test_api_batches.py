"""Batches: open, submit up to 1000 at once (one result per item, in order), watch, stop."""

import pytest

from approvals.models import Batch, Proposal, StopSwitch, Workflow
from audit.models import AuditEvent
from tests.helpers.factories import BatchFactory, CustomerFactory, UserFactory
from tests.helpers.pipeline import make_pipeline, make_workflow, proposal_body

OPEN = {"name": "Nightly address sweep", "run_id": "run-2026-11-27", "expected_size": 3}


@pytest.fixture
def batch(pipeline, customer):  # type: ignore[no-untyped-def]
    response = pipeline.post("/api/v1/batches", OPEN)
    assert response.status_code == 201, response.content
    return response.json()


def test_opening_a_batch(pipeline, batch):
    assert batch["name"] == "Nightly address sweep"
    assert batch["total"] == 0
    assert batch["stopped"] is False
    assert batch["stop"] is None
    assert set(batch["counts"]) >= {"pending", "approved", "applied", "rejected", "shadowed", "cancelled"}
    stored = Batch.objects.get(pk=batch["id"])
    assert stored.workflow == pipeline.workflow
    assert stored.service_account == pipeline.account
    assert AuditEvent.objects.filter(action="batch.opened", batch_id=batch["id"]).count() == 1


@pytest.mark.parametrize(
    ("override", "field"),
    [({"name": ""}, "name"), ({"run_id": " "}, "run_id"), ({"expected_size": 0}, "expected_size")],
)
def test_opening_a_batch_names_each_bad_field(pipeline, override, field):
    response = pipeline.post("/api/v1/batches", {**OPEN, **override})
    assert response.status_code == 422
    assert field in [error["field"] for error in response.json()["errors"]]
    assert not Batch.objects.exists()


def test_a_paused_workflow_opens_no_batch(db):
    pipeline = make_pipeline(make_workflow(stage="paused"))
    response = pipeline.post("/api/v1/batches", OPEN)
    assert response.status_code == 423
    assert response.json()["detail"].startswith("workflow address-updates is paused")
    assert not Batch.objects.exists()
    assert not AuditEvent.objects.filter(action="batch.opened").exists()


def test_results_come_one_per_item_in_order_and_a_bad_item_sinks_nothing(pipeline, batch):
    CustomerFactory(record_id="CUS-10433")
    items = [
        proposal_body(),
        proposal_body(record_id="CUS-99999"),
        proposal_body(reason=""),
        proposal_body(changes={"email": "x@example.com"}),
        {"record_type": "customer"},
        "not a proposal",
        proposal_body(record_id="CUS-10433", changes={"priority": "high"}, follow_ups=[]),
    ]
    response = pipeline.post(f"/api/v1/batches/{batch['id']}/proposals", {"proposals": items})
    assert response.status_code == 200
    answer = response.json()
    results = answer["results"]
    assert [r["index"] for r in results] == list(range(7))
    assert [r["status_code"] for r in results] == [201, 404, 422, 403, 422, 422, 201]
    assert results[1]["body"]["errors"][0]["field"] == "record_id"
    assert results[2]["body"]["errors"][0]["field"] == "reason"
    assert results[3]["body"]["errors"][0]["field"] == "changes.email"
    assert {e["field"] for e in results[4]["body"]["errors"]} >= {"record_id", "action", "reason"}
    assert results[5]["body"]["errors"][0]["field"] == "proposal"
    assert results[0]["body"]["status"] == "pending"
    assert results[6]["body"]["status"] == "approved"
    assert (answer["accepted"], answer["refused"]) == (2, 5)
    accepted = [results[0]["body"]["id"], results[6]["body"]["id"]]
    assert list(Proposal.objects.order_by("pk").values_list("pk", "batch_id", "record_id")) == [
        (accepted[0], batch["id"], "CUS-10432"),
        (accepted[1], batch["id"], "CUS-10433"),
    ]
    submitted = AuditEvent.objects.filter(action="proposal.submitted", batch_id=batch["id"])
    assert list(submitted.order_by("proposal_id").values_list("proposal_id", flat=True)) == accepted
    assert results[0]["body"]["review_url"] == f"http://testserver/review/{accepted[0]}/"


def test_a_bare_array_is_taken_too(pipeline, batch):
    response = pipeline.post(f"/api/v1/batches/{batch['id']}/proposals", [proposal_body(), proposal_body()])
    assert [r["status_code"] for r in response.json()["results"]] == [201, 201]
    assert Proposal.objects.filter(batch_id=batch["id"], record_id="CUS-10432").count() == 2


def test_the_batch_counts_by_status(pipeline, batch):
    items = [proposal_body(), proposal_body(), proposal_body(changes={"priority": "low"}, follow_ups=[])]
    pipeline.post(f"/api/v1/batches/{batch['id']}/proposals", {"proposals": items})
    answer = pipeline.get(f"/api/v1/batches/{batch['id']}").json()
    assert answer["total"] == 3
    assert answer["counts"]["pending"] == 2
    assert answer["counts"]["approved"] == 1
    assert answer["counts"]["rejected"] == 0


def test_more_than_1000_items_is_413_and_nothing_is_written(pipeline, batch):
    items = [{"record_type": "customer"}] * 1001
    response = pipeline.post(f"/api/v1/batches/{batch['id']}/proposals", {"proposals": items})
    assert response.status_code == 413
    assert response.json()["errors"][0]["field"] == "proposals"
    assert "1000" in response.json()["detail"]
    assert not Proposal.objects.exists()
    assert not AuditEvent.objects.filter(action="proposal.submitted").exists()


def test_a_body_over_the_size_limit_is_413(pipeline, batch, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 20_000
    items = [proposal_body() for _ in range(50)]
    response = pipeline.post(f"/api/v1/batches/{batch['id']}/proposals", {"proposals": items})
    assert response.status_code == 413
    assert response["Content-Type"] == "application/problem+json"
    assert not Proposal.objects.exists()


@pytest.mark.parametrize("body", [{"proposals": []}, {"items": [1]}, {"proposals": [1], "extra": 1}, 7])
def test_a_batch_body_of_the_wrong_shape_is_422(pipeline, batch, body):
    response = pipeline.post(f"/api/v1/batches/{batch['id']}/proposals", body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "proposals"
    assert not Proposal.objects.exists()


def test_the_batch_of_another_workflow_is_404(pipeline, customer):
    other = BatchFactory(workflow=make_workflow(slug="other"))
    response = pipeline.post(f"/api/v1/batches/{other.pk}/proposals", [proposal_body()])
    assert response.status_code == 404
    assert response.json()["errors"][0]["field"] == "batch_id"
    assert not Proposal.objects.exists()


def test_proposals_inherit_the_person_who_started_the_batch(pipeline, customer):
    lead = UserFactory(username="dana")
    batch = pipeline.post("/api/v1/batches", {**OPEN, "requested_by": "dana"}).json()
    pipeline.post(f"/api/v1/batches/{batch['id']}/proposals", [proposal_body(requested_by=...)])
    proposal = Proposal.objects.get()
    assert (proposal.requested_by, proposal.requested_by_user) == ("dana", lead)


def test_a_pipeline_stops_its_own_batch_and_it_takes_no_more(pipeline, batch):
    response = pipeline.post(f"/api/v1/batches/{batch['id']}/stop", {"reason": "the prompt is wrong"})
    assert response.status_code == 200
    answer = response.json()
    assert answer["stopped"] is True
    assert answer["stop"]["scope"] == "batch"
    assert answer["stop"]["reason"] == "the prompt is wrong"
    switch = StopSwitch.objects.get()
    assert switch.batch_id == batch["id"]
    assert switch.released_at is None
    assert AuditEvent.objects.filter(action="stop.engaged", batch_id=batch["id"]).count() == 1
    halted = pipeline.post(f"/api/v1/batches/{batch['id']}/proposals", [proposal_body()])
    assert halted.status_code == 409
    assert "halted" in halted.json()["detail"]
    assert not Proposal.objects.exists()
    assert pipeline.get(f"/api/v1/batches/{batch['id']}").json()["stopped"] is True


def test_stopping_twice_is_409(pipeline, batch):
    pipeline.post(f"/api/v1/batches/{batch['id']}/stop", {"reason": "the prompt is wrong"})
    response = pipeline.post(f"/api/v1/batches/{batch['id']}/stop", {"reason": "again"})
    assert response.status_code == 409
    assert "already engaged" in response.json()["detail"]
    assert list(StopSwitch.objects.values_list("batch_id", "reason")) == [(batch["id"], "the prompt is wrong")]
    assert AuditEvent.objects.filter(action="stop.engaged").count() == 1


def test_a_stop_needs_a_reason(pipeline, batch):
    response = pipeline.post(f"/api/v1/batches/{batch['id']}/stop", {"reason": ""})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "reason"
    assert not StopSwitch.objects.exists()


def test_a_pipeline_cannot_stop_another_workflows_batch(pipeline):
    other = BatchFactory(workflow=make_workflow(slug="other"))
    response = pipeline.post(f"/api/v1/batches/{other.pk}/stop", {"reason": "mine now"})
    assert response.status_code == 404
    assert response.json()["errors"][0]["field"] == "batch_id"
    assert not StopSwitch.objects.exists()
    assert not AuditEvent.objects.filter(action="stop.engaged").exists()


def test_a_paused_workflow_takes_no_batch_items(pipeline, batch):
    Workflow.objects.filter(pk=pipeline.workflow.pk).update(stage="paused")
    response = pipeline.post(f"/api/v1/batches/{batch['id']}/proposals", [proposal_body()])
    assert response.status_code == 423
    assert response.json()["detail"].startswith("workflow address-updates is paused")
    assert not Proposal.objects.exists()
