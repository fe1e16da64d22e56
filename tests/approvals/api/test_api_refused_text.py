"""Hostile text is refused at the edge: a NUL, a lone surrogate or a bidirectional control anywhere in
what a pipeline sends is a 422 naming the field, before anything reaches the database; in a batch only
the item that holds it is refused. The same on SQLite and PostgreSQL, with or without Idempotency-Key."""

import json
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from guardian.shortcuts import assign_perm

from approvals.models import Batch, IdempotencyKey, Proposal, RetentionRule, StopSwitch
from audit.models import Artifact, AuditEvent
from tests.helpers.factories import CustomerFactory, GroupFactory, UserFactory
from tests.helpers.pipeline import make_pipeline, make_workflow, proposal_body
from tests.helpers.seeing import make_exporter

REFUSED = {"NUL": "\x00", "lone surrogate": "\udfff", "bidirectional control": "\u202e"}
KINDS = list(REFUSED)


def key() -> dict[str, str]:
    return {"Idempotency-Key": f"item-{uuid.uuid4()}"}


def refused(response, kind: str) -> list[str]:  # type: ignore[no-untyped-def]
    """The fields a 422 names, each said to hold the kind of character sent."""
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert all(kind in error["message"] for error in errors), errors
    return [error["field"] for error in errors]


def nothing_submitted() -> bool:
    return not Proposal.objects.exists() and not AuditEvent.objects.filter(action="proposal.submitted").exists()


def with_text(text: str) -> list[tuple[dict, str]]:
    """(proposal body, the field it names) for `text` in each place a proposal holds text."""
    return [
        (proposal_body(reason=f"Customer asked{text}"), "reason"),
        (proposal_body(changes={"shipping_address": f"12 Harbour{text} Road"}), "changes.shipping_address"),
        (proposal_body(base={"shipping_address": f"4 Old Mill{text} Lane, Leith"}), "base.shipping_address"),
        (proposal_body(changes={f"shipping_address{text}": "12 Harbour Road"}), "changes"),
        (proposal_body(base={f"shipping{text}": "x"}), "base"),
        (proposal_body(changes={"tags": ["vip", f"b2b{text}"]}), "changes.tags[1]"),
        (proposal_body(model={"name": f"gpt{text}", "version": "1"}), "model.name"),
        (proposal_body(model={"name": "gpt-x", "version": f"2026{text}"}), "model.version"),
        (proposal_body(prompt_version=f"address-update@7{text}"), "prompt_version"),
        (proposal_body(run_id=f"run{text}"), "run_id"),
        (proposal_body(requested_by=f"maria.lopez{text}"), "requested_by"),
        (proposal_body(record_id=f"CUS-10432{text}"), "record_id"),
        (proposal_body(action="merge", changes=..., base=..., merge_into=f"CUS-1{text}"), "merge_into"),
        (
            proposal_body(follow_ups=[{"kind": "email_customer", "params": {"template": f"address{text}"}}]),
            "follow_ups[0].params.template",
        ),
        (
            proposal_body(follow_ups=[{"kind": "webhook", "params": {f"url{text}": "https://hooks.example.com/"}}]),
            "follow_ups[0].params",
        ),
    ]


@pytest.mark.parametrize("keyed", [False, True], ids=["unkeyed", "keyed"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_proposal_holding_refused_text_anywhere_is_422_naming_the_field(pipeline, customer, kind, keyed):
    for body, field in with_text(REFUSED[kind]):
        headers = key() if keyed else {}
        assert refused(pipeline.post("/api/v1/proposals", body, **headers), kind) == [field], field
    assert nothing_submitted()
    assert not IdempotencyKey.objects.exists()


def test_a_refusal_leaves_the_key_free_for_the_corrected_request(pipeline, customer):
    headers = key()
    refused(pipeline.post("/api/v1/proposals", proposal_body(reason="because\udfff"), **headers), "lone surrogate")
    assert pipeline.post("/api/v1/proposals", proposal_body(), **headers).status_code == 201


def test_every_field_holding_refused_text_is_named(pipeline, customer):
    body = proposal_body(reason="why\u2066", changes={"shipping_address": "12\x00"}, run_id="\udfff")
    response = pipeline.post("/api/v1/proposals", body)
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["changes.shipping_address", "reason", "run_id"]


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        # UTF-8 as it is sent, not as a JSON escape: a bidirectional control, and a surrogate's three bytes.
        ("\u202e".encode(), 422),
        (b"\xed\xbf\xbf", 422),
        (b"\xff", 400),
    ],
    ids=["bidirectional control", "encoded surrogate", "not UTF-8"],
)
def test_refused_text_sent_as_raw_bytes_is_refused_too(pipeline, customer, raw, status):
    body = json.dumps(proposal_body(reason="REASON")).encode().replace(b"REASON", b"because " + raw)
    response = pipeline.post("/api/v1/proposals", body)
    assert response.status_code == status, response.content
    assert [error["field"] for error in response.json()["errors"]] == ["reason" if status == 422 else "body"]
    assert nothing_submitted()


@pytest.fixture
def batch_id(pipeline, customer):  # type: ignore[no-untyped-def]
    CustomerFactory(record_id="CUS-10433")
    return pipeline.post("/api/v1/batches", {"name": "Nightly", "run_id": "run-1", "expected_size": 5}).json()["id"]


MIXED_BATCH = [
    proposal_body(),
    proposal_body(changes={"shipping_address": "12 Harbour\udfff Road"}),
    proposal_body(record_id="CUS-10433"),
    proposal_body(reason="Customer asked \u202eti rof"),
    proposal_body(follow_ups=[{"kind": "email_customer", "params": {"template": "address\x00"}}]),
]


@pytest.mark.parametrize("keyed", [False, True], ids=["unkeyed", "keyed"])
def test_in_a_batch_only_the_items_holding_refused_text_are_refused(pipeline, batch_id, keyed):
    headers = key() if keyed else {}
    response = pipeline.post(f"/api/v1/batches/{batch_id}/proposals", MIXED_BATCH, **headers)
    assert response.status_code == 200, response.content
    answer = response.json()
    assert [result["status_code"] for result in answer["results"]] == [201, 422, 201, 422, 422]
    named = [[error["field"] for error in answer["results"][index]["body"]["errors"]] for index in (1, 3, 4)]
    assert named == [["changes.shipping_address"], ["reason"], ["follow_ups[0].params.template"]]
    assert (answer["accepted"], answer["refused"]) == (2, 3)
    assert set(Proposal.objects.values_list("record_id", flat=True)) == {"CUS-10432", "CUS-10433"}
    if keyed:
        again = pipeline.post(f"/api/v1/batches/{batch_id}/proposals", MIXED_BATCH, **headers)
        assert (again.status_code, again.content) == (200, response.content)
        assert again["Idempotent-Replayed"] == "true"
        assert Proposal.objects.count() == 2


@pytest.mark.parametrize("kind", KINDS)
def test_opening_a_batch_with_refused_text_is_422_naming_the_field(pipeline, kind):
    text = REFUSED[kind]
    body = {"name": f"Nightly{text}", "run_id": f"run{text}", "expected_size": 5, "requested_by": f"lead{text}"}
    assert refused(pipeline.post("/api/v1/batches", body, **key()), kind) == ["name", "run_id", "requested_by"]
    assert not Batch.objects.exists()


@pytest.mark.parametrize("kind", KINDS)
def test_a_stop_reason_holding_refused_text_stops_nothing(pipeline, batch_id, kind):
    response = pipeline.post(f"/api/v1/batches/{batch_id}/stop", {"reason": f"bad run{REFUSED[kind]}"})
    assert refused(response, kind) == ["reason"]
    assert not StopSwitch.objects.exists()


@pytest.mark.parametrize("kind", KINDS)
def test_an_artifact_holding_refused_text_is_not_stored(pipeline, kind):
    RetentionRule.objects.create(
        workflow=pipeline.workflow,
        kind="prompt",
        bucket="live",
        window=timedelta(days=7),
        owner=pipeline.workflow.owner,
    )
    text = REFUSED[kind]
    body = {"kind": "prompt", "bucket": "live", "name": f"prompt{text}.txt", "content": f"Rewrite{text}"}
    assert refused(pipeline.post("/api/v1/artifacts", body), kind) == ["name", "content"]
    assert not Artifact.objects.exists()


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/records/customer/CUS-10432%E2%80%AE", "record_id"),
        ("/api/v1/records/customer/CUS-10432?fields=%E2%81%A6", "fields"),
    ],
)
def test_reading_a_record_by_refused_text_is_422_naming_it(pipeline, customer, path, field):
    assert refused(pipeline.get(path), "bidirectional control") == [field]


@pytest.mark.parametrize("kind", KINDS)
def test_an_idempotency_key_holding_refused_text_is_422_naming_it(pipeline, customer, kind):
    response = pipeline.post("/api/v1/proposals", proposal_body(), **{"Idempotency-Key": f"k{REFUSED[kind]}"})
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["Idempotency-Key"]
    assert nothing_submitted()


def test_a_token_holding_refused_text_is_401(pipeline, customer):
    response = pipeline.client.get("/api/v1/records/customer/CUS-10432", headers={"Authorization": "Bearer cs_\udfff"})
    assert response.status_code == 401


def test_after_refused_text_the_trail_blocked_page_and_exports_answer(client, pipeline, batch_id):
    for kind in KINDS:
        pipeline.post("/api/v1/proposals", proposal_body(changes={"shipping_address": f"12{REFUSED[kind]}"}))
    pipeline.post(f"/api/v1/batches/{batch_id}/proposals", MIXED_BATCH, **key())
    leads = GroupFactory(name="support-leads")
    for codename in ("view_workflow", "review_workflow"):
        assign_perm(f"approvals.{codename}", leads, pipeline.workflow)
    lead = make_exporter(UserFactory(username="lead"))
    lead.groups.add(leads)
    client.force_login(lead)
    today = {"since": (timezone.now() - timedelta(hours=1)).isoformat(), "until": timezone.now().isoformat()}
    for page in ("/trail/", "/blocked/", "/trail/export.csv", "/trail/export.json"):
        response = client.get(page, today if "export" in page else {})
        assert response.status_code == 200, page
        body = b"".join(response.streaming_content if response.streaming else [response.content]).decode()
        assert "CUS-10433" in body or page == "/blocked/"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_postgres_takes_the_clean_items_of_a_keyed_batch_and_refuses_the_rest():
    """PostgreSQL cannot store a NUL or a lone surrogate: the edge must refuse them before a statement
    fails and aborts the transaction that holds the batch's clean items."""
    assert connection.vendor == "postgresql"
    pipeline = make_pipeline(make_workflow())
    for record_id in ("CUS-10432", "CUS-10433"):
        CustomerFactory(record_id=record_id)
    batch = pipeline.post("/api/v1/batches", {"name": "Nightly", "run_id": "run-1", "expected_size": 5}).json()
    headers = key()
    response = pipeline.post(f"/api/v1/batches/{batch['id']}/proposals", MIXED_BATCH, **headers)
    assert response.status_code == 200, response.content
    assert [result["status_code"] for result in response.json()["results"]] == [201, 422, 201, 422, 422]
    assert Proposal.objects.count() == 2
    assert IdempotencyKey.objects.get(key=headers["Idempotency-Key"]).status_code == 200
    for body, field in with_text("\udfff"):
        assert refused(pipeline.post("/api/v1/proposals", body, **key()), "lone surrogate") == [field]
    assert Proposal.objects.count() == 2
