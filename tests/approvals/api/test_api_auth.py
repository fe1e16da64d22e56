from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from approvals.intake.accounts import service_account_revoke
from approvals.models import Proposal, ServiceAccount
from audit.services import Actor
from tests.helpers.factories import BatchFactory, ProposalFactory
from tests.helpers.pipeline import make_pipeline, make_workflow, proposal_body


def assert_unauthorized(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response["WWW-Authenticate"].startswith("Bearer")
    problem = response.json()
    assert problem["status"] == 401
    assert problem["title"] == "Unauthorized"
    assert "Bearer" in problem["detail"]


def test_a_missing_token_is_401(db, customer):
    response = Client().post("/api/v1/proposals", proposal_body(), content_type="application/json")
    assert_unauthorized(response)
    assert not Proposal.objects.exists()


def test_an_unknown_token_is_401(db, customer):
    response = Client().get("/api/v1/records/customer/CUS-10432", headers={"Authorization": "Bearer cs_0000_guess"})
    assert_unauthorized(response)


def test_another_scheme_is_401(pipeline, customer):
    response = Client().get("/api/v1/records/customer/CUS-10432", headers={"Authorization": f"Basic {pipeline.token}"})
    assert_unauthorized(response)


def test_a_revoked_token_is_401(pipeline, customer):
    assert pipeline.get("/api/v1/records/customer/CUS-10432").status_code == 200
    service_account_revoke(account=pipeline.account, actor=Actor.system())
    assert_unauthorized(pipeline.get("/api/v1/records/customer/CUS-10432"))


def test_an_expired_token_is_401(pipeline, customer):
    ServiceAccount.objects.filter(pk=pipeline.account.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_unauthorized(pipeline.post("/api/v1/proposals", proposal_body()))
    assert not Proposal.objects.exists()


def test_use_is_recorded_on_the_account(pipeline, customer):
    assert ServiceAccount.objects.get(pk=pipeline.account.pk).last_used_at is None
    pipeline.get("/api/v1/records/customer/CUS-10432")
    assert ServiceAccount.objects.get(pk=pipeline.account.pk).last_used_at is not None


@pytest.mark.parametrize(
    "path",
    ["/api/v1/proposals/{proposal}", "/api/v1/batches/{batch}"],
)
def test_a_token_never_sees_another_workflows_proposals_or_batches(pipeline, path):
    other = make_workflow(slug="other-workflow")
    proposal = ProposalFactory(workflow=other)
    batch = BatchFactory(workflow=other)
    response = pipeline.get(path.format(proposal=proposal.pk, batch=batch.pk))
    assert response.status_code == 404
    assert response.json()["errors"][0]["field"] in {"proposal_id", "batch_id"}
    other_pipeline = make_pipeline(other, name="other")
    assert other_pipeline.get(path.format(proposal=proposal.pk, batch=batch.pk)).status_code == 200


def test_health_needs_no_token(db):
    assert Client().get("/api/v1/health").json() == {"status": "ok"}
