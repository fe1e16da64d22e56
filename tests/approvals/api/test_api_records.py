"""GET /api/v1/records/...: the least data the job needs, never a field outside the policy."""

import pytest

from tests.helpers.factories import CustomerFactory, OrderFactory
from tests.helpers.pipeline import make_pipeline, make_workflow, proposal_body

SECRET_NOTE = "Customer disputes chargeback; do not contact"


@pytest.fixture
def customer_with_secrets(db):  # type: ignore[no-untyped-def]
    return CustomerFactory(
        record_id="CUS-10432",
        full_name="Maria Lopez",
        email="maria@example.com",
        internal_notes=SECRET_NOTE,
        billing_status="disputed",
    )


def test_only_readable_fields_and_the_version(pipeline, customer_with_secrets):
    response = pipeline.get("/api/v1/records/customer/CUS-10432")
    assert response.status_code == 200
    answer = response.json()
    assert answer["record_type"] == "customer"
    assert answer["record_id"] == "CUS-10432"
    assert answer["version"] == 1
    assert set(answer["fields"]) == {"full_name", "email", "shipping_address", "phone", "priority", "tags"}
    assert answer["fields"]["full_name"] == "Maria Lopez"
    raw = response.content.decode()
    assert SECRET_NOTE not in raw
    assert "disputed" not in raw
    assert "internal_notes" not in raw


def test_fields_narrows_the_answer(pipeline, customer_with_secrets):
    answer = pipeline.get("/api/v1/records/customer/CUS-10432?fields=email,full_name").json()
    assert answer["fields"] == {"full_name": "Maria Lopez", "email": "maria@example.com"}
    assert answer["version"] == 1


def test_asking_for_an_unreadable_field_is_403_naming_it(pipeline, customer_with_secrets):
    response = pipeline.get("/api/v1/records/customer/CUS-10432?fields=full_name,internal_notes,billing_status")
    assert response.status_code == 403
    body = response.json()
    assert body["errors"] == [
        {"field": "fields", "message": "may not read internal_notes"},
        {"field": "fields", "message": "may not read billing_status"},
    ]
    assert "customer.internal_notes" in body["detail"]
    assert SECRET_NOTE not in response.content.decode()
    assert "Maria" not in response.content.decode()


def test_asking_for_an_unknown_field_is_422(pipeline, customer_with_secrets):
    response = pipeline.get("/api/v1/records/customer/CUS-10432?fields=nickname")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "fields"


def test_an_empty_fields_list_is_422(pipeline, customer_with_secrets):
    response = pipeline.get("/api/v1/records/customer/CUS-10432?fields=,")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "fields"


def test_an_unknown_record_type_is_404(pipeline):
    response = pipeline.get("/api/v1/records/invoice/INV-1")
    assert response.status_code == 404
    assert response.json()["errors"][0]["field"] == "record_type"


def test_an_unknown_record_is_404(pipeline):
    response = pipeline.get("/api/v1/records/customer/CUS-404")
    assert response.status_code == 404
    assert response.json()["errors"][0]["field"] == "record_id"


def test_a_record_type_outside_the_policy_is_403_before_any_lookup(pipeline):
    order = OrderFactory()
    for record_id in (order.record_id, "ORD-404"):
        response = pipeline.get(f"/api/v1/records/order/{record_id}")
        assert response.status_code == 403
        assert response.json()["errors"][0]["field"] == "record_type"


def test_references_are_given_as_record_ids(db):
    pipeline = make_pipeline(
        make_workflow(slug="refunds", policies={("order", "customer"): "read", ("order", "amount"): "read"})
    )
    order = OrderFactory(amount="49.90")
    answer = pipeline.get(f"/api/v1/records/order/{order.record_id}").json()
    assert answer["fields"] == {"customer": order.customer.record_id, "amount": "49.90"}


def test_an_assist_workflow_reads_too(db, customer_with_secrets):
    pipeline = make_pipeline(
        make_workflow(slug="reply-drafts", lane="assist", policies={("customer", "full_name"): "read"})
    )
    assert pipeline.get("/api/v1/records/customer/CUS-10432").json()["fields"] == {"full_name": "Maria Lopez"}


@pytest.mark.parametrize(
    ("stage", "detail"),
    [
        ("paused", "workflow address-updates is paused: its pipeline reads no records until a person resumes it"),
        (
            "draft",
            "workflow address-updates is still in draft: its pipeline reads records once it moves to shadow, "
            "canary or live",
        ),
    ],
)
def test_a_paused_or_draft_workflow_reads_nothing_423_as_intake_answers(db, customer_with_secrets, stage, detail):
    pipeline = make_pipeline(make_workflow(stage=stage))
    response = pipeline.get("/api/v1/records/customer/CUS-10432?fields=full_name")
    assert response.status_code == 423
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    intake = pipeline.post("/api/v1/proposals", proposal_body())
    assert intake.status_code == 423
    assert {key: body[key] for key in ("type", "title", "status")} == {
        key: intake.json()[key] for key in ("type", "title", "status")
    }
    assert body["detail"] == detail
    assert "Maria" not in response.content.decode()


def test_a_shadow_workflow_reads_as_a_live_one_does(db, customer_with_secrets):
    pipeline = make_pipeline(make_workflow(stage="shadow"))
    assert pipeline.get("/api/v1/records/customer/CUS-10432?fields=full_name").json()["fields"] == {
        "full_name": "Maria Lopez"
    }
