"""A client's mistake is always a 4xx problem naming what is wrong, never a 500."""

import json

import pytest

from approvals.models import Proposal
from audit.models import AuditEvent
from tests.helpers.pipeline import proposal_body

PROBLEM_KEYS = {"type", "title", "status", "detail", "errors"}


def problem(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert PROBLEM_KEYS <= set(body)
    assert body["status"] == status
    assert body["type"].startswith("urn:countersign:problem:")
    return body


def fields_named(body: dict) -> list[str]:
    return [error["field"] for error in body["errors"]]


def test_malformed_json_is_400_naming_the_body(pipeline, customer):
    body = problem(pipeline.post("/api/v1/proposals", b'{"record_type": "customer",'), 400)
    assert fields_named(body) == ["body"]
    assert "not valid JSON" in body["detail"]


def test_an_empty_body_is_400(pipeline, customer):
    assert fields_named(problem(pipeline.post("/api/v1/proposals", b""), 400)) == ["body"]


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_json_numbers_are_400(pipeline, customer, literal):
    raw = json.dumps(proposal_body(confidence=0.5)).replace("0.5", literal.decode()).encode()
    assert fields_named(problem(pipeline.post("/api/v1/proposals", raw), 400)) == ["body"]


def test_deep_nesting_is_refused_not_a_crash(pipeline, customer):
    raw = b"[" * 100_000 + b"]" * 100_000
    assert problem(pipeline.post("/api/v1/proposals", raw), 400)["errors"][0]["field"] == "body"


def test_nesting_in_a_free_form_field_is_refused(pipeline, customer):
    nested: object = "x"
    for _ in range(40):
        nested = {"a": nested}
    body = problem(pipeline.post("/api/v1/proposals", proposal_body(changes={"tags": nested}), **{}), 422)
    assert fields_named(body)[0].startswith("changes.tags")


def test_a_body_that_is_not_an_object_is_422(pipeline, customer):
    assert fields_named(problem(pipeline.post("/api/v1/proposals", [1, 2]), 422)) == ["body"]


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"confidence": "0.9"}, "confidence"),
        ({"confidence": True}, "confidence"),
        ({"record_id": 10432}, "record_id"),
        ({"model": "gpt-x"}, "model"),
        ({"changes": ["shipping_address"]}, "changes"),
        ({"follow_ups": {"kind": "email_customer"}}, "follow_ups"),
        ({"record_type": "invoice"}, "record_type"),
        ({"action": "destroy"}, "action"),
    ],
)
def test_wrong_types_are_422_naming_the_field(pipeline, customer, override, field):
    body = problem(pipeline.post("/api/v1/proposals", proposal_body(**override)), 422)
    assert field in fields_named(body)


def test_unknown_keys_are_422_naming_each(pipeline, customer):
    sent = proposal_body(priority="high", model={"name": "gpt-x", "version": "1", "temperature": 0.2})
    body = problem(pipeline.post("/api/v1/proposals", sent), 422)
    assert set(fields_named(body)) == {"priority", "model.temperature"}
    assert all(error["message"] == "is not a known key" for error in body["errors"])


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"reason": "because\u0000"}, "reason"),
        ({"changes": {"shipping_address": "12 Harbour\u0000 Road"}}, "changes.shipping_address"),
        ({"base": {"shipping\u0000": "x"}}, "base"),
        ({"model": {"name": "gpt\u0000", "version": "1"}}, "model.name"),
    ],
)
def test_nul_characters_are_422_naming_the_field(pipeline, customer, override, field):
    body = problem(pipeline.post("/api/v1/proposals", proposal_body(**override)), 422)
    assert fields_named(body) == [field]
    assert "NUL" in body["errors"][0]["message"]
    assert Proposal.objects.count() == 0


def test_nul_in_the_address_is_422(pipeline, customer):
    body = problem(pipeline.get("/api/v1/records/customer/CUS-10432%00"), 422)
    assert fields_named(body) == ["record_id"]


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"reason": "x" * 1_000_000}, "reason"),
        ({"record_id": "CUS-" + "9" * 5000}, "record_id"),
        ({"changes": {"shipping_address": "x" * 100_000}}, "changes.shipping_address"),
        ({"prompt_version": "v" * 300}, "prompt_version"),
    ],
)
def test_huge_strings_are_422_naming_the_field(pipeline, customer, override, field):
    body = problem(pipeline.post("/api/v1/proposals", proposal_body(**override)), 422)
    assert fields_named(body) == [field]
    assert len(json.dumps(body)) < 2000


def test_a_huge_number_is_refused(pipeline, customer):
    raw = json.dumps(proposal_body(confidence=0.5)).replace("0.5", "1" + "0" * 5000).encode()
    assert problem(pipeline.post("/api/v1/proposals", raw), 400)["errors"][0]["field"] == "body"


def test_a_body_over_the_limit_is_413(pipeline, customer, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = problem(pipeline.post("/api/v1/proposals", proposal_body(reason="x" * 20_000)), 413)
    assert fields_named(body) == ["body"]
    assert Proposal.objects.count() == 0


def test_an_unknown_address_is_a_404_problem(pipeline):
    body = problem(pipeline.get("/api/v1/no-such-thing"), 404)
    assert "/api/v1/docs" in body["detail"]


def test_a_method_the_path_does_not_take_is_a_405_problem(pipeline):
    response = pipeline.client.delete("/api/v1/proposals", headers=pipeline.headers())
    body = problem(response, 405)
    assert response["Allow"] == "POST"
    assert "DELETE" in body["detail"]


def test_a_path_id_out_of_range_is_422(pipeline):
    body = problem(pipeline.get("/api/v1/proposals/99999999999999999999999"), 422)
    assert fields_named(body) == ["proposal_id"]
    assert fields_named(problem(pipeline.get("/api/v1/batches/0"), 422)) == ["batch_id"]


def test_nothing_is_written_on_a_refusal(pipeline, customer):
    before = AuditEvent.objects.count()
    for sent in (proposal_body(reason=""), proposal_body(record_id="CUS-1"), proposal_body(changes={"email": "x"})):
        assert pipeline.post("/api/v1/proposals", sent).status_code >= 400
    assert Proposal.objects.count() == 0
    assert AuditEvent.objects.count() == before
