import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils.html import strip_tags

from approvals.models import ProposalApproval
from audit.models import Artifact, Tombstone
from audit.services import Actor, audit_record
from records.store import RecordRef
from tests.helpers.factories import BatchFactory, CustomerFactory, ProposalFactory, UserFactory, WorkflowFactory
from tests.helpers.seeing import make_auditor
from tests.helpers.trail import apply_update, revert

T0 = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


@pytest.fixture
def viewer(client, db):  # type: ignore[no-untyped-def]
    """An auditor: these tests are about what a trace says; who may open one is tested in test_scope."""
    client.force_login(make_auditor(UserFactory(username="ops")))
    return client


def _text(html: str) -> str:
    """The page's words as a person reads them: one space wherever markup or whitespace was."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#x27;", "'").strip()


def _summary(html: str) -> str:
    block = html.split('aria-label="Summary">')[1].split("</p>")[0]
    return re.sub(r"\s+", " ", strip_tags(block)).replace("&#x27;", "'").strip()


def _applied_proposal(**proposal_fields):  # type: ignore[no-untyped-def]
    dana = UserFactory(username="dana", first_name="Dana", last_name="Lee")
    workflow = WorkflowFactory(slug="address-updates")
    customer = CustomerFactory(shipping_address="4 Old Mill Lane")
    proposal = ProposalFactory(
        workflow=workflow,
        record_id=customer.record_id,
        changes={"shipping_address": "12 Harbour Road"},
        base={"shipping_address": "4 Old Mill Lane"},
        reason="Customer asked for the new address in ticket T-881",
        decided_by=dana,
        approved_at=T0 + timedelta(minutes=14, seconds=7),
        decided_at=T0 + timedelta(minutes=14, seconds=7),
        status="approved",
        **proposal_fields,
    )
    change = apply_update(
        RecordRef("customer", customer.record_id),
        {"shipping_address": "12 Harbour Road"},
        at=T0 + timedelta(minutes=14, seconds=9),
        proposal=proposal,
        approver_label="Dana Lee",
        decided_at=proposal.decided_at,
    )
    return proposal, change


def test_the_trace_of_a_change_reads_as_plain_sentences(viewer):
    proposal, change = _applied_proposal()
    response = viewer.get(reverse("trace-change", args=[change.id]))
    assert response.status_code == 200
    assert _summary(response.content.decode()) == (
        "Approved by Dana Lee at 14:14:07 on 27 Nov 2026 · AI workflow address-updates "
        "(gpt-x 2026-10-01, prompt address-update@7) changed shipping address from '4 Old Mill Lane' "
        "to '12 Harbour Road' · reason: Customer asked for the new address in ticket T-881 (confidence 0.93)"
    )


def test_the_trace_shows_who_asked_the_batch_followups_artifacts_and_the_way_to_undo(viewer):
    batch = BatchFactory(name="nightly addresses", run_id="run-77")
    proposal, change = _applied_proposal(
        batch=batch,
        requested_by="maria.lopez",
        follow_ups=[
            {"kind": "email_customer", "params": {"template": "address-confirmed"}},
            {"kind": "webhook", "params": {"url": "https://crm.example/hook"}},
        ],
    )
    audit_record(
        action="followup.sent",
        actor=Actor.worker("w1"),
        proposal_id=proposal.pk,
        details={"index": 0, "kind": "email_customer"},
    )
    Artifact.objects.create(
        workflow_id=proposal.workflow_id,
        workflow_slug="address-updates",
        proposal_id=proposal.pk,
        rule_id=1,
        kind="output",
        bucket="live",
        name="model output",
        content="{}",
        sha256="a" * 64,
        size=2,
        expires_at=T0 + timedelta(days=30),
    )
    Tombstone.objects.create(
        batch=uuid.uuid4(),
        artifact_id=uuid.UUID("5b1c0000-0000-4000-8000-000000000000"),
        workflow_slug="address-updates",
        proposal_id=proposal.pk,
        rule_id=7,
        kind="prompt",
        bucket="live",
        sha256="b" * 64,
        size=2048,
        expires_at=T0 + timedelta(days=1),
        purged_at=T0 + timedelta(days=1, minutes=1),
    )
    html = viewer.get(reverse("trace-change", args=[change.id])).content.decode()
    text = _text(html)
    assert "Who asked maria.lopez, through workflow address-updates, run run-" in text
    assert "batch " + str(batch.pk) + " · nightly addresses (run run-77)" in text
    assert "email customer template: address-confirmed sent at" in text
    assert "webhook url: https://crm.example/hook waiting to run" in text
    assert "Output · model output Live processing" in text
    assert "Prompt purged 5b1c0000-0000-4000-8000-000000000000 Live processing 2.0 KB" in text
    assert "under rule address-updates prompt/live (#7)" in text
    assert f"manage.py rollback --change {change.id}" in text
    assert "<button" not in html.split("<main")[1]  # no dead Undo button before undo exists


def test_an_undone_change_links_both_ways(viewer):
    _, change = _applied_proposal()
    undo = revert(change, at=T0 + timedelta(hours=1))
    original_html = viewer.get(reverse("trace-change", args=[change.id])).content.decode()
    assert f'href="{reverse("trace-change", args=[undo.id])}">trace the undo' in original_html
    assert "manage.py rollback" not in original_html
    undo_summary = _summary(viewer.get(reverse("trace-change", args=[undo.id])).content.decode())
    assert undo_summary == (
        "Undone by worker@test at 15:00:00 on 27 Nov 2026 · restored shipping address from '12 Harbour Road' "
        f"to '4 Old Mill Lane' · undoing change {change.id}"
    )


def test_two_approvers_are_both_named(viewer):
    proposal, change = _applied_proposal()
    dana, sam = proposal.decided_by, UserFactory(username="sam", first_name="Sam", last_name="Okafor")
    ProposalApproval.objects.create(proposal=proposal, user=dana, approved_at=T0 + timedelta(minutes=10))
    ProposalApproval.objects.create(proposal=proposal, user=sam, approved_at=T0 + timedelta(minutes=14, seconds=7))
    summary = _summary(viewer.get(reverse("trace-change", args=[change.id])).content.decode())
    assert summary.startswith("Approved by Dana Lee at 14:10:00 on 27 Nov 2026 and Sam Okafor at 14:14:07 on 27 Nov")


def test_the_trace_of_a_proposal_not_applied(viewer):
    lead = UserFactory(username="lead2", first_name="Dana", last_name="Lee")
    rejected = ProposalFactory(status="rejected", decided_by=lead, decided_at=T0, decision_note="wrong customer")
    pending = ProposalFactory(status="pending", created_at=T0)
    rejected_summary = _summary(viewer.get(reverse("trace-proposal", args=[rejected.pk])).content.decode())
    assert rejected_summary.startswith(
        "Rejected by Dana Lee at 14:00:00 on 27 Nov 2026: “wrong customer” · AI workflow"
    )
    # Its submission is not on the trail: what the record held then is not known, only what the AI saw.
    assert (
        "proposed to change shipping address to '12 Harbour Road, Leith' (the AI saw '4 Old Mill Lane, Leith')"
        in rejected_summary
    )
    pending_html = viewer.get(reverse("trace-proposal", args=[pending.pk])).content.decode()
    assert _summary(pending_html).startswith("Waiting for review since 14:00:00 on 27 Nov 2026")
    assert "runs once the change is applied" not in pending_html  # it asked for no follow-ups
    assert 'aria-label="Undo"' not in pending_html


def test_the_trace_still_reads_from_the_trail_alone(viewer):
    audit_record(
        action="proposal.submitted",
        actor=Actor.system("pipeline"),
        proposal_id=987,
        record_type="customer",
        record_id="CUS-10432",
        workflow_slug="address-updates",
        model_name="gpt-x",
        model_version="2026-10-01",
        prompt_version="address-update@7",
        reason="moved house",
    )
    audit_record(
        action="proposal.approved",
        actor=Actor(kind="user", id="4", label="lead"),
        proposal_id=987,
        approver_label="Dana Lee",
        decided_at=T0,
    )
    summary = _summary(viewer.get(reverse("trace-proposal", args=[987])).content.decode())
    assert summary.startswith("Approved by Dana Lee at 14:00:00 on 27 Nov 2026 · AI workflow address-updates")
    assert "prompt address-update@7" in summary and "reason: moved house" in summary


def test_unknown_ids_are_404_and_pages_need_a_login(client, viewer):
    assert viewer.get(reverse("trace-proposal", args=[424242])).status_code == 404
    assert viewer.get("/trace/change/5b1c2d3e-0000-4000-8000-000000000000/").status_code == 404
    assert viewer.get("/trace/change/not-a-uuid/").status_code == 404
    viewer.logout()
    response = viewer.get(reverse("trace-proposal", args=[1]))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_the_trace_runs_a_fixed_number_of_queries(viewer, django_assert_num_queries):
    proposal, change = _applied_proposal(follow_ups=[{"kind": "email_customer", "params": {}}])
    # session, user, what the viewer may see, change, proposal, its approvals, undos, events, artifacts,
    # tombstones, its follow-ups in the outbox, and the banners on every page (engaged stops, the
    # viewer's stop rights, active overrides, stores that do not answer, the audit chain found broken): 5
    with django_assert_num_queries(16):
        viewer.get(reverse("trace-change", args=[change.id]))
    for n in range(5):
        audit_record(action="followup.failed", actor=Actor.worker("w"), proposal_id=proposal.pk, details={"index": n})
    revert(change, at=T0 + timedelta(hours=1))
    with django_assert_num_queries(16):
        viewer.get(reverse("trace-change", args=[change.id]))


def _submitted(proposal_id: int, *, old_value, new_value, details=None) -> None:  # type: ignore[no-untyped-def]
    audit_record(
        action="proposal.submitted",
        actor=Actor.system("pipeline"),
        proposal_id=proposal_id,
        record_type="order",
        record_id="ORD-50001",
        workflow_slug="refund-notes",
        prompt_version="refund@3",
        old_value=old_value,
        new_value=new_value,
        details=details or {},
    )


def test_a_pending_proposal_is_traced_from_what_the_record_held_when_it_arrived(viewer):
    proposal = ProposalFactory(
        workflow=WorkflowFactory(slug="refund-notes"),
        record_type="order",
        record_id="ORD-50001",
        changes={"refund_status": "requested"},
        base={"refund_status": "none", "amount": "140.56"},
        status="pending",
    )
    _submitted(
        proposal.pk,
        old_value={"refund_status": "approved"},
        new_value={"refund_status": "requested"},
        details={"base": {"refund_status": "none", "amount": "140.56"}},
    )
    summary = _summary(viewer.get(reverse("trace-proposal", args=[proposal.pk])).content.decode())
    assert "proposed to change refund status from 'approved' to 'requested' (the AI saw 'none') ·" in summary
    assert "amount" not in summary


def test_a_submission_stored_before_held_values_were_kept_never_reads_the_ais_base_as_a_change(viewer):
    """Such an event kept the AI's base in old_value, with a field the proposal does not change."""
    _submitted(4242, old_value={"amount": "140.56"}, new_value={"refund_status": "requested"})
    summary = _summary(viewer.get(reverse("trace-proposal", args=[4242])).content.decode())
    assert "proposed to change refund status to 'requested'" in summary
    assert "amount" not in summary and "(empty)" not in summary


def test_a_rejection_is_told_as_one_even_after_a_first_approval(viewer):
    first = UserFactory(username="first", first_name="Ann", last_name="First")
    second = UserFactory(username="second", first_name="Ben", last_name="Second")
    proposal = ProposalFactory(status="rejected", decided_by=second, decided_at=T0, decision_note="not this one")
    ProposalApproval.objects.create(proposal=proposal, user=first, approved_at=T0 - timedelta(minutes=5))
    summary = _summary(viewer.get(reverse("trace-proposal", args=[proposal.pk])).content.decode())
    assert summary.startswith(
        "Rejected by Ben Second at 14:00:00 on 27 Nov 2026: “not this one” (after a first approval by Ann First) ·"
    )
    assert "Approved by" not in summary


def test_a_rejection_read_from_the_trail_alone_names_who_rejected(viewer):
    _submitted(
        5151, old_value={"refund_status": "none"}, new_value={"refund_status": "requested"}, details={"base": {}}
    )
    for approver_label, details in (("", {"rejected_by": "Dana Lee"}), ("Dana Lee", {})):  # as stored now, and before
        audit_record(
            action="proposal.rejected",
            actor=Actor(kind="user", id="4", label="lead"),
            proposal_id=5151 if approver_label == "" else 5252,
            workflow_slug="refund-notes",
            approver_label=approver_label,
            decided_at=T0,
            reason="wrong order",
            details=details,
        )
    summary = _summary(viewer.get(reverse("trace-proposal", args=[5151])).content.decode())
    assert summary.startswith("Rejected by Dana Lee at 14:00:00 on 27 Nov 2026: “wrong order” ·")
    assert "proposed to change refund status from 'none' to 'requested'" in summary
    older = _summary(viewer.get(reverse("trace-proposal", args=[5252])).content.decode())
    assert older.startswith("Rejected by Dana Lee at 14:00:00 on 27 Nov 2026: “wrong order” ·")


def test_a_write_forced_over_a_conflict_names_who_forced_it_in_the_headline(viewer):
    proposal, _change = _applied_proposal()
    audit_record(
        action="proposal.forced",
        actor=Actor(kind="user", id="9", label="ops"),
        proposal_id=proposal.pk,
        workflow_slug="address-updates",
        approver_label="Sam Okafor",
        decided_at=T0 + timedelta(minutes=14, seconds=8),
        details={"granted_by": "ops"},
    )
    summary = _summary(viewer.get(reverse("trace-proposal", args=[proposal.pk])).content.decode())
    assert summary.startswith(
        "Approved by Dana Lee at 14:14:07 on 27 Nov 2026, then forced over a conflict by Sam Okafor "
        "at 14:14:08 on 27 Nov 2026 under a conflict override ·"
    )
