import json
from datetime import timedelta

import pytest

from approvals.intake.lint import artifact_lint
from audit.models import Artifact, AuditEvent
from tests.helpers.factories import (
    ArtifactFactory,
    CustomerFactory,
    FieldPolicyFactory,
    OrderFactory,
    ProposalFactory,
    RetentionRuleFactory,
    WorkflowFactory,
)


@pytest.fixture
def customer(db):
    return CustomerFactory(
        record_id="CUS-10432",
        full_name="Maria Lopez",
        email="maria.lopez@example.com",
        phone="+44 7700 900123",
        shipping_address="4 Old Mill Lane, Leith",
        support_notes="Asked us never to call before noon. Prefers email for anything about refunds.",
    )


@pytest.fixture
def workflow(db):
    workflow = WorkflowFactory(slug="address-updates")
    FieldPolicyFactory(workflow=workflow, record_type="customer", field="full_name", access="read")
    FieldPolicyFactory(workflow=workflow, record_type="customer", field="shipping_address", access="suggest")
    return workflow


@pytest.fixture
def proposal(workflow, customer):
    return ProposalFactory(workflow=workflow, record_type="customer", record_id=customer.record_id)


def _prompt(proposal, text, kind="prompt"):
    rule = RetentionRuleFactory(workflow=proposal.workflow, kind=kind, bucket="live", window=timedelta(days=7))
    return ArtifactFactory.create(rule=rule, proposal_id=proposal.pk, content=text)


def test_the_lint_catches_an_unreadable_email_inside_a_prompt(proposal):
    artifact = _prompt(
        proposal,
        "Customer Maria Lopez (reach her at Maria.Lopez@Example.com) moved. New address: 12 Harbour Road, Leith.",
    )

    assert artifact_lint(artifact=artifact) == ["customer.email"]

    artifact.refresh_from_db()
    proposal.refresh_from_db()
    assert artifact.flagged_fields == ["customer.email"]
    assert proposal.flagged_fields == ["customer.email"]
    event = AuditEvent.objects.get(action="proposal.artifact_flagged")
    assert event.field == "customer.email"
    assert event.proposal_id == proposal.pk
    assert event.record_id == "CUS-10432"
    assert event.details["artifact_id"] == str(artifact.id)
    stored = json.dumps([event.old_value, event.new_value, event.details, event.reason]).casefold()
    assert "maria.lopez@example.com" not in stored


def test_the_lint_stays_quiet_on_fields_the_workflow_may_read(proposal):
    artifact = _prompt(proposal, "Maria Lopez asks to move from 4 Old Mill Lane, Leith to 12 Harbour Road, Leith.")
    assert artifact_lint(artifact=artifact) == []
    artifact.refresh_from_db()
    proposal.refresh_from_db()
    assert artifact.flagged_fields == []
    assert proposal.flagged_fields == []
    assert not AuditEvent.objects.filter(action="proposal.artifact_flagged").exists()


def test_the_lint_matches_a_phone_number_however_it_is_written(proposal):
    artifact = _prompt(proposal, "She called from 07700-900 123 yesterday.", kind="output")
    assert artifact_lint(artifact=artifact) == ["customer.phone"]


def test_the_lint_finds_a_sentence_of_a_note(proposal):
    artifact = _prompt(proposal, "Context: she asked us NEVER to call before noon! Draft a reply.")
    assert artifact_lint(artifact=artifact) == ["customer.support_notes"]


def test_an_address_is_matched_across_case_and_punctuation(workflow, customer):
    workflow.policies.filter(field="shipping_address").delete()
    proposal = ProposalFactory(workflow=workflow, record_type="customer", record_id=customer.record_id, policy=False)
    artifact = _prompt(proposal, "Ship to:\n4 OLD MILL LANE\nLeith")
    assert artifact_lint(artifact=artifact) == ["customer.shipping_address"]


def test_trivially_short_values_are_ignored(workflow):
    customer = CustomerFactory(full_name="Al", phone="", email="a@b.io", support_notes="VIP")
    FieldPolicyFactory(workflow=workflow, record_type="customer", field="email", access="read")
    workflow.policies.filter(field="full_name").delete()
    proposal = ProposalFactory(workflow=workflow, record_type="customer", record_id=customer.record_id)
    artifact = _prompt(proposal, "Al is a VIP customer. Al wants a refund.")
    assert artifact_lint(artifact=artifact) == []


def test_an_order_proposal_is_checked_against_its_customer_too(customer):
    workflow = WorkflowFactory(slug="refund-notes")
    FieldPolicyFactory(workflow=workflow, record_type="order", field="refund_status", access="suggest")
    FieldPolicyFactory(workflow=workflow, record_type="customer", field="full_name", access="read")
    order = OrderFactory(customer=customer)
    proposal = ProposalFactory(
        workflow=workflow,
        record_type="order",
        record_id=order.record_id,
        changes={"refund_status": "requested"},
        base={"refund_status": "none"},
    )
    artifact = _prompt(proposal, f"Order {order.record_id} for Maria Lopez, maria.lopez@example.com, wants a refund.")
    assert artifact_lint(artifact=artifact) == ["customer.email"]


def test_flags_add_up_across_artifacts_of_one_proposal(proposal):
    artifact_lint(artifact=_prompt(proposal, "mail maria.lopez@example.com"))
    artifact_lint(artifact=_prompt(proposal, "call +44 7700 900123", kind="output"))
    proposal.refresh_from_db()
    assert proposal.flagged_fields == ["customer.email", "customer.phone"]


def test_only_prompts_and_outputs_of_a_proposal_are_linted(proposal):
    cached = _prompt(proposal, "maria.lopez@example.com", kind="cache")
    assert artifact_lint(artifact=cached) == []
    loose = _prompt(proposal, "maria.lopez@example.com")
    Artifact.objects.filter(pk=loose.pk).update(proposal_id=None)
    loose.refresh_from_db()
    assert artifact_lint(artifact=loose) == []
