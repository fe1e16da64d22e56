"""A trail row says only what its event holds: no invented change, and a decision in its own words."""

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from audit.services import Actor, audit_record
from tests.helpers.factories import UserFactory
from tests.helpers.seeing import make_auditor
from tests.helpers.trail import trail_rows

T0 = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
LEAD = Actor(kind="user", id="4", label="lead")


@pytest.fixture
def auditor(client, db):  # type: ignore[no-untyped-def]
    client.force_login(make_auditor(UserFactory(username="auditor")))
    return client


def _row(client, action: str) -> str:  # type: ignore[no-untyped-def]
    [row] = trail_rows(client.get(reverse("trail")).content.decode(), action)
    return row


def _event(action: str, **fields) -> None:  # type: ignore[no-untyped-def]
    audit_record(action=action, record_type="order", record_id="ORD-50001", proposal_id=7, **fields)


def test_a_submission_stored_before_held_values_were_kept_lists_only_what_it_proposes(auditor):
    """Its old_value is the AI's base: a field the proposal does not change is not a change."""
    _event(
        "proposal.submitted",
        actor=Actor.system("pipeline"),
        old_value={"amount": "140.56", "refund_status": "none"},
        new_value={"refund_status": "requested"},
    )
    row = _row(auditor, "proposal.submitted")
    assert "refund status: proposed requested (the AI saw none)" in row
    assert "amount" not in row and "(empty)" not in row and "→" not in row


def test_a_submission_whose_ai_saw_nothing_of_a_field_is_not_an_empty_value(auditor):
    _event("proposal.submitted", actor=Actor.system("pipeline"), new_value={"refund_status": "requested"})
    row = _row(auditor, "proposal.submitted")
    assert "refund status: proposed requested |" in row
    assert "(empty)" not in row and "the AI saw" not in row


def test_a_lint_event_names_the_field_it_flagged_and_shows_no_change(auditor):
    _event(
        "proposal.artifact_flagged",
        actor=Actor.system("minimisation-lint"),
        field="customer.email",
        details={"artifact_id": "a1", "kind": "prompt", "bucket": "live"},
    )
    row = _row(auditor, "proposal.artifact_flagged")
    assert "flagged customer email in its prompt" in row
    assert "→" not in row and "(empty)" not in row


@pytest.mark.parametrize(
    ("approver_label", "details"),
    [("", {"rejected_by": "Dana Lee"}), ("Dana Lee", {})],
    ids=["as-recorded-now", "as-recorded-before"],
)
def test_a_rejection_reads_rejected_by_never_approved_by(auditor, approver_label, details):
    _event(
        "proposal.rejected",
        actor=LEAD,
        approver_label=approver_label,
        decided_at=T0,
        reason="wrong order",
        details=details,
    )
    row = _row(auditor, "proposal.rejected")
    assert "rejected by Dana Lee at" in row
    assert "approved by" not in row


def test_an_approval_still_reads_approved_by(auditor):
    _event("proposal.approved", actor=LEAD, approver_label="Dana Lee", decided_at=T0)
    assert "approved by Dana Lee at" in _row(auditor, "proposal.approved")


def test_a_write_forced_over_a_conflict_names_who_forced_it(auditor):
    _event("proposal.forced", actor=Actor(kind="user", id="9", label="ops"), approver_label="Sam Okafor", decided_at=T0)
    row = _row(auditor, "proposal.forced")
    assert "forced over a conflict by Sam Okafor at" in row
    assert "approved by" not in row


def test_a_refused_training_copy_reads_refused_by(auditor):
    audit_record(
        action="artifact.training_decided",
        actor=Actor(kind="user", id="5", label="owner"),
        approver_label="Morgan Hale",
        decided_at=T0,
        details={"approved": False},
    )
    row = _row(auditor, "artifact.training_decided")
    assert "refused by Morgan Hale at" in row
    assert "approved by" not in row
