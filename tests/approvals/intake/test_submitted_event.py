"""`proposal.submitted` on the trail: what the record held when the proposal arrived, what is proposed,
and what the AI says it saw, and nothing the proposal does not change."""

import pytest
from django.urls import reverse

from approvals.intake.services import ProposalData, proposal_submit
from audit.models import AuditEvent
from tests.helpers.factories import CustomerFactory, OrderFactory, UserFactory
from tests.helpers.pipeline import make_pipeline, make_workflow
from tests.helpers.seeing import make_auditor
from tests.helpers.trail import trail_rows

REFUNDS = {("order", "refund_status"): "suggest", ("order", "amount"): "read", ("order", "status"): "read"}


@pytest.fixture
def refunds(db):  # type: ignore[no-untyped-def]
    return make_pipeline(make_workflow(slug="refund-notes", policies=REFUNDS))


def _data(**fields):  # type: ignore[no-untyped-def]
    values = {
        "record_type": "order",
        "record_id": "ORD-50001",
        "action": "update",
        "reason": "The customer asked for a refund in T-881",
        "confidence": 0.9,
        "model_name": "gpt-x",
        "model_version": "2026-10-01",
        "prompt_version": "refund@3",
        "changes": {"refund_status": "requested"},
        **fields,
    }
    return ProposalData(**values)


def test_it_holds_the_records_value_of_each_changed_field_and_what_the_ai_saw_apart(refunds):
    OrderFactory(record_id="ORD-50001", amount="140.56", refund_status="none")
    proposal = proposal_submit(account=refunds.account, data=_data(base={"amount": "140.56", "refund_status": "none"}))
    event = AuditEvent.objects.get(action="proposal.submitted")
    assert event.proposal_id == proposal.pk
    assert event.old_value == {"refund_status": "none"}
    assert event.new_value == {"refund_status": "requested"}
    assert event.details["base"] == {"amount": "140.56", "refund_status": "none"}


def test_it_holds_the_records_value_even_when_the_ai_sent_no_base(refunds):
    OrderFactory(record_id="ORD-50001", amount="140.56", refund_status="approved")
    proposal_submit(account=refunds.account, data=_data())
    event = AuditEvent.objects.get(action="proposal.submitted")
    assert event.old_value == {"refund_status": "approved"}
    assert event.details["base"] == {}


def test_a_merge_names_what_it_folds_into_and_holds_no_field_values(db):
    pipeline = make_pipeline(make_workflow(slug="duplicate-merge", actions=["merge"]))
    CustomerFactory(record_id="CUS-10001")
    CustomerFactory(record_id="CUS-10002")
    proposal_submit(
        account=pipeline.account,
        data=_data(record_type="customer", record_id="CUS-10002", action="merge", changes={}, merge_into="CUS-10001"),
    )
    event = AuditEvent.objects.get(action="proposal.submitted")
    assert event.old_value is None
    assert event.new_value == {"merge_into": "CUS-10001"}


def test_the_trail_row_reads_held_to_proposed_and_names_no_other_field(refunds, client):
    OrderFactory(record_id="ORD-50001", amount="140.56", refund_status="approved")
    proposal_submit(account=refunds.account, data=_data(base={"amount": "140.56", "refund_status": "none"}))
    client.force_login(make_auditor(UserFactory(username="auditor")))
    [row] = trail_rows(
        client.get(reverse("trail"), {"workflow": "refund-notes"}).content.decode(), "proposal.submitted"
    )
    assert "refund status: approved → requested (the AI saw none)" in row
    assert "amount" not in row and "(empty)" not in row
