"""`requested_by` names a real active user, compared after NFKC and case folding, or intake answers 422
naming it; the account it matched is stored with the proposal (and the batch), so later checks compare
accounts, not spellings."""

import pytest
from django.contrib.auth.models import User
from guardian.shortcuts import assign_perm

from approvals.models import Batch, Proposal
from approvals.review.services import proposal_approve
from audit.models import AuditEvent
from core.errors import NotAllowed
from tests.helpers.factories import GroupFactory, UserFactory
from tests.helpers.pipeline import proposal_body

OPEN = {"name": "Nightly address sweep", "run_id": "run-2026-11-27", "expected_size": 3}


@pytest.fixture
def lead(db) -> User:  # type: ignore[no-untyped-def]
    return UserFactory(username="lead")


def refused_on_requested_by(response) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"
    [error] = response.json()["errors"]
    assert error["field"] == "requested_by"
    return str(error["message"])


@pytest.mark.parametrize("given", ["lead", "LEAD", "  Lead ", "ｌｅａｄ", "ＬＥＡＤ"])
def test_a_requester_is_matched_after_nfkc_and_case_folding_and_stored_as_the_account(pipeline, customer, lead, given):
    response = pipeline.post("/api/v1/proposals", proposal_body(requested_by=given))
    assert response.status_code == 201, response.content
    proposal = Proposal.objects.get()
    assert (proposal.requested_by, proposal.requested_by_user_id) == ("lead", lead.pk)
    event = AuditEvent.objects.get(action="proposal.submitted")
    assert event.details["requested_by"] == "lead"


def test_case_folding_is_unicode_s_not_only_ascii_s(pipeline, customer):
    strasse = UserFactory(username="straße")
    response = pipeline.post("/api/v1/proposals", proposal_body(requested_by="STRASSE"))
    assert response.status_code == 201, response.content
    assert Proposal.objects.get().requested_by_user_id == strasse.pk


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("nobody", "'nobody' is not the username of an active user"),
        ("leader", "'leader' is not the username of an active user"),
        ("retired", "'retired' is not the username of an active user"),
        ("lead\u200b", "must be a username without invisible or control characters (it holds U+200B)"),
        # A bidirectional control is refused at the edge, as in any text the API takes.
        (
            "\u202elead",
            "must not contain a bidirectional control character, which makes text read out of order "
            "(U+202E at character 1)",
        ),
        ("le\u00adad", "must be a username without invisible or control characters (it holds U+00AD)"),
    ],
)
def test_a_requester_who_is_no_active_user_is_422_naming_requested_by(pipeline, customer, lead, given, reason):
    UserFactory(username="retired", is_active=False)
    assert refused_on_requested_by(pipeline.post("/api/v1/proposals", proposal_body(requested_by=given))) == reason
    assert not Proposal.objects.exists()
    assert not AuditEvent.objects.filter(action="proposal.submitted").exists()


def test_the_same_refusal_with_an_idempotency_key_and_it_keeps_nothing(pipeline, customer, lead):
    body = proposal_body(requested_by="lead\u200b")
    first = pipeline.post("/api/v1/proposals", body, **{"Idempotency-Key": "run-42-item-1"})
    assert "U+200B" in refused_on_requested_by(first)
    fixed = pipeline.post(
        "/api/v1/proposals", proposal_body(requested_by="lead"), **{"Idempotency-Key": "run-42-item-1"}
    )
    assert fixed.status_code == 201, fixed.content


def test_a_name_two_accounts_share_after_folding_needs_the_exact_username(pipeline, customer, lead):
    capital = UserFactory(username="Lead")
    message = refused_on_requested_by(pipeline.post("/api/v1/proposals", proposal_body(requested_by="LEAD")))
    assert message == "'LEAD' matches more than one active user (Lead, lead); give the exact username"
    assert pipeline.post("/api/v1/proposals", proposal_body(requested_by="Lead")).status_code == 201
    assert Proposal.objects.get().requested_by_user_id == capital.pk


def test_in_a_batch_the_item_with_a_bad_requester_is_refused_and_the_others_accepted(pipeline, customer, lead):
    batch = pipeline.post("/api/v1/batches", OPEN).json()
    items = [
        proposal_body(requested_by="LEAD"),
        proposal_body(requested_by="lead\u200b"),
        proposal_body(requested_by="nobody"),
    ]
    answer = pipeline.post(f"/api/v1/batches/{batch['id']}/proposals", items).json()
    assert (answer["accepted"], answer["refused"]) == (1, 2)
    assert [result["status_code"] for result in answer["results"]] == [201, 422, 422]
    for result in answer["results"][1:]:
        assert [error["field"] for error in result["body"]["errors"]] == ["requested_by"]
    assert Proposal.objects.get().requested_by_user_id == lead.pk


def test_a_batch_s_requester_is_matched_the_same_way_and_its_proposals_inherit_the_account(pipeline, customer, lead):
    assert "not the username" in refused_on_requested_by(
        pipeline.post("/api/v1/batches", {**OPEN, "requested_by": "nobody"})
    )
    assert "U+200B" in refused_on_requested_by(pipeline.post("/api/v1/batches", {**OPEN, "requested_by": "lead\u200b"}))
    assert not Batch.objects.exists()

    batch = pipeline.post("/api/v1/batches", {**OPEN, "requested_by": "LEAD"}).json()
    assert batch["requested_by"] == "lead"
    assert Batch.objects.get().requested_by_user_id == lead.pk
    pipeline.post(f"/api/v1/batches/{batch['id']}/proposals", [proposal_body(requested_by=...)])
    proposal = Proposal.objects.get()
    assert (proposal.requested_by, proposal.requested_by_user_id) == ("lead", lead.pk)


def test_whoever_the_name_was_spelt_the_requester_cannot_approve_it(pipeline, customer, lead):
    leads = GroupFactory(name="support-leads")
    lead.groups.add(leads)
    pipeline.workflow.approver_group = leads
    pipeline.workflow.save()
    assign_perm("approvals.review_workflow", leads, pipeline.workflow)
    pipeline.post("/api/v1/proposals", proposal_body(requested_by="ＬＥＡＤ"))
    proposal = Proposal.objects.get()
    with pytest.raises(NotAllowed, match="You asked for this change, so someone else must decide it"):
        proposal_approve(proposal=proposal, reviewer=lead)
