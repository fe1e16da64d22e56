"""Artifacts: kept by the workflow's retention rule for their kind and bucket; the caller never sets expiry."""

import base64
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.files.storage import default_storage

from approvals.models import RetentionRule
from audit.models import Artifact, AuditEvent
from tests.helpers.factories import ProposalFactory
from tests.helpers.pipeline import make_pipeline, make_workflow, proposal_body

NOW = datetime(2026, 11, 27, 14, 14, tzinfo=UTC)
PROMPT = "Rewrite the address for CUS-10432 from ticket T-881"


@pytest.fixture
def rules(pipeline):  # type: ignore[no-untyped-def]
    for kind, bucket, window in (
        ("prompt", "live", timedelta(days=7)),
        ("output", "training", timedelta(days=30)),
        ("attachment", "live", timedelta(days=1)),
        ("output", "analytics", timedelta(0)),
    ):
        RetentionRule.objects.create(
            workflow=pipeline.workflow, kind=kind, bucket=bucket, window=window, owner=pipeline.workflow.owner
        )


@pytest.fixture
def proposal_id(pipeline, customer):  # type: ignore[no-untyped-def]
    return pipeline.post("/api/v1/proposals", proposal_body()).json()["id"]


def test_a_prompt_is_kept_for_its_rules_window(pipeline, rules, proposal_id, settings, tmp_path):
    with time_machine.travel(NOW, tick=False):
        response = pipeline.post(
            f"/api/v1/proposals/{proposal_id}/artifacts", {"kind": "prompt", "bucket": "live", "content": PROMPT}
        )
    assert response.status_code == 201, response.content
    answer = response.json()
    artifact = Artifact.objects.get()
    assert answer["id"] == str(artifact.id)
    assert artifact.content == PROMPT
    assert artifact.sha256 == answer["sha256"] == hashlib.sha256(PROMPT.encode()).hexdigest()
    assert artifact.size == answer["size"] == len(PROMPT.encode())
    assert artifact.expires_at == NOW + timedelta(days=7)
    assert answer["expires_at"].startswith("2026-12-04T14:14")
    assert artifact.proposal_id == proposal_id
    assert artifact.rule_id == RetentionRule.objects.get(kind="prompt", bucket="live").pk
    event = AuditEvent.objects.get(action="artifact.stored")
    assert event.proposal_id == proposal_id
    assert event.details["sha256"] == artifact.sha256


def test_the_caller_cannot_set_the_expiry(pipeline, rules, proposal_id):
    sent = {"kind": "prompt", "bucket": "live", "content": PROMPT, "expires_at": "2099-01-01T00:00:00Z"}
    response = pipeline.post(f"/api/v1/proposals/{proposal_id}/artifacts", sent)
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "expires_at", "message": "is not a known key"}]
    assert not Artifact.objects.exists()


def test_no_rule_for_the_kind_and_bucket_is_422_naming_the_rule(pipeline, rules, proposal_id):
    response = pipeline.post(
        f"/api/v1/proposals/{proposal_id}/artifacts", {"kind": "error_log", "bucket": "live", "content": "boom"}
    )
    assert response.status_code == 422
    body = response.json()
    assert "no retention rule error_log/live" in body["detail"]
    assert body["errors"][0]["field"] == "bucket"
    assert body["missing_rule"] == "error_log/live"
    assert not Artifact.objects.exists()


def test_a_rule_of_zero_means_never_stored(pipeline, rules, proposal_id):
    response = pipeline.post(
        f"/api/v1/proposals/{proposal_id}/artifacts", {"kind": "output", "bucket": "analytics", "content": "summary"}
    )
    assert response.status_code == 422
    assert "output/analytics has a window of 0" in response.json()["detail"]
    assert not Artifact.objects.exists()


def test_training_copies_need_their_own_approval(pipeline, rules, proposal_id):
    response = pipeline.post(
        f"/api/v1/proposals/{proposal_id}/artifacts", {"kind": "output", "bucket": "training", "content": "x"}
    )
    assert response.status_code == 403
    assert response.json()["errors"][0]["field"] == "bucket"
    assert not Artifact.objects.exists()


def test_an_attachment_goes_through_the_storage_api(pipeline, rules, proposal_id, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    data = b"%PDF-1.7 \x00\x01 binary"
    response = pipeline.post(
        f"/api/v1/proposals/{proposal_id}/artifacts",
        {
            "kind": "attachment",
            "bucket": "live",
            "name": "invoice.pdf",
            "content_base64": base64.b64encode(data).decode(),
        },
    )
    assert response.status_code == 201, response.content
    artifact = Artifact.objects.get()
    assert artifact.content == ""
    assert artifact.name == "invoice.pdf"
    assert artifact.file.name is not None
    with default_storage.open(artifact.file.name, "rb") as stored:
        assert stored.read() == data
    assert artifact.sha256 == hashlib.sha256(data).hexdigest()


def test_bad_base64_is_422(pipeline, rules, proposal_id):
    response = pipeline.post(
        f"/api/v1/proposals/{proposal_id}/artifacts", {"kind": "attachment", "bucket": "live", "content_base64": "%%%"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "content_base64"
    assert not Artifact.objects.exists()


@pytest.mark.parametrize("extra", [{}, {"content": "a", "content_base64": "YQ=="}])
def test_exactly_one_content_is_required(pipeline, rules, proposal_id, extra):
    response = pipeline.post(
        f"/api/v1/proposals/{proposal_id}/artifacts", {"kind": "prompt", "bucket": "live", **extra}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "content"
    assert not Artifact.objects.exists()


def test_another_workflows_proposal_is_404(pipeline, rules):
    other = ProposalFactory(workflow=make_workflow(slug="other"))
    response = pipeline.post(
        f"/api/v1/proposals/{other.pk}/artifacts", {"kind": "prompt", "bucket": "live", "content": PROMPT}
    )
    assert response.status_code == 404
    assert response.json()["errors"][0]["field"] == "proposal_id"
    assert not Artifact.objects.exists()
    assert not AuditEvent.objects.filter(action="artifact.stored").exists()


def test_an_assist_workflow_stores_its_drafts(db):
    workflow = make_workflow(
        slug="reply-drafts", lane="assist", actions=[], policies={("customer", "full_name"): "read"}
    )
    RetentionRule.objects.create(
        workflow=workflow, kind="output", bucket="live", window=timedelta(days=7), owner=workflow.owner
    )
    pipeline = make_pipeline(workflow)
    response = pipeline.post("/api/v1/artifacts", {"kind": "output", "bucket": "live", "content": "Dear Maria, ..."})
    assert response.status_code == 201
    assert response.json()["proposal_id"] is None
    assert Artifact.objects.get().workflow_slug == "reply-drafts"
